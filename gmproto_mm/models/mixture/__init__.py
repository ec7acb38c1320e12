"""The prototype step: a diagonal Gaussian mixture on the sphere, fitted by
online EM (arXiv 2510.20108).

- :mod:`.online_em`: the EM loop and its state
  (:class:`OnlineGaussianMixture`);
- :mod:`.initialisation`: where the means start;
- :mod:`.maintenance`: re-seeding, merging and stale decay, options of ours
  the loop calls.
"""
from .initialisation import INITS, check_init_cost, initial_means
from .maintenance import IDLE_MASS
from .online_em import OnlineGaussianMixture, build_mixture

__all__ = [
    'IDLE_MASS', 'INITS', 'OnlineGaussianMixture', 'build_mixture',
    'check_init_cost', 'initial_means'
]
