"""gmproto_mm.analysis.em_cost at toy sizes: what benchmark_em.py,
benchmark.py and gpu_check.py read from each measurement."""
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch

from gmproto_mm.analysis import em_cost
from tests.conftest import REPO_ROOT

K, D = 64, 16


@pytest.mark.parametrize('variant', sorted(em_cost.VARIANTS))
def test_em_ratio_is_update_over_matmul_after_initialisation(variant):
    options = em_cost.VARIANTS[variant]
    run = em_cost.measure_em_ratio(K, D, batch=16, repeats=3,
                                   options=options)
    assert (run['num_components'], run['dim'], run['batch']) == (K, D, 16)
    assert run['update_s'] > 0 and run['matmul_s'] > 0
    assert run['ratio'] == run['update_s'] / run['matmul_s']
    assert run['first_update_s'] > 0
    assert run['scratch_mb'] > 0  # allocated by the first update
    assert run['peak_mb'] is None or run['peak_mb'] >= 0
    # the class defaults never re-seed; the decoupled options re-seed
    # from the first timed update (reseed_start=0), so it is timed
    assert (run['reseeded'] > 0) == (variant == 'decoupled_default')
    assert run['merged'] >= 0


def test_benchmarked_options_are_the_configs():
    """The benchmark and the suite's scale test time the decoupled
    configs' EM options (re-seeding from the first update, so it is
    timed), not a copy that drifted from them."""
    from mmengine.config import Config
    base = Config.fromfile(
        osp.join(REPO_ROOT, 'configs/_base_/models/decoupled_gmm.py'))
    options = dict(em_cost.DEFAULT_OPTIONS)
    maintenance = dict(options.pop('maintenance'))
    assert maintenance.pop('reseed_start') == 0
    assert maintenance == dict(base.decoupled_gmm.maintenance)
    assert options == {key: base.decoupled_gmm[key] for key in options}


def test_first_step_after_pooling_pools_k_rows():
    # K / rows = 4 updates: three pool, the fourth initialises and steps
    first = em_cost.first_step_after_pooling(K, D, rows=16)
    assert first['pooled_rows'] == K and first['seconds'] > 0
    assert (first['num_components'], first['dim']) == (K, D)


def test_scratch_mb_counts_the_scratch_only():
    from gmproto_mm.models.mixture import OnlineGaussianMixture
    gmm = OnlineGaussianMixture(1024, 64, init='uniform')
    assert em_cost.scratch_mb(gmm) == 0.0  # allocated on first use
    gmm.update(torch.randn(16, 64))
    # weights and statistics (K, 2D+1), mean (K, D), resp (16, K): fp32
    expected = 4 * (2 * 1024 * 129 + 1024 * 64 + 16 * 1024) / 2**20
    assert em_cost.scratch_mb(gmm) == pytest.approx(expected)
    assert not [name for name, _ in gmm.named_buffers()
                if name.startswith('_')]  # scratch is not state


PEAK_SCRIPT = """
import torch
from gmproto_mm.analysis.em_cost import peak_rise_mb
seconds, peak = peak_rise_mb(lambda: torch.ones(16 * 2**20).sum(),
                             torch.device('cpu'))
print(seconds, peak)
"""


@pytest.mark.skipif(not osp.exists('/proc/self/clear_refs'),
                    reason='needs Linux /proc to reset the peak')
def test_peak_rise_sees_a_temporary_allocation():
    """64 MB allocated and freed inside the call: the peak rises by about
    that, although the memory in use afterwards does not. In a fresh
    process, as benchmark_em.py runs it (in a long test session the
    allocator may serve the 64 MB from memory that is resident already)."""
    out = subprocess.run([sys.executable, '-c', PEAK_SCRIPT], cwd=REPO_ROOT,
                         capture_output=True, text=True, timeout=300,
                         env=dict(os.environ, OMP_NUM_THREADS='1'))
    assert out.returncode == 0, out.stderr
    seconds, peak = map(float, out.stdout.split())
    assert seconds > 0 and 56 <= peak <= 200, (seconds, peak)


def test_scale_test_and_monitor_report_their_sizes():
    stats = em_cost.scale_test(K, D, clusters=8, rows=64, updates=10)
    assert (stats['num_components'], stats['clusters']) == (K, 8)
    assert stats['updates'] == 10 and stats['seconds'] > 0
    assert 0 < stats['unique@0.1'] <= 100
    for crowded in (False, True):
        monitor = em_cost.monitor_wait(K, D, block_size=K // 4,
                                       crowded=crowded)
        assert monitor['tiles'] == 10  # 4 blocks: 4 * 5 / 2 tiles
        assert 0 < monitor['max_tile_s'] <= monitor['total_s']


def test_crowded_bank_update_reports_merges():
    out = em_cost.crowded_bank_update(K, D, batch=64)
    assert out['merged'] > 0 and out['normal_update_s'] > 0
    assert out['ratio'] == out['crowded_update_s'] / out['normal_update_s']
