"""Online EM for a diagonal Gaussian mixture on the unit sphere.

The prototype step of decoupled Gaussian-mixture prototypes ("Why Prototypes
Collapse", https://arxiv.org/abs/2510.20108): the prototypes are the unit-norm
means of a mixture fitted to the teacher's L2-normalised embeddings by one
online EM step per training iteration, with deterministic annealing of the
E-step and responsibility-based forgetting of the sufficient statistics (see
``METHOD.md``, "Online EM").

Pure PyTorch on purpose (no mmengine / mmpretrain): the algorithm and hooks
own the scheduling, this module owns the math and its state.
"""
import math
from typing import Dict, List, Optional, Tuple

import torch
from torch import Tensor, nn

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
_EXP_LOG_FLOOR = -87.0  # exp(-87) is still a normal fp32 number
_LOG_LIK_ROWS = 64
# A component is idle (reseed_idle) while its accumulated count exceeds the
# prior by less than this: under half a row of responsibility in all.
# Exact equality would be fragile: in the annealed E-step far components
# get masses of ~1e-15, which move the count but not the mean.
_IDLE_MASS = 0.5  # rows of the logged log-likelihood while beta < 1
_INITS = ('kmeans++', 'sample', 'uniform')
_SCHEDULES = ('cosine', 'linear')
_RESEED_PICKS = ('random', 'kmeans++')
_MERGE_ROUNDS = 8  # merge passes per update (each pass merges disjoint pairs)
_MERGE_BLOCK = 1 << 22  # similarities per block when searching close pairs


class _IeeeFp32Matmul:
    """Run CUDA matmuls in full fp32 (no TF32) inside a ``with`` block.

    The E-step expands ``-(x - mu)^2 / (2 var)`` into three terms of size
    ``~1 / var`` that cancel; TF32's 10-bit mantissa would make the log
    densities meaningless. Uses the per-backend precision API only (mixing it
    with the legacy ``allow_tf32`` flags raises in recent PyTorch) and
    restores the caller's setting. A no-op off CUDA.

    Args:
        device (torch.device): Device the matmuls run on.
    """

    def __init__(self, device: torch.device) -> None:
        matmul = getattr(torch.backends.cuda, 'matmul', None)
        self._matmul = matmul if (device.type == 'cuda' and hasattr(
            matmul, 'fp32_precision')) else None
        self._previous: Optional[str] = None

    def __enter__(self) -> None:
        if self._matmul is not None:
            self._previous = self._matmul.fp32_precision
            self._matmul.fp32_precision = 'ieee'

    def __exit__(self, *exc_info: object) -> None:
        if self._matmul is not None:
            self._matmul.fp32_precision = self._previous


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

    All state is registered as buffers (float32 apart from the counters), so
    ``state_dict`` and checkpoints carry it. Scratch space lives in
    non-persistent buffers allocated once, so a step at ``K = 65536``,
    ``D = 256`` allocates no ``(K, D)`` or ``(N, K)`` temporaries: the E-step
    is one matmul of ``[x^2, x, 1]`` ``(N, 2D+1)`` against
    ``[-1 / (2 var), mu / var, c]`` ``(K, 2D+1)`` (``beta`` as its scale), the
    M-step one matmul of the responsibilities against ``[x^2, x, 1]``.
    Responsibilities below ``e^-40`` times the row maximum are exactly 0
    (fp32 denormals would slow the CPU matmuls a hundredfold).

    Identical inputs give identical results on every process (the
    initialisation uses a CPU generator seeded with ``seed``), which is what
    multi-process training relies on to keep the prototypes in sync.

    Note:
        The scratch buffers (~``(K, 2D+1) + (N, K)`` floats) are not saved
        but are listed by ``buffers()``; keep the mixture out of a
        ``DistributedDataParallel`` module with ``broadcast_buffers=True``,
        which would broadcast every buffer each iteration.

    Args:
        num_components (int): Number of components ``K`` (>= 1).
        dim (int): Feature dimension ``D`` (>= 1).
        forgetting (float): Forgetting rate ``eta`` in (0, 1); a component
            receiving responsibility mass ``N_k`` scales its statistics by
            ``(1 - eta) ** N_k``. Defaults to 0.01.
        beta_start (float): Initial inverse temperature ``beta_0`` in (0, 1].
            Defaults to 0.3.
        beta_iters (int): Updates over which ``beta`` rises to 1 (>= 0; 0
            means ``beta = 1`` always). Defaults to 1000.
        beta_schedule (str): ``'cosine'`` or ``'linear'``. Defaults to
            ``'cosine'``.
        min_var (float): Lower bound of every variance (> 0). Defaults to
            1e-4.
        init (str): Initialisation of the means on the first update:
            ``'kmeans++'`` (k-means++ seeding on the batch with the cosine
            distance), ``'sample'`` (random rows of the batch) or
            ``'uniform'`` (uniform on the sphere, ignores the batch).
            Defaults to ``'kmeans++'``.
        init_noise (float): Expected norm of the Gaussian noise added to the
            data-initialised means before renormalising (>= 0), so that
            duplicates (``K > N``) separate. Defaults to 0.01.
        init_samples (int, optional): Rows to pool before the data
            initialisation (``init`` other than ``'uniform'``): updates are
            buffered until this many rows arrived, then the means are drawn
            from the pool and the first EM step runs on it. ``None`` means
            ``num_components``, so that K distinct embeddings seed K means
            even when K exceeds the batch (with fewer rows, several means
            would start at the same point and never separate). 1 initialises
            on the first batch. The pool is not checkpointed: a resume
            during pooling pools again. Defaults to None.
        prior_count (float): Initial ``acc_count`` of every component (> 0).
            Defaults to 1.0.
        seed (int): Seed of the initialisation. Defaults to 0.
        reseed_idle (int): Our option, off by default (0): before each EM
            step from update ``reseed_start`` on, move up to this many idle
            components -- those whose ``acc_count`` exceeds ``prior_count``
            by less than half a row, i.e. that received less than half a
            row of responsibility mass in all since their
            (re)initialisation -- onto random rows of the
            batch (plus ``init_noise``), with the batch variance and the
            prior statistics, as scikit-learn's ``MiniBatchKMeans``
            reassigns centres that receive no data. Components that once
            received data keep their statistics (tail modes). The draw uses
            a generator seeded with ``(seed, num_updates)``: identical on
            every rank and after a resume. Defaults to 0.
        reseed_start (int): First update that may re-seed (>= 0). Defaults
            to 0.
        reseed_pick (str): Which batch rows re-seeded components start on:
            ``'random'`` (uniform, as ``MiniBatchKMeans``) or ``'kmeans++'``
            (k-means++ continued from the current means: a row is drawn with
            probability proportional to ``1 - max cos`` to the means and to
            the rows already drawn, so new components start where the data
            is least covered, not on top of a mean). Defaults to 'random'.
        merge_within (float): Our option, off by default (0): after each
            M-step, two components whose unit-norm means are closer than
            this (Euclidean distance, the collapse metric's ``eps``) are
            merged -- the lighter one's statistics are added to the
            heavier one's (moment matching, as the merge move of split and
            merge EM) -- and the freed component restarts with the prior
            statistics on a batch row at least ``merge_within`` from every
            mean (continued k-means++ among such rows; a random direction
            if no row is that far). Repeated while pairs remain (at most 8
            passes), so after an update no two means are within
            ``merge_within`` of each other unless the batch left no room.
            With ``reseed_pick='kmeans++'`` the re-seeded rows keep the same
            distance. In [0, 2). Defaults to 0.
        stale_decay (float): Our option, off by default (0): every update
            also scales each component's statistics by ``1 - stale_decay``,
            but never below ``prior_count`` pseudo-observations. Under
            responsibility-based forgetting alone a component that stops
            receiving data keeps its count (and weight) for ever; with this
            its count fades to the prior count, its weight with it, and it
            becomes idle again (then re-seeded if ``reseed_idle`` is on).
            Means and variances are unchanged by the scaling. In [0, 1).
            Defaults to 0.
    """

    pi: Tensor
    mu: Tensor
    var: Tensor
    acc_count: Tensor
    acc_sum: Tensor
    acc_sq_sum: Tensor
    num_updates: Tensor
    initialized: Tensor
    _work: Tensor
    _resp: Tensor

    def __init__(self,
                 num_components: int,
                 dim: int,
                 *,
                 forgetting: float = 0.01,
                 beta_start: float = 0.3,
                 beta_iters: int = 1000,
                 beta_schedule: str = 'cosine',
                 min_var: float = 1e-4,
                 init: str = 'kmeans++',
                 init_noise: float = 0.01,
                 init_samples: Optional[int] = None,
                 prior_count: float = 1.0,
                 seed: int = 0,
                 reseed_idle: int = 0,
                 reseed_start: int = 0,
                 reseed_pick: str = 'random',
                 merge_within: float = 0.0,
                 stale_decay: float = 0.0) -> None:
        super().__init__()
        _check_int('num_components', num_components, 1)
        _check_int('dim', dim, 1)
        _check_int('beta_iters', beta_iters, 0)
        _check_int('seed', seed, None)
        _check_int('reseed_idle', reseed_idle, 0)
        _check_int('reseed_start', reseed_start, 0)
        if init_samples is not None:
            _check_int('init_samples', init_samples, 1)
        if not 0.0 < forgetting < 1.0:
            raise ValueError(
                f'forgetting must be in (0, 1), got {forgetting!r}')
        if not 0.0 < beta_start <= 1.0:
            raise ValueError(
                f'beta_start must be in (0, 1], got {beta_start!r}')
        if beta_schedule not in _SCHEDULES:
            raise ValueError(f'beta_schedule must be one of {_SCHEDULES}, '
                             f'got {beta_schedule!r}')
        if not (min_var > 0.0 and math.isfinite(min_var)):
            raise ValueError(
                f'min_var must be a finite number > 0, got {min_var!r}')
        if not (isinstance(merge_within, (int, float))
                and 0.0 <= merge_within < 2.0):
            raise ValueError('merge_within must be a number in [0, 2) (a '
                             'distance between unit vectors; 0 = off), '
                             f'got {merge_within!r}')
        if not (isinstance(stale_decay, (int, float))
                and 0.0 <= stale_decay < 1.0):
            raise ValueError('stale_decay must be a number in [0, 1) (a '
                             'decay per update; 0 = off), '
                             f'got {stale_decay!r}')
        if reseed_pick not in _RESEED_PICKS:
            raise ValueError(f'reseed_pick must be one of {_RESEED_PICKS}, '
                             f'got {reseed_pick!r}')
        if init not in _INITS:
            raise ValueError(f'init must be one of {_INITS}, got {init!r}')
        if not (init_noise >= 0.0 and math.isfinite(init_noise)):
            raise ValueError(
                f'init_noise must be a finite number >= 0, got {init_noise!r}')
        if not (prior_count > 0.0 and math.isfinite(prior_count)):
            raise ValueError('prior_count must be a finite number > 0, '
                             f'got {prior_count!r}')

        self.num_components = num_components
        self.dim = dim
        self.forgetting = float(forgetting)
        self.beta_start = float(beta_start)
        self.beta_iters = beta_iters
        self.beta_schedule = beta_schedule
        self.min_var = float(min_var)
        self.init = init
        self.init_noise = float(init_noise)
        self.prior_count = float(prior_count)
        self.seed = seed
        self.reseed_idle = reseed_idle
        self.reseed_start = reseed_start
        self.reseed_pick = reseed_pick
        self.merge_within = float(merge_within)
        self.stale_decay = float(stale_decay)
        self.init_samples = num_components if init_samples is None \
            else init_samples
        self._init_pool: List[Tensor] = []  # rows awaiting initialisation

        K, D = num_components, dim
        # Valid unit-norm placeholders until the first update initialises
        # from data, so the prototypes can be read (e.g. for logits) at once.
        self.register_buffer('pi', torch.full((K, ), 1.0 / K))
        self.register_buffer('mu', self._uniform_means(torch.device('cpu')))
        self.register_buffer('var', torch.ones(K, D))
        self.register_buffer('acc_count', torch.zeros(K))
        self.register_buffer('acc_sum', torch.zeros(K, D))
        self.register_buffer('acc_sq_sum', torch.zeros(K, D))
        self.register_buffer('num_updates', torch.zeros((), dtype=torch.long))
        self.register_buffer('initialized', torch.zeros((), dtype=torch.bool))
        # Scratch (K, 2D+1), allocated on first use: the E-step weights, then
        # the M-step statistics, then the unnormalised means.
        self.register_buffer('_work', torch.empty(0), persistent=False)
        # Scratch (N, K) for the responsibilities, reallocated when N changes.
        self.register_buffer('_resp', torch.empty(0), persistent=False)

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
        return self._beta_at(int(self.num_updates))

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

    def extra_repr(self) -> str:
        return (f'num_components={self.num_components}, dim={self.dim}, '
                f'forgetting={self.forgetting}, beta={self.beta_schedule}'
                f'({self.beta_start} -> 1 over {self.beta_iters} updates), '
                f'min_var={self.min_var}, init={self.init!r}' +
                (f', reseed_idle={self.reseed_idle} from update '
                 f'{self.reseed_start} ({self.reseed_pick})'
                 if self.reseed_idle else '') +
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
        always runs in fp32 with autocast disabled.

        Args:
            x (Tensor): Embeddings of shape ``(N, D)``, any float dtype.

        While rows are pooled for the initialisation (see ``init_samples``)
        no EM step runs and only ``beta`` and ``init_pooled`` are returned.

        Returns:
            Dict[str, float]: ``beta`` (the beta used), ``resp_max_mean``
            (mean over the batch of ``max_k r_nk``), ``effective_components``
            (``exp`` of the entropy of the weights), ``weight_min``,
            ``weight_max`` and ``log_likelihood`` (mean ``log p(x_n)`` at
            beta = 1, under the parameters before the step; while beta < 1
            over the first 64 rows of the batch only).

        Raises:
            ValueError: If ``x`` is not ``(N, D)`` with ``N >= 1`` or holds
                NaN/Inf; the state is then left untouched.
        """
        x = self._prepare(x)  # validates before any state change
        if not bool(self.initialized) and self.init != 'uniform':
            self._init_pool.append(x)
            pooled = sum(rows.shape[0] for rows in self._init_pool)
            if pooled < self.init_samples:
                return dict(beta=self._beta_at(0), init_pooled=float(pooled))
            x = torch.cat(self._init_pool)
            self._init_pool.clear()
        with torch.autocast(device_type=x.device.type, enabled=False), \
                _IeeeFp32Matmul(x.device):
            if not bool(self.initialized):
                self._initialise(x)
            # one stream per update: identical on every rank and on resume
            gen = torch.Generator().manual_seed(
                self.seed * 1_000_003 + int(self.num_updates)) \
                if self.reseed_idle or self.merge_within else None
            reseeded = self._reseed_idle(x, gen)
            beta = self._beta_at(int(self.num_updates))
            feats = self._features(x)
            resp, row_sum, log_lik = self._e_step(feats, beta)
            # Fold the softmax normalisation 1 / row_sum into the features.
            stats = self._batch_stats(resp, feats.div_(row_sum))
            self._accumulate(stats)
            self._m_step()
            merged = self._merge_close(x, gen)
            self.num_updates += 1

            resp_max_mean = row_sum.reciprocal().mean()  # max_k r~_nk == 1
            entropy = torch.special.entr(self.pi).sum()
            pi_min, pi_max = torch.aminmax(self.pi)
            values = torch.stack(
                [resp_max_mean,
                 entropy.exp(), pi_min, pi_max, log_lik]).tolist()
        out = dict(reseeded=float(reseeded)) if self.reseed_idle else {}
        if self.merge_within:
            out['merged'] = float(merged)
        return dict(beta=beta,
                    **out,
                    resp_max_mean=values[0],
                    effective_components=values[1],
                    weight_min=values[2],
                    weight_max=values[3],
                    log_likelihood=values[4])

    @torch.no_grad()
    def log_prob(self, x: Tensor) -> Tensor:
        """Joint log densities ``log pi_k + log N(x_n | mu_k, var_k)``.

        Args:
            x (Tensor): Embeddings of shape ``(N, D)`` (L2-normalised here).

        Returns:
            Tensor: fp32 log densities of shape ``(N, K)``.
        """
        x = self._prepare(x)
        self._require_initialised()
        with torch.autocast(device_type=x.device.type, enabled=False), \
                _IeeeFp32Matmul(x.device):
            feats = self._features(x)
            log_p = torch.matmul(feats, self._e_step_weights().T)
            return log_p.add_(self._log_2pi_term())

    @torch.no_grad()
    def responsibilities(self,
                         x: Tensor,
                         beta: Optional[float] = None) -> Tensor:
        """Posterior ``softmax_k(beta * log p_nk)``; changes no state.

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
        return torch.nn.functional.normalize(x, dim=1)

    def _require_initialised(self) -> None:
        if not bool(self.initialized):
            raise ValueError('OnlineGaussianMixture is not initialised: '
                             'call update() first')

    def _uniform_means(self, device: torch.device) -> Tensor:
        gen = torch.Generator().manual_seed(self.seed)
        mu = torch.randn(self.num_components, self.dim, generator=gen)
        return torch.nn.functional.normalize(mu, dim=1).to(device)

    def _workspace(self) -> Tensor:
        """The ``(K, 2D+1)`` scratch buffer, (re)allocated when needed."""
        shape = (self.num_components, 2 * self.dim + 1)
        if (self._work.shape != shape or self._work.device != self.mu.device
                or self._work.dtype != _F32):
            self._work = torch.zeros(shape, dtype=_F32, device=self.mu.device)
        return self._work

    @staticmethod
    def _features(x: Tensor) -> Tensor:
        """``[x^2, x, 1]`` of shape ``(N, 2D+1)``; ``x^2 < 1e-12`` set to 0."""
        n, d = x.shape
        feats = x.new_empty(n, 2 * d + 1)
        torch.nn.functional.threshold_(torch.mul(x, x, out=feats[:, :d]),
                                       _FEAT_FLOOR, 0.0)
        feats[:, d:2 * d] = x
        feats[:, 2 * d] = 1.0
        return feats

    # ------------------------------------------------------------- EM pieces
    def _initialise(self, x: Tensor) -> None:
        """Set means, variances, weights and prior statistics from ``x``."""
        K, D = self.num_components, self.dim
        if self.init == 'uniform':
            mu = self._uniform_means(x.device)
        else:
            # On the CPU with a fixed seed: identical on every process.
            gen = torch.Generator().manual_seed(self.seed)
            data = x.cpu()
            if self.init == 'kmeans++':
                idx = _kmeans_pp_indices(data, K, gen)
            else:
                idx = _sample_indices(data.shape[0], K, gen)
            mu = data[idx]
            if self.init_noise > 0:
                noise = torch.randn(K, D, generator=gen)
                mu.add_(noise, alpha=self.init_noise / math.sqrt(D))
            mu = _normalise_or_random(mu, gen).to(x.device)
        var = x.var(dim=0, correction=0).clamp_min_(self.min_var)
        self.mu.copy_(mu)
        self.var.copy_(var.expand(K, D))
        self.pi.fill_(1.0 / K)
        self.acc_count.fill_(self.prior_count)
        torch.mul(self.mu, self.prior_count, out=self.acc_sum)
        torch.addcmul(self.var, self.mu, self.mu, out=self.acc_sq_sum)
        self.acc_sq_sum.mul_(self.prior_count)
        self.initialized.fill_(True)

    def _reseed_idle(self, x: Tensor,
                     gen: Optional[torch.Generator]) -> int:
        """Move up to ``reseed_idle`` idle components onto rows of ``x``.

        Args:
            x (Tensor): Unit-norm batch of shape ``(N, D)``.
            gen (torch.Generator, optional): CPU generator of this update
                (None only when re-seeding and merging are both off).

        Returns:
            int: How many components were moved.
        """
        if not self.reseed_idle or int(self.num_updates) < self.reseed_start:
            return 0
        idle = torch.nonzero(
            self.acc_count < self.prior_count + _IDLE_MASS).squeeze(1)
        if idle.numel() == 0:
            return 0
        K, D = idle.numel(), self.dim
        count = min(self.reseed_idle, K)
        which = idle.cpu()[torch.randperm(K, generator=gen)[:count]]
        data = x.cpu()
        if self.reseed_pick == 'kmeans++':
            nearest = (data @ self.mu.cpu().T).amax(dim=1)  # (N,) cos
            rows = _kmeans_pp_indices(data, count, gen, start=nearest,
                                      min_gap=self._merge_gap())
        else:
            rows = _sample_indices(x.shape[0], count, gen)
        mu = data[rows]
        if self.init_noise > 0:
            mu.add_(torch.randn(count, D, generator=gen),
                    alpha=self.init_noise / math.sqrt(D))
        self._restart(which.to(x.device),
                      _normalise_or_random(mu, gen).to(x.device), x)
        # weights stay as they are until this step's M-step renormalises
        return count

    def _merge_gap(self) -> float:
        """``1 - cos`` below which two unit vectors are within
        ``merge_within`` (``||a - b||^2 = 2 (1 - cos)``); 1e-6 when off."""
        return max(self.merge_within**2 / 2.0, 1e-6)

    def _close_pairs(self) -> Tensor:
        """Pairs ``(i, j)``, ``i < j``, of means closer than
        ``merge_within``, closest first, shape ``(P, 2)`` (on the CPU).

        Candidates from fp32 similarities in row blocks (never ``(K, K)``
        at large K), decided exactly on float64 differences.
        """
        K = self.num_components
        cut = 1.0 - self._merge_gap() - 1e-4  # fp32 margin, refined below
        block = max(1, _MERGE_BLOCK // K)
        found = []
        for start in range(0, K, block):
            sim = self.mu[start:start + block] @ self.mu.T
            i, j = torch.nonzero(sim > cut, as_tuple=True)
            i = i + start
            keep = j > i
            found.append(torch.stack([i[keep], j[keep]], dim=1).cpu())
        pairs = torch.cat(found)
        if pairs.numel() == 0:
            return pairs
        # as the collapse metric decides: float64-normalised rows
        a, b = (torch.nn.functional.normalize(
            self.mu[pairs[:, c].to(self.mu.device)].cpu().double(), dim=1)
            for c in (0, 1))
        dist = torch.linalg.vector_norm(a - b, dim=1)
        close = dist < self.merge_within
        order = torch.argsort(dist[close], stable=True)
        return pairs[close][order]

    def _merge_close(self, x: Tensor,
                     gen: Optional[torch.Generator]) -> int:
        """Merge components closer than ``merge_within`` and restart the
        freed ones on far rows of ``x`` (see the class docstring).

        Args:
            x (Tensor): Unit-norm batch of shape ``(N, D)``.
            gen (torch.Generator, optional): CPU generator of this update
                (None only when re-seeding and merging are both off).

        Returns:
            int: How many components were merged away (and restarted).
        """
        if not self.merge_within:
            return 0
        total = 0
        for _ in range(_MERGE_ROUNDS):
            pairs = self._close_pairs()
            if pairs.numel() == 0:
                break
            count = self.acc_count.cpu()
            taken, keep, drop = set(), [], []
            for i, j in pairs.tolist():  # greedy: disjoint pairs
                if i in taken or j in taken:
                    continue
                taken.update((i, j))
                heavier = count[j] > count[i]
                keep.append(j if heavier else i)
                drop.append(i if heavier else j)
            keep_t = torch.tensor(keep, device=self.mu.device)
            drop_t = torch.tensor(drop, device=self.mu.device)
            for acc in (self.acc_count, self.acc_sum, self.acc_sq_sum):
                acc[keep_t] += acc[drop_t]
            self._restart_on_far_rows(drop_t, x, gen)
            self._m_step()  # the merged means, variances and all weights
            total += len(drop)
        return total

    def _restart_on_far_rows(self, which: Tensor, x: Tensor,
                             gen: torch.Generator) -> None:
        """Prior statistics for components ``which``, on rows of ``x``
        farther than ``merge_within`` from every mean and from each other
        (a random direction for those left without such a row)."""
        count, D = which.numel(), self.dim
        data = x.cpu()
        keep = torch.ones(self.num_components, dtype=torch.bool)
        keep[which.cpu()] = False
        nearest = (data @ self.mu.cpu()[keep].T).amax(dim=1)
        rows = _kmeans_pp_indices(data, count, gen, start=nearest,
                                  min_gap=self._merge_gap(), fill=False)
        mu = torch.cat([data[rows], torch.randn(count - rows.numel(), D,
                                                generator=gen)])
        self._restart(which, _normalise_or_random(mu, gen).to(x.device), x)

    def _restart(self, which: Tensor, mu: Tensor, x: Tensor) -> None:
        """Components ``which`` start afresh at unit-norm means ``mu``
        ``(len(which), D)``: the batch variance and the prior statistics."""
        var = x.var(dim=0, correction=0).clamp_min_(self.min_var) \
            if x.shape[0] > 1 else self.var[which].mean(dim=0)
        self.mu[which] = mu
        self.var[which] = var.expand(which.numel(), self.dim)
        self.acc_count[which] = self.prior_count
        self.acc_sum[which] = mu * self.prior_count
        self.acc_sq_sum[which] = (self.var[which] + mu * mu) * \
            self.prior_count

    def _e_step_weights(self) -> Tensor:
        """``[-1 / (2 var), mu / var, c]`` of shape ``(K, 2D+1)``.

        ``c_k = log pi_k - sum_d log(var_kd) / 2 - sum_d mu_kd^2 /
        (2 var_kd)``, so that ``[x^2, x, 1] @ W^T`` is ``log p_nk`` up to
        the constant ``-D log(2 pi) / 2`` (see :meth:`_log_2pi_term`), which
        cancels in the responsibilities. Written into the scratch buffer, no
        ``(K, D)`` temporaries.
        """
        K, D = self.num_components, self.dim
        work = self._workspace()
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

    def _e_step(self, feats: Tensor,
                beta: float) -> Tuple[Tensor, Tensor, Tensor]:
        """Unnormalised annealed responsibilities and the log-likelihood.

        Args:
            feats (Tensor): ``[x^2, x, 1]`` of shape ``(N, 2D+1)``.
            beta (float): Inverse temperature.

        Returns:
            Tuple[Tensor, Tensor, Tensor]: ``resp`` ``(N, K)`` with
            ``resp_nk = exp(beta * log p_nk - max_j beta * log p_nj)`` (row
            maximum exactly 1; entries below ``e^-40`` are exactly 0, see
            ``_RESP_LOG_FLOOR``), ``row_sum`` ``(N, 1)`` =
            ``sum_k resp_nk`` (``resp / row_sum`` is the softmax) and the
            scalar mean ``log sum_k p_nk`` at beta = 1 (while beta < 1,
            over the first ``_LOG_LIK_ROWS`` rows only: it costs an extra
            exp pass, a logging metric need not pay that in full).
        """
        weights = self._e_step_weights()
        n, K = feats.shape[0], self.num_components
        resp = self._resp
        if (resp.shape != (n, K) or resp.device != feats.device
                or resp.dtype != _F32):
            resp = self._resp = feats.new_empty(n, K)
        # beta * log p (up to a constant) in one matmul, beta as its alpha.
        torch.addmm(resp.new_zeros(()),
                    feats,
                    weights.T,
                    beta=0.0,
                    alpha=beta,
                    out=resp)
        row_max = resp.amax(dim=1, keepdim=True)
        resp.sub_(row_max)
        if beta != 1.0:  # needs exp(log p - row_max / beta), before exp_()
            rows = min(n, _LOG_LIK_ROWS)
            log_lik = (row_max[:rows] / beta + self._row_log_sum_exp(
                resp[:rows], 1.0 / beta)).mean() + self._log_2pi_term()
        resp.clamp_(min=_RESP_LOG_FLOOR).exp_()
        torch.nn.functional.threshold_(resp, _RESP_FLOOR, 0.0)
        row_sum = resp.sum(dim=1, keepdim=True)
        if beta == 1.0:  # free: log sum_k p_nk = row_max + log row_sum
            log_lik = (row_max + row_sum.log()).mean() + self._log_2pi_term()
        return resp, row_sum, log_lik

    def _row_log_sum_exp(self, shifted: Tensor, scale: float) -> Tensor:
        """``log sum_k exp(scale * shifted_nk)`` for rows with maximum 0.

        Uses the scratch buffer, free between the two matmuls, as temporary
        (row blocks of at most ``2D+1`` rows), so nothing ``(N, K)`` is
        allocated.
        """
        n, K = shifted.shape
        flat = self._workspace().view(-1)
        block = flat.numel() // K
        sums = []
        for start in range(0, n, block):
            rows = shifted[start:start + block]
            tmp = flat[:rows.numel()].view_as(rows)
            torch.mul(rows, scale, out=tmp).clamp_(min=_EXP_LOG_FLOOR).exp_()
            sums.append(tmp.sum(dim=1, keepdim=True))
        return torch.cat(sums).log_()

    def _batch_stats(self, resp: Tensor, feats: Tensor) -> Tensor:
        """``resp^T feats`` = ``[Q, S, N]`` of shape ``(K, 2D+1)``.

        Overwrites the scratch buffer (the E-step weights are spent).
        """
        return torch.matmul(resp.T, feats, out=self._workspace())

    def _accumulate(self, stats: Tensor) -> None:
        """Forgetting ``acc <- rho * acc + batch`` with ``rho = (1-eta)^N``.

        For ``N_k == 0`` the batch statistics are exactly 0 and ``rho_k`` is
        exactly 1, so ``acc * 1 + 0`` keeps the statistics bit for bit
        (unless ``stale_decay`` is on: then ``rho`` also holds
        ``max(1 - stale_decay, prior_count / acc_count)``, at most 1).
        """
        D = self.dim
        batch_sq, batch_sum, batch_count = (stats[:, :D], stats[:, D:2 * D],
                                            stats[:, 2 * D])
        rho = torch.pow(1.0 - self.forgetting, batch_count)  # exactly 1 at 0
        if self.stale_decay:
            # every count shrinks towards the prior count, never below it
            # (no underflow); scaling all three statistics alike keeps the
            # mean and the variance
            decay = (self.prior_count / self.acc_count.clamp_min(_TINY)
                     ).clamp_(min=1.0 - self.stale_decay, max=1.0)
            rho.mul_(decay)
        torch.addcmul(batch_count, self.acc_count, rho, out=self.acc_count)
        rho = rho.unsqueeze(1)
        torch.addcmul(batch_sum, self.acc_sum, rho, out=self.acc_sum)
        torch.addcmul(batch_sq, self.acc_sq_sum, rho, out=self.acc_sq_sum)

    def _m_step(self) -> None:
        """Weights, variances and unit-norm means from the statistics."""
        K, D = self.num_components, self.dim
        count = self.acc_count
        torch.div(count, count.sum(), out=self.pi)
        safe_count = count.clamp_min(_TINY).unsqueeze_(1)
        # Unnormalised means m in a contiguous (K, D) view of the scratch.
        mean = self._workspace().view(-1)[:K * D].view(K, D)
        torch.div(self.acc_sum, safe_count, out=mean)
        torch.div(self.acc_sq_sum, safe_count, out=self.var)
        self.var.addcmul_(mean, mean, value=-1.0).clamp_(min=self.min_var)
        norm = torch.linalg.vector_norm(mean, dim=1, keepdim=True)
        if not bool((norm > _TINY).all()):  # keep the old mean of such rows
            rows = ~(norm > _TINY).squeeze(1)  # also catches NaN
            mean[rows] = self.mu[rows]
            norm[rows] = 1.0
        torch.div(mean, norm, out=self.mu)


# ---------------------------------------------------------------- functions
def _check_int(name: str, value: int, minimum: Optional[int]) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f'{name} must be an int, got {value!r}')
    if minimum is not None and value < minimum:
        raise ValueError(f'{name} must be >= {minimum}, got {value}')


def _sample_indices(n: int, k: int, gen: torch.Generator) -> Tensor:
    """``k`` row indices: a permutation of the rows, repeated as needed."""
    reps = -(-k // n)
    return torch.cat([torch.randperm(n, generator=gen)
                      for _ in range(reps)])[:k]


def _kmeans_pp_indices(x: Tensor,
                       k: int,
                       gen: torch.Generator,
                       start: Optional[Tensor] = None,
                       min_gap: float = 1e-6,
                       fill: bool = True) -> Tensor:
    """k-means++ seeding on unit-norm rows with the cosine distance.

    The next centre is drawn with probability proportional to
    ``1 - max cos(x, centres)`` (= half the squared Euclidean distance on the
    sphere, i.e. the usual D^2 rule). Once every distinct row is chosen, the
    remaining centres are drawn uniformly with replacement.

    Args:
        x (Tensor): Unit-norm rows of shape ``(N, D)`` (CPU).
        k (int): Number of centres.
        gen (torch.Generator): CPU generator.
        start (Tensor, optional): ``(N,)`` cosine of each row to existing
            centres (continue a seeding: every centre drawn here is new);
            None starts from a uniformly drawn row. Defaults to None.
        min_gap (float): Rows whose ``1 - cos`` to a centre is at most this
            are never drawn (1e-6: (near-)duplicates). Defaults to 1e-6.
        fill (bool): Once no row is left to draw, fill up to ``k`` with
            uniform draws (with replacement); False returns fewer indices.
            Defaults to True.

    Returns:
        Tensor: Row indices of shape ``(k,)`` (at most ``k`` if not
        ``fill``).
    """
    n = x.shape[0]
    x = x.double()  # fp64: draws robust to BLAS rounding differences
    # The Gram matrix makes each step a row lookup (no per-step matmul).
    gram = x @ x.T if n <= 4096 else None

    def distance_to(i: int) -> Tensor:
        cos = gram[i] if gram is not None else x @ x[i]
        # (Near-)duplicates of a centre, and the centre itself, whose
        # distance rounds above 0 with fp32-normalised rows, count as 0.
        return torch.nn.functional.threshold(1.0 - cos, min_gap, 0.0)

    if start is None:
        chosen = [int(torch.randint(n, (1, ), generator=gen))]
        dist = distance_to(chosen[0])
    else:
        chosen = []
        dist = torch.nn.functional.threshold(1.0 - start.double(), min_gap,
                                             0.0)
    while len(chosen) < k:
        if not float(dist.sum()) > 0.0:  # every distinct row is chosen
            break
        idx = int(torch.multinomial(dist, 1, generator=gen))
        chosen.append(idx)
        torch.minimum(dist, distance_to(idx), out=dist)
    rest = k - len(chosen) if fill else 0
    extra = torch.randint(n, (rest, ), generator=gen)
    return torch.cat([torch.tensor(chosen, dtype=torch.long), extra])


def _normalise_or_random(mu: Tensor, gen: torch.Generator) -> Tensor:
    """L2-normalise rows; rows of (near) zero norm get a random direction."""
    norm = torch.linalg.vector_norm(mu, dim=1, keepdim=True)
    degenerate = ~(norm > 1e-6)
    if bool(degenerate.any()):
        rows = degenerate.squeeze(1)
        mu[rows] = torch.randn(int(rows.sum()), mu.shape[1], generator=gen)
    return torch.nn.functional.normalize(mu, dim=1)
