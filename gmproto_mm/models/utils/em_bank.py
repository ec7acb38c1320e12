"""The EM-bank contract that ``OnlineEMHook`` drives, as a reusable module.

A bank owns an :class:`~gmproto_mm.models.mixture.OnlineGaussianMixture`
(``gmm``) whose means are the
prototypes, and caches the embeddings the mixture is fitted to until the
hook pops them (``pop_cached_embeddings``). Heads and losses with decoupled
prototypes (``DecoupledGMMHead``, ``DecoupledSwAVLoss``) hold one.

A bank refuses embeddings until something has declared that it will update
it (:func:`attach_em_updater`): ``OnlineEMHook`` does in ``before_train``,
so a config without the hook fails at its first training iteration instead
of training against fixed random means. Code that drives a model by hand
(unit tests, benchmarks, analysis scripts) declares itself the same way and
then runs ``bank.gmm.update(bank.pop_cached_embeddings())`` after each step.
"""
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..mixture import build_mixture

_NO_UPDATER = (
    'a Gaussian-mixture prototype bank received embeddings, but nothing '
    'will fit the prototypes to them: the encoder would train against fixed '
    'random means. Add the EM hook to the config:\n'
    "    custom_hooks = [..., dict(type='OnlineEMHook')]\n"
    'Driving the model by hand instead (no Runner)? Call '
    "gmproto_mm.models.utils.attach_em_updater(model, 'my script') and run "
    'bank.gmm.update(bank.pop_cached_embeddings()) after each step.')


class GMMPrototypeBank(nn.Module):
    """K fixed prototypes = unit-norm means of an online Gaussian mixture.

    Args:
        num_prototypes (int): K.
        dim (int): Embedding size D.
        gmm (dict, optional): Keyword arguments of
            :class:`~gmproto_mm.models.mixture.OnlineGaussianMixture`.
        max_cached_batches (int): Error out if this many batches pile up
            unconsumed (``OnlineEMHook`` missing). Defaults to 1024.
        config_key (str): Where ``gmm`` sits in the config (e.g.
            ``'model.head.gmm'``), named by the errors of a bad option.
            Defaults to ``'gmm'``.
    """

    def __init__(self,
                 num_prototypes: int,
                 dim: int,
                 gmm: Optional[dict] = None,
                 max_cached_batches: int = 1024,
                 config_key: str = 'gmm') -> None:
        super().__init__()
        self.gmm = build_mixture(num_prototypes, dim, gmm, config_key)
        self.dim = dim
        self.max_cached_batches = max_cached_batches
        self._cache: List[torch.Tensor] = []
        # who pops the cache and runs EM on it (not state: a run's wiring)
        self.updater: Optional[str] = None

    @property
    def prototypes(self) -> torch.Tensor:
        """``(K, D)`` unit-norm means (buffers: never receive gradient)."""
        return self.gmm.means

    def logits(self, embeds: torch.Tensor) -> torch.Tensor:
        """``(B, D)`` unit-norm embeddings -> ``(B, K)`` cosine logits."""
        return embeds @ self.gmm.means.to(embeds.dtype).t()

    def cache(self, embeds: Sequence[torch.Tensor]) -> None:
        """Store detached, fp32, L2-normalised ``(B, D)`` embeddings.

        Raises:
            RuntimeError: If no updater is attached (``OnlineEMHook``
                missing), or ``max_cached_batches`` batches were never
                consumed.
        """
        if self.updater is None:
            raise RuntimeError(_NO_UPDATER)
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


def find_em_banks(model: nn.Module) -> List[Tuple[str, nn.Module]]:
    """Modules honouring the EM-bank contract, by name: a ``gmm`` with
    ``update(x)`` and a ``pop_cached_embeddings()`` method (e.g.
    :class:`GMMPrototypeBank`). Each mixture is returned once, under its
    first name."""
    banks, seen = [], set()
    for name, module in model.named_modules():
        gmm = getattr(module, 'gmm', None)
        if callable(getattr(module, 'pop_cached_embeddings', None)) and \
                callable(getattr(gmm, 'update', None)) and \
                id(gmm) not in seen:
            seen.add(id(gmm))
            banks.append((name, module))
    return banks


def attach_em_updater(model: nn.Module,
                      updater: str = 'manual',
                      training_updates: Optional[int] = None
                      ) -> List[Tuple[str, nn.Module]]:
    """Declare that ``updater`` runs EM on every bank of ``model``.

    Until this is called, a :class:`GMMPrototypeBank` refuses embeddings
    (the guard against a config without ``OnlineEMHook``). The caller
    promises to pop each bank's cache after every step and fit its mixture:
    ``bank.gmm.update(bank.pop_cached_embeddings())``.

    Args:
        model (nn.Module): The model (or any module) holding the banks.
        updater (str): Who updates, for messages. Defaults to 'manual'.
        training_updates (int, optional): EM updates the caller will run:
            resolves schedules given as fractions of training
            (``beta_iters``, ``reseed_start``; ``set_training_length``).
            Without it such a schedule refuses the first update.

    Returns:
        list[tuple[str, nn.Module]]: The banks, as :func:`find_em_banks`.
    """
    banks = find_em_banks(model)
    for _, bank in banks:
        if hasattr(bank, 'updater'):  # duck-typed banks may lack the guard
            bank.updater = updater
        resolve = getattr(bank.gmm, 'set_training_length', None)
        if training_updates is not None and resolve is not None:
            resolve(training_updates)
    return banks
