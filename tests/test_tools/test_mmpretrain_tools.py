"""mmpretrain's own entry points on our configs and checkpoints: its APIs,
and its tools taken from the installed package (they ship in it, under
.mim/tools), never copied."""
import glob
import os
import os.path as osp
import sys

import mmpretrain
import pytest

from tests.conftest import (DECOUPLED_FMNIST, REPO_ROOT, run_tool)

MMPRETRAIN_TOOLS = osp.join(osp.dirname(mmpretrain.__file__), '.mim', 'tools')
CONFIG = f'configs/{DECOUPLED_FMNIST}'  # gray, 1 channel


def mmpretrain_tool(path: str) -> str:
    """``path`` (e.g. ``train.py``) in the installed mmpretrain's tools."""
    tool = osp.join(MMPRETRAIN_TOOLS, path)
    if not osp.isfile(tool):
        pytest.skip(f'this mmpretrain install ships no {path} (a source '
                    'checkout keeps its tools outside the package)')
    return tool


def run_mmpretrain(args, check=True):
    """mmpretrain's tool or ``python -c`` code, importing this checkout's
    gmproto_mm (a tool's folder, not the cwd, is first on its sys.path)."""
    path = os.environ.get('PYTHONPATH')
    return run_tool([sys.executable, *args], check=check, env_extra=dict(
        PYTHONPATH=os.pathsep.join([REPO_ROOT] + ([path] if path else []))))


def test_browse_dataset_shows_our_training_set(tmp_path, fmnist_root):
    """Our runtime is written out (no mmpretrain:: base, whose every dict
    mmengine tags with _scope_, which UniversalVisualizer rejects). Mode
    'original': the other modes call matplotlib's adjust_bbox without the
    renderer that matplotlib 3.11 requires, whatever the config."""
    out = tmp_path / 'browse'
    run_mmpretrain([mmpretrain_tool('visualization/browse_dataset.py'),
                    CONFIG, '--output-dir', str(out), '--not-show',
                    '--show-number', '2', '--mode', 'original',
                    '--cfg-options', f'train_dataloader.dataset.data_root='
                    f'{fmnist_root}'])
    assert sorted(os.listdir(out)) == ['0.jpg', '1.jpg']


def test_configs_resolve_without_mmpretrain_bases():
    """No config but the one that is mmpretrain's SwAV config inherits an
    mmpretrain:: base: none needs pkg_resources (setuptools < 82, a
    deprecation warning per base) and none carries _scope_ keys; and
    mmpretrain's print_config.py prints our runtime without the warning."""
    configs = sorted(glob.glob(osp.join(REPO_ROOT, 'configs', '**', '*.py'),
                               recursive=True))
    code = f'''
import json, sys
from mmengine.config import Config
scoped = []
for path in {[c for c in configs if '_base_' not in c and 'swav-gmm_resnet50'
             not in c]!r}:
    text = json.dumps(Config.fromfile(path, import_custom_modules=False)
                      .to_dict(), default=str)
    if '_scope_' in text:
        scoped.append(path)
assert not scoped, scoped
assert 'pkg_resources' not in sys.modules, 'a config resolved mmpretrain::'
print('checked')
'''
    assert 'checked' in run_mmpretrain(['-c', code]).stdout
    inheriting = [osp.relpath(c, REPO_ROOT) for c in configs
                  if "'mmpretrain::" in open(c).read()]
    assert inheriting == ['configs/swav/swav-gmm_resnet50_8xb32-mcrop-'
                          'coslr-200e_in1k-224px-96px.py']

    out = run_mmpretrain(['-W', 'default', mmpretrain_tool(
        'misc/print_config.py'), CONFIG])
    assert "type='UniversalVisualizer'" in out.stdout
    assert '_scope_' not in out.stdout
    assert 'pkg_resources' not in out.stderr
