from .color_jitter import NumpySafeColorJitter, adjust_hue, blend_gray

__all__ = ['NumpySafeColorJitter', 'adjust_hue', 'blend_gray']
