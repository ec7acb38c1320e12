"""Re-seeding of idle components (``reseed_idle``), an option of ours."""
import pytest
import torch

from gmproto_mm.models.utils.online_gmm import OnlineGaussianMixture

from .test_online_gmm import (clustered, far_component_setup, unit_rows,
                              updates_of_twin_and_resumed)


def test_reseed_moves_idle_component_onto_batch_and_it_gets_data() -> None:
    gmm = far_component_setup()  # component 2 pinned at -e0, data near e0
    gmm.reseed_idle = 1
    gmm.acc_count[2] = gmm.prior_count  # never received data since its init
    gen = torch.Generator().manual_seed(1)
    x = clustered(torch.eye(4)[:1], 32, 0.1, gen)
    stats = gmm.update(x)
    assert stats['reseeded'] == 1.0
    # the mean now sits on the data (cos to e0 close to 1, was -1) and the
    # component received responsibility mass in the same step
    assert gmm.means[2, 0] > 0.9
    assert gmm.acc_count[2] > gmm.prior_count + 0.5
    # an active component is never re-seeded: with no idle one left, the
    # next update moves nothing
    assert gmm.update(x)['reseeded'] == 0.0


def test_reseed_keeps_components_that_received_data() -> None:
    """A far component that once had data keeps its statistics bit for bit
    (tail modes), re-seeding or not."""
    gmm = far_component_setup()
    gmm.reseed_idle = 3
    assert gmm.acc_count[2] > gmm.prior_count + 0.5  # it had data once
    kept = gmm.acc_count[2].clone(), gmm.mu[2].clone()
    gen = torch.Generator().manual_seed(1)
    assert gmm.update(clustered(torch.eye(4)[:1], 32, 0.1,
                                gen))['reseeded'] == 0.0
    assert torch.equal(gmm.acc_count[2], kept[0])
    assert torch.equal(gmm.mu[2], kept[1])


def test_reseed_start_and_off_by_default() -> None:
    x = unit_rows(16, 8, seed=0)
    default = OnlineGaussianMixture(64, 8, init='uniform', seed=1)
    assert 'reseeded' not in default.update(x)
    late = OnlineGaussianMixture(64, 8, init='uniform', seed=1,
                                 reseed_idle=4, reseed_start=2)
    assert [late.update(x)['reseeded'] for _ in range(2)] == [0.0, 0.0]
    # six idle ones (one with a negligible 0.4 rows of mass), at most 4 move
    late.acc_count.fill_(late.prior_count + 10.0)
    late.acc_count[:6] = late.prior_count
    late.acc_count[5] += 0.4
    before = late.mu.clone()
    assert late.update(x)['reseeded'] == 4.0
    moved = (late.mu - before).norm(dim=1) > 0.1
    assert int(moved[:6].sum()) >= 4 and not bool(moved[6:].any())


def test_reseed_is_deterministic_and_resumes_exactly() -> None:
    kwargs = dict(init='uniform', seed=3, reseed_idle=2, beta_iters=4)
    gen = torch.Generator().manual_seed(0)
    centres = unit_rows(3, 8, seed=5)
    batches = [clustered(centres, 24, 0.2, gen) for _ in range(6)]

    def make_idle(gmm):  # the same idle ones in both
        gmm.acc_count[:3] = gmm.prior_count

    outputs = updates_of_twin_and_resumed(kwargs, batches, 3, make_idle)
    assert [out['reseeded'] for out in outputs] == [2.0, 2.0, 2.0]


@pytest.mark.parametrize('kwargs, name', [
    (dict(reseed_idle=-1), 'reseed_idle'),
    (dict(reseed_idle=1.5), 'reseed_idle'),
    (dict(reseed_start=-2), 'reseed_start'),
])
def test_bad_reseed_arguments(kwargs, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        OnlineGaussianMixture(4, 3, **kwargs)


def test_reseed_kmeans_pp_starts_where_the_data_is_not_covered() -> None:
    """A third of the rows sit on an active mean (e0), two thirds in two
    clusters far from every mean (e1, e2): continued k-means++ puts the two
    re-seeded components one on each uncovered cluster; random picks (same
    seed) do not."""
    gen = torch.Generator().manual_seed(0)
    eye = torch.eye(4)
    x = torch.cat([clustered(eye[i:i + 1], 32, 0.02, gen) for i in range(3)])
    covered = {}
    for pick in ('random', 'kmeans++'):
        gmm = OnlineGaussianMixture(9, 4, init='uniform', reseed_idle=2,
                                    reseed_pick=pick, beta_iters=0)
        gmm.update(x[:32])  # initialise
        gmm.mu[0] = eye[0]
        gmm.acc_count.fill_(gmm.prior_count)  # all idle but component 0
        gmm.acc_count[0] += 10.0
        before = gmm.mu.clone()
        assert gmm._reseed_idle(x, torch.Generator()) == 2  # the move alone
        moved = gmm.mu[(gmm.mu - before).norm(dim=1) > 0]
        covered[pick] = sorted(int((m @ eye[:3].T).argmax()) for m in moved)
    assert covered['kmeans++'] == [1, 2]
    assert covered['random'] != [1, 2]


def test_bad_reseed_pick() -> None:
    with pytest.raises(ValueError, match='reseed_pick'):
        OnlineGaussianMixture(4, 3, reseed_pick='far')
