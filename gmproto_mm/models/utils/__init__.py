from .block_mask import block_masks
from .em_bank import GMMPrototypeBank, attach_em_updater, find_em_banks
from .online_gmm import OnlineGaussianMixture

__all__ = [
    'GMMPrototypeBank', 'OnlineGaussianMixture', 'attach_em_updater',
    'block_masks', 'find_em_banks'
]
