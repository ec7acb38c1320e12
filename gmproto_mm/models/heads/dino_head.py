"""DINO's joint prototype head (https://arxiv.org/abs/2104.14294)."""
from typing import Dict, List, Optional, Sequence

import torch
import torch.nn as nn
from torch.nn.utils.parametrizations import weight_norm
from mmpretrain.registry import MODELS

from ..losses.koleo_loss import koleo_prototype_loss
from .base_prototype_head import BasePrototypeHead


@MODELS.register_module()
class DINOHead(BasePrototypeHead):
    """Weight-normalised last layer whose K rows are learned prototypes.

    The baseline of the paper: prototypes are trained by gradient descent
    jointly with the encoder, and the teacher keeps an EMA copy of them.
    Logits are ``<z, w_k>`` with unit-norm rows ``w_k`` (gain 1): cosine
    similarities for DINO's unit-norm z; CARP's head (``loss=dict(
    type='CARPLoss')`` behind ``DINONeck(normalize=False)``) scores the
    un-normalised bottleneck, as CARP's.

    Args:
        in_channels (int): Bottleneck size D. Defaults to 256.
        num_prototypes (int): K. Defaults to 65536.
        norm_last_layer (bool): Fix the weight-norm gain to 1 (unit-norm
            prototypes). Defaults to True.
        loss (dict): Loss config. Defaults to ``dict(type='DINOLoss')``.
        koleo_weight (float): lambda of the KoLeo-proto baseline
            (Govindarajan et al. 2024): adds ``loss_koleo = lambda *
            koleo_prototype_loss(prototypes)``; 0 disables it (DINO).
            Defaults to 0.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 in_channels: int = 256,
                 num_prototypes: int = 65536,
                 norm_last_layer: bool = True,
                 loss: dict = dict(type='DINOLoss'),
                 koleo_weight: float = 0.,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(in_channels, num_prototypes, loss, init_cfg)
        if koleo_weight < 0:
            raise ValueError(f'koleo_weight must be >= 0, got {koleo_weight}')
        self.koleo_weight = koleo_weight
        self.last_layer = weight_norm(
            nn.Linear(in_channels, num_prototypes, bias=False))
        gain = self.last_layer.parametrizations.weight.original0
        gain.data.fill_(1.)
        gain.requires_grad = not norm_last_layer

    @property
    def prototypes(self) -> torch.Tensor:
        return self.last_layer.weight.detach()

    def bank(self,
             teacher_module: Optional[nn.Module] = None) -> torch.Tensor:
        layer = self.last_layer if teacher_module is None else teacher_module
        return layer.weight.detach()

    def teacher_module(self) -> nn.Module:
        return self.last_layer

    def prototype_parameters(self) -> List[nn.Parameter]:
        return [p for p in self.last_layer.parameters() if p.requires_grad]

    def loss(self,
             student_embeds: Sequence[torch.Tensor],
             teacher_embeds: Sequence[torch.Tensor],
             teacher_module: Optional[nn.Module] = None,
             iteration: Optional[int] = None) -> Dict[str, torch.Tensor]:
        losses = super().loss(student_embeds, teacher_embeds, teacher_module,
                              iteration)
        if self.koleo_weight > 0:
            losses['loss_koleo'] = self.koleo_weight * koleo_prototype_loss(
                self.last_layer.weight)
        return losses

    def _logits(self, embeds: torch.Tensor,
                teacher_module: Optional[nn.Module]) -> torch.Tensor:
        layer = self.last_layer if teacher_module is None else teacher_module
        return layer(embeds)
