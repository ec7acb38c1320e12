"""Log prototype collapse while training, for any prototype head."""
from typing import Sequence

from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmpretrain.registry import HOOKS
from mmpretrain.utils import get_ori_model

from ...evaluation.functional.diversity import (DEFAULT_THRESHOLDS,
                                                prototype_diversity)


@HOOKS.register_module()
class PrototypeMonitorHook(Hook):
    """Every ``interval`` iterations, log ``unique@<eps>`` of the head's
    current prototypes (``model.head.prototypes``, ``(K, D)``) to the
    message hub, so the log and the visualisation backends show collapse as
    it happens. Computed on the main process only (no collectives).

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
        prototypes = get_ori_model(runner.model).head.prototypes
        diversity = prototype_diversity(prototypes.float().cpu(),
                                        self.thresholds)
        for key, value in diversity.items():
            if key.startswith('unique'):
                runner.message_hub.update_scalar(f'train/proto_{key}', value)
