"""Train a gmproto_mm / mmpretrain config (mmpretrain's flags; the command
line is :mod:`gmproto_mm.apis.train_args`)."""
from mmengine.config import Config
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

import gmproto_mm  # noqa: F401  (registers components)
from gmproto_mm.apis import load_config, merge_train_args, parse_train_args
from gmproto_mm.compat import flush_cpu_denormals, use_full_checkpoint_loader
from gmproto_mm.engine import CheckpointFitHook, prepare_cpu_distributed

flush_cpu_denormals()  # before torch starts its CPU threads
use_full_checkpoint_loader()  # --resume / load_from under torch >= 2.6


def build_runner(cfg: Config) -> Runner:
    """mmengine's ``Runner``, or the config's ``runner_type`` (mmpretrain)."""
    cfg = prepare_cpu_distributed(cfg)
    if 'runner_type' not in cfg:
        return Runner.from_cfg(cfg)
    return RUNNERS.build(cfg)


def main(argv=None) -> None:
    args = parse_train_args(argv)
    cfg = merge_train_args(load_config(args.config), args)
    runner = build_runner(cfg)
    if cfg.get('resume'):
        # mmengine resumes the weights non-strictly: a checkpoint of another
        # config would go on training with part of the model fresh. (A
        # plain load_from stays non-strict: loading a part, e.g. a
        # pretrained backbone, is its use.)
        runner.register_hook(CheckpointFitHook(args.config))
    runner.train()


if __name__ == '__main__':
    main()
