"""Online EM for a diagonal Gaussian mixture on the unit sphere.

The prototype step of decoupled Gaussian-mixture prototypes ("Why Prototypes
Collapse", https://arxiv.org/abs/2510.20108): the prototypes are the
unit-norm means of a mixture fitted to the teacher's L2-normalised
embeddings by one online EM step per training iteration, with deterministic
annealing of the E-step and responsibility-based forgetting of the
sufficient statistics (docs/method.md, "Online EM").

This module is the EM loop and its state; where the means start is
:mod:`.initialisation`, and the options of ours that look after components
(re-seeding, merging, stale decay) are :mod:`.maintenance`, called at fixed
points of :meth:`OnlineGaussianMixture.update`. Pure PyTorch (no mmengine):
the algorithm and hooks own the scheduling, this package owns the math.
"""
import difflib
import inspect
import math
import warnings
from typing import Dict, Iterator, List, NamedTuple, Optional, Tuple, Union

import torch
from torch import Tensor, nn

from ...precision import ieee_fp32_matmuls
from . import maintenance
from .initialisation import check_init_cost, initial_means, uniform_means

_F32 = torch.float32
_TINY = torch.finfo(_F32).tiny  # smallest normal fp32; 1 / _TINY is finite
# Denormal fp32 numbers make CPU matmuls ~100x slower (measured: 44 s instead
# of 0.3 s for the M-step at K = 65536) and exp() takes a slow path when its
# result would be denormal. Hence (unnormalised, row maximum 1)
# responsibilities below e^-40 ~ 4e-18 are exactly 0, and x^2 below 1e-12 is
# exactly 0, so that the M-step products r * x^2 are 0 or >= 4e-18 * 1e-12 /
# K, a normal number for K < 3e8 (products r * x are denormal only for
# |x| < 3e-21 * K, which real embeddings do not have). Neither changes any
# statistic beyond fp32 rounding.
_RESP_LOG_FLOOR = -40.0
_RESP_FLOOR = math.exp(_RESP_LOG_FLOOR)
_FEAT_FLOOR = 1e-12
_LOG_LIK_ROWS = 64  # rows of the logged log-likelihood while beta < 1
#: An update's rows are processed in chunks of at most this many rows ...
CHUNK_ROWS = 1024
#: ... and at most this many bytes of ``(rows, K)`` fp32 responsibilities.
CHUNK_BYTES = 1 << 28
_SCHEDULES = ('cosine', 'linear')
_RENAMED = dict(
    reseed_idle='reseed_rate (idle components re-seeded per batch row: '
    'reseed_idle=4 at 128 rows per update is reseed_rate=1/32)',
    reseed_pick="nothing (re-seeding always picks far rows, as 'kmeans++')")


class OnlineGaussianMixture(nn.Module):
    """Diagonal Gaussian mixture on the sphere, fitted by online EM.

    One :meth:`update` is one EM step on a batch ``x`` of shape ``(N, D)``:

    * E-step: ``log p_nk = log pi_k + log N(x_n | mu_k, diag var_k)``,
      ``r_nk = softmax_k(beta_t * log p_nk)`` with ``beta_t`` annealed from
      ``beta_start`` to 1 over ``beta_iters`` updates.
    * Batch statistics ``N_k = sum_n r_nk``, ``S_k = r^T x``,
      ``Q_k = r^T x^2``, and forgetting ``rho_k = (1 - forgetting) ** N_k``:
      ``acc <- rho * acc + batch`` for ``acc_count``, ``acc_sum``,
      ``acc_sq_sum``. A component with ``N_k == 0`` keeps its statistics
      bit for bit (unless ``stale_decay`` is on).
    * M-step: ``pi = acc_count / sum(acc_count)``, ``m = acc_sum / acc_count``,
      ``var = max(acc_sq_sum / acc_count - m^2, min_var)``,
      ``mu = m / ||m||``.

    Cost of an update of ``N`` rows: ``O(N K D)`` -- the E-step is one
    matmul of ``[x^2, x, 1]`` ``(N, 2D+1)`` against ``[-1 / (2 var),
    mu / var, c]`` ``(K, 2D+1)``, the statistics one matmul of the
    responsibilities against ``[x^2, x, 1]``, about 4x one ``N x D x K``
    logits matmul -- plus ``O(K D)`` for the M-step. Memory is bounded
    whatever ``N``: the rows go through both matmuls in chunks of at most
    ``CHUNK_ROWS`` rows and ``CHUNK_BYTES`` of ``(rows, K)``
    responsibilities (exact: the statistics are sums), so the working memory
    is one chunk's ``(N_c, K)`` plus two ``(K, 2D+1)`` scratch buffers besides
    the state (~4 K D floats). Responsibilities below ``e^-40`` times the
    row maximum are exactly 0 (fp32 denormals would slow the CPU matmuls a
    hundredfold). Each option of ours states its own cost below; all are
    at most ``O(N K D)`` and run on the state's device.

    All state is registered as buffers (float32 apart from the counters), so
    ``state_dict`` and checkpoints carry it. Identical inputs give identical
    results on every process (initialisation and the options' draws use
    generators seeded with ``seed`` and the update count), which is what
    multi-process training relies on to keep the prototypes in sync, and
    what makes a resumed run continue bit for bit.

    Note:
        The scratch buffers are not saved but are listed by ``buffers()``;
        keep the mixture out of a ``DistributedDataParallel`` module with
        ``broadcast_buffers=True``, which would broadcast every buffer each
        iteration.

    Args:
        num_components (int): Number of components ``K`` (>= 1).
        dim (int): Feature dimension ``D`` (>= 1).
        forgetting (float): Forgetting rate ``eta`` in (0, 1); a component
            receiving responsibility mass ``N_k`` scales its statistics by
            ``(1 - eta) ** N_k``. Defaults to 0.01.
        beta_start (float): Initial inverse temperature ``beta_0`` in (0, 1].
            Defaults to 0.3.
        beta_iters (int | float): Updates over which ``beta`` rises to 1:
            an int ``>= 0`` counts updates (0: ``beta = 1`` always); a
            float in (0, 1] is a fraction of the training's updates,
            resolved by :meth:`set_training_length` (``OnlineEMHook`` calls
            it before training), so the schedule follows the training
            length. Defaults to 1000.
        beta_schedule (str): ``'cosine'`` or ``'linear'``. Defaults to
            ``'cosine'``.
        min_var (float): Lower bound of every variance (> 0). Defaults to
            1e-4.
        init (str): Where the means start (:mod:`.initialisation`):
            ``'sample'`` (random pooled rows plus noise, ``O(K D)``),
            ``'uniform'`` (uniform on the sphere, ignores the data, ``O(K
            D)``) or ``'kmeans++'`` (k-means++ seeding on the pooled rows,
            ``O(K P D)`` for ``P`` pooled rows, at most ``max(init_samples,
            2^30 / (K D))`` of them -- a seeded random subset when more
            arrived --, so at most ~1e9 whatever the batch: ``K
            init_samples D`` above that is refused at construction, where
            the error names ``'sample'``). Defaults to ``'sample'``.
        init_noise (float): Expected norm of the Gaussian noise added to
            data-initialised and re-seeded means before renormalising
            (>= 0), so that duplicates separate. Defaults to 0.01.
        init_samples (int, optional): Rows to pool before a data
            initialisation (``init`` other than ``'uniform'``): updates are
            buffered until this many rows arrived, then the means are drawn
            from the pool and the first EM step runs on the last batch
            (``O(N K D)`` like every step, whatever the pool). ``None``
            means ``num_components``, so that K distinct embeddings seed K
            means even when K exceeds the batch. 1 initialises on the first
            batch. The pool is not checkpointed: a resume during pooling
            pools again. Defaults to None.
        prior_count (float): Initial ``acc_count`` of every component (> 0).
            Defaults to 1.0.
        seed (int): Seed of the initialisation and of the options' draws.
            Defaults to 0.
        reseed_rate (float): Ours, off by default (0): after each M-step
            from update ``reseed_start`` on, up to ``ceil(reseed_rate * N)``
            idle components -- those that received under half a row of
            responsibility since their (re)start -- move onto the batch rows
            the mixture explains worst, far from every mean in use
            (:func:`.maintenance.reseed_idle`), so that all of K are
            visited within ``~K / reseed_rate`` rows at any scale.
            ``O(N K D * 4 reseed_rate)``. In [0, 1]. Defaults to 0.
        reseed_start (int | float): First update that may re-seed (an int
            >= 0, or a fraction as ``beta_iters``). Defaults to 0.
        merge_within (float): Ours, off by default (0): after each M-step,
            two components whose unit-norm means are closer than this
            (Euclidean distance, the collapse metric's ``eps``) merge, and
            the freed one restarts on a far batch row
            (:func:`.maintenance.merge_close`, which states which pairs are
            guaranteed apart after an update, with a slack per mean in
            ``merge_slack``). ``O(N K D * 3 / 16)`` (the sweep's and the
            most overdrawn means against all) plus ``O(K D)`` per merge;
            ``O(N K D)`` more while means were never checked (the first
            ``K`` rows).
            In [0, 2). Defaults to 0.
        stale_decay (float): Ours, off by default (0): every update also
            scales each component's statistics by ``(1 - stale_decay) **
            (N / K)`` -- ``1 - stale_decay`` per ``K`` rows seen -- but
            never below ``prior_count`` pseudo-observations, so a component
            that stops receiving data fades back to idle (then re-seeded if
            ``reseed_rate`` is on); means and variances are unchanged by
            the scaling. ``O(K)``. In [0, 1). Defaults to 0.
    """

    pi: Tensor
    mu: Tensor
    var: Tensor
    acc_count: Tensor
    acc_sum: Tensor
    acc_sq_sum: Tensor
    num_updates: Tensor
    initialized: Tensor
    merge_slack: Tensor
    #: State that checkpoints of earlier versions lack (filled on loading).
    optional_state_keys = ('merge_slack', )

    def __init__(self,
                 num_components: int,
                 dim: int,
                 *,
                 forgetting: float = 0.01,
                 beta_start: float = 0.3,
                 beta_iters: Union[int, float] = 1000,
                 beta_schedule: str = 'cosine',
                 min_var: float = 1e-4,
                 init: str = 'sample',
                 init_noise: float = 0.01,
                 init_samples: Optional[int] = None,
                 prior_count: float = 1.0,
                 seed: int = 0,
                 reseed_rate: float = 0.0,
                 reseed_start: Union[int, float] = 0,
                 merge_within: float = 0.0,
                 stale_decay: float = 0.0) -> None:
        super().__init__()
        _check_int('num_components', num_components, 1)
        _check_int('dim', dim, 1)
        _check_int('seed', seed, None)
        self._schedule = dict(beta_iters=_check_schedule('beta_iters',
                                                         beta_iters),
                              reseed_start=_check_schedule('reseed_start',
                                                           reseed_start))
        if init_samples is not None:
            _check_int('init_samples', init_samples, 1)
        _check_number('forgetting', forgetting, 0.0, 1.0, '(0, 1)',
                      low_open=True, high_open=True)
        _check_number('beta_start', beta_start, 0.0, 1.0, '(0, 1]',
                      low_open=True)
        if beta_schedule not in _SCHEDULES:
            raise ValueError(f'beta_schedule must be one of {_SCHEDULES}, '
                             f'got {beta_schedule!r}')
        _check_number('min_var', min_var, 0.0, math.inf, '(0, inf)',
                      low_open=True, high_open=True)
        _check_number('init_noise', init_noise, 0.0, math.inf, '[0, inf)',
                      high_open=True)
        _check_number('prior_count', prior_count, 0.0, math.inf, '(0, inf)',
                      low_open=True, high_open=True)
        _check_number('reseed_rate', reseed_rate, 0.0, 1.0,
                      '[0, 1] (idle components re-seeded per batch row; '
                      '0 = off)')
        _check_number('merge_within', merge_within, 0.0, 2.0,
                      '[0, 2) (a distance between unit vectors; 0 = off)',
                      high_open=True)
        _check_number('stale_decay', stale_decay, 0.0, 1.0,
                      '[0, 1) (a decay per K rows seen; 0 = off)',
                      high_open=True)
        self.init_samples = num_components if init_samples is None \
            else init_samples
        check_init_cost(init, num_components, self.init_samples, dim)

        self.num_components = num_components
        self.dim = dim
        self.forgetting = float(forgetting)
        self.beta_start = float(beta_start)
        # updates; None while a fraction awaits set_training_length()
        self.beta_iters: Optional[int] = _updates(beta_iters, None)
        self.beta_schedule = beta_schedule
        self.min_var = float(min_var)
        self.init = init
        self.init_noise = float(init_noise)
        self.prior_count = float(prior_count)
        self.seed = seed
        self.reseed_rate = float(reseed_rate)
        self.reseed_start: Optional[int] = _updates(reseed_start, None)
        self.merge_within = float(merge_within)
        self.stale_decay = float(stale_decay)
        self._init_pool: List[Tensor] = []  # rows awaiting initialisation
        self._warned_identical = False

        K, D = num_components, dim
        # Valid unit-norm placeholders until the first update initialises
        # from data, so the prototypes can be read (e.g. for logits) at once.
        self.register_buffer('pi', torch.full((K, ), 1.0 / K))
        self.register_buffer('mu', uniform_means(K, D, seed))
        self.register_buffer('var', torch.ones(K, D))
        self.register_buffer('acc_count', torch.zeros(K))
        self.register_buffer('acc_sum', torch.zeros(K, D))
        self.register_buffer('acc_sq_sum', torch.zeros(K, D))
        self.register_buffer('num_updates', torch.zeros((), dtype=torch.long))
        self.register_buffer('initialized', torch.zeros((), dtype=torch.bool))
        # Merging's room per mean (a distance; < 0: to be checked).
        self.register_buffer('merge_slack', torch.zeros(K))
        # Scratch, allocated on first use (not saved): the E-step weights
        # (K, 2D+1), reused by the M-step; the batch statistics (K, 2D+1);
        # one chunk's responsibilities (N_c, K).
        for name in ('_weights', '_stats', '_resp'):
            self.register_buffer(name, torch.empty(0), persistent=False)

    # ------------------------------------------------------------ properties
    @property
    def means(self) -> Tensor:
        """Unit-norm means (prototypes) of shape ``(K, D)``."""
        return self.mu

    @property
    def variances(self) -> Tensor:
        """Diagonal variances of shape ``(K, D)``."""
        return self.var

    @property
    def weights(self) -> Tensor:
        """Mixture weights of shape ``(K,)``, summing to 1."""
        return self.pi

    @property
    def beta(self) -> float:
        """Inverse temperature the next :meth:`update` will use."""
        self._require_schedule()
        return self._beta_at(int(self.num_updates))

    @property
    def pooled_rows(self) -> int:
        """Rows waiting in the pool for the data initialisation."""
        return sum(rows.shape[0] for rows in self._init_pool)

    @property
    def merge_gap(self) -> float:
        """``1 - cos`` below which two unit vectors are within
        ``merge_within`` (``||a - b||^2 = 2 (1 - cos)``); 1e-6 when off."""
        return max(self.merge_within**2 / 2.0, 1e-6)

    def set_training_length(self, updates: int) -> None:
        """Resolve the schedule given as fractions of training
        (``beta_iters``, ``reseed_start``) for a training of ``updates``
        EM updates (rounded to whole updates); counts given as ints stay.
        ``OnlineEMHook`` calls it in ``before_train``.

        Args:
            updates (int): EM updates the training will run (>= 1).
        """
        _check_int('updates', updates, 1)
        self.beta_iters = _updates(self._schedule['beta_iters'], updates)
        self.reseed_start = _updates(self._schedule['reseed_start'], updates)

    def _require_schedule(self) -> None:
        unresolved = [k for k, v in self._schedule.items()
                      if getattr(self, k) is None]
        if unresolved:
            given = ', '.join(f'{k}={self._schedule[k]}' for k in unresolved)
            raise ValueError(
                f'{given}: a fraction of the training length, which is not '
                'known yet. Train with OnlineEMHook (it resolves the '
                'fraction from the runner\'s max_iters), call '
                'set_training_length(total_updates) first, or give a number '
                'of updates (an int)')

    def _beta_at(self, t: int) -> float:
        """``beta`` of update ``t`` (0-based): ``beta_start`` -> 1."""
        if self.beta_iters == 0 or t >= self.beta_iters:
            return 1.0
        frac = t / self.beta_iters
        if self.beta_schedule == 'cosine':
            ramp = 1.0 - (1.0 + math.cos(math.pi * frac)) / 2.0
        else:
            ramp = frac
        return 1.0 - (1.0 - self.beta_start) * (1.0 - ramp)

    def _load_from_state_dict(self, state_dict, prefix, *args,
                              **kwargs) -> None:
        """Checkpoints written before merging kept a slack have no
        ``merge_slack``: it loads as :data:`.maintenance.UNCHECKED` (no
        mean checked yet; merging checks them in the next ``K / N``
        updates)."""
        for key in self.optional_state_keys:
            if prefix + key not in state_dict:
                state_dict[prefix + key] = torch.full_like(
                    getattr(self, key), maintenance.UNCHECKED)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def extra_repr(self) -> str:
        beta, reseed = (_describe(self._schedule[k], getattr(self, k))
                        for k in ('beta_iters', 'reseed_start'))
        return (f'num_components={self.num_components}, dim={self.dim}, '
                f'forgetting={self.forgetting}, beta={self.beta_schedule}'
                f'({self.beta_start} -> 1 over {beta} updates), '
                f'min_var={self.min_var}, init={self.init!r}' +
                (f', reseed_rate={self.reseed_rate:g} from update '
                 f'{reseed}' if self.reseed_rate else '') +
                (f', merge_within={self.merge_within}'
                 if self.merge_within else '') +
                (f', stale_decay={self.stale_decay}'
                 if self.stale_decay else ''))

    # ------------------------------------------------------------ public API
    @torch.no_grad()
    def update(self, x: Tensor) -> Dict[str, float]:
        """Run one online EM step on a batch (initialising on the first call).

        Rows of ``x`` are L2-normalised here (they are expected to be close
        to unit norm already: the teacher's normalised embeddings). The step
        always runs in fp32 with autocast disabled. Order:
        E-step and statistics over row chunks, forgetting (and stale
        decay), M-step, then the options: re-seeding, merging.

        While rows are pooled for the initialisation (see ``init_samples``)
        no EM step runs and only ``beta`` and ``init_pooled`` are returned.

        Args:
            x (Tensor): Embeddings of shape ``(N, D)``, any float dtype.

        Returns:
            Dict[str, float]: ``beta`` (the beta used), ``resp_max_mean``
            (mean over the batch of ``max_k r_nk``), ``effective_components``
            (``exp`` of the entropy of the weights), ``weight_min``,
            ``weight_max`` and ``log_likelihood`` (mean ``log p(x_n)`` at
            beta = 1, under the parameters before the step; while beta < 1
            over the first 64 rows of the batch only); ``reseeded`` when
            re-seeding is on; ``merged`` and ``merge_unresolved`` (close
            pairs left when the update ran out of merge rounds) when
            merging is on.

        Raises:
            ValueError: If ``x`` is not ``(N, D)`` with ``N >= 1``, or holds
                NaN/Inf or all-zero rows; the state is then left untouched.
        """
        x = self._prepare(x)  # validates before any state change
        self._require_schedule()
        if not bool(self.initialized):
            if self.init != 'uniform':
                self._init_pool.append(x)
                pooled = self.pooled_rows
                if pooled < self.init_samples:
                    return dict(beta=self._beta_at(0),
                                init_pooled=float(pooled))
            pool = torch.cat(self._init_pool) if self._init_pool else x
            self._init_pool.clear()
            self._initialise(pool)
        with torch.autocast(device_type=x.device.type, enabled=False), \
                ieee_fp32_matmuls():
            gen = self._generator(x.device)
            beta = self._beta_at(int(self.num_updates))
            stats, top2, fit, summary = self._e_step(
                x, beta, pairs=bool(self.merge_within))
            self._accumulate(stats, rows=x.shape[0])
            shift = self._m_step()
            moved = maintenance.reseed_idle(self, x, gen, fit) \
                if gen is not None else x.new_zeros(0, dtype=torch.long)
            merged = maintenance.merge_close(self, x, gen, fit, top2, moved,
                                             shift) \
                if self.merge_within else None
            self.num_updates += 1
            entropy = torch.special.entr(self.pi).sum()
            pi_min, pi_max = torch.aminmax(self.pi)
            values = torch.stack([*summary, entropy.exp(), pi_min,
                                  pi_max]).tolist()
        out = dict(beta=beta)
        if self.reseed_rate:
            out['reseeded'] = float(moved.numel())
        if merged is not None:
            out['merged'] = float(merged.merged)
            out['merge_unresolved'] = float(merged.unresolved)
            out['merge_overdrawn'] = float(merged.overdrawn)
        out.update(resp_max_mean=values[0],
                   effective_components=values[2],
                   weight_min=values[3],
                   weight_max=values[4],
                   log_likelihood=values[1])
        return out

    @torch.no_grad()
    def log_prob(self, x: Tensor) -> Tensor:
        """Joint log densities ``log pi_k + log N(x_n | mu_k, var_k)``.

        ``O(N K D)`` (one ``(N, 2D+1) x (2D+1, K)`` matmul, about twice a
        logits matmul); the ``(N, K)`` result is the only ``(N, K)``
        allocation.

        Args:
            x (Tensor): Embeddings of shape ``(N, D)`` (L2-normalised here).

        Returns:
            Tensor: fp32 log densities of shape ``(N, K)``.
        """
        x = self._prepare(x)
        self._require_initialised()
        with torch.autocast(device_type=x.device.type, enabled=False), \
                ieee_fp32_matmuls():
            log_p = torch.matmul(_features(x), self._e_step_weights().T)
            return log_p.add_(self._log_2pi_term())

    @torch.no_grad()
    def responsibilities(self,
                         x: Tensor,
                         beta: Optional[float] = None) -> Tensor:
        """Posterior ``softmax_k(beta * log p_nk)``; changes no state.

        ``O(N K D)``, as :meth:`log_prob`.

        Args:
            x (Tensor): Embeddings of shape ``(N, D)`` (L2-normalised here).
            beta (float, optional): Inverse temperature in (0, 1]; defaults
                to 1 (the plain posterior).

        Returns:
            Tensor: fp32 responsibilities of shape ``(N, K)``, rows sum to 1.
        """
        beta = 1.0 if beta is None else float(beta)
        if not 0.0 < beta <= 1.0:
            raise ValueError(f'beta must be in (0, 1], got {beta!r}')
        logp = self.log_prob(x)
        return torch.softmax(logp.mul_(beta), dim=1)

    # --------------------------------------------------------------- helpers
    def _prepare(self, x: Tensor) -> Tensor:
        """Validate ``x``; return it as unit-norm fp32 rows on our device."""
        if not isinstance(x, Tensor):
            raise TypeError(f'x must be a Tensor, got {type(x).__name__}')
        if x.dim() != 2 or x.shape[1] != self.dim:
            raise ValueError(f'x must have shape (N, {self.dim}) = (N, dim), '
                             f'got {tuple(x.shape)}')
        if x.shape[0] == 0:
            raise ValueError(
                f'x is empty (shape {tuple(x.shape)}); need N >= 1 rows')
        if x.is_complex():
            raise ValueError(f'x must be real, got dtype {x.dtype}')
        x = x.detach().to(device=self.mu.device, dtype=_F32)
        # One reduction in the common case; count only if the sum is bad.
        if not bool(torch.isfinite(x.sum())):
            bad = int((~torch.isfinite(x)).sum())
            if bad:
                raise ValueError(
                    f'x of shape {tuple(x.shape)} contains {bad} non-finite '
                    'values (NaN/Inf); the GMM state was not changed')
        norm = torch.linalg.vector_norm(x, dim=1)
        if not bool((norm > 0).all()):
            zero = torch.nonzero(norm == 0).squeeze(1)
            raise ValueError(
                f'x has {zero.numel()} all-zero rows (first: '
                f'{zero[:5].tolist()}): a zero embedding has no direction '
                'on the sphere. Check what feeds the mixture (a dead '
                'projection head, rows padded with zeros); the GMM state '
                'was not changed')
        if x.shape[0] > 1 and not self._warned_identical and \
                bool((x == x[:1]).all()):
            self._warned_identical = True
            warnings.warn(
                f'all {x.shape[0]} rows given to the Gaussian mixture are '
                'identical: the embeddings have likely collapsed to a '
                'constant (or one image is repeated); EM learns nothing '
                'from such a batch', stacklevel=3)
        return x / norm.unsqueeze(1)

    def _require_initialised(self) -> None:
        if not bool(self.initialized):
            raise ValueError('OnlineGaussianMixture is not initialised: '
                             'call update() first')

    def _generator(self, device: torch.device) -> Optional[torch.Generator]:
        """This update's generator for the options' draws (None when they
        are off): seeded by ``(seed, num_updates)``, so identical on every
        rank and after a resume."""
        if not (self.reseed_rate or self.merge_within):
            return None
        return torch.Generator(device=device).manual_seed(
            self.seed * 1_000_003 + int(self.num_updates))

    def _scratch(self, name: str, *shape: int) -> Tensor:
        """Scratch buffer ``name`` of at least ``shape`` (reallocated when
        it is too small or elsewhere); returns the ``shape`` view."""
        buf = getattr(self, name)
        numel = math.prod(shape)
        if (buf.numel() < numel or buf.device != self.mu.device
                or buf.dtype != _F32):
            buf = torch.zeros(numel, dtype=_F32, device=self.mu.device)
            setattr(self, name, buf)
        return buf.view(-1)[:numel].view(*shape)

    def _chunk_rows(self) -> int:
        """Rows per E-/M-step chunk: at most ``CHUNK_ROWS`` and
        ``CHUNK_BYTES`` of ``(rows, K)`` fp32."""
        return max(1, min(CHUNK_ROWS,
                          CHUNK_BYTES // (4 * self.num_components)))

    def _feature_chunks(self, x: Tensor) -> Iterator[Tuple[slice, Tensor]]:
        """``(rows, [x^2, x, 1] of x[rows])`` for each chunk of
        :meth:`_chunk_rows` rows of ``x`` ``(N, D)``, in order: how the
        E-step and a restart's share of the batch bound their memory."""
        chunk = self._chunk_rows()
        for start in range(0, x.shape[0], chunk):
            feats = _features(x[start:start + chunk])
            yield slice(start, start + feats.shape[0]), feats

    # ------------------------------------------------------------- EM pieces
    def _initialise(self, pool: Tensor) -> None:
        """Means from :func:`.initialisation.initial_means` on ``pool``
        ``(P, D)``; variances from the pool, uniform weights, prior
        statistics. ``O(K D + P D)`` (k-means++: ``O(K P D)``)."""
        K, D = self.num_components, self.dim
        mu = initial_means(self.init, K, pool, self.seed, self.init_noise,
                           self.init_samples)
        var = pool.var(dim=0, correction=0).clamp_min_(self.min_var) \
            if pool.shape[0] > 1 else pool.new_full((D, ), self.min_var)
        self.mu.copy_(mu)
        self.var.copy_(var.expand(K, D))
        self.pi.fill_(1.0 / K)
        self.acc_count.fill_(self.prior_count)
        torch.mul(self.mu, self.prior_count, out=self.acc_sum)
        torch.addcmul(self.var, self.mu, self.mu, out=self.acc_sq_sum)
        self.acc_sq_sum.mul_(self.prior_count)
        self.merge_slack.fill_(maintenance.UNCHECKED)  # no room known yet
        self.initialized.fill_(True)

    def _restart(self, which: Tensor, mu: Tensor, x: Tensor,
                 fit: '_RowFit') -> None:
        """Components ``which`` start afresh at unit-norm means ``mu``
        ``(len(which), D)`` (batch rows), with the variance of a typical
        component in use -- the mean of the variances weighted by the data
        mass each component holds (its count above the prior); the batch
        variance while none holds data -- and the prior statistics. Then
        each takes the responsibility of this batch's rows it would have
        got in this update's E-step (:meth:`_absorb_rows`), so a component
        that starts where data is becomes active at once, and one that
        takes under half a row stays idle (re-seeded again later). With the
        batch variance, a restarted component would lose even its own rows
        to a narrower component far away: in D dimensions the
        log-determinant outweighs the distance. ``O(K D + N R D)`` for
        ``R`` components."""
        if which.numel() == 0:
            return
        mass = (self.acc_count - self.prior_count).clamp_min_(0.0)
        total = mass.sum()
        if bool(total > 0):
            var = (mass @ self.var).div_(total).clamp_min_(self.min_var)
        elif x.shape[0] > 1:
            var = x.var(dim=0, correction=0).clamp_min_(self.min_var)
        else:
            var = self.var[which].mean(dim=0)
        self.mu[which] = mu
        self.var[which] = var.expand(which.numel(), self.dim)
        self.acc_count[which] = self.prior_count
        self.acc_sum[which] = mu * self.prior_count
        self.acc_sq_sum[which] = (self.var[which] + mu * mu) * \
            self.prior_count
        self._renormalise_weights()
        self._absorb_rows(which, x, fit)

    def _absorb_rows(self, which: Tensor, x: Tensor, fit: '_RowFit') -> None:
        """Add to components ``which`` the statistics of the batch rows they
        would take in this update's E-step: ``r_nj = e_nj / (Z_n + sum_i
        e_ni)`` (``i`` over ``which``) with ``e_nj = exp(beta log p_nj -
        m_n)``, where ``m_n`` and ``Z_n`` are row ``n``'s maximum and
        softmax normaliser from the E-step: one softmax over the other
        components and all of ``which``, so a row gives the restarted
        components together less than one row of mass (the other
        components' responsibilities are not revisited). Entries below
        ``e^-40`` are 0, as in the E-step. ``O(N R D)``, over the
        E-step's row chunks: at most ``(N_c, R)`` responsibilities and
        ``(N_c, 2D+1)`` features at once (``R <= K``)."""
        var, mu = self.var[which], self.mu[which]
        log_pi = self.pi[which].log()
        weights = torch.cat([
            -0.5 / var, mu / var,
            (log_pi - 0.5 * (var.log().sum(dim=1) +
                             (mu * mu / var).sum(dim=1))).unsqueeze(1)
        ], dim=1)
        D = self.dim
        stats = x.new_zeros(which.numel(), 2 * D + 1)  # [Q, S, N]
        for rows, feats in self._feature_chunks(x):
            shifted = torch.addmm(-fit.row_max[rows].unsqueeze(1), feats,
                                  weights.T, alpha=fit.beta)
            # log(Z_n + sum_j e_nj): one softmax over all components
            log_norm = torch.logaddexp(fit.row_sum[rows].log(),
                                       torch.logsumexp(shifted, dim=1))
            resp = shifted.sub_(log_norm.unsqueeze(1)).exp_()
            torch.nn.functional.threshold_(resp, _RESP_FLOOR, 0.0)
            stats.addmm_(resp.T, feats)
        self.acc_sq_sum[which] += stats[:, :D]
        self.acc_sum[which] += stats[:, D:2 * D]
        self.acc_count[which] += stats[:, 2 * D]
        self._m_step_rows(which)
        self._renormalise_weights()

    def _e_step_weights(self) -> Tensor:
        """``[-1 / (2 var), mu / var, c]`` of shape ``(K, 2D+1)``.

        ``c_k = log pi_k - sum_d log(var_kd) / 2 - sum_d mu_kd^2 /
        (2 var_kd)``, so that ``[x^2, x, 1] @ W^T`` is ``log p_nk`` up to
        the constant ``-D log(2 pi) / 2`` (see :meth:`_log_2pi_term`), which
        cancels in the responsibilities. Written into a scratch buffer, no
        ``(K, D)`` temporaries. ``O(K D)``.
        """
        K, D = self.num_components, self.dim
        work = self._scratch('_weights', K, 2 * D + 1)
        quad, lin, const = work[:, :D], work[:, D:2 * D], work[:, 2 * D]
        # log var in a contiguous view of the scratch, before W fills it.
        log_var = torch.log(self.var, out=work.view(-1)[:K * D].view(K, D))
        log_det = log_var.sum(dim=1)
        torch.div(self.mu, self.var, out=lin)
        mahal_mu = torch.einsum('kd,kd->k', self.mu, lin)
        torch.div(self.var.new_full((), -0.5), self.var, out=quad)
        torch.add(self.pi.log(), log_det.add_(mahal_mu), alpha=-0.5,
                  out=const)  # pi > 0: acc_count > 0 always
        return work

    def _log_2pi_term(self) -> float:
        """The constant ``-D log(2 pi) / 2`` left out of the weights."""
        return -0.5 * self.dim * math.log(2 * math.pi)

    def _e_step(self, x: Tensor, beta: float, pairs: bool
                ) -> Tuple[Tensor, Optional[Tensor], Tensor,
                           Tuple[Tensor, Tensor]]:
        """Annealed E-step and batch statistics, chunk by chunk.

        Per chunk of rows: ``beta * log p`` in one matmul, shifted by its
        row maximum, ``exp`` (entries below ``e^-40`` exactly 0), and the
        chunk's ``resp^T [x^2, x, 1] / row_sum`` added to the statistics.

        Args:
            x (Tensor): Unit-norm rows ``(N, D)``.
            beta (float): Inverse temperature.
            pairs (bool): Also return each row's two most likely components
                (for merging).

        Returns:
            Tuple: ``stats`` ``(K, 2D+1)`` = ``[Q, S, N]``; ``top2``
            ``(N, 2)`` component indices or None; ``fit``, a
            :class:`_RowFit` (each row's best ``beta log p_nk`` and
            softmax normaliser: how well the mixture explains the row, and
            what a restarted component would take from it); and two
            scalars: the mean
            over rows of ``max_k r_nk`` and the mean ``log sum_k p_nk`` at
            beta = 1 (while beta < 1 over the first ``_LOG_LIK_ROWS`` rows
            only: it costs an extra exp pass, a logging metric need not pay
            that in full).
        """
        weights = self._e_step_weights()
        n, K, D = x.shape[0], self.num_components, self.dim
        stats = self._scratch('_stats', K, 2 * D + 1).zero_()
        pairs = pairs and K >= 2
        top2, fit = [], []
        resp_max, log_lik = x.new_zeros(()), x.new_zeros(())
        for rows, feats in self._feature_chunks(x):
            resp = self._scratch('_resp', feats.shape[0], K)
            # beta * log p (up to a constant) in one matmul, beta as alpha
            torch.addmm(resp.new_zeros(()), feats, weights.T, beta=0.0,
                        alpha=beta, out=resp)
            if pairs:
                best, idx = resp.topk(2, dim=1)
                row_max = best[:, :1]
                top2.append(idx)
            else:
                row_max = resp.amax(dim=1, keepdim=True)
            resp.sub_(row_max)
            fit.append(torch.cat([row_max, row_max], dim=1))
            if beta != 1.0 and rows.start == 0:  # before exp_(): log p - max
                head = min(feats.shape[0], _LOG_LIK_ROWS)
                # clamped: exp(-87) is still a normal fp32 number
                shifted = (resp[:head] / beta).clamp_(min=-87.0)
                log_lik = (row_max[:head] / beta + torch.logsumexp(
                    shifted, dim=1, keepdim=True)).mean()
            resp.clamp_(min=_RESP_LOG_FLOOR).exp_()
            torch.nn.functional.threshold_(resp, _RESP_FLOOR, 0.0)
            row_sum = resp.sum(dim=1, keepdim=True)
            fit[-1][:, 1:] = row_sum
            if beta == 1.0:  # free: log sum_k p_nk = row_max + log row_sum
                log_lik = log_lik + (row_max + row_sum.log()).sum() / n
            resp_max = resp_max + row_sum.reciprocal().sum() / n
            # fold the softmax normalisation 1 / row_sum into the features
            stats.addmm_(resp.T, feats.div_(row_sum))
        summary = (resp_max, log_lik + self._log_2pi_term())
        return (stats, (torch.cat(top2) if pairs else None),
                _RowFit(*torch.cat(fit).unbind(1), beta), summary)

    def _accumulate(self, stats: Tensor, rows: int) -> None:
        """Forgetting ``acc <- rho * acc + batch`` with ``rho = (1-eta)^N``.

        For ``N_k == 0`` the batch statistics are exactly 0 and ``rho_k`` is
        exactly 1, so ``acc * 1 + 0`` keeps the statistics bit for bit
        (unless ``stale_decay`` is on: then ``rho`` also holds
        :func:`.maintenance.stale_decay_factor`, at most 1). ``O(K D)``.
        """
        D = self.dim
        batch_sq, batch_sum, batch_count = (stats[:, :D], stats[:, D:2 * D],
                                            stats[:, 2 * D])
        rho = torch.pow(1.0 - self.forgetting, batch_count)  # exactly 1 at 0
        if self.stale_decay:
            rho.mul_(maintenance.stale_decay_factor(
                self.acc_count, self.prior_count, self.stale_decay, rows))
        torch.addcmul(batch_count, self.acc_count, rho, out=self.acc_count)
        rho = rho.unsqueeze(1)
        torch.addcmul(batch_sum, self.acc_sum, rho, out=self.acc_sum)
        torch.addcmul(batch_sq, self.acc_sq_sum, rho, out=self.acc_sq_sum)

    def _m_step(self) -> Optional[Tensor]:
        """Weights, variances and unit-norm means from the statistics.
        ``O(K D)``; the E-step weights' scratch holds the unnormalised
        means. With merging on, returns how far each mean moved
        (Euclidean distance, ``(K,)``: merging takes it from the means'
        slack); else None."""
        K, D = self.num_components, self.dim
        count = self.acc_count
        torch.div(count, count.sum(), out=self.pi)
        safe_count = count.clamp_min(_TINY).unsqueeze_(1)
        mean = self._scratch('_weights', K, D)
        torch.div(self.acc_sum, safe_count, out=mean)
        torch.div(self.acc_sq_sum, safe_count, out=self.var)
        self.var.addcmul_(mean, mean, value=-1.0).clamp_(min=self.min_var)
        return self._set_means(mean, slice(None),
                               shift=bool(self.merge_within))

    def _m_step_rows(self, which: Tensor) -> None:
        """Means and variances of components ``which`` from their
        statistics (weights: :meth:`_renormalise_weights`). ``O(|which| D)``.
        """
        safe_count = self.acc_count[which].clamp_min(_TINY).unsqueeze(1)
        mean = self.acc_sum[which] / safe_count
        var = self.acc_sq_sum[which] / safe_count - mean * mean
        self.var[which] = var.clamp_(min=self.min_var)
        self._set_means(mean, which)

    def _set_means(self, mean: Tensor, which,
                   shift: bool = False) -> Optional[Tensor]:
        """``mu[which] = mean / ||mean||``; rows of (near) zero or NaN norm
        keep their old mean. With ``shift``, returns how far each row's
        mean moved (Euclidean distance, ``(R,)``; computed in blocks of
        8,192 rows, no ``(K, D)`` temporary)."""
        norm = torch.linalg.vector_norm(mean, dim=1, keepdim=True)
        if not bool((norm > _TINY).all()):
            rows = ~(norm > _TINY).squeeze(1)  # also catches NaN
            mean[rows] = self.mu[which][rows]
            norm[rows] = 1.0
        mean.div_(norm)
        moved = None
        if shift:
            old = self.mu[which]
            moved = torch.cat([
                torch.linalg.vector_norm(mean[s:s + 8192] - old[s:s + 8192],
                                         dim=1)
                for s in range(0, mean.shape[0], 8192)
            ])
        self.mu[which] = mean
        return moved

    def _renormalise_weights(self) -> None:
        """``pi = acc_count / sum(acc_count)``. ``O(K)``."""
        torch.div(self.acc_count, self.acc_count.sum(), out=self.pi)


# ---------------------------------------------------------------- functions
class _RowFit(NamedTuple):
    """Per row of an update's batch, from its E-step: the maximum
    ``row_max`` ``(N,)`` of ``beta log p_nk`` (up to a constant), the
    softmax normaliser ``row_sum`` ``(N,)`` = ``sum_k exp(beta log p_nk -
    row_max)``, and ``beta``."""
    row_max: Tensor
    row_sum: Tensor
    beta: float

    @property
    def fit(self) -> Tensor:
        """``(N,)`` each row's ``max_k log p_nk`` (up to a constant)."""
        return self.row_max / self.beta


def _features(x: Tensor) -> Tensor:
    """``[x^2, x, 1]`` of shape ``(N, 2D+1)``; ``x^2 < 1e-12`` set to 0."""
    n, d = x.shape
    feats = x.new_empty(n, 2 * d + 1)
    torch.nn.functional.threshold_(torch.mul(x, x, out=feats[:, :d]),
                                   _FEAT_FLOOR, 0.0)
    feats[:, d:2 * d] = x
    feats[:, 2 * d] = 1.0
    return feats


def _check_int(name: str, value: int, minimum: Optional[int]) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f'{name} must be an int, got {value!r}')
    if minimum is not None and value < minimum:
        raise ValueError(f'{name} must be >= {minimum}, got {value}')


def _check_schedule(name: str, value: Union[int, float]) -> Union[int, float]:
    """A schedule point: an int >= 0 (updates) or a float in (0, 1] (a
    fraction of training)."""
    if isinstance(value, float):
        if not 0.0 < value <= 1.0:
            raise ValueError(
                f'{name} must be an int >= 0 (updates) or a float in (0, 1] '
                f'(a fraction of the training), got {value!r}')
        return value
    _check_int(name, value, 0)
    return value


def _updates(value: Union[int, float],
             total: Optional[int]) -> Optional[int]:
    """Updates of a schedule point: an int as is, a fraction of ``total``
    rounded (None while ``total`` is unknown)."""
    if isinstance(value, int):
        return value
    return None if total is None else round(value * total)


def _describe(value: Union[int, float], resolved: Optional[int]) -> str:
    if isinstance(value, int):
        return str(value)
    return f'{value:g} of training' + (
        '' if resolved is None else f' = {resolved}')


def _check_number(name: str, value: float, low: float, high: float,
                  interval: str, low_open: bool = False,
                  high_open: bool = False) -> None:
    """``value`` is a real number in the interval (open ends as given)."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) \
        and not math.isnan(value)
    if ok:
        ok = (value > low if low_open else value >= low) and \
            (value < high if high_open else value <= high)
    if not ok:
        raise ValueError(f'{name} must be a number in {interval}, '
                         f'got {value!r}')


def build_mixture(num_components: int, dim: int,
                  options: Optional[dict] = None,
                  where: str = 'gmm') -> OnlineGaussianMixture:
    """An :class:`OnlineGaussianMixture` from a config's keyword dict.

    Unknown keys raise an error that names the mixture, the config key path
    (``where``, e.g. ``'model.head.gmm'``), the closest accepted key and every
    accepted key -- instead of a bare ``TypeError`` -- and options that were
    renamed say what replaced them.

    Args:
        num_components (int): ``K``.
        dim (int): ``D``.
        options (dict, optional): Keyword arguments of the mixture.
        where (str): Where ``options`` sit in the config, for messages.
            Defaults to ``'gmm'``.

    Returns:
        OnlineGaussianMixture: The mixture.

    Raises:
        ValueError: On an unknown key or a bad value.
    """
    options = dict(options or {})
    accepted = [name for name in inspect.signature(
        OnlineGaussianMixture.__init__).parameters
        if name not in ('self', 'num_components', 'dim')]
    for key in options:
        if key in accepted:
            continue
        if key in _RENAMED:
            hint = f'it was replaced by {_RENAMED[key]}'
        else:
            close = difflib.get_close_matches(str(key), accepted, n=1)
            hint = f'did you mean {close[0]!r}?' if close else \
                'it is not an option of the mixture'
        raise ValueError(
            f'{where}: unknown OnlineGaussianMixture option {key!r} ({hint}). '
            f'Accepted: {", ".join(accepted)}')
    try:
        return OnlineGaussianMixture(num_components, dim, **options)
    except ValueError as err:
        raise ValueError(f'{where}: {err}') from err
