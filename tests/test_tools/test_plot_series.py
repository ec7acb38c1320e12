"""tools/analysis/plot_series.py: curves of seed-study records' series."""
import json
import sys

from tests.conftest import REPO_ROOT, run_tool


def record(config, options, seed, values):
    return dict(config=config, options=options, seed=seed,
                budget=dict(epochs=12), metrics={},
                series=dict(step=[10, 20, 30],
                            diag_churn=values, em_reseeded=[1.0, None, 0.0]))


def test_plots_the_selected_runs(tmp_path):
    runs = [record('configs/dino/dino_vit-tiny.py', [], 0, [0.5, 0.3, 0.1]),
            record('configs/dino/dino_vit-tiny.py',
                   ['model.head.loss.teacher_balancing=sinkhorn'], 0,
                   [0.4, 0.2, 0.1]),
            record('configs/dino/dino-gmm_vit-tiny.py', [], 1,
                   [None, 0.2, 0.1])]
    results = tmp_path / 'results.json'
    results.write_text(json.dumps(dict(runs=runs)))
    out = tmp_path / 'curves.png'
    proc = run_tool([sys.executable, 'tools/analysis/plot_series.py',
                     str(results), '--group', 'dino-gmm', '--label', 'GMM',
                     '--group', 'dino_vit', 'sinkhorn', '--epochs', '12',
                     '--keys', 'diag_churn', 'em_reseeded', '--out',
                     str(out)])
    assert out.stat().st_size > 1000 and 'wrote' in proc.stdout
    missing = run_tool([sys.executable, 'tools/analysis/plot_series.py',
                        str(results), '--group', 'carp', '--keys',
                        'diag_churn', '--out', str(out)], check=False)
    assert missing.returncode != 0 and 'no run' in missing.stderr


def test_curve_skips_steps_without_a_value():
    from importlib import util
    spec = util.spec_from_file_location(
        'plot_series', f'{REPO_ROOT}/tools/analysis/plot_series.py')
    module = util.module_from_spec(spec)
    spec.loader.exec_module(module)
    series = dict(step=[1, 2, 3], a=[None, 5.0, 6.0])
    assert module.curve(series, 'a') == ([2, 3], [5.0, 6.0])
    assert module.curve(series, 'b') == ([], [])
