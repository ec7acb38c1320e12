"""NumpySafeColorJitter: its hue step runs and rotates the hue as a plain
colorsys reference does."""
import colorsys

import mmcv
import numpy as np
import pytest
from mmpretrain.registry import TRANSFORMS

from gmproto_mm.datasets.transforms.color_jitter import adjust_hue


def reference_hue(bgr: np.ndarray, hue_factor: float) -> np.ndarray:
    """Rotate each pixel's hue by ``hue_factor`` turns with colorsys (float
    HSV), as torchvision's ``adjust_hue`` defines it."""
    out = np.empty(bgr.shape, dtype=np.float64)
    for idx in np.ndindex(bgr.shape[:2]):
        b, g, r = bgr[idx] / 255.0
        h, s, v = colorsys.rgb_to_hsv(r, g, b)
        r, g, b = colorsys.hsv_to_rgb((h + hue_factor) % 1.0, s, v)
        out[idx] = (b * 255, g * 255, r * 255)
    return out


def assert_close_to_reference(got: np.ndarray, img: np.ndarray,
                              hue_factor: float) -> None:
    """OpenCV's 8-bit HSV holds the hue in 256 steps per turn: its
    fixed-point conversion puts the input's hue within 1 step, and the
    shift is rounded and taken as ``hue_factor * 255`` steps, as mmcv and
    torchvision's PIL path do (within 1 step of ``* 256``): 2/256 turn in
    all. A hue error of dh turns moves a channel by at most ``6 dh C``
    (C: the pixel's chroma, max - min channel), and S, V and the output
    are rounded to 8 bits (1.5 levels)."""
    chroma = img.max(-1, keepdims=True).astype(np.float64) - img.min(
        -1, keepdims=True)
    bound = 6 * 2 / 256 * chroma + 1.5
    diff = np.abs(got.astype(np.float64) - reference_hue(img, hue_factor))
    assert (diff <= bound).all(), (diff - bound).max()


def colour_image() -> np.ndarray:
    """``(16, 16, 3)`` BGR uint8 with saturated and pale colours."""
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(16, 16, 3), dtype=np.uint8)


@pytest.mark.parametrize('hue_factor', [-0.5, -0.3, -0.05, 0.2, 0.5])
def test_adjust_hue_matches_colorsys(hue_factor: float) -> None:
    img = colour_image()
    got = adjust_hue(img, hue_factor)
    assert got.dtype == np.uint8 and got.shape == img.shape
    assert_close_to_reference(got, img, hue_factor)
    # a real shift: far from the input
    assert np.abs(got.astype(np.float64) - img).mean() > 10


def test_transform_runs_the_hue_step_with_a_negative_factor(
        monkeypatch) -> None:
    """mmcv's own adjust_hue overflows under numpy 2 for negative factors;
    the registered NumpySafeColorJitter runs its hue step through ours."""
    img = colour_image()
    if int(np.__version__.split('.')[0]) >= 2:
        with pytest.raises(OverflowError):
            mmcv.adjust_hue(img, -0.2)
    jitter = TRANSFORMS.build(dict(type='NumpySafeColorJitter', hue=0.3))
    assert 'gmproto_mm' in type(jitter).__module__
    # only the hue step (index 3), with a negative factor
    monkeypatch.setattr(jitter, '_rand_params',
                        lambda: (np.array([3, 0, 1, 2]), None, None, None,
                                 -0.2))
    out = jitter.transform(dict(img=img.copy()))['img']
    assert_close_to_reference(out, img, -0.2)
    assert np.abs(out.astype(np.float64) - img).mean() > 10  # it ran
    # gray images have no hue: unchanged
    gray = img[..., 0]
    assert np.array_equal(jitter.transform(dict(img=gray.copy()))['img'],
                          gray)
