"""tools/train.py as mmpretrain's: --cfg-options after the other flags,
runner_type honoured, --no-validate. The flags are
``gmproto_mm.apis.train_args`` (gpu_check.py builds its runs with them)."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from gmproto_mm.apis import merge_train_args, parse_train_args
from tests.conftest import REPO_ROOT, load_tool


@pytest.fixture
def train_tool():
    """tools/train.py as a module; it sets flush-to-zero on import (a
    process-wide mode), which is undone for the other tests."""
    yield load_tool('tools/train.py')
    torch.set_flush_denormal(False)


def merged(config, argv):
    cfg = Config.fromfile(osp.join(REPO_ROOT, 'configs', config))
    return merge_train_args(cfg, parse_train_args([config, *argv]))


def test_train_tool_uses_the_package_flags(train_tool):
    """tools/train.py parses and merges with gmproto_mm.apis, the functions
    these tests (and gpu_check.py) use, not a copy of its own."""
    assert train_tool.parse_train_args is parse_train_args
    assert train_tool.merge_train_args is merge_train_args


def test_cfg_options_win_over_the_flags():
    cfg = merged('dino/dino-gmm_vit-tiny-p8_1xb64-3e_fmnist.py', [
        '--work-dir', 'flag_dir', '--amp', '--resume', 'a.pth',
        '--no-pin-memory', '--cfg-options', 'work_dir=option_dir',
        'optim_wrapper.type=OptimWrapper', 'load_from=b.pth',
        'train_dataloader.pin_memory=True'])
    assert cfg.work_dir == 'option_dir'
    assert cfg.optim_wrapper.type == 'OptimWrapper'
    assert cfg.optim_wrapper.loss_scale == 'dynamic'  # --amp still ran
    assert cfg.resume is True and cfg.load_from == 'b.pth'
    assert cfg.train_dataloader.pin_memory is True
    # and the flags alone
    cfg = merged('dino/dino-gmm_vit-tiny-p8_1xb64-3e_fmnist.py',
                 ['--work-dir', 'flag_dir', '--amp', '--no-pin-memory'])
    assert cfg.work_dir == 'flag_dir'
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper'
    assert cfg.train_dataloader.pin_memory is False


def test_no_validate_drops_the_online_knn(tmp_path):
    config = tmp_path / 'knn_val.py'
    config.write_text(
        f"_base_ = ['{REPO_ROOT}/configs/dino/dino-gmm_vit-tiny-p8_1xb64-3e_fmnist.py',\n"
        f"          '{REPO_ROOT}/configs/_base_/datasets/fmnist_knn-val.py']\n")
    cfg = merge_train_args(Config.fromfile(str(config)),
                           parse_train_args([str(config)]))
    assert cfg.val_evaluator.type == 'KNNAccuracy'
    cfg = merge_train_args(
        Config.fromfile(str(config)),
        parse_train_args([str(config), '--no-validate']))
    assert cfg.val_cfg is None and cfg.val_dataloader is None and \
        cfg.val_evaluator is None


@RUNNERS.register_module()
class _RecordingTrainRunner(Runner):
    """Stands for a config's own runner: records what it was built from."""
    built = []

    @classmethod
    def from_cfg(cls, cfg):
        cls.built.append(cfg)
        return 'custom runner'


def test_runner_type_is_honoured(train_tool):
    cfg = merged('dino/dino_vit-tiny-p8_1xb64-3e_fmnist.py',
                 ['--cfg-options', 'runner_type=_RecordingTrainRunner'])
    assert train_tool.build_runner(cfg) == 'custom runner'
    assert _RecordingTrainRunner.built[-1].model.type == 'DINO'
