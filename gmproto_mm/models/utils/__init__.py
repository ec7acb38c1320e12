from .block_mask import block_masks
from .em_bank import GMMPrototypeBank
from .online_gmm import OnlineGaussianMixture

__all__ = ['GMMPrototypeBank', 'OnlineGaussianMixture', 'block_masks']
