"""tools/analysis/seed_study.py on a tiny budget: every run's metrics as
tools/test.py reports them, the training log's monitored minima, mean / std
per variant, the plot, and a second call that skips what is done."""
import json
import os
import os.path as osp
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import (DECOUPLED_FMNIST, JOINT_FMNIST, REPO_ROOT,
                            load_tool, run_tool)

TINY = ['--epochs', '1', '--train-images', '128', '--bank-images', '64',
        '--query-images', '32']
CONFIG = f'configs/{DECOUPLED_FMNIST}'
# log every iteration and monitor every iteration, so the minima exist
OPTIONS = ['default_hooks.logger.interval=1', 'custom_hooks.1.interval=1']


@pytest.mark.slow
def test_seed_study_runs_summarises_and_resumes(fmnist_root, tmp_path):
    out = tmp_path / 'study' / 'results.json'
    args = [sys.executable, 'tools/analysis/seed_study.py', CONFIG,
            '--seeds', '0', '1', *TINY, '--out', str(out), '--work-dir',
            str(tmp_path / 'runs'), '--cfg-options', *OPTIONS]
    log = run_tool(args).stdout
    assert '1/2 runs done, 1 left;' in log  # the ETA after each run
    assert '2/2 runs done, 0 left;' in log and '~0 min left' in log
    study = json.loads(out.read_text())
    runs = study['runs']
    assert [(r['config'], r['seed']) for r in runs] == [(CONFIG, 0),
                                                        (CONFIG, 1)]
    for run in runs:
        assert run['options'] == OPTIONS
        assert run['steps'] == 2  # 128 images / batch 64, one epoch
        assert run['train_s'] > 0
        metrics = run['metrics']
        for key in ('knn/top1', 'prototypes/used_prototypes',
                    'prototypes/argmax_perplexity',
                    'prototypes/soft_perplexity', 'prototypes/unique@0.1',
                    'prototypes/embedding_leaders@0.1',
                    'monitor/min_unique@0.025'):
            assert key in metrics, key
        # the metrics are tools/test.py's own file, unchanged
        assert run['work_dir'].startswith(str(tmp_path / 'runs'))
        saved = json.loads(
            (Path(run['work_dir']) / 'metrics.json').read_text())
        assert {k: metrics[k] for k in saved} == saved
    # seeds differ, so the runs (and their folders) do too
    assert runs[0]['metrics'] != runs[1]['metrics']
    assert runs[0]['work_dir'] != runs[1]['work_dir']
    (variant, stats), = study['summary'].items()
    assert variant.startswith(CONFIG + ' ' + ' '.join(OPTIONS))
    assert stats['seeds'] == [0, 1]
    knn = [r['metrics']['knn/top1'] for r in runs]
    assert stats['knn/top1']['mean'] == statistics.fmean(knn)
    assert stats['knn/top1']['std'] == statistics.stdev(knn)
    assert (out.parent / 'knn_vs_used.png').stat().st_size > 1000

    table = run_tool([sys.executable, 'tools/analysis/seed_study.py',
                      '--markdown', '--out', str(out)]).stdout
    row = next(line for line in table.splitlines() if CONFIG in line)
    assert f'{statistics.fmean(knn):.2f} ± {statistics.stdev(knn):.2f}' \
        in row and '| 0,1 |' in row

    # each run names the resolved config it ran
    digest = load_seed_study().config_digest(CONFIG, OPTIONS)
    assert [r['config_digest'] for r in runs] == [digest, digest]

    again = run_tool(args + [])  # same variant and seeds: nothing to do
    assert 'seed_study: 0 runs to do, 2 in' in again.stdout
    assert json.loads(out.read_text())['runs'] == runs


def load_seed_study():
    return load_tool('tools/analysis/seed_study.py')


def test_run_dirs_differ_for_variants_with_a_common_prefix():
    """Folder names stay apart where the options agree for a long stretch
    (or only the budget or the resolved config differs)."""
    study = load_seed_study()
    common = ['model.head.gmm.reseed_rate=0.25'] * 5
    budget = dict(study.DEFAULT_BUDGET)
    tasks = [dict(config=CONFIG, options=common + [last], seed=0,
                  budget=budget) for last in ('a=1', 'a=2')]
    tasks.append(dict(tasks[0], budget=dict(budget, epochs=1)))
    # same name and options, but the config file resolved differently
    tasks.append(dict(tasks[0], config_digest='0123456789ab'))
    dirs = {study.run_dir('wd', t) for t in tasks}
    assert len(dirs) == 4
    name = osp.splitext(osp.basename(DECOUPLED_FMNIST))[0]
    assert all(d.startswith(f'wd/{name}_') and d.endswith('_seed0')
               for d in dirs)


def test_a_changed_config_default_stops_the_study(tmp_path):
    """A stored run whose config resolved differently (a default changed
    since) is not counted as done, nor silently joined: the tool exits
    naming the cause, before any training, and leaves the file as it was."""
    study = load_seed_study()
    # same file, options, seed and budget; another resolved config
    assert study.config_digest(CONFIG, []) != study.config_digest(
        CONFIG, ['model.head.gmm.stale_decay=0.5'])
    stored = dict(config=CONFIG, options=[], seed=0,
                  budget=dict(epochs=1, train_images=128, bank_images=64,
                              query_images=32),
                  config_digest=study.config_digest(
                      CONFIG, ['model.head.gmm.stale_decay=0.5']),
                  steps=2, train_s=1.0, metrics={'knn/top1': 50.0,
                                                 study.PLOT_X: 3.0})
    out = tmp_path / 'results.json'
    study.write(str(out), [stored])
    before = out.read_text()
    proc = run_tool([sys.executable, 'tools/analysis/seed_study.py', CONFIG,
                     '--seeds', '0', *TINY, '--out', str(out),
                     '--work-dir', str(tmp_path / 'runs')], check=False)
    assert proc.returncode != 0
    assert 'a default in the config changed since' in proc.stderr
    assert not (tmp_path / 'runs').exists()
    assert out.read_text() == before


def test_records_written_meanwhile_are_kept(tmp_path, monkeypatch):
    """Each finished run is merged into the file as it is then, so a record
    another writer added while this call trained (a second study, a
    relabelling) survives; before, the copy read at the start overwrote
    it. Training is replaced by a stub that writes such a record."""
    study = load_seed_study()
    out = tmp_path / 'results.json'
    foreign = dict(config=f'configs/{JOINT_FMNIST}', options=[], seed=7,
                   budget=dict(study.DEFAULT_BUDGET), work_dir='elsewhere',
                   steps=2, train_s=1.0,
                   metrics={'knn/top1': 50.0, study.PLOT_X: 3.0})

    def fake_train_and_evaluate(config, model_dir, seed, **kwargs):
        stored = study.load_runs(str(out))
        study.write(str(out), stored + [dict(foreign, seed=7 + seed)])
        return dict(train_s=1.0,
                    metrics={'knn/top1': 60.0 + seed, study.PLOT_X: 5.0})

    monkeypatch.setattr(study, 'train_and_evaluate', fake_train_and_evaluate)
    monkeypatch.setattr(study, 'training_log',
                        lambda work_dir: dict(steps=2, monitor={},
                                                        series={}))
    monkeypatch.chdir(Path.cwd())  # main() changes to the repo root
    monkeypatch.setattr(sys, 'argv', [
        'seed_study.py', CONFIG, '--seeds', '0', '1', *TINY, '--out',
        str(out), '--work-dir', str(tmp_path / 'runs')])
    study.main()
    runs = json.loads(out.read_text())['runs']
    assert sorted((r['config'], r['seed']) for r in runs) == sorted([
        (f'configs/{JOINT_FMNIST}', 7),
        (f'configs/{JOINT_FMNIST}', 8), (CONFIG, 0), (CONFIG, 1)])
    assert [r['metrics']['knn/top1'] for r in runs
            if r['config'] == CONFIG] == [60.0, 61.0]


def test_a_record_of_earlier_code_does_not_block_a_rerun(tmp_path):
    """A rerun after a code change may reuse the folder name of a stored
    record tagged with the earlier code's commit (``code``): both are kept,
    as two variants in the summary."""
    study = load_seed_study()
    out = tmp_path / 'results.json'
    old = dict(config=CONFIG, options=[], seed=0,
               budget=dict(study.DEFAULT_BUDGET), work_dir='wd/run_seed0',
               code='0123abc', steps=2, train_s=1.0,
               metrics={'knn/top1': 50.0, study.PLOT_X: 3.0})
    study.write(str(out), [old])
    new = dict(old, metrics={'knn/top1': 60.0, study.PLOT_X: 4.0})
    del new['code']
    runs = study.write_merged(str(out), [new])
    assert [r['metrics']['knn/top1'] for r in runs] == [50.0, 60.0]
    keys = set(study.summarise(runs))
    assert keys == {CONFIG, f'{CONFIG} [code 0123abc]'}
    # the same folder and code: already stored, not written twice
    assert len(study.write_merged(str(out), [new])) == 2


def test_eta_arithmetic():
    import time
    study = load_seed_study()
    # 3 of 8 runs in 30 min: 10 min per run, 5 runs (50 min) left
    assert study.eta(3, 8, 1800.0) == dict(done=3, left=5, mean_s=600.0,
                                           left_s=3000.0)
    assert study.eta(8, 8, 960.0) == dict(done=8, left=0, mean_s=120.0,
                                          left_s=0.0)
    now = 1_700_000_000.0
    line = study.eta_message(3, 8, 1800.0, now=now)
    finish = time.strftime('%H:%M', time.localtime(now + 3000.0))
    assert line == ('3/8 runs done, 5 left; 10.0 min per run, ~50 min '
                    f'left (ETA {finish})')
    for done, total in ((0, 3), (4, 3)):
        with pytest.raises(ValueError, match='0 < done <= total'):
            study.eta(done, total, 10.0)


def test_a_study_writes_to_work_dirs_unless_told(tmp_path, monkeypatch):
    """Without --out the results (and plot) go to
    work_dirs/seed_study/ under the repository root, never into docs/:
    the repository's study is written only with an explicit --out.
    The root is a temporary folder here, training a stub."""
    study = load_seed_study()
    assert study.DEFAULT_OUT == 'work_dirs/seed_study/results.json'
    monkeypatch.setattr(study, 'REPO_ROOT', str(tmp_path))
    monkeypatch.setattr(
        study, 'train_and_evaluate', lambda config, model_dir, seed, **kw:
        dict(train_s=1.0, metrics={'knn/top1': 60.0 + seed,
                                   study.PLOT_X: 5.0}))
    monkeypatch.setattr(study, 'training_log',
                        lambda work_dir: dict(steps=2, monitor={},
                                                        series={}))
    monkeypatch.chdir(Path.cwd())  # main() changes to the repo root
    config = str(Path(REPO_ROOT) / CONFIG)
    monkeypatch.setattr(sys, 'argv', ['seed_study.py', config, '--seeds',
                                      '0', '1', *TINY])
    study.main()
    out = tmp_path / 'work_dirs' / 'seed_study' / 'results.json'
    runs = json.loads(out.read_text())['runs']
    assert [r['seed'] for r in runs] == [0, 1]
    assert (out.parent / 'knn_vs_used.png').is_file()
    assert not (tmp_path / 'docs').exists()
    # what produced each record
    import torch
    for run in runs:
        assert run['torch'] == torch.__version__
        assert run['threads'] == int(os.environ.get(
            'OMP_NUM_THREADS', torch.get_num_threads()))
        assert run['commit'] == 'unknown'  # the root is no git checkout
    monkeypatch.setattr(study, 'REPO_ROOT', REPO_ROOT)
    head = subprocess.run(['git', '-C', REPO_ROOT, 'rev-parse', '--short',
                           'HEAD'], capture_output=True, text=True).stdout
    assert study.provenance()['commit'].split('+')[0] == head.strip()


def test_training_log_keeps_the_em_series(tmp_path):
    """The logged EM moves and monitor values per log step, the median
    seconds per iteration and the minimum of the monitor's values."""
    study = load_seed_study()
    run = tmp_path / '20261207_000000' / 'vis_data'
    run.mkdir(parents=True)
    lines = [dict(step=10, loss=1.0, time=0.5, em_reseeded=2.0,
                  em_merged=0.0, **{'proto_unique@0.1': 100.0}),
             dict(step=20, loss=0.9, time=0.7, em_reseeded=1.0,
                  em_merged=3.0, diag_churn=0.25,
                  **{'proto_unique@0.1': 99.0}),
             dict(step=25, loss=0.8, time=0.9)]  # nothing kept
    (run / 'scalars.json').write_text(
        '\n'.join(json.dumps(line) for line in lines))
    log = study.training_log(str(tmp_path))
    assert log['steps'] == 25
    assert log['monitor'] == {'monitor/min_unique@0.1': 99.0,
                              'train/s_per_iter': 0.7}
    assert log['series']['step'] == [10, 20]
    assert log['series']['em_merged'] == [0.0, 3.0]
    assert log['series']['diag_churn'] == [None, 0.25]  # first seen late
    assert 'em_merge_unresolved' not in log['series']  # never logged


def test_markdown_reads_the_repository_study(capsys, monkeypatch):
    """--markdown --out docs/seed_study/results.json: the committed study's
    table (a row per variant), no training."""
    study = load_seed_study()
    monkeypatch.chdir(Path.cwd())
    monkeypatch.setattr(sys, 'argv', ['seed_study.py', '--markdown', '--out',
                                      'docs/seed_study/results.json'])
    study.main()
    with open(Path(REPO_ROOT) / 'docs' / 'seed_study' / 'results.json') as f:
        variants = json.load(f)['summary']
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith('| variant | seeds | k-NN top-1 (%)')
    assert len(lines) == 2 + len(variants)
