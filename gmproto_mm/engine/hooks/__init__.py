from .freeze_prototypes_hook import FreezePrototypesHook
from .online_em_hook import OnlineEMHook, all_gather_rows, find_em_banks

__all__ = [
    'FreezePrototypesHook', 'OnlineEMHook', 'all_gather_rows', 'find_em_banks'
]
