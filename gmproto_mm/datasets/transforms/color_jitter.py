"""``NumpySafeColorJitter``: mmpretrain's ``ColorJitter``, safe under numpy 2
and on gray images.

Why: mmcv <= 2.2's ``adjust_hue`` computes ``np.uint8(hue_factor * 255)``,
which raises ``OverflowError`` under numpy >= 2 for every negative hue
factor, so any pipeline with ``hue != 0`` crashes; and mmpretrain 1.2's
``ColorJitter`` needs 3 channels for brightness and contrast, so it fails on
gray ``(H, W)`` images such as Fashion-MNIST's, with any numpy. We subclass
mmpretrain's transform and fix those steps only. It is registered under its
own name, leaving mmpretrain's ``ColorJitter`` as it is for every other
config: a config opts in with ``type='NumpySafeColorJitter'`` (a config
inherited from mmpretrain, e.g. SwAV's, swaps the type in its pipeline).
"""
from typing import Dict

import cv2
import mmcv
import numpy as np
from mmpretrain.datasets.transforms import ColorJitter as _MMPretrainColorJitter
from mmpretrain.registry import TRANSFORMS


def adjust_hue(img: np.ndarray, hue_factor: float) -> np.ndarray:
    """Rotate the hue channel of a BGR ``uint8`` image.

    Args:
        img (np.ndarray): ``(H, W, 3)`` BGR image or ``(H, W)`` gray image
            (returned unchanged: gray has no hue).
        hue_factor (float): Shift in ``[-0.5, 0.5]`` of a full hue turn.

    Returns:
        np.ndarray: The image with its hue shifted, same dtype and shape.
    """
    if not -0.5 <= hue_factor <= 0.5:
        raise ValueError(f'hue_factor must be in [-0.5, 0.5], got {hue_factor}')
    if img.ndim == 2 or img.shape[-1] == 1:
        return img
    dtype = img.dtype
    hsv = cv2.cvtColor(img.astype(np.uint8), cv2.COLOR_BGR2HSV_FULL)
    shift = int(round(hue_factor * 255)) % 256  # modular: no uint8 overflow
    hsv[..., 0] = ((hsv[..., 0].astype(np.int16) + shift) % 256).astype(
        np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR_FULL).astype(dtype)


def blend_gray(img: np.ndarray, factor: float, other: float) -> np.ndarray:
    """``factor * img + (1 - factor) * other`` for gray images, clipped.

    mmcv's brightness (pillow) and contrast need 3 channels; for gray images
    brightness blends with black (``other=0``) and contrast with the mean.

    Args:
        img (np.ndarray): ``(H, W)`` or ``(H, W, 1)`` ``uint8`` image.
        factor (float): Blend factor; 1 gives the original.
        other (float): The gray level blended in.

    Returns:
        np.ndarray: Same shape and dtype.
    """
    out = img.astype(np.float32) * factor + float(other) * (1.0 - factor)
    return np.clip(out, 0, 255).astype(img.dtype)


@TRANSFORMS.register_module()
class NumpySafeColorJitter(_MMPretrainColorJitter):
    """mmpretrain's ``ColorJitter`` with a numpy-2-safe hue step.

    Same arguments and behaviour as
    :class:`mmpretrain.datasets.transforms.ColorJitter`; also accepts gray
    ``(H, W)`` images (saturation and hue are skipped for them).
    """

    def transform(self, results: Dict) -> Dict:
        img = results['img']
        is_gray = img.ndim == 2 or img.shape[-1] == 1
        orders, brightness, contrast, saturation, hue = self._rand_params()
        for index in orders:
            if index == 0 and brightness is not None:
                img = blend_gray(img, brightness, 0.) if is_gray else \
                    mmcv.adjust_brightness(img, brightness,
                                           backend=self.backend)
            elif index == 1 and contrast is not None:
                img = blend_gray(img, contrast, img.mean()) if is_gray \
                    else \
                    mmcv.adjust_contrast(img, contrast, backend=self.backend)
            elif index == 2 and saturation is not None and not is_gray:
                img = mmcv.adjust_color(
                    img, alpha=saturation, backend=self.backend)
            elif index == 3 and hue is not None and not is_gray:
                img = adjust_hue(img, hue)
        results['img'] = img
        return results

