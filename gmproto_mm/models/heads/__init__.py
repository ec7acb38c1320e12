from .base_prototype_head import BasePrototypeHead
from .dino_head import DINOHead

__all__ = ['BasePrototypeHead', 'DINOHead']
