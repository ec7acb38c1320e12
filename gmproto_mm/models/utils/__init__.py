from .online_gmm import OnlineGaussianMixture

__all__ = ['OnlineGaussianMixture']
