"""mmengine's default optimizer constructor without one WARNING per frozen
parameter."""
import logging

from mmengine.logging import MMLogger, print_log
from mmengine.optim import DefaultOptimWrapperConstructor, OptimWrapper
from mmpretrain.registry import OPTIM_WRAPPER_CONSTRUCTORS
from torch import nn

_FROZEN_NOTE = 'since its requires_grad=False'


class _DropFrozenNotes(logging.Filter):
    """Drop mmengine's "<name> is skipped since its requires_grad=False"."""

    def filter(self, record: logging.LogRecord) -> bool:
        return _FROZEN_NOTE not in record.getMessage()


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class QuietFrozenOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """``DefaultOptimWrapperConstructor`` that reports frozen parameters in
    one INFO line instead of one WARNING each.

    With a ``paramwise_cfg`` (DINO's: no weight decay on norms and biases)
    mmengine warns for every parameter with ``requires_grad=False``; a
    self-distillation model has hundreds by design (the EMA teacher's,
    updated by the EMA and not by the optimizer), which buries the training
    log. The optimizer is built exactly as by the default constructor
    (frozen parameters are left out either way).
    """

    def __call__(self, model: nn.Module) -> OptimWrapper:
        logger = MMLogger.get_current_instance()
        quiet = _DropFrozenNotes()
        logger.addFilter(quiet)
        try:
            optim_wrapper = super().__call__(model)
        finally:
            logger.removeFilter(quiet)
        frozen = [name for name, p in model.named_parameters()
                  if not p.requires_grad]
        if frozen:
            print_log(f'optimizer: {len(frozen)} frozen parameters left out '
                      f'(requires_grad=False), e.g. {frozen[:3]}',
                      logger='current', level=logging.INFO)
        return optim_wrapper
