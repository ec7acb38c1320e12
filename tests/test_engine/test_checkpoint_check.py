"""tools/test.py refuses checkpoints that do not fit the config's model
(mmengine's load_from is non-strict and would evaluate a half-random one)."""
import sys
from types import SimpleNamespace

import pytest
from torch import nn

from gmproto_mm.engine import CheckpointFitHook, checkpoint_mismatches
from tests.conftest import (DECOUPLED_FMNIST, JOINT_FMNIST, run_tool,
                            save_fresh_checkpoint)


def test_fitting_state_dict_passes():
    model = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3))
    assert checkpoint_mismatches(model, model.state_dict()) == []
    CheckpointFitHook().after_load_checkpoint(
        SimpleNamespace(model=model),
        dict(state_dict=model.state_dict()))  # no error


def test_ddp_prefix_is_ignored():
    model = nn.Linear(4, 3)
    state = {f'module.{k}': v for k, v in model.state_dict().items()}
    assert checkpoint_mismatches(model, state) == []


def test_names_missing_unexpected_and_shape_mismatches():
    model = nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 2))
    other = nn.Sequential(nn.Linear(4, 5), nn.Identity(), nn.Linear(5, 2))
    lines = checkpoint_mismatches(model, other.state_dict())
    assert lines[0].startswith('2 missing from the checkpoint: 1.weight')
    assert lines[1].startswith('2 not in the model: 2.weight')
    assert lines[2] == ('2 shape mismatch: 0.weight: checkpoint (5, 4), '
                        'model (3, 4); 0.bias: checkpoint (5,), model (3,)')
    with pytest.raises(ValueError, match='does not fit the model of cfg.py'):
        CheckpointFitHook('cfg.py').after_load_checkpoint(
            SimpleNamespace(model=model), dict(state_dict=other.state_dict()))


def test_tools_test_rejects_another_configs_checkpoint(tmp_path):
    """A decoupled checkpoint under the joint config: clear error, no
    metrics (non-strict loading would report the random last layer)."""
    ckpt = save_fresh_checkpoint(DECOUPLED_FMNIST, tmp_path / 'gm.pth')
    out = tmp_path / 'metrics.json'
    proc = run_tool(
        [sys.executable, 'tools/test.py', f'configs/{JOINT_FMNIST}',
         ckpt, '--work-dir', str(tmp_path), '--out', str(out),
         '--out-item', 'metrics'],
        timeout=300, check=False)
    assert proc.returncode != 0
    assert f'does not fit the model of configs/{JOINT_FMNIST}' in \
        proc.stderr
    assert 'head.em_bank.gmm.mu' in proc.stderr  # named, not in the model
    assert not out.exists()
