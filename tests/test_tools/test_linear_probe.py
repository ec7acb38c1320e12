"""Linear probe configs: the Fashion-MNIST probe trains through
tools/train.py on a DINO checkpoint and keeps the loaded teacher backbone
frozen; both probes build and fail clearly without a checkpoint."""
import os.path as osp
import sys

import pytest
import torch
from mmengine.config import Config
from mmpretrain.registry import MODELS

import gmproto_mm  # noqa: F401
from tests.conftest import FMNIST_ROOT, JOINT_FMNIST, REPO_ROOT, run_tool

TEACHER = 'teacher.module.backbone.'
# configs/benchmarks/
FMNIST_PROBE = 'vit-tiny-p8_1xb256-linear-coslr-10e_fmnist.py'
IN1K_PROBE = 'vit-base-p16_8xb128-linear-coslr-100e_in1k.py'


def dino_checkpoint(path: str) -> dict:
    """A DINO state dict whose teacher differs from its student."""
    torch.manual_seed(0)
    cfg = Config.fromfile(osp.join(REPO_ROOT, 'configs', JOINT_FMNIST))
    state = MODELS.build(cfg.model).state_dict()
    for key, value in state.items():
        if key.startswith(TEACHER) and value.is_floating_point():
            state[key] = value + 0.1 * torch.randn_like(value)
    torch.save({'state_dict': state, 'meta': {}}, path)
    return state


def test_linear_probe_on_frozen_teacher(tmp_path, fmnist_root):
    ckpt = str(tmp_path / 'ckpt.pth')
    dino = dino_checkpoint(ckpt)
    work = str(tmp_path / 'lin')
    loaders = ('train_dataloader', 'val_dataloader', 'test_dataloader')
    options = [f'model.backbone.init_cfg.checkpoint={ckpt}',
               'train_cfg.max_epochs=1', 'default_hooks.logger.interval=1']
    for loader in loaders:
        options += [f'{loader}.dataset.indices=64',
                    f'{loader}.dataset.data_root={FMNIST_ROOT}',
                    f'{loader}.num_workers=0', f'{loader}.batch_size=16']
    out = run_tool([sys.executable, 'tools/train.py',
                    f'configs/benchmarks/{FMNIST_PROBE}',
                    '--work-dir', work, '--cfg-options'] + options)
    log = out.stdout + out.stderr
    assert 'Epoch(train) [1][4/4]' in log  # 64 images / 16
    assert 'accuracy/top1' in log and 'accuracy/top5' in log
    assert 'missing keys' not in log and 'unexpected key' not in log

    probe = torch.load(osp.join(work, 'epoch_1.pth'),
                       weights_only=False)['state_dict']
    backbone = {k[len('backbone.'):]: v for k, v in probe.items()
                if k.startswith('backbone.')}
    teacher = {k[len(TEACHER):]: v for k, v in dino.items()
               if k.startswith(TEACHER)}
    assert backbone.keys() == teacher.keys()
    for key, value in teacher.items():  # loaded from the teacher, untouched
        assert torch.equal(backbone[key], value), key
    student = dino['backbone.cls_token']
    assert not torch.equal(backbone['cls_token'], student)  # not the student
    embed_dims = backbone['cls_token'].shape[-1]
    assert probe['head.fc.weight'].shape == (10, embed_dims)


@pytest.mark.parametrize('probe,pretrain', [
    (FMNIST_PROBE, JOINT_FMNIST),
    (IN1K_PROBE, 'dino/dino_vit-base-p16_8xb128-coslr-400e_in1k.py'),
])
def test_probe_backbone_equals_pretraining(probe, pretrain):
    probe_cfg = Config.fromfile(
        osp.join(REPO_ROOT, 'configs', 'benchmarks', probe))
    pre_cfg = Config.fromfile(osp.join(REPO_ROOT, 'configs', pretrain))
    ours, theirs = probe_cfg.model.backbone, pre_cfg.model.backbone
    for key in ('type', 'arch', 'img_size', 'patch_size', 'in_channels',
                'out_type'):
        assert ours.get(key) == theirs.get(key), key
    backbone = MODELS.build(ours)
    assert ours.frozen_stages == len(backbone.layers)  # every block frozen
    assert probe_cfg.model.head.in_channels == backbone.embed_dims


@pytest.mark.parametrize('name', [FMNIST_PROBE, IN1K_PROBE])
def test_probe_builds_frozen_and_needs_a_checkpoint(name):
    cfg = Config.fromfile(osp.join(REPO_ROOT, 'configs', 'benchmarks', name))
    init_cfg = cfg.model.backbone.init_cfg
    assert init_cfg.type == 'Pretrained' and init_cfg.prefix == TEACHER
    model = MODELS.build(cfg.model)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable == ['head.fc.weight', 'head.fc.bias']
    with pytest.raises(FileNotFoundError, match='init_cfg.checkpoint'):
        model.init_weights()  # the placeholder names the missing flag
