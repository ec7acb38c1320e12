"""Restarting components: what re-seeding and merging do to the
components they move, written once, through the mixture's public state
and methods (``start_components``, ``refit``, ``renormalise_weights``,
``feature_chunks``)."""
import torch
from torch import Tensor

from .. import numerics as nm


def restart_components(gmm, which: Tensor, mu: Tensor, x: Tensor,
                       fit) -> None:
    """Components ``which`` start afresh at unit-norm means ``mu``
    ``(R, D)``, with the variance of a typical component in use (the
    variances weighted by the data mass each holds, its count above
    the prior; the batch variance while none holds data) and the prior
    statistics; then each takes the rows of batch ``x`` it would have
    got in this update's E-step (:func:`absorb_rows`), so one that
    starts where data is becomes active at once. With the batch
    variance a restarted component would lose even its own rows to a
    narrower one far away (in D dimensions the log-determinant
    outweighs the distance). ``O(K D + N R D)``."""
    if which.numel() == 0:
        return
    mass = (gmm.acc_count - gmm.prior_count).clamp_min_(0.0)
    total = mass.sum()
    if bool(total > 0):
        var = (mass @ gmm.var).div_(total).clamp_min_(gmm.min_var)
    elif x.shape[0] > 1:
        var = x.var(dim=0, correction=0).clamp_min_(gmm.min_var)
    else:
        var = gmm.var[which].mean(dim=0)
    gmm.start_components(which, mu, var.expand(which.numel(), gmm.dim))
    gmm.renormalise_weights()
    absorb_rows(gmm, which, x, fit)


def absorb_rows(gmm, which: Tensor, x: Tensor, fit) -> None:
    """Add to ``which`` the statistics of the rows they would take in
    this update's E-step: ``r_nj = e_nj / (Z_n + sum_i e_ni)`` (``i``
    over ``which``), ``e_nj = exp(beta log p_nj - m_n)``, with row
    ``n``'s maximum ``m_n`` and normaliser ``Z_n`` from the E-step (the
    other components' responsibilities are not revisited). Floored as
    the E-step. ``O(N R D)`` over the E-step's row chunks."""
    weights = nm.log_density_weights(gmm.pi[which], gmm.mu[which],
                                     gmm.var[which])
    stats = x.new_zeros(which.numel(), 2 * gmm.dim + 1)  # [Q, S, N]
    for rows, feats in gmm.feature_chunks(x):
        shifted = torch.addmm(-fit.row_max[rows].unsqueeze(1), feats,
                              weights.T, alpha=fit.beta)
        # log(Z_n + sum_j e_nj): one softmax over all components
        log_norm = torch.logaddexp(fit.row_sum[rows].log(),
                                   torch.logsumexp(shifted, dim=1))
        resp = nm.floored_exp_(shifted.sub_(log_norm.unsqueeze(1)))
        stats.addmm_(resp.T, feats)
    D = gmm.dim
    gmm.acc_sq_sum[which] += stats[:, :D]
    gmm.acc_sum[which] += stats[:, D:2 * D]
    gmm.acc_count[which] += stats[:, 2 * D]
    gmm.refit(which)
    gmm.renormalise_weights()
