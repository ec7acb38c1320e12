"""The DINO algorithm, its neck, joint head and loss."""
import math

import pytest
import torch
from mmengine.logging import MessageHub
from mmengine.optim import build_optim_wrapper
from mmpretrain.registry import MODELS

from gmproto_mm.models.algorithms.dino import group_same_shape
from tests.conftest import JOINT_FMNIST, small_cfg


def tiny_dino(num_prototypes=64, **kwargs):
    cfg = dict(
        type='DINO',
        data_preprocessor=dict(type='SelfSupDataPreprocessor', mean=[0.],
                               std=[1.], to_rgb=False),
        backbone=dict(
            type='VisionTransformer',
            arch=dict(embed_dims=32, num_layers=1, num_heads=2,
                      feedforward_channels=64),
            img_size=16, patch_size=4, in_channels=1, out_type='cls_token'),
        neck=dict(type='DINONeck', in_channels=32, hid_channels=64,
                  bottleneck_channels=16),
        head=dict(type='DINOHead', in_channels=16,
                  num_prototypes=num_prototypes))
    cfg.update(kwargs)
    return MODELS.build(cfg)


def multicrop(batch=4):
    return [torch.randn(batch, 1, 16, 16) for _ in range(2)] + \
        [torch.randn(batch, 1, 8, 8) for _ in range(3)]


def test_group_same_shape():
    views = [torch.zeros(2, 1, 4, 4)] * 2 + [torch.zeros(2, 1, 2, 2)] * 3
    assert group_same_shape(views) == [[0, 1], [2, 3, 4]]


def test_neck_output_unit_norm_and_shape():
    neck = MODELS.build(dict(type='DINONeck', in_channels=8,
                             hid_channels=16, bottleneck_channels=4))
    z, = neck((torch.randn(5, 8), ))
    assert z.shape == (5, 4)
    torch.testing.assert_close(z.norm(dim=1), torch.ones(5))
    with pytest.raises(ValueError, match='in_channels'):
        neck((torch.randn(5, 7), ))


def test_neck_without_normalisation_keeps_the_norm():
    """CARP's neck: the bottleneck as the MLP gives it; the DINO neck with
    the same weights returns its direction."""
    with torch.random.fork_rng():  # later tests draw from the global RNG
        torch.manual_seed(0)
        raw = MODELS.build(dict(type='DINONeck', in_channels=8,
                                hid_channels=16, bottleneck_channels=4,
                                normalize=False))
        unit = MODELS.build(dict(type='DINONeck', in_channels=8,
                                 hid_channels=16, bottleneck_channels=4))
        x = torch.randn(5, 8)
    unit.load_state_dict(raw.state_dict())
    z, = raw((x, ))
    torch.testing.assert_close(z, raw.mlp(x))
    assert (z.norm(dim=1) - 1).abs().min() > 0.1  # not unit-norm here
    torch.testing.assert_close(unit((x, ))[0],
                               torch.nn.functional.normalize(z, dim=1))
    with pytest.raises(ValueError, match='normalize must be'):
        MODELS.build(dict(type='DINONeck', in_channels=8, normalize='no'))


def test_loss_matches_reference_and_skips_same_view():
    loss = MODELS.build(dict(type='DINOLoss', num_prototypes=6,
                             warmup_teacher_temp_epochs=0))
    student = [torch.randn(3, 6) for _ in range(4)]
    # a center with a spread of ~1.5 across prototypes (20 x tau_t) ...
    teacher = [torch.randn(3, 6) + 3 * torch.arange(6.) for _ in range(2)]
    got = loss(student, teacher)
    expected, pairs = 0., 0
    for i, t in enumerate(teacher):
        p = torch.softmax(t / 0.07, -1)
        for j, s in enumerate(student):
            if i != j:
                expected += -(p * torch.log_softmax(s / 0.1, -1)).sum(-1).mean()
                pairs += 1
    torch.testing.assert_close(got, expected / pairs)
    # center: 0.9 * 0 + 0.1 * mean teacher logits
    center = 0.1 * torch.cat(teacher).mean(0, keepdim=True)
    torch.testing.assert_close(loss.center, center)
    # the second call's targets are centred: softmax((t - center) / tau_t)
    # ... decides near-flat teacher logits' targets
    teacher2 = [0.1 * torch.randn(3, 6) for _ in range(2)]
    expected = sum(
        -(torch.softmax((t - center) / 0.07, -1) *
          torch.log_softmax(s / 0.1, -1)).sum(-1).mean()
        for i, t in enumerate(teacher2) for j, s in enumerate(student)
        if i != j) / pairs
    uncentred = sum(
        -(torch.softmax(t / 0.07, -1) *
          torch.log_softmax(s / 0.1, -1)).sum(-1).mean()
        for i, t in enumerate(teacher2) for j, s in enumerate(student)
        if i != j) / pairs
    assert (expected - uncentred).abs() > 1e-3  # the center matters here
    torch.testing.assert_close(loss(student, teacher2), expected)
    torch.testing.assert_close(
        loss.center, 0.9 * center +
        0.1 * torch.cat(teacher2).mean(0, keepdim=True))


def test_teacher_temperature_warmup():
    loss = MODELS.build(dict(type='DINOLoss', num_prototypes=4,
                             warmup_teacher_temp=0.04, teacher_temp=0.07,
                             warmup_teacher_temp_epochs=10))
    assert loss.current_teacher_temp(0) == pytest.approx(0.04)
    assert loss.current_teacher_temp(5) == pytest.approx(0.055)
    assert loss.current_teacher_temp(10) == pytest.approx(0.07)
    assert loss.current_teacher_temp(100) == pytest.approx(0.07)


def test_teacher_follows_exact_ema_rule():
    """teacher <- (1 - m) teacher + m student, m on mmengine's cosine."""
    torch.manual_seed(0)
    model = tiny_dino()
    MessageHub.get_current_instance().update_info('max_iters', 10)
    optim = build_optim_wrapper(model, dict(
        optimizer=dict(type='AdamW', lr=1e-2)))
    batch = dict(inputs=multicrop(), data_samples=None)

    def params(module):
        return {k: v.detach().clone() for k, v in module.named_parameters()}

    student0 = params(model)
    model.train_step(batch, optim)  # teacher <- student0 (first update)
    teacher1, student1 = params(model.teacher.module), params(model)
    model.train_step(batch, optim)  # teacher <- (1-m) teacher1 + m student1
    teacher2 = params(model.teacher.module)

    m = 0.004 * (math.cos(math.pi * 1 / 10) + 1) / 2  # steps == 1 of 10
    for key in ('backbone.cls_token', 'neck.mlp.0.weight',
                'head.parametrizations.weight.original1'):
        src = key.replace('head.', 'head.last_layer.', 1)
        torch.testing.assert_close(teacher1[key], student0[src])
        torch.testing.assert_close(
            teacher2[key], (1 - m) * teacher1[key] + m * student1[src])
        assert not torch.equal(student1[src], student0[src])
    # the teacher gets no gradient and is not in the optimizer
    assert all(not p.requires_grad for p in model.teacher.parameters())


def test_shapes_of_predict_mode():
    model = tiny_dino(num_prototypes=32).eval()
    out = model(torch.randn(3, 1, 16, 16), mode='predict')
    assert len(out) == 3
    assert out[0].backbone_feat.shape == (32, )
    assert out[0].prototype_probs.shape == (32, )
    torch.testing.assert_close(out[0].prototype_probs.sum(), torch.tensor(1.))
    # the embedding is what the teacher assignment scored
    embeds = torch.stack([s.embedding for s in out])
    assert embeds.shape[1] == model.head.in_channels
    torch.testing.assert_close(
        model.head.assign(embeds, model._teacher_head()),
        torch.stack([s.prototype_probs for s in out]))


def test_wrong_channels_between_neck_and_head():
    with pytest.raises(ValueError, match='neck out_channels .16. must equal '
                       'head in_channels .8.'):
        tiny_dino(head=dict(type='DINOHead', in_channels=8,
                            num_prototypes=4))


def test_too_few_views_is_a_clear_error():
    model = tiny_dino()
    with pytest.raises(ValueError, match='MultiView'):
        model.loss(multicrop()[:2], None)


def test_registry_builds_every_component(fmnist_root):
    from mmpretrain.registry import DATASETS, HOOKS, TRANSFORMS
    assert tiny_dino().__class__.__name__ == 'DINO'
    for cfg in (dict(type='DINONeck', in_channels=8),
                dict(type='DINOHead', in_channels=8, num_prototypes=4),
                dict(type='DINOLoss', num_prototypes=4)):
        assert type(MODELS.build(cfg)).__name__ == cfg['type']
    assert type(HOOKS.build(dict(type='FreezePrototypesHook'))).__name__ \
        == 'FreezePrototypesHook'
    ds = DATASETS.build(dict(type='LocalFashionMNIST', data_root=fmnist_root,
                             split='test', pipeline=[]))
    assert len(ds) == 10000
    jitter = TRANSFORMS.build(dict(type='NumpySafeColorJitter',
                                   brightness=0.4, contrast=0.4,
                                   saturation=0.4, hue=0.1))
    assert 'gmproto_mm' in type(jitter).__module__


def test_config_step_on_real_fashion_mnist(tmp_path, fmnist_root):
    """One optimizer step of the joint tiny-ViT config on real data: finite
    loss."""
    from mmengine.runner import Runner
    cfg = small_cfg(JOINT_FMNIST, str(tmp_path), num_images=8)
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=1)
    cfg.param_scheduler = []
    runner = Runner.from_cfg(cfg)
    runner.train()
    log = runner.message_hub.get_scalar('train/loss').current()
    assert math.isfinite(log) and log > 0
