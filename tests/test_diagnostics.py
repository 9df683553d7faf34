"""Diagnostics against independent truths: finite differences, full Hessians, known matrices, known tails."""

import numpy as np
import pytest
import torch

from lintf_core.data import PromptStream, prompt_statistics
from lintf_core.diagnostics import (directional_smoothness, gradient_noise, hessians, robust_condition_number,
                                    tail_statistics, true_gradient)
from lintf_core.model import Architecture, init_params, loss_and_grad
from lintf_core.settings import get_setting


def stats64(setting, batch, seed=0):
    p = PromptStream(setting, seed).sample(batch)
    p.x, p.w, p.x_query = p.x.double(), p.w.double(), p.x_query.double()
    return prompt_statistics(p)


def test_hessian_matches_finite_differences_of_gradients():
    setting = get_setting("setting1")
    arch = Architecture.of(setting)
    theta = init_params(arch, [0, 1], 0.2).double()
    data = stats64(setting, 64)
    H = hessians(theta, arch, data)
    assert H.shape == (2, 150, 150)
    torch.testing.assert_close(H, H.transpose(1, 2), rtol=1e-9, atol=1e-10)
    eps = 1e-5
    for i in (0, 31, 149):
        e = torch.zeros_like(theta)
        e[:, i] = eps
        column = (loss_and_grad(theta + e, arch, data)[1] - loss_and_grad(theta - e, arch, data)[1]) / (2 * eps)
        torch.testing.assert_close(H[:, :, i], column, rtol=1e-5, atol=1e-7)


def test_directional_smoothness_is_uHu_of_the_full_hessian():
    setting = get_setting("setting3")
    arch = Architecture.of(setting)
    theta = init_params(arch, [0, 1, 2], 0.1).double()
    data = stats64(setting, 64)
    u = torch.randn(3, arch.n_params, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    H = hessians(theta, arch, data)
    expected = torch.einsum("ri,rij,rj->r", u, H, u) / (u * u).sum(1)
    torch.testing.assert_close(directional_smoothness(theta, u, arch, data), expected, rtol=1e-9, atol=1e-12)
    # scale invariance: only the direction matters
    torch.testing.assert_close(directional_smoothness(theta, 7 * u, arch, data), expected, rtol=1e-9, atol=1e-12)


def test_robust_condition_number_on_known_matrices():
    diag = torch.diag(torch.tensor([-8.0, 1.0, 2.0, 4.0]))
    # |diag| = 8, 1, 2, 4: max 8, lower median 2 (torch.median convention)
    assert robust_condition_number(diag, "diagonal").item() == pytest.approx(4.0)
    # eigenvalues -8, 1, 2, 4: max 4, lower median 1
    assert robust_condition_number(diag, "eigenvalues").item() == pytest.approx(4.0)
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
