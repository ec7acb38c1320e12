"""``ToGray``: the one-channel image a gray model takes, from any image.

Why: our Fashion-MNIST configs train on gray ``(H, W)`` images
(``in_channels=1``), but mmpretrain's inferencers (``FeatureExtractor``,
``ImageClassificationInferencer``) load an image file in colour
(``mmcv.imread``'s default), three BGR channels even for a gray PNG, and
then run the config's test pipeline without its ``LoadImageFromFile``. With
this transform first in that pipeline a 1-channel model takes any image;
the gray data sets pass through unchanged (the same array).
"""
from typing import Dict

import mmcv
from mmcv.transforms import BaseTransform
from mmpretrain.registry import TRANSFORMS


@TRANSFORMS.register_module()
class ToGray(BaseTransform):
    """Convert a BGR image to gray; gray images are returned unchanged.

    Required key: ``img``, ``(H, W)``, ``(H, W, 1)`` or ``(H, W, 3)`` BGR
X: ``img``,
    ``(H, W)`` for a colour input (OpenCV's luma weights, 0.299 R +
    0.587 G + 0.114 B), the input itself otherwise.
    """

    def transform(self, results: Dict) -> Dict:
        img = results['img']
        if img.ndim == 2 or (img.ndim == 3 and img.shape[2] == 1):
            return results
        if img.ndim != 3 or img.shape[2] != 3:
            raise ValueError(
                f'ToGray takes (H, W), (H, W, 1) or (H, W, 3) BGR images, got '
                f'shape {img.shape}: convert the image to RGB or gray first '
                '(e.g. PIL.Image.open(path).convert("L"))')
        results['img'] = mmcv.bgr2gray(img)
        return results
