"""DecoupledSwAVLoss: its Sinkhorn (marginals, 2 gloo ranks with uneven
data), the swapped-prediction loss against a plain reference, the queue."""
import os.path as osp
import sys

import pytest
import torch
import torch.nn.functional as F

from gmproto_mm.models.losses.decoupled_swav_loss import sinkhorn
from tests.conftest import free_port, run_tool
from tests.test_models.dist_swav_worker import SPLIT, build_loss, global_batch


def reference_sinkhorn(scores: torch.Tensor, iterations: int,
                       epsilon: float) -> torch.Tensor:
    """SwAV's Sinkhorn-Knopp on one process, written plainly in float64:
    rows of Q (prototypes) sum to 1/K, then columns (samples) to 1/B."""
    q = torch.exp(scores.double() / epsilon).t()  # (K, B)
    num_k, num_b = q.shape
    q = q / q.sum()
    for _ in range(iterations):
        q = q / q.sum(dim=1, keepdim=True) / num_k
        q = q / q.sum(dim=0, keepdim=True) / num_b
    return (q * num_b).t()


def reference_loss(x, means, num_views, crops, temperature, epsilon,
                   iterations, queues=None):
    """Swapped prediction, plainly: the codes of view ``c`` (with the
    queue's rows in front for the Sinkhorn) are the targets of every other
    view's softmax(scores / temperature)."""
    x, means = x.double(), means.double()
    batch = x.shape[0] // num_views
    scores = x @ means.t()
    views = [scores[v * batch:(v + 1) * batch] for v in range(num_views)]
    total = 0.
    for i, c in enumerate(crops):
        target = views[c]
        if queues is not None:
            target = torch.cat([queues[i].double() @ means.t(), target])
        codes = reference_sinkhorn(target, iterations, epsilon)[-batch:]
        total += sum(-(codes * torch.log_softmax(views[v] / temperature, 1))
                     .sum(1).mean()
                     for v in range(num_views) if v != c) / (num_views - 1)
    return total / len(crops)


def test_sinkhorn_matches_reference_and_balances_marginals():
    gen = torch.Generator().manual_seed(0)
    scores = F.normalize(torch.randn(12, 8, generator=gen), dim=1) @ \
        F.normalize(torch.randn(4, 8, generator=gen), dim=1).t()  # (B, K)
    codes = sinkhorn(scores, iterations=3, epsilon=0.05)
    torch.testing.assert_close(codes, reference_sinkhorn(scores, 3, 0.05)
                               .float(), rtol=1e-5, atol=1e-6)
    # every sample's code is a distribution (the last step is on columns)
    torch.testing.assert_close(codes.sum(1), torch.ones(12))
    # converged, every prototype receives B / K of the mass: equipartition
    balanced = sinkhorn(scores, iterations=200, epsilon=0.05)
    torch.testing.assert_close(balanced.sum(0), torch.full((4, ), 3.),
                               rtol=1e-4, atol=1e-4)
    assert (codes.sum(0) - 3.).abs().max() > 1e-3  # 3 iterations: not yet
    plain = (scores / 0.05).softmax(1)  # no balancing: far from B / K
    assert (plain.sum(0) - 3.).abs().max() > 0.5


def test_loss_matches_plain_reference():
    gen = torch.Generator().manual_seed(2)
    loss = build_loss()
    loss.epsilon = 0.05  # the default: exp(1 / 0.05) needs the max shift
    x = F.normalize(torch.randn(3 * 5, 4, generator=gen), dim=1)
    got = loss(x)
    expected = reference_loss(x, loss.prototypes, 3, [0, 1], 0.1, 0.05, 3)
    torch.testing.assert_close(got.double(), expected, rtol=1e-5, atol=1e-6)
    # no gradient reaches the prototypes; the embeddings are cached
    assert not loss.prototypes.requires_grad
    cached = loss.bank.pop_cached_embeddings()
    torch.testing.assert_close(cached, torch.cat([x[:5], x[5:10]]))


def test_queue_is_filled_then_used_as_extra_sinkhorn_rows():
    """mmpretrain's queue protocol: the queue fills newest first; once
    full, its rows join the Sinkhorn and only the batch's codes are kept."""
    gen = torch.Generator().manual_seed(3)
    loss = build_loss()
    batch, dim = 4, 4
    loss.queue = torch.zeros(2, 2 * batch, dim)  # as SwAVHook sets it
    calls = [F.normalize(torch.randn(3 * batch, dim, generator=gen), dim=1)
             for _ in range(3)]
    for x in calls[:2]:  # the queue's last rows are still empty
        got = loss(x)
        assert not loss.use_queue
        torch.testing.assert_close(got.double(), reference_loss(
            x, loss.prototypes, 3, [0, 1], 0.1, 0.5, 3))
    queues = loss.queue.clone()
    for i, crop in enumerate((0, 1)):  # newest batch first
        view = slice(crop * batch, (crop + 1) * batch)
        assert torch.equal(queues[i], torch.cat([calls[1][view],
                                                 calls[0][view]]))
    got = loss(calls[2])
    assert loss.use_queue
    expected = reference_loss(calls[2], loss.prototypes, 3, [0, 1], 0.1, 0.5,
                              3, queues=queues)
    torch.testing.assert_close(got.double(), expected, rtol=1e-5, atol=1e-6)
    without = reference_loss(calls[2], loss.prototypes, 3, [0, 1], 0.1, 0.5,
                             3)
    assert abs(float(without - expected)) > 1e-3  # the queue matters
    assert torch.equal(loss.queue[0, :batch], calls[2][:batch])


@pytest.fixture(scope='module')
def two_rank_swav(tmp_path_factory):
    """dist_swav_worker.py under torchrun with 2 gloo processes, once."""
    out = str(tmp_path_factory.mktemp('dist_swav'))
    run_tool([sys.executable, '-m', 'torch.distributed.run',
              '--nproc_per_node=2', f'--master_port={free_port()}',
              'tests/test_models/dist_swav_worker.py', out])
    return [torch.load(osp.join(out, f'rank{r}.pth')) for r in (0, 1)]


def test_two_ranks_with_uneven_data_equal_one_process(two_rank_swav):
    """Ranks hold 3 and 7 images: the Sinkhorn reduces the prototype
    marginals on every iteration, so each rank's codes are its rows of one
    process's codes of the 10 images, and the size-weighted mean of the
    ranks' losses is one process's loss."""
    r0, r1 = two_rank_swav
    assert (r0['rows'], r1['rows']) == SPLIT
    scores, embeds = global_batch()
    single = sinkhorn(scores, iterations=3, epsilon=0.5)
    torch.testing.assert_close(torch.cat([r0['codes'], r1['codes']]), single,
                               rtol=1e-5, atol=1e-6)
    # a rank alone (no reduction) would balance its own rows only
    alone = sinkhorn(scores[:SPLIT[0]], iterations=3, epsilon=0.5)
    assert (alone - single[:SPLIT[0]]).abs().max() > 1e-2
    whole = build_loss()(embeds.reshape(-1, 4))
    mean = (SPLIT[0] * r0['loss'] + SPLIT[1] * r1['loss']) / sum(SPLIT)
    torch.testing.assert_close(mean, whole, rtol=1e-5, atol=1e-6)
