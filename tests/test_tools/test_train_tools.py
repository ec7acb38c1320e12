"""tools/train.py, --resume, tools/dist_train.sh (2 CPU processes), the
frozen first epoch, the ViT-B recipe and data-set errors."""
import os.path as osp
import sys

import pytest
import torch
from mmengine.hooks import Hook
from mmengine.runner import Runner

from gmproto_mm.datasets import LocalFashionMNIST
from tests.conftest import (REPO_ROOT, SMALL_OPTIONS, free_port, run_tool,
                            small_cfg)


def test_train_then_resume(tmp_path, fmnist_root):
    work = str(tmp_path / 'work')
    base = [sys.executable, 'tools/train.py', 'configs/dino_vitt_fmnist.py',
            '--work-dir', work, '--cfg-options'] + SMALL_OPTIONS
    run_tool(base + ['train_cfg.max_epochs=1'])
    assert osp.isfile(osp.join(work, 'epoch_1.pth'))
    out = run_tool(base[:5] + ['--resume'] + base[5:] +
                   ['train_cfg.max_epochs=2'])
    log = out.stdout + out.stderr
    assert 'resumed epoch: 1' in log
    assert osp.isfile(osp.join(work, 'epoch_2.pth'))
    ckpt = torch.load(osp.join(work, 'epoch_2.pth'), weights_only=False)
    assert ckpt['meta']['epoch'] == 2
    assert 'head.loss_module.center' in ckpt['state_dict']
    # resuming under a model the checkpoint does not fit stops, naming why
    out = run_tool(base[:5] + ['--resume'] + base[5:] +
                   ['train_cfg.max_epochs=3', 'model.head.num_prototypes=16'],
                   check=False)
    assert out.returncode != 0
    assert 'does not fit the model' in out.stderr
    assert 'shape mismatch' in out.stderr
    assert not osp.isfile(osp.join(work, 'epoch_3.pth'))


def test_dist_train_two_cpu_processes(tmp_path, fmnist_root):
    work = str(tmp_path / 'dist')
    out = run_tool(['bash', 'tools/dist_train.sh', 'configs/dino_vitt_fmnist.py',
                    '2', '--work-dir', work, '--cfg-options'] + SMALL_OPTIONS +
                   ['train_cfg.max_epochs=1'],
                   env_extra=dict(PORT=str(free_port())))
    assert 'Epoch(train) [1][2/2]' in out.stdout + out.stderr  # 32 / (2 x 8)
    assert osp.isfile(osp.join(work, 'epoch_1.pth'))


class RecordPrototypes(Hook):
    """Copies the learned prototypes at the start and after each epoch."""

    def __init__(self):
        self.snapshots = []

    def _snap(self, runner):
        head = runner.model.head
        self.snapshots.append(
            (head.prototypes.clone(), runner.model.backbone.cls_token.clone()))

    def before_train(self, runner):
        self._snap(runner)

    def after_train_epoch(self, runner):
        self._snap(runner)


def test_prototypes_frozen_during_first_epoch_only(tmp_path, fmnist_root):
    cfg = small_cfg('dino_vitt_fmnist.py', str(tmp_path), num_images=16)
    cfg.train_cfg.max_epochs = 2
    cfg.param_scheduler = []  # constant lr: any unfrozen step moves weights
    cfg.custom_hooks = [dict(type='FreezePrototypesHook', epochs=1)]
    runner = Runner.from_cfg(cfg)
    recorder = RecordPrototypes()
    runner.register_hook(recorder, priority='LOWEST')
    runner.train()
    (w0, cls0), (w1, cls1), (w2, _) = recorder.snapshots
    assert torch.equal(w0, w1), 'prototypes changed in the frozen epoch'
    assert not torch.equal(cls0, cls1), 'backbone did not train'
    assert not torch.equal(w1, w2), 'prototypes did not train after epoch 1'


def test_vitb_recipe_builds_and_steps():
    """The 8-GPU recipe builds; one forward/backward on a small batch."""
    from mmengine.config import Config
    from mmpretrain.registry import MODELS
    cfg = Config.fromfile(osp.join(REPO_ROOT, 'configs/dino_vitb_in1k.py'))
    assert cfg.model.head.num_prototypes == 65536
    assert cfg.optim_wrapper.optimizer.lr == pytest.approx(0.003)
    model = MODELS.build(cfg.model)
    views = [torch.randn(1, 3, 224, 224)] * 2 + [torch.randn(1, 3, 96, 96)]
    loss = model.loss(views, None)['loss']
    loss.backward()
    assert torch.isfinite(loss)
    assert model.backbone.cls_token.grad is not None


def test_missing_dataset_names_package_and_folder(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        LocalFashionMNIST(data_root=str(tmp_path / 'none'),
                          source_dir=str(tmp_path / 'nowhere'))
    assert 'dataset-fashion-mnist' in str(err.value)
    assert str(tmp_path / 'none') in str(err.value)


def test_split_selects_files(fmnist_root):
    # mmpretrain 1.2.0 reads the training files for split='test'; we do not
    train = LocalFashionMNIST(data_root=fmnist_root, split='train')
    test = LocalFashionMNIST(data_root=fmnist_root, split='test')
    assert (len(train), len(test)) == (60000, 10000)


def test_flush_cpu_denormals_zeroes_subnormal_results():
    from gmproto_mm.compat import flush_cpu_denormals
    tiny = torch.finfo(torch.float32).tiny
    x = torch.tensor([tiny])
    try:
        flush_cpu_denormals()
        assert (x / 4).item() == 0.0  # would be the denormal tiny / 4
    finally:
        torch.set_flush_denormal(False)
    assert (x / 4).item() > 0.0
