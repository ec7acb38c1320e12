"""Command line, model loading and report of the tools that read one
checkpoint (``tools/analysis/component_usage.py``, ``target_spread.py``)."""
import argparse
import json
from pathlib import Path
from typing import Optional, Tuple

import torch
from mmengine.config import Config, DictAction
from mmengine.registry import init_default_scope
from mmengine.runner import load_checkpoint
from mmpretrain.registry import MODELS


def checkpoint_parser(description: str) -> argparse.ArgumentParser:
    """CONFIG, CHECKPOINT, ``--images``, ``--out`` and ``--cfg-options``:
    the arguments of the tools that read one checkpoint."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument('config', help='config file of the checkpoint')
    parser.add_argument('checkpoint', help='checkpoint file (epoch_N.pth)')
    parser.add_argument('--images', type=int, default=4096,
                        help='test images to read (and as many training '
                        'images where the tool reads those)')
    parser.add_argument('--out', help='write the results to this JSON file')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        default={}, help='override config keys')
    return parser


def load_model(args: argparse.Namespace) -> Tuple[Config, torch.nn.Module]:
    """The config ``args.config`` (``args.cfg_options`` merged) and its
    model, weights from ``args.checkpoint``, in eval mode."""
    cfg = Config.fromfile(args.config)
    cfg.merge_from_dict(args.cfg_options)
    init_default_scope('mmpretrain')
    model = MODELS.build(cfg.model)
    load_checkpoint(model, args.checkpoint, map_location='cpu',
                    logger='silent')
    return cfg, model.eval()


def report(result: dict, out: Optional[str]) -> None:
    """Print ``result`` as JSON, and write it to ``out`` if given."""
    print(json.dumps(result, indent=2))
    if out:
        Path(out).write_text(json.dumps(result, indent=2) + '\n')
