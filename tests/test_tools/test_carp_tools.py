"""tools/train.py (with --resume) and tools/test.py on the tiny CARP
configs, joint and decoupled."""
import json
import sys

import pytest
import torch
from mmengine.config import Config, DictAction
from mmengine.runner import Runner, load_checkpoint
from mmpretrain.registry import MODELS

from gmproto_mm.compat import use_full_checkpoint_loader
from gmproto_mm.evaluation.functional.diversity import usage_perplexity
from tests.conftest import (REPO_ROOT, SMALL_OPTIONS, SMALL_TEST_OPTIONS,
                            run_tool)


def carp_usage(config: str, ckpt: str, options) -> dict:
    """Usage of CARP's evaluation assignment, from the checkpoint's model in
    predict mode on tools/test.py's images: softmax over all K of
    <z, w_k>, z the un-normalised embedding, no temperature."""
    cfg = Config.fromfile(f'{REPO_ROOT}/configs/{config}')
    cfg.merge_from_dict({k: DictAction._parse_iterable(v)
                         for k, v in (o.split('=', 1) for o in options)})
    model = MODELS.build(cfg.model)
    use_full_checkpoint_loader()  # tools/train.py's checkpoint, torch >= 2.6
    load_checkpoint(model, ckpt, map_location='cpu')
    model.eval()
    embeds, bank = [], None
    for batch in Runner.build_dataloader(cfg.test_dataloader):
        for out in model.test_step(batch):
            embeds.append(out.embedding)
            bank = out.prototypes
    probs = torch.softmax(torch.stack(embeds).double() @ bank.double().t(),
                          dim=1)
    return {'used_prototypes': float(probs.argmax(1).unique().numel()),
            'soft_perplexity': usage_perplexity(probs.sum(0))}


@pytest.mark.slow
@pytest.mark.parametrize('config', [
    'carp/carp_vit-tiny-p8_1xb64-3e_fmnist.py',
    'carp/carp-gmm_vit-tiny-p8_1xb64-3e_fmnist.py'])
def test_train_resume_then_test_on_tiny_carp(config, tmp_path, fmnist_root):
    """2 epochs of 2 iterations at once equal 1 + --resume 1, bit for bit:
    the partitions after the resume are the uninterrupted run's (the
    iteration comes from the checkpoint). tools/test.py then reports the
    usage of CARP's assignment."""
    options = SMALL_OPTIONS + [
        'train_dataloader.dataset.indices=16',
        'train_dataloader.num_workers=1', 'randomness.seed=0',
        'model.backbone.drop_path_rate=0.0']

    def train(work, max_epochs, resume=False):
        return run_tool([sys.executable, 'tools/train.py',
                         f'configs/{config}', '--work-dir',
                         str(tmp_path / work)] + ['--resume'] * resume +
                        ['--cfg-options'] + options +
                        [f'train_cfg.max_epochs={max_epochs}'])

    train('once', 2)
    train('twice', 1)
    out = train('twice', 2, resume=True)
    assert 'resumed epoch: 1' in out.stdout + out.stderr
    once, twice = (torch.load(tmp_path / w / 'epoch_2.pth',
                              weights_only=False)['state_dict']
                   for w in ('once', 'twice'))
    assert int(once['teacher.steps']) == 4
    for key in once:
        assert torch.equal(once[key], twice[key]), key

    ckpt = str(tmp_path / 'once' / 'epoch_2.pth')
    metrics_file = str(tmp_path / 'metrics.json')
    test_options = SMALL_TEST_OPTIONS + ['test_dataloader.batch_size=32']
    run_tool([sys.executable, 'tools/test.py', f'configs/{config}', ckpt,
              '--work-dir', str(tmp_path), '--out', metrics_file,
              '--out-item', 'metrics', '--cfg-options'] + test_options)
    with open(metrics_file) as f:
        metrics = json.load(f)
    assert metrics['prototypes/num_prototypes'] == 1024
    assert 0 <= metrics['knn/top1'] <= 100
    for key, value in carp_usage(config, ckpt, test_options).items():
        assert metrics[f'prototypes/{key}'] == pytest.approx(
            value, rel=1e-5), key
