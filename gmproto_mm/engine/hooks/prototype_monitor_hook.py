"""Log prototype collapse while training, for any prototype head."""
from typing import Dict, Sequence

import torch
import torch.nn as nn

from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmpretrain.registry import HOOKS
from mmpretrain.utils import get_ori_model

from ...evaluation.functional.diversity import (DEFAULT_THRESHOLDS,
                                                prototype_diversity)


def find_prototype_banks(model: nn.Module) -> Dict[str, torch.Tensor]:
    """Every ``(K, D)`` prototype bank of the student, by module name.

    A bank is a module attribute ``prototypes`` that is a 2-D tensor (our
    heads, ``DecoupledSwAVLoss``) or a ``nn.Linear`` (mmpretrain's
    ``SwAVLoss``). The EMA teacher's copies are skipped; a tensor exposed by
    several modules is reported once, under its first name.
    """
    banks: Dict[str, torch.Tensor] = {}
    seen = set()
    for name, module in model.named_modules():
        if name.startswith('teacher'):
            continue
        bank = getattr(module, 'prototypes', None)
        if isinstance(bank, nn.Linear):
            bank = bank.weight
        if not isinstance(bank, torch.Tensor) or bank.dim() != 2 or \
                bank.data_ptr() in seen:
            continue
        seen.add(bank.data_ptr())
        banks[name] = bank.detach()
    return banks


@HOOKS.register_module()
class PrototypeMonitorHook(Hook):
    """Every ``interval`` iterations, log ``proto_unique@<eps>`` of the
    model's current prototypes (every bank :func:`find_prototype_banks`
    finds; with several, ``proto_<bank>_unique@<eps>``) to the message hub,
    so the log and the visualisation backends show collapse as it happens.

    Computed on the main process only (no collectives), on the device that
    holds the bank (no host copy): exact greedy leaders over ``(4096,
    4096)`` similarity tiles, ``O(K^2 D)`` -- at K = 65,536, D = 256 about
    7 s on 2 CPU cores (float32 tiles), float64 tiles on a GPU; the other
    ranks wait that long once every ``interval`` iterations
    (``tools/analysis/benchmark_em.py --monitor`` prints the time).

    Args:
        interval (int): Iterations between measurements. Defaults to 100.
        thresholds (Sequence[float]): eps values. Defaults to
            (0.025, 0.05, 0.1, 0.25, 0.5).
    """

    priority = 'NORMAL'  # before LoggerHook (BELOW_NORMAL)

    def __init__(self, interval: int = 100,
                 thresholds: Sequence[float] = DEFAULT_THRESHOLDS) -> None:
        if interval < 1:
            raise ValueError(f'interval must be >= 1, got {interval}')
        self.interval = interval
        self.thresholds = tuple(thresholds)

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs=None) -> None:
        if not (self.every_n_train_iters(runner, self.interval)
                or self.is_last_train_iter(runner)) or not is_main_process():
            return
        banks = find_prototype_banks(get_ori_model(runner.model))
        if not banks:
            raise ValueError('PrototypeMonitorHook found no prototype bank '
                             '(a `prototypes` tensor or nn.Linear) in the model')
        for name, prototypes in banks.items():
            tag = 'proto' if len(banks) == 1 else \
                f'proto_{name.replace(".", "_")}'
            diversity = prototype_diversity(prototypes, self.thresholds)
            for key, value in diversity.items():
                if key.startswith('unique'):
                    runner.message_hub.update_scalar(f'train/{tag}_{key}',
                                                     value)
