"""gmproto_mm: decoupled Gaussian-mixture prototypes for self-supervised
learning (arXiv 2510.20108) as MMEngine/MMPretrain components.

Importing the package applies :mod:`gmproto_mm.compat` and registers every
component into mmpretrain's registries.
"""
from . import compat  # noqa: F401  (first: fixes apply before anything runs)
from . import datasets, engine, evaluation, models  # noqa: F401
from .version import __version__

__all__ = ['__version__']
