"""DINO on CNN backbones: DINONeck takes (B, C, H, W) feature maps (global
average pooling) and DINO's head-MLP BatchNorm option; a ResNet DINO's
teacher normalises with batch statistics while training; the ResNet-18
Fashion-MNIST twin trains and tools/test.py reports k-NN and prototype
metrics for it."""
import json
import pytest
import os.path as osp
import sys

import torch
import torch.nn as nn
from mmengine.runner import Runner
from mmpretrain.registry import MODELS

from gmproto_mm.models.utils import attach_em_updater
from tests.conftest import SMALL_TEST_OPTIONS, run_tool, small_cfg
from tests.test_models.test_dino import multicrop


def _neck(**kwargs):
    return MODELS.build(dict(type='DINONeck', in_channels=8, hid_channels=16,
                             bottleneck_channels=4, **kwargs))


def test_neck_pools_feature_maps():
    torch.manual_seed(0)
    neck = _neck()
    maps = torch.randn(3, 8, 5, 7)
    (out, ) = neck((maps, ))  # backbones return a tuple of stages
    torch.testing.assert_close(out, neck(maps.mean(dim=(2, 3)))[0])
    assert out.shape == (3, 4)
    torch.testing.assert_close(out.norm(dim=1), torch.ones(3))
    try:
        neck(torch.randn(3, 6, 5, 7))
    except ValueError as err:
        assert '(B, 8, H, W)' in str(err)
    else:
        raise AssertionError('wrong channels accepted')


def test_neck_batchnorm_after_each_hidden_linear():
    """DINO's use_bn_in_head: Linear -> BN -> GELU for hidden layers."""
    kinds = [type(m).__name__ for m in _neck(norm_cfg=dict(type='BN1d')).mlp]
    assert kinds == ['Linear', 'BatchNorm1d', 'GELU', 'Linear',
                     'BatchNorm1d', 'GELU', 'Linear']
    assert [type(m).__name__ for m in _neck().mlp] == [
        'Linear', 'GELU', 'Linear', 'GELU', 'Linear']


def tiny_resnet_dino(head='DINOHead'):
    return MODELS.build(dict(
        type='DINO',
        data_preprocessor=dict(type='SelfSupDataPreprocessor', mean=[0.],
                               std=[1.], to_rgb=False),
        backbone=dict(type='ResNet', depth=18, in_channels=1,
                      base_channels=8, norm_cfg=dict(type='BN')),
        neck=dict(type='DINONeck', in_channels=64, hid_channels=32,
                  bottleneck_channels=16, norm_cfg=dict(type='BN1d')),
        head=dict(type=head, in_channels=16, num_prototypes=32)))


def test_resnet_dino_steps_and_predicts_pooled_features():
    torch.manual_seed(0)
    model = tiny_resnet_dino('DecoupledGMMHead')
    attach_em_updater(model, 'this test')
    model.train()
    teacher_bn = [m for m in model.teacher.modules()
                  if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    assert teacher_bn and all(m.training for m in teacher_bn)  # as DINO's
    assert not model.teacher.training
    loss = model.loss(multicrop(), None)['loss']
    loss.backward()
    assert torch.isfinite(loss)
    assert model.backbone.conv1.weight.grad.abs().sum() > 0
    assert model.head.em_bank.pop_cached_embeddings().shape == (8, 16)

    model.eval()
    assert not any(m.training for m in model.teacher.modules())
    samples = model.predict(torch.randn(3, 1, 16, 16))
    assert samples[0].backbone_feat.shape == (64, )  # pooled last stage
    assert samples[0].embedding.shape == (16, )
    assert samples[0].prototype_probs.shape == (32, )


@pytest.mark.slow
def test_fmnist_twin_trains_then_tools_test_reports_metrics(tmp_path,
                                                            fmnist_root):
    cfg = small_cfg('dino/dino-gmm_resnet18_1xb64-3e_fmnist.py', str(tmp_path),
                    num_images=16, batch_size=8)  # 2 iterations
    cfg.model.head.gmm.beta_iters = 2
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert int(runner.model.head.gmm.num_updates) == 2
    out = str(tmp_path / 'metrics.json')
    run_tool([sys.executable, 'tools/test.py',
              'configs/dino/dino-gmm_resnet18_1xb64-3e_fmnist.py',
              osp.join(str(tmp_path), 'epoch_1.pth'), '--work-dir',
              str(tmp_path), '--out', out, '--out-item', 'metrics',
              '--cfg-options'] +
             SMALL_TEST_OPTIONS + ['test_dataloader.batch_size=32'])
    with open(out) as f:
        metrics = json.load(f)
    for key in ('prototypes/unique@0.025', 'prototypes/used_prototypes',
                'prototypes/soft_perplexity', 'knn/top1'):
        assert key in metrics, key
    assert metrics['prototypes/num_prototypes'] == 1024
    assert 10 < metrics['knn/top1'] <= 100  # pooled features carry signal
