"""Diagnostics against independent truths: finite differences, full Hessians, known matrices, known tails."""

import numpy as np
import pytest
import torch

from lintf_core.data import PromptStatistics, PromptStream, prompt_statistics
from lintf_core.diagnostics import (condition_numbers, gradient_noise,
                                    paired_ratios, robust_condition_number, smoothness_along, smoothness_envelope,
                                    tail_statistics, true_gradient)
from lintf_core.engine import directional_smoothness, hessians
from lintf_core.model import Architecture, init_params, loss, loss_and_grad
from lintf_core.settings import get_setting
from lintf_core.train import train


def stats64(setting, batch, seed=0):
    p = PromptStream(setting, seed).sample(batch)
    p.x, p.w, p.x_query = p.x.double(), p.w.double(), p.x_query.double()
    return prompt_statistics(p)


def float32(stats):
    return PromptStatistics(stats.G.float(), stats.z_query.float(), stats.target.float())


def test_hessian_matches_finite_differences_of_gradients():
    """The Hessians the figures use (float32, the fused kernel) against central differences of the readable
    model's float64 autograd gradient (model.loss_and_grad)."""
    setting = get_setting("setting1")
    arch = Architecture.of(setting)
    theta = init_params(arch, [0, 1], 0.2)
    data = stats64(setting, 64)
    H = hessians(theta, arch, float32(data))
    assert H.shape == (2, 150, 150) and H.dtype == torch.float32
    eps = 1e-5
    for i in (0, 31, 149):
        e = torch.zeros_like(theta, dtype=torch.float64)
        e[:, i] = eps
        column = (loss_and_grad(theta.double() + e, arch, data)[1]
                  - loss_and_grad(theta.double() - e, arch, data)[1]) / (2 * eps)
        torch.testing.assert_close(H[:, :, i].double(), column, rtol=1e-3, atol=1e-4 * column.abs().max().item())


def test_directional_smoothness_is_uHu_of_the_full_hessian():
    setting = get_setting("setting3")
    arch = Architecture.of(setting)
    theta = init_params(arch, [0, 1, 2], 0.1)
    data = float32(stats64(setting, 64))
    u = torch.randn(3, arch.n_params, generator=torch.Generator().manual_seed(0))
    H = hessians(theta, arch, data).double()
    expected = torch.einsum("ri,rij,rj->r", u.double(), H, u.double()) / (u.double() ** 2).sum(1)
    torch.testing.assert_close(directional_smoothness(theta, u, arch, data).double(), expected, rtol=1e-4,
                               atol=1e-7)
    # scale invariance: only the direction matters
    torch.testing.assert_close(directional_smoothness(theta, 7 * u, arch, data).double(), expected, rtol=1e-4,
                               atol=1e-7)


def test_robust_condition_number_on_known_matrices():
    diag = torch.diag(torch.tensor([-8.0, 1.0, 2.0, 4.0]))
    # |diag| = 8, 1, 2, 4: max 8, lower median 2 (torch.median convention)
    assert robust_condition_number(diag, "diagonal").item() == pytest.approx(4.0)
    # eigenvalues -8, 1, 2, 4 -> magnitudes 8, 1, 2, 4: max 8, lower median 2
    assert robust_condition_number(diag, "eigenvalues").item() == pytest.approx(4.0)
    # magnitudes, not signed values: signed, the lower median of -8, -1, 2, 4 would be -1
    flipped = torch.diag(torch.tensor([-8.0, -1.0, 2.0, 4.0]))
    assert robust_condition_number(flipped, "eigenvalues").item() == pytest.approx(8.0 / 2.0)
    # a rotation leaves eigenvalues alone but changes the diagonal
    q, _ = torch.linalg.qr(torch.randn(4, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64))
    rotated = q @ diag.double() @ q.T
    assert robust_condition_number(rotated, "eigenvalues").item() == pytest.approx(4.0)
    batch = torch.stack([torch.diag(torch.tensor([1.0, 2.0, 3.0])), torch.diag(torch.tensor([1.0, 10.0, 100.0]))])
    torch.testing.assert_close(robust_condition_number(batch), torch.tensor([1.5, 10.0]))


def test_noise_is_centred_on_the_true_gradient():
    """The mean of many minibatch gradients converges to the large-batch gradient: the noise vectors average out,
    and their norms shrink like 1/sqrt(batch)."""
    setting = get_setting("setting1")
    arch = Architecture.of(setting)
    theta = init_params(arch, [1], setting.init_std)[0]
    g_big = true_gradient(setting, arch, theta, 40000, seed=5)
    g_other = true_gradient(setting, arch, theta, 40000, seed=6)
    # two independent 40k-prompt gradients agree far better than single 1k-prompt ones do
    small = gradient_noise(setting, arch, theta, n_samples=200, batch_size=1000, true_batch=40000, seed=2)
    assert (g_big - g_other).norm() < 0.3 * np.median(small)
    quarter = gradient_noise(setting, arch, theta, n_samples=200, batch_size=250, true_batch=40000, seed=2)
    assert np.median(quarter) / np.median(small) == pytest.approx(2.0, rel=0.2)


def test_tail_statistics_tell_gaussian_from_student_t():
    rng = np.random.default_rng(0)
    gauss = tail_statistics(np.abs(rng.standard_normal(100000)))
    student = tail_statistics(np.abs(rng.standard_t(3, 100000)))
    assert gauss["hill_k"] == 316
    assert 2.0 < student["hill_tail_index"] < 4.5  # the t(3) tail index is 3
    assert gauss["hill_tail_index"] > 6.0
    assert student["excess_kurtosis"] > 10 * max(gauss["excess_kurtosis"], 0.1)
    assert student["q0.999_in_sd"] > gauss["q0.999_in_sd"]
    normal = tail_statistics(rng.standard_normal(200000))
    assert abs(normal["excess_kurtosis"]) < 0.05
    assert normal["q0.999_in_sd"] == pytest.approx(normal["q0.999_gaussian_in_sd"], abs=0.1)


# ---- along trajectories ---------------------------------------------------------------------------------------------

def reference_eval_loss(setting, eval_batch_size):
    """The evaluation-batch loss as a function of flat parameters, through the token-level reference model (bench.py)
    on an independently drawn copy of the evaluation batch."""
    from lintf_core.bench import reference_per_prompt_loss
    from lintf_core.data import EVAL
    prompts = PromptStream(setting, 99, EVAL).sample(eval_batch_size)
    shape = (setting.n_layers, 2, setting.d, setting.d)
    return lambda flat: reference_per_prompt_loss(flat.reshape(shape), prompts).mean()


def test_steps_are_the_differences_of_consecutive_iterates():
    traj = train("setting1", seeds=[0], n_iters=4, iterate_every=1, eval_batch_size=32, progress=False)
    assert traj.steps.shape == traj.iterates.shape
    np.testing.assert_array_equal(traj.steps[:, :-1], np.diff(traj.iterates, axis=1))
    assert np.isnan(traj.steps[:, -1]).all()  # no step is taken from x_{n_iters}


def test_smoothness_along_matches_the_reference_hessian():
    """u^T H u / |u|^2 of the step actually taken, against the full Hessian of the token-level reference model."""
    setting = get_setting("setting2")
    traj = train(setting.name, seeds=[3], n_iters=3, iterate_every=1, eval_batch_size=64, progress=False)
    result = smoothness_along(traj)
    assert list(result["iterations"]) == [0, 1, 2]
    f = reference_eval_loss(setting, 64)
    for r in range(traj.n_runs):
        for k, t in enumerate(result["iterations"]):
            x = torch.from_numpy(traj.iterates[r, k])
            u = torch.from_numpy(traj.iterates[r, k + 1]) - x
            H = torch.autograd.functional.hessian(f, x)
            assert result["smoothness"][r, k] == pytest.approx((u @ H @ u / (u @ u)).item(), rel=2e-3, abs=1e-4)
            grad = torch.autograd.functional.jacobian(f, x)
            assert result["grad_norm"][r, k] == pytest.approx(grad.norm().item(), rel=1e-4)


def test_condition_numbers_along_runs():
    setting = get_setting("setting1")
    traj = train(setting.name, seeds=[0, 1], n_iters=20, iterate_every=10, eval_batch_size=64, progress=False)
    result = condition_numbers(traj, every=10, progress=False)
    assert list(result["iterations"]) == [0, 10, 20] and result["diagonal"].shape == (4, 3)
    r, k = traj.runs(optimizer="adam", seed=1)[0], 1
    H = torch.autograd.functional.hessian(reference_eval_loss(setting, 64), torch.from_numpy(traj.iterates[r, k]))
    assert result["diagonal"][r, k] == pytest.approx(robust_condition_number(H, "diagonal").item(), rel=1e-3)
    assert result["eigenvalues"][r, k] == pytest.approx(robust_condition_number(H, "eigenvalues").item(), rel=1e-2)
    # per-seed pairing: both optimizers start from the same point, so the ratio at t = 0 is exactly 1
    ratios, seeds = paired_ratios(traj, result["diagonal"])
    assert seeds == [0, 1] and ratios.shape == (2, 3)
    np.testing.assert_array_equal(ratios[:, 0], [1.0, 1.0])
    sgd, adam = traj.runs(optimizer="sgd", seed=1)[0], traj.runs(optimizer="adam", seed=1)[0]
    assert ratios[1, 2] == pytest.approx(result["diagonal"][sgd, 2] / result["diagonal"][adam, 2])
    with pytest.raises(ValueError, match="every: got 15; allowed: a multiple of the recorded iterate stride 10"):
        condition_numbers(traj, every=15)


def test_smoothness_envelope_recovers_a_known_quantile_line():
    """s = (1 + 2 g) U with U ~ Uniform(0, 1): the conditional 0.9-quantile of s is 0.9 + 1.8 g."""
    rng = np.random.default_rng(0)
    g = rng.uniform(0, 5, 4000)
    s = (1 + 2 * g) * rng.uniform(0, 1, 4000)
    fit = smoothness_envelope(g, s, quantile=0.9)
    assert fit["L0"] == pytest.approx(0.9, abs=0.15) and fit["L1"] == pytest.approx(1.8, rel=0.05)
    assert fit["fraction_below"] == pytest.approx(0.9, abs=0.01)


def test_robust_condition_number_of_a_diverged_run_is_nan():
    H = torch.stack([torch.diag(torch.tensor([1.0, 2.0, 4.0])), torch.full((3, 3), float("nan"))])
    for method in ("diagonal", "eigenvalues"):
        values = robust_condition_number(H, method)
        assert values[0].item() == pytest.approx(2.0) and torch.isnan(values[1])


def test_token_level_hessian_matches_reverse_over_reverse():
    """Models outside the fused kernels (here softmax attention, token level) take the autograd path,
    forward-over-reverse; torch.autograd.functional.hessian (reverse-over-reverse) is the independent check."""
    setting = get_setting("setting1")
    arch = Architecture.of(setting, attention="softmax")
    theta = init_params(arch, [0, 1], 0.2)
    prompts = PromptStream(setting, 0).sample(32)
    H = hessians(theta, arch, prompts)
    assert H.shape == (2, arch.n_params, arch.n_params)
    for r in range(2):
        reference = torch.autograd.functional.hessian(lambda t: loss(t[None], arch, prompts)[0], theta[r])
        scale = reference.abs().max().item()
        torch.testing.assert_close(H[r], reference, rtol=0, atol=1e-5 * scale)
        torch.testing.assert_close(H[r], H[r].T, rtol=0, atol=1e-5 * scale)


