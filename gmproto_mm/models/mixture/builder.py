"""Building the mixture from a config's keyword dict, through the
registry (mmpretrain's ``MODELS``, where the package registers its
models), with messages that name the config path."""
import inspect
from typing import Optional

from mmpretrain.registry import MODELS

from .maintenance import MAINTENANCE_DEFAULTS
from .online_em import OnlineGaussianMixture
from .options import check_keys, flat_maintenance

MODELS.register_module(module=OnlineGaussianMixture)

#: Options that were renamed or removed, and what replaced them.
RENAMED = dict(
    reseed_idle='maintenance.reseed_rate (idle components re-seeded per '
    'batch row: reseed_idle=4 at 128 rows per update is reseed_rate=1/32)',
    reseed_pick="nothing (re-seeding always picks far rows, as 'kmeans++')")


def build_mixture(num_components: int, dim: int,
                  options: Optional[dict] = None,
                  where: str = 'gmm') -> OnlineGaussianMixture:
    """An :class:`OnlineGaussianMixture` from a config's keyword dict.

    Unknown keys raise an error that names the mixture, the config key path
    (``where``, e.g. ``'model.head.gmm'``), the closest accepted key and every
    accepted key -- instead of a bare ``TypeError`` --, options that were
    renamed say what replaced them, and a bad value names the path too. The
    maintenance options given flat (``reseed_rate=...`` beside
    ``forgetting``) still work, with a ``FutureWarning`` naming the grouped
    key (they override the group's).

    Args:
        num_components (int): ``K``.
        dim (int): ``D``.
        options (dict, optional): Keyword arguments of the mixture.
        where (str): Where ``options`` sit in the config, for messages.
            Defaults to ``'gmm'``.

    Raises:
        ValueError: On an unknown key or a bad value.
    """
    options = dict(options or {})
    flat = flat_maintenance(
        {k: options.pop(k) for k in MAINTENANCE_DEFAULTS if k in options},
        MAINTENANCE_DEFAULTS, where)
    accepted = [name for name in inspect.signature(
        OnlineGaussianMixture.__init__).parameters
        if name not in ('self', 'num_components', 'dim', 'flat')]
    check_keys(options, accepted, 'OnlineGaussianMixture', where, RENAMED)
    maintenance = options.get('maintenance') or {}
    check_keys(maintenance, MAINTENANCE_DEFAULTS, 'maintenance',
               f'{where}.maintenance', RENAMED)
    if flat:
        options['maintenance'] = dict(maintenance, **flat)
    try:
        return MODELS.build(dict(type='OnlineGaussianMixture',
                                 num_components=num_components, dim=dim,
                                 **options))
    except ValueError as err:
        raise ValueError(f'{where}: {err}') from err
