"""tools/analysis/component_usage.py on a (briefly trained) decoupled
checkpoint: the three views of "in use" agree with the mixture's state."""
import json
import sys

import torch

from tests.conftest import (DECOUPLED_FMNIST, FMNIST_ROOT, JOINT_FMNIST,
                            run_tool, save_fresh_checkpoint)

OPTIONS = ['--cfg-options', f'train_dataloader.dataset.data_root={FMNIST_ROOT}',
           f'test_dataloader.dataset.query.data_root={FMNIST_ROOT}']


def test_counts_used_and_stale_components(fmnist_root, tmp_path) -> None:
    ckpt = save_fresh_checkpoint(DECOUPLED_FMNIST,
                                 tmp_path / 'gm.pth')
    state = torch.load(ckpt, weights_only=False)
    prefix = 'head.em_bank.gmm.'
    # a mixture in which 3 of the 1,024 components once received data
    state['state_dict'][prefix + 'initialized'].fill_(True)
    state['state_dict'][prefix + 'acc_count'][:3] = 50.0
    torch.save(state, ckpt)
    out = tmp_path / 'usage.json'
    proc = run_tool([sys.executable, 'tools/analysis/component_usage.py',
                     f'configs/{DECOUPLED_FMNIST}', ckpt, '--images', '24',
                     '--out', str(out)] + OPTIONS)
    result = json.loads(out.read_text())
    assert json.loads(proc.stdout[proc.stdout.index('{'):]) == result
    for part in ('test_images', 'training_crops'):
        assert result[part]['images'] == 24
        assert 1 <= result[part]['used_teacher'] <= 24
        assert 1 <= result[part]['used_posterior'] <= 24
    mixture = result['mixture']
    assert mixture['num_components'] == 256  # the config's K
    assert mixture['past_idle_mark'] == 3
    assert mixture['count_equilibrium'] == 100.0  # 1 / forgetting (0.01)


def test_refuses_a_joint_head(tmp_path) -> None:
    ckpt = save_fresh_checkpoint(JOINT_FMNIST, tmp_path / 'j.pth')
    proc = run_tool([sys.executable, 'tools/analysis/component_usage.py',
                     f'configs/{JOINT_FMNIST}', ckpt], check=False)
    assert proc.returncode != 0
    assert 'DecoupledGMMHead' in proc.stderr
