"""The prototype step: a diagonal Gaussian mixture on the sphere, fitted by
online EM (arXiv 2510.20108).

- :mod:`.online_em`: the paper's EM loop and its state
  (:class:`OnlineGaussianMixture`);
- :mod:`.initialisation`: where the means start;
- :mod:`.maintenance`: re-seeding, merging and stale decay, strategies of
  ours the loop calls at fixed points (:class:`MixtureStrategy`);
- :mod:`.numerics`, :mod:`.options`: pieces written once;
- :mod:`.builder`: :func:`build_mixture`, through the registry.
"""
from . import maintenance
from .builder import build_mixture
from .initialisation import INITS, check_init_cost, initial_means
from .maintenance import (IDLE_MASS, MIXTURE_STRATEGIES, MergeClose,
                          MixtureStrategy, ReseedIdle, StaleDecay)
from .online_em import EStep, OnlineGaussianMixture, RowFit

__all__ = [
    'EStep', 'IDLE_MASS', 'INITS', 'MIXTURE_STRATEGIES', 'MergeClose',
    'MixtureStrategy', 'OnlineGaussianMixture', 'ReseedIdle', 'RowFit',
    'StaleDecay', 'build_mixture', 'check_init_cost', 'initial_means'
]
