"""tools/train.py, --resume, tools/dist_train.sh (2 CPU processes), the
frozen first epoch, the ViT-B recipe and data-set errors."""
import json
import os.path as osp
import shutil
import sys

import pytest
import torch
from mmengine.hooks import Hook
from mmengine.runner import Runner

from gmproto_mm.datasets import LocalFashionMNIST
from tests.conftest import (DECOUPLED_FMNIST, JOINT_FMNIST, REPO_ROOT,
                            SMALL_OPTIONS, SMALL_TEST_OPTIONS, free_port,
                            run_tool, small_cfg)


# the config's posterior targets, and the softmax targets, whose DINO center
# moves at every step (with the posterior only before the first EM update)
@pytest.mark.slow
@pytest.mark.parametrize('targets', ['responsibilities', 'softmax'])
def test_resume_continues_the_decoupled_run_bit_for_bit(tmp_path, fmnist_root,
                                                       targets):
    """Train 2 epochs of 2 iterations at once, and 1 + --resume 1: the EM
    state (every GMM buffer, num_updates hence beta), the DINO center, the
    EM updates after the resume and all weights are the same, bit for bit.
    The data must repeat too: a fixed seed, drop path off and one loader
    worker (re-seeded by mmengine each epoch; mmengine does not restore
    the main process's RNG, which draws the crops with num_workers=0)."""
    crossing = targets == 'responsibilities'
    options = SMALL_OPTIONS + [
        # 2 (or 4) iterations per epoch
        f'train_dataloader.dataset.indices={32 if crossing else 16}',
        'train_dataloader.num_workers=1', 'randomness.seed=0',
        'model.backbone.drop_path_rate=0.0',
        'model.head.gmm.init_samples=1',  # EM from the first step on
        # a count: a fraction of training would resolve on each run's
        # max_epochs, which this test changes between the runs
        'model.head.gmm.beta_iters=500',
        f'model.head.teacher_targets={targets}']
    if crossing:  # re-seeding and merging also after the resume
        options += ['model.head.gmm.reseed_start=0',
                    'model.head.gmm.reseed_rate=0.5',
                    'model.head.gmm.merge_within=1.0',
                    'model.head.gmm.stale_decay=0.9']

    def train(work, max_epochs, resume=False, check=True, extra=()):
        return run_tool([sys.executable, 'tools/train.py',
                         f'configs/{DECOUPLED_FMNIST}', '--work-dir',
                         str(tmp_path / work)] + ['--resume'] * resume +
                        ['--cfg-options'] + options +
                        [f'train_cfg.max_epochs={max_epochs}', *extra],
                        check=check)

    def load(work, epoch):
        return torch.load(tmp_path / work / f'epoch_{epoch}.pth',
                          weights_only=False)

    train('once', 2)
    train('twice', 1)
    out = train('twice', 2, resume=True)
    assert 'resumed epoch: 1' in out.stdout + out.stderr
    once, twice = load('once', 2), load('twice', 2)
    assert twice['meta']['epoch'] == 2
    state, resumed = once['state_dict'], twice['state_dict']
    assert set(state) == set(resumed)
    gmm_keys = [k for k in state if k.startswith('head.em_bank.gmm.')]
    assert {k.rsplit('.', 1)[1] for k in gmm_keys} == {
        'pi', 'mu', 'var', 'acc_count', 'acc_sum', 'acc_sq_sum',
        'num_updates', 'initialized', 'merge_slack'}
    assert 'head.loss_module.center' in state
    for key in state:
        assert torch.equal(state[key], resumed[key]), key
    per_epoch = 4 if crossing else 2
    assert int(resumed['head.em_bank.gmm.num_updates']) == 2 * per_epoch
    before = load('twice', 1)['state_dict']
    assert int(before['head.em_bank.gmm.num_updates']) == per_epoch
    moved = ['head.em_bank.gmm.mu', 'head.em_bank.gmm.acc_count']
    if targets == 'softmax':
        moved.append('head.loss_module.center')
    for key in moved:
        assert not torch.equal(before[key], resumed[key]), key
    # the logged EM statistics of the updates after the resume, and beta
    # (SafeCheckpointHook stores each history as a dict of tensors)
    scalars = [c['message_hub']['log_scalars'] for c in (once, twice)]
    keys = ['train/em_beta', 'train/em_log_likelihood']
    if crossing:
        keys += ['train/em_reseeded', 'train/em_merged']
    for key in keys:
        assert scalars[0][key]['log_history'][-per_epoch:].tolist() == \
            scalars[1][key]['log_history'][-per_epoch:].tolist(), key
    if crossing:  # the updates after the resume re-seeded and merged
        for key in ('train/em_reseeded', 'train/em_merged'):
            assert scalars[1][key]['log_history'][-per_epoch:].sum() > 0, key
    # resuming under a model the checkpoint does not fit stops, naming why
    out = train('twice', 3, resume=True, check=False,
                extra=['model.head.num_prototypes=16'])
    assert out.returncode != 0
    assert 'does not fit the model' in out.stderr
    assert 'shape mismatch' in out.stderr
    assert not osp.isfile(tmp_path / 'twice' / 'epoch_3.pth')


LEGACY = osp.join(REPO_ROOT, 'tests', 'data',
                  'gm_dino_vitt_fmnist_v660a9e7_epoch_1.pth')
# the options the fixture was written with (tests/data/README.md)
LEGACY_OPTIONS = [
    'train_dataloader.batch_size=8', 'train_dataloader.num_workers=0',
    'train_dataloader.persistent_workers=False',
    'train_dataloader.dataset.indices=32', 'randomness.seed=0',
    'model.backbone.arch.embed_dims=32', 'model.backbone.arch.num_layers=1',
    'model.backbone.arch.feedforward_channels=64',
    'model.neck.in_channels=32', 'model.neck.hid_channels=64',
    'model.neck.bottleneck_channels=32', 'model.head.in_channels=32',
    'model.head.num_prototypes=64', 'model.head.gmm.reseed_start=0']


def test_a_checkpoint_of_the_earlier_em_core_resumes_and_trains_on(
        tmp_path, fmnist_root):
    """A training checkpoint written before the EM core moved (and its
    options were renamed) loads under today's config and trains on: the
    mixture continues from the stored state (same buffers), updates, and
    stays finite with unit-norm means."""
    work = tmp_path / 'legacy'
    work.mkdir()
    shutil.copy(LEGACY, work / 'epoch_1.pth')
    (work / 'last_checkpoint').write_text(str(work / 'epoch_1.pth'))
    out = run_tool([sys.executable, 'tools/train.py',
                    f'configs/{DECOUPLED_FMNIST}', '--work-dir',
                    str(work), '--resume', '--cfg-options'] + LEGACY_OPTIONS +
                   [f'train_dataloader.dataset.data_root={fmnist_root}',
                    'train_cfg.max_epochs=2'])
    assert 'resumed epoch: 1' in out.stdout + out.stderr
    before = torch.load(LEGACY, weights_only=False)['state_dict']
    after = torch.load(work / 'epoch_2.pth', weights_only=False)['state_dict']
    prefix = 'head.em_bank.gmm.'
    assert int(before[prefix + 'num_updates']) == 4
    assert int(after[prefix + 'num_updates']) == 8
    assert bool(after[prefix + 'initialized'])
    for name in ('mu', 'var', 'pi', 'acc_count', 'acc_sum', 'acc_sq_sum'):
        assert torch.isfinite(after[prefix + name]).all(), name
        assert not torch.equal(before[prefix + name], after[prefix + name])
    torch.testing.assert_close(after[prefix + 'mu'].norm(dim=1),
                               torch.ones(64))


@pytest.mark.slow
@pytest.mark.parametrize('cut', [0.5, 0.0])
def test_a_corrupt_checkpoint_names_the_file_and_cause(tmp_path, fmnist_root,
                                                       cut):
    """tools/test.py and --resume on a truncated (or emptied) checkpoint:
    an error naming the file and what to do, not a bare unpickling error."""
    data = open(LEGACY, 'rb').read()
    work = tmp_path / 'work'
    work.mkdir()
    bad = work / 'epoch_1.pth'
    bad.write_bytes(data[:int(len(data) * cut)])
    (work / 'last_checkpoint').write_text(str(bad))
    options = LEGACY_OPTIONS + [
        f'train_dataloader.dataset.data_root={fmnist_root}',
        'train_cfg.max_epochs=2']
    runs = [
        [sys.executable, 'tools/test.py', f'configs/{DECOUPLED_FMNIST}',
         str(bad), '--cfg-options'] + options,
        [sys.executable, 'tools/train.py', f'configs/{DECOUPLED_FMNIST}',
         '--work-dir', str(work), '--resume', '--cfg-options'] + options]
    for args in runs:
        out = run_tool(args, check=False)
        assert out.returncode != 0
        assert f"checkpoint '{bad}' cannot be read" in out.stderr, \
            out.stderr[-2000:]
        assert 'truncated or corrupt' in out.stderr
        assert 'Use another checkpoint' in out.stderr


@pytest.mark.slow
def test_a_pool_that_cannot_fill_is_reported_in_training_and_test(
        tmp_path, fmnist_root):
    """K = 256 pooled rows before EM starts, but only 4 updates of 16 rows
    come: training warns at its first update, naming init_samples, and
    tools/test.py says the mixture was never initialised."""
    work = tmp_path / 'pool'
    options = SMALL_OPTIONS + ['model.head.gmm.init=sample',
                               'train_cfg.max_epochs=1']
    out = run_tool([sys.executable, 'tools/train.py',
                    f'configs/{DECOUPLED_FMNIST}', '--work-dir', str(work),
                    '--cfg-options'] + options)
    log = out.stdout + out.stderr
    assert 'init_samples = 256 rows must be pooled' in log
    assert 'only 64 arrive before training ends' in log
    metrics = tmp_path / 'metrics.json'
    out = run_tool([sys.executable, 'tools/test.py',
                    f'configs/{DECOUPLED_FMNIST}', str(work / 'epoch_1.pth'),
                    '--out', str(metrics), '--out-item', 'metrics',
                    '--cfg-options'] + SMALL_TEST_OPTIONS)
    assert 'was never initialised in training' in out.stdout + out.stderr
    with open(metrics) as f:
        assert json.load(f)['prototypes/mixture_initialized'] == 0.0


@pytest.mark.slow
def test_dist_train_two_cpu_processes(tmp_path, fmnist_root):
    work = str(tmp_path / 'dist')
    out = run_tool(['bash', 'tools/dist_train.sh', f'configs/{JOINT_FMNIST}',
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
    cfg = small_cfg(JOINT_FMNIST, str(tmp_path), num_images=16)
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
    cfg = Config.fromfile(osp.join(
        REPO_ROOT, 'configs/dino/dino_vit-base-p16_8xb128-coslr-400e_in1k.py'))
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
    # and the config keys that set the folder
    assert 'train_dataloader.dataset.data_root=' in str(err.value)
    assert 'test_dataloader.dataset.bank.data_root=' in str(err.value)


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
