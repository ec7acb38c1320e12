"""Decoupled prototypes: the means of an online Gaussian mixture
(arXiv 2510.20108). The encoder trains against fixed prototypes; the
prototypes are fitted to the teacher's embeddings by ``OnlineEMHook``."""
from typing import Dict, Optional, Sequence

import torch
import torch.nn as nn
from mmpretrain.registry import MODELS

from ..utils.em_bank import GMMPrototypeBank
from .base_prototype_head import BasePrototypeHead


_TEACHER_TARGETS = ('softmax', 'responsibilities')


@MODELS.register_module()
class DecoupledGMMHead(BasePrototypeHead):
    """Prototype head whose K prototypes are the unit-norm GMM means.

    Drop-in for ``DINOHead`` in the ``DINO`` algorithm: logits are
    ``<z, mu_k>`` against the unit-norm means (cosine similarities for DINO's
    unit-norm embeddings; CARP's un-normalised ones keep their norm), no
    prototype parameters exist (no gradient, no EMA copy: student and
    teacher share the one bank), and the detached fp32 teacher embeddings of
    the global crops, L2-normalised, are cached for ``OnlineEMHook`` in
    ``self.em_bank`` (a :class:`GMMPrototypeBank`): EM fits the mixture on
    the sphere whatever the loss.

    Needs ``dict(type='OnlineEMHook')`` in ``custom_hooks``: without it the
    first training step raises. Outside a Runner, declare the caller as the
    updater with :func:`gmproto_mm.models.utils.attach_em_updater`.

    Args:
        in_channels (int): Embedding size D (neck bottleneck). Defaults to 256.
        num_prototypes (int): K. Defaults to 65536.
        gmm (dict, optional): Keyword arguments of
            :class:`~gmproto_mm.models.mixture.OnlineGaussianMixture`
            (``forgetting``, ``beta_start``,
            ``beta_iters``, ``min_var``, ``init``, ...).
        loss (dict): Loss config. Defaults to ``dict(type='DINOLoss')``.
        teacher_targets (str): ``'softmax'``: the loss's own targets from
            the teacher's logits (the paper's default; ``DINOLoss``: the
            centred, sharpened softmax; ``CARPLoss``: block softmaxes);
            ``'responsibilities'``: the mixture posterior ``r_nk`` (beta = 1)
            of the teacher embeddings, no centring (an option of the
            method's specification; the evaluation assignment follows).
            Needs ``DINOLoss`` (its ``cross_view_loss``); refused with
            ``CARPLoss`` (measured: the encoder collapsed onto one
            prototype). Until the first EM update initialises
            the mixture, the softmax targets are used. Cost: one
            ``(B, 2D+1) x (2D+1, K)`` matmul per global view, ``O(B K D)``,
            about twice the teacher's logits. Defaults to ``'softmax'``.
        max_cached_batches (int): Error out if this many teacher batches
            pile up unconsumed (``OnlineEMHook`` missing). Defaults to 1024.
        config_key (str): Where this head sits in the config, named by the
            errors of a bad ``gmm`` option (``IBOT`` sets
            ``'model.patch_head'`` for its patch head). Defaults to
            ``'model.head'``.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 in_channels: int = 256,
                 num_prototypes: int = 65536,
                 gmm: Optional[dict] = None,
                 loss: dict = dict(type='DINOLoss'),
                 teacher_targets: str = 'softmax',
                 max_cached_batches: int = 1024,
                 config_key: str = 'model.head',
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(in_channels, num_prototypes, loss, init_cfg)
        if teacher_targets not in _TEACHER_TARGETS:
            raise ValueError(f'teacher_targets must be one of '
                             f'{_TEACHER_TARGETS}, got {teacher_targets!r}')
        if teacher_targets == 'responsibilities' and not hasattr(
                self.loss_module, 'cross_view_loss'):
            # CARP with posterior targets was measured and removed: the
            # encoder collapsed onto one prototype in 3 of 3 seeds
            raise ValueError("teacher_targets='responsibilities' needs a "
                             'loss that takes targets (DINOLoss), got '
                             f'{type(self.loss_module).__name__}; use '
                             "teacher_targets='softmax' (with CARPLoss the "
                             'posterior targets collapsed the encoder onto '
                             'one prototype, docs/results.md)')
        self.teacher_targets = teacher_targets
        self.em_bank = GMMPrototypeBank(num_prototypes, in_channels, gmm,
                                        max_cached_batches,
                                        f'{config_key}.gmm')

    @property
    def gmm(self):
        """The :class:`~gmproto_mm.models.mixture.OnlineGaussianMixture`
        behind the prototypes."""
        return self.em_bank.gmm

    @property
    def prototypes(self) -> torch.Tensor:
        return self.em_bank.prototypes

    def _logits(self, embeds: torch.Tensor,
                teacher_module: Optional[nn.Module]) -> torch.Tensor:
        return self.em_bank.logits(embeds)

    def observe_teacher(self, teacher_embeds: Sequence[torch.Tensor]) -> None:
        self.em_bank.cache(teacher_embeds)

    def _use_responsibilities(self) -> bool:
        return self.teacher_targets == 'responsibilities' and bool(
            self.gmm.initialized)

    def loss(self,
             student_embeds: Sequence[torch.Tensor],
             teacher_embeds: Sequence[torch.Tensor],
             teacher_module: Optional[nn.Module] = None,
             iteration: Optional[int] = None) -> Dict[str, torch.Tensor]:
        if not self._use_responsibilities() or not all(
                bool(torch.isfinite(z).all()) for z in teacher_embeds):
            # NaN/Inf teacher rows (an fp16 overflow): the loss's own path
            # gives a NaN loss, which AMP's loss scaler skips, where the
            # posterior would raise
            return super().loss(student_embeds, teacher_embeds,
                                teacher_module, iteration)
        student_logits = [self.logits(z) for z in student_embeds]
        targets = [self.gmm.responsibilities(z) for z in teacher_embeds]
        self.observe_teacher(teacher_embeds)
        return dict(loss=self.loss_module.cross_view_loss(student_logits,
                                                          targets))

    @torch.no_grad()
    def assign(self,
               embeds: torch.Tensor,
               teacher_module: Optional[nn.Module] = None) -> torch.Tensor:
        if not self._use_responsibilities():
            return super().assign(embeds, teacher_module)
        return self.gmm.responsibilities(embeds)
