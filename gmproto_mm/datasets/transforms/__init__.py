from .color_jitter import NumpySafeColorJitter, adjust_hue, blend_gray
from .to_gray import ToGray

__all__ = ['NumpySafeColorJitter', 'ToGray', 'adjust_hue', 'blend_gray']
