"""The EM-bank contract that ``OnlineEMHook`` drives, as a reusable module.

A bank owns an :class:`OnlineGaussianMixture` (``gmm``) whose means are the
prototypes, and caches the embeddings the mixture is fitted to until the
hook pops them (``pop_cached_embeddings``). Heads and losses with decoupled
prototypes (``DecoupledGMMHead``, ``DecoupledSwAVLoss``) hold one.
"""
from typing import List, Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from .online_gmm import OnlineGaussianMixture


class GMMPrototypeBank(nn.Module):
    """K fixed prototypes = unit-norm means of an online Gaussian mixture.

    Args:
        num_prototypes (int): K.
        dim (int): Embedding size D.
        gmm (dict, optional): Keyword arguments of
            :class:`OnlineGaussianMixture`.
        max_cached_batches (int): Error out if this many batches pile up
            unconsumed (``OnlineEMHook`` missing). Defaults to 1024.
    """

    def __init__(self,
                 num_prototypes: int,
                 dim: int,
                 gmm: Optional[dict] = None,
                 max_cached_batches: int = 1024) -> None:
        super().__init__()
        self.gmm = OnlineGaussianMixture(num_prototypes, dim, **(gmm or {}))
        self.dim = dim
        self.max_cached_batches = max_cached_batches
        self._cache: List[torch.Tensor] = []

    @property
    def prototypes(self) -> torch.Tensor:
        """``(K, D)`` unit-norm means (buffers: never receive gradient)."""
        return self.gmm.means

    def logits(self, embeds: torch.Tensor) -> torch.Tensor:
        """``(B, D)`` unit-norm embeddings -> ``(B, K)`` cosine logits."""
        return embeds @ self.gmm.means.to(embeds.dtype).t()

    def cache(self, embeds: Sequence[torch.Tensor]) -> None:
        """Store detached, fp32, L2-normalised ``(B, D)`` embeddings."""
        if len(self._cache) >= self.max_cached_batches:
            raise RuntimeError(
                f'{len(self._cache)} embedding batches are cached but never '
                'consumed: add dict(type="OnlineEMHook") to custom_hooks, '
                'otherwise the prototypes are never updated')
        flat = torch.cat([z.detach().float() for z in embeds])
        self._cache.append(F.normalize(flat, dim=-1))

    def pop_cached_embeddings(self) -> torch.Tensor:
        """All cached embeddings ``(N, D)`` since the last call (N may be 0)."""
        if not self._cache:
            return self.gmm.means.new_zeros((0, self.dim))
        embeds = torch.cat(self._cache)
        self._cache.clear()
        return embeds
