"""tools/demo.py end to end on a tiny budget: both models trained, evaluated,
the prototype step alone run on the frozen baseline encoder, plots and
results.json written with the keys the README documents."""
import json
import sys

from tests.conftest import run_tool

THRESHOLDS = ('0.025', '0.05', '0.1', '0.25', '0.5')


def test_demo_writes_results_and_plots(fmnist_root, tmp_path):
    work_dir = tmp_path / 'demo'
    proc = run_tool([sys.executable, 'tools/demo.py', '--epochs', '1',
                     '--train-images', '128', '--bank-images', '64',
                     '--query-images', '32', '--frozen-steps', '4',
                     '--work-dir', str(work_dir)])

    results = json.loads((work_dir / 'results.json').read_text())
    assert set(results) == {'baseline', 'decoupled'}
    for model in results.values():
        for eps in THRESHOLDS:
            assert 0 < model[f'unique@{eps}'] <= 100
            assert 0 < model[f'frozen_encoder_unique@{eps}'] <= 100
        assert 0 <= model['knn_top1'] <= 100
        assert 1 <= model['used_prototypes'] <= model['num_prototypes']
        assert model['num_prototypes'] == 1024
        assert model['epochs'] == 1
        assert model['iter_time_s'] > 0
    for name in ('baseline', 'decoupled'):  # what the table rows come from
        frozen = json.loads(
            (work_dir / name / 'frozen_encoder.json').read_text())
        assert frozen['unique']['steps'][-1] == 4
        assert results[name]['frozen_encoder_unique@0.5'] == \
            frozen['final']['unique@0.5']
    for png in ('unique_vs_eps', 'nn_cosine_hist', 'usage', 'frozen_encoder'):
        assert (work_dir / 'plots' / f'{png}.png').stat().st_size > 1000
    assert 'frozen_encoder_unique@0.5' in proc.stdout  # the printed table
