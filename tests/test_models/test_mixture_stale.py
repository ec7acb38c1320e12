"""Decay of components that stopped receiving data (``stale_decay``), an
option of ours."""
import pytest
import torch

from gmproto_mm.models.mixture import maintenance
from gmproto_mm.models.mixture.online_em import OnlineGaussianMixture

from .test_online_em import (clustered, far_component_setup, switch_on,
                              updates_of_twin_and_resumed)


def data_near_e0(seed: int) -> torch.Tensor:
    return clustered(torch.eye(4)[:1], 32, 0.1,
                     torch.Generator().manual_seed(seed))


def test_stale_component_fades_to_the_prior_count_keeping_its_shape() -> None:
    gmm = far_component_setup()  # component 2 had data once, now far away
    switch_on(gmm, stale_decay=0.02)
    count = float(gmm.acc_count[2])
    assert count > 3 * gmm.prior_count
    mu, var = gmm.mu[2].clone(), gmm.var[2].clone()
    gmm.update(data_near_e0(1))
    # one update of N = 32 rows scales its statistics by 0.98 per K = 3
    # rows seen, 0.98 ** (32 / 3): count and weight fall ...
    torch.testing.assert_close(float(gmm.acc_count[2]),
                               0.98**(32 / 3) * count)
    torch.testing.assert_close(gmm.pi, gmm.acc_count / gmm.acc_count.sum())
    # ... its mean and variance stay
    torch.testing.assert_close(gmm.mu[2], mu)
    torch.testing.assert_close(gmm.var[2], var)
    for seed in range(2, 40):
        gmm.update(data_near_e0(seed))
    # never below the prior count (no underflow), shape still kept
    torch.testing.assert_close(float(gmm.acc_count[2]), gmm.prior_count)
    torch.testing.assert_close(gmm.mu[2], mu)
    torch.testing.assert_close(gmm.var[2], var)


def test_without_stale_decay_a_stale_component_keeps_its_count() -> None:
    gmm = far_component_setup()
    count = gmm.acc_count[2].clone()
    for seed in range(1, 10):
        gmm.update(data_near_e0(seed))
    assert torch.equal(gmm.acc_count[2], count)


def test_stale_component_becomes_idle_and_is_reseeded() -> None:
    """The point of the option: a component that once had data is re-seeded
    onto the data once its count has faded."""
    gmm = far_component_setup()
    switch_on(gmm, reseed_rate=1 / 32, stale_decay=0.3)
    moved_at = None
    for seed in range(1, 30):
        if gmm.update(data_near_e0(seed))['reseeded'] == 1.0:
            moved_at = seed
            break
    assert moved_at is not None  # faded to idle, then moved
    assert gmm.means[2, 0] > 0.9  # was -1: now on the data


def test_stale_decay_resumes_exactly() -> None:
    kwargs = dict(init='uniform', seed=3, reseed_rate=2 / 24, beta_iters=4,
                  stale_decay=0.1)
    gen = torch.Generator().manual_seed(0)
    centres = torch.nn.functional.normalize(
        torch.randn(3, 8, generator=gen), dim=1)
    batches = [clustered(centres, 24, 0.2, gen) for _ in range(8)]
    updates_of_twin_and_resumed(kwargs, batches, 4)


def test_the_decay_is_per_k_rows_seen() -> None:
    """The same stale_decay fades a component over the same number of rows
    per component whatever K and N: (1 - s) ** (N / K) per update."""
    count = torch.tensor([50.0, 1.0, 1.2])
    for rows, num in ((128, 256), (2048, 65536)):
        factor = maintenance.stale_decay_factor(
            count.repeat(num // 3 + 1)[:num], 1.0, 0.02, rows)
        torch.testing.assert_close(float(factor[0]), 0.98**(rows / num))
        assert float(factor[1]) == 1.0  # at the floor already
        # never below the prior count: the larger of the step and 1 / 1.2
        torch.testing.assert_close(float(factor[2]),
                                   max(0.98**(rows / num), 1.0 / 1.2))
    # K rows seen in updates of 128 rows at K = 256, and of 2,048 rows at
    # K = 65,536: the same fade
    small = (0.98**(128 / 256))**(256 / 128)
    large = (0.98**(2048 / 65536))**(65536 / 2048)
    assert small == pytest.approx(large) == pytest.approx(0.98)


@pytest.mark.parametrize('value', [-0.1, 1.0, '0.1'])
def test_bad_stale_decay(value) -> None:
    with pytest.raises(ValueError, match='stale_decay'):
        OnlineGaussianMixture(4, 3, stale_decay=value)
