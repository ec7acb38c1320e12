"""CARPLoss: against a plain float64 reference written from CARP's
formulas, its random partitions, two gloo ranks against one process, the
iteration through the DINO algorithm and a resume, the evaluation
assignment, and the decoupled head's posterior targets."""
import math
import os.path as osp
import sys

import numpy as np
import pytest
import torch
from mmengine.optim import build_optim_wrapper
from mmpretrain.registry import MODELS

from gmproto_mm.models.losses.carp_loss import random_partition
from gmproto_mm.models.utils import attach_em_updater
from tests.conftest import free_port, run_tool
from tests.test_models.dist_carp_worker import (SPLIT, global_batch,
                                                rank_loss)
from tests.test_models.test_dino import multicrop, tiny_dino

EPS = torch.finfo(torch.float32).eps


def reference_carp(student, teacher, blocks):
    """CARP's two terms from the formulas, in float64, one block at a time.

    For block b with prototype indices I_b and size M: p = exp(s[:, I_b]) /
    sum (no temperature), the same for the teacher; consistency = mean over
    (student view i, teacher view j != i), rows and blocks of -log clamp(
    <p_i, q_j>, eps, 1 - eps); KL = mean over blocks of sum_c pbar_c
    log(clamp(pbar_c) * M), pbar the mean of every student and teacher row.
    """
    student = [s.double() for s in student]
    teacher = [t.detach().double() for t in teacher]

    def probs(logits, idx):
        e = torch.exp(logits[:, idx] - logits[:, idx].max(1, keepdim=True)[0])
        return e / e.sum(1, keepdim=True)

    cons, kls = [], []
    for idx in blocks.tolist():
        m = len(idx)
        p = [probs(s, idx) for s in student]
        q = [probs(t, idx) for t in teacher]
        pairs = [(i, j) for i in range(len(p)) for j in range(len(q))
                 if i != j]
        cons.append(sum(
            -torch.log((p[i] * q[j]).sum(1).clamp(EPS, 1 - EPS)).mean()
            for i, j in pairs) / len(pairs))
        pbar = torch.cat(p + q).mean(0)
        kls.append((pbar * torch.log(pbar.clamp(EPS, 1 - EPS) * m)).sum())
    return sum(cons) / len(cons), sum(kls) / len(kls)


def views(batch=3, num_prototypes=12, num_student=5, num_teacher=2, seed=0,
          scale=3.0):
    gen = torch.Generator().manual_seed(seed)
    student = [scale * torch.randn(batch, num_prototypes, generator=gen)
               for _ in range(num_student)]
    teacher = [scale * torch.randn(batch, num_prototypes, generator=gen)
               for _ in range(num_teacher)]
    return student, teacher


def test_loss_and_gradient_match_float64_reference():
    """3 blocks of 4, 5 student and 2 teacher views: both terms and the
    gradient of their sum w.r.t. the student logits."""
    loss = MODELS.build(dict(type='CARPLoss', num_prototypes=12,
                             partition_size=4, seed=3))
    student, teacher = views()
    student = [s.requires_grad_() for s in student]
    got = loss(student, teacher, iteration=7)
    blocks = loss.partition(7)
    assert blocks.shape == (3, 4)
    cons, kl = reference_carp(student, teacher, blocks)
    torch.testing.assert_close(got['loss_consistency'].double(), cons,
                               rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(got['loss_kl'].double(), kl, rtol=1e-5,
                               atol=1e-6)
    grads = torch.autograd.grad(sum(got.values()), student)
    expected = torch.autograd.grad(cons + kl, student)
    for g, e in zip(grads, expected):
        assert g.abs().max() > 1e-4  # both terms reach every student view
        torch.testing.assert_close(g, e, rtol=1e-4, atol=1e-6)
    # the partition matters: the loss with another iteration's differs
    other = loss(student, teacher, iteration=8)
    assert abs(float(other['loss_kl'] - got['loss_kl'])) > 1e-3


def test_clamps_keep_extreme_agreements_finite():
    """One-hot agreeing views: -log(1 - eps); disagreeing: -log(eps); a
    one-hot mean: KL = log M (the clamp of log 0)."""
    loss = MODELS.build(dict(type='CARPLoss', num_prototypes=4,
                             partition_size=4))
    hot = torch.full((2, 4), -1e4)
    hot[:, 0] = 0.
    same = loss([hot, hot], [hot, hot], iteration=0)
    torch.testing.assert_close(same['loss_consistency'],
                               torch.tensor(-math.log1p(-EPS)))
    torch.testing.assert_close(same['loss_kl'], torch.tensor(math.log(4.)))
    cold = hot.roll(1, dims=1)
    apart = loss([hot, hot], [cold, cold], iteration=0)
    torch.testing.assert_close(apart['loss_consistency'],
                               torch.tensor(-math.log(EPS)))


def test_partition_is_a_function_of_seed_and_iteration():
    """Two draws with the same (seed, iteration) are equal (as on two
    ranks, or after a resume); another iteration or seed draws another
    partition; the global RNG is neither used nor moved."""
    state = torch.random.get_rng_state()
    first = random_partition(64, 8, seed=1, iteration=5)
    torch.manual_seed(123)  # the global RNG does not matter
    again = random_partition(64, 8, seed=1, iteration=5)
    torch.random.set_rng_state(state)
    assert torch.equal(first, again)
    assert first.shape == (8, 8)
    assert torch.equal(first.flatten().sort()[0], torch.arange(64))
    assert not torch.equal(first, random_partition(64, 8, 1, 6))
    assert not torch.equal(first, random_partition(64, 8, 2, 5))
    before = torch.random.get_rng_state(), np.random.get_state()[1].copy()
    random_partition(64, 8, 1, 5)
    assert torch.equal(before[0], torch.random.get_rng_state())
    assert (before[1] == np.random.get_state()[1]).all()


def test_bad_arguments_are_clear_errors():
    with pytest.raises(ValueError, match='must divide'):
        MODELS.build(dict(type='CARPLoss', num_prototypes=10,
                          partition_size=4))
    with pytest.raises(ValueError, match='partition_size'):
        MODELS.build(dict(type='CARPLoss', num_prototypes=10,
                          partition_size=1))
    loss = MODELS.build(dict(type='CARPLoss', num_prototypes=8,
                             partition_size=4))
    student, teacher = views(num_prototypes=8)
    with pytest.raises(ValueError, match='iteration'):
        loss(student, teacher, iteration=-1)
    with pytest.raises(ValueError, match=r'\(B, 8\)'):
        loss([s[:, :6] for s in student], teacher, iteration=0)
    with pytest.raises(ValueError, match='pair of different views'):
        loss(student[:1], teacher[:1], iteration=0)


@pytest.fixture(scope='module')
def two_rank_carp(tmp_path_factory):
    """dist_carp_worker.py under torchrun with 2 gloo processes, once."""
    out = str(tmp_path_factory.mktemp('dist_carp'))
    run_tool([sys.executable, '-m', 'torch.distributed.run',
              '--nproc_per_node=2', f'--master_port={free_port()}',
              'tests/test_models/dist_carp_worker.py', out])
    return [torch.load(osp.join(out, f'rank{r}.pth')) for r in (0, 1)]


def test_two_ranks_with_unequal_batches_equal_one_process(two_rank_carp):
    """Ranks hold 3 and 5 images: the ranks' mean loss is one process's
    loss on the 8, the KL term is the global batch's on both ranks, and the
    ranks' gradients averaged (as DDP does) are one process's gradient."""
    r0, r1 = two_rank_carp
    assert (r0['rows'], r1['rows']) == SPLIT
    weight, embeds, teacher = global_batch()
    whole = rank_loss(weight, embeds, teacher)
    grad, = torch.autograd.grad(sum(whole.values()), weight)
    for key in ('loss_consistency', 'loss_kl'):
        mean = (r0[key] + r1[key]) / 2
        torch.testing.assert_close(mean, whole[key].detach(), rtol=1e-5,
                                   atol=1e-6)
    torch.testing.assert_close(r0['loss_kl'], r1['loss_kl'])
    torch.testing.assert_close(r0['grad'], grad, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(r1['grad'], grad, rtol=1e-5, atol=1e-7)
    # a rank alone (no reduction) would see its own rows' mean only
    own = slice(0, SPLIT[0])
    alone = rank_loss(weight, embeds[:, own], teacher[:, own])
    assert abs(float(alone['loss_kl'] - whole['loss_kl'])) > 1e-3


def carp_dino(head='DINOHead', **head_options):
    """tiny_dino with CARP's loss behind an un-normalised neck."""
    return tiny_dino(
        neck=dict(type='DINONeck', in_channels=32, hid_channels=64,
                  bottleneck_channels=16, normalize=False),
        head=dict(type=head, in_channels=16, num_prototypes=64,
                  loss=dict(type='CARPLoss', partition_size=16, seed=5),
                  **head_options))


def record_iterations(model):
    """Wrap the loss's partition so each call's iteration is recorded."""
    seen = []
    draw = model.head.loss_module.partition

    def recorded(iteration, device=None):
        seen.append(iteration)
        return draw(iteration, device)

    model.head.loss_module.partition = recorded
    return seen


def test_algorithm_passes_its_step_count_and_resume_continues_it():
    """DINO passes the 0-based training iteration, counted by the
    teacher EMA's checkpointed buffer: 4 steps at once and 2 + reload + 2
    use iterations 0..3 both, so the resumed run draws the uninterrupted
    run's partitions and ends with the same weights."""
    batch = dict(inputs=multicrop(), data_samples=None)

    def fresh():
        torch.manual_seed(0)
        model = carp_dino()
        optim = build_optim_wrapper(model, dict(
            optimizer=dict(type='SGD', lr=0.1)))
        return model, optim

    once, optim = fresh()
    seen_once = record_iterations(once)
    for _ in range(4):
        once.train_step(batch, optim)
    first, optim = fresh()
    for _ in range(2):
        first.train_step(batch, optim)
    state = {k: v.clone() for k, v in first.state_dict().items()}
    optim_state = optim.state_dict()
    resumed, optim = fresh()
    resumed.load_state_dict(state)
    optim.load_state_dict(optim_state)
    seen_resumed = record_iterations(resumed)
    for _ in range(2):
        resumed.train_step(batch, optim)
    assert seen_once == [0, 1, 2, 3] and seen_resumed == [2, 3]
    for key, value in once.state_dict().items():
        torch.testing.assert_close(resumed.state_dict()[key], value,
                                   rtol=0, atol=0, msg=key)


def test_head_without_iteration_is_a_clear_error():
    model = carp_dino()
    embeds = [torch.randn(2, 16) for _ in range(3)]
    with pytest.raises(ValueError, match='needs the training iteration'):
        model.head.loss(embeds, embeds[:2], model._teacher_head())


@pytest.mark.parametrize('head', ['DINOHead', 'DecoupledGMMHead'])
def test_step_and_evaluation_assignment(head):
    """A training step with either head (no gradient reaches the GMM
    means; the teacher embeddings are cached, L2-normalised, for EM), and
    predict's assignment: softmax over all K of <z, w_k>, no temperature,
    z the un-normalised embedding."""
    torch.manual_seed(0)
    model = carp_dino(head)
    attach_em_updater(model, 'this test')
    losses = model.loss(multicrop(), None)
    assert set(losses) == {'loss_consistency', 'loss_kl'}
    sum(losses.values()).backward()
    assert model.backbone.cls_token.grad.abs().sum() > 0
    if head == 'DecoupledGMMHead':
        assert not any(p.requires_grad for p in model.head.parameters())
        cached = model.head.em_bank.pop_cached_embeddings()
        assert cached.shape == (8, 16)
        torch.testing.assert_close(cached.norm(dim=1), torch.ones(8))
    model.eval()
    out = model.predict(torch.randn(3, 1, 16, 16))
    embeds = torch.stack([s.embedding for s in out])
    assert (embeds.norm(dim=1) - 1).abs().max() > 1e-2  # not normalised
    bank = out[0].prototypes
    expected = torch.softmax(embeds.double() @ bank.double().t(), dim=1)
    probs = torch.stack([s.prototype_probs for s in out])
    torch.testing.assert_close(probs.double(), expected, rtol=1e-5,
                               atol=1e-7)


def test_posterior_targets_are_refused_with_carp():
    """CARP with the mixture posterior as targets collapsed the encoder in
    the seed study and was removed: the head refuses it, naming the
    option to use."""
    with pytest.raises(ValueError, match="teacher_targets='softmax'"):
        carp_dino('DecoupledGMMHead', teacher_targets='responsibilities')
