"""A decoupled model whose config lacks OnlineEMHook stops at its first
training iteration, naming the hook and the config line to add (DINO, SwAV
and both banks of iBOT); with the hook it trains; tools/train.py exits
non-zero."""
import sys

import pytest
from mmengine.hooks import Hook
from mmengine.runner import Runner

from gmproto_mm.models.utils import attach_em_updater
from tests.conftest import DECOUPLED_FMNIST, SMALL_OPTIONS, run_tool, small_cfg
from tests.test_models.test_dino import multicrop
from tests.test_models.test_ibot import tiny_ibot

HOOK_LINE = "custom_hooks = [..., dict(type='OnlineEMHook')]"


class _CountIters(Hook):

    def __init__(self) -> None:
        self.iters = 0

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None) -> None:
        self.iters += 1


def _run(config, tmp_path, hooks):
    cfg = small_cfg(config, str(tmp_path), num_images=16, batch_size=8)
    swav = [h for h in cfg.custom_hooks if h.type == 'SwAVHook']
    cfg.custom_hooks = swav + hooks  # SwAV's queue hook is not the EM hook
    runner = Runner.from_cfg(cfg)
    counter = _CountIters()
    runner.register_hook(counter)
    return runner, counter


@pytest.mark.parametrize('config', [
    DECOUPLED_FMNIST, 'swav/swav-gmm_resnet18_1xb64-coslr-10e_fmnist.py',
    'ibot/ibot-gmm_vit-tiny-p4_1xb64-3e_fmnist.py'])
def test_without_hook_stops_at_first_iteration(config, tmp_path,
                                               fmnist_root):
    runner, counter = _run(config, tmp_path, [])
    with pytest.raises(RuntimeError, match='OnlineEMHook') as err:
        runner.train()
    assert HOOK_LINE in str(err.value)
    assert counter.iters == 0 and runner.iter == 0


def test_with_hook_trains(tmp_path, fmnist_root):
    # (every Fashion-MNIST config trains with its hooks: test_configs.py)
    runner, counter = _run(DECOUPLED_FMNIST, tmp_path,
                           [dict(type='OnlineEMHook')])
    runner.train()
    assert counter.iters == 2


def test_ibot_patch_bank_is_guarded_too():
    model = tiny_ibot('DecoupledGMMHead')
    attach_em_updater(model.head, 'this test')  # the [CLS] bank only
    with pytest.raises(RuntimeError, match='OnlineEMHook'):
        model.loss(multicrop(), None)
    assert model.head.em_bank.pop_cached_embeddings().shape[0] > 0
    attach_em_updater(model, 'this test')  # direct use: the opt-out
    model.loss(multicrop(), None)


def test_train_tool_exits_nonzero_without_hook(tmp_path, fmnist_root):
    out = run_tool([sys.executable, 'tools/train.py',
                    f'configs/{DECOUPLED_FMNIST}', '--work-dir',
                    str(tmp_path), '--cfg-options'] + SMALL_OPTIONS +
                   ['custom_hooks=[]'], check=False)
    assert out.returncode != 0
    assert HOOK_LINE in out.stderr
