"""Tests of the online-EM Gaussian mixture (the prototype step)."""
import copy
import math
from typing import Callable, Dict, List, Optional

import pytest
import torch
import torch.nn.functional as F

from gmproto_mm.models.mixture.online_em import OnlineGaussianMixture
from gmproto_mm.models.mixture.initialisation import initialise

STATE_KEYS = ('pi', 'mu', 'var', 'acc_count', 'acc_sum', 'acc_sq_sum',
              'num_updates', 'initialized', 'merge_slack')
FLOAT_KEYS = STATE_KEYS[:6]


def unit_rows(n: int, d: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(n, d, generator=gen), dim=1)


def clustered(centres: torch.Tensor, n: int, noise: float,
              gen: torch.Generator) -> torch.Tensor:
    """``n`` unit vectors around random rows of ``centres``."""
    idx = torch.randint(centres.shape[0], (n, ), generator=gen)
    x = centres[idx] + noise * torch.randn(n, centres.shape[1], generator=gen)
    return F.normalize(x, dim=1)


def row_fit_of(gmm: OnlineGaussianMixture, x: torch.Tensor,
               beta: float = 1.0):
    """What the E-step hands the options for batch ``x``: each row's
    maximum of ``beta log p_nk`` (without the 2 pi constant, as the E-step)
    and its softmax normaliser."""
    from gmproto_mm.models.mixture.numerics import log_2pi_term
    from gmproto_mm.models.mixture.online_em import RowFit
    log_p = beta * (gmm.log_prob(x) - log_2pi_term(gmm.dim))
    row_max = log_p.amax(dim=1)
    return RowFit(row_max, (log_p - row_max[:, None]).exp().sum(dim=1),
                   beta)


def switch_on(gmm: OnlineGaussianMixture, **maintenance) -> None:
    """Give ``gmm`` the strategies of ``maintenance=dict(...)`` from now
    on (as if built with them)."""
    from gmproto_mm.models.mixture.maintenance import build_maintenance
    gmm.strategies = build_maintenance(maintenance, noise=gmm.init_noise)


def reseed_start_of(gmm: OnlineGaussianMixture):
    """The resolved ``reseed_start`` of ``gmm``'s re-seeding."""
    from gmproto_mm.models.mixture import ReseedIdle
    return next(s.start for s in gmm.strategies
                if isinstance(s, ReseedIdle))


def snapshot(gmm: OnlineGaussianMixture) -> Dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in gmm.state_dict().items()}


def assert_state_equal(a: Dict[str, torch.Tensor],
                       b: Dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert a[key].dtype == b[key].dtype, key
        assert torch.equal(a[key], b[key]), key


def updates_of_twin_and_resumed(
        kwargs: dict, batches: List[torch.Tensor], split: int,
        before_update: Optional[Callable] = None) -> List[dict]:
    """Run two mixtures of ``kwargs`` (K = 32, D = 8) on ``batches[:split]``
    (equal outputs and states asserted), load the first one's state into a
    third, continue both on the rest and assert equal outputs and states
    after every update; ``before_update(gmm)`` edits both alike first.

    Returns:
        List[dict]: The outputs of the updates after ``split``.
    """
    original = OnlineGaussianMixture(32, 8, **kwargs)
    twin = OnlineGaussianMixture(32, 8, **kwargs)
    for x in batches[:split]:
        assert original.update(x) == twin.update(x)
    assert_state_equal(snapshot(original), snapshot(twin))
    restored = OnlineGaussianMixture(32, 8, **kwargs)
    restored.load_state_dict(original.state_dict())
    outputs = []
    for x in batches[split:]:
        if before_update is not None:
            for gmm in (original, restored):
                before_update(gmm)
        a, b = original.update(x), restored.update(x)
        assert a == b
        assert_state_equal(snapshot(original), snapshot(restored))
        outputs.append(a)
    return outputs


def reference_update(state: Dict[str, torch.Tensor], x: torch.Tensor,
                     beta: float, forgetting: float,
                     min_var: float) -> Dict[str, torch.Tensor]:
    """One online EM step written plainly, in float64 (docs/method.md)."""
    s = {k: state[k].double() for k in FLOAT_KEYS}
    x = F.normalize(x.double(), dim=1)
    diff = x[:, None, :] - s['mu'][None]  # (N, K, D)
    log_gauss = -0.5 * (torch.log(2 * math.pi * s['var'])[None] +
                        diff**2 / s['var'][None]).sum(-1)
    log_p = torch.log(s['pi'])[None] + log_gauss  # (N, K)
    r = torch.softmax(beta * log_p, dim=1)
    n_k, s_k, q_k = r.sum(0), r.T @ x, r.T @ x**2
    rho = (1 - forgetting)**n_k
    count = rho * s['acc_count'] + n_k
    acc_sum = rho[:, None] * s['acc_sum'] + s_k
    acc_sq = rho[:, None] * s['acc_sq_sum'] + q_k
    mean = acc_sum / count[:, None]
    return dict(pi=count / count.sum(),
                mu=mean / mean.norm(dim=1, keepdim=True),
                var=(acc_sq / count[:, None] - mean**2).clamp_min(min_var),
                acc_count=count,
                acc_sum=acc_sum,
                acc_sq_sum=acc_sq,
                log_likelihood=torch.logsumexp(log_p, dim=1).mean(),
                resp_max_mean=r.max(dim=1).values.mean())


# ---------------------------------------------------------------- equivalence
@pytest.mark.parametrize('beta_start', [0.4, 1.0])
def test_update_matches_reference(beta_start: float) -> None:
    gen = torch.Generator().manual_seed(0)
    centres = unit_rows(5, 6, seed=1)
    gmm = OnlineGaussianMixture(7,
                                6,
                                forgetting=0.05,
                                beta_start=beta_start,
                                beta_iters=4,
                                min_var=1e-4)
    gmm.update(clustered(centres, 40, 0.3, gen))
    for _ in range(5):
        x = clustered(centres, 40, 0.3, gen) * 1.3  # renormalised inside
        beta = gmm.beta
        expected = reference_update(gmm.state_dict(), x, beta, 0.05, 1e-4)
        stats = gmm.update(x)
        assert stats['beta'] == beta
        for key in FLOAT_KEYS:
            got = getattr(gmm, key)
            assert got.dtype == torch.float32
            torch.testing.assert_close(got.double(),
                                       expected[key],
                                       atol=1e-5,
                                       rtol=1e-5,
                                       msg=lambda m, key=key: f'{key}: {m}')
        assert stats['log_likelihood'] == pytest.approx(
            expected['log_likelihood'].item(), rel=1e-5, abs=1e-4)
        assert stats['resp_max_mean'] == pytest.approx(
            expected['resp_max_mean'].item(), abs=1e-5)
    pi = gmm.weights.double()
    assert stats['effective_components'] == pytest.approx(
        torch.exp(-(pi * pi.log()).sum()).item(), rel=1e-5)
    assert stats['weight_min'] == pytest.approx(pi.min().item())
    assert stats['weight_max'] == pytest.approx(pi.max().item())
    assert gmm.num_updates.item() == 6


def test_log_prob_and_subsampled_log_likelihood() -> None:
    gen = torch.Generator().manual_seed(5)
    centres = unit_rows(4, 8, seed=6)
    gmm = OnlineGaussianMixture(6, 8, beta_start=0.5, beta_iters=10)
    gmm.update(clustered(centres, 100, 0.3, gen))
    x = clustered(centres, 100, 0.3, gen)
    s = {k: v.double() for k, v in gmm.state_dict().items() if k in FLOAT_KEYS}
    expected = (
        torch.log(s['pi'])[None] - 0.5 *
        (torch.log(2 * math.pi * s['var'])[None] +
         (x.double()[:, None] - s['mu'][None])**2 / s['var'][None]).sum(-1))
    torch.testing.assert_close(gmm.log_prob(x).double(),
                               expected,
                               atol=1e-4,
                               rtol=1e-5)
    # While beta < 1 the logged value uses the first 64 rows only.
    stats = gmm.update(x)
    assert stats['beta'] < 1.0
    assert stats['log_likelihood'] == pytest.approx(torch.logsumexp(
        expected[:64], dim=1).mean().item(),
                                                    rel=1e-5)


def test_first_update_initialises_then_steps() -> None:
    x = unit_rows(50, 8, seed=3)
    gmm = OnlineGaussianMixture(5, 8, prior_count=2.0, init='sample')
    assert not gmm.initialized
    fresh = copy.deepcopy(gmm)
    gmm.update(x)
    assert gmm.initialized and gmm.num_updates.item() == 1
    # Redo the initialisation alone and apply the reference step to it.
    initialise(fresh, fresh._prepare(x))
    state = fresh.state_dict()
    torch.testing.assert_close(state['acc_count'], torch.full((5, ), 2.0))
    torch.testing.assert_close(state['acc_sum'], 2.0 * state['mu'])
    torch.testing.assert_close(state['var'][0],
                               x.var(dim=0, correction=0).clamp_min(1e-4))
    expected = reference_update(state, x, 0.3, 0.01, 1e-4)
    for key in FLOAT_KEYS:
        torch.testing.assert_close(getattr(gmm, key).double(),
                                   expected[key],
                                   atol=1e-5,
                                   rtol=1e-5)


def test_responsibilities_and_log_prob() -> None:
    x = unit_rows(30, 6, seed=4)
    gmm = OnlineGaussianMixture(4, 6)
    with pytest.raises(ValueError, match=r'call update\(\) first'):
        gmm.responsibilities(x)
    gmm.update(x)
    before = snapshot(gmm)
    expected = reference_update(gmm.state_dict(), x, 1.0, 0.01, 1e-4)
    r = gmm.responsibilities(x)
    assert r.shape == (30, 4) and r.dtype == torch.float32
    torch.testing.assert_close(r.sum(1), torch.ones(30))
    torch.testing.assert_close(
        r.max(1).values.mean().double(), expected['resp_max_mean'])
    r_half = gmm.responsibilities(x, beta=0.5)
    torch.testing.assert_close(r_half,
                               torch.softmax(0.5 * gmm.log_prob(x), dim=1))
    with pytest.raises(ValueError, match='beta'):
        gmm.responsibilities(x, beta=0.0)
    assert_state_equal(before, snapshot(gmm))


# ------------------------------------------------------------------ behaviour
def test_recovers_well_separated_clusters() -> None:
    gen = torch.Generator().manual_seed(0)
    centres = unit_rows(8, 16, seed=10)
    gmm = OnlineGaussianMixture(12,
                                16,
                                forgetting=0.02,
                                beta_iters=100,
                                min_var=1e-4,
                                seed=1)
    for _ in range(300):
        stats = gmm.update(clustered(centres, 128, 0.05, gen))
    cos = centres @ gmm.means.T  # (8, 12)
    assert (cos.max(dim=1).values > 0.99).all(), cos.max(dim=1).values
    torch.testing.assert_close(gmm.weights.sum(), torch.tensor(1.0))
    assert (gmm.variances >= 1e-4).all()
    torch.testing.assert_close(gmm.means.norm(dim=1), torch.ones(12))
    assert stats['beta'] == 1.0
    assert stats['resp_max_mean'] > 0.9


def far_component_setup() -> OnlineGaussianMixture:
    """K = 3 in D = 4 with data near e0 and component 2 pinned at -e0."""
    gen = torch.Generator().manual_seed(0)
    e0 = torch.eye(4)[:1]
    gmm = OnlineGaussianMixture(3, 4, beta_start=0.3, beta_iters=5)
    gmm.update(clustered(e0, 32, 0.1, gen))
    gmm.mu[2] = -e0[0]
    gmm.var[2] = 1e-4
    gmm.acc_sum[2] = -gmm.acc_count[2] * e0[0]
    gmm.acc_sq_sum[2] = gmm.acc_count[2] * (e0[0]**2 + 1e-4)
    return gmm


def test_zero_responsibility_keeps_statistics_bit_for_bit() -> None:
    gmm = far_component_setup()
    gen = torch.Generator().manual_seed(1)
    x = clustered(torch.eye(4)[:1], 32, 0.1, gen)
    assert gmm.responsibilities(x, beta=gmm.beta)[:, 2].max() < 1e-30
    kept = {
        k: getattr(gmm, k)[2].clone()
        for k in ('acc_count', 'acc_sum', 'acc_sq_sum')
    }
    others = gmm.acc_count[:2].clone()
    gmm.update(x)
    for key, value in kept.items():
        assert torch.equal(getattr(gmm, key)[2], value), key
    assert not torch.equal(gmm.acc_count[:2], others)


def test_far_component_stays_finite_for_many_updates() -> None:
    gmm = far_component_setup()
    gen = torch.Generator().manual_seed(2)
    count = gmm.acc_count[2].clone()
    for _ in range(60):
        gmm.update(clustered(torch.eye(4)[:1], 32, 0.1, gen))
    for key in FLOAT_KEYS:
        assert torch.isfinite(getattr(gmm, key)).all(), key
    torch.testing.assert_close(gmm.means.norm(dim=1), torch.ones(3))
    torch.testing.assert_close(gmm.means[2], -torch.eye(4)[0])
    assert torch.equal(gmm.acc_count[2], count)
    assert gmm.weights[2] > 0


# ----------------------------------------------------------------- annealing
@pytest.mark.parametrize('schedule,t,expected', [
    ('cosine', 0, 0.2),
    ('cosine', 2, 1 - 0.8 * (1 + math.cos(math.pi * 0.2)) / 2),
    ('cosine', 5, 0.6),
    ('cosine', 10, 1.0),
    ('cosine', 11, 1.0),
    ('linear', 0, 0.2),
    ('linear', 2, 0.36),
    ('linear', 9, 0.92),
    ('linear', 10, 1.0),
    ('linear', 1000, 1.0),
])
def test_beta_schedule(schedule: str, t: int, expected: float) -> None:
    gmm = OnlineGaussianMixture(2,
                                3,
                                beta_start=0.2,
                                beta_iters=10,
                                beta_schedule=schedule)
    gmm.num_updates.fill_(t)
    assert gmm.beta == pytest.approx(expected, abs=1e-12)
    if t >= 10:
        assert gmm.beta == 1.0  # exactly


def test_beta_used_by_updates() -> None:
    x = unit_rows(16, 3, seed=0)
    gmm = OnlineGaussianMixture(2,
                                3,
                                beta_start=0.5,
                                beta_iters=3,
                                beta_schedule='linear')
    used = [gmm.update(x)['beta'] for _ in range(5)]
    assert used == pytest.approx([0.5, 0.5 + 0.5 / 3, 0.5 + 1 / 3, 1, 1])
    assert used[3] == 1.0 and used[4] == 1.0
    assert OnlineGaussianMixture(2, 3, beta_iters=0).beta == 1.0


# -------------------------------------------------------------------- resume
def test_state_dict_round_trip_and_identical_continuation() -> None:
    kwargs = dict(forgetting=0.05, beta_iters=10, seed=3)
    gen = torch.Generator().manual_seed(0)
    centres = unit_rows(4, 8, seed=5)
    original = OnlineGaussianMixture(6, 8, **kwargs)
    for _ in range(3):
        original.update(clustered(centres, 20, 0.2, gen))
    state = original.state_dict()
    assert tuple(state.keys()) == STATE_KEYS  # no scratch in checkpoints
    assert state['num_updates'].dtype == torch.int64
    restored = OnlineGaussianMixture(6, 8, **kwargs)
    restored.load_state_dict(state)
    assert_state_equal(snapshot(original), snapshot(restored))
    for _ in range(3):
        x = clustered(centres, 20, 0.2, gen)
        assert original.update(x) == restored.update(x)
        assert_state_equal(snapshot(original), snapshot(restored))
    assert original.beta == restored.beta


# ----------------------------------------------------------- initialisation
@pytest.mark.parametrize('init', ['kmeans++', 'sample', 'uniform'])
def test_same_seed_same_data_same_means(init: str) -> None:
    x = unit_rows(64, 8, seed=7)
    runs = []
    for _ in range(2):
        gmm = OnlineGaussianMixture(10, 8, init=init, seed=11)
        gmm.update(x)
        runs.append(gmm.means.clone())
    assert torch.equal(runs[0], runs[1])
    other = OnlineGaussianMixture(10, 8, init=init, seed=12)
    other.update(x)
    assert not torch.equal(runs[0], other.means)


@pytest.mark.parametrize('init', ['kmeans++', 'sample', 'uniform'])
def test_more_components_than_samples(init: str) -> None:
    x = unit_rows(5, 8, seed=8)
    gmm = OnlineGaussianMixture(40, 8, init=init, init_samples=5)
    gmm.update(x)  # 40 means from 5 rows, then one EM step on them
    assert bool(gmm.initialized) and int(gmm.num_updates) == 1
    mu = gmm.means
    assert torch.isfinite(mu).all()
    torch.testing.assert_close(mu.norm(dim=1), torch.ones(40))
    gap = torch.cdist(mu, mu) + 10 * torch.eye(40)
    assert gap.min() > 0  # duplicates separated by the noise
    for key in FLOAT_KEYS:
        assert torch.isfinite(getattr(gmm, key)).all(), key


def test_kmeans_pp_covers_all_clusters_and_single_sample() -> None:
    gen = torch.Generator().manual_seed(0)
    centres = unit_rows(6, 12, seed=9)
    x = clustered(centres, 60, 0.01, gen)
    gmm = OnlineGaussianMixture(6,
                                12,
                                init='kmeans++',
                                init_noise=0.0,
                                beta_start=1.0,
                                beta_iters=0)
    initialise(gmm, gmm._prepare(x))
    assert ((centres @ gmm.means.T).max(dim=1).values > 0.99).all()
    single = OnlineGaussianMixture(3, 12, init_samples=1)
    single.update(x[:1])  # N = 1: zero data variance, clamped
    assert bool(single.initialized) and int(single.num_updates) == 1
    assert (single.variances >= 1e-4).all()
    assert torch.isfinite(single.means).all()


# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize('initialised', [False, True])
@pytest.mark.parametrize('make_x,match', [
    (lambda: torch.full((4, 6), float('nan')), '24 non-finite'),
    (lambda: torch.ones(4, 6).index_fill_(1, torch.tensor([2]), float('inf')),
     '4 non-finite'),
    (lambda: torch.ones(4, 5), r'\(N, 6\).*got \(4, 5\)'),
    (lambda: torch.ones(6), r'\(N, 6\).*got \(6,\)'),
    (lambda: torch.ones(0, 6), 'empty'),
    (lambda: torch.ones(4, 6).index_fill_(0, torch.tensor([1, 3]), 0.0),
     r'2 all-zero rows \(first: \[1, 3\]\)'),
])
def test_bad_input_raises_and_leaves_state(make_x, match: str,
                                           initialised: bool) -> None:
    gmm = OnlineGaussianMixture(3, 6)
    if initialised:
        gmm.update(unit_rows(10, 6, seed=0))
    before = snapshot(gmm)
    with pytest.raises(ValueError, match=match):
        gmm.update(make_x())
    assert_state_equal(before, snapshot(gmm))
    if initialised:
        with pytest.raises(ValueError, match=match):
            gmm.responsibilities(make_x())


def test_identical_rows_warn_once_naming_the_cause() -> None:
    gmm = OnlineGaussianMixture(3, 6, init_samples=1)
    row = unit_rows(1, 6, seed=0)
    with pytest.warns(UserWarning, match='collapsed to a constant'):
        gmm.update(row.expand(8, 6))
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        gmm.update(row.expand(8, 6))  # once per mixture
        gmm.update(unit_rows(1, 6, seed=1))  # one row is not a batch


def test_min_var_floor_binds_as_in_the_reference() -> None:
    """Clusters far tighter than the floor: every variance the M-step
    computes is below min_var, so the floor decides them all -- equal to
    the float64 reference, and exactly min_var."""
    gen = torch.Generator().manual_seed(0)
    centres = unit_rows(3, 6, seed=1)
    gmm = OnlineGaussianMixture(3, 6, forgetting=0.05, beta_iters=0,
                                min_var=1e-3, init='kmeans++',
                                init_samples=1, prior_count=1e-3)
    gmm.update(clustered(centres, 60, 0.01, gen))
    for _ in range(5):
        x = clustered(centres, 60, 0.01, gen)
        expected = reference_update(gmm.state_dict(), x, 1.0, 0.05, 1e-3)
        gmm.update(x)
        torch.testing.assert_close(gmm.var.double(), expected['var'],
                                   atol=1e-6, rtol=1e-4)
        torch.testing.assert_close(gmm.mu.double(), expected['mu'],
                                   atol=1e-5, rtol=1e-5)
    assert bool((gmm.var == 1e-3).all())  # the floor binds everywhere


def test_non_tensor_input() -> None:
    with pytest.raises(TypeError, match='Tensor'):
        OnlineGaussianMixture(3, 2).update([[1.0, 0.0]])


@pytest.mark.parametrize('kwargs,name', [
    (dict(num_components=0), 'num_components'),
    (dict(num_components=2.5), 'num_components'),
    (dict(dim=0), 'dim'),
    (dict(forgetting=0.0), 'forgetting'),
    (dict(forgetting=1.0), 'forgetting'),
    (dict(beta_start=0.0), 'beta_start'),
    (dict(beta_start=1.5), 'beta_start'),
    (dict(beta_iters=-1), 'beta_iters'),
    (dict(beta_schedule='step'), 'beta_schedule'),
    (dict(min_var=0.0), 'min_var'),
    (dict(init='random'), 'init'),
    (dict(init_noise=-0.1), 'init_noise'),
    (dict(prior_count=0.0), 'prior_count'),
    (dict(prior_count=float('nan')), 'prior_count'),
])
def test_bad_constructor_arguments(kwargs, name: str) -> None:
    args = dict(num_components=4, dim=3)
    args.update(kwargs)
    with pytest.raises(ValueError, match=name):
        OnlineGaussianMixture(**args)


# ----------------------------------------------------------------- precision
@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
def test_low_precision_input_keeps_fp32_state(dtype: torch.dtype) -> None:
    gmm = OnlineGaussianMixture(5, 8)
    for seed in range(3):
        stats = gmm.update(unit_rows(32, 8, seed=seed).to(dtype))
    assert all(math.isfinite(v) for v in stats.values())
    with torch.autocast('cpu', dtype=torch.bfloat16):
        gmm.update(unit_rows(32, 8, seed=9))
        logp = gmm.log_prob(unit_rows(4, 8, seed=10).to(dtype))
    assert logp.dtype == torch.float32
    for key in FLOAT_KEYS:
        value = getattr(gmm, key)
        assert value.dtype == torch.float32, key
        assert torch.isfinite(value).all(), key
    assert gmm.num_updates.dtype == torch.int64


def test_properties_and_repr() -> None:
    gmm = OnlineGaussianMixture(4, 3, beta_schedule='linear')
    assert gmm.means is gmm.mu and gmm.variances is gmm.var
    assert gmm.weights is gmm.pi
    torch.testing.assert_close(gmm.means.norm(dim=1), torch.ones(4))
    text = repr(gmm)
    for part in ('num_components=4', 'dim=3', 'forgetting=0.01', 'linear'):
        assert part in text


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_cuda_matches_cpu_and_restores_tf32_setting() -> None:
    matmul = torch.backends.cuda.matmul
    previous = matmul.fp32_precision
    matmul.fp32_precision = 'tf32'
    try:
        gen = torch.Generator().manual_seed(0)
        centres = unit_rows(5, 32, seed=1)
        cpu = OnlineGaussianMixture(16, 32, min_var=1e-4)
        gpu = copy.deepcopy(cpu).cuda()
        for _ in range(5):
            x = clustered(centres, 64, 0.05, gen)
            cpu.update(x)
            gpu.update(x.cuda())
        assert matmul.fp32_precision == 'tf32'
        for key in FLOAT_KEYS:
            torch.testing.assert_close(getattr(gpu, key).cpu(),
                                       getattr(cpu, key),
                                       atol=1e-4,
                                       rtol=1e-4)
    finally:
        matmul.fp32_precision = previous


def test_initialisation_pools_rows_until_k_when_k_exceeds_batch():
    """K > N: means must come from K distinct rows, not K/N near-copies."""
    from gmproto_mm.evaluation.functional.diversity import prototype_diversity
    torch.manual_seed(0)
    gmm = OnlineGaussianMixture(64, 8, init='sample')
    before = gmm.state_dict()
    stats = gmm.update(torch.randn(16, 8))
    assert stats['init_pooled'] == 16 and not bool(gmm.initialized)
    for key, value in before.items():  # nothing but the pool changed
        assert torch.equal(gmm.state_dict()[key], value), key
    for _ in range(3):
        stats = gmm.update(torch.randn(16, 8))
    assert bool(gmm.initialized) and int(gmm.num_updates) == 1
    assert 'resp_max_mean' in stats
    assert prototype_diversity(gmm.means, (0.025, ))['unique@0.025'] == 100.


def test_kmeans_pp_is_refused_where_it_is_quadratic():
    """k-means++ on K pooled rows is O(K^2 D) sequential work: refused at
    the flagship size, with an error naming the O(K D) alternative; the
    class default ('sample') builds at any size."""
    with pytest.raises(ValueError, match=r"init='sample'") as err:
        OnlineGaussianMixture(65536, 256, init='kmeans++')
    assert '65536 x 65536 x 256' in str(err.value)
    assert OnlineGaussianMixture(65536, 4).init == 'sample'
    OnlineGaussianMixture(1024, 128, init='kmeans++')  # cheap: accepted


def test_kmeans_pp_work_is_bounded_by_the_rows_it_sees(monkeypatch):
    """The construction check counts ``init_samples`` rows, but the pool
    holds every row of the batch that filled it (``init_samples=1``: the
    whole first batch, e.g. iBOT's 60,000 patch rows): k-means++ seeds on
    at most ``max(init_samples, budget / (K D))`` of them, a seeded subset,
    the same on every rank; a pool within that bound is used whole."""
    from gmproto_mm.models.mixture import initialisation
    monkeypatch.setattr(initialisation, 'KMEANS_PP_MAX_WORK', 1 << 14)
    seen = []
    seeding = initialisation.kmeans_pp_indices
    monkeypatch.setattr(
        initialisation, 'kmeans_pp_indices',
        lambda x, k, gen: seen.append(x.clone()) or seeding(x, k, gen))
    K, D = 64, 8  # budget / (K D) = 32 rows
    x = unit_rows(1000, D, seed=3)
    means = []
    for _ in range(2):
        gmm = OnlineGaussianMixture(K, D, init='kmeans++', init_samples=1)
        gmm.update(x)
        means.append(gmm.means.clone())
    assert [s.shape[0] for s in seen] == [32, 32]
    assert K * seen[0].shape[0] * D <= 1 << 14
    assert torch.equal(seen[0], seen[1]) and torch.equal(*means)
    assert (seen[0] @ x.T).max(dim=1).values.min() > 1 - 1e-6  # its rows
    gmm = OnlineGaussianMixture(K, D, init='kmeans++', init_samples=20)
    gmm.update(x[:25])  # within the bound: all 25 pooled rows
    assert seen[-1].shape[0] == 25
    with pytest.raises(ValueError, match="init='sample'"):
        OnlineGaussianMixture(K, D, init='kmeans++', init_samples=33)


def test_init_samples_one_initialises_on_first_batch():
    gmm = OnlineGaussianMixture(64, 8, init_samples=1)
    gmm.update(torch.randn(16, 8))
    assert bool(gmm.initialized)
    with pytest.raises(ValueError, match='init_samples'):
        OnlineGaussianMixture(4, 2, init_samples=0)


def test_schedule_as_a_fraction_of_training() -> None:
    """beta_iters / reseed_start given as fractions of training follow the
    training length set_training_length() gives (OnlineEMHook: from the
    runner's max_iters); ints stay counts; an unresolved fraction refuses
    the first update, naming the fix, and leaves the state untouched."""
    gmm = OnlineGaussianMixture(8, 4, init='uniform', beta_iters=1 / 3,
                                reseed_rate=1 / 8, reseed_start=0.1)
    x = unit_rows(16, 4, seed=0)
    before = snapshot(gmm)
    with pytest.raises(ValueError, match=r'beta_iters=0.333.*'
                       r'set_training_length'):
        gmm.update(x)
    for key, value in gmm.state_dict().items():
        assert torch.equal(value, before[key]), key
    for updates, beta_iters, reseed_start in ((1500, 500, 150),
                                              (6000, 2000, 600)):
        gmm.set_training_length(updates)
        assert (gmm.beta_iters, reseed_start_of(gmm)) == (beta_iters,
                                                      reseed_start)
        assert 'over 0.333333 of training = ' in repr(gmm)
        assert gmm._beta_at(beta_iters // 2) == pytest.approx(0.65)
    fixed = OnlineGaussianMixture(8, 4, beta_iters=500, reseed_rate=1 / 8,
                                  reseed_start=150)
    fixed.set_training_length(6000)
    assert (fixed.beta_iters, reseed_start_of(fixed)) == (500, 150)
    for bad in (1.5, 0.0, -0.1, '0.5', True):
        with pytest.raises(ValueError, match='beta_iters'):
            OnlineGaussianMixture(8, 4, beta_iters=bad)
