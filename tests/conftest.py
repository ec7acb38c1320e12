"""Shared fixtures: the repo root, real Fashion-MNIST and small configs."""
import os
import os.path as osp
import socket
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config

from mmengine.registry import init_default_scope

import gmproto_mm  # noqa: F401
from gmproto_mm.datasets import prepare_fashion_mnist

init_default_scope('mmpretrain')  # what the configs' default_scope does

if os.environ.get('PYTEST_XDIST_WORKER'):
    # pytest.ini starts 2 workers for 2 cores: one thread each, also in the
    # tools the tests start (torch's default, one thread per core, made the
    # two workers oversubscribe the cores)
    os.environ.setdefault('OMP_NUM_THREADS', '1')
    torch.set_num_threads(1)

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
FMNIST_ROOT = osp.join(REPO_ROOT, 'data', 'fashion-mnist')
# the configs most tests train and evaluate, relative to configs/
JOINT_FMNIST = 'dino/dino_vit-tiny-p8_1xb64-3e_fmnist.py'
DECOUPLED_FMNIST = 'dino/dino-gmm_vit-tiny-p8_1xb64-3e_fmnist.py'


@pytest.fixture(autouse=True)
def seeded_global_generator():
    """Draws from torch's global generator are the same whichever xdist
    worker runs a test and after whichever tests (an unseeded draw once
    made a test fail for ~1 in 4 generator states)."""
    torch.manual_seed(0)


@pytest.fixture(autouse=True)
def max_iters_in_message_hub():
    """What the Runner provides and DINO's teacher schedule reads."""
    from mmengine.logging import MessageHub
    MessageHub.get_current_instance().update_info('max_iters', 100)


@pytest.fixture(scope='session')
def fmnist_root() -> str:
    """Un-gzipped real Fashion-MNIST (from the Debian package)."""
    return prepare_fashion_mnist(FMNIST_ROOT)


def small_cfg(name: str, work_dir: str, num_images: int = 32,
              batch_size: int = 8, **options) -> Config:
    """A config of ``configs/`` shrunk to a few tiny iterations."""
    cfg = Config.fromfile(osp.join(REPO_ROOT, 'configs', name))
    cfg.work_dir = work_dir
    cfg.train_dataloader.batch_size = batch_size
    cfg.train_dataloader.num_workers = 0
    cfg.train_dataloader.persistent_workers = False
    cfg.train_dataloader.dataset.indices = num_images
    cfg.train_dataloader.dataset.data_root = FMNIST_ROOT
    cfg.default_hooks.logger.interval = 1
    cfg.train_cfg.max_epochs = 1
    cfg.merge_from_dict(options)
    return cfg


SMALL_OPTIONS = [
    'train_dataloader.batch_size=8', 'train_dataloader.num_workers=0',
    'train_dataloader.persistent_workers=False',
    'train_dataloader.dataset.indices=32',
    f'train_dataloader.dataset.data_root={FMNIST_ROOT}',
    'default_hooks.logger.interval=1'
]
# tools/test.py on a 64-image k-NN bank and 32 queries, in-process loading
SMALL_TEST_OPTIONS = [
    'test_dataloader.dataset.bank.indices=64',
    'test_dataloader.dataset.query.indices=32',
    f'test_dataloader.dataset.bank.data_root={FMNIST_ROOT}',
    f'test_dataloader.dataset.query.data_root={FMNIST_ROOT}',
    'test_dataloader.num_workers=0'
]


def free_port() -> int:
    """A TCP port no process listens on now (the OS picks it), for a
    torchrun master: fixed ports collide with other runs on the machine."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def save_fresh_checkpoint(config: str, path) -> str:
    """Save the freshly built (untrained) model of ``configs/<config>`` as
    an mmengine-style checkpoint at ``path``; return the path as str."""
    import torch
    from mmpretrain.registry import MODELS
    cfg = Config.fromfile(osp.join(REPO_ROOT, 'configs', config))
    torch.save(dict(state_dict=MODELS.build(cfg.model).state_dict(),
                    meta=dict()), path)
    return str(path)


def load_tool(path: str):
    """Import the script ``path`` (relative to the repo root, e.g.
    ``tools/demo.py``) as a module. Nothing is added to ``sys.path``: a
    tool imports what it shares with others from the package
    (tests/test_tools/test_tool_imports.py)."""
    import importlib.util
    name = osp.splitext(osp.basename(path))[0]
    spec = importlib.util.spec_from_file_location(
        f'{name}_tool', osp.join(REPO_ROOT, path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_tool(args, timeout=600, env_extra=None,
             check=True) -> subprocess.CompletedProcess:
    """Run a command from the repo root with this interpreter; fail loudly
    unless ``check`` is False (for commands expected to fail)."""
    env = dict(os.environ, PYTHON=sys.executable, PYTHONWARNINGS='ignore')
    env.update(env_extra or {})
    proc = subprocess.run(
        args, cwd=REPO_ROOT, env=env, capture_output=True, text=True,
        timeout=timeout)
    assert not check or proc.returncode == 0, (
        f'{args} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n'
        f'{proc.stderr[-5000:]}')
    return proc
