"""Merging of components closer than ``merge_within``, an option of ours,
and the guarantee it states (``gmproto_mm.models.mixture.maintenance``)."""
import math

import pytest
import torch

from gmproto_mm.evaluation.functional import prototype_diversity
from gmproto_mm.models.mixture import maintenance
from gmproto_mm.models.mixture.online_em import OnlineGaussianMixture

from .test_online_em import (clustered, row_fit_of, snapshot, unit_rows,
                             updates_of_twin_and_resumed)


def min_distance(means: torch.Tensor) -> float:
    """Smallest Euclidean distance between two rows (float64)."""
    dist = torch.cdist(means.double(), means.double())
    dist.fill_diagonal_(math.inf)
    return float(dist.min())


def distance64(a: torch.Tensor, b: torch.Tensor) -> float:
    """float64 distance of the float64-normalised rows (the metric's)."""
    a, b = (torch.nn.functional.normalize(v.double(), dim=0) for v in (a, b))
    return float(torch.linalg.vector_norm(a - b))


def plant(gmm: OnlineGaussianMixture, k: int, mu: torch.Tensor,
          count: float, var: float = 0.01) -> None:
    """Component ``k`` at unit-norm ``mu`` with consistent statistics."""
    gmm.mu[k] = mu
    gmm.acc_count[k] = count
    gmm.acc_sum[k] = mu * count
    gmm.acc_sq_sum[k] = (mu * mu + var) * count


def at_distance(base: torch.Tensor, other: torch.Tensor,
                dist: float) -> torch.Tensor:
    """The fp32 unit vector at float64 distance ~``dist`` from ``base``,
    in the plane of ``base`` and ``other`` (``other`` orthogonal to it)."""
    angle = 2.0 * math.asin(dist / 2.0)
    v = math.cos(angle) * base.double() + math.sin(angle) * other.double()
    return v.float()


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
        plant(gmm, k, mu, count)
    gmm.refit(slice(None))
    gmm.renormalise_weights()
    assert 0.0 < min_distance(gmm.mu) < 0.1
    return gmm


PAIR_01 = torch.tensor([[0, 1]])


def fit_of(gmm: OnlineGaussianMixture, x: torch.Tensor):
    """What the E-step hands the options (at beta = 1)."""
    return row_fit_of(gmm, x)


def test_merge_adds_the_lighter_statistics_and_restarts_it_far() -> None:
    gmm = planted_pair()
    before = snapshot(gmm)
    x = unit_rows(64, 16, seed=4)
    gen = torch.Generator().manual_seed(0)
    assert maintenance.MergeClose(0.1).merge(gmm, x, gen, fit_of(gmm, x),
                                             PAIR_01)[:2] == (1, 0)
    # the heavier component 0 holds both masses (moment matching) ...
    for name in ('acc_count', 'acc_sum', 'acc_sq_sum'):
        torch.testing.assert_close(gmm.state_dict()[name][0],
                                   before[name][0] + before[name][1])
    merged = before['acc_sum'][:2].sum(0)
    torch.testing.assert_close(gmm.mu[0], merged / merged.norm())
    # ... and component 1 restarted on a batch row farther than 0.1 from
    # every other mean, taking the rows it would have got (so it moved
    # a little towards them)
    assert float(gmm.acc_count[1]) > gmm.prior_count + 0.5
    assert float((x @ gmm.mu[1]).max()) > 0.9
    assert min_distance(gmm.mu) >= 0.1
    torch.testing.assert_close(gmm.pi, gmm.acc_count / gmm.acc_count.sum())
    # the other six are untouched
    assert torch.equal(gmm.mu[2:], before['mu'][2:])


def test_merge_without_room_on_the_batch_uses_a_random_direction() -> None:
    gmm = planted_pair()
    x = gmm.mu[0].expand(16, 16).clone()  # every row on mean 0
    gen = torch.Generator().manual_seed(0)
    assert maintenance.MergeClose(0.1).merge(gmm, x, gen, fit_of(gmm, x),
                                             PAIR_01)[:2] == (1, 0)
    assert float(gmm.mu[1] @ gmm.mu[0]) < 0.9
    assert min_distance(gmm.mu) >= 0.1


@pytest.mark.parametrize('dist, merges', [
    (0.0999, True), (0.09999, True), (0.1001, False), (0.10001, False)])
def test_the_cut_is_exact_at_eps_through_a_full_update(dist, merges) -> None:
    """A pair planted just inside / just outside merge_within (its float64
    distance checked), with batch rows on both means so that it is their
    two most likely components: merged if and only if inside."""
    gmm = OnlineGaussianMixture(8, 16, init='uniform', beta_iters=0,
                                merge_within=0.1, seed=2)
    gmm.update(unit_rows(32, 16, seed=0))
    base = gmm.mu[0].clone()
    ortho = torch.nn.functional.normalize(
        gmm.mu[3] - (gmm.mu[3] @ base) * base, dim=0)
    # heavy statistics: one update barely moves the means
    plant(gmm, 0, base, 7e6)
    plant(gmm, 1, at_distance(base, ortho, dist), 3e6)
    gmm.var.fill_(1e-3)
    planted = distance64(gmm.mu[0], gmm.mu[1])
    assert (planted < 0.1) == merges and abs(planted - dist) < 2e-5
    # rows exactly on the two means: the E-step's top two are (0, 1)
    x = torch.stack([gmm.mu[0], gmm.mu[1]] * 8)
    # the same data, no merging: the pair stays where it was (the update
    # alone does not move it across the cut)
    still = OnlineGaussianMixture(8, 16, init='uniform', beta_iters=0)
    still.load_state_dict(gmm.state_dict())
    still.update(x)
    assert (distance64(still.mu[0], still.mu[1]) < 0.1) == merges
    out = gmm.update(x)
    assert (out['merged'] > 0) == merges
    assert (min_distance(gmm.mu) >= 0.1) if merges else \
        (distance64(gmm.mu[0], gmm.mu[1]) < 0.1001 + 1e-4)


@pytest.mark.parametrize('dist, merges', [
    (0.05, True), (0.09999, True), (0.10001, False)])
def test_a_pair_no_row_chooses_between_is_merged_by_the_sweep(
        dist, merges) -> None:
    """Two means within eps that are no row's two most likely components
    are merged when the sweep reaches them: within ceil(K / ceil(N / 16))
    updates, and not before the block holding them comes up; a pair just
    outside eps never is (the fp32 screening keeps its margin on the safe
    side of the cut)."""
    K, N = 64, 32  # sweep blocks of ceil(32 / 16) = 2 means: 32 updates
    gmm = OnlineGaussianMixture(K, 8, init='uniform', beta_iters=0,
                                merge_within=0.1, seed=4)
    gen = torch.Generator().manual_seed(0)
    far = clustered(torch.eye(8)[:1], N, 0.01, gen)
    gmm.update(far)
    # pair (40, 41) far from every row, dist apart
    base = -torch.eye(8)[0]
    plant(gmm, 40, base, 1.0)
    plant(gmm, 41, at_distance(base, torch.eye(8)[1], dist), 1.0)
    assert (distance64(gmm.mu[40], gmm.mu[41]) < 0.1) == merges
    # as if every mean had been checked with room to spare (the pair was
    # put there by hand): no mean is overdrawn, only the sweep finds it
    gmm.merge_slack.fill_(1.0)
    merged_at = None
    for _ in range(40):
        t = int(gmm.num_updates)
        block = maintenance.sweep_block(t, K, N).tolist()
        out = gmm.update(clustered(torch.eye(8)[:1], N, 0.01, gen))
        if out['merged']:
            merged_at = (t, block)
            break
    if not merges:
        assert merged_at is None
        return
    assert merged_at is not None
    t, block = merged_at
    assert 40 in block or 41 in block
    assert t - 1 < 32  # within one sweep period of the planting
    assert distance64(gmm.mu[40], gmm.mu[41]) >= 0.1


def test_sweep_visits_every_mean_once_per_period() -> None:
    for K, N in ((256, 128), (65536, 2048), (10, 1000), (7, 48)):
        size = -(-N // 16)
        period = -(-K // min(K, size))
        seen = torch.cat([maintenance.sweep_block(t, K, N)
                          for t in range(period)])
        assert sorted(seen.tolist()) == list(range(K))
        assert torch.equal(maintenance.sweep_block(period + 3, K, N),
                           maintenance.sweep_block(3, K, N))


def test_in_turn_visits_every_overdrawn_mean_and_only_those() -> None:
    """While the overdrawn set stays put, ``ceil(M / count)`` consecutive
    updates check each of its ``M`` means; never a mean with room left or
    one never checked."""
    gen = torch.Generator().manual_seed(0)
    slack = torch.rand(1000, generator=gen)  # room left
    owing = torch.randperm(1000, generator=gen)[:77]
    slack[owing] = -torch.rand(77, generator=gen) * 0.5 - 1e-6
    slack[torch.randperm(1000, generator=gen)[:5]] = maintenance.UNCHECKED
    owing = ((slack < 0) & (slack > maintenance.UNCHECKED)).nonzero()
    count = 8
    for first in (0, 13):
        seen = torch.cat([maintenance.in_turn(slack, count, t)
                          for t in range(first, first + -(-77 // count))])
        assert set(seen.tolist()) == set(owing.squeeze(1).tolist())
    assert maintenance.in_turn(slack, 500, 3).numel() == owing.numel()
    assert maintenance.in_turn(slack.abs(), 8, 3).numel() == 0


def test_a_slow_drifter_is_checked_in_turn_while_others_hold_the_slots(
) -> None:
    """A close pair whose overdrawn end owes little (it drifted slowly)
    while 40 means overdraw by far more every update (means that receive
    data) and hold the most-overdrawn slots: the in-turn checks find it
    within ceil(41 / ceil(N / 4)) updates; the sweep would come by after
    K = 512 updates."""
    K, D, N = 512, 8, 16
    gmm = OnlineGaussianMixture(K, D, init='uniform', beta_iters=0,
                                maintenance=dict(merge_within=0.1), seed=5)
    gen = torch.Generator().manual_seed(3)
    far = torch.nn.functional.normalize(torch.ones(D), dim=0)
    rows = lambda: torch.nn.functional.normalize(  # noqa: E731
        far + 0.01 * torch.randn(N, D, generator=gen), dim=1)
    gmm.update(rows())  # initialise
    a, b = 300, 301
    eye = torch.eye(D)
    plant(gmm, a, eye[0], 5.0)
    plant(gmm, b, at_distance(eye[0], eye[1], 0.05), 5.0)
    gmm.refit(slice(None))
    gmm.renormalise_weights()
    gmm.merge_slack.fill_(0.0)  # every mean checked, with no room to spare
    gmm.merge_slack[a] = -0.01  # the drifter's small debt
    busy = torch.arange(100, 140)
    assert distance64(gmm.mu[a], gmm.mu[b]) < 0.1
    period = -(-(busy.numel() + 1) // -(-N // maintenance.IN_TURN_DIVISOR))
    for _ in range(period):
        gmm.merge_slack[busy] = -1.0  # hold the most-overdrawn slots
        sweep = maintenance.sweep_block(int(gmm.num_updates), K, N)
        assert not {a, b} & set(sweep.tolist())
        gmm.update(rows())
        if distance64(gmm.mu[a], gmm.mu[b]) >= 0.1:
            break
    assert distance64(gmm.mu[a], gmm.mu[b]) >= 0.1


def close_pairs_brute_force(means: torch.Tensor, eps: float) -> set:
    """Every pair of means closer than ``eps`` (float64)."""
    dist = torch.cdist(means.double(), means.double())
    i, j = torch.nonzero(dist < eps, as_tuple=True)
    return {(a, b) for a, b in zip(i.tolist(), j.tolist()) if a < b}


def test_merge_keeps_means_apart() -> None:
    """More components than clusters, initialised on the data: without
    merging, means pile up on the 5 clusters; with it, merges really
    happen and no pair of means stays within 0.1 for more than one sweep
    period (ceil(K / ceil(N / 16)) = 4 updates), the stated guarantee."""
    centres = unit_rows(5, 16, seed=1)
    period = -(-64 // (256 // maintenance.SWEEP_DIVISOR))
    for within in (0.0, 0.1):
        gen = torch.Generator().manual_seed(0)
        gmm = OnlineGaussianMixture(64, 16, init='sample', init_samples=1,
                                    beta_iters=0, merge_within=within,
                                    seed=1)
        unique, merged, since = [], 0.0, {}
        for t in range(24):
            out = gmm.update(clustered(centres, 256, 0.03, gen))
            merged += out.get('merged', 0.0)
            unique.append(
                prototype_diversity(gmm.means, [0.1])['unique@0.1'])
            assert bool(torch.isfinite(gmm.var).all())
            pairs = close_pairs_brute_force(gmm.means, 0.1)
            since = {p: since.get(p, t) for p in pairs}
            if within:
                assert all(t - t0 < period for t0 in since.values()), since
        assert int(gmm.num_updates) == 24
        if within:
            assert merged > 0
        else:
            assert max(unique) < 50.0  # the data makes duplicates
    assert 'merged' not in OnlineGaussianMixture(4, 3).update(
        unit_rows(8, 3, seed=0))


def test_merge_is_deterministic_and_resumes_exactly() -> None:
    kwargs = dict(init='sample', init_samples=1, seed=3, beta_iters=4,
                  merge_within=0.2, reseed_rate=8 / 48, stale_decay=0.5)
    gen = torch.Generator().manual_seed(0)
    centres = unit_rows(3, 8, seed=5)
    batches = [clustered(centres, 48, 0.05, gen) for _ in range(6)]
    # resumed after the first update: the second merges and re-seeds
    outputs = updates_of_twin_and_resumed(kwargs, batches, 1)
    assert outputs[0]['merged'] > 0 and outputs[0]['reseeded'] > 0


@pytest.mark.parametrize('value', [-0.1, 2.0, float('nan'), '0.1', None])
def test_bad_merge_within(value) -> None:
    with pytest.raises(ValueError, match='merge_within'):
        OnlineGaussianMixture(4, 3, merge_within=value)


def greedy_reference(pairs: list, counts: list) -> tuple:
    """Disjoint pairs, in order, skipping any that touches a taken one."""
    taken, keep, drop = set(), [], []
    for i, j in pairs:
        if i in taken or j in taken:
            continue
        taken.update((i, j))
        heavier_j = counts[j] > counts[i]
        keep.append(j if heavier_j else i)
        drop.append(i if heavier_j else j)
    return keep, drop


@pytest.mark.parametrize('seed', range(20))
def test_disjoint_merges_equal_the_greedy_walk(seed) -> None:
    """The rounds of pairs that come first at both ends pick exactly the
    pairs a walk in order picks (chains, stars and repeated means), the
    heavier end kept (the first on ties)."""
    gen = torch.Generator().manual_seed(seed)
    nodes = int(torch.randint(2, 30, (1, ), generator=gen))
    pairs = torch.randint(nodes, (int(torch.randint(1, 60, (1, ),
                                                    generator=gen)), 2),
                          generator=gen)
    pairs = torch.unique(torch.sort(pairs, dim=1).values, dim=0)
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    if pairs.numel() == 0:
        return
    pairs = pairs[torch.randperm(pairs.shape[0], generator=gen)]
    counts = torch.randint(1, 4, (nodes, ), generator=gen).float()
    keep, drop = maintenance.disjoint_merges(pairs, counts)
    assert (keep.tolist(), drop.tolist()) == greedy_reference(
        pairs.tolist(), counts.tolist())


@pytest.mark.parametrize('seed', range(12))
def test_every_mean_merging_checked_ends_eps_apart(seed,
                                                   monkeypatch) -> None:
    """On a crowded bank (64 means near 3 directions), one merge_close
    that reports nothing unresolved leaves the sweep block's means and
    every mean it moved at least merge_within from all others, and the
    rows' top-two pairs that far apart (brute force, float64)."""
    monkeypatch.setattr(
        maintenance.merge, 'MERGE_ROUNDS', 64)
    gen = torch.Generator().manual_seed(seed)
    K, D = 64, 8
    gmm = OnlineGaussianMixture(K, D, init='uniform', merge_within=0.1,
                                beta_iters=0, seed=seed)
    directions = unit_rows(3, D, seed=seed + 100)
    x = clustered(directions, 64, 0.05, gen)
    gmm.update(x)
    for k in range(K):
        plant(gmm, k, clustered(directions[k % 3:k % 3 + 1], 1, 0.06,
                                gen)[0], float(1 + k % 5))
    gmm.refit(slice(None))
    gmm.renormalise_weights()
    before = gmm.mu.clone()
    fit = fit_of(gmm, x)
    top2 = gmm.log_prob(x).topk(2, dim=1).indices
    result = maintenance.MergeClose(0.1).merge(gmm, x, gen, fit, top2)
    assert result.merged > 0
    if result.unresolved:
        return  # reported: no guarantee claimed
    moved = ((gmm.mu - before).norm(dim=1) > 0).nonzero().squeeze(1)
    sweep = maintenance.sweep_block(int(gmm.num_updates), K, x.shape[0])
    checked = torch.cat([moved, sweep]).unique()
    dist = torch.cdist(gmm.mu.double(), gmm.mu.double())
    dist.fill_diagonal_(math.inf)
    assert float(dist[checked].min()) >= 0.1  # against every other mean
    assert float(dist[top2[:, 0], top2[:, 1]].min()) >= 0.1


def test_a_mean_that_drifts_next_to_one_no_row_chooses_is_merged() -> None:
    """Component A (broad, prior count) takes a cluster of rows and its
    M-step moves it within 0.05 of B, a stale mean of huge variance that
    no row ranks among its two most likely (their top two are A and C),
    outside this update's sweep block: the move overdraws A's slack, merging
    checks the most overdrawn means, so the pair merges in the same update
    (before, it stayed until the sweep came by: K / ceil(N / 16) = 64
    updates here)."""
    D, K = 8, 64
    gmm = OnlineGaussianMixture(K, D, init='uniform', beta_iters=0,
                                merge_within=0.1, seed=5)
    gmm.update(unit_rows(16, D, seed=1))  # initialise (update 0)
    eye = torch.eye(D)
    q = eye[0]
    near_q = at_distance(q, eye[1], 0.04)
    a, b, c = 5, 9, 20
    plant(gmm, a, at_distance(q, eye[2], 0.3), 1.0, var=0.02)
    plant(gmm, b, near_q, 100.0, var=10.0)
    plant(gmm, c, at_distance(q, eye[3], 0.2), 10.0, var=1e-3)
    gmm.merge_slack[[a, b, c]] = 0.0  # planted: no room known
    gmm.refit(slice(None))
    gmm.renormalise_weights()
    x = torch.nn.functional.normalize(
        q + 1e-3 * torch.randn(16, D, generator=torch.Generator()
                               .manual_seed(0)), dim=1)
    top2 = gmm.log_prob(x).topk(2, dim=1).indices
    assert set(top2.flatten().tolist()) == {a, c}  # B is nobody's choice
    sweep = maintenance.sweep_block(int(gmm.num_updates), K, 16).tolist()
    assert a not in sweep and b not in sweep
    out = gmm.update(x)
    assert out['merged'] >= 1
    assert min_distance(gmm.means) >= 0.1


def slack_violations(gmm: OnlineGaussianMixture) -> int:
    """Pairs of means with slack left (``>= 0``) that sit closer than
    ``merge_within + s_i + s_j`` (brute force, float64; 1e-6 for fp32)."""
    mu = torch.nn.functional.normalize(gmm.mu.double(), dim=1)
    dist = torch.cdist(mu, mu)
    dist.fill_diagonal_(math.inf)
    slack = gmm.merge_slack.double()
    room = 0.1 + slack.unsqueeze(1) + slack.unsqueeze(0)
    kept = (slack >= 0).unsqueeze(1) & (slack >= 0).unsqueeze(0)
    return int((kept & (dist < room - 1e-6)).sum())


def test_means_with_slack_left_keep_their_room_over_updates() -> None:
    """Over 40 updates with every option on (re-seeds, merges, stale
    decay), every two means with slack left sit at least ``merge_within +
    s_i + s_j`` apart after each update: the M-step's moves are taken from
    the slack and a check gives each mean only the room it has."""
    gen = torch.Generator().manual_seed(0)
    K, D = 64, 8
    gmm = OnlineGaussianMixture(K, D, init='uniform', beta_iters=0,
                                merge_within=0.1, reseed_rate=1 / 8,
                                stale_decay=0.04, seed=1)
    directions = unit_rows(4, D, seed=7)
    checked = 0
    for _ in range(40):
        gmm.update(clustered(directions, 32, 0.1, gen))
        assert slack_violations(gmm) == 0
        checked += int((gmm.merge_slack > 0).sum())
    assert checked > 40  # the slack is in use, not all overdrawn


def test_a_pair_drifting_slowly_together_is_merged_when_it_crosses() -> None:
    """Means A and B, 0.16 apart and no row's choice, drift 0.006 each
    towards each other per update while three far means move 0.01 per
    update (more than A and B: the most moved means are not the ones to
    check); the M-steps use up A's and B's slack, so they are checked and
    merge in the update that brings them within 0.1 -- long before the
    sweep reaches them (256 updates)."""
    K, D, N = 256, 32, 16
    eye = torch.eye(D)
    gmm = OnlineGaussianMixture(K, D, init='uniform', beta_iters=0,
                                merge_within=0.1, seed=3)
    gmm.update(clustered(eye[:1], N, 1e-3, torch.Generator().manual_seed(0)))
    a, b, busy = 200, 201, (150, 160, 170)
    c = int(gmm.acc_count.argmax())  # took the rows: all of them from now
    plant(gmm, c, gmm.mu[c].clone(), 1e6)
    x = gmm.mu[c].expand(N, D) + 1e-4 * torch.randn(
        N, D, generator=torch.Generator().manual_seed(1))
    start_a = torch.nn.functional.normalize(eye[1] + eye[2], dim=0)
    towards = torch.nn.functional.normalize(eye[3] - eye[4], dim=0)
    start_b = at_distance(start_a, towards, 0.16)
    plant(gmm, a, start_a, 1.0)
    plant(gmm, b, start_b, 1.0)
    start = {k: gmm.mu[k].clone() for k in busy}
    assert min_distance(gmm.mu) > 0.15
    maintenance.nearest_pairs(gmm.mu, torch.arange(K), maintenance.gap_of(0.1),
                              gmm.merge_slack)  # every mean checked
    assert all(float(gmm.merge_slack[k]) > 0.1 for k in busy)

    def aim(k, target):  # statistics whose M-step puts mean k at target
        gmm.acc_sum[k] = target * gmm.acc_count[k]
        gmm.acc_sq_sum[k] = (target * target + 0.01) * gmm.acc_count[k]

    for step in range(1, 11):
        assert not {a, b} & set(maintenance.sweep_block(
            int(gmm.num_updates), K, N).tolist())
        aim(a, at_distance(start_a, towards, 0.006 * step))
        aim(b, at_distance(start_a, towards, 0.16 - 0.006 * step))
        for k in busy:
            side = torch.nn.functional.normalize(
                eye[5] - (eye[5] @ start[k]) * start[k], dim=0)
            aim(k, at_distance(start[k], side, 0.01 * step))
        out = gmm.update(x)
        assert min_distance(gmm.mu) >= 0.1, step
        if out['merged']:
            assert 0.16 - 0.012 * step < 0.1  # merged once within eps
            return
    raise AssertionError('A and B were never merged')


def test_a_checkpoint_without_merge_slack_loads_with_no_mean_checked() -> None:
    """State saved before the slack existed (0.2.0) loads strictly, every
    mean unchecked, and the checkpoint check does not call it a misfit."""
    from gmproto_mm.engine.checkpoint_check import checkpoint_mismatches
    gmm = planted_pair()
    gmm.update(unit_rows(32, 16, seed=1))
    state = gmm.state_dict()
    del state['merge_slack']
    fresh = OnlineGaussianMixture(8, 16, init='uniform', beta_iters=0,
                                  merge_within=0.1, seed=2)
    fresh.merge_slack.fill_(0.5)
    fresh.load_state_dict(state)
    assert torch.equal(fresh.mu, gmm.mu)
    assert bool((fresh.merge_slack == maintenance.UNCHECKED).all())
    assert checkpoint_mismatches(fresh, state) == []
    del state['mu']
    assert checkpoint_mismatches(fresh, state)  # a real gap still counts


def test_every_mean_gets_its_room_within_the_first_k_rows() -> None:
    """Merging checks up to ``N`` never-checked means per update (besides
    its other checks, which reach 1 + 2 means here): after ``K / N = 4``
    updates no mean is left without a room (with none, its first move
    would overdraw it), and every two means with slack left keep it."""
    K, D, N = 64, 8, 16
    gmm = OnlineGaussianMixture(K, D, init='uniform', beta_iters=0, seed=1,
                                maintenance=dict(merge_within=0.1))
    x = unit_rows(N, D, seed=3)
    gmm.update(x)
    assert int((gmm.merge_slack <= maintenance.UNCHECKED).sum()) <= K - N
    for _ in range(K // N - 1):
        gmm.update(x)
    assert not bool((gmm.merge_slack <= maintenance.UNCHECKED).any())
    assert slack_violations(gmm) == 0


def test_never_checked_means_that_moved_farthest_come_first() -> None:
    """A never-checked mean's slack starts at UNCHECKED and loses its moves
    like any other: ``never_checked`` takes the farthest moved first, and
    ``overdrawn`` only means checked before (slack in (UNCHECKED, 0))."""
    u = maintenance.UNCHECKED
    slack = torch.tensor([u, u - 0.5, -1.0, u - 0.2, 0.3, u - 2.0, -0.1])
    assert maintenance.never_checked(slack, 2).tolist() == [5, 1]
    assert maintenance.never_checked(slack, 10).tolist() == [5, 1, 3, 0]
    assert maintenance.overdrawn(slack, 10).tolist() == [2, 6]
    assert maintenance.overdrawn(slack, 1).tolist() == [2]
