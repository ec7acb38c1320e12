from .color_jitter import ColorJitter, adjust_hue, blend_gray

__all__ = ['ColorJitter', 'adjust_hue', 'blend_gray']
