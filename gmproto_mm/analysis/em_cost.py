"""Cost of the online-EM prototype step: time of one update of
``OnlineGaussianMixture`` against the ``(N, D) x (D, K)`` logits matmul,
and its peak memory (``tools/analysis/benchmark_em.py``,
``benchmark.py`` and ``gpu_check.py`` report these).

Sizes: ``K`` components (``num_components``), ``D`` dimensions (``dim``),
``N`` rows per update (``batch`` / ``rows``). Times are wall-clock seconds
of synchronised calls; memory is in MB (2**20 bytes): the rise of the peak
CUDA memory on a GPU, of the process's peak resident memory (``VmHWM``,
reset before each measured call) on the CPU.
"""
import os.path as osp
import re
import statistics
import time
from typing import Callable, Dict, Iterator, List, Optional, Tuple

import torch

from ..evaluation.functional import (DEFAULT_THRESHOLDS, prototype_diversity,
                                     prototype_diversity_steps)
from ..models.mixture import OnlineGaussianMixture, maintenance
from ..testing import (crowd_bank, drifting_clusters, near_directions,
                       stream_scale_check)

#: The EM options of configs/_base_/models/decoupled_gmm.py, re-seeding from the
#: first update (the configs start after the lr warm-up) so it is timed.
DEFAULT_OPTIONS = dict(init='uniform', maintenance=dict(
    reseed_rate=1 / 32, reseed_start=0, merge_within=0.1, stale_decay=0.04))
VARIANTS = dict(paper={}, decoupled_default=DEFAULT_OPTIONS)


def _sync(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def _timed(fn: Callable[[], object], device: torch.device) -> float:
    """Wall-clock seconds of one synchronised call of ``fn``."""
    _sync(device)
    start = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - start


def peak_rise_mb(fn: Callable[[], object],
                 device: torch.device) -> Tuple[float, Optional[float]]:
    """Seconds of one call of ``fn`` and the rise of peak memory it caused
    (MB): CUDA's peak allocated memory on a GPU, the process's ``VmHWM``
    (reset through ``/proc/self/clear_refs``) on the CPU; None where
    neither can be read."""
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        seconds = _timed(fn, device)
        peak = torch.cuda.max_memory_allocated(device)
        return seconds, (peak - base) / 2**20
    if not osp.exists('/proc/self/clear_refs'):
        return _timed(fn, device), None
    with open('/proc/self/clear_refs', 'w') as f:
        f.write('5')  # resets VmHWM to the current resident size
    base = _vm_hwm_mb()
    seconds = _timed(fn, device)
    return seconds, _vm_hwm_mb() - base


def _vm_hwm_mb() -> float:
    with open('/proc/self/status') as f:
        return int(re.search(r'VmHWM:\s+(\d+)', f.read()).group(1)) / 1024


def _stream(num_components: int, dim: int, rows: int,
            updates: int) -> Iterator[torch.Tensor]:
    """Batches of clustered unit vectors (drifting clusters in a cap)."""
    clusters = max(16, min(2048, num_components // 32))
    for x, _ in drifting_clusters(clusters, dim, rows, updates):
        yield x


def first_step_after_pooling(num_components: int, dim: int = 256,
                             rows: int = 1024,
                             device: str = 'cpu') -> Dict[str, float]:
    """Class defaults (``init='sample'``, pool K rows): time and peak
    memory of the update that fills the pool, initialises and runs the
    first EM step."""
    dev = torch.device(device)
    gmm = OnlineGaussianMixture(num_components, dim).to(dev)
    pooled = 0
    for x in _stream(num_components, dim, rows,
                     -(-num_components // rows)):
        x = x.to(dev)
        if pooled + rows < num_components:
            gmm.update(x)
            pooled += rows
            continue
        seconds, peak = peak_rise_mb(lambda: gmm.update(x), dev)
    assert bool(gmm.initialized) and int(gmm.num_updates) == 1
    return dict(num_components=num_components, dim=dim,
                pooled_rows=num_components, seconds=seconds, peak_mb=peak)


def measure_em_ratio(num_components: int = 65536,
                     dim: int = 256,
                     batch: int = 1024,
                     repeats: int = 5,
                     device: str = 'cpu',
                     options: Optional[dict] = None) -> Dict[str, float]:
    """Median times of one EM update and of one logits matmul, their ratio,
    and the update's peak memory, after the mixture's own initialisation
    (pooling included) and, with merging on, after the first ``K`` rows
    (while new means get their room, each update checks up to ``N`` of
    them: timed apart, as ``first_rows_*``).

    The matmul is ``x @ mu.T`` with ``x`` ``(N, D)`` and ``mu`` ``(K, D)``,
    allocating a fresh ``(N, K)`` output, as the teacher's logits do.
    Update and matmul calls are interleaved so both see the same load.

    Args:
        num_components (int): ``K``. Defaults to 65536.
        dim (int): ``D``. Defaults to 256.
        batch (int): Rows per update ``N``. Defaults to 1024.
        repeats (int): Timed calls of each. Defaults to 5.
        device (str): ``'cpu'`` or ``'cuda'``. Defaults to ``'cpu'``.
        options (dict, optional): Keyword arguments of the mixture (None:
            the class defaults, i.e. the paper's method).

    Returns:
        Dict[str, float]: ``update_s``, ``matmul_s`` (median seconds),
        ``ratio``, ``scratch_mb`` (the mixture's scratch buffers, allocated
        once: the chunk's responsibilities and two ``(K, 2D+1)`` buffers),
        ``peak_mb`` (largest rise of peak memory over the timed updates,
        beyond the scratch),
        ``first_update_s`` (the update that initialised), ``reseeded`` and
        ``merged`` (totals over the timed updates), the sizes, and with
        merging on ``first_rows_update_s`` / ``first_rows_ratio`` /
        ``first_rows_reseeded`` / ``first_rows_merged`` (timed in the first
        ``K`` rows) and ``first_rows_updates`` (updates until every mean
        had its room).
    """
    dev = torch.device(device)
    gmm = OnlineGaussianMixture(num_components, dim, **(options or {}))
    gmm = gmm.to(dev)
    pool_updates = -(-gmm.init_samples // batch) \
        if gmm.init != 'uniform' else 1
    merging = any(isinstance(strategy, maintenance.MergeClose)
                  for strategy in gmm.strategies)
    settle = -(-num_components // batch) if merging else 0
    total = pool_updates + 2 + 2 * settle + 2 * repeats  # with a margin
    gmm.set_training_length(total)  # a config's gmm
    stream = _stream(num_components, dim, batch, total)
    first = None
    for _ in range(pool_updates):
        x = next(stream).to(dev)
        first = _timed(lambda: gmm.update(x), dev)
    assert bool(gmm.initialized)
    for _ in range(2):  # warm-up
        x = next(stream).to(dev)
        gmm.update(x)
        x @ gmm.means.T
    out = {}
    if merging and _means_unchecked(gmm):
        early = _time_updates(gmm, stream, repeats, dev)
        out.update(first_rows_update_s=early['update_s'],
                   first_rows_ratio=early['ratio'],
                   first_rows_reseeded=early['reseeded'],
                   first_rows_merged=early['merged'])
        settled = 2 + repeats  # updates since the first
        while _means_unchecked(gmm):
            gmm.update(next(stream).to(dev))
            settled += 1
        out['first_rows_updates'] = settled
    out.update(_time_updates(gmm, stream, repeats, dev))
    return dict(num_components=num_components, dim=dim, batch=batch,
                scratch_mb=scratch_mb(gmm), first_update_s=first, **out)


def _means_unchecked(gmm: OnlineGaussianMixture) -> bool:
    """Whether merging still has means to give their first room."""
    return maintenance.never_checked(gmm.merge_slack, 1).numel() > 0


def _time_updates(gmm: OnlineGaussianMixture, stream: Iterator[torch.Tensor],
                  repeats: int, dev: torch.device) -> Dict[str, float]:
    """``update_s``, ``matmul_s`` (medians over ``repeats`` interleaved
    calls), ``ratio``, ``peak_mb``, ``reseeded`` and ``merged`` (totals)."""
    update_s, matmul_s, peaks = [], [], []
    moves = dict(reseeded=0.0, merged=0.0)
    for _ in range(repeats):
        x = next(stream).to(dev)
        out = {}

        def step():
            out.update(gmm.update(x))

        seconds, peak = peak_rise_mb(step, dev)
        update_s.append(seconds)
        peaks.append(peak)
        for key in moves:
            moves[key] += out.get(key, 0.0)
        matmul_s.append(_timed(lambda: x @ gmm.means.T, dev))
    update_med = statistics.median(update_s)
    matmul_med = statistics.median(matmul_s)
    return dict(update_s=update_med, matmul_s=matmul_med,
                ratio=update_med / matmul_med,
                peak_mb=None if None in peaks else max(peaks), **moves)


def scratch_mb(gmm: OnlineGaussianMixture) -> float:
    """MB of the mixture's scratch tensors (not state, not buffers)."""
    return gmm.scratch.nbytes / 2**20


def scale_test(num_components: int = 65536, dim: int = 256,
               clusters: int = 2048, rows: int = 2048, updates: int = 160,
               device: str = 'cpu') -> dict:
    """The decoupled default on :func:`gmproto_mm.testing.drifting_clusters`
    (see ``tests/test_models/test_mixture_scale.py`` for the suite's
    smaller twin)."""
    options = dict(DEFAULT_OPTIONS, beta_iters=20)
    gmm = OnlineGaussianMixture(num_components, dim, **options).to(device)
    start = time.perf_counter()
    stats = stream_scale_check(gmm, clusters, rows, updates, probe_every=10)
    stats.update(num_components=num_components, dim=dim, clusters=clusters,
                 seconds=time.perf_counter() - start,
                 **prototype_diversity(gmm.means, [0.1]))
    return stats


def crowded_bank_update(num_components: int = 65536, dim: int = 256,
                        batch: int = 1024, device: str = 'cpu',
                        directions: int = 4,
                        spread: float = 0.02) -> Dict[str, float]:
    """The decoupled default's update on a collapsed bank, against a normal
    one: every mean within ~``spread`` of ``directions`` directions and the
    batch there too (a collapsed start; merging meets ~K/``directions``
    close neighbours per mean, none checked yet). Time and peak memory of
    one update against a normal update on the same data once every mean
    had its room (after the first ``K`` rows), and what it merged.

    Returns:
        Dict[str, float]: ``normal_update_s``, ``crowded_update_s``,
        ``ratio`` (crowded / normal), ``normal_peak_mb``,
        ``crowded_peak_mb`` (rise of peak memory beyond the scratch),
        ``merged``, ``merge_unresolved``, ``reseeded`` and the sizes.
    """
    dev = torch.device(device)
    gen = torch.Generator().manual_seed(0)
    axes = torch.nn.functional.normalize(
        torch.randn(directions, dim, generator=gen), dim=1)
    gmm = OnlineGaussianMixture(num_components, dim,
                                **DEFAULT_OPTIONS).to(dev)
    gmm.update(near_directions(axes, batch, spread, gen).to(dev))
    while _means_unchecked(gmm):
        gmm.update(near_directions(axes, batch, spread, gen).to(dev))
    x = near_directions(axes, batch, spread, gen).to(dev)
    normal_s, normal_peak = peak_rise_mb(lambda: gmm.update(x), dev)
    crowd_bank(gmm, axes, spread, gen)
    out: Dict[str, float] = {}
    x = near_directions(axes, batch, spread, gen).to(dev)
    crowded_s, crowded_peak = peak_rise_mb(lambda: out.update(gmm.update(x)),
                                           dev)
    return dict(num_components=num_components, dim=dim, batch=batch,
                directions=directions, spread=spread,
                normal_update_s=normal_s, crowded_update_s=crowded_s,
                ratio=crowded_s / normal_s, normal_peak_mb=normal_peak,
                crowded_peak_mb=crowded_peak, merged=out['merged'],
                merge_unresolved=out['merge_unresolved'],
                reseeded=out['reseeded'])


def monitor_wait(num_components: int = 65536, dim: int = 256,
                 device: str = 'cpu', block_size: int = 4096,
                 crowded: bool = False) -> Dict[str, float]:
    """What ``PrototypeMonitorHook`` adds to a training iteration: the
    seconds of each similarity tile of one measurement (one tile per
    iteration by default), on uniform means or (``crowded``) means within
    0.02 of 4 directions.

    Returns:
        Dict[str, float]: ``tiles`` (iterations one measurement spans),
        ``max_tile_s`` and ``median_tile_s`` (the wait per iteration),
        ``total_s`` (the whole measurement) and the sizes.
    """
    dev = torch.device(device)
    gen = torch.Generator().manual_seed(0)
    if crowded:
        axes = torch.nn.functional.normalize(
            torch.randn(4, dim, generator=gen), dim=1)
        means = near_directions(axes, num_components, 0.02, gen)
    else:
        means = torch.nn.functional.normalize(
            torch.randn(num_components, dim, generator=gen), dim=1)
    means = means.to(dev)
    steps = prototype_diversity_steps(means, DEFAULT_THRESHOLDS, block_size,
                                      components=False)
    times: List[float] = []
    done = [False]

    def tile() -> None:
        try:
            next(steps)
        except StopIteration:
            done[0] = True

    while not done[0]:
        times.append(_timed(tile, dev))
    return dict(num_components=num_components, dim=dim, device=device,
                block_size=block_size, crowded=crowded, tiles=len(times),
                max_tile_s=max(times),
                median_tile_s=statistics.median(times),
                total_s=sum(times))
