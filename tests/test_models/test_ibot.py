"""iBOT: block masks, masked-patch loss, masked ViT, algorithm and configs."""
import math
import os

import pytest
import torch
from mmengine.hooks import Hook
from mmengine.optim import build_optim_wrapper
from mmpretrain.registry import MODELS

from gmproto_mm.models.utils import attach_em_updater, block_masks
from tests.conftest import free_port, small_cfg
from tests.test_models.test_dino import multicrop

TINY_VIT = dict(
    arch=dict(embed_dims=32, num_layers=1, num_heads=2,
              feedforward_channels=64),
    img_size=16, patch_size=4, in_channels=1)


def tiny_ibot(head='DINOHead', **kwargs):
    cfg = dict(
        type='IBOT',
        data_preprocessor=dict(type='SelfSupDataPreprocessor', mean=[0.],
                               std=[1.], to_rgb=False),
        backbone=dict(type='MaskedVisionTransformer', **TINY_VIT),
        neck=dict(type='DINONeck', in_channels=32, hid_channels=64,
                  bottleneck_channels=16),
        head=dict(type=head, in_channels=16, num_prototypes=64),
        patch_head=dict(type=head, in_channels=16, num_prototypes=48,
                        loss=dict(type='IBOTPatchLoss')),
        mask_prob=1.0)  # every global view masked: deterministic counts > 0
    cfg.update(kwargs)
    return MODELS.build(cfg)


# ---- block masks -----------------------------------------------------------
def test_block_masks_shapes_and_shares():
    gen = torch.Generator().manual_seed(0)
    masks = block_masks(400, (8, 8), (0.1, 0.5), mask_prob=1., generator=gen)
    assert masks.shape == (400, 64) and masks.dtype == torch.bool
    share = masks.float().mean(1)
    # never above the drawn ratio; short of it by less than one block
    assert share.max() <= 0.5
    assert share.min() >= 0.1 - 4 / 64
    assert block_masks(3, 5, mask_prob=0.).sum() == 0
    assert block_masks(2, (6, 4)).shape == (2, 24)
    assert block_masks(0, 8).shape == (0, 64)


def test_block_masks_are_blocks():
    """Masked patches come in rectangles: almost all have a masked
    4-neighbour (about 1 - 0.9 ** 4 = 34 % if scattered at random)."""
    masks = block_masks(200, 14, (0.1, 0.1), 1., min_patches=16,
                        generator=torch.Generator().manual_seed(1))
    grid = masks.view(-1, 14, 14).float()
    padded = torch.nn.functional.pad(grid, (1, 1, 1, 1))
    neighbours = (padded[:, :-2, 1:-1] + padded[:, 2:, 1:-1] +
                  padded[:, 1:-1, :-2] + padded[:, 1:-1, 2:])
    share = (neighbours[grid > 0] > 0).float().mean()
    assert share > 0.9


def test_block_masks_probability_and_determinism():
    gen = torch.Generator().manual_seed(0)
    masks = block_masks(2000, 8, mask_prob=0.5, generator=gen)
    masked = masks.any(1).float().mean().item()
    assert abs(masked - 0.5) < 0.05
    again = block_masks(2000, 8, mask_prob=0.5,
                        generator=torch.Generator().manual_seed(0))
    assert torch.equal(masks, again)
    other = block_masks(2000, 8, mask_prob=0.5,
                        generator=torch.Generator().manual_seed(1))
    assert not torch.equal(masks, other)


@pytest.mark.parametrize('kwargs, match', [
    (dict(ratio_range=(0.5, 0.1)), 'ratio_range'),
    (dict(ratio_range=(0.1, 1.5)), 'ratio_range'),
    (dict(mask_prob=1.5), 'mask_prob'),
    (dict(min_patches=0), 'min_patches'),
    (dict(aspect=(0., 1.)), 'aspect'),
    (dict(grid_hw=(0, 4)), 'grid_hw'),
    (dict(batch=-1), 'batch'),
])
def test_block_masks_validation(kwargs, match):
    args = dict(batch=2, grid_hw=(4, 4))
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        block_masks(**args)


# ---- IBOTPatchLoss ---------------------------------------------------------
def _patch_loss(**kwargs):
    cfg = dict(type='IBOTPatchLoss', num_prototypes=6,
               warmup_teacher_temp_epochs=0)
    cfg.update(kwargs)
    return MODELS.build(cfg)


def test_patch_loss_matches_reference():
    torch.manual_seed(0)
    loss = _patch_loss()
    counts = [3, 5, 0]  # image 2 has no masked token
    index = torch.cat([torch.full((c, ), i) for i, c in enumerate(counts)])
    student = torch.randn(8, 6, requires_grad=True)
    teacher = torch.randn(8, 6)
    got = loss(student, teacher, index, num_images=3)
    # iBOT: per-image mean over masked tokens, then mean over all images
    per_image = []
    for i, c in enumerate(counts):
        s, t = student[index == i], teacher[index == i]
        ce = -(torch.softmax(t / 0.07, -1) *
               torch.log_softmax(s / 0.1, -1)).sum(-1)
        per_image.append(ce.sum() / max(c, 1))
    torch.testing.assert_close(got, sum(per_image) / 3)
    got.backward()
    assert student.grad.abs().sum() > 0
    torch.testing.assert_close(loss.center,
                               0.1 * teacher.mean(0, keepdim=True))


def test_patch_loss_is_zero_without_masked_tokens():
    loss = _patch_loss()
    loss.center.fill_(0.5)
    student = torch.zeros(0, 6, requires_grad=True)
    value = loss(student, torch.zeros(0, 6),
                 torch.zeros(0, dtype=torch.long), num_images=4)
    assert value.item() == 0 and value.requires_grad
    value.backward()  # still in the graph
    assert torch.equal(loss.center, torch.full((1, 6), 0.5))  # unchanged


def test_patch_loss_validation():
    loss = _patch_loss()
    with pytest.raises(ValueError, match='num_prototypes'):
        loss(torch.zeros(2, 5), torch.zeros(2, 5), torch.zeros(2).long(), 1)
    with pytest.raises(ValueError, match='image_index'):
        loss(torch.zeros(2, 6), torch.zeros(2, 6), torch.zeros(3).long(), 1)
    with pytest.raises(ValueError, match='num_images'):
        loss(torch.zeros(2, 6), torch.zeros(2, 6), torch.tensor([0, 2]), 2)


def _dist_patch_loss_worker(rank: int, out_dir: str, port: int) -> None:
    """Rank 0 has 5 masked tokens, rank 1 none."""
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    torch.distributed.init_process_group('gloo', rank=rank, world_size=2)
    from gmproto_mm.models.losses import IBOTPatchLoss
    loss = IBOTPatchLoss(num_prototypes=6, warmup_teacher_temp_epochs=0)
    teacher = torch.randn(5, 6, generator=torch.Generator().manual_seed(0))
    num = 5 if rank == 0 else 0
    value = loss(torch.randn(num, 6), teacher[:num],
                 torch.tensor([0, 0, 1, 1, 1])[:num], num_images=2)
    torch.save(dict(center=loss.center, loss=value, teacher=teacher),
               os.path.join(out_dir, f'rank{rank}.pth'))
    torch.distributed.destroy_process_group()


def test_patch_loss_center_over_two_ranks(tmp_path):
    """Collectives run on a rank without masked tokens (no hang); the
    center is the mean over the tokens of all ranks."""
    torch.multiprocessing.spawn(_dist_patch_loss_worker,
                                args=(str(tmp_path), free_port()), nprocs=2)
    r0, r1 = (torch.load(tmp_path / f'rank{r}.pth') for r in (0, 1))
    expected = 0.1 * r0['teacher'].mean(0, keepdim=True)
    torch.testing.assert_close(r0['center'], expected)
    torch.testing.assert_close(r1['center'], expected)
    assert r1['loss'].item() == 0 and r0['loss'].item() > 0


# ---- MaskedVisionTransformer -----------------------------------------------
def test_masked_vit_tokens_and_mask():
    torch.manual_seed(0)
    vit = MODELS.build(dict(type='MaskedVisionTransformer', **TINY_VIT))
    vit.init_weights()
    plain = MODELS.build(dict(type='VisionTransformer', out_type='raw',
                              **TINY_VIT))
    plain.load_state_dict(vit.state_dict(), strict=False)
    vit.eval(), plain.eval()
    x = torch.randn(2, 1, 16, 16)
    tokens, = vit(x)
    assert tokens.shape == (2, 1 + 16, 32) and vit.patch_grid((16, 16)) == (
        4, 4)
    torch.testing.assert_close(tokens, plain(x)[0])  # mask=None: plain ViT
    none = torch.zeros(2, 16, dtype=torch.bool)
    torch.testing.assert_close(vit(x, none)[0], tokens)
    mask = none.clone()
    mask[0, :5] = True
    masked, = vit(x, mask)
    assert not torch.allclose(masked[0], tokens[0])
    torch.testing.assert_close(masked[1], tokens[1])
    # local crops: resized position embedding, with or without a mask
    assert vit(torch.randn(2, 1, 8, 8))[0].shape == (2, 5, 32)
    assert vit(torch.randn(2, 1, 8, 8),
               torch.ones(2, 4, dtype=torch.bool))[0].shape == (2, 5, 32)
    with pytest.raises(ValueError, match='mask must be a bool'):
        vit(x, torch.zeros(2, 15, dtype=torch.bool))


# ---- IBOT ------------------------------------------------------------------
def _record_masks(model):
    """Wrap ``_sample_masks`` to keep the masks of the last step."""
    record = []
    sample = model._sample_masks

    def wrapped(views):
        record[:] = sample(views)
        return list(record)

    model._sample_masks = wrapped
    return record


@pytest.mark.parametrize('head', ['DINOHead', 'DecoupledGMMHead'])
def test_ibot_train_step(head):
    torch.manual_seed(0)
    model = tiny_ibot(head)
    attach_em_updater(model, 'this test')  # pops the caches below
    masks = _record_masks(model)
    optim = build_optim_wrapper(model, dict(
        optimizer=dict(type='AdamW', lr=1e-2)))
    log_vars = model.train_step(dict(inputs=multicrop(), data_samples=None),
                                optim)
    for key in ('loss', 'loss_patch'):
        assert math.isfinite(float(log_vars[key]))
    num_masked = int(sum(m.sum() for m in masks))
    assert num_masked > 0 and [tuple(m.shape) for m in masks] == [(4, 16)] * 2
    teacher = model.teacher.module
    if head == 'DINOHead':  # EMA copies of both last layers
        assert set(teacher) == {'backbone', 'neck', 'head', 'patch_head'}
        assert teacher['patch_head'] is not model.patch_head.last_layer
        assert teacher['patch_head'].weight.shape == (48, 16)
        assert teacher['head'].weight.shape == (64, 16)
    else:  # decoupled: shared banks, EM data cached for OnlineEMHook
        assert set(teacher) == {'backbone', 'neck'}
        patch = model.patch_head.em_bank.pop_cached_embeddings()
        assert patch.shape == (num_masked, 16)
        torch.testing.assert_close(patch.norm(dim=1),
                                   torch.ones(num_masked))
        assert model.head.em_bank.pop_cached_embeddings().shape == (8, 16)
    # the mask token is trained through the patch and [CLS] losses
    model.zero_grad()
    losses = model.loss(multicrop(), None)
    (losses['loss'] + losses['loss_patch']).backward()
    assert model.backbone.mask_token.grad.abs().sum() > 0


def test_ibot_predict_and_errors():
    model = tiny_ibot().eval()
    out = model(torch.randn(3, 1, 16, 16), mode='predict')
    assert len(out) == 3 and out[0].backbone_feat.shape == (32, )
    assert out[0].prototype_probs.shape == (64, )
    embeds = torch.stack([s.embedding for s in out])
    torch.testing.assert_close(
        model.head.assign(embeds, model._teacher_head()),
        torch.stack([s.prototype_probs for s in out]))
    with pytest.raises(ValueError, match='MaskedVisionTransformer'):
        tiny_ibot(backbone=dict(type='VisionTransformer', **TINY_VIT))
    with pytest.raises(ValueError, match='patch_head in_channels'):
        tiny_ibot(patch_head=dict(type='DINOHead', in_channels=8,
                                  num_prototypes=4))
    with pytest.raises(ValueError, match='ratio_range'):
        tiny_ibot(mask_ratio=(0.6, 0.2))
    with pytest.raises(ValueError, match='MultiView'):
        model.loss(multicrop()[:2], None)


# ---- configs through the Runner --------------------------------------------
class _Snapshot(Hook):
    """Prototype weights after init, before the first step."""

    def before_train(self, runner) -> None:
        model = runner.model
        self.params = {
            name: p.detach().clone()
            for name, p in model.named_parameters()
            if name.startswith(('head.', 'patch_head.', 'backbone.cls'))
        }


def test_joint_config_trains_and_freezes_both_banks(tmp_path, fmnist_root):
    from mmengine.runner import Runner
    cfg = small_cfg('ibot/ibot_vit-tiny-p4_1xb64-3e_fmnist.py', str(tmp_path),
                    num_images=16,
                    batch_size=8)
    runner = Runner.from_cfg(cfg)
    snapshot = _Snapshot()
    runner.register_hook(snapshot, priority='LOWEST')
    runner.train()
    assert runner.iter == 2
    for key in ('train/loss', 'train/loss_patch'):
        assert math.isfinite(runner.message_hub.get_scalar(key).current())
    params = dict(runner.model.named_parameters())
    # FreezePrototypesHook (epoch 1): both last layers untouched
    for name, before in snapshot.params.items():
        changed = not torch.equal(params[name], before)
        assert changed == name.startswith('backbone.'), name


def test_decoupled_config_updates_both_banks(tmp_path, fmnist_root):
    from mmengine.runner import Runner
    cfg = small_cfg('ibot/ibot-gmm_vit-tiny-p4_1xb64-3e_fmnist.py',
                    str(tmp_path), num_images=16,
                    batch_size=8)
    cfg.model.head.gmm.init_samples = 1  # EM from the first step on
    cfg.model.patch_head.gmm.init_samples = 1
    runner = Runner.from_cfg(cfg)
    runner.train()
    model = runner.model
    assert int(model.head.gmm.num_updates) == 2
    assert int(model.patch_head.gmm.num_updates) == 2
    assert math.isfinite(
        runner.message_hub.get_scalar('train/loss_patch').current())
