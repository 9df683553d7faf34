"""The model against a literal transcription of Eq. (7)-(8): explicit (d+1)x(d+1) matrices, tokens as columns,
the mask M, one run and one prompt at a time, float64."""

import pytest
import torch

from lintf_core.data import PromptStream, input_matrix, prompt_statistics, stack_prompts
from lintf_core.model import (Architecture, attention_matrices, init_params, loss, per_prompt_loss, predict_statistics,
                              predict_tokens, transcription)
from lintf_core.settings import get_setting


def embedded(block, parametrization, d, which):
    """The (d+1)x(d+1) matrix of the sparse parametrization, written out entry by entry."""
    if parametrization == "full":
        return block
    full = torch.zeros(d + 1, d + 1, dtype=block.dtype)
    full[:d, :d] = block
    if which == "P":
        full[d, d] = 1.0
    return full


def literal_predictions(theta, arch, Z0, parametrization):
    """literal_tf for every run (one per row of theta) and every prompt of Z0: (runs, B), float64."""
    runs, batch = theta.shape[0], Z0.shape[0]
    blocks = theta.reshape(runs, arch.n_layers, 2, arch.block, arch.block)
    expected = torch.empty(runs, batch, dtype=torch.float64)
    for r in range(runs):
        Ps = [embedded(blocks[r, layer, 0], parametrization, arch.d, "P") for layer in range(arch.n_layers)]
        Qs = [embedded(blocks[r, layer, 1], parametrization, arch.d, "Q") for layer in range(arch.n_layers)]
        for b in range(batch):
            expected[r, b] = transcription(Ps, Qs, Z0[b])
    return expected


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
    expected = literal_predictions(theta, arch, Z0, parametrization)
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
        want = torch.stack([transcription(Ps, Qs, Z0[b], softmax=True) for b in range(4)])
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
@pytest.mark.parametrize("setting_name, init_std", [("setting1", 0.2), ("large", 0.05)])
def test_gradients_of_both_paths_agree(parametrization, setting_name, init_std):
    """"large" (d = 20) takes the batched-matmul and broadcast branches of the statistics path."""
    setting = get_setting(setting_name)
    arch = Architecture.of(setting, parametrization=parametrization)
    theta = init_params(arch, range(3), init_std).double()
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


# ---- variants (issue 4): separate query/key, Gaussian kernel, learned pre-layer, nonlinear target ----------------

def literal_gaussian_tf(P_layers, WQ_layers, WK_layers, Z, d):
    """The poster's Gaussian kernel in place of z_i^T Q z_j, token by token: query j attends to key i <= n with
    weight exp(-|W_Q z_j - W_K z_i|^2 / (2 sqrt(d))), no normalization; 1/n and the mask as in Eq. (7)."""
    d1, n1 = Z.shape
    n = n1 - 1
    for P, WQ, WK in zip(P_layers, WQ_layers, WK_layers):
        new = Z.clone()
        for j in range(n1):
            for i in range(n):
                weight = torch.exp(-((WQ @ Z[:, j] - WK @ Z[:, i]) ** 2).sum() / (2 * d**0.5))
                new[:, j] = new[:, j] + weight * (P @ Z[:, i]) / n
        Z = new
    return -Z[d1 - 1, n1 - 1]


def layer_blocks(theta, arch, r):
    """Run r's trained blocks per layer, read straight from the flat parameter layout (L, matrices, b, b)."""
    m = arch.matrices_per_layer
    blocks = theta[r, :arch.n_attention_params].reshape(arch.n_layers, m, arch.block, arch.block)
    return [[embedded(blocks[layer, k], arch.parametrization, arch.d, "P" if k == 0 else "Q") for k in range(m)]
            for layer in range(arch.n_layers)]


@pytest.mark.parametrize("parametrization", ["sparse", "full"])
def test_separate_query_key_is_eq7_with_Q_equal_WK_transposed_WQ(parametrization):
    setting = get_setting("setting1")
    arch = Architecture.of(setting, parametrization=parametrization, query_key="separate")
    assert arch.n_params == arch.n_layers * 3 * arch.block**2
    theta = init_params(arch, range(2), 0.5).double()
    prompts = prompts64(setting, 5, 4)
    Z0 = input_matrix(prompts)
    for r in range(2):
        layers = layer_blocks(theta, arch, r)
        Ps = [P for P, _, _ in layers]
        Qs = [WK.T @ WQ for _, WQ, WK in layers]
        want = torch.stack([transcription(Ps, Qs, Z0[b]) for b in range(4)])
        torch.testing.assert_close(predict_tokens(theta, arch, Z0)[r], want, rtol=1e-10, atol=1e-12)
        stats = predict_statistics(theta, arch, prompt_statistics(prompts))[r]
        torch.testing.assert_close(stats, want, rtol=1e-9, atol=1e-12)


def test_gaussian_kernel_tokens_match_literal():
    setting = get_setting("setting2")
    arch = Architecture.of(setting, attention="gaussian", query_key="separate")
    theta = init_params(arch, range(2), 0.4).double()
    prompts = prompts64(setting, 2, 3)
    Z0 = input_matrix(prompts)
    for r in range(2):
        layers = layer_blocks(theta, arch, r)
        # sparse: the projections act on the covariates only (zero last row and column, like Q)
        want = torch.stack([literal_gaussian_tf([P for P, _, _ in layers], [WQ for _, WQ, _ in layers],
                                                [WK for _, _, WK in layers], Z0[b], arch.d) for b in range(3)])
        torch.testing.assert_close(predict_tokens(theta, arch, Z0)[r], want, rtol=1e-10, atol=1e-12)


def test_gaussian_kernel_requires_separate_query_key():
    with pytest.raises(ValueError, match="query_key: got 'single'; allowed: 'separate' with attention='gaussian'"):
        Architecture(n_layers=3, d=5, attention="gaussian")


def test_pre_layer_model_matches_literal_mlp_then_eq7():
    """Appendix B's model: a learned ReLU MLP maps every token's covariate (the query's too), then Eq. (7) with
    full P, Q. The statistics path (statistics of the mapped covariates, in the graph) and the token path agree
    with the literal computation, and so do their gradients."""
    setting = get_setting("nonlinear")
    arch = Architecture.of(setting)
    assert arch.n_params == 3 * 2 * 36 + (15 * 5 + 15 + 5 * 15 + 5)
    theta = init_params(arch, range(2), 0.3).double()
    prompts = prompts64(setting, 1, 4)
    feature = prompts.feature
    prompts.feature = lambda x: feature(x.float()).double()
    h, d = arch.mlp_hidden, arch.d
    for r in range(2):
        W1, b1, W2, b2 = torch.split(theta[r, arch.n_attention_params:], [h * d, h, d * h, d])
        W1, W2 = W1.reshape(h, d), W2.reshape(d, h)
        layers = layer_blocks(theta, arch, r)
        want = []
        for b in range(4):
            Z = input_matrix(prompts)[b].clone()
            for column in range(Z.shape[1]):
                Z[:d, column] = W2 @ torch.relu(W1 @ Z[:d, column] + b1) + b2
            want.append(transcription([P for P, _ in layers], [Q for _, Q in layers], Z))
        want = torch.stack(want)
        torch.testing.assert_close(predict_tokens(theta, arch, input_matrix(prompts))[r], want, rtol=1e-10,
                                   atol=1e-12)
    expected_loss = (predict_tokens(theta, arch, input_matrix(prompts)) - prompts.y_query) ** 2
    torch.testing.assert_close(per_prompt_loss(theta, arch, prompts), expected_loss, rtol=1e-9, atol=1e-12)
    grad_stats = torch.autograd.functional.jacobian(lambda t: loss(t, arch, prompts).sum(), theta)
    grad_tokens = torch.autograd.functional.jacobian(
        lambda t: ((predict_tokens(t, arch, input_matrix(prompts)) - prompts.y_query) ** 2).mean(-1).sum(), theta)
    torch.testing.assert_close(grad_stats, grad_tokens, rtol=1e-8, atol=1e-10)


def test_nonlinear_target_is_w_dot_fixed_mlp_of_x():
    from lintf_core.data import target_mlp
    setting = get_setting("nonlinear")
    prompts = PromptStream(setting, 0).sample(50)
    mlp = target_mlp(setting.d, setting.target_hidden)
    torch.testing.assert_close(prompts.y, (mlp(prompts.x) * prompts.w[:, None]).sum(-1))
    torch.testing.assert_close(prompts.y_query, (mlp(prompts.x_query) * prompts.w).sum(-1))
    # the tokens carry the raw covariates; the target MLP is the same for every seed and stream
    torch.testing.assert_close(input_matrix(prompts)[:, :setting.d, :-1], prompts.x.transpose(1, 2))
    other = PromptStream(setting, 3).sample(5)
    torch.testing.assert_close(other.y_query, (mlp(other.x_query) * other.w).sum(-1))
    assert not torch.allclose(prompts.y, torch.einsum("bnd,bd->bn", prompts.x, prompts.w))


@pytest.mark.parametrize("parametrization", ["sparse", "full"])
def test_large_model_statistics_path_matches_literal_equations(parametrization):
    """d = 20 takes the batched-matmul and broadcast (matrix-vector) branches of the statistics path (its gradients:
    test_gradients_of_both_paths_agree)."""
    setting = get_setting("large")
    arch = Architecture.of(setting, parametrization=parametrization)
    theta = init_params(arch, range(2), 0.05).double()
    prompts = prompts64(setting, 5, 3)
    expected = literal_predictions(theta, arch, input_matrix(prompts), parametrization)
    stats = prompt_statistics(prompts)
    scale = expected.abs().max()
    torch.testing.assert_close(predict_statistics(theta, arch, stats), expected, rtol=1e-9, atol=1e-9 * scale)


def test_target_mlp_is_the_relu_network_in_both_of_its_paths():
    """The target network (numpy's products) equals W2 relu(W1 x + b1) + b2 written in torch, and gives the same
    labels inside a torch.func transform (where it falls back to torch's ops)."""
    from lintf_core.data import TARGET, TARGET_MLP_SEED, child_seed, target_mlp
    d, hidden = 5, 5
    generator = torch.Generator().manual_seed(child_seed(TARGET_MLP_SEED, TARGET))
    W1, b1 = ((torch.rand(*s, generator=generator) * 2 - 1) / d**0.5 for s in ((hidden, d), (hidden,)))
    W2, b2 = ((torch.rand(*s, generator=generator) * 2 - 1) / hidden**0.5 for s in ((d, hidden), (d,)))
    x = torch.randn(7, 20, d, generator=torch.Generator().manual_seed(1))
    mlp = target_mlp(d, hidden)
    expected = torch.relu(x @ W1.T + b1) @ W2.T + b2
    torch.testing.assert_close(mlp(x), expected, rtol=1e-6, atol=1e-6)
    inside = torch.func.grad(lambda v: mlp(v).sum())(x)  # x wrapped by the transform: the torch fallback
    outside = torch.autograd.grad((torch.relu(x.requires_grad_() @ W1.T + b1) @ W2.T + b2).sum(), x)[0]
    torch.testing.assert_close(inside, outside)
