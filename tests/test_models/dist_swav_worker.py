"""Run under torchrun by test_swav_loss.py (not collected by pytest).

Each rank takes its own, unequal share of one global batch (rank 0: the
first 3 images, rank 1: the other 7), runs the decoupled SwAV Sinkhorn and
the loss on it, and saves the codes and the loss to ``OUT/rank{r}.pth``
for the test to compare with one process on the whole batch.
"""
import os
import sys

import torch
import torch.distributed as torch_dist

from gmproto_mm.models.losses.decoupled_swav_loss import (DecoupledSwAVLoss,
                                                          sinkhorn)
from gmproto_mm.models.utils import attach_em_updater

SPLIT = (3, 7)  # images per rank: uneven on purpose


def global_batch():
    """Scores ``(10, K)`` and embeddings ``(3 views, 10, D)``, as the test
    builds them (same seed)."""
    gen = torch.Generator().manual_seed(0)
    scores = torch.randn(sum(SPLIT), 6, generator=gen)
    embeds = torch.nn.functional.normalize(
        torch.randn(3, sum(SPLIT), 4, generator=gen), dim=-1)
    return scores, embeds


def build_loss() -> DecoupledSwAVLoss:
    loss = DecoupledSwAVLoss(feat_dim=4, num_prototypes=6, num_crops=[2, 1],
                             epsilon=0.5, gmm=dict(seed=1))
    attach_em_updater(loss, 'this test')
    return loss


def main(out_dir: str) -> None:
    torch_dist.init_process_group(backend='gloo')
    rank = torch_dist.get_rank()
    own = slice(sum(SPLIT[:rank]), sum(SPLIT[:rank + 1]))
    scores, embeds = global_batch()
    codes = sinkhorn(scores[own], iterations=3, epsilon=0.5)
    loss = build_loss()(embeds[:, own].reshape(-1, 4))
    torch.save(dict(codes=codes, loss=loss.detach(),
                    rows=SPLIT[rank]),
               os.path.join(out_dir, f'rank{rank}.pth'))
    torch_dist.destroy_process_group()


if __name__ == '__main__':
    main(sys.argv[1])
