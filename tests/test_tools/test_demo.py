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
        # the data's own spacing: at most the 64 + 32 evaluated embeddings
        assert 1 <= model['embedding_leaders@0.5'] <= \
            model['embedding_leaders@0.025'] <= 96
    for name in ('baseline', 'decoupled'):  # what the table rows come from
        frozen = json.loads(
            (work_dir / name / 'frozen_encoder.json').read_text())
        assert frozen['unique']['steps'][-1] == 4
        assert results[name]['frozen_encoder_unique@0.5'] == \
            frozen['final']['unique@0.5']
    for png in ('unique_vs_eps', 'nn_cosine_hist', 'usage', 'frozen_encoder'):
        assert (work_dir / 'plots' / f'{png}.png').stat().st_size > 1000
    assert 'frozen_encoder_unique@0.5' in proc.stdout  # the printed table


def _demo_module():
    import importlib.util
    from tests.conftest import REPO_ROOT
    spec = importlib.util.spec_from_file_location(
        'demo_tool', f'{REPO_ROOT}/tools/demo.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_long_tailed_groups_reach_json_and_table(capsys):
    """Per-group k-NN, ownership counts and the diversity of groups that own
    prototypes are summarised; a group one model lacks prints as '-'."""
    demo = _demo_module()
    base = {f'prototypes/unique@{eps}': 100.0 for eps in THRESHOLDS}
    base.update({'knn/top1': 50.0, 'prototypes/used_prototypes': 9.0,
                 'prototypes/argmax_perplexity': 2.5,
                 'prototypes/soft_perplexity': 3.5,
                 'prototypes/num_prototypes': 1024.0,
                 'knn/top1_tail': 20.0, 'prototypes/owned_tail': 0.0})
    gmm = dict(base, **{'prototypes/owned_tail': 3.0,
                        'prototypes/unique@0.5_tail': 66.7})
    results = {'baseline': demo.summarise(base, 3, [0.2, 0.1, 0.3]),
               'decoupled': demo.summarise(gmm, 3, [0.2, 0.1, 0.3])}
    assert results['baseline']['owned_tail'] == 0
    assert results['decoupled']['owned_tail'] == 3
    assert results['decoupled']['unique@0.5_tail'] == 66.7
    assert 'unique@0.5_tail' not in results['baseline']
    assert results['baseline']['argmax_perplexity'] == 2.5
    assert results['baseline']['soft_perplexity'] == 3.5
    assert results['baseline']['iter_time_s'] == 0.2  # first one skipped
    demo.print_table(results)
    row = next(line for line in capsys.readouterr().out.splitlines()
               if line.startswith('unique@0.5_tail'))
    assert row.split()[1:] == ['-', '66.70']
