"""extract_feat follows predict_with (the teacher by default), and
tools/model_converters/export_backbone.py writes a backbone checkpoint that
mmpretrain's own VisionTransformer / ResNet load strictly and that gives the
teacher's features."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import load_checkpoint
from mmpretrain.registry import MODELS

from gmproto_mm.testing import random_batch
from tests.conftest import JOINT_FMNIST, REPO_ROOT, load_tool

# (config, mmpretrain backbone type that must load the export)
CONFIGS = [(JOINT_FMNIST, 'VisionTransformer'),
           ('dino/dino_resnet18_1xb64-3e_fmnist.py', 'ResNet'),
           # drops mask_token
           ('ibot/ibot_vit-tiny-p4_1xb64-3e_fmnist.py', 'VisionTransformer')]


def trained_model(name: str, **model_options):
    """The config's model after one training step: the student has moved
    away from the EMA teacher."""
    cfg = Config.fromfile(osp.join(REPO_ROOT, 'configs', name))
    cfg.model.update(model_options)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    optim = torch.optim.SGD(model.parameters(), lr=0.5)
    model.train()
    data = model.data_preprocessor(random_batch(cfg), True)
    loss = sum(v for k, v in model(**data, mode='loss').items()
               if k.startswith('loss'))
    loss.backward()
    optim.step()
    return cfg, model.eval()


def first(out):
    return out[-1] if isinstance(out, (tuple, list)) else out


@pytest.mark.parametrize('name', [c for c, _ in CONFIGS])
def test_extract_feat_follows_predict_with(name):
    cfg, model = trained_model(name)
    x = torch.randn(3, 1, 32, 32)
    with torch.no_grad():
        teacher = first(model.teacher.module['backbone'](x))
        student = first(model.backbone(x))
        assert not torch.allclose(teacher, student), 'one step moved nothing'
        torch.testing.assert_close(first(model.extract_feat(x)), teacher,
                                   rtol=0, atol=0)
        # forward(mode='tensor') (get_flops.py) is extract_feat too
        torch.testing.assert_close(first(model(x, mode='tensor')), teacher,
                                   rtol=0, atol=0)
        model.predict_with = 'student'
        torch.testing.assert_close(first(model.extract_feat(x)), student,
                                   rtol=0, atol=0)


@pytest.mark.parametrize('name,plain_type', CONFIGS)
def test_exported_teacher_loads_strictly_into_mmpretrain(
        name, plain_type, tmp_path):
    cfg, model = trained_model(name)
    ckpt = tmp_path / 'epoch_1.pth'
    # what tools/train.py writes: the weights and the config text
    torch.save(dict(state_dict=model.state_dict(),
                    meta=dict(cfg=cfg.pretty_text)), ckpt)
    tool = load_tool('tools/model_converters/export_backbone.py')
    out = tmp_path / 'export' / 'backbone.pth'
    tool.main([str(ckpt), str(out)])

    saved = torch.load(out, weights_only=False)
    assert saved['meta']['network'] == 'teacher'
    keys = list(saved['state_dict'])
    assert keys and all(k.startswith('backbone.') for k in keys)
    assert 'backbone.mask_token' not in keys
    backbone_cfg = saved['meta']['backbone_cfg']
    assert backbone_cfg['type'] == plain_type
    backbone = MODELS.build(backbone_cfg)  # mmpretrain's own class
    assert type(backbone).__module__.startswith('mmpretrain.')
    load_checkpoint(backbone, str(out), strict=True,
                    revise_keys=[(r'^backbone\.', '')])
    backbone.eval()
    x = torch.randn(4, 1, 32, 32)
    with torch.no_grad():
        expected = model.extract_feat(x)  # the teacher's, test above
        got = backbone(x)
        assert len(got) == len(expected)
        for g, e in zip(got, expected):
            torch.testing.assert_close(g, e, rtol=0, atol=0)
        # and the k-NN evaluation's features (predict mode)
        feats = torch.stack([s.backbone_feat for s in model.predict(x)])
        plain = first(got)
        plain = plain[:, 0] if plain.dim() == 3 else plain  # [CLS]
        plain = plain.mean((2, 3)) if plain.dim() == 4 else plain  # pooled
        torch.testing.assert_close(plain, feats)


def test_export_loads_through_pretrained_init_cfg(tmp_path):
    """The linear probe's backbone, initialised from the export with
    mmpretrain's init_cfg=dict(type='Pretrained', prefix='backbone.')."""
    cfg, model = trained_model(JOINT_FMNIST)
    ckpt = tmp_path / 'epoch_1.pth'
    torch.save(dict(state_dict=model.state_dict(), meta=dict()), ckpt)
    tool = load_tool('tools/model_converters/export_backbone.py')
    out = str(tmp_path / 'backbone.pth')
    tool.export_backbone(str(ckpt), out)  # no config stored: the teacher
    probe = Config.fromfile(
        osp.join(REPO_ROOT, 'configs', 'benchmarks',
                 'vit-tiny-p8_1xb256-linear-coslr-10e_fmnist.py'))
    probe.model.backbone.init_cfg = dict(type='Pretrained', checkpoint=out,
                                         prefix='backbone.')
    classifier = MODELS.build(probe.model)
    classifier.init_weights()
    teacher = model.teacher.module['backbone'].state_dict()
    loaded = classifier.backbone.state_dict()
    assert set(loaded) == set(teacher)
    for key, value in teacher.items():
        assert torch.equal(loaded[key], value), key


def test_export_student_and_errors(tmp_path):
    cfg, model = trained_model(JOINT_FMNIST, predict_with='student')
    ckpt = tmp_path / 'epoch_1.pth'
    torch.save(dict(state_dict=model.state_dict(),
                    meta=dict(cfg=cfg.pretty_text)), ckpt)
    tool = load_tool('tools/model_converters/export_backbone.py')
    # the config's predict_with decides by default
    out = tool.export_backbone(str(ckpt), str(tmp_path / 's.pth'))
    assert out['meta']['network'] == 'student'
    for key, value in model.backbone.state_dict().items():
        assert torch.equal(out['state_dict']['backbone.' + key], value), key
    # an exported file has no teacher: the error says what to give instead
    with pytest.raises(ValueError, match="no 'teacher.module.backbone.' keys"):
        tool.export_backbone(str(tmp_path / 's.pth'), str(tmp_path / 'x.pth'),
                             network='teacher')
    with pytest.raises(ValueError, match="'teacher' or 'student'"):
        tool.backbone_state_dict(out['state_dict'], 'ema')
