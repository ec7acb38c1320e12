from .checkpoint_check import CheckpointFitHook, checkpoint_mismatches
from .cpu_distributed import prepare_cpu_distributed
from .hooks import *  # noqa: F401,F403
from .optimizers import QuietFrozenOptimWrapperConstructor
from .safe_checkpoint import (SafeCheckpointHook, restore_history_buffers,
                              to_weights_only)

__all__ = [
    'CheckpointFitHook', 'checkpoint_mismatches',
    'prepare_cpu_distributed', 'QuietFrozenOptimWrapperConstructor',
    'SafeCheckpointHook', 'restore_history_buffers', 'to_weights_only'
]
