"""``tools/train.py``'s command line (mmpretrain's flags) and how the flags
change the config."""
import argparse
import os
import os.path as osp
from typing import Optional, Sequence

from mmengine.config import Config, DictAction


def parse_train_args(argv: Optional[Sequence[str]] = None
                     ) -> argparse.Namespace:
    """Parse ``tools/train.py``'s arguments (``sys.argv[1:]`` if ``argv`` is
    None) and set ``LOCAL_RANK`` from ``--local-rank`` unless the launcher
    set it already."""
    parser = argparse.ArgumentParser(description='Train a model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='where to save logs and models')
    parser.add_argument(
        '--resume', nargs='?', type=str, const='auto',
        help='resume from this checkpoint, or from the latest one in the '
        'work directory if no path is given')
    parser.add_argument('--amp', action='store_true',
                        help='automatic mixed precision training')
    parser.add_argument(
        '--no-validate', action='store_true',
        help='skip the validation during training (e.g. the online k-NN '
        'of configs/_base_/datasets/fmnist_knn-val.py)')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='scale the lr by actual / base batch size')
    parser.add_argument('--no-pin-memory', action='store_true',
                        help='disable pin_memory in dataloaders')
    parser.add_argument('--no-persistent-workers', action='store_true',
                        help='disable persistent_workers in dataloaders')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override config entries, applied after the other flags, '
        'e.g. train_cfg.max_epochs=1')
    parser.add_argument('--launcher',
                        choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    # torch.distributed.launch passes --local-rank, torchrun sets LOCAL_RANK
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0,
                        help='set by the distributed launcher')
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def merge_train_args(cfg: Config, args: argparse.Namespace) -> Config:
    """Apply the command-line flags to the config, ``--cfg-options`` last
    (as mmpretrain); ``cfg`` is changed in place and returned."""
    if args.no_validate:
        cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    cfg.launcher = args.launcher
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
    if args.amp:
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    if args.resume == 'auto':
        cfg.resume, cfg.load_from = True, None
    elif args.resume is not None:
        cfg.resume, cfg.load_from = True, args.resume
    if args.auto_scale_lr:
        cfg.auto_scale_lr.enable = True
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        if cfg.get(loader) is None:
            continue
        if args.no_pin_memory:
            cfg[loader]['pin_memory'] = False
        if args.no_persistent_workers:
            cfg[loader]['persistent_workers'] = False
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    return cfg
