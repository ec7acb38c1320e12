"""The decoupled default at a scale the suite affords: a stream of
clustered, slowly drifting unit vectors stands in for a large data set
(``tools/analysis/benchmark_em.py --scale-test`` runs it at K = 65,536)."""
import math
import os
import subprocess
import sys

import pytest
import torch

from gmproto_mm.analysis import DEFAULT_OPTIONS
from gmproto_mm.evaluation.functional import prototype_diversity
from gmproto_mm.models.mixture import OnlineGaussianMixture, maintenance
from gmproto_mm.testing import (crowd_bank, near_directions,
                                 stream_scale_check)
from tests.conftest import REPO_ROOT


def test_used_components_reach_the_clusters_and_stay_apart() -> None:
    """K = 2,048 means start uniform on the sphere, far from 256 clusters
    in a cap (as embeddings are): re-seeding puts them on every cluster
    within 40 updates of 512 rows (20,480 rows: 80 per cluster), no pair
    is within eps = 0.1 at the end, and the per-update re-seed and merge
    counts stay within the cost bound (ceil(N / 32) and N)."""
    K, D, C, N = 2048, 64, 256, 512
    sweep = math.ceil(K / math.ceil(N / maintenance.SWEEP_DIVISOR))
    gmm = OnlineGaussianMixture(K, D, beta_iters=20, **DEFAULT_OPTIONS)
    stats = stream_scale_check(gmm, C, N, updates=40 + sweep, probe_every=5)
    assert stats['rows_to_cover'] is not None, stats
    assert stats['rows_to_cover'] <= 40 * N, stats
    assert stats['used'] >= C, stats
    assert prototype_diversity(gmm.means, [0.1])['unique@0.1'] == 100.0
    assert 0 < stats['max_reseeded'] <= math.ceil(N / 32)
    assert stats['max_merged'] <= N
    # the paper's head alone leaves uniform means far from the data idle
    paper = OnlineGaussianMixture(K, D, beta_iters=20, init='uniform')
    assert stream_scale_check(paper, C, N, updates=20)['used'] < C / 4


MEMORY_SCRIPT = r'''
import re, sys, torch
from gmproto_mm.models.mixture import OnlineGaussianMixture

def peak_mb():
    with open('/proc/self/status') as f:
        return int(re.search(r'VmHWM:\s+(\d+)', f.read()).group(1)) / 1024

def reset_peak():
    with open('/proc/self/clear_refs', 'w') as f:
        f.write('5')

K, D = 4096, 64
torch.manual_seed(0)
gmm = OnlineGaussianMixture(K, D)  # class defaults: pool K rows
for _ in range(3):
    gmm.update(torch.randn(1024, D))
assert not bool(gmm.initialized)
x = torch.randn(1024, D)
reset_peak(); base = peak_mb()
gmm.update(x)  # fills the pool: initialise, first EM step
assert bool(gmm.initialized) and int(gmm.num_updates) == 1
first = peak_mb() - base
big = torch.randn(16384, D)
reset_peak(); base = peak_mb()
gmm.update(big)  # 16,384 rows at once
print(first, peak_mb() - base)
'''


@pytest.mark.skipif(not os.path.exists('/proc/self/clear_refs'),
                    reason='needs Linux /proc to measure peak memory')
def test_update_memory_is_bounded_by_one_chunk() -> None:
    """In a fresh process: the first EM step after pooling K = 4,096 rows,
    and an update on 16,384 rows, raise the peak resident memory by less
    than 48 MB (one chunk of 1,024 x 4,096 fp32 responsibilities is 16 MB,
    the two (K, 2D+1) scratch buffers 4 MB); an unchunked step would hold
    a (K, K) = 64 MB or (N, K) = 256 MB tensor."""
    out = subprocess.run([sys.executable, '-c', MEMORY_SCRIPT],
                         cwd=REPO_ROOT, capture_output=True, text=True,
                         env=dict(os.environ, OMP_NUM_THREADS='1'))
    assert out.returncode == 0, out.stderr
    first, big = map(float, out.stdout.split())
    assert first < 48.0 and big < 48.0, (first, big)


def test_merging_in_a_crowded_bank_checks_a_bounded_number_of_pairs(
        monkeypatch) -> None:
    """All K = 512 means within 0.02 of 2 directions: every mean has ~255
    neighbours within eps, none checked yet. Each merge round decides at
    most 2 N + ceil(N / 16) + ceil(N / 8) + ceil(N / 4) + R candidate pairs
    (N for the never-checked means; a check of every neighbour would
    be ~K per mean checked), the update merges and reports the close pairs
    it ran out of rounds for, and the means it checked last end eps
    apart."""
    sizes = []
    close_pairs = maintenance.close_pairs
    monkeypatch.setattr(
        maintenance.merge, 'close_pairs',
        lambda means, cand, within: sizes.append(cand.shape[0]) or
        close_pairs(means, cand, within))
    gen = torch.Generator().manual_seed(0)
    K, D, N = 512, 32, 64
    gmm = OnlineGaussianMixture(K, D, **DEFAULT_OPTIONS)
    directions = torch.nn.functional.normalize(
        torch.randn(2, D, generator=gen), dim=1)
    gmm.update(near_directions(directions, N, 0.02, gen))
    crowd_bank(gmm, directions, 0.02, gen)
    sizes.clear()
    out = gmm.update(near_directions(directions, N, 0.02, gen))
    limit = 2 * N + math.ceil(N / maintenance.SWEEP_DIVISOR) + \
        math.ceil(N / maintenance.OVERDRAWN_DIVISOR) + \
        math.ceil(N / maintenance.IN_TURN_DIVISOR) + math.ceil(N / 32)
    assert len(sizes) == maintenance.MERGE_ROUNDS + 1
    assert max(sizes) <= limit, (sizes, limit)
    assert out['merged'] > 0 and out['merge_unresolved'] > 0


CROWDED_SCRIPT = r'''
from gmproto_mm.analysis.em_cost import crowded_bank_update
out = crowded_bank_update(65536, 256, 1024)
print(out['crowded_peak_mb'], out['merged'], out['merge_unresolved'])
'''


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists('/proc/self/clear_refs'),
                    reason='needs Linux /proc to measure peak memory')
def test_crowded_bank_update_stays_within_the_chunk_budget() -> None:
    """In a fresh process, K = 65,536, D = 256, N = 1,024: all means within
    ~0.02 of 4 directions (a collapsed start). One update with merging
    raises the peak resident memory by less than one chunk of
    responsibilities (CHUNK_BYTES, 256 MB) beyond the scratch it already
    holds (measured: ~130 MB; candidate pairs of every mean within eps
    took ~8 GB), and merges."""
    from gmproto_mm.models.mixture.online_em import CHUNK_BYTES
    out = subprocess.run([sys.executable, '-c', CROWDED_SCRIPT],
                         cwd=REPO_ROOT, capture_output=True, text=True,
                         env=dict(os.environ, OMP_NUM_THREADS='1'))
    assert out.returncode == 0, out.stderr
    peak, merged, unresolved = map(float, out.stdout.split())
    assert peak < CHUNK_BYTES / 2**20, peak
    assert merged > 0
