"""Freeze learned prototypes early in training, as DINO does."""
from typing import Optional

from mmengine.hooks import Hook
from mmpretrain.utils import get_ori_model
from mmpretrain.registry import HOOKS


@HOOKS.register_module()
class FreezePrototypesHook(Hook):
    """Drop the gradients of the head's prototypes for the first epochs.

    DINO sets the last layer's gradients to ``None`` after clipping, before
    the optimizer step, during the first epoch. We do the same through a
    step pre-hook on the optimizer, i.e. after backward, all-reduce and
    gradient clipping, so DDP and AMP are untouched. Params whose gradient is
    ``None`` are skipped by the optimizer (no update, no weight decay).
    A model's ``patch_head`` (``IBOT``) is frozen alike. A head without
    learned prototypes (``DecoupledGMMHead``) makes this a no-op.

    Args:
        epochs (float): Freeze while ``epoch < epochs``. Defaults to 1.
        iters (int, optional): Freeze while ``iter < iters`` instead
            (for iteration-based loops).
    """

    priority = 'NORMAL'

    def __init__(self, epochs: float = 1, iters: Optional[int] = None) -> None:
        if epochs < 0 or (iters is not None and iters < 0):
            raise ValueError(
                f'epochs and iters must be >= 0, got {epochs} and {iters}')
        self.epochs = epochs
        self.iters = iters
        self._frozen = False
        self._params = []
        self._handle = None

    def before_train(self, runner) -> None:
        model = get_ori_model(runner.model)
        self._params = list(model.head.prototype_parameters())
        patch_head = getattr(model, 'patch_head', None)  # iBOT's patch bank
        if patch_head is not None:
            self._params += list(patch_head.prototype_parameters())
        optimizer = runner.optim_wrapper.optimizer
        self._handle = optimizer.register_step_pre_hook(self._drop_grads)

    def before_train_iter(self, runner, batch_idx: int,
                          data_batch=None) -> None:
        if self.iters is not None:
            self._frozen = runner.iter < self.iters
        else:
            iters_per_epoch = runner.max_iters / max(runner.max_epochs, 1)
            self._frozen = runner.iter / iters_per_epoch < self.epochs

    def after_train(self, runner) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None

    def _drop_grads(self, optimizer, args, kwargs) -> None:
        if self._frozen:
            for param in self._params:
                param.grad = None
