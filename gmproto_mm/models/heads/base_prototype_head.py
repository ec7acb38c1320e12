"""The contract between the ``DINO`` algorithm and its prototype heads.

A head scores bottleneck embeddings ``(B, D)`` against K prototypes and
owns the self-distillation loss. The embeddings are unit-norm for DINO; for
CARP (``DINONeck(normalize=False)``) they keep their norm, and the logits
``<z, w_k>`` against the unit-norm prototypes carry it. The algorithm never
looks at how prototypes are learned, so a joint head (gradient-trained
prototypes) and a decoupled head (prototypes fitted by online EM) plug in
alike:

- ``teacher_module()``: the part of the head the teacher keeps an EMA copy
  of, or ``None`` when teacher and student share one prototype bank;
- ``loss(student_embeds, teacher_embeds, teacher_module, iteration)``: the
  loss dict (``iteration``: the training iteration, for losses that need
  it);
- ``assign(embeds, teacher_module)``: ``(B, K)`` teacher assignment
  probabilities, for evaluation;
- ``prototypes``: the current ``(K, D)`` bank, for collapse metrics, and
  ``bank(teacher_module)``: the one the teacher scores against;
- ``prototype_parameters()``: learned prototype parameters (frozen during
  the first epoch by ``FreezePrototypesHook``; empty for fixed prototypes).

The loss module is called as ``loss(student_logits, teacher_logits)`` and
returns a scalar, or a dict of named terms (``loss_*``). A loss with
``needs_iteration = True`` (``CARPLoss``) is also given
``iteration=``; a loss with an ``assign(logits)`` method defines the
evaluation assignment (otherwise DINO's: the centred softmax at the final
teacher temperature).
"""
from abc import ABCMeta, abstractmethod
from typing import Dict, List, Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmpretrain.registry import MODELS


class BasePrototypeHead(BaseModule, metaclass=ABCMeta):
    """Shared logic of prototype heads: input checks, loss, assignment.

    Args:
        in_channels (int): Embedding size D (equal to the neck's output).
        num_prototypes (int): K.
        loss (dict): Config of the loss; ``num_prototypes`` is filled in.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 in_channels: int,
                 num_prototypes: int,
                 loss: dict = dict(type='DINOLoss'),
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if in_channels < 1 or num_prototypes < 1:
            raise ValueError('in_channels and num_prototypes must be >= 1, '
                             f'got {in_channels} and {num_prototypes}')
        self.in_channels = in_channels
        self.num_prototypes = num_prototypes
        loss = dict(loss)
        loss.setdefault('num_prototypes', num_prototypes)
        self.loss_module = MODELS.build(loss)

    @property
    @abstractmethod
    def prototypes(self) -> torch.Tensor:
        """The current prototype bank ``(K, D)`` (detached)."""

    @abstractmethod
    def _logits(self, embeds: torch.Tensor,
                teacher_module: Optional[nn.Module]) -> torch.Tensor:
        """``(B, D)`` embeddings -> ``(B, K)`` logits ``<z, w_k>`` (cosine
        similarities for unit-norm embeddings)."""

    def bank(self,
             teacher_module: Optional[nn.Module] = None) -> torch.Tensor:
        """Prototypes ``(K, D)`` that ``logits(., teacher_module)`` uses."""
        return self.prototypes

    def teacher_module(self) -> Optional[nn.Module]:
        """Module the teacher EMA-copies; ``None`` means one shared bank."""
        return None

    def prototype_parameters(self) -> List[nn.Parameter]:
        """Gradient-trained prototype parameters (none by default)."""
        return []

    def logits(self,
               embeds: torch.Tensor,
               teacher_module: Optional[nn.Module] = None) -> torch.Tensor:
        """Logits ``(B, K)`` of ``(B, D)`` embeddings: ``<z, w_k>`` against
        the unit-norm prototypes (cosine similarities for unit-norm z)."""
        if embeds.dim() != 2 or embeds.shape[1] != self.in_channels:
            raise ValueError(
                f'{type(self).__name__} expects (B, {self.in_channels}) '
                f'embeddings (in_channels must equal the neck output), got '
                f'{tuple(embeds.shape)}')
        return self._logits(embeds, teacher_module)

    def observe_teacher(self, teacher_embeds: Sequence[torch.Tensor]) -> None:
        """Called with the teacher's global-view embeddings every step."""

    def loss(self,
             student_embeds: Sequence[torch.Tensor],
             teacher_embeds: Sequence[torch.Tensor],
             teacher_module: Optional[nn.Module] = None,
             iteration: Optional[int] = None) -> Dict[str, torch.Tensor]:
        """Loss of all views against the teacher's global views.

        Args:
            student_embeds (Sequence[Tensor]): ``(B, D)`` per view, global
                views first.
            teacher_embeds (Sequence[Tensor]): ``(B, D)`` per global view.
            teacher_module (nn.Module, optional): The teacher's EMA copy of
                :meth:`teacher_module`, if any.
            iteration (int, optional): The training iteration (0-based);
                required by losses with ``needs_iteration`` (``CARPLoss``).

        Returns:
            dict[str, Tensor]: ``{'loss': scalar}``, or the loss's named
            terms.
        """
        student_logits = [self.logits(z) for z in student_embeds]
        with torch.no_grad():
            teacher_logits = [
                self.logits(z, teacher_module) for z in teacher_embeds
            ]
        self.observe_teacher(teacher_embeds)
        return self.loss_terms(student_logits, teacher_logits, iteration)

    def loss_terms(self, student_logits: Sequence[torch.Tensor],
                   teacher_logits: Sequence[torch.Tensor],
                   iteration: Optional[int] = None
                   ) -> Dict[str, torch.Tensor]:
        """Call the loss module (with ``iteration`` if it needs it) and
        return its terms as a dict (a scalar becomes ``{'loss': ...}``)."""
        loss = self.loss_module
        if getattr(loss, 'needs_iteration', False):
            if iteration is None:
                raise ValueError(
                    f'{type(loss).__name__} needs the training iteration: '
                    'call head.loss(..., iteration=i) (the DINO algorithm '
                    'passes its step count)')
            out = loss(student_logits, teacher_logits, iteration=iteration)
        else:
            out = loss(student_logits, teacher_logits)
        return dict(out) if isinstance(out, dict) else dict(loss=out)

    @torch.no_grad()
    def assign(self,
               embeds: torch.Tensor,
               teacher_module: Optional[nn.Module] = None) -> torch.Tensor:
        """Teacher assignment probabilities ``(B, K)``: the loss's
        ``assign(logits)`` if it has one (CARP: softmax over all K without
        temperature), else DINO's centred softmax at the final tau_t."""
        logits = self.logits(embeds, teacher_module).float()
        loss = self.loss_module
        if callable(getattr(loss, 'assign', None)):
            return loss.assign(logits)
        return F.softmax((logits - loss.center) / loss.teacher_temp, dim=-1)
