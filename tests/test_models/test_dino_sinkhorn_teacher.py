"""DINOLoss(teacher_balancing='sinkhorn'): an equal-partition teacher."""
import pytest
import torch
from mmpretrain.registry import MODELS


def plain_sinkhorn(logits: torch.Tensor, temp: float,
                   iterations: int) -> torch.Tensor:
    """DINOv2's sinkhorn_knopp_teacher, written plainly in float64."""
    q = torch.exp(logits.double() / temp).t()  # (K, B)
    num_k, num_b = q.shape
    q /= q.sum()
    for _ in range(iterations):
        q /= q.sum(dim=1, keepdim=True) * num_k
        q /= q.sum(dim=0, keepdim=True) * num_b
    return (q * num_b).t()


def test_sinkhorn_teacher_matches_reference_and_balances():
    loss = MODELS.build(dict(type='DINOLoss', num_prototypes=5,
                             warmup_teacher_temp_epochs=0, teacher_temp=0.2,
                             teacher_balancing='sinkhorn',
                             sinkhorn_iterations=50))
    gen = torch.Generator().manual_seed(0)
    # every sample prefers prototype 0: a centred softmax would follow it
    teacher = [torch.randn(4, 5, generator=gen) + torch.tensor(
        [3., 0, 0, 0, 0]) for _ in range(2)]
    student = [torch.randn(4, 5, generator=gen) for _ in range(3)]
    targets = loss.teacher_targets(teacher)
    expected = plain_sinkhorn(torch.cat(teacher), 0.2, 50)
    torch.testing.assert_close(torch.cat(targets).double(), expected,
                               rtol=1e-5, atol=1e-6)
    # rows are distributions, columns get equal shares of the 8 samples
    torch.testing.assert_close(torch.cat(targets).sum(1), torch.ones(8))
    torch.testing.assert_close(torch.cat(targets).sum(0),
                               torch.full((5, ), 8 / 5), rtol=1e-3, atol=0)
    got = loss(student, teacher)
    ref, pairs = 0., 0
    for i, target in enumerate(targets):
        for j, s in enumerate(student):
            if i != j:
                ref += -(target * torch.log_softmax(s / 0.1, -1)).sum(-1).mean()
                pairs += 1
    torch.testing.assert_close(got, ref / pairs)


def test_center_teacher_is_the_default_and_differs():
    gen = torch.Generator().manual_seed(1)
    teacher = [torch.randn(4, 5, generator=gen) + torch.tensor(
        [3., 0, 0, 0, 0]) for _ in range(2)]
    center = MODELS.build(dict(type='DINOLoss', num_prototypes=5,
                               warmup_teacher_temp_epochs=0))
    assert center.teacher_balancing == 'center'
    balanced = MODELS.build(dict(type='DINOLoss', num_prototypes=5,
                                 warmup_teacher_temp_epochs=0,
                                 teacher_balancing='sinkhorn'))
    share = [torch.cat(m.teacher_targets(teacher))[:, 0].mean()
             for m in (center, balanced)]
    # the centred softmax follows the common preference (the center starts
    # at 0); three Sinkhorn iterations bring it near the equal share 1 / 5
    assert share[0] > 0.8 and share[1] < 0.3


@pytest.mark.parametrize('kwargs, match', [
    (dict(teacher_balancing='sk'), 'teacher_balancing'),
    (dict(sinkhorn_iterations=0), 'sinkhorn_iterations'),
])
def test_bad_balancing_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MODELS.build(dict(type='DINOLoss', num_prototypes=5, **kwargs))
