"""Online EM for a diagonal Gaussian mixture on the unit sphere.

The prototype step of decoupled Gaussian-mixture prototypes ("Why Prototypes
Collapse", https://arxiv.org/abs/2510.20108): the prototypes are the
unit-norm means of a mixture fitted to the teacher's L2-normalised
embeddings by one online EM step per training iteration, with deterministic
annealing of the E-step and responsibility-based forgetting of the
sufficient statistics (docs/method.md, "Online EM").

This module is the paper's method and its state, nothing else: where the
means start is :mod:`.initialisation`; options of ours that look after
components are strategies (:mod:`.maintenance`) the update calls at fixed
points; checks are :mod:`.options`, numerics :mod:`.numerics`.
"""
import math
from typing import Dict, Iterator, NamedTuple, Optional, Tuple, Union

import torch
from torch import Tensor, nn

from ...precision import ieee_fp32_matmuls
from . import numerics as nm
from .initialisation import check_init_cost, initialise, uniform_means
from .maintenance import (MAINTENANCE_DEFAULTS, UNCHECKED, UpdateStep,
                          build_maintenance)
from .options import (check_int, check_mixture_options, check_rows,
                      check_schedule, describe, flat_maintenance,
                      require_resolved, updates_of, warn_if_identical)

#: An update's rows are processed in chunks of at most this many rows ...
CHUNK_ROWS = 1024
#: ... and at most this many bytes of ``(rows, K)`` fp32 responsibilities.
CHUNK_BYTES = 1 << 28
LOG_LIK_ROWS = 64  # rows of the logged log-likelihood while beta < 1


class RowFit(NamedTuple):
    """Per row of a batch, from its E-step: ``row_max`` ``(N,)``, the
    largest ``beta log p_nk`` (up to a constant), ``row_sum`` ``(N,)`` =
    ``sum_k exp(beta log p_nk - row_max)``, and ``beta``."""
    row_max: Tensor
    row_sum: Tensor
    beta: float

    @property
    def fit(self) -> Tensor:
        """``(N,)`` each row's ``max_k log p_nk`` (up to a constant)."""
        return self.row_max / self.beta


class EStep(NamedTuple):
    """An E-step's batch statistics ``count`` ``N_k = sum_n r_nk`` ``(K,)``,
    ``sum`` ``r^T x`` and ``sq_sum`` ``r^T x^2`` ``(K, D)``; each row's
    :class:`RowFit`; each row's two most likely components ``top2`` ``(N,
    2)`` (None unless asked for); the mean of ``max_k r_nk`` and the mean
    ``log p(x_n)`` at beta = 1 (0-dim)."""
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
    E-step ``r_nk = softmax_k(beta_t log p_nk)``, ``beta_t`` annealed from
    ``beta_start`` to 1 over ``beta_iters`` updates; forgetting ``acc <- rho
    * acc + batch``, ``rho_k = (1 - forgetting) ** N_k`` (a component with
    ``N_k == 0`` keeps its statistics bit for bit); M-step ``pi =
    acc_count / sum(acc_count)``, ``m = acc_sum / acc_count``, ``var =
    max(acc_sq_sum / acc_count - m^2, min_var)``, ``mu = m / ||m||``.

    Cost of an update of ``N`` rows: ``O(N K D)``, about 4x one ``N x D x
    K`` logits matmul: ``log p`` is one matmul of ``[x^2, x, 1]`` ``(N,
    2D+1)`` against the weights ``(K, 2D+1)``
    (:func:`.numerics.log_density_weights`), the statistics one matmul of
    the responsibilities against ``[x^2, x, 1]``; ``O(K D)`` for the M-step.
    Memory is bounded whatever ``N``: rows go through in chunks of at most
    ``CHUNK_ROWS`` rows and ``CHUNK_BYTES`` of ``(rows, K)``
    responsibilities; the work tensors (:class:`.numerics.Scratch`, not
    state) are ~5 K D floats. Each strategy states its own cost (at most
    ``O(N K D)``).

    The state is in buffers, so ``state_dict`` and checkpoints carry it.
    Identical inputs give identical results on every process (draws use
    generators seeded with ``seed`` and the update count): what
    multi-process training and a bit-for-bit resume rely on.

    Args:
        num_components (int): Number of components ``K`` (>= 1).
        dim (int): Feature dimension ``D`` (>= 1).
        forgetting (float): ``eta`` in (0, 1). Defaults to 0.01.
        beta_start (float): ``beta_0`` in (0, 1]. Defaults to 0.3.
        beta_iters (int | float): Updates over which ``beta`` rises to 1: an
            int ``>= 0`` (0: ``beta = 1`` always) or a fraction in (0, 1] of
            training, resolved by :meth:`set_training_length`
            (``OnlineEMHook`` calls it). Defaults to 1000.
        beta_schedule (str): ``'cosine'`` or ``'linear'``.
        min_var (float): Lower bound of every variance (> 0). Defaults to
            1e-4.
        init (str): ``'sample'``, ``'uniform'`` or ``'kmeans++'``
            (:mod:`.initialisation`, with their costs). Defaults to
            ``'sample'``.
        init_noise (float): Expected norm of the noise added to
            data-initialised and re-seeded means (>= 0). Defaults to 0.01.
        init_samples (int, optional): Rows to pool before a data
            initialisation (not checkpointed); None means ``K``.
        prior_count (float): Initial ``acc_count`` of every component (> 0).
            Defaults to 1.0.
        seed (int): Seed of the initialisation and of the strategies'
            draws. Defaults to 0.
        maintenance (dict, optional): Options of ours, all off by default:
            ``reseed_rate``, ``reseed_start``, ``merge_within``,
            ``stale_decay`` (:func:`.maintenance.build_maintenance`). Given
            flat (``reseed_rate=...``) they still work, with a
            ``FutureWarning``.
    """

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
        check_mixture_options(num_components, dim, seed, forgetting,
                              beta_start, beta_schedule, min_var, init_noise,
                              init_samples, prior_count)
        self._beta_iters = check_schedule('beta_iters', beta_iters)
        self.init_samples = init_samples or num_components
        check_init_cost(init, num_components, self.init_samples, dim)
        self.num_components, self.dim = num_components, dim
        self.forgetting, self.beta_start = float(forgetting), float(beta_start)
        self.beta_iters: Optional[int] = updates_of(beta_iters, None)
        self.beta_schedule, self.min_var = beta_schedule, float(min_var)
        self.init, self.init_noise = init, float(init_noise)
        self.prior_count, self.seed = float(prior_count), seed
        self.strategies = build_maintenance(
            dict(maintenance or {}, **flat_maintenance(
                flat, MAINTENANCE_DEFAULTS)), noise=init_noise)
        self._init_pool = []  # rows awaiting the data initialisation
        self._warned_identical = False
        self.scratch = nm.Scratch()
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
        # Per-mean room (a distance; < 0: to be checked) kept by merging.
        self.register_buffer('merge_slack', torch.zeros(K))

    means = property(lambda self: self.mu, doc='Unit-norm means ``(K, D)``.')
    variances = property(lambda self: self.var, doc='Variances ``(K, D)``.')
    weights = property(lambda self: self.pi, doc='Weights ``(K,)``, sum 1.')

    @property
    def beta(self) -> float:
        """Inverse temperature the next :meth:`update` will use."""
        self._require_schedule()
        return self._beta_at(int(self.num_updates))

    @property
    def pooled_rows(self) -> int:
        """Rows waiting in the pool for the data initialisation."""
        return sum(rows.shape[0] for rows in self._init_pool)

    def set_training_length(self, updates: int) -> None:
        """Resolve schedule points given as fractions of training (``beta_
        iters``, the strategies') for ``updates`` EM updates (rounded)."""
        check_int('updates', updates, 1)
        self.beta_iters = updates_of(self._beta_iters, updates)
        for strategy in self.strategies:
            strategy.set_training_length(updates)

    def _require_schedule(self) -> None:
        unresolved = {} if self.beta_iters is not None else dict(
            beta_iters=self._beta_iters)
        for strategy in self.strategies:
            unresolved.update(strategy.unresolved())
        require_resolved(unresolved)

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
        """A checkpoint without ``merge_slack`` (written before merging kept
        one) loads every mean as :data:`.maintenance.UNCHECKED`."""
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
        """One online EM step on ``x`` ``(N, D)``, any float dtype (rows
        L2-normalised here; IEEE fp32, autocast off): E-step, forgetting
        (times the strategies' ``forgetting_scale``), M-step, each
        strategy's ``after_m_step``. The first call initialises
        (:func:`.initialisation.initialise`); while rows are pooled for it,
        only ``beta`` and ``init_pooled`` are returned.

        Returns:
            Dict[str, float]: ``beta`` used, what the strategies log,
            ``resp_max_mean`` (mean ``max_k r_nk``), ``effective_components``
            (``exp`` of the weights' entropy), ``weight_min``,
            ``weight_max``, ``log_likelihood`` (mean ``log p(x_n)`` at beta =
            1 before the step; while beta < 1 over the first 64 rows).

        Raises:
            ValueError: If ``x`` is not ``(N, D)``, ``N >= 1``, or holds
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
            initialise(self, pool)
            self.initialized.fill_(True)
        with torch.autocast(device_type=x.device.type, enabled=False), \
                ieee_fp32_matmuls():
            beta = self._beta_at(int(self.num_updates))
            estep = self._e_step(x, beta, top2=any(
                s.needs_top2 for s in self.strategies))
            self._forget(estep, rows=x.shape[0])
            shift = self.refit(slice(None), shift=any(
                s.needs_shift for s in self.strategies))
            self.renormalise_weights()
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
        """Annealed E-step and batch statistics, chunk by chunk: ``beta log
        p`` in one matmul, shifted by its row maximum, floored ``exp``
        (:func:`.numerics.floored_exp_`), ``resp^T [x^2, x, 1] / row_sum``
        added to the statistics. ``O(N K D)`` (the log-likelihood is free
        at beta = 1, one more pass over ``LOG_LIK_ROWS`` rows before)."""
        K, D, n = self.num_components, self.dim, x.shape[0]
        weights = nm.log_density_weights(self.pi, self.mu, self.var,
                                         out=self._work('weights', K,
                                                        2 * D + 1))
        stats = self._work('stats', K, 2 * D + 1).zero_()
        top2 = top2 and K >= 2
        best2, fit = [], []
        resp_max, log_lik = x.new_zeros(()), x.new_zeros(())
        for rows, feats in self.feature_chunks(x):
            resp = self._work('resp', feats.shape[0], K)
            torch.addmm(resp.new_zeros(()), feats, weights.T, beta=0.0,
                        alpha=beta, out=resp)  # beta log p, beta as alpha
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
        the strategies' scales (each at most 1); for ``N_k == 0`` the
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

    # ------------------------------------------- public: for the strategies
    def refit(self, which: Union[slice, Tensor],
              shift: bool = False) -> Optional[Tensor]:
        """M-step of components ``which`` (all for ``slice(None)``): means
        and variances from their statistics; weights are left to
        :meth:`renormalise_weights`. With ``shift``, returns how far each
        mean moved (Euclidean, ``(R,)``, in 8,192-row blocks: no copy of the
        old means). ``O(|which| D)``."""
        full = isinstance(which, slice)
        safe = self.acc_count[which].clamp_min(nm.TINY).unsqueeze(1)
        mean = torch.div(self.acc_sum[which], safe, out=self._work(
            'mean', self.num_components, self.dim) if full else None)
        var = torch.div(self.acc_sq_sum[which], safe,
                        out=self.var if full else None)
        var.addcmul_(mean, mean, value=-1.0).clamp_(min=self.min_var)
        if not full:
            self.var[which] = var
        old = self.mu[which]  # a view for slice(None): read before writing
        mean = nm.normalise_rows_(mean, old)
        moved = torch.cat([
            torch.linalg.vector_norm(mean[s:s + 8192] - old[s:s + 8192],
                                     dim=1)
            for s in range(0, mean.shape[0], 8192)
        ]) if shift else None
        self.mu[which] = mean
        return moved

    def renormalise_weights(self) -> None:
        """``pi = acc_count / sum(acc_count)``. ``O(K)``."""
        torch.div(self.acc_count, self.acc_count.sum(), out=self.pi)

    def absorb_into(self, keep: Tensor, drop: Tensor) -> None:
        """Add the statistics of components ``drop`` to those of ``keep``
        (pairwise, moment matching) and refit ``keep``; ``drop`` keep
        theirs until restarted. ``O(|keep| D)``."""
        for acc in (self.acc_count, self.acc_sum, self.acc_sq_sum):
            acc[keep] += acc[drop]
        self.refit(keep)

    def start_components(self, which: Union[slice, Tensor], mu: Tensor,
                         var: Tensor) -> None:
        """Components ``which`` start afresh at unit-norm means ``mu`` with
        variances ``var`` ``(R, D)``: ``prior_count`` pseudo-observations
        there (:func:`.numerics.prior_statistics`), no room known for
        merging (:data:`.maintenance.UNCHECKED`); weights are left to the
        caller. ``O(R D)``."""
        self.mu[which], self.var[which] = mu, var
        self.acc_count[which] = self.prior_count
        self.acc_sum[which], self.acc_sq_sum[which] = nm.prior_statistics(
            mu, var, self.prior_count)
        self.merge_slack[which] = UNCHECKED

    def feature_chunks(self, x: Tensor) -> Iterator[Tuple[slice, Tensor]]:
        """``(rows, features(x[rows]))`` per chunk of at most ``CHUNK_ROWS``
        rows and ``CHUNK_BYTES`` of ``(rows, K)`` fp32, in order."""
        chunk = max(1, min(CHUNK_ROWS,
                           CHUNK_BYTES // (4 * self.num_components)))
        for start in range(0, x.shape[0], chunk):
            feats = nm.features(x[start:start + chunk])
            yield slice(start, start + feats.shape[0]), feats

    # -------------------------------------------------------------- reading
    @torch.no_grad()
    def log_prob(self, x: Tensor) -> Tensor:
        """``log pi_k + log N(x_n | mu_k, var_k)``, fp32 ``(N, K)``, rows of
        ``x`` ``(N, D)`` L2-normalised here. ``O(N K D)``: one matmul; the
        result is the only ``(N, K)`` allocation."""
        x = self._prepare(x)
        if not bool(self.initialized):
            raise ValueError('OnlineGaussianMixture is not initialised: '
                             'call update() first')
        with torch.autocast(device_type=x.device.type, enabled=False), \
                ieee_fp32_matmuls():
            weights = nm.log_density_weights(
                self.pi, self.mu, self.var,
                out=self._work('weights', self.num_components,
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

    def _prepare(self, x: Tensor) -> Tensor:
        """``x`` checked (:func:`.options.check_rows`): unit-norm fp32 rows
        on the state's device; warns once when all rows are equal."""
        x = check_rows(x, self.dim, self.mu.device)
        if not self._warned_identical:
            self._warned_identical = warn_if_identical(x)
        return x

    def _work(self, name: str, *shape: int) -> Tensor:
        return self.scratch(name, *shape, device=self.mu.device)
