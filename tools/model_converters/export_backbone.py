"""Export the backbone of a DINO / iBOT training checkpoint as a plain
mmpretrain backbone checkpoint.

    python tools/model_converters/export_backbone.py \\
        work_dirs/dino-gmm_vit-tiny-p8_1xb64-3e_fmnist/epoch_3.pth work_dirs/vitt_teacher.pth

By default the network the model evaluates with (``predict_with`` of the
training config, the EMA teacher unless set otherwise): the one the k-NN
evaluation, the linear probe and ``extract_feat`` use. The output is
mmpretrain's layout for the backbone of a self-supervised model:
``{'state_dict': {'backbone.<key>': tensor}, 'meta': {...}}``, loaded by

* a backbone config:
  ``init_cfg=dict(type='Pretrained', checkpoint=OUT, prefix='backbone.')``;
* an ``ImageClassifier``: ``load_checkpoint(classifier, OUT)`` (backbone
  keys only, the head stays as initialised);
* a bare backbone, strictly:
  ``load_checkpoint(backbone, OUT, strict=True,
  revise_keys=[(r'^backbone\\.', '')])`` (mmengine.runner).

iBOT's ``MaskedVisionTransformer`` loses its mask token (only masked
training uses it), so mmpretrain's own ``VisionTransformer`` loads it
strictly. ``meta['backbone_cfg']`` is the backbone's config as mmpretrain
builds it (from the config stored in the checkpoint), ``meta['network']``
which network was exported.
"""
import argparse
import os
import os.path as osp
from collections import OrderedDict
from typing import Dict, Optional

import torch
from mmengine.config import Config
from mmengine.runner.checkpoint import CheckpointLoader

from gmproto_mm.compat import use_full_checkpoint_loader

PREFIXES = dict(teacher='teacher.module.backbone.', student='backbone.')
# parameters of our backbones that mmpretrain's have not: dropped
DROPPED_KEYS = ('mask_token', )  # MaskedVisionTransformer (iBOT)
# our backbone types -> the mmpretrain type that loads the export
PLAIN_TYPES = dict(MaskedVisionTransformer='VisionTransformer')


def training_config(meta: dict) -> Optional[Config]:
    """The training config mmengine's ``Runner`` stored in ``meta['cfg']``
    (None if the checkpoint has none or it does not parse)."""
    text = meta.get('cfg') if isinstance(meta, dict) else None
    if not isinstance(text, str):
        return None
    try:
        return Config.fromstring(text, '.py')
    except Exception:  # a config of another code base, a partial text
        return None


def plain_backbone_cfg(cfg: Optional[Config]) -> Optional[dict]:
    """The training config's ``model.backbone`` as mmpretrain's backbone
    that loads the export (``MaskedVisionTransformer`` ->
    ``VisionTransformer`` with the same ``out_type``), without its
    ``init_cfg``; None without a config."""
    if cfg is None or 'backbone' not in cfg.get('model', {}):
        return None
    backbone = cfg.model.backbone.to_dict()
    backbone.pop('init_cfg', None)
    if backbone.get('type') in PLAIN_TYPES:
        backbone.setdefault('out_type', 'raw')  # MaskedVisionTransformer's
        backbone['type'] = PLAIN_TYPES[backbone['type']]
    return backbone


def backbone_state_dict(state_dict: Dict[str, torch.Tensor],
                        network: str = 'teacher'
                        ) -> 'OrderedDict[str, torch.Tensor]':
    """The ``network``'s backbone weights, keys without prefix.

    Args:
        state_dict (dict): A DINO / iBOT model's state dict.
        network (str): ``'teacher'`` (``teacher.module.backbone.*``) or
            ``'student'`` (``backbone.*``).

    Returns:
        OrderedDict: Backbone parameters and buffers, ``mask_token``
        dropped.

    Raises:
        ValueError: Unknown ``network``, or no key of it in the state dict.
    """
    if network not in PREFIXES:
        raise ValueError(f"network must be 'teacher' or 'student', got "
                         f'{network!r}')
    prefix = PREFIXES[network]
    out = OrderedDict((key[len(prefix):], value)
                      for key, value in state_dict.items()
                      if key.startswith(prefix))
    if not out:
        raise ValueError(
            f'the checkpoint has no {prefix!r} keys, so no {network} '
            'backbone: give a checkpoint that tools/train.py wrote for a '
            'DINO or IBOT config (an exported backbone has only '
            "'backbone.' keys: load it directly)")
    for key in DROPPED_KEYS:
        out.pop(key, None)
    return out


def export_backbone(src: str, dst: str,
                    network: Optional[str] = None) -> dict:
    """Write ``src``'s backbone to ``dst`` as described in the module doc.

    Args:
        src (str): Training checkpoint (``tools/train.py``'s
            ``epoch_N.pth``).
        dst (str): Output ``.pth`` path (folders are created).
        network (str, optional): ``'teacher'`` or ``'student'``; by default
            the training config's ``model.predict_with`` (``'teacher'``
            when the checkpoint stores no config).

    Returns:
        dict: The saved checkpoint (``state_dict`` and ``meta``).
    """
    checkpoint = CheckpointLoader.load_checkpoint(src, map_location='cpu')
    meta = checkpoint.get('meta', {}) if 'state_dict' in checkpoint else {}
    state_dict = checkpoint.get('state_dict', checkpoint)
    cfg = training_config(meta)
    if network is None:
        network = 'teacher'
        if cfg is not None:
            network = cfg.get('model', {}).get('predict_with', 'teacher')
    weights = backbone_state_dict(state_dict, network)
    out = dict(
        state_dict=OrderedDict(
            ('backbone.' + key, value) for key, value in weights.items()),
        meta=dict(converted_from=osp.basename(src), network=network,
                  backbone_cfg=plain_backbone_cfg(cfg)))
    os.makedirs(osp.dirname(osp.abspath(dst)), exist_ok=True)
    torch.save(out, dst)
    return out


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument('src', help='training checkpoint (epoch_N.pth)')
    parser.add_argument('dst', help='output backbone checkpoint (.pth)')
    parser.add_argument(
        '--network', choices=['teacher', 'student'],
        help="which backbone: default the config's predict_with, i.e. the "
        'EMA teacher unless the config says otherwise')
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    use_full_checkpoint_loader()  # a training checkpoint, under torch >= 2.6
    out = export_backbone(args.src, args.dst, args.network)
    meta = out['meta']
    print(f'{meta["network"]} backbone, {len(out["state_dict"])} tensors '
          f'-> {args.dst}')
    if meta['backbone_cfg'] is not None:
        print(f'backbone config: {meta["backbone_cfg"]}')
    print("load with init_cfg=dict(type='Pretrained', "
          f"checkpoint='{args.dst}', prefix='backbone.')")


if __name__ == '__main__':
    main()
