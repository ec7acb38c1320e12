"""How the teacher's target mass spreads over near-duplicate prototypes.

Loads CONFIG's model from CHECKPOINT (joint ``DINOHead`` or
``DecoupledGMMHead``), embeds ``--images`` test images with the model's
prediction network (the teacher, test pipeline) and reads the teacher
assignment ``p`` ``(N, K)`` that ``PrototypeDiversityMetric`` uses (softmax
at the final teacher temperature). Per image, with ``k*`` its argmax
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

    python tools/analysis/target_spread.py configs/gm_dino_vitt_fmnist.py \\
        work_dirs/gm_dino_vitt_fmnist/epoch_3.pth --out spread.json
"""
import argparse
import json
import sys
from pathlib import Path
from typing import Dict, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from mmengine.config import Config, DictAction  # noqa: E402
from mmengine.dataset import default_collate  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402
from mmengine.runner import load_checkpoint  # noqa: E402
from mmpretrain.registry import DATASETS, MODELS  # noqa: E402

import gmproto_mm  # noqa: E402,F401  (registers components)

EPSILONS = (0.1, 0.25, 0.5)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--images', type=int, default=4096,
                        help='first test images to read')
    parser.add_argument('--out', help='write the results to this JSON file')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        default={}, help='override config keys')
    return parser.parse_args()


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


@torch.no_grad()
def main() -> None:
    args = parse_args()
    cfg = Config.fromfile(args.config)
    cfg.merge_from_dict(args.cfg_options)
    init_default_scope('mmpretrain')
    model = MODELS.build(cfg.model)
    load_checkpoint(model, args.checkpoint, map_location='cpu',
                    logger='silent')
    model.eval()
    backbone, neck, head_part = model._predict_parts()
    dataset = DATASETS.build(cfg.test_dataloader.dataset.query)
    embeds = []
    for start in range(0, min(args.images, len(dataset)), 256):
        stop = min(start + 256, args.images, len(dataset))
        batch = default_collate([dataset[i] for i in range(start, stop)])
        inputs = model.data_preprocessor(batch, False)['inputs']
        embeds.append(neck(backbone(inputs))[0].float())
    embeds = F.normalize(torch.cat(embeds), dim=1)
    result = spread(model.head.assign(embeds, head_part), embeds,
                    model.head.bank(head_part).float())
    print(json.dumps(result, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + '\n')


if __name__ == '__main__':
    main()
