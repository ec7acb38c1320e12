"""KoLeo regulariser on prototypes (Sablayrolles et al. 2019; applied to
prototypes by Govindarajan et al. 2024), the usual remedy for collapse."""
import torch
import torch.nn.functional as F


def koleo_prototype_loss(prototypes: torch.Tensor,
                         block_size: int = 4096) -> torch.Tensor:
    """``-1/K * sum_k log min_{j != k} ||w_k - w_j||`` on unit-norm rows.

    The nearest neighbour of each row is found blockwise without gradient
    (never a ``(K, K)`` matrix); the distance to it carries the gradient.
    Computed in fp32 whatever the autocast state.

    Args:
        prototypes (Tensor): ``(K, D)`` prototypes, K >= 2.
        block_size (int): Rows per similarity block. Defaults to 4096.

    Returns:
        Tensor: Scalar loss.

    Example:
        >>> w = torch.tensor([[1., 0.], [0., 1.], [-1., 0.]])
        >>> round(float(koleo_prototype_loss(w)), 4)  # -log(sqrt(2))
        -0.3466
    """
    if prototypes.dim() != 2 or prototypes.shape[0] < 2:
        raise ValueError('KoLeo needs (K, D) prototypes with K >= 2, got '
                         f'{tuple(prototypes.shape)}')
    with torch.autocast(device_type=prototypes.device.type, enabled=False):
        w = F.normalize(prototypes.float(), dim=1)
        num = w.shape[0]
        nearest = torch.empty(num, dtype=torch.long, device=w.device)
        with torch.no_grad():
            for start in range(0, num, block_size):
                sim = w[start:start + block_size] @ w.t()
                rows = torch.arange(sim.shape[0], device=w.device)
                sim[rows, rows + start] = -float('inf')  # not itself
                nearest[start:start + block_size] = sim.argmax(dim=1)
        eps = torch.finfo(w.dtype).eps
        distance = (w - w[nearest]).norm(dim=1)
        return -torch.log(distance + eps).mean()
