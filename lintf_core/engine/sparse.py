"""The fused forward + backward of the sparse statistics form (model.predict_statistics, the d x d form of
engine/autograd.py), for the authors' parametrization: linear attention, no pre-layer, one Q or separate W_Q, W_K
through Q = W_K^T W_Q. Compiled by numba (LLVM ships in its wheel; no system compiler). Per prompt, layer by layer:
    A_l = I + P_l S_l Q_l,   y += b_l . (Q_l x_l),
    b_{l+1} = A_l (b_l + S_l Q_l^T b_l),   S_{l+1} = A_l S_l A_l^T,   x_{l+1} = A_l x_l,
prediction -y. The backward is derived by hand (reverse mode through those lines). Examples are the innermost axis
and are processed in blocks that stay in cache, so every d x d product is a vectorised loop; the (run, block) pairs
run in parallel. Only what a later line reads is formed: S_{L-1}, A_{L-1} never are. Tested against model.py
(tests/test_engine.py: values, gradients, Hessians)."""

import numba
import numpy as np
import torch

from .products import _acc_outer, _acc_pm, _congruence_adjoint, _mm, _mmt, _mp, _mtv, _mv, _pm, _pv, _reduce_mm, \
    _reduce_mtm, _reduce_outer


def supports(arch):
    """Whether the fused kernels compute this architecture exactly: sparse linear attention without a pre-layer,
    with one Q or with separate W_Q, W_K (Fig. 8 left). The kernels work with the score matrix Q = W_K^T W_Q; the
    chain rule maps their gradients and Hessian-vector products back to W_Q and W_K (_to_factors)."""
    return arch.parametrization == "sparse" and arch.attention == "linear" and not arch.mlp_hidden


def block_size(d):
    """Examples per block: a block's intermediates (~20 d x d matrices) should stay in L1/L2 (the fastest sizes
    measured: PERFORMANCE.md)."""
    return 256 if d <= 8 else 128


@numba.njit(parallel=True, cache=True)
def _fused(P, Q, G0, z0, target, run_data, block, want_grad, per_prompt, grad_parts):
    """Per run r and prompt e of data batch run_data[r]: the squared error into per_prompt[r, e] and, if want_grad,
    the gradient of the batch-mean loss, partial sums per block into grad_parts[r, block, layer, {P, Q}, d, d].
    G0 (batches, d+1, d+1, B), z0 (batches, d+1, B), target (batches, B): PromptStatistics' arrays."""
    n_blocks = (G0.shape[-1] + block - 1) // block
    for task in numba.prange(P.shape[0] * n_blocks):  # the (run, block) pairs in parallel; the work is _fused_block
        _fused_block(P, Q, G0, z0, target, run_data, block, want_grad, per_prompt, grad_parts, task // n_blocks,
                     task % n_blocks)


@numba.njit(fastmath=True, cache=True)
def _fused_block(P, Q, G0, z0, target, run_data, block, want_grad, per_prompt, grad_parts, r, blk):
    """The driver of one (run, block) pair: the forward, the squared errors, and the backward if want_grad."""
    B = G0.shape[-1]
    dtype = P.dtype
    lo = blk * block
    n = min(block, B - lo)
    data = run_data[r]
    tape, y = _sparse_forward(P, Q, G0, z0, r, data, lo, n)
    residual = np.empty(n, dtype)
    for e in range(n):
        residual[e] = -y[e] - target[data, lo + e]  # the prediction is -y
        per_prompt[r, lo + e] = residual[e] * residual[e]
    if not want_grad:
        return
    gy = np.empty(n, dtype)  # y's adjoint: loss = mean(residual^2)
    for e in range(n):
        gy[e] = -2 * residual[e] / B
    _sparse_backward(P, Q, r, tape, gy, grad_parts[r, blk])


@numba.njit(fastmath=True)
def _sparse_forward(P, Q, G0, z0, r, data, lo, n, every_a=False):
    """The module docstring's recurrence for run r on prompts lo .. lo + n of data batch `data`, recording the tape
    the backward reads: per layer S_l, M_l = P_l S_l, A_l, A_l S_l, b_l, x_l, v_l = Q_l^T b_l,
    h_l = b_l + S_l v_l, u_l = Q_l x_l, and for the last A's layer Q h, S Q h and S Q x. every_a: form the last A
    too, as the Hessian-vector products' tangent pass reads it (sparse_hvp.py). Returns (tape, y)."""
    L, d = P.shape[1], P.shape[2]
    dtype = P.dtype
    S = np.empty((L, d, d, n), dtype)
    M = np.empty((L, d, d, n), dtype)
    A = np.empty((L, d, d, n), dtype)
    AS = np.empty((L, d, d, n), dtype)  # A_l S_l, read again by the backward
    b = np.empty((L, d, n), dtype)
    x = np.empty((L, d, n), dtype)
    v = np.empty((L, d, n), dtype)
    h = np.empty((L, d, n), dtype)
    u = np.empty((L, d, n), dtype)
    qh = np.empty((d, n), dtype)  # Q h, S Q h and S Q x of the last A's layer
    sh = np.empty((d, n), dtype)
    sx = np.empty((d, n), dtype)
    y = np.zeros(n, dtype)
    for i in range(d):  # S_0, b_0 and x_0 from the prompts' statistics
        for e in range(n):
            b[0, i, e] = G0[data, i, d, lo + e]
            x[0, i, e] = z0[data, i, lo + e]
        for j in range(d):
            for e in range(n):
                S[0, i, j, e] = G0[data, i, j, lo + e]
    for l in range(L):
        _pv(Q[r, l], x[l], u[l])  # y += b_l . (Q_l x_l)
        for i in range(d):
            for e in range(n):
                y[e] += b[l, i, e] * u[l, i, e]
        if l + 1 == L:
            break
        _pv(Q[r, l].T, b[l], v[l])  # h = b_l + S_l Q_l^T b_l
        _mv(S[l], v[l], h[l])
        for i in range(d):
            for e in range(n):
                h[l, i, e] += b[l, i, e]
        if l + 2 == L and not every_a:  # the last A_l is read only by b_{l+1} = A h and x_{l+1} = A x (S_{L-1}
            # never is): three matrix-vector products each, A h = h + P (S (Q h)), and Q x = u is already there
            _pv(Q[r, l], h[l], qh)
            _mv(S[l], qh, sh)
            _pv(P[r, l], sh, b[l + 1])
            _mv(S[l], u[l], sx)
            _pv(P[r, l], sx, x[l + 1])
            for i in range(d):
                for e in range(n):
                    b[l + 1, i, e] += h[l, i, e]
                    x[l + 1, i, e] += x[l, i, e]
            continue
        _pm(P[r, l], S[l], M[l])  # A_l = I + P_l S_l Q_l
        _mp(M[l], Q[r, l], A[l])
        for i in range(d):
            for e in range(n):
                A[l, i, i, e] += 1
        _mv(A[l], h[l], b[l + 1])  # b_{l+1} = A_l h,  x_{l+1} = A_l x_l,  S_{l+1} = A_l S_l A_l^T
        _mv(A[l], x[l], x[l + 1])
        if l + 2 < L:  # S_{L-1} is never read
            _mm(A[l], S[l], AS[l])
            _mmt(AS[l], A[l], S[l + 1])
    return (S, M, A, AS, b, x, v, h, u, qh, sh, sx), y


@numba.njit(fastmath=True)
def _sparse_backward(P, Q, r, tape, gy, G):
    """Reverse mode through _sparse_forward's lines, from y's adjoint gy: the gradient's (P, Q) parts added into G
    (L, 2, d, d). Carries the adjoints of b_l, x_l, S_l down the layers (those of S_0, b_0, x_0, data, are not
    formed)."""
    S, M, A, AS, b, x, v, h, u, qh, sh, sx = tape
    L, d, n = P.shape[1], P.shape[2], gy.shape[0]
    dtype = P.dtype
    b_bar = np.zeros((d, n), dtype)
    x_bar = np.zeros((d, n), dtype)
    S_bar = np.zeros((d, d, n), dtype)
    A_bar = np.empty((d, d, n), dtype)
    M_bar = np.empty((d, d, n), dtype)
    tmp = np.empty((d, d, n), dtype)
    h_bar = np.empty((d, n), dtype)
    v_bar = np.empty((d, n), dtype)
    u_bar = np.empty((d, n), dtype)
    vec = np.empty((d, n), dtype)
    b_new = np.empty((d, n), dtype)
    x_new = np.empty((d, n), dtype)
    S_new = np.empty((d, d, n), dtype)
    for l in range(L - 1, -1, -1):
        # incoming adjoints of b_{l+1}, x_{l+1}, S_{l+1} are b_bar, x_bar, S_bar
        data_adjoints = l > 0  # S_0, b_0, x_0 are data: their adjoints are never read
        if l + 2 == L:
            _last_a_adjoints(P, Q, r, l, S, x, h, u, qh, sh, sx, b_bar, x_bar, G, vec, u_bar, h_bar, S_new, x_new,
                             data_adjoints)
        elif l + 1 < L:
            for i in range(d):  # b_{l+1} = A h, x_{l+1} = A x:  A_bar = b_bar h^T + x_bar x^T
                for j in range(d):
                    for e in range(n):
                        A_bar[i, j, e] = b_bar[i, e] * h[l, j, e] + x_bar[i, e] * x[l, j, e]
            _mtv(A[l], b_bar, vec)  # h_bar = A^T b_bar
            for i in range(d):
                for e in range(n):
                    h_bar[i, e] = vec[i, e]
            if data_adjoints:
                _mtv(A[l], x_bar, x_new)  # x_l's share: A^T x_bar
            # S_{l+1} = A S A^T: A_bar += (S_bar + S_bar^T) A S;  S_l's share A^T S_bar A
            _congruence_adjoint(A[l], AS[l], S_bar, A_bar, tmp, M_bar, tmp, S_new, data_adjoints)
        if l + 1 < L:
            # h = b + S v:  b_bar += h_bar, S_bar += h_bar v^T, v_bar = S h_bar
            if data_adjoints:
                for i in range(d):
                    for j in range(d):
                        for e in range(n):
                            S_new[i, j, e] += h_bar[i, e] * v[l, j, e]
            _mv(S[l], h_bar, v_bar)
            # v = Q^T b:  Q_bar += b v_bar^T, b_bar += Q v_bar
            _reduce_outer(b[l], v_bar, G[l, 1])
            if data_adjoints:
                _pv(Q[r, l], v_bar, b_new)
                for i in range(d):
                    for e in range(n):
                        b_new[i, e] += h_bar[i, e]
            if l + 2 < L:  # A = I + M Q, M = P S:  M_bar = A_bar Q^T, Q_bar += M^T A_bar, P_bar += M_bar S,
                # S_bar += P^T M_bar
                _mp(A_bar, Q[r, l].T, M_bar)
                _reduce_mtm(M[l], A_bar, G[l, 1])
                _reduce_mm(M_bar, S[l], G[l, 0])
                if data_adjoints:
                    _acc_pm(P[r, l].T, M_bar, S_new)
            if data_adjoints:
                for i in range(d):
                    for j in range(d):
                        for e in range(n):
                            S_bar[i, j, e] = S_new[i, j, e]
                for i in range(d):
                    for e in range(n):
                        b_bar[i, e] = b_new[i, e]
                        x_bar[i, e] = x_new[i, e]
        # y += b . u, u = Q x:  b_bar += gy u, u_bar = gy b, Q_bar += u_bar x^T, x_bar += Q^T u_bar
        for i in range(d):
            for e in range(n):
                b_bar[i, e] += gy[e] * u[l, i, e]
                u_bar[i, e] = gy[e] * b[l, i, e]
        _reduce_outer(u_bar, x[l], G[l, 1])
        if l > 0:
            _pv(Q[r, l].T, u_bar, vec)
            for i in range(d):
                for e in range(n):
                    x_bar[i, e] += vec[i, e]


@numba.njit(fastmath=True)
def _last_a_adjoints(P, Q, r, l, S, x, h, u, qh, sh, sx, b_bar, x_bar, G, vec, u_bar, h_bar, S_new, x_new,
                     data_adjoints):
    """The backward of the last A's layer, b_{l+1} = h + P (S (Q h)) and x_{l+1} = x + P (S u) with u = Q x: the
    (P, Q) parts into G, h's adjoint into h_bar, and (if data_adjoints) S_l's share into S_new and x_l's into x_new."""
    d, n = b_bar.shape
    # P_bar += b_bar (S Q h)^T + x_bar (S u)^T;  through S: q = S^T P^T (.), S_bar += (P^T .) (Q h)^T + ...
    _reduce_outer(b_bar, sh, G[l, 0])
    _pv(P[r, l].T, b_bar, vec)
    _mtv(S[l], vec, u_bar)
    if data_adjoints:
        for i in range(d):
            for j in range(d):
                for e in range(n):
                    S_new[i, j, e] = vec[i, e] * qh[j, e]
    _reduce_outer(u_bar, h[l], G[l, 1])  # Q h: Q_bar += q h^T, h_bar = b_bar + Q^T q
    _pv(Q[r, l].T, u_bar, h_bar)
    for i in range(d):
        for e in range(n):
            h_bar[i, e] += b_bar[i, e]
    _reduce_outer(x_bar, sx, G[l, 0])
    _pv(P[r, l].T, x_bar, vec)
    _mtv(S[l], vec, u_bar)
    _reduce_outer(u_bar, x[l], G[l, 1])  # u = Q x: Q_bar += q x^T, x_l's share x_bar + Q^T q
    if data_adjoints:
        _acc_outer(vec, u[l], S_new)
        _pv(Q[r, l].T, u_bar, x_new)
        for i in range(d):
            for e in range(n):
                x_new[i, e] += x_bar[i, e]


def _arrays(stats):
    """(G, z_query, target) of PromptStatistics as numpy arrays (no copy) with a leading data-batch axis."""
    G = stats.G.reshape(-1, *stats.G.shape[-3:]).numpy()
    z = stats.z_query.reshape(-1, *stats.z_query.shape[-2:]).numpy()
    return G, z, stats.target.reshape(-1, stats.target.shape[-1]).numpy()


def _blocks(theta, arch):
    """Flat parameters (rows, n_params) as the kernels read them: contiguous P and the score matrix Q, each (rows, L,
    d, d); for separate query and key also (W_Q, W_K), with Q = W_K^T W_Q (model.attention_blocks), else None."""
    params = theta.reshape(len(theta), arch.n_layers, arch.matrices_per_layer, arch.d, arch.d)
    P = np.ascontiguousarray(params[:, :, 0])
    if arch.query_key == "single":
        return P, np.ascontiguousarray(params[:, :, 1]), None
    W_Q, W_K = params[:, :, 1], params[:, :, 2]
    return P, np.ascontiguousarray(W_K.swapaxes(-1, -2) @ W_Q), (W_Q, W_K)


def _to_factors(parts, factors):
    """Per-layer (P, Q) parts (..., L, 2, d, d) of a gradient as the flat parameters' (rows, n_params): unchanged for
    a single Q; for Q = W_K^T W_Q, dL/dW_Q = W_K dL/dQ and dL/dW_K = W_Q (dL/dQ)^T. parts may carry a direction
    axis after the run axis (Hessian-vector products; see hessian_vector_products for their extra term)."""
    if factors is None:
        return parts.reshape(*parts.shape[:-4], -1)
    W_Q, W_K = (f.reshape(f.shape[0], *[1] * (parts.ndim - 5), *f.shape[1:]) for f in factors)
    G_P, G_Q = parts[..., 0, :, :], parts[..., 1, :, :]
    out = np.stack([G_P, W_K @ G_Q, W_Q @ G_Q.swapaxes(-1, -2)], axis=-3)
    return out.reshape(*out.shape[:-4], -1)


def _run(theta, arch, stats, run_data, want_grad):
    """Per-prompt losses (runs, B) and the gradient's (P, Q) parts (runs, L, 2, d, d) (zeros without want_grad),
    Q the score matrix; and the factors (W_Q, W_K) for separate query and key (else None)."""
    runs, L, d = theta.shape[0], arch.n_layers, arch.d
    G, z, target = _arrays(stats)
    if run_data is None:
        run_data = np.zeros(runs, np.int64) if G.shape[0] == 1 else np.arange(runs)
    run_data = np.asarray(run_data, dtype=np.int64)
    blocks = block_size(d)
    B = G.shape[-1]
    n_blocks = (B + blocks - 1) // blocks
    P, Q, factors = _blocks(theta.numpy(), arch)
    dtype = P.dtype
    per_prompt = np.empty((runs, B), dtype)
    grad_parts = np.zeros((runs, n_blocks if want_grad else 1, L, 2, d, d), dtype)
    _fused(P, Q, G.astype(dtype, copy=False), z.astype(dtype, copy=False), target.astype(dtype, copy=False),
           run_data, blocks, want_grad, per_prompt, grad_parts)
    return per_prompt, grad_parts.sum(1), factors


def per_prompt_loss(theta, arch, stats, run_data=None):
    """(runs, B) squared errors, as model.per_prompt_loss. stats: PromptStatistics with a leading data-batch axis
    (or none); run_data[r]: the batch run r is evaluated on (default: batch r, or the one batch for all)."""
    per_prompt, _, _ = _run(theta.detach(), arch, stats, run_data, False)
    return torch.from_numpy(per_prompt)


def loss_and_grad(theta, arch, stats, run_data=None):
    """Per-run mean loss (runs,) and gradient (runs, n_params), as model.loss_and_grad."""
    per_prompt, parts, factors = _run(theta.detach(), arch, stats, run_data, True)
    return torch.from_numpy(per_prompt.mean(1)), torch.from_numpy(_to_factors(parts, factors))
