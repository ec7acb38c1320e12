"""DecoupledGMMHead + OnlineEMHook: contract, Runner-driven updates,
gradient accumulation and a 2-process gloo run."""
import copy
import os.path as osp
import sys

import pytest
import torch
from mmengine.runner import Runner

from gmproto_mm.engine.hooks import all_gather_rows, find_em_banks
from gmproto_mm.models import OnlineGaussianMixture
from gmproto_mm.models.utils import attach_em_updater
from tests.conftest import (DECOUPLED_FMNIST, FMNIST_ROOT, JOINT_FMNIST,
                            REPO_ROOT, free_port, run_tool, small_cfg)
from tests.test_models.test_dino import multicrop, tiny_dino


def tiny_gm_dino(num_prototypes=16):
    model = tiny_dino(head=dict(type='DecoupledGMMHead', in_channels=16,
                                num_prototypes=num_prototypes,
                                max_cached_batches=3))
    attach_em_updater(model, 'this test')  # it pops the cache itself
    return model


def test_head_has_one_fixed_bank_and_caches_teacher_embeddings():
    model = tiny_gm_dino()
    head = model.head
    assert list(head.parameters()) == []
    assert 'head' not in model.teacher.module  # no EMA copy of the bank
    views = multicrop(batch=4)
    loss = model.loss(views, None)['loss']
    loss.backward()
    cached = head.em_bank.pop_cached_embeddings()
    assert cached.shape == (2 * 4, 16) and cached.dtype == torch.float32
    assert not cached.requires_grad
    torch.testing.assert_close(cached.norm(dim=1), torch.ones(8))
    assert head.em_bank.pop_cached_embeddings().shape == (0, 16)  # cleared
    # logits are cosine similarities to the means
    z = torch.nn.functional.normalize(torch.randn(3, 16), dim=1)
    torch.testing.assert_close(head.logits(z), z @ head.gmm.means.t())
    assert find_em_banks(model) == [('head.em_bank', head.em_bank)]


def test_responsibilities_as_teacher_targets():
    """The mixture posterior as the teacher target (an option of ours)."""
    from mmpretrain.registry import MODELS
    head = MODELS.build(dict(type='DecoupledGMMHead', in_channels=16,
                             num_prototypes=8,
                             teacher_targets='responsibilities',
                             gmm=dict(init='uniform')))
    attach_em_updater(head, 'this test')
    normal = torch.nn.functional.normalize
    student = [normal(torch.randn(4, 16), dim=1) for _ in range(3)]
    teacher = [normal(torch.randn(4, 16), dim=1) for _ in range(2)]
    # before the first EM update: DINO's centred softmax targets
    softmax_loss = head.loss(student, teacher)['loss']
    head.em_bank.pop_cached_embeddings()
    head.gmm.update(torch.cat(teacher))
    resp = [head.gmm.responsibilities(z) for z in teacher]
    log_preds = [torch.log_softmax(head.logits(z) / 0.1, dim=1)
                 for z in student]
    pairs = [(t, s) for t in range(2) for s in range(3) if s != t]
    expected = sum(-(resp[t] * log_preds[s]).sum(1).mean()
                   for t, s in pairs) / len(pairs)
    torch.testing.assert_close(head.loss(student, teacher)['loss'], expected)
    assert not torch.equal(expected, softmax_loss)
    torch.testing.assert_close(head.assign(teacher[0]), resp[0])
    with pytest.raises(ValueError, match='teacher_targets'):
        MODELS.build(dict(type='DecoupledGMMHead', in_channels=16,
                          num_prototypes=8, teacher_targets='posterior'))


def test_missing_hook_is_a_clear_error():
    model = tiny_gm_dino()
    for _ in range(3):
        model.loss(multicrop(), None)
    with pytest.raises(RuntimeError, match='OnlineEMHook'):
        model.loss(multicrop(), None)


def test_hook_without_bank_is_a_clear_error(tmp_path, fmnist_root):
    cfg = small_cfg(JOINT_FMNIST, str(tmp_path))
    cfg.custom_hooks = [dict(type='OnlineEMHook')]
    with pytest.raises(ValueError, match='no prototype bank'):
        Runner.from_cfg(cfg).train()


@pytest.mark.parametrize('accumulate', [1, 2])
def test_runner_updates_once_per_optimizer_step(tmp_path, fmnist_root,
                                                accumulate):
    cfg = small_cfg(DECOUPLED_FMNIST, str(tmp_path), num_images=32,
                    batch_size=8)  # 4 iterations
    cfg.model.head.gmm.init_samples = 1  # EM from the first step on
    cfg.optim_wrapper.accumulative_counts = accumulate
    runner = Runner.from_cfg(cfg)
    gmm = runner.model.head.gmm
    start = gmm.means.clone()
    seen = []
    real_update = gmm.update
    gmm.update = lambda x: seen.append(x.shape[0]) or real_update(x)
    runner.train()
    assert seen == [2 * 8 * accumulate] * (4 // accumulate)
    assert int(gmm.num_updates) == 4 // accumulate
    assert not torch.equal(start, gmm.means)
    torch.testing.assert_close(gmm.means.norm(dim=1), torch.ones(256))
    # beta of update t: the config's cosine schedule 0.3 -> 1 over a third
    # of the training's EM updates (4 or 2: both round to 1 update)
    assert gmm.beta_iters == round((4 // accumulate) / 3) == 1
    betas = runner.message_hub.get_scalar('train/em_beta').data[0].tolist()
    assert betas == pytest.approx([0.3] + [1.0] * (4 // accumulate - 1),
                                  abs=1e-12)
    ckpt = torch.load(osp.join(str(tmp_path), 'epoch_1.pth'),
                      weights_only=False)
    torch.testing.assert_close(ckpt['state_dict']['head.em_bank.gmm.mu'], gmm.means)


def test_interval_and_start_iter(tmp_path, fmnist_root):
    cfg = small_cfg(DECOUPLED_FMNIST, str(tmp_path), num_images=48,
                    batch_size=8)  # 6 iterations: 0..5
    cfg.model.head.gmm.init_samples = 1
    cfg.custom_hooks = [dict(type='OnlineEMHook', interval=2, start_iter=1)]
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert int(runner.model.head.gmm.num_updates) == 3  # iters 1, 3, 5
    assert runner.model.head.em_bank.pop_cached_embeddings().shape[0] == 0


@pytest.fixture(scope='module')
def two_rank_run(tmp_path_factory):
    """dist_em_worker.py under torchrun with 2 gloo processes, once."""
    out = str(tmp_path_factory.mktemp('dist_em'))
    run_tool([sys.executable, '-m', 'torch.distributed.run',
              '--nproc_per_node=2', f'--master_port={free_port()}',
              'tests/test_engine/dist_em_worker.py',
              osp.join(REPO_ROOT, f'configs/{DECOUPLED_FMNIST}'), out,
              FMNIST_ROOT])
    return [torch.load(osp.join(out, f'rank{r}.pth'), weights_only=False)
            for r in (0, 1)]


@pytest.mark.slow
def test_all_gather_rows_over_two_gloo_processes(two_rank_run):
    r0, r1 = two_rank_run
    # unequal sizes gathered in rank order, identical everywhere
    expected = torch.cat([
        torch.arange(12, dtype=torch.float32).reshape(-1, 4),
        torch.arange(24, dtype=torch.float32).reshape(-1, 4) + 100])
    assert torch.equal(r0['gathered'], expected)
    assert torch.equal(r1['gathered'], expected)
    # the EM update on gathered rows equals the one-process update
    single = OnlineGaussianMixture(5, 4, seed=3)
    single.update(torch.nn.functional.normalize(expected.sin(), dim=1))
    for key, value in single.state_dict().items():
        assert torch.equal(r0['gmm'][key], value), key


def test_two_gloo_processes_fit_the_gathered_batch(two_rank_run):
    """Drift check off: each EM update saw both ranks' rows (2 x 2 global
    crops x 8 images), and the banks equal, bit for bit, one process's fit
    on the two ranks' cached rows concatenated in rank order, with the
    config's re-seeding and merging at work."""
    from mmengine.config import Config

    from tests.test_engine.dist_em_worker import GMM_OPTIONS
    r0, r1 = two_rank_run
    # training: 48 images / (2 ranks x 8) = 3 updates
    assert r0['updates'] == r1['updates'] == 3
    assert r0['received'] == r1['received'] == [2 * 2 * 8] * 3
    assert [len(x) for x in r0['local']] == [2 * 8] * 3
    assert not torch.equal(r0['local'][0], r1['local'][0])  # own data
    cfg = Config.fromfile(osp.join(REPO_ROOT, f'configs/{DECOUPLED_FMNIST}'))
    single = OnlineGaussianMixture(cfg.model.head.num_prototypes,
                                   cfg.model.head.in_channels,
                                   **dict(cfg.model.head.gmm, **GMM_OPTIONS))
    single.set_training_length(3)  # as OnlineEMHook: the run's 3 updates
    for key, value in single.state_dict().items():
        assert torch.equal(r0['start'][key], value), key
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as torchrun's workers (OMP_NUM_THREADS=1)
    try:
        for rows0, rows1 in zip(r0['local'], r1['local']):
            single.update(torch.cat([rows0, rows1]))
    finally:
        torch.set_num_threads(threads)
    # bit for bit: the same fp32 ops on the same rows in the same order,
    # on one thread each, so no reduction is split differently
    for key, value in single.state_dict().items():
        assert torch.equal(r0['bank'][key], value), key
        assert torch.equal(r1['bank'][key], value), key
    assert not torch.equal(r0['bank']['mu'], r0['start']['mu'])
    assert r0['moves'] == r1['moves']
    reseeded, merged = (sum(m[i] for m in r0['moves']) for i in (0, 1))
    assert reseeded > 0 and merged > 0, r0['moves']


def test_drift_check_warns_and_re_broadcasts_rank_0(two_rank_run):
    r0, r1 = two_rank_run
    assert r0['drifted'] is False and r1['drifted'] is False
    assert r0['repaired'] is True and r1['repaired'] is True
    # every kind of drift is seen and repaired, also those keeping sums
    for record in (r0, r1):
        assert record['checks'] == {kind: (False, True) for kind in (
            'value', 'swapped_rows', 'cancelling', 'num_updates',
            'initialized')}
        assert len(record['warnings']) == 5
        assert all('drifted across ranks' in w for w in record['warnings'])
    for key in r0['after_repair']:
        assert torch.equal(r0['after_repair'][key],
                           r1['after_repair'][key]), key
        assert torch.equal(r0['after_repair'][key], r0['bank'][key]), key


def test_checksum_sees_drift_that_keeps_each_sum():
    """Each planted drift keeps the plain sums the old check compared, yet
    changes the checksum; an identical copy does not."""
    from gmproto_mm.engine.hooks.online_em_hook import state_checksum
    from tests.test_engine.dist_em_worker import DRIFTS
    gmm = OnlineGaussianMixture(6, 4, init_samples=1)
    rows = torch.randn(32, 4, generator=torch.Generator().manual_seed(0))
    gmm.update(torch.nn.functional.normalize(rows, dim=1))
    base = list(gmm.state_dict().values())
    reference = state_checksum(base)
    assert torch.equal(reference,
                       state_checksum([t.clone() for t in base]))
    for kind, plant in DRIFTS.items():
        drifted = copy.deepcopy(gmm)
        plant(drifted)
        state = list(drifted.state_dict().values())
        if kind in ('swapped_rows', 'cancelling'):
            assert all(a.double().sum() == b.double().sum()
                       for a, b in zip(base, state)), kind
        assert not torch.equal(state_checksum(state), reference), kind


def test_pooled_initialisation_through_the_runner(tmp_path, fmnist_root):
    """K = 64 > 16 rows per step: EM starts once K rows were pooled."""
    cfg = small_cfg(DECOUPLED_FMNIST, str(tmp_path), num_images=64,
                    batch_size=8)  # 8 steps x 16 global embeddings
    cfg.model.head.num_prototypes = 64
    cfg.model.head.gmm.init = 'kmeans++'  # a data initialisation pools
    cfg.model.head.gmm.init_samples = None  # default: pool K = 64 rows
    runner = Runner.from_cfg(cfg)
    runner.train()
    gmm = runner.model.head.gmm
    assert bool(gmm.initialized) and int(gmm.num_updates) == 5
    assert runner.message_hub.get_scalar('train/em_init_pooled').current() \
        == 48


def test_all_gather_rows_single_process_is_identity():
    x = torch.randn(3, 2)
    assert all_gather_rows(x) is x
