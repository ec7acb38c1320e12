"""Fixes for library versions this project runs on, applied once on import.

Each fix is small and says why it exists. The numpy-2-safe ``ColorJitter``
lives in :mod:`gmproto_mm.datasets.transforms.color_jitter` (it replaces
mmpretrain's registration when ``gmproto_mm`` is imported).
"""
import os.path as osp

import torch
from mmengine.runner.checkpoint import CheckpointLoader


def _load_local_checkpoint(filename: str, map_location=None) -> dict:
    """mmengine's local checkpoint loader, readable under torch >= 2.6.

    Why: torch >= 2.6 loads with ``weights_only=True`` by default, but
    mmengine 0.10.7 pickles its message hub (``HistoryBuffer`` objects with
    numpy arrays and bound methods, reduced through ``getattr``) into every
    checkpoint, so ``--resume`` fails. Allow-listing ``getattr`` would make
    the safe loader unsafe anyway, so local checkpoints (the user's own
    files, as before torch 2.6) load with ``weights_only=False``.
    """
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'checkpoint {filename!r} does not exist')
    return torch.load(filename, map_location=map_location, weights_only=False)


def apply() -> None:
    """Apply every fix (idempotent)."""
    # Replaces mmengine's default ('' prefix) scheme through its own
    # registration API; remote schemes are untouched.
    CheckpointLoader.register_scheme(
        prefixes='', loader=_load_local_checkpoint, force=True)


apply()
