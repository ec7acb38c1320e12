"""QuietFrozenOptimWrapperConstructor: one summary line instead of one
``paramwise_options -- <param>:weight_decay=0.0`` INFO line per parameter,
and the same optimizer as mmengine's default constructor."""
import copy

from mmengine.config import Config
from mmpretrain.registry import MODELS

from tests.conftest import JOINT_FMNIST, REPO_ROOT
from tests.test_engine.test_quiet_frozen_constructor import _build, _groups


def test_paramwise_options_in_one_line_same_param_groups():
    cfg = Config.fromfile(f'{REPO_ROOT}/configs/{JOINT_FMNIST}')
    cfg.optim_wrapper.paramwise_cfg.custom_keys = dict(
        pos_embed=dict(lr_mult=0.5))  # a second setting in the summary
    model = MODELS.build(cfg.model)
    quiet, records = _build(model, cfg.optim_wrapper)
    default_cfg = copy.deepcopy(cfg.optim_wrapper)
    default_cfg.pop('constructor')
    default, default_records = _build(model, default_cfg)

    assert _groups(quiet) == _groups(default)
    assert [g.get('lr') for g in quiet.optimizer.param_groups] == \
        [g.get('lr') for g in default.optimizer.param_groups]
    per_param = [r.getMessage() for r in default_records
                 if r.getMessage().startswith('paramwise_options -- ')]
    zero_wd = [m for m in per_param if m.endswith(':weight_decay=0.0')]
    assert len(zero_wd) > 20  # what it replaces: biases and norms of a ViT

    messages = [r.getMessage() for r in records]
    assert not any(m.startswith('paramwise_options') for m in messages)
    summary = [m for m in messages if 'paramwise options' in m]
    assert len(summary) == 1
    assert f'weight_decay=0.0 on {len(zero_wd)} parameters' in summary[0]
    assert 'lr_mult=0.5 on 1 parameters' in summary[0]
