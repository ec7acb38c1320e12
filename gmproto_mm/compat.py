"""Fixes for library versions this project runs on, applied once on import.

Each fix is small, says why it exists, and is a no-op where the library is
already right.
"""
import numpy as np
import torch


def _allow_mmengine_checkpoint_objects() -> None:
    """Let ``torch.load(weights_only=True)`` read mmengine's resume state.

    Why: torch >= 2.6 loads with ``weights_only=True`` by default, and
    mmengine 0.10.7 stores a ``HistoryBuffer`` (with numpy arrays and scalars)
    of the message hub in every checkpoint, so ``--resume`` fails. We allow
    exactly those types instead of turning the safe loader off.
    """
    add_safe_globals = getattr(torch.serialization, 'add_safe_globals', None)
    if add_safe_globals is None:  # torch < 2.4 has no weights_only default
        return
    from mmengine.logging import HistoryBuffer

    # numpy 2 renamed ``numpy.core`` to ``numpy._core``
    core = np._core if hasattr(np, '_core') else np.core
    numpy_globals = [
        np.ndarray, np.dtype, core.multiarray._reconstruct,
        core.multiarray.scalar
    ]
    # numpy 2 pickles dtypes by their class, e.g. ``numpy.dtypes.Float64DType``
    dtypes = getattr(np, 'dtypes', None)
    if dtypes is not None:
        numpy_globals += [
            getattr(dtypes, name) for name in dir(dtypes)
            if name.endswith('DType')
        ]
    add_safe_globals([HistoryBuffer, *numpy_globals])


def apply() -> None:
    """Apply every fix (idempotent)."""
    _allow_mmengine_checkpoint_objects()
    # The numpy-2-safe ColorJitter lives in
    # ``gmproto_mm.datasets.transforms.color_jitter`` and replaces mmpretrain's
    # registration when ``gmproto_mm`` is imported.


apply()
