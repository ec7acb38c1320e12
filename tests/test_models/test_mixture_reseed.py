"""Re-seeding of idle components (``reseed_rate``), an option of ours."""
import re

import pytest
import torch

from gmproto_mm.models.mixture import maintenance, numerics, online_em
from gmproto_mm.models.mixture import OnlineGaussianMixture, build_mixture
from gmproto_mm.models.mixture.maintenance.restart import restart_components

from .test_online_em import (clustered, far_component_setup, row_fit_of,
                             switch_on,
                             unit_rows,
                             updates_of_twin_and_resumed)


def test_reseed_moves_idle_component_onto_batch_and_it_gets_data() -> None:
    gmm = far_component_setup()  # component 2 pinned at -e0, data near e0
    switch_on(gmm, reseed_rate=1 / 32)  # one component per update of 32 rows
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
    switch_on(gmm, reseed_rate=3 / 32)
    assert gmm.acc_count[2] > gmm.prior_count + 0.5  # it had data once
    kept = gmm.acc_count[2].clone(), gmm.mu[2].clone()
    gen = torch.Generator().manual_seed(1)
    assert gmm.update(clustered(torch.eye(4)[:1], 32, 0.1,
                                gen))['reseeded'] == 0.0
    assert torch.equal(gmm.acc_count[2], kept[0])
    assert torch.equal(gmm.mu[2], kept[1])


@pytest.mark.parametrize('rows, rate, expected', [
    (16, 0.25, 4), (128, 1 / 32, 4), (2048, 1 / 32, 64), (8, 1 / 32, 1),
    (100, 1 / 32, 4), (16, 0.0, 0)])
def test_reseed_count_is_a_rate_per_row(rows, rate, expected) -> None:
    assert maintenance.reseed_count(rate, rows) == expected


def test_reseed_start_and_off_by_default() -> None:
    x = unit_rows(16, 8, seed=0)
    default = OnlineGaussianMixture(64, 8, init='uniform', seed=1)
    assert 'reseeded' not in default.update(x)
    late = OnlineGaussianMixture(64, 8, init='uniform', seed=1,
                                 reseed_rate=0.25, reseed_start=2)
    assert [late.update(x)['reseeded'] for _ in range(2)] == [0.0, 0.0]
    # six idle ones (one with a negligible 0.4 rows of mass), at most
    # ceil(0.25 * 16) = 4 move
    late.acc_count.fill_(late.prior_count + 10.0)
    late.acc_count[:6] = late.prior_count
    late.acc_count[5] += 0.4
    before = late.mu.clone()
    assert late.update(x)['reseeded'] == 4.0
    moved = (late.mu - before).norm(dim=1) > 0.1
    assert int(moved[:6].sum()) >= 4 and not bool(moved[6:].any())


def test_reseed_is_deterministic_and_resumes_exactly() -> None:
    kwargs = dict(init='uniform', seed=3, reseed_rate=2 / 24, beta_iters=4)
    gen = torch.Generator().manual_seed(0)
    centres = unit_rows(3, 8, seed=5)
    batches = [clustered(centres, 24, 0.2, gen) for _ in range(6)]

    def make_idle(gmm):  # the same idle ones in both
        gmm.acc_count[:3] = gmm.prior_count

    outputs = updates_of_twin_and_resumed(kwargs, batches, 3, make_idle)
    assert [out['reseeded'] for out in outputs] == [2.0, 2.0, 2.0]


@pytest.mark.parametrize('kwargs, name', [
    (dict(reseed_rate=-0.1), 'reseed_rate'),
    (dict(reseed_rate=1.5), 'reseed_rate'),
    (dict(reseed_rate='4'), 'reseed_rate'),
    (dict(reseed_start=-2), 'reseed_start'),
])
def test_bad_reseed_arguments(kwargs, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        OnlineGaussianMixture(4, 3, **kwargs)


@pytest.mark.parametrize('key, hint', [
    ('reseed_idle', r'replaced by maintenance.reseed_rate .*1/32'),
    ('reseed_pick', 'replaced by nothing'),
    ('forgeting', "did you mean 'forgetting'"),
    ('bogus', 'not an option'),
])
def test_unknown_or_renamed_keys_name_the_config_path(key, hint) -> None:
    with pytest.raises(ValueError) as err:
        build_mixture(4, 3, {key: 1}, where='model.patch_head.gmm')
    text = str(err.value)
    assert text.startswith(f'model.patch_head.gmm: unknown '
                           f'OnlineGaussianMixture option {key!r}')
    assert 'Accepted: forgetting, beta_start' in text
    assert re.search(hint, text), text
    # a bad value names the path too
    with pytest.raises(ValueError, match=r'^model.head.gmm: forgetting'):
        build_mixture(4, 3, dict(forgetting=2.0), where='model.head.gmm')


def test_flat_maintenance_keys_warn_naming_the_grouped_key() -> None:
    """Flat keys still build the same mixture as the group, with a
    FutureWarning naming the grouped key (the config path through the
    builder); an unknown flat keyword is still a TypeError."""
    with pytest.warns(FutureWarning, match=re.escape(
            'model.head.gmm.reseed_rate is deprecated: give '
            'model.head.gmm.maintenance.reseed_rate')):
        flat = build_mixture(8, 3, dict(reseed_rate=0.5),
                             where='model.head.gmm')
    with pytest.warns(FutureWarning, match=re.escape(
            'OnlineGaussianMixture(merge_within=...) is deprecated: give '
            'maintenance=dict(merge_within=...)')):
        direct = OnlineGaussianMixture(8, 3, merge_within=0.1)
    grouped = build_mixture(8, 3, dict(maintenance=dict(reseed_rate=0.5)))
    assert repr(flat) == repr(grouped) and 'merge_within=0.1' in repr(direct)
    with pytest.raises(TypeError, match='unexpected keyword'):
        OnlineGaussianMixture(8, 3, reseed_rat=0.5)


def test_reseed_picks_rows_where_the_data_is_not_covered() -> None:
    """A quarter of the rows sit on an active mean (e0), the rest in three
    clusters far from every mean (e1, e2, e3): the re-seeded components
    start on the uncovered clusters, never on the covered one, and (with
    merging at 0.1) never two on the same cluster."""
    eye = torch.eye(5)
    for seed in range(10):
        gen = torch.Generator().manual_seed(seed)
        x = torch.cat([clustered(eye[i:i + 1], 32, 0.01, gen)
                       for i in range(4)])
        gmm = OnlineGaussianMixture(9, 5, init='uniform', reseed_rate=3 / 128,
                                    merge_within=0.1, beta_iters=0, seed=seed)
        gmm.update(x[:32])  # initialise
        gmm.mu[0] = eye[0]
        gmm.mu[1:] = -eye[4]  # the idle ones sit far from all the data
        gmm.acc_count.fill_(gmm.prior_count)  # all idle but component 0
        gmm.acc_count[0] += 10.0
        before = gmm.mu.clone()
        moved = maintenance.ReseedIdle(3 / 128, keep_apart=0.1).reseed(
            gmm, x, torch.Generator().manual_seed(seed),
            row_fit_of(gmm, x)).numel()
        assert 1 <= moved <= 3
        starts = gmm.mu[(gmm.mu - before).norm(dim=1) > 0]
        clusters = (starts @ eye[:4].T).argmax(dim=1).tolist()
        assert 0 not in clusters, (seed, clusters)
        assert len(set(clusters)) == len(clusters), (seed, clusters)


def test_a_restart_takes_the_variance_of_the_components_in_use() -> None:
    """Restarted components start with the data-weighted mean variance of
    the components that hold data (not the spread of the whole batch,
    which would lose them their own rows in high dimension); before any
    component holds data, with the batch variance. (Restarted far from
    the batch here: they take no rows, so the rule shows unchanged.)"""
    x = -unit_rows(16, 4, seed=0).abs()  # all in the negative orthant
    gmm = OnlineGaussianMixture(4, 4, init='uniform', min_var=1e-6)
    gmm.update(x)  # initialise
    gmm.acc_count.copy_(torch.tensor([3.0, 1.0, 5.0, 1.0]))  # prior 1
    gmm.var.copy_(torch.tensor([[1e-3] * 4, [9.0] * 4, [4e-3] * 4,
                                [9.0] * 4]))
    fit = row_fit_of(gmm, x)
    restart_components(gmm, torch.tensor([1]), torch.eye(4)[:1], x, fit)
    expected = (2.0 * 1e-3 + 4.0 * 4e-3) / 6.0  # masses 2 and 4
    torch.testing.assert_close(gmm.var[1], torch.full((4, ), expected))
    assert float(gmm.acc_count[1]) == gmm.prior_count
    gmm.acc_count.fill_(gmm.prior_count)  # nothing holds data
    restart_components(gmm, torch.tensor([3]), torch.full((1, 4), 0.5), x, fit)
    torch.testing.assert_close(gmm.var[3], x.var(dim=0, correction=0))


def one_covered_cluster(num_components: int, uncovered_rows: int,
                        gen: torch.Generator):
    """A mixture in D = 6 whose component 0 holds 30 rows on a cluster of
    24 batch rows at e0 (variances 1e-3); a second cluster of
    ``uncovered_rows`` rows at e1 has no component; the rest idle. Returns
    ``(gmm, x, fit)``, ``fit`` what the E-step hands a restart."""
    eye = torch.eye(6)
    x = torch.cat([clustered(eye[:1], 24, 0.02, gen),
                   clustered(eye[1:2], uncovered_rows, 0.02, gen)])
    gmm = OnlineGaussianMixture(num_components, 6, init='uniform',
                                beta_iters=0)
    gmm.update(x)
    gmm.mu[0] = eye[0]
    gmm.var.fill_(1e-3)
    gmm.acc_count.fill_(gmm.prior_count)
    gmm.acc_count[0] = 30.0
    gmm.renormalise_weights()
    return gmm, x, row_fit_of(gmm, x)


@pytest.mark.parametrize('chunk_rows', [1024, 7])
def test_a_restart_on_data_takes_its_rows_at_once(monkeypatch,
                                                  chunk_rows) -> None:
    """A component restarted on a batch row takes the responsibility the
    E-step would have given it -- its own row and close neighbours -- so it
    is active at once; its statistics equal a plain computation of
    r_nj = e_nj / (Z_n + e_nj) from the E-step's row maxima and
    normalisers. Also over row chunks of 7 of the 32 rows (the sums are
    exact), and no block of more rows than a chunk is formed."""
    monkeypatch.setattr(online_em, 'CHUNK_ROWS', chunk_rows)
    blocks = []
    features = numerics.features
    monkeypatch.setattr(numerics, 'features',
                        lambda x: blocks.append(x.shape[0]) or features(x))
    gen = torch.Generator().manual_seed(0)
    gmm, x, fit = one_covered_cluster(5, 8, gen)
    before = {k: getattr(gmm, k).clone()
              for k in ('acc_count', 'acc_sum', 'acc_sq_sum')}
    start = x[24].clone()  # a row of the uncovered cluster
    blocks.clear()
    restart_components(gmm, torch.tensor([3]), start[None], x, fit)
    assert blocks and max(blocks) <= chunk_rows
    assert float(gmm.acc_count[3]) > gmm.prior_count + 0.5  # not idle
    # the reference: the restarted component's log density, the row
    # maxima and normalisers of the E-step, no other component revisited
    var = gmm.var[3].double()
    pi = torch.tensor(gmm.prior_count) / (before['acc_count'].sum() -
                                          before['acc_count'][3] +
                                          gmm.prior_count)
    log_p = (pi.log() - 0.5 * (var.log().sum() + (
        (x.double() - start.double())**2 / var).sum(dim=1)))
    e = (log_p - fit.row_max.double()).exp()
    r = e / (fit.row_sum.double() + e)
    torch.testing.assert_close(
        gmm.acc_count[3].double(), gmm.prior_count + r.sum(), rtol=1e-5,
        atol=1e-5)
    # the other components keep their statistics
    for key, value in before.items():
        keep = torch.ones(5, dtype=torch.bool)
        keep[3] = False
        assert torch.equal(getattr(gmm, key)[keep], value[keep]), key


def test_restarted_components_share_each_row_with_the_others() -> None:
    """Four components restarted on the same uncovered cluster split its
    rows in one softmax with the components already there: together they
    take less than one row of mass per row (independently normalised, each
    would take almost every row: four rows of mass per row), and each
    takes ``r_nj = e_nj / (Z_n + sum_i e_ni)``."""
    gen = torch.Generator().manual_seed(0)
    gmm, x, fit = one_covered_cluster(8, 16, gen)
    which = torch.tensor([2, 3, 5, 6])
    starts = torch.nn.functional.normalize(
        torch.eye(6)[1] + 0.01 * torch.randn(4, 6, generator=gen), dim=1)
    restart_components(gmm, which, starts, x, fit)
    taken = gmm.acc_count[which].double() - gmm.prior_count
    assert float(taken.sum()) <= 16.0 + 1e-4  # the 16 rows of the cluster
    assert bool((taken > 0.5).all())  # each became active
    # the reference: one softmax over the E-step's components and the four,
    # at the restart's variance (that of component 0, the only one in use)
    var = torch.full((4, 6), 1e-3, dtype=torch.float64)
    pi = torch.tensor(gmm.prior_count).double() / (
        gmm.acc_count.double().sum() - taken.sum())
    log_p = pi.log() - 0.5 * (var.log().sum(dim=1) + (
        (x.double()[:, None] - starts.double()) ** 2 / var).sum(dim=2))
    e = (log_p - fit.row_max.double()[:, None]).exp()
    r = e / (fit.row_sum.double() + e.sum(dim=1))[:, None]
    torch.testing.assert_close(taken, r.sum(dim=0), rtol=1e-4, atol=1e-4)
