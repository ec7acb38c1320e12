"""Low precision: the EM step from fp16 / bf16 / autocast embeddings, and
one DINO training step of each head under CPU bf16 autocast."""
import copy
from contextlib import contextmanager
from typing import Dict

import pytest
import torch
from mmengine.optim import OptimWrapper

from gmproto_mm.models.utils import attach_em_updater
from gmproto_mm.models.mixture.online_em import OnlineGaussianMixture
from tests.test_models.test_dino import multicrop, tiny_dino
from tests.test_models.test_online_em import (FLOAT_KEYS, clustered,
                                               reference_update, unit_rows)

# unit roundoff u (half the gap between 1 and the next number): rounding a
# value v to the dtype changes it by at most u * |v|
UNIT_ROUNDOFF = {torch.bfloat16: 2.0**-8, torch.float16: 2.0**-11}


def fitted_gmm() -> OnlineGaussianMixture:
    """A mixture after three fp32 EM steps on clustered data (beta < 1)."""
    gen = torch.Generator().manual_seed(0)
    centres = unit_rows(5, 16, seed=1)
    gmm = OnlineGaussianMixture(8, 16, forgetting=0.05, beta_iters=4)
    for _ in range(3):
        gmm.update(clustered(centres, 64, 0.3, gen))
    return gmm


def step(gmm: OnlineGaussianMixture, x: torch.Tensor,
         autocast: bool = False) -> Dict[str, torch.Tensor]:
    """The state after one update of a copy of ``gmm`` on ``x``."""
    gmm = copy.deepcopy(gmm)
    with torch.autocast('cpu', dtype=torch.bfloat16, enabled=autocast):
        gmm.update(x)
    return {k: v.clone() for k, v in gmm.state_dict().items()}


@pytest.mark.parametrize('dtype', [torch.bfloat16, torch.float16])
def test_em_step_from_low_precision_input(dtype: torch.dtype) -> None:
    """``update`` casts its input to fp32 before anything else, so the
    step from ``x.to(dtype)`` is the fp32 step from ``x.to(dtype).float()``
    bit for bit. Against fp32 ``x`` the only difference is the input's
    rounding (each coordinate moves by at most ``u * |x|``) carried through
    the step: it equals what exact (float64) arithmetic makes of the same
    rounding, up to the fp32 arithmetic error of the step (1e-5, as in
    test_update_matches_reference), and it stays below ``u`` times each
    quantity's magnitude (the step averages and sums rows of x and x^2
    weighted by responsibilities that move smoothly with x at beta < 1;
    measured: at most 0.15 u)."""
    gmm = fitted_gmm()
    gen = torch.Generator().manual_seed(7)
    x = clustered(unit_rows(5, 16, seed=1), 64, 0.3, gen)
    low = x.to(dtype)
    got = step(gmm, low)
    assert all(got[k].dtype == torch.float32 for k in FLOAT_KEYS)
    same = step(gmm, low.float())
    for key in got:
        assert torch.equal(got[key], same[key]), key
    fp32 = step(gmm, x)
    u = UNIT_ROUNDOFF[dtype]
    exact = reference_update(gmm.state_dict(), x, gmm.beta, 0.05, 1e-4)
    exact_low = reference_update(gmm.state_dict(), low.double(), gmm.beta,
                                 0.05, 1e-4)
    for key in FLOAT_KEYS:
        change = (got[key] - fp32[key]).double()
        assert change.abs().max() > 0, key  # the rounding did reach it
        torch.testing.assert_close(change, exact_low[key] - exact[key],
                                   rtol=0, atol=1e-5, msg=key)
        assert change.abs().max() <= u * fp32[key].abs().max(), key


def test_em_step_under_autocast_is_the_fp32_step() -> None:
    """Autocast is off inside ``update``: an fp32 batch under bf16 autocast
    gives the fp32 step bit for bit, and embeddings an autocast layer made
    (bf16) give the fp32 step of their fp32 copy."""
    gmm = fitted_gmm()
    gen = torch.Generator().manual_seed(8)
    x = clustered(unit_rows(5, 16, seed=1), 64, 0.3, gen)
    plain = step(gmm, x)
    for key, value in step(gmm, x, autocast=True).items():
        assert torch.equal(value, plain[key]), key
    layer = torch.nn.Linear(16, 16)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        made = layer(x)
    assert made.dtype == torch.bfloat16
    expected = step(gmm, made.float())
    for key, value in step(gmm, made, autocast=True).items():
        assert torch.equal(value, expected[key]), key


class CpuBf16OptimWrapper(OptimWrapper):
    """What mmengine's ``AmpOptimWrapper`` does (it needs a GPU): the
    forward runs under autocast, the backward and the step outside it."""

    @contextmanager
    def optim_context(self, model: torch.nn.Module):
        with super().optim_context(model), \
                torch.autocast('cpu', dtype=torch.bfloat16):
            yield


@pytest.mark.parametrize('head', ['DINOHead', 'DecoupledGMMHead'])
def test_dino_step_under_bf16_autocast(head: str) -> None:
    torch.manual_seed(0)
    kwargs = dict(type=head, in_channels=16, num_prototypes=32)
    if head == 'DecoupledGMMHead':
        kwargs['gmm'] = dict(init_samples=1)  # EM from the first batch on
    model = tiny_dino(head=kwargs)
    attach_em_updater(model, 'this test')  # it runs EM itself below
    batch = dict(inputs=multicrop(batch=4), data_samples=None)
    # the same first step in fp32, on a copy (a step moves the teacher,
    # the center and the cache)
    fp32_loss = copy.deepcopy(model).loss(batch['inputs'], None)['loss']
    dtypes = []
    model.neck.register_forward_hook(
        lambda module, args, out: dtypes.append(out[0].dtype))
    before = [p.detach().clone() for p in model.parameters()]
    optim = CpuBf16OptimWrapper(torch.optim.AdamW(model.parameters(), 1e-3))
    log_vars = model.train_step(batch, optim)
    assert dtypes and set(dtypes) == {torch.bfloat16}  # autocast was on
    loss = log_vars['loss'].item()
    assert torch.isfinite(log_vars['loss'])
    # bf16 matmuls move the loss by a few roundings (u = 2^-8 = 0.4 %; measured
    # 0.27 %), not more
    assert loss == pytest.approx(fp32_loss.item(), rel=0.01)
    after = list(model.parameters())
    assert all(torch.isfinite(p).all() for p in after)
    assert any(not torch.equal(a, b) for a, b in zip(after, before))
    assert model.head.loss_module.center.dtype == torch.float32
    if head == 'DecoupledGMMHead':
        bank = model.head.em_bank
        rows = bank.pop_cached_embeddings()
        assert rows.shape == (2 * 4, 16) and rows.dtype == torch.float32
        gmm = model.head.gmm
        stats = gmm.update(rows)
        assert bool(gmm.initialized) and int(gmm.num_updates) == 1
        assert all(torch.isfinite(torch.tensor(v)) for v in stats.values())
        for key in FLOAT_KEYS:
            value = getattr(gmm, key)
            assert value.dtype == torch.float32, key
            assert torch.isfinite(value).all(), key


class CpuFp16OptimWrapper(OptimWrapper):
    """The forward under fp16 autocast, as mmengine's ``AmpOptimWrapper``
    with ``dtype='float16'`` (which needs a GPU)."""

    @contextmanager
    def optim_context(self, model: torch.nn.Module):
        with super().optim_context(model), \
                torch.autocast('cpu', dtype=torch.float16):
            yield


def test_fp16_overflow_skips_the_em_update_and_keeps_the_state() -> None:
    """An fp16 overflow in the teacher (a batch of huge pixels under fp16
    autocast) gives NaN/Inf teacher embeddings. The forward does not raise
    (posterior targets fall back to the loss's own NaN loss, which AMP's
    loss scaler would skip), OnlineEMHook skips the EM update and logs
    ``em_skipped``, the mixture and the DINO center are bit for bit what
    they were; a finite batch updates again; only ``max_skips_in_a_row``
    overflows in a row raise, naming bf16 as the fix."""
    from types import SimpleNamespace

    from mmengine.logging import MessageHub, MMLogger

    from gmproto_mm.engine.hooks import OnlineEMHook
    torch.manual_seed(0)
    model = tiny_dino(head=dict(
        type='DecoupledGMMHead', in_channels=16, num_prototypes=32,
        teacher_targets='responsibilities',
        gmm=dict(init='uniform', merge_within=0.1, reseed_rate=1 / 8)))
    runner = SimpleNamespace(
        model=model, iter=0, max_iters=100,
        optim_wrapper=SimpleNamespace(),
        message_hub=MessageHub.get_instance('test_fp16_overflow'),
        logger=MMLogger.get_instance('test_fp16_overflow'))
    runner.message_hub.update_info('max_iters', runner.max_iters)
    hook = OnlineEMHook(max_skips_in_a_row=3)
    hook.before_train(runner)
    optim = CpuFp16OptimWrapper(torch.optim.SGD(model.parameters(), 0.0))
    gmm, center = model.head.gmm, model.head.loss_module.center

    def step(scale: float) -> dict:
        views = [v * scale for v in multicrop(batch=4)]
        with optim.optim_context(model):
            loss = model.loss(views, None)['loss']
        hook.after_train_iter(runner, runner.iter)
        runner.iter += 1
        return dict(loss=loss)

    assert torch.isfinite(step(1.0)['loss'])  # initialises, updates
    before = {k: v.clone() for k, v in gmm.state_dict().items()}
    center_before = center.clone()
    for skips in (1, 2):
        assert not torch.isfinite(step(1e6)['loss'])
        for key, value in gmm.state_dict().items():
            assert torch.equal(value, before[key]), key
        assert torch.equal(center, center_before)
        assert runner.message_hub.get_scalar(
            'train/em_skipped').current() == skips
    assert torch.isfinite(step(1.0)['loss'])  # the run of skips ends
    assert int(gmm.num_updates) == int(before['num_updates']) + 1
    assert runner.message_hub.get_scalar('train/em_skipped').current() == 2
    step(1e6)
    step(1e6)
    with pytest.raises(RuntimeError, match=r"3 EM updates in a row.*bf16"):
        step(1e6)
