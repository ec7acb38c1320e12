from .dino import DINO
from .ibot import IBOT

__all__ = ['DINO', 'IBOT']
