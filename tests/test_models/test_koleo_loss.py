"""KoLeo on prototypes: value and gradient against the plain formula."""
import pytest
import torch

from gmproto_mm.models.losses.koleo_loss import koleo_prototype_loss


def reference_koleo(prototypes: torch.Tensor) -> torch.Tensor:
    """``-1/K sum_k log min_{j != k} ||w_k - w_j||`` with the full
    ``(K, K)`` distance matrix, in float64 (w: unit-norm rows)."""
    w = prototypes / prototypes.norm(dim=1, keepdim=True)
    dist = (w[:, None] - w[None]).norm(dim=-1)
    dist = dist + torch.diag(torch.full((w.shape[0], ), float('inf'),
                                        dtype=w.dtype))
    return -torch.log(dist.min(dim=1).values).mean()


@pytest.mark.parametrize('block_size', [4096, 3])  # one block; ragged ones
def test_value_and_gradient_match_the_formula(block_size: int) -> None:
    gen = torch.Generator().manual_seed(0)
    base = torch.randn(10, 5, generator=gen)
    base[7] = base[2] + 0.01 * torch.randn(5, generator=gen)  # a near pair
    got_w = base.clone().requires_grad_(True)
    got = koleo_prototype_loss(got_w, block_size=block_size)
    got.backward()
    ref_w = base.double().requires_grad_(True)
    expected = reference_koleo(ref_w)
    expected.backward()
    assert got.dtype == torch.float32
    torch.testing.assert_close(got.double(), expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(got_w.grad.double(), ref_w.grad, rtol=1e-4,
                               atol=1e-5)
    # the near pair dominates: pushing them apart lowers the loss
    assert got_w.grad[2].norm() > 10 * got_w.grad[0].norm()


def test_fp32_under_autocast_and_bad_shape() -> None:
    w = torch.randn(6, 4).bfloat16().requires_grad_(True)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        loss = koleo_prototype_loss(w)
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss.double(), reference_koleo(
        w.detach().double()), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match='K >= 2'):
        koleo_prototype_loss(torch.randn(1, 4))
