"""One EM step against scikit-learn's diagonal ``GaussianMixture``: the
joint log densities, the posterior and the batch statistics the M-step
uses (``_estimate_gaussian_parameters``), computed independently."""
import numpy as np
import pytest
import torch

from gmproto_mm.models.mixture import OnlineGaussianMixture, online_em

from .test_online_em import clustered, unit_rows

mixture = pytest.importorskip('sklearn.mixture')
gaussian = pytest.importorskip('sklearn.mixture._gaussian_mixture')


def sklearn_twin(gmm: OnlineGaussianMixture):
    """A fitted-looking ``GaussianMixture`` with our parameters."""
    sk = mixture.GaussianMixture(gmm.num_components, covariance_type='diag')
    sk.weights_ = gmm.pi.double().numpy()
    sk.means_ = gmm.mu.double().numpy()
    sk.covariances_ = gmm.var.double().numpy()
    sk.precisions_cholesky_ = 1.0 / np.sqrt(sk.covariances_)
    return sk


@pytest.mark.parametrize('chunk_rows', [1024, 64, 7])
def test_e_step_and_batch_statistics_equal_sklearn(monkeypatch,
                                                   chunk_rows) -> None:
    """Also over row chunks (64 and 7 rows: the sums are exact)."""
    monkeypatch.setattr(online_em, 'CHUNK_ROWS', chunk_rows)
    gen = torch.Generator().manual_seed(0)
    centres = unit_rows(4, 8, seed=1)
    gmm = OnlineGaussianMixture(6, 8, forgetting=0.05, beta_iters=0,
                                init_samples=1)
    for _ in range(3):  # a state away from its initialisation
        gmm.update(clustered(centres, 64, 0.2, gen))
    x = torch.nn.functional.normalize(clustered(centres, 200, 0.2, gen),
                                      dim=1)
    sk = sklearn_twin(gmm)
    data = x.double().numpy()
    np.testing.assert_allclose(gmm.log_prob(x).double().numpy(),
                               sk._estimate_weighted_log_prob(data),
                               rtol=1e-5, atol=1e-4)
    resp = sk.predict_proba(data)
    np.testing.assert_allclose(gmm.responsibilities(x).double().numpy(),
                               resp, atol=2e-6)
    # the E-step's statistics [Q, S, N] of the update, chunked
    estep = gmm._e_step(x, 1.0)
    D = gmm.dim
    stats = torch.cat([estep.sq_sum, estep.sum, estep.count[:, None]], 1)
    nk, means, covs = gaussian._estimate_gaussian_parameters(
        data, resp, 0.0, 'diag')
    count = stats[:, 2 * D].double().numpy()
    np.testing.assert_allclose(count, nk, rtol=1e-5, atol=2e-6)
    seen = nk > 1e-3  # means and variances of components with data
    got_means = stats[:, D:2 * D].double().numpy() / count[:, None]
    got_covs = stats[:, :D].double().numpy() / count[:, None] - got_means**2
    np.testing.assert_allclose(got_means[seen], means[seen], atol=2e-6)
    np.testing.assert_allclose(got_covs[seen], covs[seen], atol=2e-6)
