"""Stale decay (``stale_decay``), an option of ours: components that
stopped receiving data fade back to the prior count, so that they become
idle and get re-seeded. ``O(K)`` per update: it scales the statistics the
forgetting step scales anyway."""
import torch
from torch import Tensor

from ..options import check_number
from .base import MIXTURE_STRATEGIES, MixtureStrategy


def stale_decay_factor(count: Tensor, prior_count: float,
                       stale_decay: float, rows: int) -> Tensor:
    """Per-component scale of the statistics for one update, ``(K,)``.

    ``(1 - stale_decay) ** (rows / K)``: the statistics shrink by
    ``1 - stale_decay`` for every ``K`` rows seen (``rows / K`` is the mean
    number of new rows per component), never below ``prior_count``
    pseudo-observations. Scaling all three statistics alike keeps each
    component's mean and variance; only its weight fades.

    Args:
        count (Tensor): Accumulated counts ``(K,)``.
        prior_count (float): The floor.
        stale_decay (float): Decay per ``K`` rows, in [0, 1).
        rows (int): Rows of this update.

    Returns:
        Tensor: Factors in ``(0, 1]``, shape ``(K,)``.
    """
    step = (1.0 - stale_decay)**(rows / count.numel())
    floor = prior_count / count.clamp_min(torch.finfo(count.dtype).tiny)
    return floor.clamp_(min=step, max=1.0)


@MIXTURE_STRATEGIES.register_module()
class StaleDecay(MixtureStrategy):
    """Every update also scales each component's statistics by ``(1 -
    decay) ** (N / K)`` -- ``1 - decay`` per ``K`` rows seen -- never below
    ``prior_count`` pseudo-observations (:func:`stale_decay_factor`); means
    and variances are unchanged by the scaling. ``O(K)``.

    Args:
        decay (float): In (0, 1).
    """

    def __init__(self, decay: float) -> None:
        check_number('stale_decay', decay, 0.0, 1.0,
                     '[0, 1) (a decay per K rows seen; 0 = off)',
                     high_open=True)
        self.decay = float(decay)

    def forgetting_scale(self, gmm, rows: int) -> Tensor:
        return stale_decay_factor(gmm.acc_count, gmm.prior_count, self.decay,
                                  rows)

    def __repr__(self) -> str:
        return f'stale_decay={self.decay}'
