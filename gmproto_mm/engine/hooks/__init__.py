from .freeze_prototypes_hook import FreezePrototypesHook

__all__ = ['FreezePrototypesHook']
