"""What the user tools (``tools/train.py``, ``tools/test.py``) and the
research tools share about running a config, as mmpretrain's ``apis``:
importable, so that no tool loads another by path.

* :mod:`.train_args` -- ``tools/train.py``'s command line and how its flags
  change the config (``tools/analysis/gpu_check.py`` builds its runs the
  same way).
* :mod:`.config` -- reading a config file, with the fix named when an
  ``mmpretrain::`` base cannot be resolved.

Research helpers (measurements, the demo's train-and-evaluate protocol)
live in :mod:`gmproto_mm.analysis`. Neither package is imported by
``import gmproto_mm``: they register nothing.

Example:
    >>> from mmengine.config import Config
    >>> from gmproto_mm.apis import merge_train_args, parse_train_args
    >>> args = parse_train_args(['configs/dino/dino-gmm_vit-tiny-p8_1xb64-3e_fmnist.py', '--amp'])
    >>> cfg = merge_train_args(Config.fromfile(args.config), args)
    >>> cfg.optim_wrapper.type
    'AmpOptimWrapper'
"""
from .config import load_config
from .train_args import merge_train_args, parse_train_args

__all__ = ['load_config', 'merge_train_args', 'parse_train_args']
