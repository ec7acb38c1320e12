"""Refuse to evaluate a checkpoint that does not fit the config's model.

mmengine's ``Runner`` loads ``load_from`` with ``strict=False``: a checkpoint
trained with another config (another head, bottleneck or K) loads partly,
the rest keeps its fresh initialisation, and the evaluation reports numbers
of a half-random model (for a GMM head: uniform means, 100 % unique).
:class:`CheckpointFitHook` compares keys and shapes of the checkpoint the
runner has just read, before any weight is copied, and stops with the
differences instead.
"""
import re
from typing import List, Mapping

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmpretrain.registry import HOOKS
from torch import nn

_SHOWN = 3  # differences listed per kind


def checkpoint_mismatches(model: nn.Module,
                          state_dict: Mapping[str, object]) -> List[str]:
    """Differences between a checkpoint's weights and ``model``'s.

    Args:
        model (nn.Module): The model (a DDP-style wrapper is unwrapped).
        state_dict (Mapping): The checkpoint's weights; a leading
            ``module.`` is ignored, as mmengine strips it when loading.

    Returns:
        List[str]: One line per kind of difference (missing keys, unexpected
        keys, shape mismatches), each with its count and first entries;
        empty when the checkpoint fits.
    """
    if is_model_wrapper(model):
        model = model.module
    state = {re.sub(r'^module\.', '', key): value
             for key, value in state_dict.items()}
    expected = model.state_dict()
    optional = {  # state a module fills when an older checkpoint lacks it
        f'{name}.{key}'.lstrip('.')
        for name, module in model.named_modules()
        for key in getattr(module, 'optional_state_keys', ())
    }
    missing = [
        key for key in expected if key not in state and key not in optional
    ]
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


@HOOKS.register_module()
class CheckpointFitHook(Hook):
    """Raise ``ValueError`` when a loaded checkpoint does not fit the model
    exactly (mmengine's ``after_load_checkpoint`` runs before the weights
    are copied, so nothing is half-loaded and the file is read once).

    Args:
        config (str): The config's name, for the message.
    """

    priority = 'VERY_HIGH'

    def __init__(self, config: str = 'the config') -> None:
        self.config = config

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        lines = checkpoint_mismatches(
            runner.model, checkpoint.get('state_dict', checkpoint))
        if lines:
            raise ValueError(
                f'the checkpoint does not fit the model of {self.config} '
                '(trained with another config? pass the one it was trained '
                'with):\n  ' + '\n  '.join(lines))
