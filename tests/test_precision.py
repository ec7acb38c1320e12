"""Full-precision fp32 matmuls (``gmproto_mm.precision``) on every torch
the package admits, and the EM step and the collapse metric under a
process-wide reduced fp32 matmul precision."""
import pytest
import torch

from gmproto_mm import precision
from gmproto_mm.evaluation.functional import diversity, prototype_diversity
from gmproto_mm.models.mixture import numerics, online_em
from gmproto_mm.models.mixture.online_em import OnlineGaussianMixture
from tests.test_models.test_online_em import clustered, unit_rows

CPU = torch.device('cpu')


@pytest.fixture(autouse=True)
def restore_matmul_precision():
    """Every setting these tests change, restored after each."""
    backends = precision._per_backend_matmuls()
    saved = [b.fp32_precision for b in backends]
    yield
    for backend, value in zip(backends, saved):
        backend.fp32_precision = value
    torch.backends.fp32_precision = 'none'


def test_guard_sets_both_backends_and_restores_them() -> None:
    cuda, mkldnn = precision._per_backend_matmuls()
    cuda.fp32_precision, mkldnn.fp32_precision = 'tf32', 'bf16'
    assert not precision.fp32_matmuls_are_ieee(CPU)
    assert not precision.fp32_matmuls_are_ieee(torch.device('cuda'))
    with pytest.raises(KeyError):
        with precision.ieee_fp32_matmuls():
            assert (cuda.fp32_precision, mkldnn.fp32_precision) == \
                ('ieee', 'ieee')
            assert precision.fp32_matmuls_are_ieee(CPU)
            raise KeyError('restored on an error too')
    assert (cuda.fp32_precision, mkldnn.fp32_precision) == ('tf32', 'bf16')


def test_guard_on_a_torch_without_the_per_backend_api(monkeypatch) -> None:
    """torch < 2.9 has one process-wide setting: the guard sets it to
    'highest' and restores it."""
    monkeypatch.setattr(precision, '_per_backend_matmuls', lambda: None)
    torch.set_float32_matmul_precision('medium')
    assert not precision.fp32_matmuls_are_ieee(CPU)
    with precision.ieee_fp32_matmuls():
        assert torch.get_float32_matmul_precision() == 'highest'
        assert precision.fp32_matmuls_are_ieee(CPU)
    assert torch.get_float32_matmul_precision() == 'medium'
    torch.set_float32_matmul_precision('highest')


def test_inherited_setting_counts() -> None:
    """'none' on a backend inherits the process-wide flag."""
    torch.backends.fp32_precision = 'tf32'
    _, mkldnn = precision._per_backend_matmuls()
    mkldnn.fp32_precision = 'none'
    assert not precision.fp32_matmuls_are_ieee(CPU)
    torch.backends.fp32_precision = 'none'
    assert precision.fp32_matmuls_are_ieee(CPU)


def test_em_step_is_the_ieee_step_under_medium_precision(monkeypatch) -> None:
    """``torch.set_float32_matmul_precision('medium')`` lets oneDNN run
    fp32 matmuls in bf16 on CPUs that have it (and CUDA in TF32): the EM
    step still runs in IEEE fp32 and gives the 'highest' step bit for
    bit."""
    gen = torch.Generator().manual_seed(0)
    centres = unit_rows(5, 64, seed=1)
    batches = [clustered(centres, 256, 0.05, gen) for _ in range(3)]
    seen = []
    features = numerics.features
    monkeypatch.setattr(
        numerics, 'features',
        lambda x: seen.append(precision.fp32_matmuls_are_ieee(CPU))
        or features(x))
    states = {}
    for setting in ('highest', 'medium'):
        torch.set_float32_matmul_precision(setting)
        gmm = OnlineGaussianMixture(32, 64, min_var=1e-4, init_samples=1,
                                    merge_within=0.1, reseed_rate=1 / 32)
        for x in batches:
            gmm.update(x)
        states[setting] = gmm.state_dict()
    torch.set_float32_matmul_precision('highest')
    assert seen and all(seen)
    for key, value in states['highest'].items():
        assert torch.equal(value, states['medium'][key]), key


def test_collapse_metric_under_reduced_or_mixed_settings() -> None:
    """The metric screens in float64 when fp32 matmuls may be reduced, and
    reads the settings without the error torch >= 2.9 raises for
    ``get_float32_matmul_precision()`` once the per-backend API was used
    (a user who set ``torch.backends.cuda.matmul.fp32_precision``)."""
    cuda, mkldnn = precision._per_backend_matmuls()
    means = torch.nn.functional.normalize(torch.randn(300, 16), dim=1)
    means[1] = torch.nn.functional.normalize(means[0] + 0.001, dim=0)
    expected = prototype_diversity(means, [0.05, 0.5])
    cuda.fp32_precision = 'tf32'
    assert diversity._similarity_dtype(CPU) == torch.float32
    assert prototype_diversity(means, [0.05, 0.5]) == expected
    mkldnn.fp32_precision = 'bf16'
    assert diversity._similarity_dtype(CPU) == torch.float64
    assert prototype_diversity(means, [0.05, 0.5]) == expected
