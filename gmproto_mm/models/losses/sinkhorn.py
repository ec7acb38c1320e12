"""Sinkhorn-Knopp equal-partition assignments (SwAV; DINOv2's teacher),
with reductions on every iteration so that ranks never disagree."""
import torch
from mmengine import dist


@torch.no_grad()
def sinkhorn(scores: torch.Tensor, iterations: int,
             epsilon: float) -> torch.Tensor:
    """Balanced soft assignments of a (globally split) batch to prototypes.

    Unlike mmpretrain 1.2.0's ``distributed_sinkhorn``, which all-reduces the
    prototype marginals only when one of them is zero (so ranks disagree, or
    hang when only some see a zero), every reduction here runs on every
    iteration on every rank.

    Args:
        scores (Tensor): ``(B, K)`` prototype scores of this rank's batch.
        iterations (int): Sinkhorn-Knopp iterations.
        epsilon (float): Entropic regularisation.

    Returns:
        Tensor: ``(B, K)`` assignments, each row sums to 1.
    """
    with torch.autocast(device_type=scores.device.type, enabled=False):
        # subtracting the global max keeps exp() finite; it cancels out
        peak = scores.detach().float().max().reshape(1)
        dist.all_reduce(peak, op='max')
        q = torch.exp((scores.float() - peak) / epsilon).t()  # (K, B)
        total_b = torch.tensor([float(q.shape[1])], device=q.device)
        dist.all_reduce(total_b, op='sum')
        num_k = q.shape[0]
        mass = q.sum().reshape(1)
        dist.all_reduce(mass, op='sum')
        q /= mass
        tiny = torch.finfo(q.dtype).tiny
        for _ in range(iterations):
            rows = q.sum(dim=1, keepdim=True)
            dist.all_reduce(rows, op='sum')
            q /= rows.clamp_min(tiny) * num_k
            q /= q.sum(dim=0, keepdim=True).clamp_min(tiny) * total_b
        return (q * total_b).t()
