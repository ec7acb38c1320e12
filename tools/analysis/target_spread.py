"""How the teacher's target mass spreads over near-duplicate prototypes.

Loads CONFIG's model from CHECKPOINT (joint ``DINOHead`` or
``DecoupledGMMHead``), embeds ``--images`` test images with the model's
prediction network (the teacher, test pipeline) and reads the teacher
assignment ``p`` ``(N, K)`` that ``PrototypeDiversityMetric`` uses (the
softmax at the final teacher temperature; the mixture posterior under
``teacher_targets='responsibilities'``). Per image, with ``k*`` its argmax
prototype, averaged over the images:

* ``top1_mass``: ``p[k*]``;
* ``target_perplexity``: ``exp`` of the entropy of ``p``;
* ``cos_to_top1``: cosine between the embedding and prototype ``k*``
  (GMM means sit on the data, near 1; joint prototypes need not);
* ``mass_near_top1@eps`` and ``prototypes_near_top1@eps``: the mass of, and
  the number of, prototypes within Euclidean distance ``eps`` of prototype
  ``k*`` (unit-norm rows, ``k*`` included, so both are at least
  ``top1_mass`` and 1). Mass near the top-1 is mass the target spends on
  near-duplicates of it.

Example::

    python tools/analysis/target_spread.py configs/dino/dino-gmm_vit-tiny-p8_1xb64-3e_fmnist.py \\
        work_dirs/dino-gmm_vit-tiny-p8_1xb64-3e_fmnist/epoch_3.pth --out spread.json
"""
from typing import Dict, Sequence

import torch
import torch.nn.functional as F
from mmpretrain.registry import DATASETS

import gmproto_mm  # noqa: F401  (registers components)
from gmproto_mm.analysis.checkpoint_cli import (checkpoint_parser,
                                                load_model, report)
from gmproto_mm.analysis.embeddings import prediction_embeddings
from gmproto_mm.datasets import KNNDataset
gmproto_mm.compat.use_full_checkpoint_loader()  # load_model below

EPSILONS = (0.1, 0.25, 0.5)


@torch.no_grad()
def spread(probs: torch.Tensor, embeds: torch.Tensor, bank: torch.Tensor,
           epsilons: Sequence[float] = EPSILONS) -> Dict[str, float]:
    """Target-spread measures (see the module docstring).

    Args:
        probs (Tensor): Teacher assignment ``(N, K)``, rows sum to 1.
        embeds (Tensor): Unit-norm embeddings ``(N, D)``.
        bank (Tensor): Prototypes ``(K, D)`` (normalised here).
    """
    bank = F.normalize(bank.double(), dim=1)
    probs = probs.double()
    top = probs.argmax(dim=1)
    dist = torch.cdist(bank[top], bank)  # (N, K)
    out = dict(
        images=probs.shape[0],
        top1_mass=float(probs.gather(1, top[:, None]).mean()),
        target_perplexity=float(
            torch.special.entr(probs).sum(dim=1).exp().mean()),
        cos_to_top1=float((embeds.double() * bank[top]).sum(dim=1).mean()))
    for eps in epsilons:
        near = dist < eps
        near[torch.arange(len(top)), top] = True  # exact, not by rounding
        out[f'mass_near_top1@{eps}'] = float((probs * near).sum(dim=1).mean())
        out[f'prototypes_near_top1@{eps}'] = float(near.sum(dim=1).double()
                                                  .mean())
    return out


def main() -> None:
    args = checkpoint_parser(__doc__.split('\n')[0]).parse_args()
    cfg, model = load_model(args)
    dataset = DATASETS.build(
        KNNDataset.split_config(cfg.test_dataloader.dataset, 'query'))
    embeds = F.normalize(prediction_embeddings(model, dataset, args.images),
                         dim=1)
    _, _, head_part = model._predict_parts()
    report(spread(model.head.assign(embeds, head_part), embeds,
                  model.head.bank(head_part).float()), args.out)


if __name__ == '__main__':
    main()
