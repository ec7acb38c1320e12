"""Numerical pieces of the mixture, each written once: the features and
weights whose product is ``log p``, floored responsibilities, the prior
statistics, the rows' normalisation, and the reusable work tensors.

Denormal fp32 numbers make CPU matmuls ~100x slower (measured: 44 s instead
of 0.3 s for the M-step at K = 65536) and exp() takes a slow path when its
result would be denormal. Hence (unnormalised, row maximum 1)
responsibilities below e^-40 ~ 4e-18 are exactly 0 (:func:`floored_exp_`),
and x^2 below 1e-12 is exactly 0 (:func:`features`), so that the M-step
products r * x^2 are 0 or >= 4e-18 * 1e-12 / K, a normal number for K < 3e8
(products r * x are denormal only for |x| < 3e-21 * K, which real
embeddings do not have). Neither changes any statistic beyond fp32
rounding.
"""
import math
from typing import Callable, Dict, Iterator, Optional, Tuple, Union

import torch
from torch import Tensor

F32 = torch.float32
TINY = torch.finfo(F32).tiny  # smallest normal fp32; 1 / TINY is finite
RESP_LOG_FLOOR = -40.0
RESP_FLOOR = math.exp(RESP_LOG_FLOOR)
FEAT_FLOOR = 1e-12
#: Rows of similarities computed at once: at most ``(BLOCK, K)``.
BLOCK = 256  # 64 MB of fp32 similarities at K = 65,536


def features(x: Tensor) -> Tensor:
    """``[x^2, x, 1]`` of shape ``(N, 2D+1)``; ``x^2 < 1e-12`` set to 0."""
    n, d = x.shape
    feats = x.new_empty(n, 2 * d + 1)
    torch.nn.functional.threshold_(torch.mul(x, x, out=feats[:, :d]),
                                   FEAT_FLOOR, 0.0)
    feats[:, d:2 * d] = x
    feats[:, 2 * d] = 1.0
    return feats


def log_density_weights(pi: Tensor, mu: Tensor, var: Tensor,
                        out: Optional[Tensor] = None) -> Tensor:
    """``W = [-1 / (2 var), mu / var, c]`` of shape ``(K, 2D+1)``.

    ``c_k = log pi_k - sum_d log(var_kd) / 2 - sum_d mu_kd^2 / (2
    var_kd)``, so that ``features(x) @ W^T`` is ``log p_nk`` up to the
    constant :func:`log_2pi_term`, which cancels in the responsibilities.
    Written into ``out`` when given; one ``(K, D)`` temporary (the log
    variances) lives while the sum of logs is formed. ``O(K D)``.

    Args:
        pi (Tensor): Weights ``(K,)``, all > 0.
        mu (Tensor): Means ``(K, D)``.
        var (Tensor): Variances ``(K, D)``, all > 0.
        out (Tensor, optional): ``(K, 2D+1)`` to write into.
    """
    K, D = mu.shape
    work = mu.new_empty(K, 2 * D + 1) if out is None else out
    quad, lin, const = work[:, :D], work[:, D:2 * D], work[:, 2 * D]
    log_det = torch.log(var).sum(dim=1)
    torch.div(mu, var, out=lin)
    mahal_mu = torch.einsum('kd,kd->k', mu, lin)
    torch.div(var.new_full((), -0.5), var, out=quad)
    torch.add(pi.log(), log_det.add_(mahal_mu), alpha=-0.5, out=const)
    return work


def log_2pi_term(dim: int) -> float:
    """The constant ``-D log(2 pi) / 2`` left out of the weights."""
    return -0.5 * dim * math.log(2 * math.pi)


def floored_exp_(shifted: Tensor) -> Tensor:
    """``exp`` in place of log-responsibilities shifted by their row
    maximum (``<= 0``), entries below ``e^-40`` exactly 0. ``O(size)``."""
    shifted.clamp_(min=RESP_LOG_FLOOR).exp_()
    return torch.nn.functional.threshold_(shifted, RESP_FLOOR, 0.0)


def prior_statistics(mu: Tensor, var: Tensor,
                     prior_count: float) -> Tuple[Tensor, Tensor]:
    """``(acc_sum, acc_sq_sum)`` of ``prior_count`` pseudo-observations at
    means ``mu`` with variances ``var`` (both ``(R, D)``): ``mu * c`` and
    ``(var + mu^2) * c``. ``O(R D)``."""
    return mu * prior_count, torch.addcmul(var, mu, mu).mul_(prior_count)


def normalise_rows_(
        rows: Tensor, fallback: Union[Tensor, Callable[[int],
                                                      Tensor]]) -> Tensor:
    """``rows / ||rows||`` in place, ``(R, D)``. A row of (near) zero or NaN
    norm (not above the smallest normal fp32) takes ``fallback``'s row (a
    unit-norm ``(R, D)`` tensor) or, for a callable, a new row
    ``fallback(count)`` ``(count, D)``, normalised. ``O(R D)``."""
    norm = torch.linalg.vector_norm(rows, dim=1, keepdim=True)
    if not bool((norm > TINY).all()):
        bad = ~(norm > TINY).squeeze(1)  # also catches NaN
        if callable(fallback):
            rows[bad] = fallback(int(bad.sum()))
            norm[bad] = torch.linalg.vector_norm(rows[bad], dim=1,
                                                 keepdim=True)
        else:
            rows[bad] = fallback[bad]
            norm[bad] = 1.0
    return rows.div_(norm)


def similarity_blocks(rows: Tensor,
                      means: Tensor) -> Iterator[Tuple[slice, Tensor]]:
    """``(block, rows[block] @ means.T)`` per block of at most
    :data:`BLOCK` rows, in order: cosines of unit vectors, ``(<= BLOCK,
    K)`` at a time. ``O(R K D)`` in all."""
    for start in range(0, rows.shape[0], BLOCK):
        block = slice(start, min(start + BLOCK, rows.shape[0]))
        yield block, rows[block] @ means.T


class Scratch:
    """Named fp32 work tensors an update reuses (the E-step's weights and
    statistics, a chunk's responsibilities, the M-step's means). Not state:
    a plain attribute of the mixture, so ``buffers()``, ``state_dict`` and
    a ``DistributedDataParallel`` buffer broadcast never see it."""

    def __init__(self) -> None:
        self.tensors: Dict[str, Tensor] = {}

    def __call__(self, name: str, *shape: int,
                 device: torch.device) -> Tensor:
        """Tensor ``name`` viewed as ``shape`` on ``device`` (reallocated,
        zero-filled, when too small or elsewhere; else as last left)."""
        buf, numel = self.tensors.get(name), math.prod(shape)
        if buf is None or buf.numel() < numel or buf.device != device:
            buf = torch.zeros(numel, dtype=F32, device=device)
            self.tensors[name] = buf
        return buf[:numel].view(*shape)

    @property
    def nbytes(self) -> int:
        """Bytes held."""
        return sum(t.numel() * t.element_size()
                   for t in self.tensors.values())
