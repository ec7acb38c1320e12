"""SwAV's swapped-prediction loss against fixed GMM prototypes, so an
unmodified mmpretrain ``SwAV`` config trains with decoupled prototypes."""
from typing import List, Optional

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmpretrain.registry import MODELS

from ..utils.em_bank import GMMPrototypeBank
from .sinkhorn import sinkhorn


@MODELS.register_module()
class DecoupledSwAVLoss(BaseModule):
    """Drop-in for mmpretrain's ``SwAVLoss`` with GMM-mean prototypes.

    Same arguments and queue protocol (``queue`` / ``use_queue``, managed by
    mmpretrain's ``SwAVHook``) as ``SwAVLoss``, but the prototypes are the
    fixed means of an online Gaussian mixture (``self.bank``), fitted by
    ``OnlineEMHook`` to the embeddings of the ``crops_for_assign`` views. The
    codes come from a Sinkhorn that reduces on every iteration.

    Needs ``dict(type='OnlineEMHook')`` in ``custom_hooks``: without it the
    first training step raises. Outside a Runner, declare the caller as the
    updater with :func:`gmproto_mm.models.utils.attach_em_updater`.

    Args:
        feat_dim (int): Embedding size D (neck ``out_channels``).
        sinkhorn_iterations (int): Defaults to 3.
        epsilon (float): Sinkhorn regularisation. Defaults to 0.05.
        temperature (float): Softmax temperature of the predictions.
            Defaults to 0.1.
        crops_for_assign (List[int]): Views whose codes are targets.
            Defaults to [0, 1].
        num_crops (List[int]): Views per resolution. Defaults to [2].
        num_prototypes (int): K. Defaults to 3000.
        gmm (dict, optional): Keyword arguments of
            :class:`~gmproto_mm.models.mixture.OnlineGaussianMixture`.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 feat_dim: int,
                 sinkhorn_iterations: int = 3,
                 epsilon: float = 0.05,
                 temperature: float = 0.1,
                 crops_for_assign: List[int] = [0, 1],
                 num_crops: List[int] = [2],
                 num_prototypes: int = 3000,
                 gmm: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if not isinstance(num_prototypes, int):
            raise ValueError('DecoupledSwAVLoss supports one prototype bank '
                             f'(an int), got num_prototypes={num_prototypes}')
        self.sinkhorn_iterations = sinkhorn_iterations
        self.epsilon = epsilon
        self.temperature = temperature
        self.crops_for_assign = list(crops_for_assign)
        self.num_crops = list(num_crops)
        self.bank = GMMPrototypeBank(num_prototypes, feat_dim, gmm,
                                     config_key='model.head.loss.gmm')
        self.queue: Optional[torch.Tensor] = None  # set by SwAVHook
        self.use_queue = False

    @property
    def prototypes(self) -> torch.Tensor:
        return self.bank.prototypes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Swapped prediction loss.

        Args:
            x (Tensor): ``(V * B, D)`` unit-norm embeddings, views stacked.

        Returns:
            Tensor: Scalar loss.
        """
        num_views = sum(self.num_crops)
        if x.dim() != 2 or x.shape[0] % num_views:
            raise ValueError(f'expected ({num_views} * B, D) embeddings, got '
                             f'{tuple(x.shape)}')
        batch = x.shape[0] // num_views
        scores = self.bank.logits(x)
        embeds = x.detach()
        loss = 0.
        for i, crop in enumerate(self.crops_for_assign):
            view = slice(crop * batch, (crop + 1) * batch)
            with torch.no_grad():
                target_scores = scores[view].detach()
                if self.queue is not None:
                    if self.use_queue or not torch.all(self.queue[i, -1] == 0):
                        self.use_queue = True
                        target_scores = torch.cat(
                            (self.bank.logits(self.queue[i]), target_scores))
                    # shift the queue by one batch, newest embeddings first
                    self.queue[i, batch:] = self.queue[i, :-batch].clone()
                    self.queue[i, :batch] = embeds[view]
                codes = sinkhorn(target_scores, self.sinkhorn_iterations,
                                 self.epsilon)[-batch:]
            view_loss = 0.
            for v in range(num_views):
                if v == crop:
                    continue
                log_p = F.log_softmax(
                    scores[v * batch:(v + 1) * batch] / self.temperature, 1)
                view_loss -= torch.mean(torch.sum(codes * log_p, dim=1))
            loss += view_loss / (num_views - 1)
        self.bank.cache([
            embeds[c * batch:(c + 1) * batch] for c in self.crops_for_assign
        ])
        return loss / len(self.crops_for_assign)
