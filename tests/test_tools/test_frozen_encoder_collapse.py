"""tools/analysis/frozen_encoder_collapse.py: prototype-only training on a
frozen encoder, for the joint and the decoupled head."""
import json
import re
import subprocess
import sys

import pytest
import torch

from tests.conftest import REPO_ROOT, run_tool, save_fresh_checkpoint


@pytest.fixture(scope='module')
def joint_checkpoint(tmp_path_factory):
    """A (random) joint-DINO checkpoint: its encoder is what the tool uses."""
    return save_fresh_checkpoint('dino_vitt_fmnist.py',
                                 tmp_path_factory.mktemp('ckpt') / 'joint.pth')


@pytest.mark.parametrize('config', ['dino_vitt_fmnist.py',
                                    'gm_dino_vitt_fmnist.py'])
def test_reports_unique_prototypes_per_step(config, joint_checkpoint,
                                            fmnist_root, tmp_path):
    out = tmp_path / 'frozen.json'
    proc = run_tool([sys.executable,
                     'tools/analysis/frozen_encoder_collapse.py',
                     f'configs/{config}', joint_checkpoint, '--images', '32',
                     '--steps', '5', '--log-every', '2', '--batch-size', '8',
                     '--out', str(out)])
    rows = re.findall(r'step +(\d+) +unique% +0\.025: *([\d.]+)',
                      proc.stdout)
    assert [int(step) for step, _ in rows] == [0, 2, 4, 5]  # and the last
    assert all(0 < float(unique) <= 100 for _, unique in rows)
    assert 'embedded (32, 2, 128)' in proc.stdout
    leaders = re.search(r'eps-leaders among the teacher embeddings.*: '
                        r'0\.025:(\d+) .* 0\.5:(\d+)', proc.stdout)
    assert 1 <= int(leaders[2]) <= int(leaders[1]) <= 32

    result = json.loads(out.read_text())
    assert result['unique']['steps'] == [0, 2, 4, 5]
    assert result['unique']['0.025'] == [float(u) for _, u in rows]
    assert result['final']['unique@0.5'] == result['unique']['0.5'][-1]
    assert result['data_leaders']['0.5'] == int(leaders[2])
    assert result['images'] == 32


def test_rejects_a_checkpoint_without_the_encoder(tmp_path, fmnist_root):
    bad = tmp_path / 'head_only.pth'
    torch.save(dict(state_dict={}), bad)
    out = subprocess.run(
        [sys.executable, 'tools/analysis/frozen_encoder_collapse.py',
         'configs/dino_vitt_fmnist.py', str(bad)], cwd=REPO_ROOT,
        capture_output=True, text=True, timeout=300)
    assert out.returncode != 0
    assert 'lacks encoder weights' in out.stderr
