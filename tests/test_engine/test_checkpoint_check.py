"""tools/test.py refuses checkpoints that do not fit the config's model
(mmengine's load_from is non-strict and would evaluate a half-random one)."""
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config
from mmpretrain.registry import MODELS
from torch import nn

from gmproto_mm.engine import check_checkpoint_matches, checkpoint_mismatches
from tests.conftest import REPO_ROOT


def _save(module: nn.Module, path) -> str:
    torch.save(dict(state_dict=module.state_dict(), meta=dict()), path)
    return str(path)


def test_fitting_checkpoint_passes(tmp_path):
    model = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3))
    ckpt = _save(model, tmp_path / 'same.pth')
    assert checkpoint_mismatches(model, ckpt) == []
    check_checkpoint_matches(model, ckpt)  # no error


def test_ddp_prefix_is_ignored(tmp_path):
    model = nn.Linear(4, 3)
    path = tmp_path / 'ddp.pth'
    torch.save(dict(state_dict={f'module.{k}': v for k, v in
                                model.state_dict().items()}), path)
    assert checkpoint_mismatches(model, str(path)) == []


def test_names_missing_unexpected_and_shape_mismatches(tmp_path):
    model = nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 2))
    other = nn.Sequential(nn.Linear(4, 5), nn.Identity(), nn.Linear(5, 2))
    ckpt = _save(other, tmp_path / 'other.pth')
    lines = checkpoint_mismatches(model, ckpt)
    assert lines[0].startswith('2 missing from the checkpoint: 1.weight')
    assert lines[1].startswith('2 not in the model: 2.weight')
    assert lines[2] == ('2 shape mismatch: 0.weight: checkpoint (5, 4), '
                        'model (3, 4); 0.bias: checkpoint (5,), model (3,)')
    with pytest.raises(ValueError, match='does not fit the model of cfg.py'):
        check_checkpoint_matches(model, ckpt, 'cfg.py')


def test_tools_test_rejects_another_configs_checkpoint(tmp_path):
    """A decoupled checkpoint under the joint config: clear error, no
    metrics (non-strict loading would report the random last layer)."""
    cfg = Config.fromfile(f'{REPO_ROOT}/configs/gm_dino_vitt_fmnist.py')
    ckpt = _save(MODELS.build(cfg.model), tmp_path / 'gm.pth')
    out = tmp_path / 'metrics.json'
    proc = subprocess.run(
        [sys.executable, 'tools/test.py', 'configs/dino_vitt_fmnist.py', ckpt,
         '--work-dir', str(tmp_path), '--out', str(out)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert 'does not fit the model of configs/dino_vitt_fmnist.py' in \
        proc.stderr
    assert 'head.em_bank.gmm.mu' in proc.stderr  # named, not in the model
    assert not out.exists()
