"""Which Gaussian-mixture components of a decoupled checkpoint are targets?

Loads CONFIG's decoupled model (``DecoupledGMMHead``) from CHECKPOINT and
compares three views of "in use", so that idle or stale components show:

* ``used_teacher``: prototypes that are the argmax of the teacher's
  assignment (what ``PrototypeDiversityMetric`` counts as
  ``used_prototypes``) for some of ``--images`` test images (the config's
  k-NN query set, test pipeline), and for the first global view of as many
  training images (train pipeline, the rows EM is fitted to);
* ``used_posterior``: the same with the mixture posterior's argmax;
* the mixture's own book-keeping: components past the idle mark
  (``acc_count >= prior_count + 0.5``, i.e. they received data at some
  time), quantiles of ``acc_count`` (under responsibility-based forgetting
  an active component's count tends to ``1 / forgetting``; one that stopped
  receiving data keeps its count) and ``exp`` of the weights' entropy.

Example::

    python tools/analysis/component_usage.py configs/dino/dino-gmm_vit-tiny-p8_1xb64-3e_fmnist.py \\
        work_dirs/dino-gmm_vit-tiny-p8_1xb64-3e_fmnist/epoch_3.pth --out usage.json
"""
import argparse
from typing import Dict

import torch
from mmpretrain.registry import DATASETS

import gmproto_mm  # noqa: F401  (registers components)
from gmproto_mm.analysis.checkpoint_cli import (checkpoint_parser,
                                                load_model, report)
from gmproto_mm.analysis.embeddings import embed_views, prediction_embeddings
from gmproto_mm.datasets import KNNDataset
from gmproto_mm.models.heads import DecoupledGMMHead
# the re-seeding rule's idle mark, the same constant, not a copy
from gmproto_mm.models.mixture import IDLE_MASS
gmproto_mm.compat.use_full_checkpoint_loader()  # load_model below

QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9)


def parse_args() -> argparse.Namespace:
    parser = checkpoint_parser(__doc__.split('\n')[0])
    parser.add_argument('--seed', type=int, default=0,
                        help='which training images and crops')
    return parser.parse_args()


@torch.no_grad()
def usage(head: DecoupledGMMHead, embeds: torch.Tensor) -> Dict[str, float]:
    """Distinct argmax components of ``embeds`` ``(N, D)``, two ways."""
    by_teacher = head.assign(embeds).argmax(dim=1)
    by_posterior = head.gmm.responsibilities(embeds).argmax(dim=1)
    return dict(images=embeds.shape[0],
                used_teacher=by_teacher.unique().numel(),
                used_posterior=by_posterior.unique().numel(),
                argmax_agreement=float((by_teacher == by_posterior).float()
                                       .mean()))


def bookkeeping(head: DecoupledGMMHead) -> Dict[str, object]:
    gmm = head.gmm
    count = gmm.acc_count.float()
    return dict(
        num_components=gmm.num_components,
        past_idle_mark=int((count >= gmm.prior_count + IDLE_MASS).sum()),
        count_quantiles={str(q): float(v) for q, v in zip(
            QUANTILES, torch.quantile(count, torch.tensor(QUANTILES)))},
        count_max=float(count.max()),
        count_equilibrium=1.0 / gmm.forgetting,
        weight_perplexity=float(torch.special.entr(gmm.pi).sum().exp()))


def main() -> None:
    args = parse_args()
    cfg, model = load_model(args)
    if not isinstance(model.head, DecoupledGMMHead):
        raise SystemExit(f'{args.config}: the head is '
                         f'{type(model.head).__name__}; this tool reads a '
                         'DecoupledGMMHead mixture')
    if not bool(model.head.gmm.initialized):
        print('note: the mixture was never updated (untrained checkpoint)')
    test_set = DATASETS.build(
        KNNDataset.split_config(cfg.test_dataloader.dataset, 'query'))
    train_set = DATASETS.build(cfg.train_dataloader.dataset)
    _, crops = embed_views(model, train_set, args.images, args.seed)
    report(dict(
        test_images=usage(model.head,
                          prediction_embeddings(model, test_set,
                                                args.images)),
        training_crops=usage(model.head, crops[:, 0]),
        mixture=bookkeeping(model.head)), args.out)


if __name__ == '__main__':
    main()
