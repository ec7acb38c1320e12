"""A ViT whose masked patch embeddings are replaced by a learned token, for
iBOT's masked image modeling (https://arxiv.org/abs/2111.07832)."""
from typing import Optional, Tuple

import torch
import torch.nn as nn
from mmpretrain.models import VisionTransformer
from mmpretrain.models.utils import resize_pos_embed
from mmpretrain.registry import MODELS


@MODELS.register_module()
class MaskedVisionTransformer(VisionTransformer):
    """mmpretrain's ``VisionTransformer`` with an optional patch mask.

    Why not mmpretrain's ``MaskFeatViT``: with a mask it adds ``pos_embed``
    without resizing (local crops of another size fail), skips ``pre_norm``
    and returns a bare tensor while ``mask=None`` returns a tuple. Here both
    paths are the parent's forward, the mask only swaps patch embeddings for
    ``mask_token`` (zero-initialised, as iBOT) before the [CLS] token and the
    (resized) position embedding are added.

    Args:
        out_type (str): As ``VisionTransformer``; iBOT needs ``'raw'``, all
            tokens ``(B, 1 + N, C)`` after the final norm. Defaults to
            ``'raw'``.
        **kwargs: Other ``VisionTransformer`` arguments.
    """

    def __init__(self, *args, out_type: str = 'raw', **kwargs) -> None:
        super().__init__(*args, out_type=out_type, **kwargs)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, self.embed_dims))

    def patch_grid(self, img_hw: Tuple[int, int]) -> Tuple[int, int]:
        """Patch grid ``(H, W)`` the patch embedding makes of an image size."""
        h, w = int(img_hw[0]), int(img_hw[1])
        embed = self.patch_embed
        if embed.adaptive_padding is not None:
            pad_h, pad_w = embed.adaptive_padding.get_pad_shape((h, w))
            h, w = h + pad_h, w + pad_w
        conv = embed.projection
        size = []
        for s, k, st, p, d in zip((h, w), conv.kernel_size, conv.stride,
                                  conv.padding, conv.dilation):
            size.append((s + 2 * p - d * (k - 1) - 1) // st + 1)
        return size[0], size[1]

    def forward(self, x: torch.Tensor,
                mask: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor]:
        """Encode images, masked patches replaced by ``mask_token``.

        Args:
            x (Tensor): Images ``(B, C, H, W)``.
            mask (Tensor, optional): Bool ``(B, N)``, True = masked, N the
                patches of :meth:`patch_grid` in row-major order.

        Returns:
            tuple[Tensor]: One output per ``out_indices`` (``'raw'``:
            ``(B, 1 + N, C)``).
        """
        B = x.shape[0]
        x, patch_resolution = self.patch_embed(x)
        if mask is not None:
            if mask.shape != x.shape[:2] or mask.dtype != torch.bool:
                raise ValueError(
                    f'mask must be a bool (B, N) = {tuple(x.shape[:2])} '
                    f'tensor for this input (patch grid {patch_resolution}),'
                    f' got {mask.dtype} {tuple(mask.shape)}')
            x = torch.where(mask.unsqueeze(-1),
                            self.mask_token.to(x.dtype).expand_as(x), x)
        if self.cls_token is not None:
            x = torch.cat((self.cls_token.expand(B, -1, -1), x), dim=1)
        x = x + resize_pos_embed(
            self.pos_embed,
            self.patch_resolution,
            patch_resolution,
            mode=self.interpolate_mode,
            num_extra_tokens=self.num_extra_tokens)
        x = self.pre_norm(self.drop_after_pos(x))
        outs = []
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i == len(self.layers) - 1 and self.final_norm:
                x = self.ln1(x)
            if i in self.out_indices:
                outs.append(self._format_output(x, patch_resolution))
        return tuple(outs)
