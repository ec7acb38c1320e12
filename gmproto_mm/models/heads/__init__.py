from .base_prototype_head import BasePrototypeHead
from .decoupled_gmm_head import DecoupledGMMHead
from .dino_head import DINOHead

__all__ = ['BasePrototypeHead', 'DecoupledGMMHead', 'DINOHead']
