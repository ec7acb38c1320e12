"""Blockwise patch masks of BEiT (https://arxiv.org/abs/2106.08254) as used
by iBOT (https://arxiv.org/abs/2111.07832)."""
import math
from typing import Optional, Sequence, Tuple, Union

import torch


def check_block_mask_args(grid_hw: Tuple[int, int],
                          ratio_range: Sequence[float], mask_prob: float,
                          min_patches: int, aspect: Sequence[float]) -> None:
    """Raise ``ValueError`` for arguments :func:`block_masks` rejects."""
    if len(grid_hw) != 2 or min(grid_hw) < 1:
        raise ValueError(f'grid_hw must be two ints >= 1, got {grid_hw}')
    if len(ratio_range) != 2 or \
            not 0 <= ratio_range[0] <= ratio_range[1] <= 1:
        raise ValueError('ratio_range must be (low, high) with 0 <= low <= '
                         f'high <= 1, got {ratio_range}')
    if not 0 <= mask_prob <= 1:
        raise ValueError(f'mask_prob must be in [0, 1], got {mask_prob}')
    if min_patches < 1:
        raise ValueError(f'min_patches must be >= 1, got {min_patches}')
    if len(aspect) != 2 or not 0 < aspect[0] <= aspect[1]:
        raise ValueError('aspect must be (low, high) with 0 < low <= high, '
                         f'got {aspect}')


def block_masks(batch: int,
                grid_hw: Union[int, Tuple[int, int]],
                ratio_range: Tuple[float, float] = (0.1, 0.5),
                mask_prob: float = 0.5,
                min_patches: int = 4,
                aspect: Tuple[float, float] = (0.3, 1 / 0.3),
                generator: Optional[torch.Generator] = None
                ) -> torch.Tensor:
    """Sample BEiT/iBOT blockwise masks over a ``(H, W)`` patch grid.

    Each image is masked with probability ``mask_prob`` (else all False) at a
    ratio r ~ U(``ratio_range``): rectangles of area ~ U(``min_patches``,
    remaining) and log-uniform aspect ratio are added while at most
    ``r * H * W - masked`` new patches each fit, 10 attempts per rectangle;
    so a masked image ends with at most ``r * H * W`` masked patches and, at
    the block granularity, close to it. iBOT's ``pred_ratio 0 0.3
    --pred_ratio_var 0 0.2`` is ``ratio_range=(0.1, 0.5), mask_prob=0.5``.

    Args:
        batch (int): B.
        grid_hw (int | tuple[int, int]): Patch grid ``(H, W)``.
        ratio_range (tuple[float, float]): Range of the masked share.
            Defaults to (0.1, 0.5).
        mask_prob (float): Probability that an image is masked at all.
            Defaults to 0.5.
        min_patches (int): Smallest rectangle area (BEiT/iBOT:
            ``(min(H, W) // 3) ** 2``, 16 on a 14x14 grid). Defaults to 4.
        aspect (tuple[float, float]): Aspect-ratio range of the rectangles.
            Defaults to (0.3, 1 / 0.3).
        generator (torch.Generator, optional): CPU generator for
            reproducible masks; default: torch's global one.

    Returns:
        Tensor: Bool masks ``(B, H * W)`` (row-major), on the CPU.
    """
    if isinstance(grid_hw, int):
        grid_hw = (grid_hw, grid_hw)
    grid_hw = tuple(int(s) for s in grid_hw)  # type: ignore[assignment]
    check_block_mask_args(grid_hw, ratio_range, mask_prob, min_patches, aspect)
    if batch < 0:
        raise ValueError(f'batch must be >= 0, got {batch}')
    H, W = grid_hw
    log_lo, log_hi = math.log(aspect[0]), math.log(aspect[1])
    masks = torch.zeros(batch, H, W, dtype=torch.bool)
    draws = torch.rand(batch, 2, generator=generator).tolist()
    for b, (u_mask, u_ratio) in enumerate(draws):
        if u_mask >= mask_prob:
            continue
        ratio = ratio_range[0] + u_ratio * (ratio_range[1] - ratio_range[0])
        target, count, mask = ratio * H * W, 0, masks[b]
        while count < target:
            remaining = target - count
            added = 0
            for _ in range(10):  # bounded attempts per rectangle
                u = torch.rand(4, generator=generator).tolist()
                area = min_patches + u[0] * (remaining - min_patches)
                ar = math.exp(log_lo + u[1] * (log_hi - log_lo))
                h = int(round(math.sqrt(area * ar)))
                w = int(round(math.sqrt(area / ar)))
                if not (0 < h < H and 0 < w < W):
                    continue
                top = min(int(u[2] * (H - h + 1)), H - h)
                left = min(int(u[3] * (W - w + 1)), W - w)
                block = mask[top:top + h, left:left + w]
                new = h * w - int(block.sum())
                if 0 < new <= remaining:
                    block.fill_(True)
                    added = new
                    break
            if added == 0:
                break  # nothing fits any more
            count += added
    return masks.flatten(1)
