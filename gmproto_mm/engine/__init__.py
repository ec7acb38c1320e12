from .cpu_distributed import prepare_cpu_distributed
from .hooks import *  # noqa: F401,F403
from .optimizers import QuietFrozenOptimWrapperConstructor

__all__ = ['prepare_cpu_distributed', 'QuietFrozenOptimWrapperConstructor']
