"""DeFlow's latent domain shift (sec. 3.1-3.2, appendix A-B): densities against torch.distributions, the 1-D
Gaussian example's closed form, sampling statistics, and the shift estimated after training (Table 4)."""

import math

import torch

from degrade_lab.archs.latent_shift import LatentShift


def _shift(mode="full", channels=3, seed=0):
    shift = LatentShift(channels, mode)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        shift.mean.copy_(torch.randn(channels, generator=generator))
        shift.matrix_weight.copy_(torch.randn(shift.matrix_weight.shape, generator=generator))
    return shift


def test_log_prob_is_the_multivariate_normal_of_eq_4():
    shift = _shift()
    eps = torch.randn(4, 3, 2, 5, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    degraded = torch.tensor([True, False, True, False])
    got = shift.log_prob(eps, degraded)
    matrix = shift.matrix().detach().double()
    clean = torch.distributions.MultivariateNormal(torch.zeros(3, dtype=torch.float64), torch.eye(3, dtype=torch.float64))
    noisy = torch.distributions.MultivariateNormal(shift.mean.detach().double(),
                                                   torch.eye(3, dtype=torch.float64) + matrix @ matrix.T)
    per_position = eps.permute(0, 2, 3, 1)
    expected = torch.stack([(noisy if d else clean).log_prob(per_position[i]).sum() for i, d in enumerate(degraded)])
    torch.testing.assert_close(got, expected)


def test_pair_log_prob_is_eq_5():
    shift = _shift(seed=2)
    generator = torch.Generator().manual_seed(3)
    clean, degraded = (torch.randn(2, 3, 4, 4, generator=generator, dtype=torch.float64) for _ in range(2))
    matrix = shift.matrix().detach().double()
    conditional = torch.distributions.MultivariateNormal(
        torch.zeros(3, dtype=torch.float64), matrix @ matrix.T + 1e-4 * torch.eye(3, dtype=torch.float64))
    expected = conditional.log_prob((degraded - clean - shift.mean.detach().double().view(1, 3, 1, 1))
                                    .permute(0, 2, 3, 1)).sum(dim=(1, 2))
    torch.testing.assert_close(shift.pair_log_prob(degraded, clean), expected)


def test_covariance_is_psd_and_a_clean_batch_leaves_the_shift_untouched():
    shift = _shift(channels=4)
    assert torch.linalg.eigvalsh(shift.covariance().detach().double()).min() > -1e-10
    eps = torch.randn(3, 4, 3, 3, requires_grad=True)
    shift.log_prob(eps, torch.zeros(3, dtype=torch.bool)).sum().backward()
    assert shift.mean.grad is None or not shift.mean.grad.any()
    assert shift.matrix_weight.grad is None or not shift.matrix_weight.grad.any()
    zero = LatentShift(4)  # initialised to zero: both domains have the same distribution
    eps = eps.detach()
    both = zero.log_prob(eps, torch.tensor([True, False, True]))
    torch.testing.assert_close(both, zero.log_prob(eps, torch.zeros(3, dtype=torch.bool)))


def test_shifted_samples_have_mean_mu_and_covariance_m_mt():
    shift = _shift(mode="diagonal", channels=3, seed=4)
    generator = torch.Generator().manual_seed(5)
    noise = torch.randn(64, 3, 32, 32, generator=generator)
    u = shift.shift(torch.zeros_like(noise), noise, torch.ones(64)).detach()
    flat = u.permute(0, 2, 3, 1).reshape(-1, 3).double()
    torch.testing.assert_close(flat.mean(0), shift.mean.detach().double(), atol=0.02, rtol=0)
    torch.testing.assert_close(torch.cov(flat.T), shift.covariance().detach().double(), atol=0.05, rtol=0.02)
    half = shift.shift(torch.zeros_like(noise[:2]), noise[:2], torch.full((2,), 0.5)).detach()
    torch.testing.assert_close(half, 0.5 * u[:2])


def test_the_one_dimensional_gaussian_example_recovers_the_closed_form():
    """Appendix A-B: clean x ~ N(mu_x, s_x^2), degraded y ~ N(mu_y, s_y^2), flow x = s z + m. Maximum likelihood
    gives m = mu_x, s = s_x, mu_u = (mu_y - mu_x) / s_x and sigma_u^2 = s_y^2 / s_x^2 - 1 (with the samples'
    own means and variances: the maximum-likelihood solution on these data)."""
    torch.manual_seed(0)
    n = 4000
    x = 0.3 + 0.5 * torch.randn(n, 1, 1, 1)
    y = 1.1 + 0.9 * torch.randn(n, 1, 1, 1)
    mu_x, s_x, mu_y, s_y = float(x.mean()), float(x.std(unbiased=False)), float(y.mean()), float(y.std(unbiased=False))
    shift = LatentShift(1)
    with torch.no_grad():
        shift.matrix_weight.fill_(0.1)  # zero is a stationary point of sigma_u's gradient (the model's init)
    m, log_s = torch.zeros(1, requires_grad=True), torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.Adam([m, log_s, *shift.parameters()], lr=0.05)
    labels = torch.cat([torch.zeros(n, dtype=torch.bool), torch.ones(n, dtype=torch.bool)])
    data = torch.cat([x, y])
    for _ in range(500):
        optimizer.zero_grad()
        z = (data - m) / torch.exp(log_s)
        nll = -(shift.log_prob(z, labels) - log_s.sum()).mean()
        nll.backward()
        optimizer.step()
    m, s, mu_u, sigma_u2 = (float(v.detach()) for v in (m, log_s.exp(), shift.mean, shift.covariance()))
    assert math.isclose(m, mu_x, abs_tol=0.01)
    assert math.isclose(s, s_x, rel_tol=0.02)
    assert math.isclose(mu_u, (mu_y - mu_x) / s_x, rel_tol=0.05)
    assert math.isclose(sigma_u2, s_y**2 / s_x**2 - 1, rel_tol=0.05)


def test_a_shift_estimated_after_training_recovers_a_known_one():
    generator = torch.Generator().manual_seed(6)
    true = _shift(channels=3, seed=7)
    clean = torch.randn(16, 3, 32, 32, generator=generator)
    degraded = true.shift(torch.randn(16, 3, 32, 32, generator=generator), torch.randn(16, 3, 32, 32, generator=generator),
                          torch.ones(16)).detach()
    estimated = LatentShift(3, "none")
    estimated.estimate(clean, degraded)
    torch.testing.assert_close(estimated.mean, true.mean.detach(), atol=0.05, rtol=0)
    torch.testing.assert_close(estimated.covariance(), true.covariance().detach(), atol=0.15, rtol=0.05)


def test_unshift_draws_the_gaussian_conditional_of_the_clean_latent():
    """z_x ~ N(0, I), z_y = z_x + u, u ~ N(mu, Sigma): jointly Gaussian with Cov(z_x, z_y) = I and
    Cov(z_y) = I + Sigma, so z_x | z_y has mean (I + Sigma)^-1 (z_y - mu) and covariance I - (I + Sigma)^-1
    (the Schur complement). Monte Carlo over 200,000 positions; T = 0 gives the mean exactly."""
    torch.manual_seed(0)
    shift = LatentShift(3, "full").double()
    with torch.no_grad():
        shift.mean.copy_(torch.tensor([0.5, -1.0, 0.2], dtype=torch.float64))
        shift.matrix_weight.copy_(torch.tensor([[1.0, 0.0, 0.0], [0.6, 0.8, 0.0], [-0.3, 0.2, 0.5]], dtype=torch.float64))
    eye = torch.eye(3, dtype=torch.float64)
    joint = eye + shift.covariance().detach()
    z_y = torch.tensor([1.0, 2.0, -0.5], dtype=torch.float64)
    expected_mean = torch.linalg.solve(joint, z_y - shift.mean.detach())
    expected_cov = eye - torch.linalg.inv(joint)
    eps = z_y.view(1, 3, 1, 1).expand(1, 3, 400, 500)
    noise = torch.randn(1, 3, 400, 500, dtype=torch.float64)
    with torch.no_grad():
        draws = shift.unshift(eps, noise, torch.ones(1)).permute(0, 2, 3, 1).reshape(-1, 3)
        cold = shift.unshift(eps, noise, torch.zeros(1))
    torch.testing.assert_close(draws.mean(0), expected_mean, atol=0.01, rtol=0)
    torch.testing.assert_close(torch.cov(draws.T), expected_cov, atol=0.01, rtol=0)
    torch.testing.assert_close(cold[0, :, 0, 0], expected_mean)


def test_m_at_zero_is_a_stationary_point_and_a_small_init_lets_it_learn():
    """d/dM of any function of M M^T is (G + G^T) M, zero at M = 0: the authors' std_init_shift 0 leaves M at zero
    forever. With init_std > 0 the degraded-domain likelihood moves M."""
    eps = torch.randn(4, 3, 5, 5, generator=torch.Generator().manual_seed(0)) * 2.0  # wider than N(0, I)
    degraded = torch.ones(4, dtype=torch.bool)
    for init_std, moves in ((0.0, False), (0.1, True)):
        shift = LatentShift(3, "full", init_std=init_std)
        torch.testing.assert_close(shift.matrix().detach(), torch.eye(3) * init_std)
        shift.log_prob(eps, degraded).sum().backward()
        assert (shift.matrix_weight.grad.abs().max() > 1e-3) == moves
        assert shift.mean.grad.abs().max() > 0  # the mean learns either way
