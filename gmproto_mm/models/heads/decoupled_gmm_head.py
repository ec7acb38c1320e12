"""Decoupled prototypes: the means of an online Gaussian mixture
(arXiv 2510.20108). The encoder trains against fixed prototypes; the
prototypes are fitted to the teacher's embeddings by ``OnlineEMHook``."""
from typing import List, Optional, Sequence

import torch
import torch.nn as nn
from mmpretrain.registry import MODELS

from ..utils.online_gmm import OnlineGaussianMixture
from .base_prototype_head import BasePrototypeHead


@MODELS.register_module()
class DecoupledGMMHead(BasePrototypeHead):
    """Prototype head whose K prototypes are the unit-norm GMM means.

    Drop-in for ``DINOHead`` in the ``DINO`` algorithm: logits are cosine
    similarities to the means, no prototype parameters exist (no gradient, no
    EMA copy: student and teacher share the one bank), and the detached fp32
    teacher embeddings of the global crops are cached for ``OnlineEMHook``.

    EM-bank contract (what ``OnlineEMHook`` needs from any module): a
    ``gmm`` attribute with ``update(x)`` and ``pop_cached_embeddings()``
    returning ``(N, D)`` (``N`` may be 0).

    Args:
        in_channels (int): Embedding size D (neck bottleneck). Defaults to 256.
        num_prototypes (int): K. Defaults to 65536.
        gmm (dict): Keyword arguments of :class:`OnlineGaussianMixture`
            (``forgetting``, ``beta_start``, ``beta_iters``, ``min_var``,
            ``init``, ...). Defaults to its defaults.
        loss (dict): Loss config. Defaults to ``dict(type='DINOLoss')``.
        max_cached_batches (int): Error out if this many teacher batches
            pile up unconsumed (``OnlineEMHook`` missing). Defaults to 1024.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 in_channels: int = 256,
                 num_prototypes: int = 65536,
                 gmm: Optional[dict] = None,
                 loss: dict = dict(type='DINOLoss'),
                 max_cached_batches: int = 1024,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(in_channels, num_prototypes, loss, init_cfg)
        self.gmm = OnlineGaussianMixture(num_prototypes, in_channels,
                                         **(gmm or {}))
        self.max_cached_batches = max_cached_batches
        self._cache: List[torch.Tensor] = []

    @property
    def prototypes(self) -> torch.Tensor:
        return self.gmm.means

    def _logits(self, embeds: torch.Tensor,
                teacher_module: Optional[nn.Module]) -> torch.Tensor:
        # the means are buffers: no gradient can reach them
        return embeds @ self.gmm.means.to(embeds.dtype).t()

    def observe_teacher(self, teacher_embeds: Sequence[torch.Tensor]) -> None:
        """Cache ``(B, D)`` teacher embeddings (detached, fp32, unit norm)."""
        if len(self._cache) >= self.max_cached_batches:
            raise RuntimeError(
                f'{len(self._cache)} teacher batches are cached but never '
                'consumed: add dict(type="OnlineEMHook") to custom_hooks, '
                'otherwise the prototypes are never updated')
        embeds = torch.cat([z.detach().float() for z in teacher_embeds])
        self._cache.append(nn.functional.normalize(embeds, dim=-1))

    def pop_cached_embeddings(self) -> torch.Tensor:
        """All cached teacher embeddings ``(N, D)`` since the last call."""
        if not self._cache:
            return self.gmm.means.new_zeros((0, self.in_channels))
        embeds = torch.cat(self._cache)
        self._cache.clear()
        return embeds
