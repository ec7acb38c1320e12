"""Run under torchrun by test_carp_loss.py (not collected by pytest).

Each rank takes its own, unequal share of one global batch (rank 0: the
first 3 images, rank 1: the other 5), computes CARPLoss on it with a shared
linear "prototype layer", averages the weight's gradient over the ranks as
DDP does, and saves the loss terms and that gradient to ``OUT/rank{r}.pth``
for the test to compare with one process on the whole batch.
"""
import os
import sys

import torch
import torch.distributed as torch_dist

from gmproto_mm.models.losses.carp_loss import CARPLoss

SPLIT = (3, 5)  # images per rank: unequal on purpose


def global_batch():
    """A (K, D) prototype weight (requires grad), student embeddings
    (4 views, 8 images, D) and teacher logits (2 views, 8 images, K), as
    the test builds them (same seed)."""
    gen = torch.Generator().manual_seed(0)
    weight = torch.randn(12, 4, generator=gen).requires_grad_()
    embeds = 2 * torch.randn(4, sum(SPLIT), 4, generator=gen)
    teacher = 2 * torch.randn(2, sum(SPLIT), 12, generator=gen)
    return weight, embeds, teacher


def rank_loss(weight, embeds, teacher):
    """CARPLoss's terms for these rows (3 blocks of 4, iteration 3)."""
    loss = CARPLoss(num_prototypes=12, partition_size=4, seed=2)
    return loss([e @ weight.t() for e in embeds], list(teacher),
                iteration=3)


def main(out_dir: str) -> None:
    torch_dist.init_process_group(backend='gloo')
    rank = torch_dist.get_rank()
    own = slice(sum(SPLIT[:rank]), sum(SPLIT[:rank + 1]))
    weight, embeds, teacher = global_batch()
    terms = rank_loss(weight, embeds[:, own], teacher[:, own])
    grad, = torch.autograd.grad(sum(terms.values()), weight)
    torch_dist.all_reduce(grad)  # DDP: the mean of the ranks' gradients
    grad /= torch_dist.get_world_size()
    torch.save(dict(grad=grad, rows=SPLIT[rank],
                    **{k: v.detach() for k, v in terms.items()}),
               os.path.join(out_dir, f'rank{rank}.pth'))
    torch_dist.destroy_process_group()


if __name__ == '__main__':
    main(sys.argv[1])
