"""Time one online-EM update against one teacher-logits matmul.

The prototype step (``OnlineGaussianMixture.update``, arXiv 2510.20108) should
cost a small multiple of the ``(N, D) x (D, K)`` matmul that computes the
teacher's logits; the target is <= 5x (the E- and M-step matmuls alone are
~4x). Run from the repository root::

    python tools/analysis/benchmark_em.py --num-components 65536 --dim 256 \
        --batch 512 --repeats 10 --device cpu

Other scripts can load :func:`measure_em_ratio` by path (``tools`` is not a
package)::

    spec = importlib.util.spec_from_file_location(
        'benchmark_em', 'tools/analysis/benchmark_em.py')
"""
import argparse
import os.path as osp
import statistics
import sys
import time
from typing import Callable, Dict, List

import torch
import torch.nn.functional as F

try:
    from gmproto_mm.models.utils.online_gmm import OnlineGaussianMixture
except ImportError:  # run as a script from anywhere
    sys.path.insert(
        0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
    from gmproto_mm.models.utils.online_gmm import OnlineGaussianMixture


def _timed(fn: Callable[[], object], device: torch.device,
           repeats: int) -> List[float]:
    """Wall-clock seconds of ``repeats`` calls of ``fn`` (synchronised)."""
    times = []
    for _ in range(repeats):
        if device.type == 'cuda':
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        fn()
        if device.type == 'cuda':
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
    return times


def measure_em_ratio(num_components: int = 65536,
                     dim: int = 256,
                     batch: int = 512,
                     repeats: int = 10,
                     device: str = 'cpu') -> Dict[str, float]:
    """Median times of one EM update and of one logits matmul, and their ratio.

    The mixture is initialised and warmed up first. The matmul is
    ``x @ mu.T`` with ``x`` ``(N, D)`` and ``mu`` ``(K, D)``, allocating a
    fresh ``(N, K)`` output each time, as the teacher's logits do. Update and
    matmul calls are interleaved so that both see the same machine load.

    Args:
        num_components (int): ``K``. Defaults to 65536.
        dim (int): ``D``. Defaults to 256.
        batch (int): ``N``. Defaults to 512.
        repeats (int): Timed calls of each. Defaults to 10.
        device (str): ``'cpu'`` or ``'cuda'``. Defaults to ``'cpu'``.

    Returns:
        Dict[str, float]: ``update_s`` and ``matmul_s`` (median seconds),
        ``ratio`` (``update_s / matmul_s``), ``first_update_s`` (with the
        initialisation) and the sizes.
    """
    dev = torch.device(device)
    gen = torch.Generator().manual_seed(0)
    # Clustered unit vectors, closer to real embeddings than pure noise.
    centres = F.normalize(torch.randn(256, dim, generator=gen), dim=1)
    batches = []
    for _ in range(3):
        idx = torch.randint(256, (batch, ), generator=gen)
        x = centres[idx] + 0.3 / dim**0.5 * torch.randn(
            batch, dim, generator=gen)
        batches.append(F.normalize(x, dim=1).to(dev))
    # init_samples=1: EM from the first call (the steady-state step is timed)
    gmm = OnlineGaussianMixture(num_components, dim, init_samples=1).to(dev)
    first = _timed(lambda: gmm.update(batches[0]), dev, 1)[0]
    for x in batches[1:]:  # warm-up
        gmm.update(x)
        batches[0] @ gmm.means.T

    update_s, matmul_s = [], []
    for i in range(repeats):
        x = batches[i % len(batches)]
        update_s += _timed(lambda: gmm.update(x), dev, 1)
        matmul_s += _timed(lambda: x @ gmm.means.T, dev, 1)
    update_med = statistics.median(update_s)
    matmul_med = statistics.median(matmul_s)
    return dict(num_components=num_components,
                dim=dim,
                batch=batch,
                update_s=update_med,
                matmul_s=matmul_med,
                ratio=update_med / matmul_med,
                first_update_s=first)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--num-components', type=int, default=65536,
                        help='K, the mixture components (prototypes)')
    parser.add_argument('--dim', type=int, default=256,
                        help='D, the embedding dimension')
    parser.add_argument('--batch', type=int, default=512,
                        help='N, embeddings per EM update (all ranks)')
    parser.add_argument('--repeats', type=int, default=10,
                        help='timed repetitions (the median is reported)')
    parser.add_argument('--device', default='cpu', choices=['cpu', 'cuda'],
                        help='where to time')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if args.device == 'cuda' and not torch.cuda.is_available():
        raise SystemExit('--device cuda given but CUDA is not available')
    res = measure_em_ratio(args.num_components, args.dim, args.batch,
                           args.repeats, args.device)
    print(f'K={res["num_components"]} D={res["dim"]} N={res["batch"]} '
          f'device={args.device} threads={torch.get_num_threads()}')
    print(f'first update (with init): {res["first_update_s"] * 1e3:.1f} ms')
    print(f'median update:            {res["update_s"] * 1e3:.1f} ms')
    print(f'median N x D x K matmul:  {res["matmul_s"] * 1e3:.1f} ms')
    print(f'ratio update/matmul = {res["ratio"]:.2f} (target <= 5)')


if __name__ == '__main__':
    main()
