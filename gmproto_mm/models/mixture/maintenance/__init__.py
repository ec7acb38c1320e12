"""Component maintenance: options of ours around the paper's online EM.

Each is a :class:`MixtureStrategy` in its own module, called by the EM core
at fixed points of an update (:mod:`.base`); each is off by default and
each is a rate relative to the rows seen or to ``K``, so the same value
serves ``K = 256`` and ``K = 65,536``:

* :class:`ReseedIdle` (``reseed_rate``, ``reseed_start``), :mod:`.reseed`;
* :class:`StaleDecay` (``stale_decay``), :mod:`.stale_decay`;
* :class:`MergeClose` (``merge_within``), :mod:`.merge`.

A mixture takes them grouped, ``maintenance=dict(reseed_rate=...,
reseed_start=..., merge_within=..., stale_decay=...)``
(:func:`build_maintenance`).
"""
from typing import List, Optional

from ..options import check_keys, check_schedule
from .base import MIXTURE_STRATEGIES, UNCHECKED, MixtureStrategy, UpdateStep
from .merge import (IN_TURN_DIVISOR, MERGE_ROUNDS, MOVED, OVERDRAWN_DIVISOR,
                    SWEEP_DIVISOR, MergeClose, MergeResult, close_pairs,
                    disjoint_merges, in_turn, nearest_pairs, never_checked,
                    overdrawn, pair_distances, sweep_block)
from .reseed import (IDLE_MASS, ReseedIdle, gap_of, idle_components,
                     max_cosine, pick_far_rows, reseed_count)
from .stale_decay import StaleDecay, stale_decay_factor

#: The keys of ``maintenance=dict(...)``, with their defaults (all off).
MAINTENANCE_DEFAULTS = dict(reseed_rate=0.0, reseed_start=0,
                            merge_within=0.0, stale_decay=0.0)


def build_maintenance(options: Optional[dict], noise: float = 0.01,
                      where: str = 'maintenance') -> List[MixtureStrategy]:
    """The strategies a ``maintenance`` dict switches on, in the order the
    core calls them (stale decay, re-seeding, merging: merging checks the
    re-seeded means).

    Args:
        options (dict, optional): ``reseed_rate`` (idle components
            re-seeded per batch row, 0 = off), ``reseed_start`` (first
            update that may re-seed: an int or a fraction of training),
            ``merge_within`` (a distance, 0 = off), ``stale_decay`` (per
            ``K`` rows seen, 0 = off).
        noise (float): The mixture's ``init_noise``, for re-seeded means.
        where (str): Where ``options`` sit in the config, for messages.

    Raises:
        ValueError: On an unknown key or a bad value.
    """
    options = dict(options or {})
    check_keys(options, MAINTENANCE_DEFAULTS, 'maintenance', where)
    opts = dict(MAINTENANCE_DEFAULTS, **options)
    check_schedule('reseed_start', opts['reseed_start'])
    on = [
        dict(type='StaleDecay', decay=opts['stale_decay']),
        dict(type='ReseedIdle', rate=opts['reseed_rate'],
             start=opts['reseed_start'], keep_apart=opts['merge_within'],
             noise=noise),
        dict(type='MergeClose', within=opts['merge_within'])
    ]
    return [MIXTURE_STRATEGIES.build(cfg) for cfg, value in zip(
        on, (opts['stale_decay'], opts['reseed_rate'], opts['merge_within']))
            if value != 0]


__all__ = [
    'IDLE_MASS', 'IN_TURN_DIVISOR', 'MAINTENANCE_DEFAULTS', 'MERGE_ROUNDS',
    'MIXTURE_STRATEGIES', 'MOVED', 'OVERDRAWN_DIVISOR', 'SWEEP_DIVISOR',
    'MergeClose',
    'MergeResult', 'MixtureStrategy', 'ReseedIdle', 'StaleDecay',
    'UpdateStep', 'build_maintenance', 'close_pairs', 'disjoint_merges',
    'UNCHECKED', 'gap_of', 'idle_components', 'max_cosine', 'nearest_pairs',
    'in_turn', 'never_checked', 'overdrawn',
    'pair_distances', 'pick_far_rows', 'reseed_count', 'sweep_block',
    'stale_decay_factor'
]
