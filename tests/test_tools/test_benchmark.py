"""tools/analysis/benchmark.py: both configs timed, the decoupled one with
its --decoupled-options (e.g. the joint config's K, for like for like)."""
import re
import sys

from tests.conftest import DECOUPLED_FMNIST, JOINT_FMNIST, run_tool


def test_times_both_heads_with_decoupled_options():
    proc = run_tool([sys.executable, 'tools/analysis/benchmark.py',
                     '--iters', '2', '--warmup', '0', '--batch', '4',
                     '--random-data', '--skip-em', '--decoupled-options',
                     'model.head.num_prototypes=64'])
    assert f'configs/{JOINT_FMNIST}: K = 1024' in proc.stdout
    assert f'configs/{DECOUPLED_FMNIST}: K = 64' in proc.stdout
    times = re.search(r'joint ([\d.]+) s, decoupled ([\d.]+) s', proc.stdout)
    assert float(times[1]) > 0 and float(times[2]) > 0
    assert re.search(r'ratio decoupled/joint = [\d.]+', proc.stdout)
