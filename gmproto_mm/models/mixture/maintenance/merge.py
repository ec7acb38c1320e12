"""Merging of close means (``merge_within``), an option of ours: after the
M-step, two means closer than ``merge_within`` merge (moment matching); the
freed component restarts on a far batch row.

Cost per update of ``N`` rows, ``K`` components, ``D`` dimensions, on the
device that holds the state (no host-side ``(N, K)`` work, no ``(K, K)``
tensor); the E-step itself is ``O(N K D)``:

* merging: at most ``C = N + ceil(N / 16) + ceil(N / 8) + ceil(N / 4) +
  R`` candidate pairs per round (``N`` more in round 1 while means were
  never checked), decided in float64 (``O(C D)``). Round 1: the E-step's
  two most likely components per row (a top-2 over the rows it already
  computes) and, each with its nearest other mean (``O(7 N K D / 16)``,
  about 0.44 of one logits matmul), each mean of the sweep block
  (``ceil(N / 16)`` means), of the ``ceil(N / 8)`` most overdrawn ones,
  of ``ceil(N / 4)`` overdrawn ones in turn (below) and of the ``R``
  re-seeded ones; ``O(K D)`` for how far each mean moved. Each of at most
  :data:`MERGE_ROUNDS` more rounds: at most ``C`` means that moved or sit
  in a close pair left unmerged, against all ``K`` (``O(N K D)`` at worst),
  and the restarts of the merged ones (``O(N K D)`` at worst:
  :func:`pick_far_rows` and the restarted components' share of the batch).
  The bound holds in every geometry, a bank collapsed onto a few
  directions included; a normal update merges little and stops after
  round 1. While means were never checked (the first ``ceil(K / N)``
  updates: ``K`` rows), round 1 also checks up to ``N`` of them against
  all (``O(N K D)``), so that every mean has its room within the first
  ``K`` rows seen.

"No two means within ``merge_within``" is kept by a slack per mean
(``merge_slack``, a distance): a mean compared with all others gets the
room it has left, so that every two checked means ``a, b`` sit at least
``merge_within + s_a + s_b`` apart (a mean split the room with the means
checked beside it, and leaves the others theirs); each M-step takes from
it the distance the mean moved, so by the triangle inequality no pair of
means with slack left can have come within ``merge_within``. A new mean
has no room yet (:data:`UNCHECKED`): each update checks up to ``N`` of
those, the ones that moved farthest since they started first, so every
mean has its room once ``K`` rows were seen (with no room, its first move
would overdraw it; at ``K = 65,536`` with 128 rows per update,
21,000-32,000 means once ended training overdrawn that way; checked in
index order instead, means that moved before their turn came within 0.1
of each other while the annealed E-step still moved many). A
mean whose slack ran out (``s < 0``: it moved more than its room or was
moved by a merge or restart) is overdrawn; each update checks, besides the
rows' top-two pairs and the re-seeded means, the ``ceil(N / 8)`` most
overdrawn (the means that receive data, which overdraw again after most
updates, the soonest) and ``ceil(N / 4)`` overdrawn means in turn
(:func:`in_turn`), so a mean that drifts slowly, and never ranks among the
most overdrawn, waits at most ``|overdrawn| / ceil(N / 4)`` updates (at
``K = 65,536`` and 128 rows per update, ~1,900 overdrawn: ~60 updates;
with the sweep alone it waited up to 8,192). The sweep's block visits
every mean once every ``ceil(K / ceil(N / 16))`` updates, whatever its
slack: the fallback for means whose slack does not describe them (edited
by hand). The slack catches means that no data
visits drifting together slowly (on the annealed E-step's tiny
responsibilities: no row's second choice, never among one update's
largest moves). An update that runs out of rounds reports the close
pairs its last check still found (``merge_unresolved``). Distances are
fp32 with the rounding margin of the collapse metric taken off, so the
slack errs on the safe side.
"""
import math
from typing import Dict, NamedTuple, Optional, Tuple

import torch
from torch import Tensor

from ....precision import cosine_margin, unit_rows64
from .. import numerics as nm
from ..initialisation import normalise_or_random
from ..options import check_number
from .base import MIXTURE_STRATEGIES, UNCHECKED, MixtureStrategy, UpdateStep
from .reseed import gap_of, idle_components, pick_far_rows
from .restart import restart_components

#: Means compared with all ``K`` per update, as a fraction of the batch
#: rows (the sweep block is ``ceil(N / SWEEP_DIVISOR)`` means).
SWEEP_DIVISOR = 16
#: Most overdrawn means (moved more than their slack) that merging checks
#: per update, as a fraction of the batch rows (``ceil(N / 8)``) ...
OVERDRAWN_DIVISOR = 8
#: ... and overdrawn means checked in turn (``ceil(N / 4)``).
IN_TURN_DIVISOR = 4
#: Slack of a mean moved by a merge or a restart: checked first.
MOVED = -2.0
#: Merge passes per update (each merges disjoint pairs).
MERGE_ROUNDS = 8
#: Candidate pairs decided at once: two (PAIRS, D) float64 blocks.
PAIRS = 8192  # 32 MB at D = 256


class MergeResult(NamedTuple):
    """What :func:`merge_close` did in one update."""
    #: Components merged away (and restarted).
    merged: int
    #: Close pairs its last check still found after :data:`MERGE_ROUNDS`
    #: rounds, plus means that moved but found no room in a round's check
    #: (0 when every mean it checked ended ``merge_within`` from the others).
    unresolved: int
    #: Means with no slack left after the update (below 0: overdrawn, or
    #: never checked).
    overdrawn: int


@MIXTURE_STRATEGIES.register_module()
class MergeClose(MixtureStrategy):
    """Merge means closer than ``within`` and restart the freed ones
    (:meth:`merge`, the module docstring states the guarantee and its
    cost). Logs ``merged``, ``merge_unresolved`` and ``merge_overdrawn``.

    Args:
        within (float): A distance between unit vectors, in (0, 2) (the
            collapse metric's ``eps``).
    """

    needs_top2 = True
    needs_shift = True

    def __init__(self, within: float) -> None:
        check_number('merge_within', within, 0.0, 2.0,
                     '[0, 2) (a distance between unit vectors; 0 = off)',
                     high_open=True)
        self.within = float(within)
        self.gap = gap_of(self.within)

    def after_m_step(self, gmm, step: UpdateStep) -> Dict[str, float]:
        moved = torch.cat(step.moved) if step.moved else None
        result = self.merge(gmm, step.x, step.generator, step.estep.fit,
                            step.estep.top2, moved, step.shift)
        return dict(merged=float(result.merged),
                    merge_unresolved=float(result.unresolved),
                    merge_overdrawn=float(result.overdrawn))

    def merge(self, gmm, x: Tensor, gen: torch.Generator, fit,
              top2: Optional[Tensor], moved: Optional[Tensor] = None,
              shift: Optional[Tensor] = None) -> MergeResult:
        """Merge means closer than ``merge_within``; restart the freed ones.

        First takes from each mean's slack (the mixture's ``merge_slack``)
        the distance it moved in the M-step (``shift``). Round 1 checks up
        to ``N`` means never checked (:func:`never_checked`: the farthest
        moved, until ``K`` rows were seen), the rows' two most likely
        components (``top2``, from the E-step), and each mean of this
        update's sweep block, of ``moved`` (this update's re-seeds), of the
        ``ceil(N / 8)`` most overdrawn means (:func:`overdrawn`) and of
        ``ceil(N / 4)`` overdrawn means in turn (:func:`in_turn`) against its
        nearest other mean (:func:`nearest_pairs`, which also gives each mean
        it checks its new slack); pairs are decided on float64 distances (as
        the collapse metric). The greedy disjoint set of close pairs, closest
        first (:func:`disjoint_merges`), merges: the lighter component's
        statistics are added to the heavier one's (moment matching, the merge
        move of split-and-merge EM), and the freed component restarts on a
        batch row at least ``merge_within`` from every mean in use
        (:func:`pick_far_rows`; a random direction if none is left); both are
        overdrawn (:data:`MOVED`) until checked. Each next round checks the
        means that moved and the ends of the close pairs left unmerged -- at
        most ``C = N +`` round 1's means other than the never-checked
        ones, the lowest indices first --
        for at most :data:`MERGE_ROUNDS` rounds; what is left is returned as
        ``unresolved`` (the update logs it; those means stay overdrawn, so the
        next updates check them first).

        Cost per round, whatever the geometry (a bank collapsed onto a few
        directions included): at most ``C`` candidate pairs (``O(C D)``
        float64), ``O(C K D)`` for the nearest means and slack of those
        checked, and the restarts (see the module docstring); ``O(K)`` to pick
        the overdrawn means.

        Args:
            gmm (OnlineGaussianMixture): The mixture (changed in place).
            x (Tensor): Unit-norm batch ``(N, D)``.
            gen (torch.Generator): This update's generator, on ``x``'s device.
            fit (_RowFit): The E-step's per-row maximum and normaliser.
            top2 (Tensor, optional): ``(N, 2)`` component indices per row.
            moved (Tensor, optional): Components re-seeded in this update.
            shift (Tensor, optional): ``(K,)`` how far each mean moved in the
                M-step (Euclidean distance of the unit-norm means).

        Returns:
            MergeResult: Components merged away, close pairs left.
        """
        mu, slack = gmm.mu, gmm.merge_slack
        update = int(gmm.num_updates)
        if shift is not None:
            slack.sub_(shift)
        rows = x.shape[0]
        check = [
            sweep_block(update, mu.shape[0], rows).to(mu.device),
            overdrawn(slack, -(-rows // OVERDRAWN_DIVISOR)),
            in_turn(slack, -(-rows // IN_TURN_DIVISOR), update)
        ]
        if moved is not None and moved.numel():
            check.append(moved)
        limit = torch.cat(check).unique().numel() + x.shape[0]  # later
        check = torch.cat(check + [never_checked(slack, x.shape[0])]).unique()
        candidates = [nearest_pairs(mu, check, self.gap, slack)]
        if top2 is not None and top2.shape[1] == 2:
            candidates.append(top2)
        total, unchecked = 0, 0
        for round_ in range(MERGE_ROUNDS + 1):
            pairs = close_pairs(mu, torch.cat(candidates), self.within)
            if pairs.numel() == 0 or round_ == MERGE_ROUNDS:
                return MergeResult(total, pairs.shape[0] + unchecked,
                                   int((slack < 0).sum()))
            keep, drop = disjoint_merges(pairs, gmm.acc_count)
            gmm.absorb_into(keep, drop)
            exclude = torch.cat([idle_components(gmm), drop]).unique()
            rows = pick_far_rows(x, drop.numel(), mu, self.gap, gen, fit,
                                 exclude)
            restart = torch.cat([
                x[rows],
                torch.randn(drop.numel() - rows.numel(), mu.shape[1],
                            generator=gen, device=x.device)
            ])
            restart_components(gmm, drop, normalise_or_random(restart, gen),
                               x, fit)
            slack[keep], slack[drop] = MOVED, MOVED
            total += drop.numel()
            # the merged means moved; the other ends of close pairs left
            # unmerged may have lost their nearest: every end is checked
            check = pairs.flatten().unique()
            unchecked += max(0, check.numel() - limit)
            candidates = [nearest_pairs(mu, check[:limit], self.gap, slack)]
        raise AssertionError('unreachable')  # the last round returns

    def __repr__(self) -> str:
        return f'merge_within={self.within}'


def overdrawn(slack: Tensor, count: int) -> Tensor:
    """Indices of the (at most) ``count`` means whose slack ``(K,)`` is
    lowest, among those below 0 (moved more than their room) and checked
    before (above :data:`UNCHECKED`). ``O(K)``."""
    debt = torch.where(owing(slack), slack.neg(), 0.0)
    top = torch.topk(debt, min(count, slack.numel()))
    return top.indices[top.values > 0]


def owing(slack: Tensor) -> Tensor:
    """``(K,)`` mask of the overdrawn means: slack below 0 (moved more than
    their room) and above :data:`UNCHECKED` (checked before). ``O(K)``."""
    return (slack < 0) & (slack > UNCHECKED)


def in_turn(slack: Tensor, count: int, update: int) -> Tensor:
    """Up to ``count`` overdrawn means (slack ``(K,)`` below 0, above
    :data:`UNCHECKED`) in turn: the overdrawn means in index order, from
    position ``update * count`` (modulo their number) on, wrapping. While
    their number stays near ``M``, a mean that stays overdrawn is checked
    within about ``M / count`` updates; stateless, so a resumed run
    continues bit for bit. ``O(K)``."""
    indices = torch.nonzero(owing(slack)).squeeze(1)
    if indices.numel() <= count:
        return indices
    return indices.roll(-((update * count) % indices.numel()))[:count]


def never_checked(slack: Tensor, count: int) -> Tensor:
    """Indices of the (at most) ``count`` means never checked (slack at
    or below :data:`UNCHECKED`), those that moved farthest since they
    started first. ``O(K)``."""
    top = torch.topk(slack.neg(), min(count, slack.numel()))
    return top.indices[top.values >= -UNCHECKED]


def sweep_block(update: int, num_components: int, rows: int) -> Tensor:
    """Indices of the means this update compares with all others: block
    ``update mod B`` of ``B = ceil(K / S)`` blocks of ``S = ceil(rows /
    16)`` means, so every pair is visited once every ``B`` updates."""
    size = min(num_components, -(-rows // SWEEP_DIVISOR))
    blocks = -(-num_components // size)
    start = (update % blocks) * size
    return torch.arange(start, min(start + size, num_components))


def nearest_pairs(means: Tensor, which: Tensor, gap: float,
                  slack: Optional[Tensor] = None) -> Tensor:
    """Each mean of ``which`` with its nearest other mean, where the two
    may lie within ``1 - cos <= gap``: candidate pairs ``(P, 2)``, ``P <=
    |which|``, one per mean, so the count is bounded whatever the
    geometry. Screened with fp32 cosines in blocks of at most ``(256,
    K)``; a mean whose fp32-nearest partner sits within the rounding margin
    of the cut gets its float64-nearest partner instead, so that "no
    candidate pair is close" (decided by :func:`close_pairs`) means
    exactly "every mean of ``which`` is farther than ``merge_within`` from
    all others". With ``slack`` (``(K,)``, changed in place), each mean of
    ``which`` gets its new slack from the same similarities
    (:func:`_room_left`). ``O(|which| K D)``."""
    which = which.to(means.device)
    num = means.shape[0]
    if num < 2 or which.numel() == 0:
        return which.new_zeros((0, 2))
    margin = cosine_margin(means.shape[1], means.dtype)
    cut = 1.0 - gap
    if slack is not None:
        others = slack.clamp(min=0.0)
        others[which] = -math.inf  # checked together: see _room_left
    best, partner, room = [], [], []
    for block, sim in nm.similarity_blocks(means[which], means):
        rows = which[block]
        sim[torch.arange(rows.numel(), device=sim.device), rows] = -3.0
        value, index = sim.max(dim=1)
        best.append(value)
        partner.append(index)
        if slack is not None:
            room.append(_room_left(sim, which, others, math.sqrt(2.0 * gap),
                                   margin))
    best, partner = torch.cat(best), torch.cat(partner)
    if slack is not None:
        slack[which] = torch.cat(room)
    band = (best > cut - margin) & (best <= cut + margin)
    if bool(band.any()):
        partner[band] = _nearest64(means, which[band])
    near = best > cut - margin
    return torch.stack([which[near], partner[near]], dim=1)


def _room_left(sim: Tensor, which: Tensor, others: Tensor, within: float,
               margin: float) -> Tensor:
    """Slack ``(R,)`` of ``R`` means checked together (``which``) from their
    cosines ``sim`` ``(R, K)`` to all means (overwritten; the own column at
    -3): ``s_i = min(min_{j in which} (d_ij - within) / 2, min_{j not in
    which} (d_ij - within - others_j))`` with ``others`` the others' slack
    (0 where overdrawn, ``-inf`` on ``which``), so that ``d_ij >= within +
    s_i + s_j`` for every pair. ``d`` is a lower bound: the fp32 cosine
    rounding ``margin`` is added first. ``O(R K)``."""
    excess = sim.add_(margin).clamp_(max=1.0).mul_(-2.0).add_(2.0).sqrt_()
    excess.sub_(within)
    together = excess[:, which].mul_(0.5).amin(dim=1)
    return torch.minimum(excess.sub_(others).amin(dim=1), together)


def _nearest64(means: Tensor, which: Tensor) -> Tensor:
    """``(len(which),)`` index of each mean's nearest other mean by the
    float64 cosine of the means as float64 unit vectors (:func:`~gmproto_mm.
    precision.unit_rows64`); ``O(|which| K D)`` in float64, over bank
    blocks of at most ``32 * BLOCK`` means."""
    rows = unit_rows64(means[which])
    best = rows.new_full((which.numel(), ), -3.0)
    index = torch.zeros_like(which)
    step = nm.BLOCK * 32
    for start in range(0, means.shape[0], step):
        block = unit_rows64(means[start:start + step])
        sim = rows @ block.T
        own = (which >= start) & (which < start + block.shape[0])
        sim[own.nonzero().squeeze(1), which[own] - start] = -3.0
        value, arg = sim.max(dim=1)
        better = value > best
        best = torch.where(better, value, best)
        index = torch.where(better, arg + start, index)
    return index


def close_pairs(means: Tensor, candidates: Tensor,
                within: float) -> Tensor:
    """The distinct candidate pairs whose float64 distance
    (:func:`pair_distances`, as the collapse metric) is below ``within``,
    ``(P, 2)`` with ``i < j``, closest first. ``O(P D)``, in blocks of
    ``PAIRS`` pairs."""
    if candidates.numel() == 0:
        return candidates.new_zeros((0, 2))
    pairs = torch.unique(torch.sort(candidates, dim=1).values, dim=0)
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    dist = torch.cat([pair_distances(means, pairs[start:start + PAIRS])
                      for start in range(0, pairs.shape[0], PAIRS)]) \
        if pairs.numel() else means.new_zeros(0, dtype=torch.float64)
    close = dist < within
    order = torch.argsort(dist[close], stable=True)
    return pairs[close][order]


def pair_distances(means: Tensor, pairs: Tensor) -> Tensor:
    """``(P,)`` float64 distances of the means of each pair ``(P, 2)``, as
    unit vectors in float64 (:func:`~gmproto_mm.precision.unit_rows64`,
    the collapse metric's decision). ``O(P D)``."""
    a, b = (unit_rows64(means[pairs[:, c]]) for c in (0, 1))
    return torch.linalg.vector_norm(a - b, dim=1)


def disjoint_merges(pairs: Tensor, count: Tensor) -> Tuple[Tensor, Tensor]:
    """Greedy disjoint pairs, in the given order (closest first): ``(keep,
    drop)`` index tensors, the heavier component of each pair kept (the
    first on ties), in pair order.

    The greedy set is built without a Python loop over pairs: every round
    takes the pairs that come first at both their ends among the pairs
    still open (they are in the greedy set: nothing earlier touches
    them), then closes the pairs that touch a taken mean. ``O(P)`` per
    round on the device, for the ``P`` close pairs; the rounds stop when
    no pair is open (one round when no two close pairs share a mean).
    """
    num = pairs.shape[0]
    nodes, ends = torch.unique(pairs, return_inverse=True)  # ends (P, 2)
    rank = torch.arange(num, device=pairs.device)
    open_ = torch.ones(num, dtype=torch.bool, device=pairs.device)
    chosen = torch.zeros_like(open_)
    while bool(open_.any()):
        first = torch.full((nodes.numel(), ), num, device=pairs.device)
        open_rank = torch.where(open_, rank, num)
        first.scatter_reduce_(0, ends.flatten(),
                              open_rank.repeat_interleave(2), reduce='amin')
        taken_now = open_ & (first[ends] == rank.unsqueeze(1)).all(dim=1)
        chosen |= taken_now
        taken = torch.zeros(nodes.numel(), dtype=torch.bool,
                            device=pairs.device)
        taken[ends[taken_now].flatten()] = True
        open_ &= ~taken[ends].any(dim=1)
    pairs = pairs[chosen]
    heavier_second = count[pairs[:, 1]] > count[pairs[:, 0]]
    keep = torch.where(heavier_second, pairs[:, 1], pairs[:, 0])
    drop = torch.where(heavier_second, pairs[:, 0], pairs[:, 1])
    return keep, drop
