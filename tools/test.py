"""Evaluate a checkpoint: prototype diversity, usage and k-NN accuracy."""
import argparse
import json
import os
import os.path as osp

from mmengine.config import Config, DictAction
from mmengine.dist import is_main_process
from mmengine.runner import Runner
from mmengine.utils import mkdir_or_exist

import gmproto_mm  # noqa: F401  (registers components, applies compat)
from gmproto_mm.compat import flush_cpu_denormals
from gmproto_mm.engine import CheckpointFitHook, prepare_cpu_distributed

flush_cpu_denormals()  # before torch starts its CPU threads


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Test (evaluate) a model')
    parser.add_argument('config', help='config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='where to save logs and metrics')
    parser.add_argument('--out', help='dump the metrics to this JSON file')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override config entries, e.g. test_dataloader.batch_size=64')
    parser.add_argument('--launcher',
                        choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def main() -> None:
    args = parse_args()
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    missing = [k for k in ('test_dataloader', 'test_evaluator', 'test_cfg')
               if cfg.get(k) is None]
    if missing:
        raise ValueError(f'{args.config} defines no {", ".join(missing)}; '
                         'inherit a config with an evaluation section.')
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f'checkpoint {args.checkpoint!r} not found')
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
    cfg.load_from = args.checkpoint
    runner = Runner.from_cfg(prepare_cpu_distributed(cfg))
    # mmengine loads load_from non-strictly; a checkpoint of another config
    # would be evaluated half-random
    runner.register_hook(CheckpointFitHook(args.config))
    metrics = runner.test()
    if args.out is not None and is_main_process():
        mkdir_or_exist(osp.dirname(osp.abspath(args.out)))
        with open(args.out, 'w') as f:
            json.dump(metrics, f, indent=2)
        print(f'metrics written to {args.out}')


if __name__ == '__main__':
    main()
