"""A rehearsal of the flagship command
(``tools/analysis/rehearse_flagship.py``): an ImageNet-shaped image folder,
the config that points the flagship config at it, and the hook that
records, on every rank, what the rehearsal checks.

Importing this module registers :class:`RehearsalRecordHook` (the derived
config lists it in ``custom_imports``); ``import gmproto_mm`` does not.
"""
import hashlib
import json
import os
import os.path as osp
from typing import Dict, List, Optional

import numpy as np
import torch
from mmengine.dist import get_dist_info
from mmengine.runner import set_random_seed
from mmpretrain.registry import HOOKS
from mmpretrain.utils import get_ori_model
from PIL import Image

from ..models.utils.em_bank import find_em_banks
from .step_timer import StepTimer

#: What :class:`RehearsalRecordHook` writes under the run's work dir.
RECORD_DIR = 'rehearsal'


def make_image_folder(root: str, images: int, classes: int = 2,
                      size: int = 256, seed: int = 0) -> List[str]:
    """``images`` random RGB JPEGs of ``size`` x ``size`` pixels in
    ``root/class_<c>/`` (``CustomDataset``'s layout, ImageNet-shaped),
    spread over ``classes`` class folders; returns their paths."""
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(images):
        folder = osp.join(root, f'class_{i % classes}')
        os.makedirs(folder, exist_ok=True)
        # smooth random images: JPEG-like content, not white noise
        low = rng.integers(0, 256, (size // 16, size // 16, 3), np.uint8)
        image = Image.fromarray(low).resize((size, size), Image.BICUBIC)
        path = osp.join(folder, f'image_{i:04d}.jpg')
        image.save(path, quality=90)
        paths.append(path)
    return paths


def derived_config(config: str, data_root: str, images_per_rank: int,
                   reseed_from: Optional[int] = 1) -> str:
    """The text of a config that inherits ``config`` and changes only what
    a rehearsal must: the data (``data_root/train`` to train on and as the
    k-NN bank, ``data_root/val`` as queries, through ``CustomDataset``,
    ``images_per_rank`` per rank, loaded in the training process: a forked
    loader worker would keep the pages of every parameter and optimizer
    state the step rewrites, doubling a ViT-B rank's memory), a checkpoint
    every epoch, a log line every iteration, the record hook, and (unless
    None) re-seeding from update ``reseed_from`` so that every EM path runs
    in a few iterations."""
    lines = [
        '# Written by tools/analysis/rehearse_flagship.py: the config below,',
        '# on a generated image folder, for a few iterations.',
        f'_base_ = [{osp.abspath(config)!r}]',
        "custom_imports = dict(imports=['gmproto_mm', "
        "'gmproto_mm.analysis.rehearsal'], allow_failed_imports=False)",
        f'data_root = {osp.abspath(data_root)!r}',
        'train_dataloader = dict(',
        f'    batch_size={images_per_rank}, num_workers=0,',
        '    persistent_workers=False, pin_memory=False,',
        "    dataset=dict(_delete_=True, type='CustomDataset',",
        "                 data_root=data_root + '/train',",
        '                 pipeline=_base_.train_dataloader.dataset.pipeline))',
        'test_dataloader = dict(',
        f'    batch_size={images_per_rank}, num_workers=0,',
        '    persistent_workers=False, pin_memory=False, dataset=dict(',
        "        bank=dict(_delete_=True, type='CustomDataset',",
        "                  data_root=data_root + '/train'),",
        "        query=dict(_delete_=True, type='CustomDataset',",
        "                   data_root=data_root + '/val')))",
        'default_hooks = dict(',
        '    logger=dict(interval=1),',
        '    checkpoint=dict(interval=1, max_keep_ckpts=-1))',
        'custom_hooks = _base_.custom_hooks + [',
        "    dict(type='RehearsalRecordHook')]",
    ]
    if reseed_from is not None:
        lines.append(
            f'model = dict(head=dict(gmm=dict(reseed_start={reseed_from})))')
    return '\n'.join(lines) + '\n'


def tensor_digest(tensor: torch.Tensor) -> str:
    """SHA-256 of a tensor's dtype, shape and bytes: equal digests mean
    bit-identical tensors."""
    array = tensor.detach().cpu().contiguous().reshape(-1)
    digest = hashlib.sha256(f'{tensor.dtype}{tuple(tensor.shape)}'.encode())
    digest.update(array.view(torch.uint8).numpy().tobytes()
                  if array.numel() else b'')
    return digest.hexdigest()


def em_state_record(model: torch.nn.Module) -> Dict[str, dict]:
    """Per EM bank of ``model``: each buffer's digest, whether every
    floating-point buffer is finite, and the update count."""
    banks = {}
    for name, bank in find_em_banks(model):
        state = bank.gmm.state_dict()
        banks[name] = dict(
            digests={key: tensor_digest(value)
                     for key, value in state.items()},
            finite=all(bool(torch.isfinite(value).all())
                       for value in state.values()
                       if value.is_floating_point()),
            num_updates=int(bank.gmm.num_updates))
    return banks


@HOOKS.register_module()
class RehearsalRecordHook(StepTimer):
    """On every rank: :class:`StepTimer`'s iteration times and peak memory
    and, at the end, :func:`em_state_record`, written to
    ``<work_dir>/rehearsal/rank<r>.json``. It also seeds the random
    generators at the start of every epoch from the run's seed and the
    epoch, so that a resumed run draws the crops of the uninterrupted one
    (the data are loaded in the training process)."""

    def before_train_epoch(self, runner) -> None:
        set_random_seed(runner.seed + runner.epoch)

    def after_train(self, runner) -> None:
        super().after_train(runner)
        rank, world_size = get_dist_info()
        peak_mb, memory = self.peak_memory_mb()
        record = dict(rank=rank, world_size=world_size,
                      backend=(torch.distributed.get_backend()
                               if torch.distributed.is_initialized() else
                               None),
                      iter=runner.iter, epoch=runner.epoch,
                      iter_times_s=self.times, peak_memory_mb=peak_mb,
                      memory=memory,
                      banks=em_state_record(get_ori_model(runner.model)))
        out_dir = osp.join(runner.work_dir, RECORD_DIR)
        os.makedirs(out_dir, exist_ok=True)
        with open(osp.join(out_dir, f'rank{rank}.json'), 'w') as f:
            json.dump(record, f, indent=1)


def read_records(work_dir: str) -> List[dict]:
    """The :class:`RehearsalRecordHook` records of a run, by rank."""
    folder = osp.join(work_dir, RECORD_DIR)
    names = sorted(os.listdir(folder),
                   key=lambda n: int(n[len('rank'):-len('.json')]))
    records = []
    for name in names:
        with open(osp.join(folder, name)) as f:
            records.append(json.load(f))
    return records


def states_agree(records: List[dict]) -> bool:
    """Whether every record holds the same EM state digests."""
    first = [r['banks'] for r in records][0]
    return bool(first) and all(
        {k: b['digests'] for k, b in r['banks'].items()} ==
        {k: b['digests'] for k, b in first.items()} for r in records)
