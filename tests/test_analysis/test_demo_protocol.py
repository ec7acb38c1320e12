"""gmproto_mm.analysis.demo_protocol without training: the commands the
protocol runs (the budget reaches tools/train.py and tools/test.py), the
training log it reads, and a failing step stopping the caller.
(tests/test_tools/test_demo.py and test_seed_study.py run it end to end.)"""
import json
import os.path as osp
import sys

import pytest

from gmproto_mm.analysis import demo_protocol
from tests.conftest import REPO_ROOT


def write_scalars(run_dir, records):
    (run_dir / 'vis_data').mkdir(parents=True)
    (run_dir / 'vis_data' / 'scalars.json').write_text(
        ''.join(json.dumps(r) + '\n' for r in records))


def test_the_checkout_is_this_repository():
    assert osp.samefile(demo_protocol.REPO_ROOT, REPO_ROOT)


def test_training_records_are_the_last_training_run(tmp_path):
    write_scalars(tmp_path / '20240101_000000', [dict(loss=9.0, time=5.0)])
    write_scalars(tmp_path / '20240102_000000', [
        dict(loss=1.0, time=0.3, step=1), dict(lr=0.1, step=1),
        dict(loss=0.5, time=0.2, step=2)])
    (tmp_path / '20240103_000000').mkdir()  # a tools/test.py run: no log
    records = demo_protocol.training_records(str(tmp_path))
    assert [r['step'] for r in records] == [1, 1, 2]
    # the iterations' times only, not the records without a loss
    assert demo_protocol.iteration_times(str(tmp_path)) == [0.3, 0.2]


def test_a_failing_step_exits_naming_the_command():
    demo_protocol.run_step([sys.executable, '-c', 'pass'])
    with pytest.raises(SystemExit, match=r'step failed \(3\): .* -c'):
        demo_protocol.run_step([sys.executable, '-c',
                                'import sys; sys.exit(3)'])


def test_the_budget_reaches_train_and_test(tmp_path, monkeypatch):
    """train_and_evaluate passes epochs, seed, training images, options and
    the k-NN sizes on, evaluates the last epoch's checkpoint and returns
    tools/test.py's metrics file."""
    commands = []

    def fake_run_step(cmd):
        commands.append(cmd)
        if cmd[1] == 'tools/test.py':
            out = cmd[cmd.index('--out') + 1]
            with open(out, 'w') as f:
                json.dump({'knn/top1': 12.5}, f)

    monkeypatch.setattr(demo_protocol, 'run_step', fake_run_step)
    model_dir = str(tmp_path)
    out = demo_protocol.train_and_evaluate(
        'configs/x.py', model_dir, seed=7, epochs=2, train_images=128,
        bank_images=64, query_images=0, options=['a.b=1'])
    train, test = commands
    assert train[:5] == [sys.executable, 'tools/train.py', 'configs/x.py',
                         '--work-dir', model_dir]
    options = train[train.index('--cfg-options') + 1:]
    assert {'train_cfg.max_epochs=2', 'randomness.seed=7', 'a.b=1',
            'train_dataloader.dataset.indices=128'} <= set(options)
    checkpoint = osp.join(model_dir, 'epoch_2.pth')
    assert test[1:4] == ['tools/test.py', 'configs/x.py', checkpoint]
    options = test[test.index('--cfg-options') + 1:]
    usage = osp.join(model_dir, 'usage.json')
    # query_images=0: all queries, so no query indices
    assert options == [f'test_evaluator.0.usage_file={usage}', 'a.b=1',
                       'test_dataloader.dataset.bank.indices=64']
    assert out['metrics'] == {'knn/top1': 12.5}
    assert out['checkpoint'] == checkpoint and out['usage_file'] == usage
    assert out['train_s'] >= 0 and out['eval_s'] >= 0

    commands.clear()  # train_images=0: the dataset's own size
    demo_protocol.train_and_evaluate(
        'configs/x.py', model_dir, seed=0, epochs=1, train_images=0,
        bank_images=0, query_images=32)
    options = commands[0][commands[0].index('--cfg-options') + 1:]
    assert not any(o.startswith('train_dataloader') for o in options)
    assert commands[1][-1] == 'test_dataloader.dataset.query.indices=32'
