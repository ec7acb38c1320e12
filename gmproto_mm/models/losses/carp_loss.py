"""CARP's loss: consistent assignment of views over random partitions of
the prototypes (Silva & Ramirez Rivera, NeurIPS 2023,
https://arxiv.org/abs/2310.12692)."""
import math
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine import dist
from mmpretrain.registry import MODELS

# CARP clamps block agreements and mean probabilities to [eps, 1 - eps]
# before the log; eps of the fp32 the loss is computed in
_EPS = torch.finfo(torch.float32).eps


def _check_int(name: str, value: int, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f'{name} must be an int >= {low}, got {value!r}')


def random_partition(num_prototypes: int, partition_size: int, seed: int,
                     iteration: int,
                     device: Optional[torch.device] = None
                     ) -> torch.Tensor:
    """The random partition of the K prototypes at one training iteration.

    A permutation of ``range(K)`` from numpy's generator seeded with the
    pair ``[seed, iteration]`` (a ``SeedSequence``: every pair its own
    stream; torch's CPU generator would keep only 32 bits of a combined
    seed), split into ``K / M`` consecutive blocks: every rank draws the
    same partition without a broadcast, a resumed run draws the
    uninterrupted run's, and no global RNG is used or moved.

    Args:
        num_prototypes (int): K.
        partition_size (int): M, prototypes per block; must divide K.
        seed (int): >= 0.
        iteration (int): The training iteration, >= 0.
        device (torch.device, optional): Where to put the result.

    Returns:
        Tensor: ``(K / M, M)`` int64 prototype indices, each once.
    """
    _check_int('seed', seed, 0)
    _check_int('iteration', iteration, 0)
    perm = np.random.default_rng([seed, iteration]).permutation(
        num_prototypes)
    return torch.from_numpy(perm).view(-1, partition_size).to(device)


def block_probabilities(logits: torch.Tensor,
                        blocks: torch.Tensor) -> torch.Tensor:
    """Softmax without temperature within each block of prototypes.

    Args:
        logits (Tensor): ``(B, K)``.
        blocks (Tensor): ``(P, M)`` prototype indices (a partition).

    Returns:
        Tensor: ``(B, P, M)`` fp32, each ``(b, p)`` row sums to 1.
    """
    return F.softmax(logits.float()[:, blocks], dim=-1)


def global_block_mean(probs: Sequence[torch.Tensor]
                      ) -> Tuple[torch.Tensor, torch.Tensor]:
    """Mean block distribution over the rows of all ranks, and the global
    batch size, with one all-reduce (run on every call, on every rank).

    The value is the mean over every rank's rows. The gradient reaches this
    rank's rows only, scaled by the world size W: DDP averages the ranks'
    gradients, so after it the gradient is that of the global mean (what
    the reference's all-gather does in its backward by summing over ranks).

    Args:
        probs (Sequence[Tensor]): ``(B, P, M)`` per view on this rank, the
            first one a view of the batch (its B is the rank's batch size).

    Returns:
        tuple[Tensor, Tensor]: ``(P, M)`` mean, and the global batch size
        (a 0-d fp32 tensor: the sum of the ranks' B).
    """
    local = torch.stack([p.sum(dim=0) for p in probs]).sum(dim=0)
    rows = float(sum(p.shape[0] for p in probs))
    counts = local.new_tensor([rows, float(probs[0].shape[0])])
    packed = torch.cat([local.detach().flatten(), counts])
    dist.all_reduce(packed, op='sum')
    total = packed[:-2].view_as(local)
    world = dist.get_world_size()
    # value: the global sum; gradient: W x the local rows'
    total = total + world * (local - local.detach())
    return total / packed[-2], packed[-1]


@MODELS.register_module()
class CARPLoss(nn.Module):
    """CARP's consistency + KL loss over random partitions of K prototypes.

    Every iteration the K prototypes are permuted at random and split into
    ``K / M`` blocks of ``partition_size`` M (:func:`random_partition`); in
    each block student and teacher logits become distributions by a softmax
    without temperature (:func:`block_probabilities`). Then:

    - consistency: the mean over (student view i, teacher global view j,
      i != j), rows and blocks of ``-log clamp(sum_c p_ic q_jc, eps,
      1 - eps)``;
    - KL: per block, ``KL(mean_rows p || uniform) = log M + sum_c pbar_c log
      clamp(pbar_c, eps, 1 - eps)``, averaged over blocks, where the mean
      runs over the *global* batch (all ranks) and over the rows of every
      student view (global and local, with gradient) and every teacher view
      (detached), each row once;
    - ``loss = consistency + KL``, both with weight 1, eps the fp32 machine
      epsilon.

    This follows CARP's reference code (``sthalles/carp``), with three
    differences that do not change a single-process loss: the partition is
    drawn from a generator seeded by ``(seed, iteration)`` on every rank
    (theirs: rank 0's global RNG, broadcast), so it needs no collective and
    a resumed run draws the uninterrupted run's partitions; M must divide K
    (theirs drops ``K mod M`` prototypes per iteration); and ranks may hold
    unequal batches: each rank's consistency is its share of the global
    batch's mean times the world size W (with equal batches, the rank's own
    mean, as theirs), so the ranks' mean loss is the global batch's loss
    and, after DDP's gradient average, so is the gradient (the KL term's
    gradient comes from :func:`global_block_mean`).

    ``iteration`` is an argument of :meth:`forward` (the ``DINO`` algorithm
    passes its training step count), never read from global state; ``seed``
    is this loss's own, independent of ``randomness.seed`` (as the GMM's
    ``seed``): set ``model.head.loss.seed`` to draw other partitions.

    Cost per step, V student and G teacher views of B rows: gathering and
    the block softmaxes O((V + G) B K), the consistency O(V G B K), a
    permutation of K on the CPU, and one all-reduce of K + 2 floats.

    Args:
        num_prototypes (int): K (filled in by the head).
        partition_size (int): M, prototypes per block; >= 2 and divides K.
            CARP: 512 at K = 65,536. Defaults to 512.
        seed (int): Seed of the partitions, >= 0. Defaults to 0.
    """

    # the head passes the training iteration (see forward)
    needs_iteration = True

    def __init__(self,
                 num_prototypes: int,
                 partition_size: int = 512,
                 seed: int = 0) -> None:
        super().__init__()
        _check_int('num_prototypes', num_prototypes, 1)
        _check_int('partition_size', partition_size, 2)
        if num_prototypes % partition_size:
            raise ValueError(
                f'partition_size ({partition_size}) must divide '
                f'num_prototypes ({num_prototypes}) into equal blocks: pick '
                'a divisor (CARP: 512 at 65,536)')
        _check_int('seed', seed, 0)
        self.num_prototypes = num_prototypes
        self.partition_size = partition_size
        self.seed = seed

    def extra_repr(self) -> str:
        return (f'num_prototypes={self.num_prototypes}, '
                f'partition_size={self.partition_size}, seed={self.seed}')

    def partition(self, iteration: int,
                  device: Optional[torch.device] = None) -> torch.Tensor:
        """``(K / M, M)`` prototype indices of ``iteration``'s blocks."""
        return random_partition(self.num_prototypes, self.partition_size,
                                self.seed, iteration, device)

    def forward(self, student_logits: Sequence[torch.Tensor],
                teacher_logits: Sequence[torch.Tensor],
                iteration: int) -> Dict[str, torch.Tensor]:
        """CARP's two terms at one training iteration.

        Args:
            student_logits (Sequence[Tensor]): One ``(B, K)`` per view, the
                global views first, in the teacher's order.
            teacher_logits (Sequence[Tensor]): One ``(B, K)`` per global
                view (no gradient is taken through them). Any scores whose
                softmax over all K is the teacher's target, e.g.
                ``log p_nk`` of a mixture: restricted to a block, the
                softmax is that target restricted and renormalised.
            iteration (int): The training iteration: selects the partition.

        Returns:
            dict[str, Tensor]: ``loss_consistency`` and ``loss_kl``, fp32
            scalars (mmengine sums them into ``loss``).
        """
        self._check_views(student_logits, teacher_logits)
        device = student_logits[0].device
        blocks = self.partition(iteration, device)
        with torch.autocast(device_type=device.type, enabled=False):
            student = [block_probabilities(s, blocks)
                       for s in student_logits]
            with torch.no_grad():
                teacher = [block_probabilities(t.detach(), blocks)
                           for t in teacher_logits]
            mean, global_batch = global_block_mean(student + teacher)
            consistency = self._consistency(student, teacher, global_batch)
            kl = math.log(self.partition_size) + torch.sum(
                mean * mean.clamp(_EPS, 1 - _EPS).log(), dim=-1)
        return dict(loss_consistency=consistency, loss_kl=kl.mean())

    @staticmethod
    def _consistency(student: List[torch.Tensor], teacher: List[torch.Tensor],
                     global_batch: torch.Tensor) -> torch.Tensor:
        """Mean over view pairs of ``-log`` block agreement, as this rank's
        share of the global batch's mean, times the world size."""
        terms = []
        for t_idx, q in enumerate(teacher):
            for s_idx, p in enumerate(student):
                if s_idx == t_idx:
                    continue  # same view: no loss
                agree = torch.sum(p * q, dim=-1).clamp(_EPS, 1 - _EPS)
                terms.append(-agree.log().mean(dim=-1).sum())  # rows' sum
        world = dist.get_world_size()
        return torch.stack(terms).mean() * world / global_batch

    def _check_views(self, student_logits: Sequence[torch.Tensor],
                     teacher_logits: Sequence[torch.Tensor]) -> None:
        num_s, num_t = len(student_logits), len(teacher_logits)
        if num_t < 1 or num_s * num_t - min(num_s, num_t) < 1:
            raise ValueError(
                'CARPLoss needs a pair of different views (student view i, '
                f'teacher view j, i != j); got {num_s} student and {num_t} '
                'teacher views: give at least 2 student views')
        shapes = {tuple(x.shape) for x in (*student_logits, *teacher_logits)}
        batch = student_logits[0].shape[0]
        if shapes != {(batch, self.num_prototypes)}:
            raise ValueError(
                f'CARPLoss expects (B, {self.num_prototypes}) logits, the '
                f'same B for every view (num_prototypes = K); got '
                f'{sorted(shapes)}')

    @torch.no_grad()
    def assign(self, logits: torch.Tensor) -> torch.Tensor:
        """Evaluation assignment: softmax over all K without temperature.

        Its argmax over the full K is the prototype the image uses; the
        usage perplexities are computed from it.

        Args:
            logits (Tensor): ``(B, K)`` teacher logits ``<z, w_k>``.

        Returns:
            Tensor: ``(B, K)`` fp32, rows sum to 1.
        """
        return F.softmax(logits.float(), dim=-1)
