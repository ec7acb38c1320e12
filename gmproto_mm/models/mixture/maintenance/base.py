"""The interface between the EM core and the options that look after its
components.

A strategy is one class: :class:`MixtureStrategy`, registered in
:data:`MIXTURE_STRATEGIES`. The core
(:class:`~gmproto_mm.models.mixture.OnlineGaussianMixture`) calls its hooks
at fixed points of every update, in the order the strategies were built,
and knows nothing else about them:

1. E-step over the batch (computes what the strategies ask for:
   :attr:`MixtureStrategy.needs_top2`);
2. forgetting, each statistic scaled by ``(1 - eta) ** N_k`` times every
   strategy's :meth:`MixtureStrategy.forgetting_scale`;
3. M-step (with :attr:`MixtureStrategy.needs_shift`, how far each mean
   moved);
4. :meth:`MixtureStrategy.after_m_step` with the named statistics of this
   update (:class:`UpdateStep`); what it returns is added to the update's
   log.

A strategy changes the mixture only through the core's public methods
(``start_components``, ``absorb_into``, ``refit``,
``renormalise_weights``, ``feature_chunks``; :mod:`.restart` restarts
components with them) and its public state
(``mu``, ``acc_count``, ``merge_slack``...).
"""
from typing import Dict, List, Optional

import torch
from mmengine.registry import Registry
from torch import Tensor

#: Registry of the strategies (``type`` names their class).
MIXTURE_STRATEGIES = Registry('mixture strategy')
#: The mixture's ``merge_slack`` of a mean no check has given a room yet (a
#: new mean, or every mean of a checkpoint saved before the slack existed).
#: The M-steps take its moves from it like from any slack, so a slack at or
#: below this value marks a mean never checked, the lower the farther it
#: moved since it started (a checked mean overdrawn by more than 4, farther
#: than across the sphere twice, counts with them).
UNCHECKED = -4.0


class UpdateStep:
    """What one update hands the strategies after its M-step.

    Attributes:
        x (Tensor): The unit-norm batch ``(N, D)``.
        update (int): The update's index (``num_updates`` before it).
        estep (EStep): The E-step's named statistics (per-row ``fit``,
            ``top2`` when asked for).
        shift (Tensor, optional): ``(K,)`` how far each mean moved in the
            M-step (Euclidean distance), when a strategy asked for it.
        moved (List[Tensor]): Components restarted by strategies earlier in
            this update (indices), for later strategies to check.
    """

    def __init__(self, x: Tensor, update: int, estep, shift: Optional[Tensor],
                 seed: int) -> None:
        self.x, self.update, self.estep, self.shift = x, update, estep, shift
        self.moved: List[Tensor] = []
        self._seed = seed
        self._generator: Optional[torch.Generator] = None

    @property
    def generator(self) -> torch.Generator:
        """This update's generator on ``x``'s device, seeded by ``(seed,
        update)``: identical on every rank and after a resume."""
        if self._generator is None:
            self._generator = torch.Generator(
                device=self.x.device).manual_seed(self._seed * 1_000_003 +
                                                  self.update)
        return self._generator


class MixtureStrategy:
    """Base class of the options that look after the mixture's components.

    Subclasses override the hooks they need; the defaults do nothing.
    Strategies hold settings, not state: what must survive a checkpoint
    lives in the mixture's buffers.
    """

    #: Whether :meth:`after_m_step` reads ``estep.top2`` (each row's two most
    #: likely components; a top-2 instead of a max over the rows, ``O(N K)``).
    needs_top2 = False
    #: Whether :meth:`after_m_step` reads ``shift`` (``O(K D)``).
    needs_shift = False

    def set_training_length(self, updates: int) -> None:
        """Resolve schedule points given as fractions of training."""

    def unresolved(self) -> Dict[str, object]:
        """Schedule points still waiting for :meth:`set_training_length`,
        as ``{option: value given}``."""
        return {}

    def forgetting_scale(self, gmm, rows: int) -> Optional[Tensor]:
        """Extra per-component factor ``(K,)`` in ``(0, 1]`` on the
        forgetting step's ``rho`` for an update of ``rows`` rows, or None."""
        return None

    def after_m_step(self, gmm, step: UpdateStep) -> Dict[str, float]:
        """Act on the mixture after the M-step; returns log values."""
        return {}
