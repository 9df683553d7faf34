"""The model against a literal transcription of Eq. (7)-(8): explicit (d+1)x(d+1) matrices, tokens as columns,
the mask M, one run and one prompt at a time, float64."""

import pytest
import torch

from lintf_core.data import PromptStream, input_matrix, prompt_statistics, stack_prompts
from lintf_core.model import (Architecture, attention_matrices, init_params, loss, per_prompt_loss,
                              predict_statistics, predict_tokens)
from lintf_core.settings import get_setting


def literal_tf(P_layers, Q_layers, Z, softmax=False):
    """Eq. (7)-(8) as printed: Z_{l+1} = Z_l + (1/n) P Z M (Z^T Q Z); prediction -[Z_L]_{d+1, n+1}.
    softmax=True: the authors' code comment, softmax over each query's scores (a column of Z^T Q Z) before M."""
    d1, n1 = Z.shape
    n = n1 - 1
    M = torch.zeros(n1, n1, dtype=Z.dtype)
    for i in range(n):
        M[i, i] = 1.0
    for P, Q in zip(P_layers, Q_layers):
        scores = Z.T @ Q @ Z  # [i, j] = z_i^T Q z_j: key i, query j
        if softmax:
            scores = torch.softmax(scores, dim=0)
        Z = Z + (1.0 / n) * (P @ Z @ M @ scores)
    return -Z[d1 - 1, n1 - 1]


def embedded(block, parametrization, d, which):
    """The (d+1)x(d+1) matrix of the sparse parametrization, written out entry by entry."""
    if parametrization == "full":
        return block
    full = torch.zeros(d + 1, d + 1, dtype=block.dtype)
    full[:d, :d] = block
    if which == "P":
        full[d, d] = 1.0
    return full


def prompts64(setting, seed, batch):
    p = PromptStream(setting, seed).sample(batch)
    p.x, p.w, p.x_query = p.x.double(), p.w.double(), p.x_query.double()
    return p


@pytest.mark.parametrize("parametrization", ["sparse", "full"])
@pytest.mark.parametrize("runs", [1, 3, 5])
@pytest.mark.parametrize("setting_name", ["setting1", "setting2", "setting3"])
def test_both_paths_match_literal_equations(parametrization, runs, setting_name):
    setting = get_setting(setting_name)
    arch = Architecture.of(setting, parametrization=parametrization)
    theta = init_params(arch, range(runs), 0.3).double()  # large enough that every layer matters
    prompts = prompts64(setting, 7, 6)
    Z0 = input_matrix(prompts)
    blocks = theta.reshape(runs, arch.n_layers, 2, arch.block, arch.block)
    expected = torch.empty(runs, 6, dtype=torch.float64)
    for r in range(runs):
        Ps = [embedded(blocks[r, layer, 0], parametrization, arch.d, "P") for layer in range(arch.n_layers)]
        Qs = [embedded(blocks[r, layer, 1], parametrization, arch.d, "Q") for layer in range(arch.n_layers)]
        for b in range(6):
            expected[r, b] = literal_tf(Ps, Qs, Z0[b])
    tokens = predict_tokens(theta, arch, Z0)
    stats = predict_statistics(theta, arch, prompt_statistics(prompts))
    scale = expected.abs().max()
    torch.testing.assert_close(tokens, expected, rtol=1e-10, atol=1e-10 * scale)
    torch.testing.assert_close(stats, expected, rtol=1e-9, atol=1e-9 * scale)


def test_softmax_tokens_match_literal():
    setting = get_setting("setting1")
    arch = Architecture.of(setting, attention="softmax")
    theta = init_params(arch, range(2), 0.3).double()
    prompts = prompts64(setting, 3, 4)
    Z0 = input_matrix(prompts)
    blocks = theta.reshape(2, arch.n_layers, 2, arch.d, arch.d)
    for r in range(2):
        Ps = [embedded(blocks[r, layer, 0], "sparse", arch.d, "P") for layer in range(arch.n_layers)]
        Qs = [embedded(blocks[r, layer, 1], "sparse", arch.d, "Q") for layer in range(arch.n_layers)]
        got = predict_tokens(theta, arch, Z0)[r]
        want = torch.stack([literal_tf(Ps, Qs, Z0[b], softmax=True) for b in range(4)])
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match="attention"):
        predict_statistics(theta, arch, prompt_statistics(prompts))


def test_sparse_embedding_is_the_authors_block_structure():
    arch = Architecture(n_layers=2, d=3)
    theta = torch.arange(arch.n_params, dtype=torch.float64).reshape(1, -1) + 1
    P, Q = attention_matrices(theta, arch)
    assert P.shape == (1, 2, 4, 4)
    assert torch.all(P[0, :, 3, :3] == 0) and torch.all(P[0, :, :3, 3] == 0) and torch.all(P[0, :, 3, 3] == 1)
    assert torch.all(Q[0, :, 3, :] == 0) and torch.all(Q[0, :, :, 3] == 0)
    # layout (L, 2, d, d) as the code's allparam (L, heads=1, 2, d, d): layer 0's P comes first
    assert torch.equal(P[0, 0, :3, :3], theta[0, :9].reshape(3, 3))
    assert torch.equal(Q[0, 0, :3, :3], theta[0, 9:18].reshape(3, 3))


@pytest.mark.parametrize("parametrization", ["sparse", "full"])
def test_gradients_of_both_paths_agree(parametrization):
    setting = get_setting("setting1")
    arch = Architecture.of(setting, parametrization=parametrization)
    theta = init_params(arch, range(3), 0.2).double()
    prompts = prompts64(setting, 1, 16)
    stats = prompt_statistics(prompts)
    g_tokens = torch.func.grad(lambda t: loss(t, arch, prompts).sum())(theta)
    g_stats = torch.func.grad(lambda t: loss(t, arch, stats).sum())(theta)
    torch.testing.assert_close(g_stats, g_tokens, rtol=1e-9, atol=1e-12)


def test_hessian_of_statistics_path_matches_token_path_and_finite_differences():
    """Forward-over-reverse (torch.func.hessian) through the fast path's custom autograd Function."""
    setting = get_setting("setting2")
    arch = Architecture.of(setting)
    theta = init_params(arch, [0], 0.2).double()[0]
    prompts = prompts64(setting, 2, 8)
    stats = prompt_statistics(prompts)
    h_stats = torch.func.hessian(lambda t: loss(t[None], arch, stats)[0])(theta)
    h_tokens = torch.func.hessian(lambda t: loss(t[None], arch, prompts)[0])(theta)
    torch.testing.assert_close(h_stats, h_tokens, rtol=1e-8, atol=1e-10)
    # central differences of the gradient along a few coordinates
    grad = torch.func.grad(lambda t: loss(t[None], arch, stats)[0])
    eps = 1e-5
    for i in [0, 7, arch.n_params - 1]:
        e = torch.zeros_like(theta)
        e[i] = eps
        column = (grad(theta + e) - grad(theta - e)) / (2 * eps)
        torch.testing.assert_close(h_stats[:, i], column, rtol=1e-5, atol=1e-7)


def test_shared_and_per_run_statistics_agree():
    setting = get_setting("setting1")
    arch = Architecture.of(setting)
    theta = init_params(arch, range(4), 0.1)
    prompts = PromptStream(setting, 0).sample(32)
    shared = per_prompt_loss(theta, arch, prompt_statistics(prompts))
    per_run = per_prompt_loss(theta, arch, prompt_statistics(stack_prompts([prompts] * 4)))
    torch.testing.assert_close(shared, per_run)


def test_init_is_iid_normal_with_the_codes_std_and_shared_per_seed():
    arch = Architecture(n_layers=3, d=5)
    a = init_params(arch, [0, 1], 0.05)
    b = init_params(arch, [1], 0.05)
    assert a.shape == (2, 150)
    torch.testing.assert_close(a[1], b[0])
    assert not torch.equal(a[0], a[1])
    many = init_params(arch, range(40), 0.05)
    assert abs(many.std().item() - 0.05) < 0.002 and abs(many.mean().item()) < 0.002


def test_prediction_at_zero_parameters_is_zero():
    """With P = Q = 0 every layer is the identity and the prediction is -[Z_0]_{d+1, n+1} = 0."""
    setting = get_setting("setting1")
    arch = Architecture.of(setting)
    prompts = PromptStream(setting, 0).sample(10)
    theta = torch.zeros(2, arch.n_params)
    assert torch.all(predict_statistics(theta, arch, prompt_statistics(prompts)) == 0)
    torch.testing.assert_close(per_prompt_loss(theta, arch, prompts), prompts.y_query.expand(2, -1) ** 2)
