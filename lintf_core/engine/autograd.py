"""The engine's autograd path, for every model the compiled kernels do not cover (the full parametrization without a
pre-layer, the token-level variants beyond engine/tokens.py) and for Hessians of those: model.py's computation in a
layout built for speed on CPU, differentiated by torch (reverse mode, forward mode, torch.func), tested against
model.py (tests/test_engine.py).

The statistics path keeps examples innermost, (runs, k, k, examples), so each prompt's k x k products are long
vectorised multiply-adds (_contract) rather than batched matmuls over thousands of tiny matrices; their derivatives
are written by hand (_ExamplesInnerMatmul), because autograd of the sliced loop spends most of its time zero-filling
slice gradients."""

import torch

from .. import model
from ..model import attention_blocks, attention_matrices


def _contract(A, B):
    """out[r, i, l, e] = sum_j A[r, i, j, e] B[r, j, l, e]: runs first, examples last (both broadcast).
    For matrices up to ~8x8 this loop of vectorised multiply-adds is several times faster on CPU than bmm over
    thousands of tiny matrices; for larger ones (d = 20) batched matmul wins."""
    if A.shape[2] > 8:
        if A.shape[1] == 1 or B.shape[2] == 1:  # matrix-vector: a broadcast sum is ~10x faster than einsum here
            return (A.unsqueeze(3) * B.unsqueeze(1)).sum(2)
        return torch.einsum("rijb,rjlb->rilb", A, B)
    out = A[:, :, 0:1] * B[:, 0:1]
    for j in range(1, A.shape[2]):
        out = torch.addcmul(out, A[:, :, j:j + 1], B[:, j:j + 1])
    return out


class _ExamplesInnerMatmul(torch.autograd.Function):
    """_contract with hand-written derivatives: autograd of the sliced loop spends most of its time zero-filling
    slice gradients. Reverse mode, forward mode (jvp) and vmap all work, so torch.func's grad / jvp / hessian
    apply; the backward is itself differentiable (double backward works)."""

    generate_vmap_rule = True

    @staticmethod
    def forward(A, B):
        return _contract(A, B)

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(*inputs)
        ctx.save_for_forward(*inputs)

    @staticmethod
    def backward(ctx, grad):
        A, B = ctx.saved_tensors
        grad_A = grad_B = None
        if ctx.needs_input_grad[0]:
            grad_A = matmul_examples_inner(grad, B.transpose(1, 2)).sum_to_size(A.shape)
        if ctx.needs_input_grad[1]:
            grad_B = matmul_examples_inner(A.transpose(1, 2), grad).sum_to_size(B.shape)
        return grad_A, grad_B

    @staticmethod
    def jvp(ctx, tangent_A, tangent_B):
        A, B = ctx.saved_tensors
        out = 0
        if tangent_A is not None:
            out = out + _contract(tangent_A, B)
        if tangent_B is not None:
            out = out + _contract(A, tangent_B)
        return out


def matmul_examples_inner(A, B):
    """Batched matrix product in the layout (runs, k, k, examples); see _contract."""
    return _ExamplesInnerMatmul.apply(A, B)


def predict_statistics(theta, arch, stats):
    """TF_L from prompt statistics (linear attention only; exact). stats.G: (k, k, B) shared by all runs, or
    (runs, k, k, B). Returns (runs, B)."""
    if arch.attention != "linear":
        raise ValueError(f"attention: the statistics path is exact only for 'linear', got {arch.attention!r}")
    if arch.parametrization == "sparse":
        return _predict_statistics_sparse(theta, arch, stats)
    P, Q = attention_matrices(theta, arch)
    runs, k = theta.shape[0], arch.d + 1
    # Layout (runs, k, k, B): examples innermost, so per-prompt 6x6 products are long vectorised loops.
    G = stats.G.reshape(-1, *stats.G.shape[-3:])  # (runs|1, k, k, B)
    z = stats.z_query.reshape(-1, *stats.z_query.shape[-2:]).unsqueeze(2)  # (runs|1, k, 1, B)
    batch = G.shape[-1]
    eye = torch.eye(k, dtype=theta.dtype)[None, :, :, None]
    for layer in range(arch.n_layers):
        PG = (P[:, layer] @ G.reshape(G.shape[0], k, k * batch)).reshape(runs, k, k, batch)  # per-run GEMM
        A = eye + matmul_examples_inner(PG, Q[:, layer].unsqueeze(-1))
        z = matmul_examples_inner(A, z)
        if layer + 1 < arch.n_layers:  # the last layer's G is never read
            G = matmul_examples_inner(matmul_examples_inner(A, G), A.transpose(1, 2))
    return -z[:, arch.d, 0]


def _per_run_matmul(M, X):
    """M (runs, a, b) times X (runs|1, b, ..., B) over its second axis: one GEMM per run."""
    runs, a, b = M.shape
    out = M @ X.reshape(X.shape[0], b, -1)
    return out.reshape(runs, a, *X.shape[2:])


def _predict_statistics_sparse(theta, arch, stats):
    """predict_statistics for the sparse parametrization, in the d x d form of the module docstring."""
    d = arch.d
    Ps, Qs, _ = attention_blocks(theta, arch)
    G = stats.G.reshape(-1, *stats.G.shape[-3:])  # (runs|1, d+1, d+1, B)
    S, b = G[:, :d, :d], G[:, :d, d:]  # (.., d, d, B), (.., d, 1, B)
    x = stats.z_query.reshape(-1, *stats.z_query.shape[-2:])[:, :d].unsqueeze(2)  # (.., d, 1, B)
    eye = torch.eye(d, dtype=theta.dtype)[None, :, :, None]
    y = 0
    for layer in range(arch.n_layers):
        P, Q = Ps[:, layer], Qs[:, layer]
        A = eye + matmul_examples_inner(_per_run_matmul(P, S), Q.unsqueeze(-1))
        y = y + (b * _per_run_matmul(Q, x)).sum((1, 2))
        if layer + 1 < arch.n_layers:  # the last layer's S, b and x are never read
            b = matmul_examples_inner(A, b + matmul_examples_inner(S, _per_run_matmul(Q.transpose(1, 2), b)))
            S = matmul_examples_inner(matmul_examples_inner(A, S), A.transpose(1, 2))
            x = matmul_examples_inner(A, x)
    return -y


def per_prompt_loss(theta, arch, data):
    """model.per_prompt_loss with this module's statistics path: (runs, B) squared errors."""
    return model.per_prompt_loss(theta, arch, data, predict_statistics)


def loss(theta, arch, data):
    """The empirical objective f of every run on a batch, shape (runs,)."""
    return per_prompt_loss(theta, arch, data).mean(-1)


def loss_and_grad(theta, arch, data):
    """model.loss_and_grad of this module's loss: per-run loss (runs,) and gradient (runs, n_params)."""
    return model.loss_and_grad(theta, arch, data, loss)


def hessians(theta, arch, data, chunk=16):
    """Exact Hessians (runs, n_params, n_params) through torch.func: forward-over-reverse, the Jacobian-vector
    products of the gradient with the unit vectors, `chunk` at a time (on Fig. 15's model forward-over-reverse at
    chunk 16 beat reverse-over-reverse at its best chunk; larger chunks are slower)."""
    out = []
    for row in theta:
        gradient = torch.func.grad(lambda t: loss(t[None], arch, data)[0])
        out.append(torch.func.vmap(lambda v: torch.func.jvp(gradient, (row,), (v,))[1], chunk_size=chunk)(
            torch.eye(row.numel(), dtype=row.dtype)))
    return torch.stack(out)


def directional_smoothness(theta, direction, arch, data):
    """u^T H(theta) u / |u|^2 per run: one forward-over-reverse pass (jvp of the gradient), no Hessian formed."""
    def grad(t):
        return torch.func.grad(lambda tt: loss(tt, arch, data).sum())(t)

    _, hvp = torch.func.jvp(grad, (theta,), (direction,))
    return (hvp * direction).sum(1) / (direction * direction).sum(1)
