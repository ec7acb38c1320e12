from .carp_loss import CARPLoss
from .decoupled_swav_loss import DecoupledSwAVLoss, sinkhorn
from .dino_loss import DINOLoss
from .ibot_patch_loss import IBOTPatchLoss
from .koleo_loss import koleo_prototype_loss

__all__ = ['CARPLoss', 'DINOLoss', 'DecoupledSwAVLoss', 'IBOTPatchLoss',
           'koleo_prototype_loss', 'sinkhorn']
