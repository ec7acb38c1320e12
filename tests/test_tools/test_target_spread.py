"""tools/analysis/target_spread.py: the measures on a hand-made case, and the
tool on checkpoints of both heads."""
import json
import math
import sys

import pytest
import torch

from tests.conftest import (DECOUPLED_FMNIST, FMNIST_ROOT, JOINT_FMNIST,
                            load_tool, run_tool, save_fresh_checkpoint)

OPTIONS = ['--cfg-options',
           f'test_dataloader.dataset.query.data_root={FMNIST_ROOT}']


def test_mass_near_the_top1_counts_near_duplicates_only():
    # prototype 1 is 0.2 from prototype 0; prototype 2 is far from both
    bank = torch.tensor([[1.0, 0.0, 0.0], [0.98, math.sqrt(1 - 0.98**2), 0.0],
                         [0.0, 0.0, 1.0]])
    probs = torch.tensor([[0.5, 0.3, 0.2], [0.1, 0.1, 0.8]])
    embeds = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.6, 0.8]])
    tool = load_tool('tools/analysis/target_spread.py')
    out = tool.spread(probs, embeds, 3 * bank)  # any norm of the bank
    assert out['images'] == 2
    assert out['top1_mass'] == pytest.approx(0.65)
    assert out['cos_to_top1'] == pytest.approx(0.9)
    ppl = [math.exp(-sum(p * math.log(p) for p in row)) for row in
           probs.tolist()]
    assert out['target_perplexity'] == pytest.approx(sum(ppl) / 2)
    assert out['mass_near_top1@0.1'] == pytest.approx(0.65)  # itself only
    assert out['prototypes_near_top1@0.1'] == 1.0
    for eps in (0.25, 0.5):  # row 0 adds its near-duplicate's 0.3
        assert out[f'mass_near_top1@{eps}'] == pytest.approx(0.8)
        assert out[f'prototypes_near_top1@{eps}'] == 1.5


@pytest.mark.parametrize('config', [JOINT_FMNIST,
                                    DECOUPLED_FMNIST])
def test_tool_reads_either_head(config, fmnist_root, tmp_path):
    ckpt = save_fresh_checkpoint(config, tmp_path / 'model.pth')
    out = tmp_path / 'spread.json'
    proc = run_tool([sys.executable, 'tools/analysis/target_spread.py',
                     f'configs/{config}', ckpt, '--images', '20',
                     '--out', str(out)] + OPTIONS)
    result = json.loads(out.read_text())
    assert json.loads(proc.stdout[proc.stdout.index('{'):]) == result
    assert result['images'] == 20
    assert 0 < result['top1_mass'] <= result['mass_near_top1@0.1'] \
        <= result['mass_near_top1@0.25'] <= result['mass_near_top1@0.5'] <= 1
    assert 1 <= result['prototypes_near_top1@0.1'] <= 1024
    assert 1 <= result['target_perplexity'] <= 1024
    assert -1 <= result['cos_to_top1'] <= 1
