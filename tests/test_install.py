"""Packaging: the wheel's metadata (no mmcv flavour required, the extras
that name them, no setuptools pin, Python >= 3.10), built offline; the
ImportError that names both flavours when neither is installed; the fix
named when an mmpretrain:: base config finds no pkg_resources; and
tools/setup_env.sh's choice of one flavour."""
import email
import os
import os.path as osp
import shutil
import subprocess
import sys
import zipfile

import pytest
from packaging.requirements import Requirement

from tests.conftest import REPO_ROOT


def build_wheel(tmp_path) -> str:
    """Build the wheel from a copy of the sources (a build writes build/ and
    *.egg-info next to setup.py), offline, without build isolation."""
    src = tmp_path / 'src'
    src.mkdir()
    for name in ('setup.py', 'README.md'):
        shutil.copy(osp.join(REPO_ROOT, name), src / name)
    shutil.copytree(osp.join(REPO_ROOT, 'gmproto_mm'), src / 'gmproto_mm',
                    ignore=shutil.ignore_patterns('__pycache__', '*.pyc'))
    out = tmp_path / 'wheel'
    env = dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK='1')
    subprocess.run(
        [sys.executable, '-m', 'pip', 'wheel', '-q', '--no-deps',
         '--no-build-isolation', '--no-index', '.', '-w', str(out)],
        cwd=src, env=env, check=True, capture_output=True, timeout=300)
    wheels = list(out.glob('gmproto_mm-*.whl'))
    assert len(wheels) == 1, wheels
    return str(wheels[0])


def test_wheel_metadata_declares_extras_and_python(tmp_path):
    wheel = build_wheel(tmp_path)
    with zipfile.ZipFile(wheel) as zf:
        name = next(n for n in zf.namelist()
                    if n.endswith('.dist-info/METADATA'))
        meta = email.message_from_bytes(zf.read(name))
        packaged = zf.namelist()
    assert meta['Requires-Python'] == '>=3.10'
    assert {'lite', 'full', 'tensorboard'} <= set(
        meta.get_all('Provides-Extra'))
    plain, extras = {}, {}
    for line in meta.get_all('Requires-Dist'):
        req = Requirement(line)
        if req.marker is None:
            plain[req.name] = req
            continue
        extra = next(e for e in ('lite', 'full', 'tensorboard', 'tests')
                     if req.marker.evaluate({'extra': e}))
        extras.setdefault(extra, {})[req.name] = req
    # no mmcv flavour unless asked for by an extra, one flavour per extra
    assert not {'mmcv', 'mmcv-lite'} & set(plain), plain
    assert set(extras['lite']) == {'mmcv-lite'}
    assert set(extras['full']) == {'mmcv'}
    for req in (extras['lite']['mmcv-lite'], extras['full']['mmcv']):
        assert req.specifier.contains('2.2.0')  # the tested version
        # mmpretrain 1.2.0 asserts 2.0.0 <= mmcv < 2.4.0
        assert not req.specifier.contains('1.7.2')
        assert not req.specifier.contains('2.4.0')
    assert 'tensorboard' in extras['tensorboard']
    # no pin (pip would downgrade the user's setuptools): our configs have
    # no mmpretrain:: base, which mmengine resolves with pkg_resources
    assert 'setuptools' not in plain, plain['setuptools']
    for name in ('torch', 'mmengine', 'mmpretrain'):
        assert name in plain, name
    assert plain['torch'].specifier.contains('2.14.1')  # no CUDA pin
    assert 'gmproto_mm/compat.py' in packaged


def test_import_without_mmcv_names_both_flavours():
    """sys.modules['mmcv'] = None is Python's way to make a module absent;
    the error must come from gmproto_mm, before mmpretrain imports mmcv."""
    proc = subprocess.run(
        [sys.executable, '-c',
         "import sys; sys.modules['mmcv'] = None; import gmproto_mm"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
        env=dict(os.environ, PYTHONWARNINGS='ignore'))
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()
    assert any(line.startswith('ImportError: gmproto_mm needs mmcv')
               for line in last), proc.stderr[-2000:]
    assert 'pip install "mmcv-lite>=2.0.0,<2.4.0"' in proc.stderr
    assert 'pip install "mmcv>=2.0.0,<2.4.0"' in proc.stderr


def test_an_mmpretrain_base_without_pkg_resources_names_the_fix(
        monkeypatch):
    """setuptools >= 82 has no pkg_resources (None in sys.modules: Python's
    way to make a module absent); mmengine needs it for mmpretrain:: bases,
    which only mmpretrain's own SwAV config has among ours."""
    from gmproto_mm.apis import load_config
    monkeypatch.setitem(sys.modules, 'pkg_resources', None)
    swav = osp.join(REPO_ROOT, 'configs', 'swav', 'swav-gmm_resnet50_8xb32-'
                    'mcrop-coslr-200e_in1k-224px-96px.py')
    with pytest.raises(RuntimeError) as err:
        load_config(swav)
    assert 'pip install "setuptools<82"' in str(err.value)
    assert swav in str(err.value)
    cfg = load_config(osp.join(REPO_ROOT, 'configs', 'dino',
                               'dino-gmm_vit-tiny-p8_1xb64-3e_fmnist.py'))
    assert cfg.model.type == 'DINO'  # the others resolve without it


def test_setup_env_installs_one_mmcv_flavour(tmp_path):
    """tools/setup_env.sh in a copy of the repository whose .venv python
    only records what it is asked: mmcv-lite and the [lite] extra where no
    mmcv imports, neither next to an mmcv that does (never both)."""
    if not osp.isfile('/usr/share/datasets/fashion-mnist/'
                      'train-images-idx3-ubyte.gz'):
        pytest.skip('the script would apt-get the data package first')
    calls = {}
    for mmcv_present in (False, True):
        root = tmp_path / str(mmcv_present)
        (root / 'tools').mkdir(parents=True)
        shutil.copy(osp.join(REPO_ROOT, 'tools', 'setup_env.sh'),
                    root / 'tools' / 'setup_env.sh')
        (root / 'setup.py').write_text('')
        python = root / '.venv' / 'bin' / 'python'
        python.parent.mkdir(parents=True)
        python.write_text(
            '#!/usr/bin/env bash\necho "$*" >> "$LOG"\n'
            'case "$*" in *"import mmcv"*) exit $MMCV_RC;; esac\n')
        python.chmod(0o755)
        log = root / 'calls.log'
        subprocess.run(
            ['bash', str(root / 'tools' / 'setup_env.sh')], check=True,
            env=dict(os.environ, LOG=str(log),
                     MMCV_RC='0' if mmcv_present else '1'),
            capture_output=True, timeout=60)
        calls[mmcv_present] = log.read_text().splitlines()
    installs = {present: [c for c in lines if ' pip install ' in f' {c}']
                for present, lines in calls.items()}
    absent, present = installs[False], installs[True]
    assert any('mmcv-lite==2.2.0' in c for c in absent)
    assert absent[-1].endswith('--no-build-isolation -e .[lite,tests]')
    assert not any('mmcv' in c for c in present), present
    assert present[-1].endswith('--no-build-isolation -e .[tests]')
    for lines in installs.values():
        assert any("setuptools<82" in c for c in lines)
