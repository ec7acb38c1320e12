"""mmengine's default optimizer constructor with a readable log: one line
for the frozen parameters and one for the paramwise options, instead of a
line per parameter."""
import logging
from collections import defaultdict
from typing import Dict, List

from mmengine.logging import MMLogger, print_log
from mmengine.optim import DefaultOptimWrapperConstructor, OptimWrapper
from mmpretrain.registry import OPTIM_WRAPPER_CONSTRUCTORS
from torch import nn

_FROZEN_NOTE = 'since its requires_grad=False'
_OPTION_NOTE = 'paramwise_options -- '  # "<prefix><name>:<key>=<value>"


class _CollectNotes(logging.Filter):
    """Drop mmengine's per-parameter notes, keeping the paramwise options
    (``setting -> parameter names``) for one summary line."""

    def __init__(self) -> None:
        super().__init__()
        self.options: Dict[str, List[str]] = defaultdict(list)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if message.startswith(_OPTION_NOTE):
            name, setting = message[len(_OPTION_NOTE):].split(':', 1)
            self.options[setting].append(name)
            return False
        return _FROZEN_NOTE not in message


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class QuietFrozenOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """``DefaultOptimWrapperConstructor`` that logs frozen parameters and
    paramwise options in one INFO line each, not one line per parameter.

    With a ``paramwise_cfg`` (DINO's: no weight decay on norms and biases)
    mmengine warns for every parameter with ``requires_grad=False`` (a
    self-distillation model has hundreds by design: the EMA teacher's,
    updated by the EMA and not by the optimizer) and logs
    ``paramwise_options -- <param>:weight_decay=0.0`` for every parameter an
    option applies to, which buries the training log. Here they become e.g.
    ``optimizer: paramwise options weight_decay=0.0 on 98 parameters (e.g.
    [...])``. The optimizer is built exactly as by the default constructor
    (frozen parameters are left out either way).
    """

    def __call__(self, model: nn.Module) -> OptimWrapper:
        logger = MMLogger.get_current_instance()
        quiet = _CollectNotes()
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
        if quiet.options:
            settings = '; '.join(
                f'{setting} on {len(names)} parameters (e.g. {names[:3]})'
                for setting, names in quiet.options.items())
            print_log(f'optimizer: paramwise options {settings}',
                      logger='current', level=logging.INFO)
        return optim_wrapper
