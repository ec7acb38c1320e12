"""Pure-math measures of prototype collapse (no MMEngine dependency).

Implements the "Measuring collapse" protocol of the method: prototype rows are
L2-normalised, and two prototypes are duplicates at ``eps`` when
``||w_i - w_j|| < eps`` (equivalently ``cos(w_i, w_j) > 1 - eps**2 / 2``).

* :func:`prototype_diversity` -- unique-prototype percentage (greedy leaders
  in index order) and the number of connected components of the eps-graph,
  exact, blockwise (never a ``(K, K)`` matrix), for several ``eps`` at once.
* :func:`nearest_neighbour_cosine` -- each prototype's highest cosine to any
  other prototype, for histograms.
* :func:`prototype_usage` / :func:`usage_perplexity` -- how many prototypes
  are some sample's argmax, the perplexity of those argmax counts and of
  the mean (soft) assignment.

Exactness: similarities are screened with a float32 matmul (float64 on
non-CPU devices or when reduced-precision float32 matmuls are enabled), using
a rigorous rounding-error margin; every pair whose similarity falls inside that
margin around a threshold is decided by the float64 distance
``torch.linalg.vector_norm(w_i - w_j) < eps`` of the float64-normalised rows.
Results therefore equal a brute-force float64 distance computation.

Reference: decoupled Gaussian-mixture prototypes,
https://arxiv.org/abs/2510.20108
"""
import math
from typing import Dict, Generator, List, Optional, Sequence, Union

import numpy as np
import torch
from torch import Tensor

from ...precision import cosine_margin, fp32_matmuls_are_ieee, unit_rows64

ArrayLike = Union[Tensor, np.ndarray]

#: The thresholds of the "Measuring collapse" protocol.
DEFAULT_THRESHOLDS = (0.025, 0.05, 0.1, 0.25, 0.5)

# Pairs decided by a float64 distance are processed in chunks of this size.
_REFINE_CHUNK = 1 << 15
# Component edges are unioned as an explicit edge list up to this count;
# denser tiles use Boruvka-style rounds (one edge per row and per column).
_EDGE_LIST_LIMIT = 1 << 20


# --------------------------------------------------------------------------
# validation helpers
# --------------------------------------------------------------------------
def _as_tensor(x: ArrayLike, name: str) -> Tensor:
    """Turn a tensor / array / nested sequence into a detached tensor."""
    if isinstance(x, Tensor):
        t = x.detach()
    else:
        try:
            t = torch.as_tensor(np.asarray(x))
        except (TypeError, ValueError) as err:
            raise ValueError(
                f'{name} must be a torch.Tensor or numpy array, got '
                f'{type(x).__name__} ({err})') from err
    if t.is_complex():
        raise ValueError(f'{name} must be real-valued, got dtype {t.dtype}')
    return t


def _first_rows(mask: Tensor, limit: int = 5) -> List[int]:
    return mask.nonzero().flatten()[:limit].tolist()


def _normalized_rows(prototypes: ArrayLike) -> Tensor:
    """Validate a ``(K, D)`` bank and return its rows normalised, float64."""
    x = _as_tensor(prototypes, 'prototypes')
    if x.dim() != 2:
        raise ValueError(
            'prototypes must be a 2-D (K, D) matrix (one prototype per row), '
            f'got shape {tuple(x.shape)}')
    k, d = x.shape
    if k == 0 or d == 0:
        raise ValueError(
            f'prototypes is empty (shape {tuple(x.shape)}); need K >= 1 '
            'prototypes of dimension D >= 1')
    bad = ~torch.isfinite(x).all(dim=1)
    if bad.any():
        raise ValueError(
            f'prototypes contain {int(bad.sum())} rows with non-finite values '
            f'(NaN/Inf), e.g. rows {_first_rows(bad)}; the model diverged or '
            'the checkpoint is corrupt')
    zero = ~(x != 0).any(dim=1)
    if zero.any():
        raise ValueError(
            f'prototypes contain {int(zero.sum())} zero-norm rows, e.g. rows '
            f'{_first_rows(zero)}; a zero row has no direction -- drop those '
            'rows before measuring diversity')
    return unit_rows64(x)


def _check_thresholds(
        thresholds: Union[Sequence[float], float]) -> List[float]:
    if isinstance(thresholds, (int, float)):
        thresholds = [thresholds]
    eps = [float(e) for e in thresholds]
    if not eps:
        raise ValueError('thresholds is empty; pass e.g. (0.025, 0.05, 0.1)')
    bad = [e for e in eps if not (math.isfinite(e) and e > 0)]
    if bad:
        raise ValueError(
            f'thresholds must be positive finite distances, got {bad}')
    return eps


def _check_block_size(block_size: int) -> int:
    if int(block_size) != block_size or block_size < 1:
        raise ValueError(
            f'block_size must be a positive integer, got {block_size!r}')
    return int(block_size)


def _similarity_dtype(device: torch.device) -> torch.dtype:
    """float32 where its matmul is IEEE (CPU, highest precision), else fp64.

    TF32 / bf16 float32 matmuls would make the error margin useless.
    """
    if device.type != 'cpu' or not fp32_matmuls_are_ieee(device):
        return torch.float64
    return torch.float32


# --------------------------------------------------------------------------
# vectorised union-find (parent pointers are kept fully compressed)
# --------------------------------------------------------------------------
def _compress(parent: Tensor) -> None:
    """Pointer jumping until every entry points at its root (in place)."""
    while True:
        grand = parent[parent]
        if torch.equal(grand, parent):
            return
        parent.copy_(grand)


def _union(parent: Tensor, u: Tensor, v: Tensor) -> None:
    """Union the pairs ``(u[i], v[i])``; hooks larger roots onto smaller."""
    while u.numel():
        ru, rv = parent[u], parent[v]
        differ = ru != rv
        if not differ.any():
            return
        ru, rv = ru[differ], rv[differ]
        hi, lo = torch.maximum(ru, rv), torch.minimum(ru, rv)
        parent.scatter_reduce_(0, hi, lo, reduce='amin')
        _compress(parent)
        u, v = ru, rv


# --------------------------------------------------------------------------
# the eps-graph, tile by tile
# --------------------------------------------------------------------------
class _Threshold:
    """Per-threshold state: greedy leaders and the union-find forest (the
    forest only with ``components``: leaders alone need none of it)."""

    def __init__(self, eps: float, num: int, device: torch.device,
                 margin: float, components: bool = True) -> None:
        self.eps = eps
        self.cut = 1.0 - eps * eps / 2.0
        self.hi = self.cut + margin  # above: an edge for sure
        self.lo = self.cut - margin  # at or below: no edge for sure
        self.kept = torch.zeros(num, dtype=torch.bool, device=device)
        self.components = components
        self.parent = torch.arange(num, device=device) if components \
            else None

    def single_root(self, *spans: slice) -> bool:
        """Whether the spans already form one component (always, when
        components are not tracked: nothing is left to join)."""
        if not self.components:
            return True
        roots = torch.cat([self.parent[s] for s in spans])
        return bool((roots == roots[0]).all())

    def union(self, u: Tensor, v: Tensor) -> None:
        """Join the pairs ``(u[i], v[i])`` (when tracking components)."""
        if self.components:
            _union(self.parent, u, v)


def _refine(x64: Tensor, gi: Tensor, gj: Tensor, eps: float) -> Tensor:
    """Exact decision ``||x_i - x_j|| < eps`` for index pairs (float64)."""
    out = torch.empty(gi.numel(), dtype=torch.bool, device=x64.device)
    for s in range(0, gi.numel(), _REFINE_CHUNK):
        a = x64[gi[s:s + _REFINE_CHUNK]]
        b = x64[gj[s:s + _REFINE_CHUNK]]
        out[s:s + _REFINE_CHUNK] = torch.linalg.vector_norm(a - b, dim=1) < eps
    return out


def _refine_where(s: Tensor, gi: Tensor, gj: Tensor, th: _Threshold,
                  x64: Tensor) -> Tensor:
    """Exact adjacency of pairs with similarities ``s`` (any shape) and
    global indices ``gi``/``gj`` (same shape): sure above ``th.hi``, decided
    by the float64 distance inside the margin band."""
    adj = s > th.hi
    band = (s > th.lo) & ~adj
    if band.any():
        adj[band] = _refine(x64, gi[band], gj[band], th.eps)
    return adj


def _select(sim: Tensor, row_mask: Optional[Tensor],
            col_mask: Optional[Tensor]) -> Tensor:
    """``sim[row_mask][:, col_mask]``, copying as little as possible
    (``index_select`` is several times faster than boolean indexing)."""
    if row_mask is not None and not bool(row_mask.all()):
        sim = sim.index_select(0, row_mask.nonzero().flatten())
    if col_mask is not None and not bool(col_mask.all()):
        sim = sim.index_select(1, col_mask.nonzero().flatten())
    return sim


def _dense_adjacency(sim: Tensor, gi: Tensor, gj: Tensor, th: _Threshold,
                     x64: Tensor) -> Tensor:
    """Exact eps-adjacency of the tile ``gi x gj`` (similarities ``sim``)."""
    adj = sim > th.hi
    band = (sim > th.lo) & ~adj
    if band.any():
        bi, bj = band.nonzero(as_tuple=True)
        adj[bi, bj] = _refine(x64, gi[bi], gj[bj], th.eps)
    return adj


def _dense_components(th: _Threshold, sim: Tensor, gi: Tensor, gj: Tensor,
                      x64: Tensor) -> None:
    """Union every eps-edge of a dense tile whose endpoints differ in root."""
    while True:
        ri, rj = th.parent[gi], th.parent[gj]
        if bool((ri == ri[0]).all()) and bool((rj == ri[0]).all()):
            return
        differ = ri[:, None] != rj[None, :]
        sure = (sim > th.hi) & differ
        band = (sim > th.lo) & differ
        band &= ~sure
        us, vs = [], []
        if band.any():
            bi, bj = band.nonzero(as_tuple=True)
            ok = _refine(x64, gi[bi], gj[bj], th.eps)
            us.append(gi[bi[ok]])
            vs.append(gj[bj[ok]])
        if int(sure.sum()) <= _EDGE_LIST_LIMIT:
            si, sj = sure.nonzero(as_tuple=True)
            _union(th.parent, torch.cat(us + [gi[si]]),
                   torch.cat(vs + [gj[sj]]))
            return
        # Boruvka round: every row and column hooks one edge, so the number
        # of distinct roots touching this tile at least halves.
        rows = sure.any(dim=1).nonzero().flatten()
        cols = sure.any(dim=0).nonzero().flatten()
        us += [gi[rows], gi[sure[:, cols].to(torch.uint8).argmax(dim=0)]]
        vs += [gj[sure[rows].to(torch.uint8).argmax(dim=1)], gj[cols]]
        _union(th.parent, torch.cat(us), torch.cat(vs))


def _sparse_components(th: _Threshold, s: Tensor, gi: Tensor, gj: Tensor,
                       x64: Tensor) -> None:
    """Union the eps-edges among candidate pairs (edge-list form)."""
    m = (s > th.lo) & (th.parent[gi] != th.parent[gj])
    if m.any():
        gi, gj = gi[m], gj[m]
        ok = _refine_where(s[m], gi, gj, th, x64)
        _union(th.parent, gi[ok], gj[ok])


def _cover_by_leaders(th: _Threshold, cov: Tensor, i0: int, s: Tensor,
                      gi: Tensor, gj: Tensor, x64: Tensor) -> None:
    """Mark rows ``gi`` within eps of a kept leader ``gj`` as covered."""
    m = (s > th.lo) & ~cov[gi - i0] & th.kept[gj]
    if m.any():
        gi, gj = gi[m], gj[m]
        ok = _refine_where(s[m], gi, gj, th, x64)
        gi, gj = gi[ok], gj[ok]
        cov[gi - i0] = True
        th.union(gi, gj)


def _off_diagonal_pass(ths: List[_Threshold], covered: List[Tensor],
                       sim: Tensor, rows: Tensor, cols: Tensor, i0: int,
                       lead: List[bool], comp: List[bool], lo_all: float,
                       x64: Tensor) -> None:
    """Leader coverage and component edges of one off-diagonal tile."""
    row_max = sim.amax(dim=1)
    top = float(row_max.max())
    if top <= lo_all:
        return
    # Drop rows, then columns, without any similarity above lo_all.
    keep = row_max > lo_all
    if not bool(keep.all()):
        sim, rows = _select(sim, keep, None), rows[keep]
    keep = sim.amax(dim=0) > lo_all
    if not bool(keep.all()):
        sim, cols = _select(sim, None, keep), cols[keep]
    li, lj = (sim > lo_all).nonzero(as_tuple=True)
    if li.numel() <= _EDGE_LIST_LIMIT:  # sparse: work on the edge list
        s, gi, gj = sim[li, lj], rows[li], cols[lj]
        # Drop, once for all thresholds, edges that matter for none: rows
        # covered at every eps, between nodes already joined at the
        # smallest eps (its edges are edges at every larger eps, so any
        # larger-eps forest joins them too by the end).
        finest = min(ths, key=lambda th: th.eps)
        if any(comp):
            useful = finest.parent[gi] != finest.parent[gj]
        else:
            useful = torch.zeros_like(gi, dtype=torch.bool)
        uncovered = torch.zeros_like(covered[0])
        for cov, do_lead in zip(covered, lead):
            if do_lead:
                uncovered |= ~cov
        useful |= uncovered[gi - i0]
        if not bool(useful.any()):
            return
        s, gi, gj = s[useful], gi[useful], gj[useful]
        for th, cov, do_lead, do_comp in zip(ths, covered, lead, comp):
            if top <= th.lo:
                continue
            if do_lead:
                _cover_by_leaders(th, cov, i0, s, gi, gj, x64)
            if do_comp:
                _sparse_components(th, s, gi, gj, x64)
        return
    del li, lj
    for th, cov, do_lead, do_comp in zip(ths, covered, lead, comp):
        if top <= th.lo:
            continue
        if do_lead:
            unc, kc = ~cov[rows - i0], th.kept[cols]
            if unc.any() and kc.any():
                r, c = rows[unc], cols[kc]
                adj = _dense_adjacency(_select(sim, unc, kc), r, c, th, x64)
                hit = adj.any(dim=1)
                if hit.any():
                    leader = c[adj[hit].to(torch.uint8).argmax(dim=1)]
                    r = r[hit]
                    cov[r - i0] = True
                    th.union(r, leader)
        if do_comp:
            _dense_components(th, sim, rows, cols, x64)


def _off_diagonal_tile(ths: List[_Threshold], covered: List[Tensor],
                       xs: Tensor, x64: Tensor, i0: int, i1: int, j0: int,
                       j1: int, lo_all: float) -> None:
    """Rows ``i0:i1`` vs the finished block ``j0:j1`` (``j1 <= i0``).

    Leader coverage only needs uncovered rows x kept columns; components
    need the whole tile unless all of it already shares one root. When the
    leader part is small and its unions may settle the components (block J
    has one root), it runs first: for a collapsed bank the full tile is then
    never computed.
    """
    device = xs.device
    all_rows = torch.arange(i0, i1, device=device)
    all_cols = torch.arange(j0, j1, device=device)
    lead = [bool((~cov).any()) and bool(th.kept[j0:j1].any())
            for th, cov in zip(ths, covered)]
    comp = [not th.single_root(slice(i0, i1), slice(j0, j1)) for th in ths]
    if not any(lead) and not any(comp):
        return
    if any(lead):
        row_mask = torch.zeros(i1 - i0, dtype=torch.bool, device=device)
        col_mask = torch.zeros(j1 - j0, dtype=torch.bool, device=device)
        for th, cov, need in zip(ths, covered, lead):
            if need:
                row_mask |= ~cov
                col_mask |= th.kept[j0:j1]
        n_lead = int(row_mask.sum()) * int(col_mask.sum())
        # Leader unions can only make the tile single-rooted if, for every
        # threshold still needing components, block J already is.
        may_settle = all(not c or th.single_root(slice(j0, j1))
                         for th, c in zip(ths, comp))
        if not any(comp) or (may_settle
                             and n_lead < (i1 - i0) * (j1 - j0) // 2):
            rows, cols = all_rows[row_mask], all_cols[col_mask]
            _off_diagonal_pass(ths, covered, xs[rows] @ xs[cols].T, rows,
                               cols, i0, lead, [False] * len(ths), lo_all,
                               x64)
            lead = [False] * len(ths)
            comp = [
                not th.single_root(slice(i0, i1), slice(j0, j1))
                for th in ths
            ]
    if any(lead) or any(comp):
        _off_diagonal_pass(ths, covered, xs[i0:i1] @ xs[j0:j1].T, all_rows,
                           all_cols, i0, lead, comp, lo_all, x64)


def _greedy_sparse(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Greedy leaders on ``n`` local rows with edges ``a < b`` sorted by
    ``a``. Returns each row's killer (local index) or -1 if kept."""
    killer = np.full(n, -1, dtype=np.int64)
    if a.size == 0:
        return killer
    sources, starts = np.unique(a, return_index=True)
    ends = np.append(starts[1:], a.size)
    alive = np.ones(n, dtype=bool)
    for src, start, end in zip(sources.tolist(), starts.tolist(),
                               ends.tolist()):
        if alive[src]:
            nb = b[start:end]
            nb = nb[alive[nb]]
            alive[nb] = False
            killer[nb] = src
    return killer


def _greedy_dense(sim: Tensor, g: Tensor, th: _Threshold, x64: Tensor,
                  may_kill: np.ndarray) -> np.ndarray:
    """Greedy leaders among ``g`` (ascending) with ``(n, n)`` similarities;
    only rows flagged in ``may_kill`` have a later neighbour candidate.
    Adjacency is computed lazily, one kept row at a time."""
    n = g.numel()
    killer = np.full(n, -1, dtype=np.int64)
    alive = np.ones(n, dtype=bool)
    for i in np.flatnonzero(may_kill).tolist():
        if not alive[i] or i + 1 >= n:
            continue
        later = torch.arange(i + 1, n, device=g.device)
        hits = _refine_where(sim[i, i + 1:], g[i].expand(n - i - 1),
                             g[later], th, x64).cpu().numpy()
        newly = np.flatnonzero(hits & alive[i + 1:]) + i + 1
        alive[newly] = False
        killer[newly] = i
    return killer


def _diagonal_tile(ths: List[_Threshold], covered: List[Tensor], xs: Tensor,
                   x64: Tensor, i0: int, i1: int, lo_all: float) -> None:
    """Resolve the leaders of block ``i0:i1`` and its internal edges."""
    device = xs.device
    span = slice(i0, i1)
    comp = [not th.single_root(span) for th in ths]
    uncovered = [~cov for cov in covered]
    for th, unc in zip(ths, uncovered):
        th.kept[i0:i1] = unc  # provisional: in-block greedy removes some
    if not any(comp):
        row_mask = torch.zeros(i1 - i0, dtype=torch.bool, device=device)
        for unc in uncovered:
            row_mask |= unc
        rows = i0 + row_mask.nonzero().flatten()
    else:
        rows = torch.arange(i0, i1, device=device)
    if rows.numel() < 2:
        return
    sim = xs[rows] @ xs[rows].T
    sim.fill_diagonal_(-3.0)
    top = float(sim.max())
    if top <= lo_all:
        return
    # Pairs (a < b) whose similarity may exceed some cut.
    hot = torch.triu(sim > lo_all, diagonal=1)
    la, lb = hot.nonzero(as_tuple=True)  # row-major: sorted by la
    del hot
    sparse = la.numel() <= _EDGE_LIST_LIMIT
    if sparse:
        s, ga, gb = sim[la, lb], rows[la], rows[lb]
    else:
        may_kill = np.zeros(rows.numel(), dtype=bool)
        may_kill[np.unique(la.cpu().numpy())] = True
        del la, lb
    for th, unc, do_comp in zip(ths, uncovered, comp):
        if top <= th.lo:
            continue
        local_unc = unc[rows - i0]
        if sparse:
            m = (s > th.lo) & local_unc[la] & local_unc[lb]
            ok = _refine_where(s[m], ga[m], gb[m], th, x64)
            killer = _greedy_sparse(rows.numel(), la[m][ok].cpu().numpy(),
                                    lb[m][ok].cpu().numpy())
        else:
            killer = np.full(rows.numel(), -1, dtype=np.int64)
            cand = local_unc.nonzero().flatten()
            if cand.numel():
                sub = _select(sim, local_unc, local_unc)
                k_sub = _greedy_dense(sub, rows[cand], th, x64,
                                      may_kill[cand.cpu().numpy()])
                lost = np.flatnonzero(k_sub >= 0)
                cand_np = cand.cpu().numpy()
                killer[cand_np[lost]] = cand_np[k_sub[lost]]
        lost = np.flatnonzero(killer >= 0)
        if lost.size:
            lost_t = torch.from_numpy(lost).to(device)
            by = torch.from_numpy(killer[lost]).to(device)
            th.kept[rows[lost_t]] = False
            th.union(rows[lost_t], rows[by])
        if do_comp:
            if sparse:
                _sparse_components(th, s, ga, gb, x64)
            else:
                _dense_components(th, sim, rows, rows, x64)


def prototype_diversity(
        prototypes: ArrayLike,
        thresholds: Union[Sequence[float], float] = DEFAULT_THRESHOLDS,
        block_size: int = 4096,
        components: bool = True) -> Dict[str, float]:
    """Unique-prototype percentage and eps-graph components at several eps.

    Rows are L2-normalised; ``i`` and ``j`` are neighbours at ``eps`` when
    ``||w_i - w_j|| < eps``. For each ``eps``:

    * ``unique@{eps:g}``: percentage of the ``K`` prototypes kept by greedy
      leaders -- walk rows in index order and keep one unless an already
      kept row is a neighbour.
    * ``components@{eps:g}`` (with ``components``): number of connected
      components of the eps-neighbour graph (an integer, returned as
      ``float`` like every value here so the dict logs uniformly).

    The computation is exact (see the module docstring), blockwise with
    ``(block_size, block_size)`` similarity tiles, and shares each tile
    between all thresholds. Blocks already reduced to one leader / one
    component are skipped, so a fully collapsed bank needs only thin
    ``(block_size, 1)`` tiles after its first block. ``O(K^2 D)`` at most,
    in ``ceil(K / block_size) (ceil(K / block_size) + 1) / 2`` tiles:
    :func:`prototype_diversity_steps` runs them one at a time.

    Args:
        prototypes (Tensor | np.ndarray): The bank, ``(K, D)``, any real
            dtype and device (computed on that device; float64 tiles off
            the CPU, where float32 matmuls may use TF32).
        thresholds (Sequence[float] | float): Distances ``eps > 0``.
            Defaults to ``(0.025, 0.05, 0.1, 0.25, 0.5)``.
        block_size (int): Rows per similarity tile. Defaults to 4096.
        components (bool): Also count the connected components (a
            union-find over the eps-edges: the leaders alone need less
            work). Defaults to True.

    Returns:
        Dict[str, float]: ``unique@{eps:g}`` (percent) and, with
        ``components``, ``components@{eps:g}`` (count) for each threshold,
        in order.

    Raises:
        ValueError: If ``prototypes`` is not 2-D, is empty, or has
            non-finite or zero-norm rows, or a threshold is not positive.

    Example:
        >>> import torch
        >>> from gmproto_mm.evaluation.functional.diversity import (
        ...     prototype_diversity)
        >>> w = torch.eye(4, 8)
        >>> w = torch.cat([w, w[:2] + 1e-3])  # plant 2 near-duplicates
        >>> prototype_diversity(w, thresholds=(0.1,))
        {'unique@0.1': 66.66666666666667, 'components@0.1': 4.0}
        >>> prototype_diversity(w, thresholds=(2.0,))  # everything merges
        {'unique@2': 16.666666666666668, 'components@2': 1.0}
    """
    steps = prototype_diversity_steps(prototypes, thresholds, block_size,
                                      components)
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return done.value


def prototype_diversity_steps(
        prototypes: ArrayLike,
        thresholds: Union[Sequence[float], float] = DEFAULT_THRESHOLDS,
        block_size: int = 4096,
        components: bool = True
) -> Generator[int, None, Dict[str, float]]:
    """:func:`prototype_diversity`, one similarity tile at a time.

    The input is validated and copied (normalised, float64: ``8 K D``
    bytes, plus ``4 K D`` for float32 tiles on the CPU) when this is
    called; the returned generator then computes one ``(block_size,
    block_size)`` tile per ``next()`` -- at most ``block_size^2 D``
    multiply-adds and a few host synchronisations -- yielding the number
    of tiles done, and returns the result dict (``StopIteration.value``)
    after the last. Changing the bank meanwhile does not change the result.
    What ``PrototypeMonitorHook`` spreads over training iterations.

    Args:
        prototypes (Tensor | np.ndarray): The bank, ``(K, D)``.
        thresholds (Sequence[float] | float): Distances ``eps > 0``.
        block_size (int): Rows per similarity tile. Defaults to 4096.
        components (bool): Also count the connected components. Defaults
            to True.

    Returns:
        Generator: Yields tiles done; returns the dict of
        :func:`prototype_diversity`.
    """
    x64 = _normalized_rows(prototypes)
    eps_list = _check_thresholds(thresholds)
    block = _check_block_size(block_size)
    return _diversity_tiles(x64, eps_list, block, components)


def diversity_tiles(num_prototypes: int, block_size: int = 4096) -> int:
    """Tiles :func:`prototype_diversity_steps` computes for ``K``
    prototypes: ``B (B + 1) / 2`` for ``B = ceil(K / block_size)``."""
    blocks = -(-num_prototypes // block_size)
    return blocks * (blocks + 1) // 2


def _diversity_tiles(x64: Tensor, eps_list: List[float], block: int,
                     components: bool
                     ) -> Generator[int, None, Dict[str, float]]:
    num, dim = x64.shape
    device = x64.device
    dtype = _similarity_dtype(device)
    xs = x64.to(dtype)
    margin = cosine_margin(dim, dtype)
    ths = [_Threshold(e, num, device, margin, components) for e in eps_list]
    lo_all = min(th.lo for th in ths)

    done = 0
    for i0 in range(0, num, block):
        i1 = min(i0 + block, num)
        covered = [
            torch.zeros(i1 - i0, dtype=torch.bool, device=device) for _ in ths
        ]
        for j0 in range(0, i0, block):
            _off_diagonal_tile(ths, covered, xs, x64, i0, i1, j0,
                               min(j0 + block, num), lo_all)
            done += 1
            yield done
        _diagonal_tile(ths, covered, xs, x64, i0, i1, lo_all)
        done += 1
        if i1 < num:
            yield done

    out: Dict[str, float] = {}
    for th in ths:
        out[f'unique@{th.eps:g}'] = 100.0 * int(th.kept.sum()) / num
        if components:
            roots = int((th.parent == torch.arange(num,
                                                   device=device)).sum())
            out[f'components@{th.eps:g}'] = float(roots)
    return out


def nearest_neighbour_cosine(prototypes: ArrayLike,
                             block_size: int = 4096) -> Tensor:
    """Each prototype's highest cosine similarity to any other prototype.

    Computed blockwise over the lower triangle of tiles (each tile updates
    both its rows and its columns), never materialising ``(K, K)``.

    Args:
        prototypes (Tensor | np.ndarray): The bank, ``(K, D)``, ``K >= 2``.
        block_size (int): Rows per similarity tile. Defaults to 4096.

    Returns:
        Tensor: ``(K,)`` float32 cosines in ``[-1, 1]`` on the input's device
        (CPU for numpy input). 1 means an exact duplicate exists.

    Raises:
        ValueError: On the same malformed input as
            :func:`prototype_diversity`, or ``K < 2``.

    Example:
        >>> import torch
        >>> from gmproto_mm.evaluation.functional.diversity import (
        ...     nearest_neighbour_cosine)
        >>> w = torch.tensor([[1., 0.], [1., 0.], [0., 1.]])
        >>> nearest_neighbour_cosine(w)
        tensor([1., 1., 0.])
    """
    x64 = _normalized_rows(prototypes)
    block = _check_block_size(block_size)
    num = x64.shape[0]
    if num < 2:
        raise ValueError(
            f'nearest_neighbour_cosine needs at least 2 prototypes, got {num}')
    xs = x64.to(_similarity_dtype(x64.device))
    best = torch.full((num, ), -2.0, dtype=xs.dtype, device=xs.device)
    for i0 in range(0, num, block):
        i1 = min(i0 + block, num)
        for j0 in range(0, i1, block):
            j1 = min(j0 + block, num)
            sim = xs[i0:i1] @ xs[j0:j1].T
            if i0 == j0:
                sim.fill_diagonal_(-2.0)
            torch.maximum(best[i0:i1], sim.amax(dim=1), out=best[i0:i1])
            torch.maximum(best[j0:j1], sim.amax(dim=0), out=best[j0:j1])
    return best.clamp_(-1.0, 1.0).to(torch.float32)


def usage_perplexity(distribution: ArrayLike) -> float:
    """Perplexity ``exp(H(p))`` of a non-negative (unnormalised) vector.

    Args:
        distribution (Tensor | np.ndarray): ``(K,)`` probabilities, mean
            probabilities or counts; normalised here.

    Returns:
        float: A value in ``[1, K]``; ``K`` means perfectly uniform usage.

    Raises:
        ValueError: If not 1-D, empty, non-finite, negative or all zero.

    Example:
        >>> from gmproto_mm.evaluation.functional.diversity import (
        ...     usage_perplexity)
        >>> round(usage_perplexity([5, 5, 0, 0]), 6)
        2.0
    """
    p = _as_tensor(distribution, 'distribution').to(torch.float64)
    if p.dim() != 1 or p.numel() == 0:
        raise ValueError(
            f'distribution must be a non-empty 1-D (K,) vector, got shape '
            f'{tuple(p.shape)}')
    if not bool(torch.isfinite(p).all()) or bool((p < 0).any()):
        raise ValueError('distribution must be finite and non-negative')
    total = p.sum()
    if total <= 0:
        raise ValueError('distribution sums to zero; no assignments recorded')
    p = p / total
    entropy = -(torch.special.xlogy(p, p)).sum()
    return float(torch.exp(entropy))


def prototype_usage(argmax: ArrayLike,
                    num_prototypes: int,
                    probs: Optional[ArrayLike] = None) -> Dict[str, float]:
    """How many prototypes the data uses, and how evenly.

    Args:
        argmax (Tensor | np.ndarray): ``(N,)`` integer index of each sample's
            highest-probability (teacher) prototype, in ``[0, K)``.
        num_prototypes (int): ``K``.
        probs (Tensor | np.ndarray, optional): Teacher assignment
            probabilities, either per sample ``(N, K)`` or already summed /
            averaged over the data ``(K,)`` (what a streaming metric keeps).
            Normalised here. Defaults to None.

    Returns:
        Dict[str, float]: ``used_prototypes``, the number of prototypes that
        are the argmax of at least one sample (integral, as float);
        ``argmax_perplexity``, ``exp`` of the entropy of the normalised
        argmax histogram; and, when ``probs`` is given,
        ``soft_perplexity``, ``exp`` of the entropy of the mean (soft)
        assignment. Each lies in ``[1, K]``. Two names because they differ
        by orders of magnitude for a soft teacher: many prototypes can
        share probability mass while few are anyone's argmax.

    Raises:
        ValueError: On empty or out-of-range ``argmax``, a ``probs`` whose
            last dimension is not ``K``, or invalid probabilities.

    Example:
        >>> import torch
        >>> from gmproto_mm.evaluation.functional.diversity import (
        ...     prototype_usage)
        >>> prototype_usage(torch.tensor([0, 0, 1, 1]), num_prototypes=8)
        {'used_prototypes': 2.0, 'argmax_perplexity': 2.0}
        >>> probs = torch.full((4, 8), 1 / 8)  # soft but uniform teacher
        >>> out = prototype_usage(torch.tensor([0, 0, 1, 1]), 8, probs)
        >>> out['argmax_perplexity'], round(out['soft_perplexity'], 6)
        (2.0, 8.0)
    """
    if int(num_prototypes) != num_prototypes or num_prototypes < 1:
        raise ValueError(
            f'num_prototypes must be a positive integer, got {num_prototypes}')
    num_prototypes = int(num_prototypes)
    idx = _as_tensor(argmax, 'argmax')
    if idx.dim() != 1 or idx.numel() == 0:
        raise ValueError(
            f'argmax must be a non-empty 1-D (N,) index tensor, got shape '
            f'{tuple(idx.shape)}')
    if idx.is_floating_point() or idx.dtype == torch.bool:
        raise ValueError(
            f'argmax must hold integer indices, got dtype {idx.dtype}; pass '
            'probs.argmax(dim=1)')
    idx = idx.to(torch.int64).cpu()
    if int(idx.min()) < 0 or int(idx.max()) >= num_prototypes:
        raise ValueError(
            f'argmax indices must lie in [0, {num_prototypes}), got range '
            f'[{int(idx.min())}, {int(idx.max())}]')
    counts = torch.bincount(idx, minlength=num_prototypes)
    out = {'used_prototypes': float((counts > 0).sum()),
           'argmax_perplexity': usage_perplexity(counts)}
    if probs is None:
        return out
    p = _as_tensor(probs, 'probs')
    if p.dim() not in (1, 2) or p.shape[-1] != num_prototypes:
        raise ValueError(
            f'probs must be (N, {num_prototypes}) or ({num_prototypes},), got '
            f'shape {tuple(p.shape)}')
    if p.dim() == 2:
        if p.shape[0] != idx.numel():
            raise ValueError(
                f'probs has {p.shape[0]} rows but argmax has {idx.numel()} '
                'entries; they must describe the same samples')
        p = p.to(torch.float64).sum(dim=0)
    out['soft_perplexity'] = usage_perplexity(p)
    return out
