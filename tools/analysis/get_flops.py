"""FLOPs and parameters of a config's backbone, on the config's images.

mmpretrain's ``tools/analysis_tools/get_flops.py`` feeds every model a
3-channel input, which a gray (``in_channels=1``) config such as the
Fashion-MNIST ones cannot take. This counts the same way (mmengine's
``get_model_complexity_info`` on ``extract_feat``, the backbone only) on
an input with the backbone's ``in_channels`` and, unless ``--shape`` is
given, its ``img_size`` (else the training set's first crop size, else
224). The model is built from the config without mmpretrain's
``get_model``, which also reads the test set (absent in the SwAV ones)::

    python tools/analysis/get_flops.py configs/dino/dino-gmm_vit-tiny-p8_1xb64-3e_fmnist.py
"""
import argparse
from typing import Optional, Sequence, Tuple

from mmengine.analysis import get_model_complexity_info
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmpretrain.registry import MODELS

import gmproto_mm  # noqa: F401  (registers components)
from gmproto_mm.testing import crop_sizes


def input_shape(cfg: Config,
                shape: Optional[Sequence[int]] = None) -> Tuple[int, ...]:
    """``(C, H, W)`` of one image for ``cfg``'s backbone.

    Args:
        cfg (Config): A config with ``model.backbone``.
        shape (Sequence[int], optional): ``[S]`` or ``[H, W]``; by default
            the backbone's ``img_size``, else the first view size of a
            multi-crop training pipeline, else 224.

    Returns:
        tuple[int, int, int]: ``C`` is ``backbone.in_channels`` (default 3).

    Raises:
        ValueError: If ``shape`` has neither 1 nor 2 sides.
    """
    backbone = cfg.model.backbone
    if shape is None:
        shape = [backbone.get('img_size') or _crop_size(cfg) or 224]
    if len(shape) not in (1, 2):
        raise ValueError(f'--shape takes S or H W, got {list(shape)}')
    sides = tuple(shape) * (3 - len(shape))
    return (backbone.get('in_channels', 3), ) + sides


def _crop_size(cfg: Config) -> Optional[int]:
    """The first view's side of the training pipeline, if multi-crop."""
    pipeline = cfg.get('train_dataloader', {}).get('dataset', {}).get(
        'pipeline', [])
    try:
        return crop_sizes(pipeline)[0]
    except ValueError:  # not multi-crop
        return None


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument('config', help='config file')
    parser.add_argument(
        '--shape', type=int, nargs='+',
        help="image side S or H W (default: the backbone's img_size)")
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    shape = input_shape(cfg, args.shape)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(cfg.model)
    model.eval()
    model.forward = model.extract_feat
    result = get_model_complexity_info(model, shape)
    print(result['out_table'])
    print(f'Input shape: {shape}\nFlops: {result["flops_str"]}\n'
          f'Params: {result["params_str"]}\n'
          f'Activation: {result["activations_str"]}')
    print('Only the backbone is counted (as by mmpretrain\'s get_flops.py).')


if __name__ == '__main__':
    main()
