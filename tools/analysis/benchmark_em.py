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
  uniform means, re-seeding from the first update, merging, stale decay)
  after the first K rows, and for the latter also within them (while
  merging gives new means their room: N more means checked per update);
* iBOT's patch bank (K = 8,192, ~60,000 rows from 8 GPUs) with the options;
* the first EM step after pooling (class defaults) at K = 16,384 and 65,536:
  its time and peak memory;
* per N: the decoupled default's update on a collapsed bank (every mean
  within ~0.02 of 4 directions) against a normal update: time ratio and
  peak memory (``--no-crowded`` skips it);
* ``--scale-test``: the decoupled default on a stream of 2,048 drifting
  clusters at K = 65,536 (rows until the used components reach the
  clusters, unique@0.1 at the end, largest re-seed / merge counts);
* ``--monitor``: what ``PrototypeMonitorHook`` adds to an iteration at
  K = 65,536: the seconds of each of its tiles (one per iteration), on
  uniform and on crowded means, against one EM update of the decoupled
  default at the flagship's 2,048 rows (an iteration holds one such
  update and the whole forward and backward pass besides).

    python tools/analysis/benchmark_em.py [--device cpu] [--scale-test]

Peak memory is the rise of the process's peak resident memory (``VmHWM``,
reset before each measured call) on the CPU and of the peak CUDA memory on
a GPU. Run it alone: timings of two jobs on 2 cores are meaningless. The
measurements are :mod:`gmproto_mm.analysis.em_cost`.
"""
import argparse
import json
import os
import os.path as osp
from typing import Dict, List, Optional

import torch

from gmproto_mm.analysis.em_cost import (VARIANTS, crowded_bank_update,
                                         first_step_after_pooling,
                                         measure_em_ratio, monitor_wait,
                                         scale_test)


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
                        help="also time PrototypeMonitorHook's tiles at K")
    parser.add_argument('--no-crowded', action='store_true',
                        help='skip the collapsed-bank update')
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
            if 'first_rows_ratio' in run:
                print(f'    within the first K rows (the first '
                      f'{run["first_rows_updates"]} updates): update '
                      f'{run["first_rows_update_s"]:.3f} s ratio '
                      f'{run["first_rows_ratio"]:.2f}', flush=True)
    result['runs'] = runs
    result['crowded'] = []
    for n in ([] if args.no_crowded else args.batches):
        crowded = crowded_bank_update(K, D, n, args.device)
        result['crowded'].append(crowded)
        print(f'K={K} N={n} collapsed bank: update '
              f'{crowded["crowded_update_s"]:.3f} s vs normal '
              f'{crowded["normal_update_s"]:.3f} s (x{crowded["ratio"]:.2f}),'
              f' peak {_fmt_mb(crowded["crowded_peak_mb"])} vs '
              f'{_fmt_mb(crowded["normal_peak_mb"])} beyond the scratch; '
              f'merged {crowded["merged"]:.0f}, unresolved '
              f'{crowded["merge_unresolved"]:.0f}', flush=True)
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
        update = measure_em_ratio(K, D, 2048, args.repeats, args.device,
                                  VARIANTS['decoupled_default'])
        result['monitor'] = dict(em_update_s=update['update_s'], rows=2048)
        for crowded in (False, True):
            wait = monitor_wait(K, D, args.device, crowded=crowded)
            result['monitor']['crowded' if crowded else 'uniform'] = wait
            print(f'monitor ({"crowded" if crowded else "uniform"} means): '
                  f'{wait["tiles"]} iterations per measurement, wait per '
                  f'iteration max {wait["max_tile_s"]:.3f} s (median '
                  f'{wait["median_tile_s"]:.3f} s) = '
                  f'{wait["max_tile_s"] / update["update_s"]:.2f} x one EM '
                  f'update of 2,048 rows ({update["update_s"]:.3f} s); '
                  f'whole measurement {wait["total_s"]:.1f} s', flush=True)
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    with open(args.out, 'w') as f:
        json.dump(result, f, indent=2)
    print(f'results: {args.out}')


if __name__ == '__main__':
    main()
