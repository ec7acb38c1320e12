"""Training-iteration cost of decoupled vs joint prototypes, one process.

Times ``train_step`` of the joint and the decoupled config alternately on
the same batches (the decoupled step includes its online-EM update, as
``OnlineEMHook`` runs it), prints the ratio decoupled / joint (target
<= 1.03), then the EM-update / matmul ratio of ``benchmark_em.py``
(:func:`gmproto_mm.analysis.em_cost.measure_em_ratio`).

    python tools/analysis/benchmark.py                       # tiny, CPU
    python tools/analysis/benchmark.py --decoupled-options \\
        model.head.num_prototypes=1024                       # same K
    python tools/analysis/benchmark.py --joint configs/dino/dino_vit-base-p16_8xb128-coslr-400e_in1k.py \\
        --decoupled configs/dino/dino-gmm_vit-base-p16_8xb128-coslr-400e_in1k.py --device cuda --batch 64
"""
import argparse
import logging
import os.path as osp
import statistics
import time
from typing import Callable, List, Optional

import torch
from mmengine.config import Config, DictAction
from mmengine.logging import MessageHub, MMLogger
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope
from mmengine.runner import Runner
from mmpretrain.registry import MODELS

import gmproto_mm  # noqa: F401  (registers components)
from gmproto_mm.analysis.em_cost import measure_em_ratio
from gmproto_mm.models.mixture import ReseedIdle
from gmproto_mm.models.utils import attach_em_updater
from gmproto_mm.testing import random_batch

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--joint', default='configs/dino/dino_vit-tiny-p8_1xb64-3e_fmnist.py',
                        help='config of the joint (learned-prototype) model')
    parser.add_argument('--decoupled',
                        default='configs/dino/dino-gmm_vit-tiny-p8_1xb64-3e_fmnist.py',
                        help='config of the decoupled (GMM) model')
    parser.add_argument('--batch', type=int, default=128,
                        help='images per GPU/process')
    parser.add_argument('--iters', type=int, default=10,
                        help='timed iterations per model')
    parser.add_argument('--warmup', type=int, default=2,
                        help='untimed first iterations per model')
    parser.add_argument('--device', default='cpu',
                        help="where to run: 'cpu' or 'cuda'")
    parser.add_argument('--random-data', action='store_true',
                        help='random batches instead of the config data')
    parser.add_argument('--skip-em', action='store_true',
                        help='skip the EM update / matmul benchmark')
    parser.add_argument('--decoupled-options', nargs='+', action=DictAction,
                        help='override keys of the decoupled config, e.g. '
                        'model.head.num_prototypes=1024 for the joint '
                        "config's K")
    return parser.parse_args()


def build_step(config: str, device: str,
               options: Optional[dict] = None) -> Callable[[dict], None]:
    """One training iteration of ``config`` (with ``options`` merged):
    train_step + EM updates."""
    cfg = Config.fromfile(osp.join(ROOT, config))
    if options:
        cfg.merge_from_dict(options)
    print(f'{config}: K = {cfg.model.head.get("num_prototypes")}')
    model = MODELS.build(cfg.model).to(device)
    # mmengine logs every parameter's initialisation and weight-decay rule
    # at INFO (hundreds of lines before the ratios): warnings only here
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        model.init_weights()
        optim = build_optim_wrapper(model, cfg.optim_wrapper)
    finally:
        logger.setLevel(level)
    model.train()
    # EM in step(), timed in its steady state: a schedule of one update
    # (beta = 1), no initial pooling, re-seeding (if on) from the start
    banks = attach_em_updater(model, 'benchmark.py', training_updates=1)
    for _, bank in banks:
        bank.gmm.init_samples = 1
        for strategy in bank.gmm.strategies:
            if isinstance(strategy, ReseedIdle):
                strategy.start = 0

    def step(batch: dict) -> None:
        model.train_step(batch, optim)
        for _, bank in banks:  # what OnlineEMHook does after the step
            bank.gmm.update(bank.pop_cached_embeddings())

    return step


def make_batches(config: str, batch_size: int, count: int,
                 random_data: bool) -> List[dict]:
    cfg = Config.fromfile(osp.join(ROOT, config))
    if not random_data:
        try:
            loader_cfg = cfg.train_dataloader.copy()
            loader_cfg.update(batch_size=batch_size, num_workers=0,
                              persistent_workers=False)
            loader = Runner.build_dataloader(loader_cfg, seed=0)
            batches = []
            for batch in loader:
                batches.append(batch)
                if len(batches) == count:
                    return batches
        except (FileNotFoundError, RuntimeError, ValueError) as err:
            print(f'no config data ({err}); using random batches')
    return [random_batch(cfg, batch_size) for _ in range(count)]


def sync(device: str) -> None:
    if device.startswith('cuda'):
        torch.cuda.synchronize()


def main() -> None:
    args = parse_args()
    init_default_scope('mmpretrain')
    MessageHub.get_current_instance().update_info('max_iters', 10**6)
    torch.manual_seed(0)
    steps = dict(joint=build_step(args.joint, args.device),
                 decoupled=build_step(args.decoupled, args.device,
                                      args.decoupled_options))
    batches = make_batches(args.joint, args.batch,
                           args.warmup + args.iters, args.random_data)
    times = dict(joint=[], decoupled=[])
    for i, batch in enumerate(batches):
        for name in ('joint', 'decoupled') if i % 2 else ('decoupled',
                                                           'joint'):
            sync(args.device)
            start = time.perf_counter()
            steps[name](batch)
            sync(args.device)
            if i >= args.warmup:
                times[name].append(time.perf_counter() - start)
    joint, decoupled = (statistics.median(times[k])
                        for k in ('joint', 'decoupled'))
    print(f'median iteration: joint {joint:.4f} s, decoupled '
          f'{decoupled:.4f} s ({args.iters} each, alternating, same batches)')
    print(f'ratio decoupled/joint = {decoupled / joint:.3f} (target <= 1.03)')
    if not args.skip_em:
        em = measure_em_ratio(65536, 256, 512, 5, args.device)
        print(f'EM update / matmul (K=65536, D=256, N=512): {em}')


if __name__ == '__main__':
    main()
