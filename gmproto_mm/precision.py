"""Full-precision fp32 matmuls where exact float32 arithmetic matters.

The E-step expands ``-(x - mu)^2 / (2 var)`` into terms of size ``1 / (2
min_var)`` (5,000 at ``min_var = 1e-4``) that cancel, and the collapse
metric screens cosines with a rounding-error margin that assumes IEEE
float32 products. Reduced-precision fp32 matmuls -- TF32 on CUDA, bf16 in
oneDNN on CPUs with bf16 units, switched on by
``torch.set_float32_matmul_precision('high' / 'medium')`` or the
per-backend ``fp32_precision`` flags -- would make both meaningless. Works
on every torch this package admits (>= 2.0): the per-backend API where it
exists (torch >= 2.9, where mixing it with the legacy calls raises), else
the process-wide ``float32_matmul_precision``, which covers both backends.
"""
import contextlib
from typing import Iterator, Optional, Tuple

import torch

_IEEE = ('ieee', 'none')  # 'none' inherits: see _resolved()


def _per_backend_matmuls() -> Optional[Tuple[object, object]]:
    """``(cuBLAS, oneDNN)`` matmul precision objects of the per-backend API
    (torch >= 2.9), or None on older torch."""
    cuda = getattr(torch.backends.cuda, 'matmul', None)
    mkldnn = getattr(getattr(torch.backends, 'mkldnn', None), 'matmul', None)
    if hasattr(cuda, 'fp32_precision') and hasattr(mkldnn, 'fp32_precision'):
        return cuda, mkldnn
    return None


@contextlib.contextmanager
def ieee_fp32_matmuls() -> Iterator[None]:
    """Inside the block, float32 matmuls run in full float32 on CUDA and
    on the CPU; the caller's settings are restored after (also on an
    error). Two attribute writes each way: free.

    Example:
        >>> import torch
        >>> from gmproto_mm.precision import ieee_fp32_matmuls
        >>> with ieee_fp32_matmuls():
        ...     y = torch.ones(2, 3) @ torch.ones(3, 2)
    """
    backends = _per_backend_matmuls()
    if backends is None:  # torch < 2.9: one process-wide setting
        saved = torch.get_float32_matmul_precision()
        torch.set_float32_matmul_precision('highest')
        try:
            yield
        finally:
            torch.set_float32_matmul_precision(saved)
        return
    saved = [backend.fp32_precision for backend in backends]
    for backend in backends:
        backend.fp32_precision = 'ieee'
    try:
        yield
    finally:
        for backend, value in zip(backends, saved):
            backend.fp32_precision = value


def fp32_matmuls_are_ieee(device: torch.device) -> bool:
    """Whether float32 matmuls on ``device`` run in full float32 now.

    Args:
        device (torch.device): Where the matmul runs.

    Returns:
        bool: False when TF32 (CUDA) or bf16 (oneDNN on the CPU) may be
        used.
    """
    backends = _per_backend_matmuls()
    if backends is None:
        return torch.get_float32_matmul_precision() == 'highest'
    cuda, mkldnn = backends
    if device.type == 'cuda':
        return _resolved(cuda, torch.backends.cuda) in _IEEE
    return _resolved(mkldnn, torch.backends.mkldnn) in _IEEE


def _resolved(matmul: object, backend: object) -> str:
    """The matmul's precision, following ``'none'`` (inherit) up to its
    backend and the process-wide ``torch.backends.fp32_precision``."""
    for level in (matmul, backend, torch.backends):
        value = getattr(level, 'fp32_precision', 'none')
        if value != 'none':
            return value
    return 'none'


def cosine_margin(dim: int, dtype: torch.dtype) -> float:
    """Bound on ``|computed - exact|`` cosine of two unit vectors of length
    ``dim`` in an IEEE ``dtype`` matmul.

    Rounding the unit rows to ``dtype`` and a length-``dim`` dot product
    give at most ``(dim + 2) * u`` with ``u = finfo.eps / 2`` (Higham's
    gamma_n); this is four times that, the band inside which a screening
    by ``dtype`` cosines must defer to float64.
    """
    return 2.0 * (dim + 4) * torch.finfo(dtype).eps


def unit_rows64(x: torch.Tensor) -> torch.Tensor:
    """Rows of ``x`` ``(R, D)`` as float64 unit vectors, each scaled by its
    largest entry first (no overflow): where the collapse metric and
    merging decide ``||a - b|| < eps``, so that both decide alike. A zero
    row gives NaN (callers refuse or never pass one). ``O(R D)``."""
    x = x.to(torch.float64)
    x = x / x.abs().amax(dim=1, keepdim=True)
    return x / torch.linalg.vector_norm(x, dim=1, keepdim=True)
