"""Where the mixture's means start: :func:`initialise`, which the EM core
calls once, on the rows it pooled.

Each initialiser gives ``K`` unit-norm means ``(K, D)``; :func:`initialise`
adds the variances from the data, uniform weights and the prior statistics.
They are deterministic for a given seed (a CPU generator), so every rank of
a distributed run starts from the same means without a broadcast.

=============  ==========================================  ===============
``init``       means                                       cost
=============  ==========================================  ===============
``'sample'``   random pooled rows plus a little noise      ``O(K D)``
``'uniform'``  uniform on the sphere, ignores the data     ``O(K D)``
``'kmeans++'`` k-means++ seeding on the pooled rows        ``O(K P D)``
=============  ==========================================  ===============

``P`` is the number of rows k-means++ seeds on: the pooled rows (at least
``init_samples``, by default ``K``: ``O(K^2 D)`` sequential work), at most
:func:`kmeans_pp_rows` of them (a seeded random subset when the last batch
brought more), so its work stays below :data:`KMEANS_PP_MAX_WORK` unless
``K init_samples D`` alone exceeds it -- which :func:`check_init_cost`
refuses at construction, naming ``'sample'`` instead.
"""
import math
from typing import Optional

import torch
from torch import Tensor

from . import numerics as nm

INITS = ('sample', 'uniform', 'kmeans++')
#: Largest ``K * P * D`` for which ``init='kmeans++'`` is accepted (about a
#: second of float64 work on one CPU core).
KMEANS_PP_MAX_WORK = 1 << 30


def check_init_cost(init: str, num_components: int, pooled_rows: int,
                    dim: int) -> None:
    """Refuse an initialisation that would be slow at this size.

    Args:
        init (str): One of :data:`INITS`.
        num_components (int): ``K``.
        pooled_rows (int): Rows the data initialisation sees (``P``).
        dim (int): ``D``.

    Raises:
        ValueError: If ``init`` is unknown, or is ``'kmeans++'`` with
            ``K * P * D`` above :data:`KMEANS_PP_MAX_WORK`.
    """
    if init not in INITS:
        raise ValueError(f'init must be one of {INITS}, got {init!r}')
    work = num_components * pooled_rows * dim
    if init == 'kmeans++' and work > KMEANS_PP_MAX_WORK:
        raise ValueError(
            f"init='kmeans++' is O(K * P * D) sequential work, here "
            f'{num_components} x {pooled_rows} x {dim} = {work:.2e} > '
            f'{KMEANS_PP_MAX_WORK:.2e} (K components, P = init_samples '
            "pooled rows): use init='sample' (random pooled rows, O(K D)) "
            "or init='uniform'")


def kmeans_pp_rows(num_components: int, dim: int, init_samples: int) -> int:
    """Most pooled rows k-means++ seeds on: ``init_samples`` (what
    :func:`check_init_cost` admitted) or as many as
    :data:`KMEANS_PP_MAX_WORK` allows at this ``K`` and ``D``, whichever is
    more."""
    return max(init_samples, KMEANS_PP_MAX_WORK // (num_components * dim))


def uniform_means(num_components: int, dim: int, seed: int) -> Tensor:
    """``(K, D)`` unit vectors uniform on the sphere (CPU, seeded)."""
    gen = torch.Generator().manual_seed(seed)
    mu = torch.randn(num_components, dim, generator=gen)
    return torch.nn.functional.normalize(mu, dim=1)


def initialise(gmm, pool: Tensor) -> None:
    """Start every component of the mixture ``gmm`` from ``pool`` ``(P,
    D)`` (unit-norm rows): means from :func:`initial_means`, the pool's
    per-dimension variance (at least ``min_var``; ``min_var`` for one row),
    uniform weights and the prior statistics (``gmm.start_components``).
    ``O(K D + P D)`` (k-means++: ``O(K P D)``)."""
    K, D = gmm.num_components, gmm.dim
    mu = initial_means(gmm.init, K, pool, gmm.seed, gmm.init_noise,
                       gmm.init_samples)
    var = pool.var(dim=0, correction=0).clamp_min_(gmm.min_var) \
        if pool.shape[0] > 1 else pool.new_full((D, ), gmm.min_var)
    gmm.start_components(slice(None), mu, var.expand(K, D))
    gmm.pi.fill_(1.0 / K)


def initial_means(init: str, num_components: int, pool: Tensor, seed: int,
                  noise: float, init_samples: int) -> Tensor:
    """The ``(K, D)`` unit-norm means ``init`` puts on ``pool``.

    Args:
        init (str): ``'sample'``, ``'uniform'`` or ``'kmeans++'``.
        num_components (int): ``K``.
        pool (Tensor): Unit-norm rows ``(P, D)`` (ignored by
            ``'uniform'``).
        seed (int): Seed of the CPU generator.
        noise (float): Expected norm of the Gaussian noise added to
            data-initialised means before renormalising, so that duplicates
            (``K > P``) separate.
        init_samples (int): The mixture's ``init_samples``: k-means++
            seeds on at most :func:`kmeans_pp_rows` rows of ``pool``.

    Returns:
        Tensor: Means ``(K, D)`` on ``pool``'s device.
    """
    num, dim = num_components, pool.shape[1]
    if init == 'uniform':
        return uniform_means(num, dim, seed).to(pool.device)
    gen = torch.Generator().manual_seed(seed)
    data = pool.cpu()
    if init == 'kmeans++':
        rows = kmeans_pp_rows(num, dim, init_samples)
        if data.shape[0] > rows:
            data = data[torch.randperm(data.shape[0], generator=gen)[:rows]]
        idx = kmeans_pp_indices(data, num, gen)
    else:
        idx = sample_indices(data.shape[0], num, gen)
    return normalise_or_random(with_noise(data[idx], noise, gen),
                               gen).to(pool.device)


def sample_indices(n: int, k: int, gen: torch.Generator) -> Tensor:
    """``k`` row indices of ``n``: a permutation, repeated as needed."""
    reps = -(-k // n)
    return torch.cat([torch.randperm(n, generator=gen)
                      for _ in range(reps)])[:k]


def kmeans_pp_indices(x: Tensor, k: int, gen: torch.Generator) -> Tensor:
    """k-means++ seeding on unit-norm rows with the cosine distance.

    The next centre is drawn with probability proportional to
    ``1 - max cos(x, centres)`` (half the squared Euclidean distance on the
    sphere: the usual D^2 rule). Once every distinct row is chosen, the
    remaining centres are drawn uniformly with replacement. Float64 on the
    CPU, ``O(k N D)``.

    Args:
        x (Tensor): Unit-norm rows ``(N, D)``.
        k (int): Number of centres.
        gen (torch.Generator): CPU generator.

    Returns:
        Tensor: Row indices ``(k,)``.
    """
    n = x.shape[0]
    x = x.double()

    def distance_to(i: int) -> Tensor:
        # (near-)duplicates of a centre count as 0: their distance rounds
        # above 0 with fp32-normalised rows
        return torch.nn.functional.threshold(1.0 - x @ x[i], 1e-6, 0.0)

    chosen = [int(torch.randint(n, (1, ), generator=gen))]
    dist = distance_to(chosen[0])
    while len(chosen) < k and float(dist.sum()) > 0.0:
        idx = int(torch.multinomial(dist, 1, generator=gen))
        chosen.append(idx)
        torch.minimum(dist, distance_to(idx), out=dist)
    extra = torch.randint(n, (k - len(chosen), ), generator=gen)
    return torch.cat([torch.tensor(chosen, dtype=torch.long), extra])


def with_noise(mu: Tensor, noise: float, gen: torch.Generator) -> Tensor:
    """``mu`` ``(R, D)`` plus Gaussian noise of expected norm ``noise``
    (``noise / sqrt(D)`` per coordinate, drawn with ``gen`` on ``mu``'s
    device), so that duplicates separate; ``mu`` itself when ``noise`` is
    0. ``O(R D)``."""
    if noise <= 0:
        return mu
    return mu + torch.randn(mu.shape, generator=gen, device=mu.device) * (
        noise / math.sqrt(mu.shape[1]))


def normalise_or_random(mu: Tensor,
                        gen: Optional[torch.Generator]) -> Tensor:
    """L2-normalise rows of ``mu`` ``(R, D)`` in place; rows of (near) zero
    norm get a random direction drawn with ``gen`` (on ``mu``'s device).
    ``O(R D)``."""
    return nm.normalise_rows_(mu, lambda count: torch.randn(
        count, mu.shape[1], generator=gen, device=mu.device))
