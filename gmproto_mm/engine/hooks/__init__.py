from .freeze_prototypes_hook import FreezePrototypesHook
from .online_em_hook import OnlineEMHook, all_gather_rows, find_em_banks
from .prototype_monitor_hook import PrototypeMonitorHook, find_prototype_banks

__all__ = [
    'FreezePrototypesHook', 'OnlineEMHook', 'PrototypeMonitorHook',
    'all_gather_rows', 'find_em_banks', 'find_prototype_banks'
]
