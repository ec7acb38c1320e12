"""Merging of components closer than ``merge_within``, an option of ours."""
import math

import pytest
import torch

from gmproto_mm.evaluation.functional import prototype_diversity
from gmproto_mm.models.utils.online_gmm import OnlineGaussianMixture

from .test_online_gmm import (clustered, snapshot, unit_rows,
                              updates_of_twin_and_resumed)


def min_distance(means: torch.Tensor) -> float:
    """Smallest Euclidean distance between two rows (float64)."""
    dist = torch.cdist(means.double(), means.double())
    dist.fill_diagonal_(math.inf)
    return float(dist.min())


def planted_pair(merge_within: float = 0.1) -> OnlineGaussianMixture:
    """8 components on uniform means, 0 and 1 moved 0.05 apart with
    different masses; consistent statistics (an M-step gives the means)."""
    gmm = OnlineGaussianMixture(8, 16, init='uniform', beta_iters=0,
                                merge_within=merge_within, seed=2)
    gmm.update(unit_rows(32, 16, seed=0))  # initialise
    direction = gmm.mu[0].clone()
    other = torch.nn.functional.normalize(
        direction + 0.05 * gmm.mu[3], dim=0)
    for k, (mu, count) in enumerate([(direction, 7.0), (other, 3.0)]):
        gmm.acc_count[k] = count
        gmm.acc_sum[k] = mu * count
        gmm.acc_sq_sum[k] = (mu * mu + 0.01) * count
    gmm._m_step()
    assert 0.0 < min_distance(gmm.mu) < 0.1
    return gmm


def test_merge_adds_the_lighter_statistics_and_restarts_it_far() -> None:
    gmm = planted_pair()
    before = snapshot(gmm)
    x = unit_rows(64, 16, seed=4)
    assert gmm._merge_close(x, torch.Generator().manual_seed(0)) == 1
    # the heavier component 0 holds both masses (moment matching) ...
    for name in ('acc_count', 'acc_sum', 'acc_sq_sum'):
        torch.testing.assert_close(gmm.state_dict()[name][0],
                                   before[name][0] + before[name][1])
    merged = before['acc_sum'][:2].sum(0)
    torch.testing.assert_close(gmm.mu[0], merged / merged.norm())
    # ... and component 1 restarted with the prior on a batch row that is
    # farther than 0.1 from every other mean
    assert float(gmm.acc_count[1]) == gmm.prior_count
    assert float((x @ gmm.mu[1]).max()) > 1 - 1e-6
    assert min_distance(gmm.mu) >= 0.1
    torch.testing.assert_close(gmm.pi, gmm.acc_count / gmm.acc_count.sum())
    # the other six are untouched
    assert torch.equal(gmm.mu[2:], before['mu'][2:])


def test_merge_without_room_on_the_batch_uses_a_random_direction() -> None:
    gmm = planted_pair()
    x = gmm.mu[0].expand(16, 16).clone()  # every row on mean 0
    assert gmm._merge_close(x, torch.Generator().manual_seed(0)) == 1
    assert float(gmm.mu[1] @ gmm.mu[0]) < 0.9
    assert min_distance(gmm.mu) >= 0.1


def test_merge_keeps_means_apart_at_every_update() -> None:
    """More components than clusters, initialised on the data: without
    merging, means pile up on the 5 clusters; with it, no two means are
    within 0.1 after any update, and merges really happen."""
    centres = unit_rows(5, 16, seed=1)
    unique, merged = {}, {}
    for within in (0.0, 0.1):
        gen = torch.Generator().manual_seed(0)
        gmm = OnlineGaussianMixture(64, 16, init='sample', init_samples=1,
                                    beta_iters=0, merge_within=within,
                                    seed=1)
        unique[within], merged[within] = [], 0.0
        for _ in range(20):
            out = gmm.update(clustered(centres, 256, 0.03, gen))
            merged[within] += out.get('merged', 0.0)
            unique[within].append(
                prototype_diversity(gmm.means, [0.1])['unique@0.1'])
            assert bool(torch.isfinite(gmm.var).all())
        assert int(gmm.num_updates) == 20
    assert max(unique[0.0]) < 50.0  # the data makes duplicates
    assert unique[0.1] == [100.0] * 20
    assert merged[0.1] > 0
    assert 'merged' not in OnlineGaussianMixture(4, 3).update(
        unit_rows(8, 3, seed=0))


def test_merge_is_deterministic_and_resumes_exactly() -> None:
    kwargs = dict(init='sample', init_samples=1, seed=3, beta_iters=4,
                  merge_within=0.2, reseed_idle=2, reseed_pick='kmeans++')
    gen = torch.Generator().manual_seed(0)
    centres = unit_rows(3, 8, seed=5)
    batches = [clustered(centres, 48, 0.05, gen) for _ in range(6)]
    outputs = updates_of_twin_and_resumed(kwargs, batches, 3)
    assert sum(out['merged'] for out in outputs) > 0


@pytest.mark.parametrize('value', [-0.1, 2.0, float('nan'), '0.1', None])
def test_bad_merge_within(value) -> None:
    with pytest.raises(ValueError, match='merge_within'):
        OnlineGaussianMixture(4, 3, merge_within=value)
