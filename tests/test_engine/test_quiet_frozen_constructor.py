"""QuietFrozenOptimWrapperConstructor: the default constructor's optimizer,
one INFO line instead of a WARNING per frozen (EMA-teacher) parameter."""
import copy
import logging

from mmengine.config import Config
from mmengine.logging import MMLogger, print_log
from mmengine.optim import build_optim_wrapper
from mmpretrain.registry import MODELS

from tests.conftest import JOINT_FMNIST, REPO_ROOT


class _Records(logging.Handler):

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def _build(model, optim_cfg):
    logger = MMLogger.get_current_instance()
    catch = _Records()
    logger.addHandler(catch)
    try:
        wrapper = build_optim_wrapper(model, copy.deepcopy(optim_cfg))
    finally:
        logger.removeHandler(catch)
    return wrapper, catch.records


def _groups(wrapper):
    return [(sorted(id(p) for p in g['params']), g['weight_decay'])
            for g in wrapper.optimizer.param_groups]


def test_same_optimizer_one_info_line():
    cfg = Config.fromfile(f'{REPO_ROOT}/configs/{JOINT_FMNIST}')
    assert cfg.optim_wrapper.constructor == \
        'QuietFrozenOptimWrapperConstructor'
    model = MODELS.build(cfg.model)
    frozen = [p for p in model.parameters() if not p.requires_grad]
    assert len(frozen) > 50  # the EMA teacher's, and DINO's last-layer gain

    quiet, records = _build(model, cfg.optim_wrapper)
    default_cfg = copy.deepcopy(cfg.optim_wrapper)
    default_cfg.pop('constructor')
    default, default_records = _build(model, default_cfg)

    assert _groups(quiet) == _groups(default)
    assert sum('requires_grad=False' in r.getMessage()
               for r in default_records) == len(frozen)  # what it replaces
    notes = [r for r in records if 'requires_grad=False' in r.getMessage()]
    assert len(notes) == 1 and notes[0].levelno == logging.INFO
    assert f'{len(frozen)} frozen parameters left out' in notes[0].getMessage()

    # the filter is gone afterwards: later messages are not swallowed
    logger = MMLogger.get_current_instance()
    catch = _Records()
    logger.addHandler(catch)
    try:
        print_log('x is skipped since its requires_grad=False',
                  logger='current', level=logging.WARNING)
    finally:
        logger.removeHandler(catch)
    assert len(catch.records) == 1
