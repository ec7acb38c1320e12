"""Fixes for library versions this project runs on, each applied where it
is asked for: importing ``gmproto_mm`` changes no other library.

Each fix is small and says why it exists:

* :func:`use_full_checkpoint_loader`: mmengine's local checkpoint loader,
  readable under torch >= 2.6; our tools call it at start-up.
* ``NumpySafeColorJitter`` (:mod:`gmproto_mm.datasets.transforms.
  color_jitter`): mmpretrain's ``ColorJitter`` under numpy 2 and on gray
  images, registered under its own name; our configs name it.

Imported first by ``gmproto_mm``, this module also checks that an mmcv
flavour is installed (:func:`require_mmcv`) before anything imports
mmpretrain.
"""
import importlib.util
import os.path as osp
import pickle
import zipfile

import torch
from mmengine.runner.checkpoint import CheckpointLoader


MMCV_INSTALL_HINT = (
    'Install one of them, never both:\n'
    '    pip install "mmcv-lite>=2.0.0,<2.4.0"  # pure Python, enough for '
    'gmproto_mm (or: pip install -e ".[lite]")\n'
    '    pip install "mmcv>=2.0.0,<2.4.0"       # compiled ops for your '
    'torch / CUDA (or: pip install -e ".[full]"; mim install '
    '"mmcv>=2.0.0,<2.4.0" finds a prebuilt wheel)')


def require_mmcv() -> None:
    """Raise an ImportError naming both mmcv flavours if neither is there.

    Why: mmpretrain imports ``mmcv`` (2.x), which comes as ``mmcv-lite``
    (pure Python) or ``mmcv`` (compiled ops). Like mmpretrain, this package
    requires neither by name (an installed full mmcv cannot be seen from
    pip's build isolation, and installing both breaks both), so a missing
    one would otherwise surface as a bare ``No module named 'mmcv'`` deep
    inside mmpretrain.

    Raises:
        ImportError: When no module ``mmcv`` can be found; the message
            gives the two pip commands.
    """
    try:
        found = importlib.util.find_spec('mmcv') is not None
    except ValueError:  # sys.modules['mmcv'] is None: its import is blocked
        found = False
    if not found:
        raise ImportError(
            'gmproto_mm needs mmcv 2.0 - 2.3 (mmpretrain imports it), and '
            'neither mmcv-lite nor mmcv is installed. ' + MMCV_INSTALL_HINT)


def _load_local_checkpoint(filename: str, map_location=None) -> dict:
    """mmengine's local checkpoint loader with ``weights_only=False`` and an
    error that names a corrupt file (see :func:`use_full_checkpoint_loader`).
    """
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'checkpoint {filename!r} does not exist')
    try:
        return torch.load(filename, map_location=map_location,
                          weights_only=False)
    except (EOFError, RuntimeError, pickle.UnpicklingError, ValueError,
            zipfile.BadZipFile) as err:
        # torch names neither the file nor the likely cause
        raise ValueError(
            f'checkpoint {filename!r} cannot be read: it is truncated or '
            f'corrupt (an interrupted save or copy?), {osp.getsize(filename)}'
            f' bytes ({type(err).__name__}: {err}). Use another checkpoint '
            '(e.g. the previous epoch_*.pth; for --resume, point the work '
            "dir's last_checkpoint file at it)") from err


def flush_cpu_denormals() -> None:
    """Flush fp32 denormals to zero on the CPU (no effect on CUDA).

    Why: once a ViT's attention turns sharp, its softmax backward produces
    denormal numbers (< 1.2e-38), and every CPU matmul that touches them
    takes a microcode slow path: on the trained Fashion-MNIST demo model a
    decoupled training step took 0.22 s instead of 0.11 s on 2 cores.
    ``torch.set_flush_denormal`` sets the calling thread's flag, which the
    intra-op threads inherit only if they start later, so call it before
    the first parallel op. Values below 1.2e-38 become 0. A process-wide
    mode, so not applied on import: ``tools/train.py`` and ``tools/test.py``
    call it at start-up.
    """
    torch.set_flush_denormal(True)  # False (no-op) on CPUs without SSE3


def use_full_checkpoint_loader() -> None:
    """Make mmengine load local checkpoints in full (idempotent).

    Needed with torch >= 2.6 and mmengine <= 0.10.7 (the latest release at
    the time of writing): torch 2.6 made ``torch.load`` default to
    ``weights_only=True``, but mmengine's local loader calls it without the
    argument while its ``Runner`` pickles the message hub (``HistoryBuffer``
    objects with numpy arrays and bound methods, reduced through
    ``getattr``) into every checkpoint, so ``--resume``, ``load_from`` and
    ``load_checkpoint`` of a training checkpoint fail. Allow-listing
    ``getattr`` would make the safe loader unsafe anyway, so local
    checkpoints (the user's own files, as before torch 2.6) load with
    ``weights_only=False``. With torch < 2.6 that is torch's default, and
    the loader adds only an error that names a truncated or corrupt file
    (torch names neither the file nor the cause).

    This replaces mmengine's default (``''`` prefix) scheme for the whole
    process, through mmengine's own registration API (remote schemes are
    untouched), so it is not done on import: ``tools/train.py``,
    ``tools/test.py`` and the tools that load checkpoints call it.
    """
    CheckpointLoader.register_scheme(
        prefixes='', loader=_load_local_checkpoint, force=True)


require_mmcv()
