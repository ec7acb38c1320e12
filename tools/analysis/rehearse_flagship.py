"""Rehearse the flagship command end to end, on this machine's devices.

Runs ``bash tools/dist_train.sh CONFIG RANKS`` (default: the flagship,
``configs/gm_dino_vitb_in1k.py``, K = 65,536, with its own initialisation
and hooks) as the README launches it -- NCCL on GPUs, gloo on CPU ranks --
on a generated ImageNet-shaped folder (``CustomDataset`` layout, 256 px
JPEGs, ``--images-per-rank`` per rank: one iteration per epoch):

1. ``--iters`` + 1 iterations with a checkpoint after each epoch;
2. ``--resume`` from the checkpoint after ``--iters``, one more iteration;
3. ``bash tools/dist_test.sh`` on the last checkpoint (the generated
   folder as k-NN bank, a second one as queries).

It checks that the EM state is finite and bit-identical on every rank
after both runs, that the resumed run ends bit-identical to the
uninterrupted one (the next EM step from a checkpoint), and that the test
ran; it records each rank's peak memory and the seconds per iteration.
The only changes to the config are the data, one loader worker, a
checkpoint per epoch, re-seeding from the first update (the recipe starts
it after the warm-up; here every EM path must run) and a record hook
(:mod:`gmproto_mm.analysis.rehearsal`); ``--cfg-options`` adds more (the
suite's test shrinks the model with them).

    bash tools/analysis/rehearse_flagship.sh                 # 4 CPU ranks
    bash tools/analysis/rehearse_flagship.sh --ranks 8       # 8 GPUs

Writes ``<work-dir>/rehearsal.json`` and exits non-zero if a check fails.
"""
import argparse
import json
import os
import os.path as osp
import shlex
import socket
import statistics
import subprocess
import sys
import time
from typing import List

import torch

from gmproto_mm.analysis.rehearsal import (derived_config, make_image_folder,
                                           read_records, states_agree)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument('--config', default='configs/gm_dino_vitb_in1k.py',
                        help='the config to rehearse')
    parser.add_argument('--ranks', type=int,
                        help='processes (default: the GPUs, else 4 CPU '
                        'ranks)')
    parser.add_argument('--images-per-rank', type=int, default=2,
                        help='training images per rank and iteration')
    parser.add_argument('--iters', type=int, default=2,
                        help='iterations before the checkpoint that is '
                        'resumed')
    parser.add_argument('--work-dir', default='work_dirs/rehearsal',
                        help='data, runs and the JSON report')
    parser.add_argument('--cfg-options', nargs='+', default=[],
                        metavar='KEY=VALUE',
                        help='more config changes, for every run')
    parser.add_argument('--timeout', type=float, default=3600,
                        help='seconds each launch may take')
    args = parser.parse_args(argv)
    if args.ranks is None:
        args.ranks = torch.cuda.device_count() or 4
    if args.ranks < 2 or args.images_per_rank < 1 or args.iters < 1:
        parser.error('--ranks must be >= 2, --images-per-rank and --iters '
                     '>= 1')
    return args


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def launch(command: List[str], timeout: float, log: str) -> float:
    """Run a launcher script from the repository root (its output to
    ``log``); return its wall time; raise with the log's tail on failure."""
    env = dict(os.environ, PYTHON=sys.executable, PORT=str(free_port()))
    start = time.perf_counter()
    with open(log, 'w') as out:
        proc = subprocess.run(command, cwd=ROOT, env=env, stdout=out,
                              stderr=subprocess.STDOUT, timeout=timeout)
    if proc.returncode:
        with open(log) as f:
            tail = f.read()[-4000:]
        raise RuntimeError(f'{shlex.join(command)} failed '
                           f'({proc.returncode}); {log} ends:\n{tail}')
    return time.perf_counter() - start


def main(argv=None) -> int:
    args = parse_args(argv)
    work = osp.abspath(args.work_dir)
    os.makedirs(work, exist_ok=True)
    data = osp.join(work, 'data')
    make_image_folder(osp.join(data, 'train'),
                      args.ranks * args.images_per_rank, seed=0)
    make_image_folder(osp.join(data, 'val'), args.ranks, seed=1)
    config = osp.join(work, 'rehearsal_config.py')
    with open(config, 'w') as f:
        f.write(derived_config(args.config, data, args.images_per_rank))
    n, ranks = args.iters, str(args.ranks)
    options = ['--cfg-options', f'train_cfg.max_epochs={n + 1}',
               *args.cfg_options]
    runs = dict(
        train=['bash', 'tools/dist_train.sh', config, ranks, '--work-dir',
               osp.join(work, 'train'), *options],
        resume=['bash', 'tools/dist_train.sh', config, ranks, '--work-dir',
                osp.join(work, 'resume'), '--resume',
                osp.join(work, 'train', f'epoch_{n}.pth'), *options],
        test=['bash', 'tools/dist_test.sh', config,
              osp.join(work, 'train', f'epoch_{n + 1}.pth'), ranks,
              '--work-dir', osp.join(work, 'test'), '--out',
              osp.join(work, 'test', 'metrics.json'), '--out-item',
              'metrics', *(['--cfg-options', *args.cfg_options]
                           if args.cfg_options else [])])
    report = dict(config=args.config, ranks=args.ranks,
                  images_per_rank=args.images_per_rank, iters=n,
                  device='cuda' if torch.cuda.is_available() else 'cpu',
                  torch=torch.__version__,
                  commands={k: shlex.join(v) for k, v in runs.items()},
                  seconds={})
    for name, command in runs.items():
        print(f'[rehearsal] {name}: {shlex.join(command)}', flush=True)
        report['seconds'][name] = launch(command, args.timeout,
                                         osp.join(work, f'{name}.log'))
    train, resume = (read_records(osp.join(work, k))
                     for k in ('train', 'resume'))
    with open(osp.join(work, 'test', 'metrics.json')) as f:
        report['test_metrics'] = json.load(f)
    # per rank, the median after the first iteration (which builds the
    # optimizer state); ranks also wait for rank 0's per-epoch checkpoint
    iter_s = [statistics.median(r['iter_times_s'][1:] or r['iter_times_s'])
              for r in train]
    report.update(
        peak_memory_mb=[r['peak_memory_mb'] for r in train],
        memory=train[0]['memory'], backend=train[0]['backend'],
        iter_times_s=[r['iter_times_s'] for r in train],
        median_iter_s_per_rank=iter_s, median_iter_s=max(iter_s),
        em_updates={name: bank['num_updates']
                    for name, bank in train[0]['banks'].items()})
    checks = dict(
        ranks_identical=states_agree(train) and states_agree(resume),
        finite=all(b['finite'] for r in train + resume
                   for b in r['banks'].values()),
        resume_bit_identical=states_agree([train[0], resume[0]]),
        em_updated=all(u > 0 for u in report["em_updates"].values()),
        tested=bool(report['test_metrics']))
    report['checks'] = checks
    report['passed'] = all(checks.values())
    with open(osp.join(work, 'rehearsal.json'), 'w') as f:
        json.dump(report, f, indent=1)
    print(f'[rehearsal] {report["device"]} x {args.ranks} '
          f'({report["backend"]}): {report["median_iter_s"]:.2f} s per '
          'iteration (median, slowest rank); peak memory per rank '
          + ', '.join(f'{m:.0f}' for m in report['peak_memory_mb'])
          + f' MB ({report["memory"]})')
    for name, ok in checks.items():
        print(f'[rehearsal] {name}: {"pass" if ok else "FAIL"}')
    print(f'[rehearsal] {"PASSED" if report["passed"] else "FAILED"}; '
          f'wrote {osp.join(work, "rehearsal.json")}')
    return 0 if report['passed'] else 1


if __name__ == '__main__':
    sys.exit(main())
