from .block_mask import block_masks
from .em_bank import GMMPrototypeBank, attach_em_updater, find_em_banks

__all__ = [
    'GMMPrototypeBank', 'attach_em_updater', 'block_masks', 'find_em_banks'
]
