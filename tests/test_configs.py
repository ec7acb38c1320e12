"""Walk configs/: every config builds its model and takes one training step
on a tiny random batch; the Fashion-MNIST ones also train briefly on real
data through the Runner. So no config rots unnoticed."""
import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.model import revert_sync_batchnorm
from mmengine.optim import build_optim_wrapper
from mmengine.runner import Runner
from mmpretrain.registry import MODELS

from gmproto_mm.engine.hooks import find_em_banks
from gmproto_mm.models.utils import attach_em_updater
from gmproto_mm.testing import random_batch
from tests.conftest import REPO_ROOT, small_cfg

CONFIGS = sorted(
    osp.relpath(p, osp.join(REPO_ROOT, 'configs'))
    for p in glob.glob(osp.join(REPO_ROOT, 'configs', '**', '*.py'),
                       recursive=True) if '_base_' not in p)
FMNIST_CONFIGS = [c for c in CONFIGS
                  if 'fmnist' in c and not c.startswith('benchmarks')]


def optim_wrapper_here(cfg: Config) -> dict:
    """The config's optim wrapper, as plain fp32 ``OptimWrapper`` where
    CUDA is missing (mmengine's ``AmpOptimWrapper`` refuses the CPU); the
    optimizer, paramwise options and clipping are the config's."""
    wrapper = dict(cfg.optim_wrapper)
    if wrapper.get('type') == 'AmpOptimWrapper' and \
            not torch.cuda.is_available():
        wrapper.update(type='OptimWrapper')
        for key in ('dtype', 'loss_scale'):
            wrapper.pop(key, None)
    return wrapper


@pytest.mark.slow
@pytest.mark.parametrize('name', CONFIGS)
def test_config_builds_and_steps(name):
    cfg = Config.fromfile(osp.join(REPO_ROOT, 'configs', name))
    if cfg.model.backbone.get('init_cfg', {}).get('type') == 'Pretrained':
        cfg.model.backbone.init_cfg = None  # a probe's checkpoint is a flag
    torch.manual_seed(0)
    model = revert_sync_batchnorm(MODELS.build(cfg.model))  # 1 process
    optim = build_optim_wrapper(model, optim_wrapper_here(cfg))
    attach_em_updater(model, 'this test', 1)  # it runs EM below
    log_vars = model.train_step(random_batch(cfg), optim)
    assert all(torch.isfinite(torch.as_tensor(v)) for v in log_vars.values())
    for name, bank in find_em_banks(model):  # what OnlineEMHook does
        embeds = bank.pop_cached_embeddings()
        if not len(embeds):  # e.g. no patch masked: the hook skips it too
            continue
        bank.gmm.init_samples = 1  # a real EM step, not pooling (K > N)
        start = bank.gmm.means.clone()
        bank.gmm.update(embeds)
        assert bool(bank.gmm.initialized) and \
            int(bank.gmm.num_updates) == 1, name
        assert torch.isfinite(bank.gmm.means).all(), name
        assert not torch.equal(start, bank.gmm.means), name


@pytest.mark.parametrize('name', FMNIST_CONFIGS)
def test_fmnist_config_trains_briefly(name, tmp_path, fmnist_root):
    cfg = small_cfg(name, str(tmp_path), num_images=16, batch_size=8)
    runner = Runner.from_cfg(cfg)
    banks = find_em_banks(runner.model)
    assert ('-gmm' in name) == bool(banks), 'decoupled configs have banks'
    for _, bank in banks:
        bank.gmm.init_samples = 1  # real EM steps on 2 batches, no pooling
    runner.train()
    assert osp.isfile(osp.join(str(tmp_path), 'epoch_1.pth'))
    for bank_name, bank in banks:  # 2 iterations; a patch bank may skip one
        assert bool(bank.gmm.initialized), bank_name
        assert 1 <= int(bank.gmm.num_updates) <= 2, bank_name
        assert torch.isfinite(bank.gmm.means).all(), bank_name
        assert torch.isfinite(bank.gmm.variances).all(), bank_name
    if banks:
        assert int(banks[0][1].gmm.num_updates) == 2


CARP_CONFIGS = [c for c in CONFIGS if c.startswith('carp/')]


@pytest.mark.parametrize('name', CARP_CONFIGS)
def test_carp_configs_follow_the_reference_lars_rule(name):
    """CARP's LARS: every 1-D parameter (biases, norms) without weight
    decay and LARS scaling, every other trained parameter with both: the
    paramwise keys of each config cover exactly its 1-D parameters."""
    cfg = Config.fromfile(osp.join(REPO_ROOT, 'configs', name))
    assert cfg.optim_wrapper.optimizer.type == 'LARS'
    assert cfg.model.neck.normalize is False
    assert cfg.model.head.loss.type == 'CARPLoss'
    model = MODELS.build(cfg.model)
    optim = build_optim_wrapper(model, optim_wrapper_here(cfg)).optimizer
    wd = cfg.optim_wrapper.optimizer.weight_decay
    seen = 0
    for group in optim.param_groups:
        for param in group['params']:
            flat = param.ndim == 1
            assert bool(group.get('lars_exclude')) == flat, param.shape
            assert group['weight_decay'] == (0. if flat else wd)
            seen += 1
    assert seen == sum(p.requires_grad for p in model.parameters())


def test_the_promised_vitb_name_is_the_decoupled_vitb_recipe():
    """``configs/gm_dino_vitb_in1k.py`` (the name the product promises for
    ``tools/dist_train.sh``) resolves to the decoupled ViT-B/16 config."""
    alias = Config.fromfile(osp.join(REPO_ROOT, 'configs',
                                     'gm_dino_vitb_in1k.py'))
    recipe = Config.fromfile(osp.join(
        REPO_ROOT, 'configs', 'dino',
        'dino-gmm_vit-base-p16_8xb128-coslr-400e_in1k.py'))
    assert alias.to_dict() == recipe.to_dict()
