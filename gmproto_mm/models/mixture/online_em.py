"""Online EM for a diagonal Gaussian mixture on the unit sphere.

The prototype step of decoupled Gaussian-mixture prototypes ("Why Prototypes
Collapse", https://arxiv.org/abs/2510.20108): the prototypes are the
unit-norm means of a mixture fitted to the teacher's L2-normalised
embeddings by one online EM step per training iteration, with deterministic
annealing of the E-step and responsibility-based forgetting of the
sufficient statistics (docs/method.md, "Online EM").

This module is the paper's method and its state. Where the means start is
:mod:`.initialisation`; options of ours that look after components are
strategies (:mod:`.maintenance`), called at fixed points of
:meth:`OnlineGaussianMixture.update`; option checks are :mod:`.options`,
numerics written once :mod:`.numerics`. Pure PyTorch: the algorithm and
hooks own the scheduling, this package owns the math.
"""
import math
import warnings
from typing import Dict, Iterator, NamedTuple, Optional, Tuple, Union

import torch
from torch import Tensor, nn

from ...precision import ieee_fp32_matmuls
from . import numerics as nm
from .initialisation import check_init_cost, initial_means, uniform_means
from .maintenance import (MAINTENANCE_DEFAULTS, UNCHECKED, UpdateStep,
                          build_maintenance)
from .options import (check_int, check_number, check_rows, check_schedule,
                      describe, flat_maintenance, updates_of)

#: An update's rows are processed in chunks of at most this many rows ...
CHUNK_ROWS = 1024
#: ... and at most this many bytes of ``(rows, K)`` fp32 responsibilities.
CHUNK_BYTES = 1 << 28
LOG_LIK_ROWS = 64  # rows of the logged log-likelihood while beta < 1


class RowFit(NamedTuple):
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


class EStep(NamedTuple):
    """What the E-step of one update gives: the batch statistics ``count``
    ``N_k`` ``(K,)``, ``sum`` ``S_k = r^T x`` ``(K, D)`` and ``sq_sum``
    ``Q_k = r^T x^2`` ``(K, D)`` (views of one scratch), each row's
    :class:`RowFit`, each row's two most likely components ``top2`` ``(N,
    2)`` (None unless asked for), the mean over rows of ``max_k r_nk``
    and the mean ``log sum_k p_nk`` at beta = 1 (0-dim tensors)."""
    count: Tensor
    sum: Tensor
    sq_sum: Tensor
    fit: RowFit
    top2: Optional[Tensor]
    resp_max_mean: Tensor
    log_likelihood: Tensor


class OnlineGaussianMixture(nn.Module):
    """Diagonal Gaussian mixture on the sphere, fitted by online EM.

    One :meth:`update` is one EM step on a batch ``x`` ``(N, D)``:
    E-step ``r_nk = softmax_k(beta_t log p_nk)`` with ``beta_t`` annealed
    from ``beta_start`` to 1 over ``beta_iters`` updates; forgetting
    ``acc <- rho * acc + batch`` with ``rho_k = (1 - forgetting) ** N_k``
    (a component with ``N_k == 0`` keeps its statistics bit for bit);
    M-step ``pi = acc_count / sum(acc_count)``, ``m = acc_sum /
    acc_count``, ``var = max(acc_sq_sum / acc_count - m^2, min_var)``,
    ``mu = m / ||m||``.

    Cost of an update of ``N`` rows: ``O(N K D)`` -- the E-step is one
    matmul of ``[x^2, x, 1]`` ``(N, 2D+1)`` against the weights ``(K,
    2D+1)`` (:func:`.numerics.log_density_weights`), the statistics one
    matmul of the responsibilities against ``[x^2, x, 1]``, about 4x one
    ``N x D x K`` logits matmul -- plus ``O(K D)`` for the M-step. Memory is
    bounded whatever ``N``: rows go through both matmuls in chunks of at
    most ``CHUNK_ROWS`` rows and ``CHUNK_BYTES`` of ``(rows, K)``
    responsibilities (exact: the statistics are sums); the working memory
    is one chunk's ``(N_c, K)`` plus a scratch of two ``(K, 2D+1)`` and one
    ``(K, D)`` tensors besides the state (~5 K D floats). Each strategy
    states its own cost (all at most ``O(N K D)``).

    All state is in buffers (float32 apart from the counters), so
    ``state_dict`` and checkpoints carry it; the scratch is a plain dict,
    not a buffer (``buffers()`` never lists it), reallocated when the
    state's device changes. Identical inputs give identical results on
    every process (initialisation and the strategies' draws use generators
    seeded with ``seed`` and the update count): what multi-process training
    relies on, and what makes a resumed run continue bit for bit.

    Args:
        num_components (int): Number of components ``K`` (>= 1).
        dim (int): Feature dimension ``D`` (>= 1).
        forgetting (float): ``eta`` in (0, 1). Defaults to 0.01.
        beta_start (float): ``beta_0`` in (0, 1]. Defaults to 0.3.
        beta_iters (int | float): Updates over which ``beta`` rises to 1:
            an int ``>= 0`` (0: ``beta = 1`` always) or a float in (0, 1],
            a fraction of training resolved by :meth:`set_training_length`
            (``OnlineEMHook`` calls it). Defaults to 1000.
        beta_schedule (str): ``'cosine'`` or ``'linear'``.
        min_var (float): Lower bound of every variance (> 0). Defaults to
            1e-4.
        init (str): ``'sample'`` (random pooled rows plus noise, ``O(K
            D)``), ``'uniform'`` (ignores the data, ``O(K D)``) or
            ``'kmeans++'`` (``O(K P D)``, bounded at construction): see
            :mod:`.initialisation`. Defaults to ``'sample'``.
        init_noise (float): Expected norm of the noise added to
            data-initialised and re-seeded means (>= 0). Defaults to 0.01.
        init_samples (int, optional): Rows to pool before a data
            initialisation; the first EM step runs on the last batch. None
            means ``K``. The pool is not checkpointed. Defaults to None.
        prior_count (float): Initial ``acc_count`` of every component (> 0).
            Defaults to 1.0.
        seed (int): Seed of the initialisation and of the strategies'
            draws. Defaults to 0.
        maintenance (dict, optional): Options of ours, all off by default:
            ``reseed_rate``, ``reseed_start``, ``merge_within``,
            ``stale_decay`` (:func:`.maintenance.build_maintenance`; each
            strategy states its meaning and cost). The same keys given
            flat (``reseed_rate=...``) still work, with a ``FutureWarning``.
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

    def __init__(self, num_components: int, dim: int, *,
                 forgetting: float = 0.01, beta_start: float = 0.3,
                 beta_iters: Union[int, float] = 1000,
                 beta_schedule: str = 'cosine', min_var: float = 1e-4,
                 init: str = 'sample', init_noise: float = 0.01,
                 init_samples: Optional[int] = None,
                 prior_count: float = 1.0, seed: int = 0,
                 maintenance: Optional[dict] = None, **flat) -> None:
        super().__init__()
        check_int('num_components', num_components, 1)
        check_int('dim', dim, 1)
        check_int('seed', seed, None)
        self._beta_iters = check_schedule('beta_iters', beta_iters)
        if init_samples is not None:
            check_int('init_samples', init_samples, 1)
        check_number('forgetting', forgetting, 0.0, 1.0, '(0, 1)', True, True)
        check_number('beta_start', beta_start, 0.0, 1.0, '(0, 1]', True)
        if beta_schedule not in ('cosine', 'linear'):
            raise ValueError("beta_schedule must be one of ('cosine', "
                             f"'linear'), got {beta_schedule!r}")
        check_number('min_var', min_var, 0.0, math.inf, '(0, inf)', True,
                     True)
        check_number('init_noise', init_noise, 0.0, math.inf, '[0, inf)',
                     high_open=True)
        check_number('prior_count', prior_count, 0.0, math.inf, '(0, inf)',
                     True, True)
        self.init_samples = num_components if init_samples is None \
            else init_samples
        check_init_cost(init, num_components, self.init_samples, dim)
        self.num_components, self.dim = num_components, dim
        self.forgetting, self.beta_start = float(forgetting), float(beta_start)
        self.beta_iters: Optional[int] = updates_of(beta_iters, None)
        self.beta_schedule, self.min_var = beta_schedule, float(min_var)
        self.init, self.init_noise = init, float(init_noise)
        self.prior_count, self.seed = float(prior_count), seed
        self.strategies = build_maintenance(
            dict(maintenance or {},
                 **flat_maintenance(flat, MAINTENANCE_DEFAULTS)), noise=init_noise)
        self._init_pool = []  # rows awaiting initialisation
        self._warned_identical = False
        self._scratch: Dict[str, Tensor] = {}  # not state: see the docstring
        K, D = num_components, dim
        # Valid unit-norm placeholders until the first update initialises.
        self.register_buffer('pi', torch.full((K, ), 1.0 / K))
        self.register_buffer('mu', uniform_means(K, D, seed))
        self.register_buffer('var', torch.ones(K, D))
        self.register_buffer('acc_count', torch.zeros(K))
        self.register_buffer('acc_sum', torch.zeros(K, D))
        self.register_buffer('acc_sq_sum', torch.zeros(K, D))
        self.register_buffer('num_updates', torch.zeros((), dtype=torch.long))
        self.register_buffer('initialized', torch.zeros((), dtype=torch.bool))
        # Per-mean room (a distance; < 0: to be checked) that strategies
        # keep (merging); UNCHECKED after initialisation.
        self.register_buffer('merge_slack', torch.zeros(K))

    @property
    def means(self) -> Tensor:
        """Unit-norm prototypes of shape ``(K, D)``."""
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
    def scratch_bytes(self) -> int:
        """Bytes of the scratch tensors now held (not state)."""
        return sum(t.numel() * t.element_size()
                   for t in self._scratch.values())

    def set_training_length(self, updates: int) -> None:
        """Resolve schedule points given as fractions of training (``beta_
        iters``, the strategies') for ``updates`` EM updates (rounded);
        ints stay. ``OnlineEMHook`` calls it in ``before_train``."""
        check_int('updates', updates, 1)
        self.beta_iters = updates_of(self._beta_iters, updates)
        for strategy in self.strategies:
            strategy.set_training_length(updates)

    def _require_schedule(self) -> None:
        unresolved = {} if self.beta_iters is not None else dict(
            beta_iters=self._beta_iters)
        for strategy in self.strategies:
            unresolved.update(strategy.unresolved())
        if unresolved:
            given = ', '.join(f'{k}={v}' for k, v in unresolved.items())
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
        ramp = 1.0 - (1.0 + math.cos(math.pi * frac)) / 2.0 \
            if self.beta_schedule == 'cosine' else frac
        return 1.0 - (1.0 - self.beta_start) * (1.0 - ramp)

    def _load_from_state_dict(self, state_dict, prefix, *args,
                              **kwargs) -> None:
        """Checkpoints written before merging kept a slack have no
        ``merge_slack``: it loads as :data:`.maintenance.UNCHECKED` (no
        mean checked yet: merging checks them in the next ``K / N``
        updates)."""
        for key in self.optional_state_keys:
            if prefix + key not in state_dict:
                state_dict[prefix + key] = torch.full_like(
                    getattr(self, key), UNCHECKED)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def extra_repr(self) -> str:
        return ', '.join([
            f'num_components={self.num_components}, dim={self.dim}, '
            f'forgetting={self.forgetting}, beta={self.beta_schedule}'
            f'({self.beta_start} -> 1 over '
            f'{describe(self._beta_iters, self.beta_iters)} updates), '
            f'min_var={self.min_var}, init={self.init!r}'
        ] + [repr(strategy) for strategy in self.strategies])

    # ---------------------------------------------------------------- update
    @torch.no_grad()
    def update(self, x: Tensor) -> Dict[str, float]:
        """One online EM step on a batch (initialising on the first call).

        Rows of ``x`` are L2-normalised here; the step runs in IEEE fp32
        with autocast disabled. Order: E-step over row chunks, forgetting
        (times the strategies' scales), M-step, then each strategy's
        ``after_m_step``. While rows are pooled for the initialisation only
        ``beta`` and ``init_pooled`` are returned.

        Args:
            x (Tensor): Embeddings of shape ``(N, D)``, any float dtype.

        Returns:
            Dict[str, float]: ``beta`` (the beta used), what the strategies
            log (e.g. ``reseeded``, ``merged``), ``resp_max_mean`` (mean of
            ``max_k r_nk``), ``effective_components`` (``exp`` of the
            weights' entropy), ``weight_min``, ``weight_max`` and
            ``log_likelihood`` (mean ``log p(x_n)`` at beta = 1 under the
            parameters before the step; while beta < 1 over the first 64
            rows only).

        Raises:
            ValueError: If ``x`` is not ``(N, D)`` with ``N >= 1``, or holds
                NaN/Inf or all-zero rows; the state is then left untouched.
        """
        x = self._prepare(x)  # validates before any state change
        self._require_schedule()
        if not bool(self.initialized):
            if self.init != 'uniform':
                self._init_pool.append(x)
                if self.pooled_rows < self.init_samples:
                    return dict(beta=self._beta_at(0),
                                init_pooled=float(self.pooled_rows))
            pool = torch.cat(self._init_pool) if self._init_pool else x
            self._init_pool.clear()
            self._initialise(pool)
        with torch.autocast(device_type=x.device.type, enabled=False), \
                ieee_fp32_matmuls():
            beta = self._beta_at(int(self.num_updates))
            estep = self._e_step(x, beta, top2=any(
                s.needs_top2 for s in self.strategies))
            self._forget(estep, rows=x.shape[0])
            shift = self._m_step(
                shift=any(s.needs_shift for s in self.strategies))
            step = UpdateStep(x, int(self.num_updates), estep, shift,
                              self.seed)
            out = dict(beta=beta)
            for strategy in self.strategies:
                out.update(strategy.after_m_step(self, step))
            self.num_updates += 1
            entropy = torch.special.entr(self.pi).sum()
            values = torch.stack([estep.resp_max_mean, entropy.exp(),
                                  *torch.aminmax(self.pi),
                                  estep.log_likelihood]).tolist()
        out.update(zip(('resp_max_mean', 'effective_components', 'weight_min',
                        'weight_max', 'log_likelihood'), values))
        return out

    def _e_step(self, x: Tensor, beta: float, top2: bool = False) -> EStep:
        """Annealed E-step and batch statistics, chunk by chunk: per chunk,
        ``beta log p`` in one matmul, shifted by its row maximum, floored
        ``exp`` (:func:`.numerics.floored_exp_`), and ``resp^T [x^2, x, 1] /
        row_sum`` added to the statistics. The logged log-likelihood is
        free at beta = 1; while beta < 1 it costs an extra pass over the
        first ``LOG_LIK_ROWS`` rows. ``O(N K D)``."""
        K, D, n = self.num_components, self.dim, x.shape[0]
        weights = nm.log_density_weights(self.pi, self.mu, self.var,
                                         out=self._work('weights', K, 2 * D + 1))
        stats = self._work('stats', K, 2 * D + 1).zero_()
        top2 = top2 and K >= 2
        best2, fit = [], []
        resp_max, log_lik = x.new_zeros(()), x.new_zeros(())
        for rows, feats in self.feature_chunks(x):
            resp = self._work('resp', feats.shape[0], K)
            # beta * log p (up to a constant) in one matmul, beta as alpha
            torch.addmm(resp.new_zeros(()), feats, weights.T, beta=0.0,
                        alpha=beta, out=resp)
            if top2:
                best, idx = resp.topk(2, dim=1)
                row_max = best[:, :1]
                best2.append(idx)
            else:
                row_max = resp.amax(dim=1, keepdim=True)
            resp.sub_(row_max)
            fit.append(torch.cat([row_max, row_max], dim=1))
            if beta != 1.0 and rows.start == 0:  # before exp: log p - max
                head = min(feats.shape[0], LOG_LIK_ROWS)
                # clamped: exp(-87) is still a normal fp32 number
                shifted = (resp[:head] / beta).clamp_(min=-87.0)
                log_lik = (row_max[:head] / beta + torch.logsumexp(
                    shifted, dim=1, keepdim=True)).mean()
            row_sum = nm.floored_exp_(resp).sum(dim=1, keepdim=True)
            fit[-1][:, 1:] = row_sum
            if beta == 1.0:  # free: log sum_k p_nk = row_max + log row_sum
                log_lik = log_lik + (row_max + row_sum.log()).sum() / n
            resp_max = resp_max + row_sum.reciprocal().sum() / n
            # fold the softmax normalisation 1 / row_sum into the features
            stats.addmm_(resp.T, feats.div_(row_sum))
        return EStep(stats[:, 2 * D], stats[:, D:2 * D], stats[:, :D],
                     RowFit(*torch.cat(fit).unbind(1), beta),
                     torch.cat(best2) if top2 else None, resp_max,
                     log_lik + nm.log_2pi_term(D))

    def _forget(self, batch: EStep, rows: int) -> None:
        """``acc <- rho * acc + batch``, ``rho = (1 - eta) ** N_k`` times
        the strategies' scales (each at most 1). For ``N_k == 0`` the batch
        statistics and ``rho_k - 1`` are exactly 0 (with no scale): the
        statistics stay bit for bit. ``O(K D)``."""
        rho = torch.pow(1.0 - self.forgetting, batch.count)
        for strategy in self.strategies:
            scale = strategy.forgetting_scale(self, rows)
            if scale is not None:
                rho.mul_(scale)
        torch.addcmul(batch.count, self.acc_count, rho, out=self.acc_count)
        rho = rho.unsqueeze(1)
        torch.addcmul(batch.sum, self.acc_sum, rho, out=self.acc_sum)
        torch.addcmul(batch.sq_sum, self.acc_sq_sum, rho, out=self.acc_sq_sum)

    def _m_step(self, shift: bool = False) -> Optional[Tensor]:
        """Weights, variances and unit-norm means of every component from
        the statistics; with ``shift``, returns how far each mean moved
        (Euclidean, ``(K,)``). ``O(K D)``."""
        moved = self.refit(slice(None), shift=shift)
        self.renormalise_weights()
        return moved

    # ------------------------------------------- public: for the strategies
    def refit(self, which: Union[slice, Tensor],
              shift: bool = False) -> Optional[Tensor]:
        """Means and variances of components ``which`` (all for
        ``slice(None)``, through the scratch) from their statistics;
        weights are left to the caller. With ``shift``, returns how far each
        mean moved (Euclidean, ``(R,)``, in blocks of 8,192 rows: no ``(K,
        D)`` copy of the old means). ``O(|which| D)``."""
        full = isinstance(which, slice)
        safe = self.acc_count[which].clamp_min(nm.TINY).unsqueeze(1)
        mean = torch.div(self.acc_sum[which], safe, out=self._work(
            'mean', self.num_components, self.dim) if full else None)
        var = torch.div(self.acc_sq_sum[which], safe,
                        out=self.var if full else None)
        if full:  # in place; the rows' form rounds differently (kept)
            var.addcmul_(mean, mean, value=-1.0).clamp_(min=self.min_var)
        else:
            self.var[which] = (var - mean * mean).clamp_(min=self.min_var)
        old = self.mu[which]  # a view for slice(None): read before writing
        mean = nm.normalise_means_(mean, old)
        moved = torch.cat([
            torch.linalg.vector_norm(mean[s:s + 8192] - old[s:s + 8192],
                                     dim=1)
            for s in range(0, mean.shape[0], 8192)
        ]) if shift else None
        self.mu[which] = mean
        return moved

    def absorb_into(self, keep: Tensor, drop: Tensor) -> None:
        """Add the statistics of components ``drop`` to those of ``keep``
        (pairwise, moment matching) and refit ``keep``; ``drop`` keep
        theirs until restarted. ``O(|keep| D)``."""
        for acc in (self.acc_count, self.acc_sum, self.acc_sq_sum):
            acc[keep] += acc[drop]
        self.refit(keep)

    def renormalise_weights(self) -> None:
        """``pi = acc_count / sum(acc_count)``. ``O(K)``."""
        torch.div(self.acc_count, self.acc_count.sum(), out=self.pi)

    # -------------------------------------------------------------- reading
    @torch.no_grad()
    def log_prob(self, x: Tensor) -> Tensor:
        """Joint log densities ``log pi_k + log N(x_n | mu_k, var_k)``,
        fp32 ``(N, K)`` (rows of ``x`` ``(N, D)`` L2-normalised here).
        ``O(N K D)``: one ``(N, 2D+1) x (2D+1, K)`` matmul; the result is
        the only ``(N, K)`` allocation."""
        x = self._prepare(x)
        if not bool(self.initialized):
            raise ValueError('OnlineGaussianMixture is not initialised: '
                             'call update() first')
        with torch.autocast(device_type=x.device.type, enabled=False), \
                ieee_fp32_matmuls():
            weights = nm.log_density_weights(self.pi, self.mu, self.var,
                                             out=self._work(
                                                 'weights', self.num_components,
                                                 2 * self.dim + 1))
            log_p = torch.matmul(nm.features(x), weights.T)
            return log_p.add_(nm.log_2pi_term(self.dim))

    @torch.no_grad()
    def responsibilities(self, x: Tensor,
                         beta: Optional[float] = None) -> Tensor:
        """Posterior ``softmax_k(beta log p_nk)`` ``(N, K)`` (beta in (0,
        1], default 1); changes no state. ``O(N K D)``."""
        beta = 1.0 if beta is None else float(beta)
        if not 0.0 < beta <= 1.0:
            raise ValueError(f'beta must be in (0, 1], got {beta!r}')
        return torch.softmax(self.log_prob(x).mul_(beta), dim=1)

    # -------------------------------------------------------------- helpers
    def _prepare(self, x: Tensor) -> Tensor:
        """``x`` checked (:func:`.options.check_rows`) as unit-norm fp32
        rows on the state's device; warns once when all rows are equal."""
        x = check_rows(x, self.dim, self.mu.device)
        if x.shape[0] > 1 and not self._warned_identical and \
                bool((x == x[:1]).all()):
            self._warned_identical = True
            warnings.warn(
                f'all {x.shape[0]} rows given to the Gaussian mixture are '
                'identical: the embeddings have likely collapsed to a '
                'constant (or one image is repeated); EM learns nothing '
                'from such a batch', stacklevel=3)
        return x

    def _work(self, name: str, *shape: int) -> Tensor:
        """Scratch ``name`` of at least ``shape`` on the state's device
        (reallocated when too small or elsewhere); the ``shape`` view."""
        buf, numel = self._scratch.get(name), math.prod(shape)
        if buf is None or buf.numel() < numel or \
                buf.device != self.mu.device:
            buf = torch.zeros(numel, dtype=nm.F32, device=self.mu.device)
            self._scratch[name] = buf
        return buf[:numel].view(*shape)

    def feature_chunks(self, x: Tensor) -> Iterator[Tuple[slice, Tensor]]:
        """``(rows, features(x[rows]))`` per chunk of at most ``CHUNK_ROWS``
        rows and ``CHUNK_BYTES`` of ``(rows, K)`` fp32, in order."""
        chunk = max(1, min(CHUNK_ROWS, CHUNK_BYTES // (4 * self.num_components)))
        for start in range(0, x.shape[0], chunk):
            feats = nm.features(x[start:start + chunk])
            yield slice(start, start + feats.shape[0]), feats

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
        for acc, value in zip((self.acc_sum, self.acc_sq_sum),
                              nm.prior_statistics(self.mu, self.var,
                                                  self.prior_count)):
            acc.copy_(value)
        self.merge_slack.fill_(UNCHECKED)  # new means: no room known yet
        self.initialized.fill_(True)

