"""Does the prototype step alone collapse? Train only the prototypes of a
config's head on the embeddings of a frozen, trained encoder.

Builds CONFIG's model, loads the encoder (backbone and neck, student and
teacher) from CHECKPOINT, which may come from another head's config, embeds
the global views of ``--images`` training
images (the config's train pipeline) with the student and the EMA teacher
(backbone + neck, unit norm), then re-initialises the head and runs
``--steps`` prototype updates on random batches of those views:

* joint head (``DINOHead``): the DINO loss, AdamW at ``--lr`` on the
  prototypes only, EMA teacher copy of them (momentum ``--momentum``);
  by default at the ViT-B recipe's batch (1024) and peak lr (0.003), the
  conditions under which the paper sees collapse, which full training on
  2 CPU cores cannot afford;
* decoupled head (``DecoupledGMMHead``): one online EM step on the teacher
  embeddings per step, as ``OnlineEMHook`` does.

Prints how many greedy eps-leaders the teacher embeddings themselves have
(prototypes sitting in the data can be no more diverse than the data), then
unique@eps (percent of K) every ``--log-every`` steps; ``--out`` also writes
them to a JSON file (``tools/demo.py`` and ``plot_prototypes.py
--trajectories`` read it). It isolates the prototype dynamics from the
encoder's: see docs/results.md. Example::

    python tools/analysis/frozen_encoder_collapse.py \\
        configs/dino/dino_vit-tiny-p8_1xb64-3e_fmnist.py work_dirs/demo/baseline/epoch_3.pth
"""
import argparse
import json
from pathlib import Path
from typing import Dict, List

import torch
from mmengine.config import Config, DictAction
from mmengine.model import ExponentialMovingAverage
from mmengine.registry import init_default_scope
from mmengine.runner import set_random_seed
from mmpretrain.registry import DATASETS, MODELS

import gmproto_mm  # noqa: F401  (registers components)
from gmproto_mm.analysis.embeddings import embed_views
from gmproto_mm.models.utils import attach_em_updater
from gmproto_mm.evaluation.functional.diversity import (DEFAULT_THRESHOLDS,
                                                        prototype_diversity)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config',
                        help='config whose prototype step runs (its head)')
    parser.add_argument('checkpoint',
                        help='checkpoint whose teacher encoder is frozen')
    parser.add_argument('--images', type=int, default=4096,
                        help='training images embedded (2 views each)')
    parser.add_argument('--steps', type=int, default=3000,
                        help='prototype steps of the head alone')
    parser.add_argument('--batch-size', type=int, default=1024,
                        help="images per step; the recipe's batch: AdamW's "
                        'drift of the prototypes is limited by gradient '
                        'noise, so the batch sets how fast they move')
    parser.add_argument('--lr', type=float, default=0.003,
                        help="AdamW lr of the joint prototypes (the recipe's "
                        'peak lr at its batch of 1024)')
    parser.add_argument('--momentum', type=float, default=0.996,
                        help='teacher EMA momentum of the joint prototypes')
    parser.add_argument('--log-every', type=int, default=500,
                        help='measure unique@eps every this many steps')
    parser.add_argument('--seed', type=int, default=0,
                        help='which images, crops and batches')
    parser.add_argument('--out', help='write the results to this JSON file')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override CONFIG keys, e.g. '
                        'model.head.num_prototypes=1024 to compare heads '
                        'at the same K')
    return parser.parse_args()


def _is_head_key(key: str) -> bool:
    return key.startswith(('head.', 'teacher.module.head.'))


def load_encoder(model: torch.nn.Module, checkpoint: str) -> None:
    """Load every non-head weight of ``checkpoint`` (any head's config)."""
    state = torch.load(checkpoint, map_location='cpu', weights_only=False)
    state = state.get('state_dict', state)
    encoder = {k: v for k, v in state.items() if not _is_head_key(k)}
    missing, _ = model.load_state_dict(encoder, strict=False)
    missing = [k for k in missing if not _is_head_key(k)]
    if missing:
        raise ValueError(f'{checkpoint} lacks encoder weights of this '
                         f'config, e.g. {missing[:3]}')


def data_leaders(embeddings: torch.Tensor) -> Dict[str, int]:
    """Greedy eps-leaders among unit-norm rows ``(N, D)``, per eps (counts).

    Prototypes that sit on the data cannot be more diverse than it: when
    ``n`` leaders at ``eps / 2`` cover the rows, at most about ``n``
    data-sitting prototypes are unique at ``eps``.
    """
    diversity = prototype_diversity(embeddings, DEFAULT_THRESHOLDS)
    n = embeddings.shape[0]
    return {str(eps): round(diversity[f'unique@{eps}'] * n / 100)
            for eps in DEFAULT_THRESHOLDS}


def train_prototypes(head: torch.nn.Module, student: torch.Tensor,
                     teacher: torch.Tensor,
                     args: argparse.Namespace) -> Dict[str, list]:
    """Run ``args.steps`` prototype updates; unique@eps every log step.

    Returns:
        Dict[str, list]: ``steps`` and, per eps (str), the unique
        percentages at those steps.
    """
    params = head.prototype_parameters()
    attach_em_updater(head, 'frozen_encoder_collapse.py', args.steps + 1)
    if params:  # joint: gradient steps on the prototypes only
        optimizer = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.04)
        # mmengine's momentum weighs the student: 1 - DINO's momentum
        teacher_head = ExponentialMovingAverage(head.teacher_module(),
                                                momentum=1 - args.momentum)
    history: Dict[str, list] = {'steps': []}
    history.update({str(eps): [] for eps in DEFAULT_THRESHOLDS})
    gen = torch.Generator().manual_seed(args.seed)
    for step in range(args.steps + 1):
        rows = torch.randint(student.shape[0], (args.batch_size, ),
                             generator=gen)
        views_s: List[torch.Tensor] = list(student[rows].unbind(1))
        views_t: List[torch.Tensor] = list(teacher[rows].unbind(1))
        if params:
            loss = head.loss(views_s, views_t, teacher_head.module)['loss']
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            teacher_head.update_parameters(head.teacher_module())
        else:  # decoupled: one EM step on the teacher embeddings
            head.em_bank.gmm.update(torch.cat(views_t))
        if step % args.log_every == 0 or step == args.steps:
            diversity = prototype_diversity(head.prototypes.float(),
                                            DEFAULT_THRESHOLDS)
            history['steps'].append(step)
            for eps in DEFAULT_THRESHOLDS:
                history[str(eps)].append(diversity[f'unique@{eps}'])
            cells = ' '.join(f'{eps}:{diversity[f"unique@{eps}"]:6.2f}'
                             for eps in DEFAULT_THRESHOLDS)
            print(f'step {step:6d}  unique% {cells}', flush=True)
    return history


def main() -> None:
    args = parse_args()
    set_random_seed(args.seed)  # python, numpy (the crops) and torch
    init_default_scope('mmpretrain')
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    model = MODELS.build(cfg.model)
    load_encoder(model, args.checkpoint)
    model.eval()
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    student, teacher = embed_views(model, dataset, args.images, args.seed)
    print(f'embedded {tuple(student.shape)} student / teacher views')
    leaders = data_leaders(
        torch.nn.functional.normalize(teacher[:, 0], dim=1))
    print('eps-leaders among the teacher embeddings (one view per image): ' +
          ' '.join(f'{eps}:{n}' for eps, n in leaders.items()))

    torch.manual_seed(args.seed)
    head = MODELS.build(cfg.model.head)  # fresh prototypes
    history = train_prototypes(head, student, teacher, args)
    if args.out:
        result = dict(config=args.config, checkpoint=args.checkpoint,
                      cfg_options=args.cfg_options or {},
                      num_prototypes=cfg.model.head.num_prototypes,
                      images=student.shape[0], batch_size=args.batch_size,
                      data_leaders=leaders, unique=history,
                      final={f'unique@{eps}': history[str(eps)][-1]
                             for eps in DEFAULT_THRESHOLDS})
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        with open(args.out, 'w') as f:
            json.dump(result, f, indent=2)
        print(f'wrote {args.out}')


if __name__ == '__main__':
    main()
