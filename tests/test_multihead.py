"""The poster's multi-head model against a literal transcription of its Eq. (1)-(5): one run, one sequence, one head
and one pair of tokens at a time, float64; gradient descent against torch.optim.SGD; the landscape at its origin."""

import math

import pytest
import torch

from lintf_core import multihead
from lintf_core.errors import ParameterError


def literal_mh(WQ, WK, WV, WO, X, kernel):
    """MH(X) (n,) of one sequence X (n, D), heads as a Python loop and the Gaussian kernel entry by entry."""
    H, D, d = WQ.shape
    n = X.shape[0]
    heads = []
    for h in range(H):
        if kernel == "softmax":
            C = X @ WQ[h] @ (X @ WK[h]).T / math.sqrt(d)  # Eq. (1)
            S = torch.exp(C) / torch.exp(C).sum(1, keepdim=True)  # Eq. (2), row softmax
        else:
            S = torch.empty(n, n, dtype=X.dtype)
            for k in range(n):
                for j in range(n):
                    diff = X[k] @ WQ[h] - X[j] @ WK[h]
                    S[k, j] = torch.exp(-(diff @ diff) / (2 * math.sqrt(d)))  # Eq. (3)-(4)
        heads.append(S @ X @ WV[h])
    return torch.cat(heads, dim=1) @ WO  # [head_1 ... head_H] W^O


def small_problem(heads=2, runs=2, dtype=torch.float64):
    data = multihead.synthetic_regression(N=3, n=4, D=5, seed=1)
    data = multihead.Regression(X=data.X.to(dtype), y=data.y.to(dtype))
    params = {k: v.to(dtype) for k, v in multihead.init_params(range(runs), heads, D=5, d=3).items()}
    return data, params


@pytest.mark.parametrize("kernel", multihead.KERNELS)
def test_prediction_and_objective_match_literal_equations(kernel):
    data, params = small_problem()
    got = multihead.predict(params, data.X, kernel)
    for r in range(2):
        for i in range(3):
            want = literal_mh(params["query"][r], params["key"][r], params["value"][r], params["out"][r],
                              data.X[i], kernel)
            torch.testing.assert_close(got[r, i], want, rtol=1e-12, atol=1e-12)
    literal_f = 0.5 * sum(((literal_mh(params["query"][0], params["key"][0], params["value"][0], params["out"][0],
                                       data.X[i], kernel) - data.y[i]) ** 2).sum() for i in range(3))
    torch.testing.assert_close(multihead.objective(params, data, kernel)[0], literal_f)


def test_softmax_rows_sum_to_one_and_gaussian_diagonal_is_one_for_equal_projections():
    data, params = small_problem()
    q = torch.einsum("nd,hde->hne", data.X[0], params["query"][0])
    torch.testing.assert_close(multihead.attention_scores(q, q, "softmax").sum(-1), torch.ones(2, 4, dtype=q.dtype))
    diagonal = torch.diagonal(multihead.attention_scores(q, q, "gaussian"), dim1=-2, dim2=-1)
    torch.testing.assert_close(diagonal, torch.ones_like(diagonal))


@pytest.mark.parametrize("kernel", multihead.KERNELS)
@pytest.mark.parametrize("trained", multihead.TRAINED)
def test_gradient_descent_matches_torch_sgd(kernel, trained):
    data, params = small_problem(runs=1)
    names = multihead.MATRICES if trained == "all" else ("query",)
    leaves = {k: params[k][0].clone().requires_grad_(k in names) for k in params}
    sgd = torch.optim.SGD([leaves[k] for k in names], lr=0.05)
    for _ in range(3):
        sgd.zero_grad()
        f = 0.5 * sum(((literal_mh(leaves["query"], leaves["key"], leaves["value"], leaves["out"], data.X[i],
                                   kernel) - data.y[i]) ** 2).sum() for i in range(3))
        f.backward()
        sgd.step()
    final, record = multihead.gradient_descent(params, data, kernel, trained, 0.05, 3)
    for k in params:
        torch.testing.assert_close(final[k][0], leaves[k].detach(), rtol=1e-10, atol=1e-12)
    assert record["loss"].shape == (1, 4)
    if trained == "query":  # the other matrices never move
        for k in ("key", "value", "out"):
            torch.testing.assert_close(final[k], params[k], rtol=0, atol=0)


@pytest.mark.parametrize("kernel", multihead.KERNELS)
def test_gradient_against_finite_differences(kernel):
    data, params = small_problem(runs=1)
    direction = {k: torch.randn(v.shape, generator=torch.Generator().manual_seed(3), dtype=v.dtype)
                 for k, v in params.items()}
    leaves = {k: v.clone().requires_grad_(True) for k, v in params.items()}
    grads = torch.autograd.grad(multihead.objective(leaves, data, kernel).sum(), list(leaves.values()))
    directional = sum((g * direction[k]).sum() for g, k in zip(grads, leaves))
    eps = 1e-6
    plus = multihead.objective({k: v + eps * direction[k] for k, v in params.items()}, data, kernel)
    minus = multihead.objective({k: v - eps * direction[k] for k, v in params.items()}, data, kernel)
    torch.testing.assert_close(((plus - minus) / (2 * eps))[0], directional, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("kernel", multihead.KERNELS)
def test_landscape_at_origin_is_the_trained_loss(kernel):
    data, params = small_problem(runs=1)
    trained, _ = multihead.gradient_descent(params, data, kernel, "all", 0.05, 5)
    one = {k: v[0] for k, v in trained.items()}
    U = multihead.filter_normalized_direction(one["query"], seed=1)
    V = multihead.filter_normalized_direction(one["key"], seed=2)
    torch.testing.assert_close(U.norm(dim=-2), one["query"].norm(dim=-2))  # filter normalization
    coordinates = torch.linspace(-1, 1, 5, dtype=torch.float64)
    surface = multihead.loss_surface(one, data, kernel, U, V, coordinates)
    torch.testing.assert_close(surface[2, 2], multihead.objective(trained, data, kernel)[0])
    shifted = {**one, "query": one["query"] + 0.5 * U, "key": one["key"] - 1.0 * V}
    torch.testing.assert_close(surface[3, 0], multihead.objective({k: v[None] for k, v in shifted.items()},
                                                                   data, kernel)[0])


def test_roughness_counts_minima_and_nonconvex_points():
    x = torch.linspace(-1, 1, 21, dtype=torch.float64)
    a, b = torch.meshgrid(x, x, indexing="ij")
    bowl = 1 + a**2 + 3 * b**2 + a * b
    assert multihead.landscape_roughness(bowl) == {"local_minima": 1, "nonconvex_fraction": 0.0}
    saddle = 5 + a**2 - b**2
    assert multihead.landscape_roughness(saddle) == {"local_minima": 0, "nonconvex_fraction": 1.0}
    egg_crate = 2 + torch.cos(6 * math.pi * a) * torch.cos(6 * math.pi * b) + 0.01 * (a**2 + b**2)
    rough = multihead.landscape_roughness(egg_crate)
    assert rough["local_minima"] > 10
    assert 0.3 < rough["nonconvex_fraction"] < 1
    # a flat surface with float32-sized noise (a model at chance: ln 2 everywhere) has no ruggedness to count
    flat = math.log(2) + 1e-7 * torch.randn(21, 21, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert multihead.landscape_roughness(flat) == {"local_minima": 0, "nonconvex_fraction": 0.0}


def test_fitted_rate_recovers_a_geometric_decay():
    t = torch.arange(200, dtype=torch.float64)
    losses = torch.stack([3 * 0.97**t, 2 * 0.9**t])
    torch.testing.assert_close(multihead.fitted_rate(losses), torch.tensor([0.03, 0.1], dtype=torch.float64))


def test_curvature_step_size_is_one_over_the_largest_eigenvalue():
    data, params = small_problem(runs=1)
    names = multihead.MATRICES

    def f(flat):
        sizes = [params[k][0].numel() for k in names]
        parts = dict(zip(names, torch.split(flat, sizes)))
        merged = {k: (parts[k].reshape(params[k].shape[1:]) if k in parts else params[k][0])[None] for k in params}
        return multihead.objective(merged, data, "gaussian")[0]

    flat = torch.cat([params[k][0].flatten() for k in names])
    H = torch.autograd.functional.hessian(f, flat)
    expected = 1 / torch.linalg.eigvalsh(H).abs().max()
    torch.testing.assert_close(multihead.curvature_step_size(params, data, "gaussian", "all")[0], expected)


def test_bad_kernel_and_trained_are_named():
    data, params = small_problem(runs=1)
    with pytest.raises(ParameterError, match="kernel"):
        multihead.objective(params, data, "linear")
    with pytest.raises(ParameterError, match="trained"):
        multihead.gradient_descent(params, data, "softmax", "value", 0.1, 1)
