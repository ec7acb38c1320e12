from .quiet_frozen_constructor import QuietFrozenOptimWrapperConstructor

__all__ = ['QuietFrozenOptimWrapperConstructor']
