"""Re-seeding of idle components (``reseed_rate``), an option of ours.

After the M-step, idle components (no data since their (re)start) move
onto the batch rows the mixture explains worst, far from every mean in
use, at most ``ceil(reseed_rate * N)`` per update of ``N`` rows -- as
scikit-learn's ``MiniBatchKMeans`` reassigns empty centres at a rate
proportional to the samples seen, not a fixed count per step. Cost per
update: ``O(C K D)`` for ``C = min(N, 4 R)`` candidate rows and ``R =
ceil(reseed_rate * N)`` moves, plus ``O(R^2 D)`` for the picks, plus the
restarts' share of the batch, ``O(N R D)``.
"""
import math
from typing import Dict, Optional, Union

import torch
from torch import Tensor

from .. import numerics as nm
from ..initialisation import normalise_or_random, with_noise
from ..options import check_number, check_schedule, describe, updates_of
from .base import MIXTURE_STRATEGIES, MixtureStrategy, UpdateStep
from .restart import restart_components

#: A component is idle while its count exceeds the prior count by less than
#: this many rows of responsibility mass (exact equality would be fragile:
#: in the annealed E-step far components get masses of ~1e-15).
IDLE_MASS = 0.5
#: Candidate rows drawn per re-seeded or restarted component.
CANDIDATES_PER_PICK = 4


def gap_of(distance: float) -> float:
    """``1 - cos`` below which two unit vectors are within ``distance``
    (``||a - b||^2 = 2 (1 - cos)``); at least 1e-6 (distance 0: apart
    unless (almost) equal)."""
    return max(distance**2 / 2.0, 1e-6)


def reseed_count(rate: float, rows: int) -> int:
    """Components an update of ``rows`` rows may re-seed:
    ``ceil(rate * rows)`` (0 when the rate is 0)."""
    return math.ceil(rate * rows - 1e-9) if rate > 0 else 0


def idle_components(gmm) -> Tensor:
    """Indices ``(I,)`` of the components that received under
    :data:`IDLE_MASS` rows of responsibility since their (re)start."""
    return torch.nonzero(
        gmm.acc_count < gmm.prior_count + IDLE_MASS).squeeze(1)


def pick_far_rows(x: Tensor, count: int, means: Tensor, gap: float,
                  gen: torch.Generator, fit,
                  exclude: Optional[Tensor] = None) -> Tensor:
    """Up to ``count`` rows of ``x`` for restarted components.

    Candidates are the ``C = min(N, 4 count)`` rows the mixture explains
    worst (lowest ``fit.fit``, from the E-step: free). ``count`` of them
    are drawn without replacement with probability proportional to ``1 -
    max cos`` to the means in use (all but ``exclude``: the idle
    components and those being restarted), so restarts go where the batch
    is least covered; candidates within ``1 - cos <= gap`` of such a mean
    are never drawn, and a draw that close to an earlier draw is dropped.
    ``O(C K D + count^2 D)``, with a fixed number of host synchronisations.

    Args:
        x (Tensor): Unit-norm rows ``(N, D)``.
        count (int): Rows wanted.
        means (Tensor): Unit-norm means ``(K, D)``.
        gap (float): ``1 - cos`` within which a row is too close
            (:func:`gap_of`).
        gen (torch.Generator): Generator on ``x``'s device.
        fit (RowFit): The E-step's per-row maximum and normaliser.
        exclude (Tensor, optional): Component indices ``(E,)`` that do not
            count as covering.

    Returns:
        Tensor: Indices into ``x`` ``(<= count,)``, fewer when too few
        candidates are far enough.
    """
    n = x.shape[0]
    cand = torch.topk(fit.fit, min(n, CANDIDATES_PER_PICK * count),
                      largest=False, sorted=True).indices
    nearest = max_cosine(x[cand], means, exclude)
    weight = torch.nn.functional.threshold(1.0 - nearest.double(), gap, 0.0)
    draws = min(count, int((weight > 0).sum()))
    if draws == 0:
        return cand[:0]
    picked = cand[torch.multinomial(weight, draws, replacement=False,
                                    generator=gen)]
    rows = x[picked]
    near = (1.0 - (rows @ rows.T).double()) <= gap
    return picked[~torch.triu(near, diagonal=1).any(dim=0)]


def max_cosine(rows: Tensor, means: Tensor,
               exclude: Optional[Tensor] = None) -> Tensor:
    """``max_k cos(rows_n, means_k)`` over the means not in ``exclude``,
    ``(R,)``, in blocks of at most ``(256, K)``; ``-1`` when every mean is
    excluded."""
    out = []
    for _, sim in nm.similarity_blocks(rows, means):
        if exclude is not None and exclude.numel():
            sim[:, exclude] = -1.0
        out.append(sim.amax(dim=1) if sim.shape[1] else
                   sim.new_full((sim.shape[0], ), -1.0))
    return torch.cat(out) if out else rows.new_zeros(0)


@MIXTURE_STRATEGIES.register_module()
class ReseedIdle(MixtureStrategy):
    """Move idle components onto the batch rows the mixture explains worst.

    From update ``start`` on, up to ``ceil(rate * N)`` idle components
    (:func:`idle_components`), drawn at random, restart
    (:func:`.restart.restart_components`: the typical variance of the
    components in use, the prior statistics and the rows of this batch they
    would take) on rows picked
    by :func:`pick_far_rows`, plus ``noise``. Components that once
    received data keep their statistics (tail modes) until they are idle
    again. Logs ``reseeded``.

    Args:
        rate (float): Idle components re-seeded per batch row, in (0, 1].
        start (int | float): First update that may re-seed (an int >= 0, or
            a fraction of training). Defaults to 0.
        keep_apart (float): Rows within this distance of a mean in use are
            not picked (merging's ``merge_within``). Defaults to 0.
        noise (float): Expected norm of the noise added to a picked row.
            Defaults to 0.01 (the mixture passes its ``init_noise``).
    """

    def __init__(self, rate: float, start: Union[int, float] = 0,
                 keep_apart: float = 0.0, noise: float = 0.01) -> None:
        check_number('reseed_rate', rate, 0.0, 1.0,
                     '[0, 1] (idle components re-seeded per batch row; '
                     '0 = off)')
        self.rate = float(rate)
        self._start = check_schedule('reseed_start', start)
        self.start: Optional[int] = updates_of(start, None)
        self.gap = gap_of(keep_apart)
        self.noise = float(noise)

    def set_training_length(self, updates: int) -> None:
        self.start = updates_of(self._start, updates)

    def unresolved(self) -> Dict[str, object]:
        return {} if self.start is not None else dict(reseed_start=self._start)

    def after_m_step(self, gmm, step: UpdateStep) -> Dict[str, float]:
        moved = step.x.new_zeros(0, dtype=torch.long)
        if step.update >= self.start:
            moved = self.reseed(gmm, step.x, step.generator, step.estep.fit)
        if moved.numel():
            step.moved.append(moved)
        return dict(reseeded=float(moved.numel()))

    def reseed(self, gmm, x: Tensor, gen: torch.Generator, fit) -> Tensor:
        """Re-seed now; returns the indices of the components moved
        ``(R,)``."""
        none = x.new_zeros(0, dtype=torch.long)
        idle = idle_components(gmm)
        count = min(reseed_count(self.rate, x.shape[0]), idle.numel())
        if count == 0:
            return none
        order = torch.randperm(idle.numel(), generator=gen, device=x.device)
        rows = pick_far_rows(x, count, gmm.mu, self.gap, gen, fit,
                             exclude=idle)
        if rows.numel() == 0:
            return none
        which = idle[order[:rows.numel()]]
        mu = with_noise(x[rows], self.noise, gen)
        restart_components(gmm, which, normalise_or_random(mu, gen), x,
                           fit)
        return which

    def __repr__(self) -> str:
        return (f'reseed_rate={self.rate:g} from update '
                f'{describe(self._start, self.start)}')
