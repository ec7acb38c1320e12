"""Evaluate a checkpoint: prototype diversity, usage and k-NN accuracy.

Flags as mmpretrain's ``tools/test.py``: ``--out F.pkl`` dumps the
predictions (per sample the teacher's assigned prototype and, for k-NN
queries, the k-NN prediction; ``DumpPredictions``), ``--out F.json
--out-item metrics`` writes the metrics instead.
"""
import argparse
import json
import os
import os.path as osp

import mmengine
from mmengine.config import Config, DictAction
from mmengine.dist import is_main_process
from mmengine.registry import RUNNERS
from mmengine.runner import Runner
from mmengine.utils import mkdir_or_exist
from mmpretrain.utils import get_ori_model

import gmproto_mm  # noqa: F401  (registers components)
from gmproto_mm.apis import load_config
from gmproto_mm.compat import flush_cpu_denormals, use_full_checkpoint_loader
from gmproto_mm.engine import CheckpointFitHook, prepare_cpu_distributed
from gmproto_mm.engine.hooks import find_em_banks
from gmproto_mm.evaluation import DumpPredictions, KNNAccuracy

flush_cpu_denormals()  # before torch starts its CPU threads
use_full_checkpoint_loader()  # the checkpoint, under torch >= 2.6


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Test (evaluate) a model')
    parser.add_argument('config', help='config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='where to save logs and metrics')
    parser.add_argument(
        '--out',
        help='dump the predictions to this .pkl file (per sample: the '
        "teacher's assigned prototype and, for k-NN queries, the k-NN "
        'prediction with its label); with --out-item metrics, the metrics '
        '(.json, .yaml or .pkl)')
    parser.add_argument(
        '--out-item', choices=['metrics', 'pred'],
        help='what --out holds: predictions (default) or metrics')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override config entries, applied after the other flags, '
        'e.g. test_dataloader.batch_size=64')
    parser.add_argument('--amp', action='store_true',
                        help='automatic mixed precision (test_cfg.fp16)')
    parser.add_argument('--no-pin-memory', action='store_true',
                        help='disable pin_memory in the test dataloader')
    parser.add_argument('--launcher',
                        choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    # torch.distributed.launch passes --local-rank, torchrun sets LOCAL_RANK
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0,
                        help='set by the distributed launcher')
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    if args.out is None and args.out_item is not None:
        raise ValueError('--out-item needs --out: give the path of the '
                         'output file with --out')
    if args.out is not None and args.out_item in (None, 'pred') and \
            not args.out.endswith(('.pkl', '.pickle')):
        raise ValueError(
            f'--out {args.out}: predictions are dumped as a pickle '
            '(mmengine DumpResults), so the file must end in .pkl; for '
            'the metrics add --out-item metrics')
    return args


def merge_args(cfg: Config, args: argparse.Namespace) -> Config:
    """Apply the command-line flags to the config, ``--cfg-options`` last
    (as mmpretrain)."""
    cfg.launcher = args.launcher
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
    cfg.load_from = args.checkpoint
    if args.amp and cfg.get('test_cfg') is not None:
        cfg.test_cfg.fp16 = True
    if args.no_pin_memory and cfg.get('test_dataloader') is not None:
        cfg.test_dataloader.pin_memory = False
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    missing = [k for k in ('test_dataloader', 'test_evaluator', 'test_cfg')
               if cfg.get(k) is None]
    if missing:
        raise ValueError(f'{args.config} defines no {", ".join(missing)}; '
                         'inherit a config with an evaluation section.')
    return cfg


def build_runner(cfg: Config) -> Runner:
    """mmengine's ``Runner``, or the config's ``runner_type`` (mmpretrain)."""
    cfg = prepare_cpu_distributed(cfg)
    if 'runner_type' not in cfg:
        return Runner.from_cfg(cfg)
    return RUNNERS.build(cfg)


def add_prediction_dump(runner: Runner, out: str) -> None:
    """Append ``DumpPredictions`` to the test evaluator, with the k and T
    of the config's ``KNNAccuracy`` (if it has one)."""
    metrics = runner.test_evaluator.metrics
    knn = next((m for m in metrics if isinstance(m, KNNAccuracy)), None)
    options = dict(k=knn.k, temperature=knn.temperature) if knn else {}
    metrics.append(DumpPredictions(out_file_path=out, **options))


def main(argv=None) -> None:
    args = parse_args(argv)
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f'checkpoint {args.checkpoint!r} not found')
    cfg = merge_args(load_config(args.config), args)
    runner = build_runner(cfg)
    # mmengine loads load_from non-strictly; a checkpoint of another config
    # would be evaluated half-random
    runner.register_hook(CheckpointFitHook(args.config))
    if args.out is not None and args.out_item in (None, 'pred'):
        add_prediction_dump(runner, args.out)
    metrics = runner.test()
    unfitted = [name for name, bank in find_em_banks(
        get_ori_model(runner.model)) if not bool(bank.gmm.initialized)]
    if unfitted:
        # its means are the uniform placeholders: 100 % unique, not fitted
        metrics['prototypes/mixture_initialized'] = 0.0
        runner.logger.warning(
            f'the Gaussian mixture of {", ".join(unfitted)} was never '
            'initialised in training (fewer rows arrived than init_samples):'
            ' its prototypes are the placeholder uniform means, so the '
            'diversity above says nothing about collapse')
    if args.out is not None and args.out_item == 'metrics' and \
            is_main_process():
        mkdir_or_exist(osp.dirname(osp.abspath(args.out)))
        if args.out.endswith('.json'):
            with open(args.out, 'w') as f:
                json.dump(metrics, f, indent=2)
        else:
            mmengine.dump(metrics, args.out)
        print(f'metrics written to {args.out}')


if __name__ == '__main__':
    main()
