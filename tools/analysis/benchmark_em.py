"""Cost of the online-EM prototype step at the flagship size, on its real path.

Every update of ``OnlineGaussianMixture`` should cost a small multiple of
the ``(N, D) x (D, K)`` matmul that computes the teacher's logits (targets:
<= 4.5 for the paper's method, <= 5.0 with the decoupled default's options),
with working memory bounded by one row chunk whatever N. Prints, and writes
as JSON (``--out``, default ``work_dirs/benchmark_em.json``):

* per N in ``--batches`` (default 1,024 and 8,192) at K = 65,536, D = 256:
  the median update / matmul ratio and the update's peak memory for the
  paper's method (class defaults: ``init='sample'`` after pooling K rows)
  and for the decoupled configs' method (``configs/_base_/models/decoupled_gmm.py``:
  uniform means, re-seeding from the first update, merging, stale decay);
* iBOT's patch bank (K = 8,192, ~60,000 rows from 8 GPUs) with the options;
* the first EM step after pooling (class defaults) at K = 16,384 and 65,536:
  its time and peak memory;
* ``--scale-test``: the decoupled default on a stream of 2,048 drifting
  clusters at K = 65,536 (rows until the used components reach the
  clusters, unique@0.1 at the end, largest re-seed / merge counts);
* ``--monitor``: one ``PrototypeMonitorHook`` measurement at K = 65,536.

    python tools/analysis/benchmark_em.py [--device cpu] [--scale-test]

Peak memory is the rise of the process's peak resident memory (``VmHWM``,
reset before each measured call) on the CPU and of the peak CUDA memory on
a GPU. Run it alone: timings of two jobs on 2 cores are meaningless.
"""
import argparse
import json
import os
import os.path as osp
import re
import statistics
import time
from typing import Callable, Dict, Iterator, List, Optional, Tuple

import torch

from gmproto_mm.evaluation.functional import prototype_diversity
from gmproto_mm.models.mixture import OnlineGaussianMixture
from gmproto_mm.testing import drifting_clusters, stream_scale_check

#: The EM options of configs/_base_/models/decoupled_gmm.py, re-seeding from the
#: first update (the configs start after the lr warm-up) so it is timed.
DEFAULT_OPTIONS = dict(init='uniform', reseed_rate=1 / 32, reseed_start=0,
                       merge_within=0.1, stale_decay=0.02)
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
        return seconds, (torch.cuda.max_memory_allocated(device) - base) / 2**20
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
    (pooling included).

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
        ``merged`` (totals over the timed updates) and the sizes.
    """
    dev = torch.device(device)
    gmm = OnlineGaussianMixture(num_components, dim, **(options or {}))
    gmm = gmm.to(dev)
    pool_updates = -(-gmm.init_samples // batch) \
        if gmm.init != 'uniform' else 1
    stream = _stream(num_components, dim, batch, pool_updates + 2 + repeats)
    first = None
    for _ in range(pool_updates):
        x = next(stream).to(dev)
        first = _timed(lambda: gmm.update(x), dev)
    assert bool(gmm.initialized)
    for _ in range(2):  # warm-up
        x = next(stream).to(dev)
        gmm.update(x)
        x @ gmm.means.T
    update_s, matmul_s, peaks = [], [], []
    moves = dict(reseeded=0.0, merged=0.0)
    for x in stream:
        x = x.to(dev)
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
    return dict(num_components=num_components, dim=dim, batch=batch,
                update_s=update_med, matmul_s=matmul_med,
                ratio=update_med / matmul_med,
                scratch_mb=scratch_mb(gmm),
                peak_mb=None if None in peaks else max(peaks),
                first_update_s=first, **moves)


def scratch_mb(gmm: OnlineGaussianMixture) -> float:
    """MB of the mixture's scratch (non-persistent) buffers."""
    return sum(buf.numel() * buf.element_size()
               for name, buf in gmm.named_buffers()
               if name.startswith('_')) / 2**20


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


def monitor_seconds(num_components: int = 65536, dim: int = 256,
                    device: str = 'cpu') -> dict:
    """One exact ``prototype_diversity`` (what ``PrototypeMonitorHook``
    logs) of uniform means on ``device``."""
    dev = torch.device(device)
    means = torch.nn.functional.normalize(
        torch.randn(num_components, dim, device=dev), dim=1)
    return dict(num_components=num_components, dim=dim, device=device,
                seconds=_timed(lambda: prototype_diversity(means), dev))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument('--num-components', type=int, default=65536,
                        help='K of the main measurements')
    parser.add_argument('--dim', type=int, default=256, help='D')
    parser.add_argument('--batches', type=int, nargs='+',
                        default=[1024, 8192], help='rows per update N')
    parser.add_argument('--repeats', type=int, default=5,
                        help='timed updates per measurement')
    parser.add_argument('--ibot', type=int, nargs=2, default=[8192, 60000],
                        metavar=('K', 'N'),
                        help="iBOT's patch bank: K and rows per update "
                        '(0 0 skips it)')
    parser.add_argument('--pooling', type=int, nargs='*',
                        default=[16384, 65536], metavar='K',
                        help='K values of the first-step-after-pooling '
                        'measurement')
    parser.add_argument('--scale-test', action='store_true',
                        help='also run the drifting-clusters scale test')
    parser.add_argument('--scale-updates', type=int, default=160,
                        help='updates of the scale test')
    parser.add_argument('--monitor', action='store_true',
                        help='also time one PrototypeMonitorHook '
                        'measurement at K')
    parser.add_argument('--device', default='cpu', choices=['cpu', 'cuda'],
                        help='where the mixture lives')
    parser.add_argument('--out', default='work_dirs/benchmark_em.json',
                        help='results JSON')
    return parser.parse_args()


def _fmt_mb(value: Optional[float]) -> str:
    return 'n/a' if value is None else f'{value:.0f} MB'


def main() -> None:
    args = parse_args()
    if args.device == 'cuda' and not torch.cuda.is_available():
        raise SystemExit('--device cuda given but CUDA is not available')
    K, D = args.num_components, args.dim
    print(f'device={args.device} threads={torch.get_num_threads()} '
          f'K={K} D={D}', flush=True)
    result: Dict[str, object] = dict(device=args.device,
                                     threads=torch.get_num_threads())
    runs: List[dict] = []
    sizes = [(K, n) for n in args.batches]
    if args.ibot[0] > 0:
        sizes.append(tuple(args.ibot))
    for k, n in sizes:
        for name, options in VARIANTS.items():
            run = measure_em_ratio(k, D, n, args.repeats, args.device,
                                   options)
            run['variant'] = name
            runs.append(run)
            print(f'K={k} N={n} {name:18s} update {run["update_s"]:.3f} s '
                  f'matmul {run["matmul_s"]:.3f} s ratio {run["ratio"]:.2f}'
                  f' scratch {_fmt_mb(run["scratch_mb"])} + peak '
                  f'{_fmt_mb(run["peak_mb"])} (first update '
                  f'{run["first_update_s"]:.2f} s; re-seeded '
                  f'{run["reseeded"]:.0f}, merged {run["merged"]:.0f})',
                  flush=True)
    result['runs'] = runs
    result['pooling'] = []
    for k in args.pooling:
        first = first_step_after_pooling(k, D, device=args.device)
        result['pooling'].append(first)
        print(f'first EM step after pooling {k} rows at K={k} (class '
              f'defaults): {first["seconds"]:.2f} s, peak '
              f'{_fmt_mb(first["peak_mb"])}', flush=True)
    if args.scale_test:
        result['scale_test'] = scale_test(K, D, updates=args.scale_updates,
                                          device=args.device)
        print(f'scale test: {json.dumps(result["scale_test"])}', flush=True)
    if args.monitor:
        result['monitor'] = monitor_seconds(K, D, args.device)
        print(f'monitor: {result["monitor"]["seconds"]:.2f} s per call',
              flush=True)
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    with open(args.out, 'w') as f:
        json.dump(result, f, indent=2)
    print(f'results: {args.out}')


if __name__ == '__main__':
    main()
