from .em_bank import GMMPrototypeBank
from .online_gmm import OnlineGaussianMixture

__all__ = ['GMMPrototypeBank', 'OnlineGaussianMixture']
