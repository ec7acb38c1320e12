"""The contract between the ``DINO`` algorithm and its prototype heads.

A head scores L2-normalised bottleneck embeddings ``(B, D)`` against K
prototypes and owns the self-distillation loss. The algorithm never looks at
how prototypes are learned, so a joint head (gradient-trained prototypes) and
a decoupled head (prototypes fitted by online EM) plug in alike:

- ``teacher_module()``: the part of the head the teacher keeps an EMA copy
  of, or ``None`` when teacher and student share one prototype bank;
- ``loss(student_embeds, teacher_embeds, teacher_module)``: the loss dict;
- ``assign(embeds, teacher_module)``: ``(B, K)`` teacher assignment
  probabilities, for evaluation;
- ``prototypes``: the current ``(K, D)`` bank, for collapse metrics, and
  ``bank(teacher_module)``: the one the teacher scores against;
- ``prototype_parameters()``: learned prototype parameters (frozen during
  the first epoch by ``FreezePrototypesHook``; empty for fixed prototypes).
"""
from abc import ABCMeta, abstractmethod
from typing import Dict, List, Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmpretrain.registry import MODELS


class BasePrototypeHead(BaseModule, metaclass=ABCMeta):
    """Shared logic of prototype heads: input checks, DINO loss, assignment.

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
        """``(B, D)`` unit-norm embeddings -> ``(B, K)`` cosine logits."""

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
        """Cosine logits ``(B, K)`` of ``(B, D)`` embeddings."""
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
             teacher_module: Optional[nn.Module] = None
             ) -> Dict[str, torch.Tensor]:
        """DINO loss of all views against the teacher's global views.

        Args:
            student_embeds (Sequence[Tensor]): ``(B, D)`` per view, global
                views first.
            teacher_embeds (Sequence[Tensor]): ``(B, D)`` per global view.
            teacher_module (nn.Module, optional): The teacher's EMA copy of
                :meth:`teacher_module`, if any.

        Returns:
            dict[str, Tensor]: ``{'loss': scalar}``.
        """
        student_logits = [self.logits(z) for z in student_embeds]
        with torch.no_grad():
            teacher_logits = [
                self.logits(z, teacher_module) for z in teacher_embeds
            ]
        self.observe_teacher(teacher_embeds)
        return dict(loss=self.loss_module(student_logits, teacher_logits))

    @torch.no_grad()
    def assign(self,
               embeds: torch.Tensor,
               teacher_module: Optional[nn.Module] = None) -> torch.Tensor:
        """Teacher assignment probabilities ``(B, K)`` at the final tau_t."""
        logits = self.logits(embeds, teacher_module).float()
        loss = self.loss_module
        return F.softmax((logits - loss.center) / loss.teacher_temp, dim=-1)
