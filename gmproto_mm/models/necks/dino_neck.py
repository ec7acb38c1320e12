"""DINO's projection MLP (https://arxiv.org/abs/2104.14294)."""
from typing import List, Optional, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import build_norm_layer
from mmengine.model import BaseModule
from mmpretrain.registry import MODELS


def pool_features(x: Union[Tuple[torch.Tensor], torch.Tensor]
                  ) -> torch.Tensor:
    """The last backbone output as ``(B, C)`` features.

    Backbones return a tuple of stages: the last one is used. ViT
    ``cls_token`` features ``(B, C)`` pass through; CNN feature maps
    ``(B, C, H, W)`` are globally average-pooled (mmpretrain's
    ``GlobalAveragePooling``; DINO's ResNet-50 drops ``fc`` after it).
    """
    if isinstance(x, (tuple, list)):
        x = x[-1]
    if x.dim() == 4:
        x = x.mean(dim=(2, 3))
    return x


@MODELS.register_module()
class DINONeck(BaseModule):
    """MLP ``in -> hidden -> ... -> bottleneck`` with GELU, L2-normalised out.

    Takes ViT ``(B, C)`` features or CNN ``(B, C, H, W)`` feature maps
    (globally average-pooled first, see :func:`pool_features`). With
    ``normalize=False`` the bottleneck is returned as is (CARP's head: the
    logits are then ``<z, w_k>`` against unit-norm prototypes, so the
    embedding's norm acts as a learned inverse temperature).

    Args:
        in_channels (int): Backbone feature size (ViT-B: 768, ResNet-50:
            2048).
        hid_channels (int): Hidden width. Defaults to 2048.
        bottleneck_channels (int): Output size D. Defaults to 256.
        num_layers (int): Linear layers (>= 1). Defaults to 3.
        norm_cfg (dict, optional): Norm layer after each hidden Linear,
            before the GELU: DINO's ``use_bn_in_head=True`` is
            ``dict(type='BN1d')`` (``dict(type='SyncBN')`` across GPUs).
            Defaults to None (DINO's default: no norm).
        normalize (bool): L2-normalise the output (DINO). False keeps the
            bottleneck's norm (CARP). Defaults to True.
        init_cfg (dict | list, optional): Defaults to truncated normal
            (std 0.02) on linear weights, zero bias, as DINO.
    """

    def __init__(self,
                 in_channels: int,
                 hid_channels: int = 2048,
                 bottleneck_channels: int = 256,
                 num_layers: int = 3,
                 norm_cfg: Optional[dict] = None,
                 normalize: bool = True,
                 init_cfg: Optional[Union[dict, List[dict]]] = dict(
                     type='TruncNormal', layer='Linear', std=0.02,
                     bias=0.)) -> None:
        super().__init__(init_cfg=init_cfg)
        if num_layers < 1:
            raise ValueError(f'num_layers must be >= 1, got {num_layers}')
        if not isinstance(normalize, bool):
            raise ValueError(f'normalize must be True (DINO) or False '
                             f'(CARP), got {normalize!r}')
        self.in_channels = in_channels
        self.out_channels = bottleneck_channels
        self.normalize = normalize
        dims = [in_channels] + [hid_channels] * (num_layers - 1) + [
            bottleneck_channels
        ]
        layers: List[nn.Module] = []
        for i, (d_in, d_out) in enumerate(zip(dims[:-1], dims[1:])):
            layers.append(nn.Linear(d_in, d_out))
            if i < num_layers - 1:
                if norm_cfg is not None:
                    layers.append(build_norm_layer(norm_cfg, d_out)[1])
                layers.append(nn.GELU())
        self.mlp = nn.Sequential(*layers)

    def forward(self, x: Union[Tuple[torch.Tensor], torch.Tensor]
                ) -> Tuple[torch.Tensor]:
        """Project, and normalise unless ``normalize=False``.

        Args:
            x (tuple[Tensor] | Tensor): Backbone output; the last tensor is
                used, ``(B, C)`` (ViT ``out_type='cls_token'``) or
                ``(B, C, H, W)`` (CNN, average-pooled).

        Returns:
            tuple[Tensor]: ``((B, D),)`` embeddings, unit-norm if
            ``normalize``.
        """
        x = pool_features(x)
        if x.dim() != 2 or x.shape[1] != self.in_channels:
            raise ValueError(
                f'DINONeck expects (B, {self.in_channels}) features or '
                f'(B, {self.in_channels}, H, W) feature maps (set '
                f'in_channels to the backbone width), got {tuple(x.shape)}')
        z = self.mlp(x)
        return (F.normalize(z, dim=-1) if self.normalize else z, )
