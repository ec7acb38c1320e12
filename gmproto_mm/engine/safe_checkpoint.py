"""Training checkpoints that ``torch.load(weights_only=True)`` reads.

Why: torch >= 2.6 loads with ``weights_only=True`` by default, and mmengine
(<= 0.10.7) calls ``torch.load`` without the argument, while its
``Runner`` pickles the message hub into every checkpoint: ``HistoryBuffer``
objects (numpy arrays, and their statistics functions reduced through
``getattr``) and numpy scalars. So mmpretrain's ``get_model(cfg,
pretrained=ckpt)``, its ``tools/test.py`` and ``tools/train.py --resume``
refuse a checkpoint of ours with ``Unsupported global: ... HistoryBuffer``.

Of the ways to make them accept one, this module takes the narrowest:
it changes what the checkpoint holds, not how anything loads.
:class:`SafeCheckpointHook` (in ``default_hooks`` of our runtime base)
stores each ``HistoryBuffer`` as a dict of tensors and numpy values as
tensors or Python numbers when mmengine saves, and turns the dicts back
into ``HistoryBuffer`` objects when a runner loads the file, before the
message hub reads them, so a resumed run logs exactly as before. Nothing
else in the process changes, and the loaders keep torch's safe mode.
The alternatives stay as they were: allow-listing ``HistoryBuffer`` would
need ``getattr`` too, which makes the safe loader unsafe, and
:func:`gmproto_mm.compat.use_full_checkpoint_loader` (our tools call it)
loads any pickle, also the checkpoints written before this hook
(``tools/model_converters/weights_only_checkpoint.py`` rewrites those).
"""
import logging
from collections import OrderedDict
from typing import Any, List, Tuple

import numpy as np
import torch
from mmengine.hooks import Hook
from mmengine.logging import HistoryBuffer, print_log
from mmpretrain.registry import HOOKS

#: Leaves ``torch.load(weights_only=True)`` accepts without an allow-list.
SAFE_LEAVES = (str, bytes, bytearray, int, float, bool, complex, type(None),
               torch.Tensor, torch.Size, torch.dtype, torch.device)
# the dict a HistoryBuffer is stored as
_BUFFER_KEYS = ('log_history', 'count_history', 'max_length')


def _history_to_dict(buffer: HistoryBuffer) -> dict:
    log, count = buffer.data
    return dict(log_history=torch.from_numpy(np.array(log)),
                count_history=torch.from_numpy(np.array(count)),
                max_length=int(buffer.max_length))


def _plain(obj: Any, path: str, unsafe: List[str]) -> Any:
    """``obj`` with every HistoryBuffer and numpy value replaced; paths of
    leaves that stay unreadable for the safe loader go to ``unsafe``."""
    if isinstance(obj, HistoryBuffer):
        return _history_to_dict(obj)
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        try:
            return torch.from_numpy(np.array(obj))
        except TypeError:  # a dtype torch has not (object, str, ...)
            pass
    if type(obj) in (dict, OrderedDict):
        return type(obj)((key, _plain(value, f'{path}.{key}', unsafe))
                         for key, value in obj.items())
    if type(obj) in (list, tuple, set):
        return type(obj)(_plain(value, f'{path}[{i}]', unsafe)
                         for i, value in enumerate(obj))
    if not isinstance(obj, SAFE_LEAVES):
        unsafe.append(f'{path.lstrip(".")} ({type(obj).__name__})')
    return obj


def to_weights_only(checkpoint: dict) -> Tuple[dict, List[str]]:
    """A copy of ``checkpoint`` that ``torch.load(weights_only=True)`` reads.

    ``HistoryBuffer`` objects become ``dict(log_history=Tensor (L,) float64,
    count_history=Tensor (L,) int64, max_length=int)``, numpy arrays
    tensors of the same dtype and shape, numpy scalars Python numbers.
    Tensors are shared with ``checkpoint``, not copied.

    Args:
        checkpoint (dict): What mmengine's ``Runner`` saves (``meta``,
            ``state_dict``, ``message_hub``, ``optimizer``, ...).

    Returns:
        tuple[dict, list[str]]: The converted checkpoint, and the key paths
        of the values that the safe loader would still refuse (empty for
        what mmengine and our components write).
    """
    unsafe: List[str] = []
    return _plain(checkpoint, '', unsafe), unsafe


def restore_history_buffers(checkpoint: dict) -> None:
    """Turn the message hub's stored buffers back into ``HistoryBuffer``
    objects, in place (a checkpoint without them is left as it is).

    Args:
        checkpoint (dict): A loaded checkpoint.
    """
    scalars = checkpoint.get('message_hub', {}).get('log_scalars', {})
    for key, value in scalars.items():
        if isinstance(value, dict) and set(value) == set(_BUFFER_KEYS):
            scalars[key] = HistoryBuffer(
                value['log_history'].numpy(), value['count_history'].numpy(),
                value['max_length'])


@HOOKS.register_module()
class SafeCheckpointHook(Hook):
    """Save checkpoints that torch's safe loader reads; restore on load.

    ``before_save_checkpoint`` replaces the checkpoint's contents with
    :func:`to_weights_only`'s (the lowest priority: after every hook that
    adds to it) and logs a warning naming any value that still needs
    ``weights_only=False``; ``after_load_checkpoint`` calls
    :func:`restore_history_buffers`, so ``--resume`` continues the logged
    statistics. Checkpoints without stored buffers load as before.
    """

    priority = 'LOWEST'

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        converted, unsafe = to_weights_only(checkpoint)
        checkpoint.clear()
        checkpoint.update(converted)
        if unsafe:
            print_log(
                'SafeCheckpointHook: these checkpoint values need '
                'torch.load(weights_only=False), so mmpretrain\'s loaders '
                f'will refuse the file under torch >= 2.6: {unsafe}. Store '
                'tensors, numbers, strings, lists or dicts instead',
                logger='current', level=logging.WARNING)

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        restore_history_buffers(checkpoint)
