"""tools/test.py's mmpretrain flags: --out dumps predictions (never the
prototype bank), --out-item metrics the metrics, --amp, --cfg-options last
and runner_type."""
import glob
import json
import os
import os.path as osp
import sys

import mmengine
import pytest
import torch
from mmengine.config import Config, DictAction
from mmengine.registry import RUNNERS
from mmengine.runner import Runner, load_checkpoint

from tests.conftest import (DECOUPLED_FMNIST, REPO_ROOT, SMALL_TEST_OPTIONS,
                            load_tool, run_tool, save_fresh_checkpoint)

CONFIG = DECOUPLED_FMNIST
OPTIONS = SMALL_TEST_OPTIONS + ['test_dataloader.batch_size=32']
RECORD_KEYS = {'sample_idx', 'gt_label', 'knn_split', 'prototype',
               'prototype_prob', 'pred_label', 'pred_score'}


@pytest.fixture
def test_tool():
    """tools/test.py as a module; it sets flush-to-zero on import (a
    process-wide mode), which is undone for the other tests."""
    yield load_tool('tools/test.py')
    torch.set_flush_denormal(False)


def logged_metrics(work_dir: str) -> dict:
    """The metrics mmengine's LoggerHook wrote after the test epoch."""
    files = glob.glob(osp.join(work_dir, '*', '[0-9]*_[0-9]*.json'))
    assert len(files) == 1, files
    with open(files[0]) as f:
        return json.load(f)


def model_predictions(ckpt: str):
    """The checkpoint's model in predict mode on tools/test.py's images."""
    from mmpretrain.registry import MODELS
    cfg = Config.fromfile(osp.join(REPO_ROOT, 'configs', CONFIG))
    cfg.merge_from_dict({k: DictAction._parse_iterable(v)
                         for k, v in (o.split('=', 1) for o in OPTIONS)})
    model = MODELS.build(cfg.model)
    load_checkpoint(model, ckpt, map_location='cpu')
    model.eval()
    return [out for batch in Runner.build_dataloader(cfg.test_dataloader)
            for out in model.test_step(batch)]


@pytest.mark.slow
def test_out_dumps_predictions_and_out_item_metrics(tmp_path, fmnist_root):
    from gmproto_mm.evaluation.functional import weighted_knn_predict
    ckpt = save_fresh_checkpoint(CONFIG, tmp_path / 'tiny.pth')
    out = tmp_path / 'out' / 'preds.pkl'  # the folder does not exist yet
    run_tool([sys.executable, 'tools/test.py', f'configs/{CONFIG}', ckpt,
              '--work-dir', str(tmp_path / 'pred'), '--out', str(out),
              '--cfg-options'] + OPTIONS)
    records = mmengine.load(str(out))
    metrics = logged_metrics(str(tmp_path / 'pred'))
    assert [r['sample_idx'] for r in records] == list(range(96))
    assert [r['knn_split'] for r in records] == ['bank'] * 64 + \
        ['query'] * 32
    for record in records:  # small records: no (K, D) bank, no (K,) probs
        assert set(record) <= RECORD_KEYS, set(record) - RECORD_KEYS
        assert ('pred_label' in record) == (record['knn_split'] == 'query')
    expected = model_predictions(ckpt)
    assert [r['gt_label'] for r in records] == \
        [int(s.gt_label) for s in expected]
    assert [r['prototype'] for r in records] == \
        [int(s.prototype_probs.argmax()) for s in expected]
    assert len({r['prototype'] for r in records}) == \
        metrics['prototypes/used_prototypes']
    feats = torch.stack([s.backbone_feat for s in expected])
    labels = torch.tensor([int(s.gt_label) for s in expected])
    scores = weighted_knn_predict(feats[64:], feats[:64], labels[:64], 10)
    queries = records[64:]
    assert [r['pred_label'] for r in queries] == scores.argmax(1).tolist()
    torch.testing.assert_close(
        torch.stack([r['pred_score'] for r in queries]),
        scores / scores.sum(1, keepdim=True))
    top1 = 100.0 * sum(r['pred_label'] == r['gt_label']
                       for r in queries) / len(queries)
    assert metrics['knn/top1'] == pytest.approx(top1)

    # --out-item metrics: the metrics instead, here under --amp (bf16
    # autocast on the CPU: the same keys, other low digits)
    out = tmp_path / 'metrics.json'
    run_tool([sys.executable, 'tools/test.py', f'configs/{CONFIG}', ckpt,
              '--work-dir', str(tmp_path / 'metrics'), '--out', str(out),
              '--out-item', 'metrics', '--amp', '--cfg-options'] + OPTIONS)
    amp = json.loads(out.read_text())
    # (plus the note that this fresh checkpoint's mixture was never fitted)
    assert set(amp) == set(metrics) - {'data_time', 'time'} | {
        'prototypes/mixture_initialized'}
    assert amp['prototypes/soft_perplexity'] != pytest.approx(
        metrics['prototypes/soft_perplexity'], rel=1e-6, abs=0)


def test_out_flags_are_checked(test_tool):
    with pytest.raises(ValueError, match='--out-item needs --out'):
        test_tool.parse_args(['c.py', 'x.pth', '--out-item', 'metrics'])
    with pytest.raises(ValueError, match='add --out-item metrics'):
        test_tool.parse_args(['c.py', 'x.pth', '--out', 'm.json'])
    args = test_tool.parse_args(['c.py', 'x.pth', '--out', 'p.pkl'])
    assert args.out_item is None  # predictions, as in mmpretrain


def test_flags_then_cfg_options_and_amp(test_tool):
    cfg = Config.fromfile(osp.join(REPO_ROOT, 'configs', CONFIG))
    args = test_tool.parse_args([
        'c.py', 'x.pth', '--amp', '--work-dir', 'flag_dir',
        '--cfg-options', 'work_dir=option_dir'])
    cfg = test_tool.merge_args(cfg, args)
    assert cfg.test_cfg.fp16 is True  # TestLoop(fp16=True): autocast
    assert cfg.work_dir == 'option_dir'  # --cfg-options applied last
    assert cfg.load_from == 'x.pth'


@RUNNERS.register_module()
class _RecordingTestRunner(Runner):
    """Stands for a config's own runner: records what it was built from."""
    built = []

    @classmethod
    def from_cfg(cls, cfg):
        cls.built.append(cfg)
        return 'custom runner'


def test_runner_type_is_honoured(test_tool):
    cfg = Config(dict(runner_type='_RecordingTestRunner', launcher='none',
                      work_dir='w'))
    assert test_tool.build_runner(cfg) == 'custom runner'
    assert _RecordingTestRunner.built[-1].work_dir == 'w'


@pytest.mark.parametrize('script,tool,positional', [
    ('tools/slurm_test.sh', 'test.py', ['cfg.py', 'ckpt.pth']),
    ('tools/slurm_train.sh', 'train.py', ['cfg.py', 'work_dirs/w'])])
def test_slurm_scripts_call_the_tool(tmp_path, script, tool, positional):
    """A stand-in srun records the command line the script submits."""
    fake = tmp_path / 'srun'
    fake.write_text('#!/usr/bin/env bash\necho "$@" > "$SRUN_LOG"\n')
    fake.chmod(0o755)
    log = tmp_path / 'srun.log'
    run_tool(['bash', script, 'part', 'job', *positional, '--amp'],
             env_extra=dict(PATH=f'{tmp_path}:{os.environ["PATH"]}',
                            SRUN_LOG=str(log), GPUS='4'))
    words = log.read_text().split()
    assert words[:2] == ['-p', 'part'] and '--job-name=job' in words
    assert '--ntasks=4' in words
    call = words[words.index('python'):]
    assert call[:3] == ['python', '-u', osp.join(REPO_ROOT, 'tools', tool)]
    assert call[3] == 'cfg.py' and '--launcher=slurm' in call
    assert call[-1] == '--amp'
