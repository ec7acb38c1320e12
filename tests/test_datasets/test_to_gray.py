"""ToGray: colour (BGR) images to gray, gray ones untouched."""
import cv2
import numpy as np
import pytest
from mmpretrain.registry import TRANSFORMS


def test_colour_becomes_gray_and_gray_passes_unchanged():
    to_gray = TRANSFORMS.build(dict(type='ToGray'))
    rng = np.random.default_rng(0)
    bgr = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    out = to_gray(dict(img=bgr))['img']
    assert out.shape == (5, 7) and out.dtype == np.uint8
    np.testing.assert_array_equal(out, cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY))
    same = np.stack([out] * 3, axis=-1)  # a gray file loaded in colour
    np.testing.assert_array_equal(to_gray(dict(img=same))['img'], out)
    for gray in (out, out[..., None]):
        assert to_gray(dict(img=gray))['img'] is gray
    with pytest.raises(ValueError, match=r'got shape \(5, 7, 4\)'):
        to_gray(dict(img=np.zeros((5, 7, 4), np.uint8)))
