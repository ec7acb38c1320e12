"""Refuse to evaluate a checkpoint that does not fit the config's model.

mmengine's ``Runner`` loads ``load_from`` with ``strict=False``: a checkpoint
trained with another config (another head, bottleneck or K) loads partly,
the rest keeps its fresh initialisation, and the evaluation reports numbers
of a half-random model (for a GMM head: uniform means, 100 % unique). We
compare keys and shapes first and stop with the differences instead.
"""
import re
from typing import List

from mmengine.model import is_model_wrapper
from mmengine.runner import CheckpointLoader
from torch import nn

_SHOWN = 3  # differences listed per kind


def checkpoint_mismatches(model: nn.Module, filename: str) -> List[str]:
    """Differences between a checkpoint's weights and ``model``'s.

    Args:
        model (nn.Module): The model (a DDP-style wrapper is unwrapped).
        filename (str): Checkpoint path (any mmengine-loadable scheme).

    Returns:
        List[str]: One line per kind of difference (missing keys, unexpected
        keys, shape mismatches), each with its count and first entries;
        empty when the checkpoint fits.
    """
    if is_model_wrapper(model):
        model = model.module
    checkpoint = CheckpointLoader.load_checkpoint(filename, map_location='cpu')
    state = checkpoint.get('state_dict', checkpoint)
    state = {re.sub(r'^module\.', '', key): value
             for key, value in state.items()}
    expected = model.state_dict()
    missing = [key for key in expected if key not in state]
    unexpected = [key for key in state if key not in expected]
    shapes = [
        f'{key}: checkpoint {tuple(value.shape)}, model '
        f'{tuple(expected[key].shape)}' for key, value in state.items()
        if key in expected and hasattr(value, 'shape')
        and tuple(value.shape) != tuple(expected[key].shape)
    ]
    lines = []
    for kind, items in (('missing from the checkpoint', missing),
                        ('not in the model', unexpected),
                        ('shape mismatch', shapes)):
        if items:
            lines.append(f'{len(items)} {kind}: ' + '; '.join(items[:_SHOWN]) +
                         ('; ...' if len(items) > _SHOWN else ''))
    return lines


def check_checkpoint_matches(model: nn.Module, filename: str,
                             config: str = 'the config') -> None:
    """Raise ``ValueError`` if ``filename`` does not fit ``model`` exactly.

    Args:
        model (nn.Module): The model the config builds.
        filename (str): Checkpoint path.
        config (str): The config's name, for the message.
    """
    lines = checkpoint_mismatches(model, filename)
    if lines:
        raise ValueError(
            f'checkpoint {filename!r} does not fit the model of {config} '
            '(trained with another config? pass the one it was trained '
            'with):\n  ' + '\n  '.join(lines))
