"""Component maintenance: options of ours around the paper's online EM.

The EM core (:class:`~gmproto_mm.models.mixture.OnlineGaussianMixture`)
calls these pieces at fixed points of an update; each is off by default and
each is a rate relative to the rows seen or to ``K``, so the same value
serves ``K = 256`` and ``K = 65,536``:

* :func:`reseed_idle` (``reseed_rate``), after the M-step: idle components
  (no data since their (re)start) move onto the batch rows the mixture
  explains worst, far from every mean in use, at most
  ``ceil(reseed_rate * N)`` per update of ``N`` rows -- as scikit-learn's
  ``MiniBatchKMeans`` reassigns empty centres at a rate proportional to the
  samples seen, not a fixed count per step.
* :func:`stale_decay_factor` (``stale_decay``), in the forgetting step:
  components that stopped receiving data fade back to the prior count, so
  that they become idle and get re-seeded.
* :func:`merge_close` (``merge_within``), after the M-step: two means closer
  than ``merge_within`` merge (moment matching); the freed component
  restarts on a far batch row.

Cost per update of ``N`` rows, ``K`` components, ``D`` dimensions, on the
device that holds the state (no host-side ``(N, K)`` work, no ``(K, K)``
tensor); the E-step itself is ``O(N K D)``:

* re-seeding: ``O(C K D)`` for ``C = min(N, 4 R)`` candidate rows and
  ``R = ceil(reseed_rate * N)`` moves, plus ``O(R^2 D)`` for the picks;
* stale decay: ``O(K)`` (it scales the statistics the forgetting step
  scales anyway);
* merging: ``O(N)`` candidate pairs from the E-step's two most likely
  components per row (``O(N K)``, a top-2 over the rows it already
  computes), a sweep of ``ceil(N / 16)`` means against all ``K`` per update
  (``O(N K D / 16)``), and ``O(M K D)`` to re-check the ``M`` means a
  re-seed or merge moved (``M <= N``).

"No two means within ``merge_within``" holds after every update for the
pairs the update looks at: any pair that is some batch row's two most likely
components, any pair with a mean moved by a merge, re-seed or restart in the
update, and every pair of the sweep's block. The sweep visits every pair at
least once every ``ceil(K / ceil(N / 16))`` updates, so a pair that drifts
within ``merge_within`` without being any row's top two -- means no data
chooses between -- is merged within that many updates.
"""
import math
from typing import Optional

import torch
from torch import Tensor

from .initialisation import normalise_or_random

#: A component is idle while its count exceeds the prior count by less than
#: this many rows of responsibility mass (exact equality would be fragile:
#: in the annealed E-step far components get masses of ~1e-15).
IDLE_MASS = 0.5
#: Candidate rows drawn per re-seeded or restarted component.
CANDIDATES_PER_PICK = 4
#: Means compared with all ``K`` per update, as a fraction of the batch
#: rows (the sweep block is ``ceil(N / SWEEP_DIVISOR)`` means).
SWEEP_DIVISOR = 16
#: Merge passes per update (each merges disjoint pairs).
MERGE_ROUNDS = 8
#: Rows of similarities computed at once: at most ``(_BLOCK, K)``.
_BLOCK = 256  # 64 MB of fp32 similarities at K = 65,536


def reseed_count(rate: float, rows: int) -> int:
    """Components an update of ``rows`` rows may re-seed:
    ``ceil(rate * rows)`` (0 when the rate is 0)."""
    return math.ceil(rate * rows - 1e-9) if rate > 0 else 0


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


def idle_components(gmm) -> Tensor:
    """Indices ``(I,)`` of the components that received under
    :data:`IDLE_MASS` rows of responsibility since their (re)start."""
    return torch.nonzero(
        gmm.acc_count < gmm.prior_count + IDLE_MASS).squeeze(1)


def reseed_idle(gmm, x: Tensor, gen: torch.Generator, fit) -> Tensor:
    """Move idle components onto the batch rows the mixture explains worst.

    From update ``reseed_start`` on, up to ``ceil(reseed_rate * N)`` idle
    components, drawn at random, restart (``OnlineGaussianMixture._restart``:
    the typical variance of the components in use, the prior statistics and
    the rows of this batch they would take) on rows picked by
    :func:`pick_far_rows`, plus ``init_noise``. Components that once received data keep their
    statistics (tail modes) until they are idle again.

    Args:
        gmm (OnlineGaussianMixture): The mixture (changed in place).
        x (Tensor): Unit-norm batch ``(N, D)``.
        gen (torch.Generator): This update's generator, on ``x``'s device.
        fit (_RowFit): The E-step's per-row maximum and normaliser.

    Returns:
        Tensor: Indices of the components moved ``(R,)``.
    """
    none = x.new_zeros(0, dtype=torch.long)
    if not gmm.reseed_rate or int(gmm.num_updates) < gmm.reseed_start:
        return none
    idle = idle_components(gmm)
    count = min(reseed_count(gmm.reseed_rate, x.shape[0]), idle.numel())
    if count == 0:
        return none
    order = torch.randperm(idle.numel(), generator=gen, device=x.device)
    rows = pick_far_rows(x, count, gmm, gen, fit, exclude=idle)
    if rows.numel() == 0:
        return none
    which = idle[order[:rows.numel()]]
    mu = x[rows]
    if gmm.init_noise > 0:
        mu = mu + torch.randn(mu.shape, generator=gen, device=x.device) * (
            gmm.init_noise / math.sqrt(gmm.dim))
    gmm._restart(which, normalise_or_random(mu, gen), x, fit)
    return which


def pick_far_rows(x: Tensor, count: int, gmm, gen: torch.Generator,
                  fit, exclude: Optional[Tensor] = None) -> Tensor:
    """Up to ``count`` rows of ``x`` for restarted components.

    Candidates are the ``C = min(N, 4 count)`` rows the mixture explains
    worst (lowest ``fit``, from the E-step: free). ``count`` of them are
    drawn without replacement with probability proportional to
    ``1 - max cos`` to the means in use (all but ``exclude``: the idle
    components and those being restarted), so restarts go where the batch
    is least covered; candidates within ``merge_within`` (``1 - cos <=
    gmm.merge_gap``) of such a mean are never drawn, and a draw that close
    to an earlier draw is dropped. ``O(C K D + count^2 D)``, with a fixed
    number of host synchronisations.

    Args:
        x (Tensor): Unit-norm rows ``(N, D)``.
        count (int): Rows wanted.
        gmm (OnlineGaussianMixture): The mixture (read only).
        gen (torch.Generator): Generator on ``x``'s device.
        fit (_RowFit): The E-step's per-row maximum and normaliser.
        exclude (Tensor, optional): Component indices ``(E,)`` that do not
            count as covering.

    Returns:
        Tensor: Indices into ``x`` ``(<= count,)``, fewer when too few
        candidates are far enough.
    """
    n, min_gap = x.shape[0], gmm.merge_gap
    cand = torch.topk(fit.fit, min(n, CANDIDATES_PER_PICK * count),
                      largest=False, sorted=True).indices
    nearest = max_cosine(x[cand], gmm.mu, exclude)
    weight = torch.nn.functional.threshold(1.0 - nearest.double(), min_gap,
                                           0.0)
    draws = min(count, int((weight > 0).sum()))
    if draws == 0:
        return cand[:0]
    picked = cand[torch.multinomial(weight, draws, replacement=False,
                                    generator=gen)]
    rows = x[picked]
    near = (1.0 - (rows @ rows.T).double()) <= min_gap
    return picked[~torch.triu(near, diagonal=1).any(dim=0)]


def max_cosine(rows: Tensor, means: Tensor,
               exclude: Optional[Tensor] = None) -> Tensor:
    """``max_k cos(rows_n, means_k)`` over the means not in ``exclude``,
    ``(R,)``, in blocks of at most ``(256, K)``; ``-1`` when every mean is
    excluded."""
    out = []
    for start in range(0, rows.shape[0], _BLOCK):
        sim = rows[start:start + _BLOCK] @ means.T
        if exclude is not None and exclude.numel():
            sim[:, exclude] = -1.0
        out.append(sim.amax(dim=1) if sim.shape[1] else
                   sim.new_full((sim.shape[0], ), -1.0))
    return torch.cat(out) if out else rows.new_zeros(0)


def merge_close(gmm, x: Tensor, gen: torch.Generator, fit,
                top2: Optional[Tensor],
                moved: Optional[Tensor] = None) -> int:
    """Merge means closer than ``merge_within``; restart the freed ones.

    Candidate pairs: the rows' two most likely components (``top2``, from
    the E-step), the means ``moved`` by this update's re-seeding and this
    update's sweep block, each against all means; pairs are decided on
    float64 distances (as the collapse metric). Disjoint pairs merge
    closest first: the lighter component's statistics are added to the
    heavier one's (moment matching, the merge move of split-and-merge EM),
    and the freed component restarts on a batch row at least
    ``merge_within`` from every mean in use (:func:`pick_far_rows`; a random
    direction if none is left). The means moved are then compared with all
    means, and merged again, for at most :data:`MERGE_ROUNDS` passes. See
    the module docstring for the cost and the guarantee.

    Args:
        gmm (OnlineGaussianMixture): The mixture (changed in place).
        x (Tensor): Unit-norm batch ``(N, D)``.
        gen (torch.Generator): This update's generator, on ``x``'s device.
        fit (_RowFit): The E-step's per-row maximum and normaliser.
        top2 (Tensor, optional): ``(N, 2)`` component indices per row.
        moved (Tensor, optional): Components re-seeded in this update.

    Returns:
        int: How many components were merged away (and restarted).
    """
    mu = gmm.mu
    check = sweep_block(int(gmm.num_updates), mu.shape[0], x.shape[0])
    if moved is not None and moved.numel():
        check = torch.cat([check.to(mu.device), moved])
    candidates = [pairs_near(mu, check, gmm.merge_gap)]
    if top2 is not None and top2.shape[1] == 2:
        candidates.append(top2)
    total = 0
    for _ in range(MERGE_ROUNDS):
        pairs = close_pairs(mu, torch.cat(candidates), gmm.merge_within)
        if pairs.numel() == 0:
            break
        keep, drop = disjoint_merges(pairs, gmm.acc_count)
        for acc in (gmm.acc_count, gmm.acc_sum, gmm.acc_sq_sum):
            acc[keep] += acc[drop]
        gmm._m_step_rows(keep)
        exclude = torch.cat([idle_components(gmm), drop]).unique()
        rows = pick_far_rows(x, drop.numel(), gmm, gen, fit, exclude)
        restart = torch.cat([
            x[rows],
            torch.randn(drop.numel() - rows.numel(), gmm.dim, generator=gen,
                        device=x.device)
        ])
        gmm._restart(drop, normalise_or_random(restart, gen), x, fit)
        total += drop.numel()
        candidates = [pairs_near(mu, torch.cat([keep, drop]), gmm.merge_gap)]
    return total


def sweep_block(update: int, num_components: int, rows: int) -> Tensor:
    """Indices of the means this update compares with all others: block
    ``update mod B`` of ``B = ceil(K / S)`` blocks of ``S = ceil(rows /
    16)`` means, so every pair is visited once every ``B`` updates."""
    size = min(num_components, -(-rows // SWEEP_DIVISOR))
    blocks = -(-num_components // size)
    start = (update % blocks) * size
    return torch.arange(start, min(start + size, num_components))


def pairs_near(means: Tensor, which: Tensor, gap: float) -> Tensor:
    """Candidate pairs ``(P, 2)``: means ``which`` against all means whose
    fp32 cosine exceeds ``1 - gap`` minus a rounding margin (a superset of
    the pairs within the distance; :func:`close_pairs` decides exactly).
    ``O(|which| K D)`` in blocks of at most ``(256, K)``."""
    which = which.to(means.device)
    # |fp32 dot - exact| of two unit vectors of length D is below
    # (D + 2) * eps / 2 (Higham's gamma_n); four times that as margin
    margin = 2.0 * (means.shape[1] + 4) * torch.finfo(means.dtype).eps
    cut = 1.0 - gap - margin
    found = []
    for start in range(0, which.numel(), _BLOCK):
        rows = which[start:start + _BLOCK]
        i, j = torch.nonzero(means[rows] @ means.T > cut, as_tuple=True)
        i = rows[i]
        found.append(torch.stack([i, j], dim=1)[i != j])
    return torch.cat(found) if found else which.new_zeros((0, 2))


def close_pairs(means: Tensor, candidates: Tensor,
                within: float) -> Tensor:
    """The distinct candidate pairs whose float64 distance (of
    float64-normalised means, as the collapse metric) is below ``within``,
    ``(P, 2)`` with ``i < j``, closest first. ``O(P D)``."""
    if candidates.numel() == 0:
        return candidates.new_zeros((0, 2))
    pairs = torch.unique(torch.sort(candidates, dim=1).values, dim=0)
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    a, b = (torch.nn.functional.normalize(means[pairs[:, c]].double(), dim=1)
            for c in (0, 1))
    dist = torch.linalg.vector_norm(a - b, dim=1)
    close = dist < within
    order = torch.argsort(dist[close], stable=True)
    return pairs[close][order]


def disjoint_merges(pairs: Tensor, count: Tensor):
    """Greedy disjoint pairs, in the given order: ``(keep, drop)`` index
    tensors, the heavier component of each pair kept (the first on ties).
    ``O(P)`` on the host, for the ``P`` close pairs only."""
    taken, keep, drop = set(), [], []
    weight = count[pairs].tolist()
    for (i, j), (ci, cj) in zip(pairs.tolist(), weight):
        if i in taken or j in taken:
            continue
        taken.update((i, j))
        keep.append(j if cj > ci else i)
        drop.append(i if cj > ci else j)
    device = pairs.device
    return (torch.tensor(keep, dtype=torch.long, device=device),
            torch.tensor(drop, dtype=torch.long, device=device))
