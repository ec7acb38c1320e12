"""gmproto_mm: decoupled Gaussian-mixture prototypes for self-supervised
learning (arXiv 2510.20108) as MMEngine/MMPretrain components.

Importing the package registers every component into mmpretrain's
registries under its own name, and changes nothing else: the fixes for
library versions in :mod:`gmproto_mm.compat` are applied where asked for.
"""
from . import compat  # noqa: F401  (first: checks mmcv before mmpretrain)
from . import datasets, engine, evaluation, models  # noqa: F401
from .version import __version__

__all__ = ['__version__']
