"""Find the prototype banks in a model state dict or checkpoint.

No MMEngine dependency: MMEngine checkpoints are plain ``torch.save`` dicts
with the model weights under ``'state_dict'``. Recognised keys, with
``<prefix>`` the module path of the head (e.g. ``head`` or
``head.em_bank``):

* ``<prefix>.gmm.mu`` -- Gaussian-mixture means ``(K, D)``;
* ``<prefix>.last_layer.parametrizations.weight.original1`` -- direction
  ``v`` ``(K, D)`` of ``torch.nn.utils.parametrizations.weight_norm``
  (DINO's last layer);
* ``<prefix>.last_layer.weight_v`` -- the same, old-style ``weight_norm``;
* ``<prefix>.last_layer.weight`` -- a plain ``nn.Linear`` ``(K, D)``.

Only the direction of each row matters for collapse measures, so the
weight-norm gain (``original0`` / ``weight_g``) is ignored. A leading DDP
``module.`` is stripped. ``copy='student'`` reads the model's own banks and
skips EMA-teacher copies (keys with a ``teacher`` path component, e.g.
``teacher.module.head...``); ``copy='teacher'`` reads the banks the teacher
uses, i.e. what ``tools/test.py`` measures: its EMA copy where the head has
one (a joint DINO head), else the bank it shares with the student (the GMM
means).
"""
import os
import os.path as osp
from typing import Any, Dict, Mapping, Optional, Union

import torch
from torch import Tensor

# Suffix -> its module part (used to disambiguate two banks of one prefix).
_SUFFIXES = (
    ('.gmm.mu', 'gmm'),
    ('.last_layer.parametrizations.weight.original1', 'last_layer'),
    ('.last_layer.weight_v', 'last_layer'),
    ('.last_layer.weight', 'last_layer'),
)


_COPIES = ('student', 'teacher')
# The teacher EMA-copies a joint head's last layer as ``teacher.module.<bank>``
# (``head.teacher_module()``), so its direction is ``<bank>.`` + one of these.
_TEACHER_COPY_SUFFIXES = ('parametrizations.weight.original1', 'weight_v',
                          'weight')


def prototypes_from_state_dict(state_dict: Mapping[str, Any],
                               copy: str = 'student') -> Dict[str, Tensor]:
    """Every prototype bank of a model state dict.

    Args:
        state_dict (Mapping[str, Any]): Model weights, e.g.
            ``torch.load(path, map_location='cpu')['state_dict']``.
        copy (str): ``'student'`` (the model's own banks) or ``'teacher'``
            (each bank's EMA-teacher copy where the teacher has one, under
            the student bank's name). Defaults to ``'student'``.

    Returns:
        Dict[str, Tensor]: Bank name -> detached CPU ``(K, D)`` tensor, in
        state-dict order. The name is the key's prefix (``'head'`` for
        ``head.gmm.mu``; ``'gmm'`` / ``'last_layer'`` when the prefix is
        empty); if one prefix holds two banks both are named
        ``'<prefix>.gmm'`` and ``'<prefix>.last_layer'``. Empty when no key
        matches; tensors that are not 2-D are ignored.

    Example:
        >>> import torch
        >>> from gmproto_mm.evaluation.functional.prototype_io import (
        ...     prototypes_from_state_dict)
        >>> sd = {'head.gmm.mu': torch.randn(8, 4),
        ...       'teacher.module.head.gmm.mu': torch.randn(8, 4),
        ...       'neck.mlp.0.weight': torch.randn(4, 4)}
        >>> {k: tuple(v.shape)
        ...  for k, v in prototypes_from_state_dict(sd).items()}
        {'head': (8, 4)}
    """
    if not isinstance(state_dict, Mapping):
        raise ValueError(f'state_dict must be a mapping of parameter names to '
                         f'tensors, got {type(state_dict).__name__}')
    if copy not in _COPIES:
        raise ValueError(f'copy must be one of {_COPIES}, got {copy!r}')
    banks = _student_banks(state_dict)
    if copy == 'teacher':
        for name in banks:
            ema = _teacher_copy(state_dict, name)
            if ema is not None:
                banks[name] = ema
    return banks


def _teacher_copy(state_dict: Mapping[str, Any],
                  bank: str) -> Optional[Tensor]:
    """The EMA teacher's copy of student bank ``bank``, or None."""
    for prefix in ('teacher.module.', 'module.teacher.module.'):
        for suffix in _TEACHER_COPY_SUFFIXES:
            value = state_dict.get(f'{prefix}{bank}.{suffix}')
            if isinstance(value, Tensor) and value.dim() == 2:
                return value.detach().cpu()
    return None


def _student_banks(state_dict: Mapping[str, Any]) -> Dict[str, Tensor]:
    """Banks outside any ``teacher`` module."""
    found = []  # (prefix, module part, tensor)
    for key, value in state_dict.items():
        if not isinstance(key, str) or not isinstance(value, Tensor):
            continue
        name = key[len('module.'):] if key.startswith('module.') else key
        if 'teacher' in name.split('.'):
            continue
        dotted = '.' + name
        for suffix, part in _SUFFIXES:
            if dotted.endswith(suffix) and value.dim() == 2:
                found.append((dotted[:-len(suffix)].lstrip('.'), part,
                              value.detach().cpu()))
                break
    counts: Dict[str, int] = {}
    for prefix, _, _ in found:
        counts[prefix] = counts.get(prefix, 0) + 1
    banks: Dict[str, Tensor] = {}
    for prefix, part, tensor in found:
        if not prefix:
            name = part
        elif counts[prefix] > 1:
            name = f'{prefix}.{part}'
        else:
            name = prefix
        banks[name] = tensor
    return banks


def load_prototypes(checkpoint_path: Union[str, os.PathLike],
                    copy: str = 'student') -> Dict[str, Tensor]:
    """Load a checkpoint and return its prototype banks.

    Accepts MMEngine checkpoints (weights under ``'state_dict'``), dicts
    with ``'model'`` / ``'student'`` weights, or a bare state dict.

    Args:
        checkpoint_path (str | os.PathLike): Path of a ``torch.save`` file.
        copy (str): ``'student'`` or ``'teacher'``, see
            :func:`prototypes_from_state_dict`. Defaults to ``'student'``.

    Returns:
        Dict[str, Tensor]: As :func:`prototypes_from_state_dict`, non-empty.

    Raises:
        FileNotFoundError: If the file does not exist.
        ValueError: If the file holds no recognised prototype bank (the
            message lists some of the keys it saw).
    """
    path = os.fspath(checkpoint_path)
    if not osp.isfile(path):
        raise FileNotFoundError(f'checkpoint not found: {path!r}')
    # Trusted local checkpoints: MMEngine stores non-tensor metadata.
    checkpoint = torch.load(path, map_location='cpu', weights_only=False)
    state_dict = checkpoint
    if isinstance(checkpoint, Mapping):
        for field in ('state_dict', 'model', 'student'):
            if isinstance(checkpoint.get(field), Mapping):
                state_dict = checkpoint[field]
                break
    if not isinstance(state_dict, Mapping):
        raise ValueError(f'{path!r} does not hold a state dict (got '
                         f'{type(state_dict).__name__})')
    banks = prototypes_from_state_dict(state_dict, copy)
    if not banks:
        keys = [str(k) for k in state_dict.keys()]
        raise ValueError(
            f'no prototype bank in {path!r}: expected a key ending in '
            f"{', '.join(s.lstrip('.') for s, _ in _SUFFIXES)} (outside "
            f'teacher.); saw {len(keys)} keys, e.g. {keys[:8]}')
    return banks
