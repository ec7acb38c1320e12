"""Decoupled prototypes: the means of an online Gaussian mixture
(arXiv 2510.20108). The encoder trains against fixed prototypes; the
prototypes are fitted to the teacher's embeddings by ``OnlineEMHook``."""
from typing import Optional, Sequence

import torch
import torch.nn as nn
from mmpretrain.registry import MODELS

from ..utils.em_bank import GMMPrototypeBank
from .base_prototype_head import BasePrototypeHead


@MODELS.register_module()
class DecoupledGMMHead(BasePrototypeHead):
    """Prototype head whose K prototypes are the unit-norm GMM means.

    Drop-in for ``DINOHead`` in the ``DINO`` algorithm: logits are cosine
    similarities to the means, no prototype parameters exist (no gradient, no
    EMA copy: student and teacher share the one bank), and the detached fp32
    teacher embeddings of the global crops are cached for ``OnlineEMHook``
    in ``self.bank`` (a :class:`GMMPrototypeBank`).

    Args:
        in_channels (int): Embedding size D (neck bottleneck). Defaults to 256.
        num_prototypes (int): K. Defaults to 65536.
        gmm (dict, optional): Keyword arguments of
            :class:`OnlineGaussianMixture` (``forgetting``, ``beta_start``,
            ``beta_iters``, ``min_var``, ``init``, ...).
        loss (dict): Loss config. Defaults to ``dict(type='DINOLoss')``.
        max_cached_batches (int): Error out if this many teacher batches
            pile up unconsumed (``OnlineEMHook`` missing). Defaults to 1024.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 in_channels: int = 256,
                 num_prototypes: int = 65536,
                 gmm: Optional[dict] = None,
                 loss: dict = dict(type='DINOLoss'),
                 max_cached_batches: int = 1024,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(in_channels, num_prototypes, loss, init_cfg)
        self.em_bank = GMMPrototypeBank(num_prototypes, in_channels, gmm,
                                        max_cached_batches)

    @property
    def gmm(self):
        """The :class:`OnlineGaussianMixture` behind the prototypes."""
        return self.em_bank.gmm

    @property
    def prototypes(self) -> torch.Tensor:
        return self.em_bank.prototypes

    def _logits(self, embeds: torch.Tensor,
                teacher_module: Optional[nn.Module]) -> torch.Tensor:
        return self.em_bank.logits(embeds)

    def observe_teacher(self, teacher_embeds: Sequence[torch.Tensor]) -> None:
        self.em_bank.cache(teacher_embeds)
