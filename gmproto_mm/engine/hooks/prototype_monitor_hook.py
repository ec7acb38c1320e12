"""Log prototype collapse while training, for any prototype head."""
from typing import Dict, Generator, NamedTuple, Sequence

import torch
import torch.nn as nn

from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmpretrain.registry import HOOKS
from mmpretrain.utils import get_ori_model

from ...evaluation.functional.diversity import (DEFAULT_THRESHOLDS,
                                                diversity_tiles,
                                                prototype_diversity_steps)


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


class _Measurement(NamedTuple):
    """One measurement in progress: the tiles still to compute (on a copy
    of the bank), the iteration whose bank it measures, its tile count."""
    steps: Generator[int, None, Dict[str, float]]
    bank_iter: int
    tiles: int


@HOOKS.register_module()
class PrototypeMonitorHook(Hook):
    """Log ``proto_unique@<eps>`` of the model's prototypes while training,
    without stalling it (every bank :func:`find_prototype_banks` finds;
    with several, ``proto_<bank>_unique@<eps>``), so the log and the
    visualisation backends show collapse as it happens.

    Every ``interval`` iterations (and at the last one), unless the
    previous measurement is still running, a measurement starts on a copy
    of the bank: the exact greedy leaders of
    :func:`~gmproto_mm.evaluation.functional.prototype_diversity_steps`
    (no components), ``O(K^2 D)`` in all, computed ``tiles_per_iter``
    ``(block_size, block_size)`` similarity tiles per iteration on the main
    process, on the device that holds the bank. When its last tile is done
    it logs ``proto_unique@<eps>`` of the bank *as it was at the start*,
    and ``proto_measured_iter``, that iteration (1-based, as the log).

    Cost per iteration: at most ``tiles_per_iter * block_size^2 * D``
    multiply-adds on the main process -- what the other ranks wait for at
    their next collective -- and ``12 K D`` bytes for the copy while a
    measurement runs. A bank of ``K <= block_size`` is one tile: measured
    and logged in the iteration it starts. At K = 65,536 with the defaults
    a measurement takes ``diversity_tiles(K) = 136`` iterations, one
    ``4096 x 4096 x 256`` tile each (``tools/analysis/benchmark_em.py
    --monitor`` prints the seconds per tile; float64 tiles on a GPU). A
    measurement unfinished when training ends is dropped, with a log line
    (``tools/test.py`` measures the final bank).

    Args:
        interval (int): Iterations between measurement starts. Defaults
            to 100.
        thresholds (Sequence[float]): eps values. Defaults to
            (0.025, 0.05, 0.1, 0.25, 0.5).
        tiles_per_iter (int): Similarity tiles computed per iteration.
            Defaults to 1.
        block_size (int): Rows of a similarity tile. Defaults to 4096.
    """

    priority = 'NORMAL'  # before LoggerHook (BELOW_NORMAL)

    def __init__(self, interval: int = 100,
                 thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
                 tiles_per_iter: int = 1, block_size: int = 4096) -> None:
        for name, value in (('interval', interval),
                            ('tiles_per_iter', tiles_per_iter),
                            ('block_size', block_size)):
            if isinstance(value, bool) or not isinstance(value, int) or \
                    value < 1:
                raise ValueError(f'{name} must be an int >= 1, got {value!r}')
        self.interval = interval
        self.thresholds = tuple(thresholds)
        self.tiles_per_iter = tiles_per_iter
        self.block_size = block_size
        self._running: Dict[str, _Measurement] = {}

    def before_train(self, runner) -> None:
        self._running.clear()  # a resumed run starts afresh

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs=None) -> None:
        if not is_main_process():
            return
        due = self.every_n_train_iters(runner, self.interval) or \
            self.is_last_train_iter(runner)
        if due:
            self._start(runner)
        for name in list(self._running):
            self._advance(runner, name)

    def after_train(self, runner) -> None:
        for name, run in self._running.items():
            runner.logger.info(
                f'PrototypeMonitorHook: the measurement of {name!r} at '
                f'iteration {run.bank_iter} did not finish before training '
                f'ended ({run.tiles} tiles); tools/test.py measures the '
                'final bank')
        self._running.clear()

    def _start(self, runner) -> None:
        banks = find_prototype_banks(get_ori_model(runner.model))
        if not banks:
            raise ValueError('PrototypeMonitorHook found no prototype bank '
                             '(a `prototypes` tensor or nn.Linear) in the model')
        for name, prototypes in banks.items():
            tag = 'proto' if len(banks) == 1 else \
                f'proto_{name.replace(".", "_")}'
            if tag in self._running:
                continue  # the previous one is still running
            steps = prototype_diversity_steps(prototypes, self.thresholds,
                                              self.block_size,
                                              components=False)
            self._running[tag] = _Measurement(
                steps, runner.iter + 1,
                diversity_tiles(prototypes.shape[0], self.block_size))

    def _advance(self, runner, tag: str) -> None:
        run = self._running[tag]
        for _ in range(self.tiles_per_iter):
            try:
                next(run.steps)
            except StopIteration as done:
                del self._running[tag]
                for key, value in done.value.items():
                    runner.message_hub.update_scalar(f'train/{tag}_{key}',
                                                     value)
                runner.message_hub.update_scalar(
                    f'train/{tag}_measured_iter', run.bank_iter)
                return
