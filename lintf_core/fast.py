"""Fast paths for the authors' parametrization (sparse, linear attention, no pre-layer; one Q, or separate W_Q, W_K
through Q = W_K^T W_Q), tested against the readable model in model.py (tests/test_fast.py: values, gradients,
Hessians).

1. A fused forward + backward of the d x d statistics form (model._predict_statistics_sparse), compiled by numba
   (LLVM ships in its wheel; no system compiler). Per prompt, layer by layer:
       A_l = I + P_l S_l Q_l,   y += b_l . (Q_l x_l),
       b_{l+1} = A_l (b_l + S_l Q_l^T b_l),   S_{l+1} = A_l S_l A_l^T,   x_{l+1} = A_l x_l,
   prediction -y. The backward is derived by hand (reverse mode through those lines). Examples are the innermost
   axis and are processed in blocks that stay in cache, so every 5 x 5 product is a vectorised loop; the (run,
   block) pairs run in parallel. Only what a later line reads is formed: S_{L-1}, A_{L-1} never are.
2. Exact Hessian-vector products by forward-over-reverse: the tangent (dual-number) pass of that forward and
   backward, derived by the product rule line by line (_fused_hvp). A block's forward and backward are computed once
   and kept; each direction then costs one tangent pass. Hessians are the products with every unit vector,
   directional smoothness the product with the step.
3. The direct sampler of prompts' statistics (data.sample_statistics): S, b, c formed in compiled code from bulk draws.
4. Fig. 15's model (a learned pre-layer, then full P, Q): the pre-layer compiled too, each prompt's statistics of the
   mapped tokens and the attention layers fused (_fused_full), and its Hessian-vector products by the same
   forward-over-reverse (_fused_full_hvp), the pre-layer's derivatives by hand (_pre_layer_tangent, _grad).
"""

import numba
import numpy as np
import torch

from .data import PromptStatistics, stack_prompts
from .model import attention_matrices
from .optim import BETAS, EPS, MOMENTUM

def supports(arch):
    """Whether the fused kernels compute this architecture exactly: sparse linear attention without a pre-layer,
    with one Q or with separate W_Q, W_K (Fig. 8 left). The kernels work with the score matrix Q = W_K^T W_Q; the
    chain rule maps their gradients and Hessian-vector products back to W_Q and W_K (_to_factors)."""
    return arch.parametrization == "sparse" and arch.attention == "linear" and not arch.mlp_hidden


def block_size(d):
    """Examples per block: a block's intermediates (~20 d x d matrices) should stay in L1/L2. Measured (2 cores,
    2026-12-01): at d = 5, 128 and 256 tie (1.70 ms for 12 runs' gradients; 64: 2.10, 512: 2.87); at d = 20,
    128 beats 64 (30.9 against 34.8 ms a run-step; 32: 49.3)."""
    return 256 if d <= 8 else 128


# Per-example products in the layout (d, d, examples), examples innermost: every innermost loop is a vectorised
# pass over a block of examples. P, Q: a run's matrix, shared by its examples. These overwrite their output; the
# _acc_* versions below (for the tangent pass) add to it.
# Measured, not kept (2026-12-01): these products with d a compile-time constant (each d its own compiled kernel) and
# the sum over k innermost, unrolled inside the loop over examples: the same bits, 1.14x on the 12-run gradient and
# 1.05x on Hessians at d = 5, but 2-3x the compile time for every (dtype, d), and over 4 min at d = 20.
@numba.njit(fastmath=True)
def _pm(P, X, out):  # out[i,j,:] = sum_k P[i,k] X[k,j,:]   (a run's matrix times each example's)
    d, n = out.shape[0], out.shape[2]
    for i in range(d):
        for j in range(d):
            o = out[i, j]
            p = P[i, 0]
            x = X[0, j]
            for e in range(n):
                o[e] = p * x[e]
            for k in range(1, d):
                p = P[i, k]
                x = X[k, j]
                for e in range(n):
                    o[e] += p * x[e]


@numba.njit(fastmath=True)
def _mp(X, Q, out):  # out[i,j,:] = sum_k X[i,k,:] Q[k,j]
    d, n = out.shape[0], out.shape[2]
    for i in range(d):
        for j in range(d):
            o = out[i, j]
            q = Q[0, j]
            x = X[i, 0]
            for e in range(n):
                o[e] = x[e] * q
            for k in range(1, d):
                q = Q[k, j]
                x = X[i, k]
                for e in range(n):
                    o[e] += x[e] * q


@numba.njit(fastmath=True)
def _mm(X, Y, out):  # out = X Y, per example
    d, n = out.shape[0], out.shape[2]
    for i in range(d):
        for j in range(d):
            o = out[i, j]
            x, y = X[i, 0], Y[0, j]
            for e in range(n):
                o[e] = x[e] * y[e]
            for k in range(1, d):
                x, y = X[i, k], Y[k, j]
                for e in range(n):
                    o[e] += x[e] * y[e]


@numba.njit(fastmath=True)
def _mtm(X, Y, out):  # out = X^T Y, per example
    d, n = out.shape[0], out.shape[2]
    for i in range(d):
        for j in range(d):
            o = out[i, j]
            x, y = X[0, i], Y[0, j]
            for e in range(n):
                o[e] = x[e] * y[e]
            for k in range(1, d):
                x, y = X[k, i], Y[k, j]
                for e in range(n):
                    o[e] += x[e] * y[e]


@numba.njit(fastmath=True)
def _mmt(X, Y, out):  # out = X Y^T, per example
    d, n = out.shape[0], out.shape[2]
    for i in range(d):
        for j in range(d):
            o = out[i, j]
            x, y = X[i, 0], Y[j, 0]
            for e in range(n):
                o[e] = x[e] * y[e]
            for k in range(1, d):
                x, y = X[i, k], Y[j, k]
                for e in range(n):
                    o[e] += x[e] * y[e]


@numba.njit(fastmath=True)
def _mv(X, v, out):  # out[i,:] = sum_k X[i,k,:] v[k,:]
    d, n = out.shape[0], out.shape[1]
    for i in range(d):
        o = out[i]
        x, w = X[i, 0], v[0]
        for e in range(n):
            o[e] = x[e] * w[e]
        for k in range(1, d):
            x, w = X[i, k], v[k]
            for e in range(n):
                o[e] += x[e] * w[e]


@numba.njit(fastmath=True)
def _mtv(X, v, out):  # out = X^T v, per example
    d, n = out.shape[0], out.shape[1]
    for i in range(d):
        o = out[i]
        x, w = X[0, i], v[0]
        for e in range(n):
            o[e] = x[e] * w[e]
        for k in range(1, d):
            x, w = X[k, i], v[k]
            for e in range(n):
                o[e] += x[e] * w[e]


@numba.njit(fastmath=True)
def _pv(P, v, out):  # out[i,:] = sum_k P[i,k] v[k,:]
    d, n = out.shape[0], out.shape[1]
    for i in range(d):
        o = out[i]
        p, w = P[i, 0], v[0]
        for e in range(n):
            o[e] = p * w[e]
        for k in range(1, d):
            p, w = P[i, k], v[k]
            for e in range(n):
                o[e] += p * w[e]


@numba.njit(fastmath=True)
def _reduce_mm(X, Y, G):  # G[i,j] += sum_e sum_k X[i,k,e] Y[k,j,e]
    d, n = X.shape[0], X.shape[2]
    for i in range(d):
        for j in range(d):
            acc = G[i, j] * 0
            for k in range(d):
                x, y = X[i, k], Y[k, j]
                for e in range(n):
                    acc += x[e] * y[e]
            G[i, j] += acc


@numba.njit(fastmath=True)
def _reduce_mtm(X, Y, G):  # G[i,j] += sum_e sum_k X[k,i,e] Y[k,j,e]
    d, n = X.shape[0], X.shape[2]
    for i in range(d):
        for j in range(d):
            acc = G[i, j] * 0
            for k in range(d):
                x, y = X[k, i], Y[k, j]
                for e in range(n):
                    acc += x[e] * y[e]
            G[i, j] += acc


@numba.njit(fastmath=True)
def _reduce_outer(u, v, G):  # G[i,j] += sum_e u[i,e] v[j,e]
    d, n = u.shape[0], u.shape[1]
    for i in range(d):
        for j in range(d):
            acc = G[i, j] * 0
            x, y = u[i], v[j]
            for e in range(n):
                acc += x[e] * y[e]
            G[i, j] += acc


@numba.njit(fastmath=True)
def _congruence_adjoint(A, AS, S_bar, A_bar, T, scratch, AtS, S_new, want_S):
    """The reverse of S' = A S A^T (S symmetric, AS = A S) given S''s adjoint S_bar, per example: A's share
    (S_bar + S_bar^T) A S added into A_bar (T receives S_bar + S_bar^T, scratch the product) and, if want_S, S's share
    A^T S_bar A into S_new (AtS receives A^T S_bar). T and AtS may be one array (T is read before AtS is written)."""
    d, n = A.shape[0], A.shape[-1]
    for i in range(d):
        for j in range(d):
            for e in range(n):
                T[i, j, e] = S_bar[i, j, e] + S_bar[j, i, e]
    _mm(T, AS, scratch)
    for i in range(d):
        for j in range(d):
            for e in range(n):
                A_bar[i, j, e] += scratch[i, j, e]
    if want_S:
        _mtm(A, S_bar, AtS)
        _mm(AtS, A, S_new)


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
    L, d = P.shape[1], P.shape[2]
    B = G0.shape[-1]
    dtype = P.dtype
    lo = blk * block
    n = min(block, B - lo)
    data = run_data[r]
    # forward, keeping what the backward reads
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
    for i in range(d):
        for e in range(n):
            b[0, i, e] = G0[data, i, d, lo + e]
            x[0, i, e] = z0[data, i, lo + e]
        for j in range(d):
            for e in range(n):
                S[0, i, j, e] = G0[data, i, j, lo + e]
    for l in range(L):
        _pv(Q[r, l], x[l], u[l])
        for i in range(d):
            for e in range(n):
                y[e] += b[l, i, e] * u[l, i, e]
        if l + 1 == L:
            break
        _pv(Q[r, l].T, b[l], v[l])
        _mv(S[l], v[l], h[l])
        for i in range(d):
            for e in range(n):
                h[l, i, e] += b[l, i, e]
        if l + 2 == L:  # the last A_l is read only by b_{l+1} = A h and x_{l+1} = A x (S_{L-1} never is): three
            # matrix-vector products each, A h = h + P (S (Q h)), and Q x = u is already there
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
        _pm(P[r, l], S[l], M[l])
        _mp(M[l], Q[r, l], A[l])
        for i in range(d):
            for e in range(n):
                A[l, i, i, e] += 1
        _mv(A[l], h[l], b[l + 1])
        _mv(A[l], x[l], x[l + 1])
        _mm(A[l], S[l], AS[l])
        _mmt(AS[l], A[l], S[l + 1])
    residual = np.empty(n, dtype)
    for e in range(n):
        residual[e] = -y[e] - target[data, lo + e]
        per_prompt[r, lo + e] = residual[e] * residual[e]
    if not want_grad:
        return
    # backward: adjoints of b_l, x_l, S_l; the prediction is -y, loss = mean(residual^2)
    gy = np.empty(n, dtype)
    for e in range(n):
        gy[e] = -2 * residual[e] / B
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
    G = grad_parts[r, blk]
    for l in range(L - 1, -1, -1):
        # incoming adjoints of b_{l+1}, x_{l+1}, S_{l+1} are b_bar, x_bar, S_bar
        if l + 2 == L:  # the last A's layer: b_{l+1} = h + P (S (Q h)), x_{l+1} = x + P (S u), u = Q x
            data_adjoints = l > 0  # S_0, b_0, x_0 are data: their adjoints are never read
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
        elif l + 1 < L:
            for i in range(d):
                for j in range(d):
                    for e in range(n):
                        A_bar[i, j, e] = b_bar[i, e] * h[l, j, e] + x_bar[i, e] * x[l, j, e]
            _mtv(A[l], b_bar, vec)  # h_bar = A^T b_bar
            for i in range(d):
                for e in range(n):
                    h_bar[i, e] = vec[i, e]
            data_adjoints = l > 0
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
def _acc_pm(P, X, out):  # out[i,j,:] += sum_k P[i,k] X[k,j,:]
    d, n = out.shape[0], out.shape[2]
    for i in range(d):
        for j in range(d):
            o = out[i, j]
            for k in range(d):
                p, x = P[i, k], X[k, j]
                for e in range(n):
                    o[e] += p * x[e]


@numba.njit(fastmath=True)
def _acc_mp(X, Q, out):  # out[i,j,:] += sum_k X[i,k,:] Q[k,j]
    d, n = out.shape[0], out.shape[2]
    for i in range(d):
        for j in range(d):
            o = out[i, j]
            for k in range(d):
                q, x = Q[k, j], X[i, k]
                for e in range(n):
                    o[e] += x[e] * q


@numba.njit(fastmath=True)
def _acc_mm(X, Y, out):  # out += X Y, per example
    d, n = out.shape[0], out.shape[2]
    for i in range(d):
        for j in range(d):
            o = out[i, j]
            for k in range(d):
                x, y = X[i, k], Y[k, j]
                for e in range(n):
                    o[e] += x[e] * y[e]


@numba.njit(fastmath=True)
def _acc_mtm(X, Y, out):  # out += X^T Y, per example
    d, n = out.shape[0], out.shape[2]
    for i in range(d):
        for j in range(d):
            o = out[i, j]
            for k in range(d):
                x, y = X[k, i], Y[k, j]
                for e in range(n):
                    o[e] += x[e] * y[e]


@numba.njit(fastmath=True)
def _acc_mmt(X, Y, out):  # out += X Y^T, per example
    d, n = out.shape[0], out.shape[2]
    for i in range(d):
        for j in range(d):
            o = out[i, j]
            for k in range(d):
                x, y = X[i, k], Y[j, k]
                for e in range(n):
                    o[e] += x[e] * y[e]


@numba.njit(fastmath=True)
def _acc_mv(X, v, out):  # out[i,:] += sum_k X[i,k,:] v[k,:]
    d, n = out.shape[0], out.shape[1]
    for i in range(d):
        o = out[i]
        for k in range(d):
            x, w = X[i, k], v[k]
            for e in range(n):
                o[e] += x[e] * w[e]


@numba.njit(fastmath=True)
def _acc_mtv(X, v, out):  # out += X^T v, per example
    d, n = out.shape[0], out.shape[1]
    for i in range(d):
        o = out[i]
        for k in range(d):
            x, w = X[k, i], v[k]
            for e in range(n):
                o[e] += x[e] * w[e]


@numba.njit(fastmath=True)
def _acc_pv(P, v, out):  # out[i,:] += sum_k P[i,k] v[k,:]
    d, n = out.shape[0], out.shape[1]
    for i in range(d):
        o = out[i]
        for k in range(d):
            p, w = P[i, k], v[k]
            for e in range(n):
                o[e] += p * w[e]


@numba.njit(fastmath=True)
def _acc_outer(u, v, out):  # out[i,j,:] += u[i,:] v[j,:], per example
    d, n = u.shape[0], u.shape[1]
    for i in range(d):
        for j in range(d):
            o, x, y = out[i, j], u[i], v[j]
            for e in range(n):
                o[e] += x[e] * y[e]


@numba.njit(fastmath=True)
def _layer_matrix_tangent(P, dP, S, dS, M, Q, dQ, dM, dA):
    """The tangent of a layer's matrix A = I + M Q, M = P S (dM and dA accumulate): dM = dP S + P dS,
    dA = dM Q + M dQ."""
    _acc_pm(dP, S, dM)
    _acc_pm(P, dS, dM)
    _acc_mp(dM, Q, dA)
    _acc_mp(M, dQ, dA)


@numba.njit(fastmath=True)
def _congruence_tangent(A, dA, S, dS, AS, dAS, dS_next):
    """The tangent of S' = A S A^T (AS = A S; dAS and dS_next accumulate): dAS = dA S + A dS,
    dS' = dAS A^T + AS dA^T."""
    _acc_mm(dA, S, dAS)
    _acc_mm(A, dS, dAS)
    _acc_mmt(dAS, A, dS_next)
    _acc_mmt(AS, dA, dS_next)


@numba.njit(parallel=True, cache=True)
def _fused_hvp(P, Q, G0, z0, target, run_data, block, dP, dQ, first, hvp_parts):
    """Hessian-vector products of the batch-mean loss by forward-over-reverse (dual numbers) through _fused's
    forward and backward: for run r and each of its K directions (dP[r, k], dQ[r, k]) (layer, d, d), the derivative
    of the gradient along that direction, block partial sums into hvp_parts[r, block, k, layer, {P, Q}, d, d]. The
    forward and backward of a block are computed once and kept; every direction then costs a tangent pass.
    first[r, k]: the direction is zero in the layers below it, and only the rows of layers >= first[r, k] are
    computed (the others are left as they are): the tangents vanish below that layer, so the tangent forward starts
    there and the tangent backward stops there (hessians() takes the rows below from the symmetric entries)."""
    n_blocks = (G0.shape[-1] + block - 1) // block
    for task in numba.prange(P.shape[0] * n_blocks):  # the (run, block) pairs in parallel; the work is _hvp_block
        _hvp_block(P, Q, G0, z0, target, run_data, block, dP, dQ, first, hvp_parts, task // n_blocks,
                   task % n_blocks)


@numba.njit(fastmath=True, cache=True)
def _hvp_block(P, Q, G0, z0, target, run_data, block, dP, dQ, first, hvp_parts, r, blk):
    L, d = P.shape[1], P.shape[2]
    K = dP.shape[1]
    B = G0.shape[-1]
    dtype = P.dtype
    lo = blk * block
    n = min(block, B - lo)
    data = run_data[r]
    Pr, Qr = P[r], Q[r]
    # ---- primal forward (as _fused), everything kept
    S = np.zeros((L, d, d, n), dtype)
    M = np.zeros((L, d, d, n), dtype)
    A = np.zeros((L, d, d, n), dtype)
    AS = np.zeros((L, d, d, n), dtype)
    b = np.zeros((L, d, n), dtype)
    x = np.zeros((L, d, n), dtype)
    v = np.zeros((L, d, n), dtype)
    h = np.zeros((L, d, n), dtype)
    u = np.zeros((L, d, n), dtype)
    y = np.zeros(n, dtype)
    for i in range(d):
        for e in range(n):
            b[0, i, e] = G0[data, i, d, lo + e]
            x[0, i, e] = z0[data, i, lo + e]
        for j in range(d):
            for e in range(n):
                S[0, i, j, e] = G0[data, i, j, lo + e]
    for l in range(L):
        _acc_pv(Qr[l], x[l], u[l])
        for i in range(d):
            for e in range(n):
                y[e] += b[l, i, e] * u[l, i, e]
        if l + 1 == L:
            break
        _acc_pm(Pr[l], S[l], M[l])
        _acc_mp(M[l], Qr[l], A[l])
        for i in range(d):
            for e in range(n):
                A[l, i, i, e] += 1
        _acc_pv(Qr[l].T, b[l], v[l])
        _acc_mv(S[l], v[l], h[l])
        for i in range(d):
            for e in range(n):
                h[l, i, e] += b[l, i, e]
        _acc_mv(A[l], h[l], b[l + 1])
        _acc_mv(A[l], x[l], x[l + 1])
        if l + 2 < L:
            _acc_mm(A[l], S[l], AS[l])
            _acc_mmt(AS[l], A[l], S[l + 1])
    gy = np.empty(n, dtype)
    for e in range(n):
        gy[e] = 2 * (y[e] + target[data, lo + e]) / B  # d loss / d y, residual = -y - target
    # ---- primal backward, keeping the adjoints the tangent pass reads
    bb_in = np.zeros((L, d, n), dtype)  # adjoints of b_{l+1}, x_{l+1}, S_{l+1} entering layer l
    xb_in = np.zeros((L, d, n), dtype)
    Sb_in = np.zeros((L, d, d, n), dtype)
    Ab = np.zeros((L, d, d, n), dtype)
    T = np.zeros((L, d, d, n), dtype)
    hb = np.zeros((L, d, n), dtype)
    vb = np.zeros((L, d, n), dtype)
    Mb = np.zeros((L, d, d, n), dtype)
    bb = np.zeros((d, n), dtype)
    xb = np.zeros((d, n), dtype)
    Sb = np.zeros((d, d, n), dtype)
    tmp = np.zeros((d, d, n), dtype)
    for l in range(L - 1, -1, -1):
        if l + 1 < L:
            bb_in[l], xb_in[l], Sb_in[l] = bb, xb, Sb
            _acc_outer(bb, h[l], Ab[l])
            _acc_outer(xb, x[l], Ab[l])
            _acc_mtv(A[l], bb, hb[l])
            xb_new = np.zeros((d, n), dtype)
            Sb_new = np.zeros((d, d, n), dtype)
            if l > 0:
                _acc_mtv(A[l], xb, xb_new)
            if l + 2 < L:
                for i in range(d):
                    for j in range(d):
                        for e in range(n):
                            T[l, i, j, e] = Sb[i, j, e] + Sb[j, i, e]
                _acc_mm(T[l], AS[l], Ab[l])
                if l > 0:
                    tmp[:] = 0
                    _acc_mtm(A[l], Sb, tmp)
                    _acc_mm(tmp, A[l], Sb_new)
            _acc_mv(S[l], hb[l], vb[l])
            _acc_mp(Ab[l], Qr[l].T, Mb[l])
            if l > 0:
                _acc_outer(hb[l], v[l], Sb_new)
                _acc_pm(Pr[l].T, Mb[l], Sb_new)
                bb_new = np.zeros((d, n), dtype)
                _acc_pv(Qr[l], vb[l], bb_new)
                for i in range(d):
                    for e in range(n):
                        bb_new[i, e] += hb[l, i, e]
                bb, xb, Sb = bb_new, xb_new, Sb_new
        if l > 0:
            bb_y = np.empty((d, n), dtype)
            for i in range(d):
                for e in range(n):
                    bb_y[i, e] = bb[i, e] + gy[e] * u[l, i, e]
            bb = bb_y
            xb_y = np.empty((d, n), dtype)
            for i in range(d):
                for e in range(n):
                    xb_y[i, e] = xb[i, e]
            ub = np.empty((d, n), dtype)
            for i in range(d):
                for e in range(n):
                    ub[i, e] = gy[e] * b[l, i, e]
            _acc_pv(Qr[l].T, ub, xb_y)
            xb = xb_y
    # ---- one tangent pass per direction
    dS = np.zeros((L, d, d, n), dtype)
    dM = np.zeros((L, d, d, n), dtype)
    dA = np.zeros((L, d, d, n), dtype)
    dAS = np.zeros((L, d, d, n), dtype)
    db = np.zeros((L, d, n), dtype)
    dx = np.zeros((L, d, n), dtype)
    dv = np.zeros((L, d, n), dtype)
    dh = np.zeros((L, d, n), dtype)
    du = np.zeros((L, d, n), dtype)
    dy = np.zeros(n, dtype)
    dbb = np.zeros((d, n), dtype)
    dxb = np.zeros((d, n), dtype)
    dSb = np.zeros((d, d, n), dtype)
    dAb = np.zeros((d, d, n), dtype)
    dMb = np.zeros((d, d, n), dtype)
    dT = np.zeros((d, d, n), dtype)
    dhb = np.zeros((d, n), dtype)
    dvb = np.zeros((d, n), dtype)
    dub = np.zeros((d, n), dtype)
    dxb_new = np.zeros((d, n), dtype)
    dbb_new = np.zeros((d, n), dtype)
    dSb_new = np.zeros((d, d, n), dtype)
    ub = np.zeros((d, n), dtype)
    for k in range(K):
        dPk, dQk = dP[r, k], dQ[r, k]
        f = first[r, k]
        H = hvp_parts[r, blk, k]
        for arr in (dS, dM, dA, dAS):
            arr[:] = 0
        for arr in (db, dx, dv, dh, du):
            arr[:] = 0
        dy[:] = 0
        # tangent forward (the data has no tangent, nor has any layer below f)
        for l in range(f, L):
            _acc_pv(dQk[l], x[l], du[l])
            _acc_pv(Qr[l], dx[l], du[l])
            for i in range(d):
                for e in range(n):
                    dy[e] += db[l, i, e] * u[l, i, e] + b[l, i, e] * du[l, i, e]
            if l + 1 == L:
                break
            _layer_matrix_tangent(Pr[l], dPk[l], S[l], dS[l], M[l], Qr[l], dQk[l], dM[l], dA[l])
            _acc_pv(dQk[l].T, b[l], dv[l])
            _acc_pv(Qr[l].T, db[l], dv[l])
            _acc_mv(dS[l], v[l], dh[l])
            _acc_mv(S[l], dv[l], dh[l])
            for i in range(d):
                for e in range(n):
                    dh[l, i, e] += db[l, i, e]
            _acc_mv(dA[l], h[l], db[l + 1])
            _acc_mv(A[l], dh[l], db[l + 1])
            _acc_mv(dA[l], x[l], dx[l + 1])
            _acc_mv(A[l], dx[l], dx[l + 1])
            if l + 2 < L:
                _congruence_tangent(A[l], dA[l], S[l], dS[l], AS[l], dAS[l], dS[l + 1])
        dgy = np.empty(n, dtype)
        for e in range(n):
            dgy[e] = 2 * dy[e] / B
        # tangent backward
        dbb[:] = 0
        dxb[:] = 0
        dSb[:] = 0
        for l in range(L - 1, f - 1, -1):  # down to layer f: the rows below it are not computed
            if l + 1 < L:
                dAb[:] = 0
                _acc_outer(dbb, h[l], dAb)
                _acc_outer(bb_in[l], dh[l], dAb)
                _acc_outer(dxb, x[l], dAb)
                _acc_outer(xb_in[l], dx[l], dAb)
                dhb[:] = 0
                _acc_mtv(dA[l], bb_in[l], dhb)
                _acc_mtv(A[l], dbb, dhb)
                dxb_new[:] = 0
                dSb_new[:] = 0
                if l > f:
                    _acc_mtv(dA[l], xb_in[l], dxb_new)
                    _acc_mtv(A[l], dxb, dxb_new)
                if l + 2 < L:
                    for i in range(d):
                        for j in range(d):
                            for e in range(n):
                                dT[i, j, e] = dSb[i, j, e] + dSb[j, i, e]
                    _acc_mm(dT, AS[l], dAb)
                    _acc_mm(T[l], dAS[l], dAb)
                    if l > f:  # d(A^T Sb A) = dA^T Sb A + A^T dSb A + A^T Sb dA
                        tmp[:] = 0
                        _acc_mtm(dA[l], Sb_in[l], tmp)
                        _acc_mtm(A[l], dSb, tmp)
                        _acc_mm(tmp, A[l], dSb_new)
                        tmp[:] = 0
                        _acc_mtm(A[l], Sb_in[l], tmp)
                        _acc_mm(tmp, dA[l], dSb_new)
                dvb[:] = 0
                _acc_mv(dS[l], hb[l], dvb)
                _acc_mv(S[l], dhb, dvb)
                _reduce_outer(db[l], vb[l], H[l, 1])
                _reduce_outer(b[l], dvb, H[l, 1])
                dMb[:] = 0
                _acc_mp(dAb, Qr[l].T, dMb)
                _acc_mp(Ab[l], dQk[l].T, dMb)
                _reduce_mtm(dM[l], Ab[l], H[l, 1])
                _reduce_mtm(M[l], dAb, H[l, 1])
                _reduce_mm(dMb, S[l], H[l, 0])
                _reduce_mm(Mb[l], dS[l], H[l, 0])
                if l > f:
                    _acc_outer(dhb, v[l], dSb_new)
                    _acc_outer(hb[l], dv[l], dSb_new)
                    _acc_pm(dPk[l].T, Mb[l], dSb_new)
                    _acc_pm(Pr[l].T, dMb, dSb_new)
                    dbb_new[:] = 0
                    _acc_pv(dQk[l], vb[l], dbb_new)
                    _acc_pv(Qr[l], dvb, dbb_new)
                    for i in range(d):
                        for e in range(n):
                            dbb_new[i, e] += dhb[i, e]
                    dbb[:] = dbb_new
                    dxb[:] = dxb_new
                    dSb[:] = dSb_new
            # y-term: dbb += dgy u + gy du; dub = dgy b + gy db; dQg += dub x^T + ub dx^T; dxb += dQ^T ub + Q^T dub
            for i in range(d):
                for e in range(n):
                    ub[i, e] = gy[e] * b[l, i, e]
                    dub[i, e] = dgy[e] * b[l, i, e] + gy[e] * db[l, i, e]
            _reduce_outer(dub, x[l], H[l, 1])
            _reduce_outer(ub, dx[l], H[l, 1])
            if l > f:
                for i in range(d):
                    for e in range(n):
                        dbb[i, e] += dgy[e] * u[l, i, e] + gy[e] * du[l, i, e]
                _acc_pv(dQk[l].T, ub, dxb)
                _acc_pv(Qr[l].T, dub, dxb)


# ---- Fig. 15's model: a learned pre-layer, then (d+1) x (d+1) P and Q ---------------------------------------------

@numba.njit(parallel=True, cache=True)
def _fused_full(P, Q, xs, y, target, block, per_prompt, grad_parts, xs_bar):
    """Full P, Q (runs, L, k, k), k = d + 1, on each run's own tokens (a learned pre-layer maps every run's
    covariates): xs (runs, N + 1, d, B) the mapped covariates, the query last; y (runs, N, B) the context labels;
    target (runs, B). Per prompt: G_0 = (1/N) sum_t z_t z_t^T over the context tokens z_t = [x_t; y_t],
    z_0 = [x_query; 0]; layer by layer every token moves by A_l = I + P_l G_l Q_l: z_{l+1} = A_l z_l,
    G_{l+1} = A_l G_l A_l^T; the prediction is -z_L[d] (model.predict_statistics). Squared errors into per_prompt
    (runs, B); of the batch-mean loss, the attention parameters' gradient in block parts grad_parts[r, block, layer,
    {P, Q}] and the mapped covariates' adjoints xs_bar (like xs), which torch carries back through the pre-layer."""
    n_blocks = (xs.shape[-1] + block - 1) // block
    for task in numba.prange(P.shape[0] * n_blocks):
        _full_block(P, Q, xs, y, target, block, per_prompt, grad_parts, xs_bar, task // n_blocks, task % n_blocks)


@numba.njit(fastmath=True, cache=True)
def _full_block(P, Q, xs, y, target, block, per_prompt, grad_parts, xs_bar, r, blk):
    L, k = P.shape[1], P.shape[2]
    N, d, B = y.shape[1], k - 1, xs.shape[-1]
    dtype = P.dtype
    lo = blk * block
    n = min(block, B - lo)
    G, M, A, AG, z = _full_forward(P, Q, xs, y, r, lo, n)
    residual = np.empty(n, dtype)
    for e in range(n):
        residual[e] = -z[L, d, e] - target[r, lo + e]
        per_prompt[r, lo + e] = residual[e] * residual[e]
    # backward; the prediction is -z_L[d], loss = mean(residual^2)
    z_bar = np.zeros((k, n), dtype)
    for e in range(n):
        z_bar[d, e] = -2 * residual[e] / B
    kept = _full_backward(P, Q, G, M, A, AG, z, z_bar, r, grad_parts[r, blk])
    _covariate_adjoints(kept[0], kept[1], xs, y, r, lo, np.empty((k, k, n), dtype), xs_bar[r])


@numba.njit(fastmath=True)
def _covariate_adjoints(G_bar, z_bar, xs, y, r, lo, T, out):
    """The mapped covariates' adjoints from those of G_0 = (1/N) sum_t z_t z_t^T and of the query's z_0 (examples
    lo .. lo + n of run r): z_t's is (1/N) (G_bar + G_bar^T) z_t over its covariate rows (T receives
    (G_bar + G_bar^T) / N), the query's is z_bar's; into out (N + 1, d, B)."""
    k, n = G_bar.shape[0], G_bar.shape[-1]
    N, d = y.shape[1], k - 1
    for i in range(k):
        for j in range(k):
            for e in range(n):
                T[i, j, e] = (G_bar[i, j, e] + G_bar[j, i, e]) / N
    for t in range(N):
        for i in range(d):
            for e in range(n):
                acc = T[i, d, e] * y[r, t, lo + e]
                for j in range(d):
                    acc += T[i, j, e] * xs[r, t, j, lo + e]
                out[t, i, lo + e] = acc
    for i in range(d):
        for e in range(n):
            out[N, i, lo + e] = z_bar[i, e]


@numba.njit(fastmath=True)
def _full_forward(P, Q, xs, y, r, lo, n):
    """_fused_full's forward for run r's examples lo .. lo + n, everything kept: G_l, M_l = P_l G_l, A_l, A_l G_l
    (layers), z_l (tokens 0 .. L: the query's)."""
    L, k = P.shape[1], P.shape[2]
    N, d = y.shape[1], k - 1
    dtype = P.dtype
    G = np.zeros((L, k, k, n), dtype)
    M = np.empty((L, k, k, n), dtype)
    A = np.empty((L, k, k, n), dtype)
    AG = np.empty((L, k, k, n), dtype)  # A_l G_l, read again by the backward
    z = np.zeros((L + 1, k, n), dtype)
    for t in range(N):  # G_0 from the context tokens
        for i in range(k):
            for j in range(i + 1):
                for e in range(n):
                    zi = xs[r, t, i, lo + e] if i < d else y[r, t, lo + e]
                    zj = xs[r, t, j, lo + e] if j < d else y[r, t, lo + e]
                    G[0, i, j, e] += zi * zj
    _finish_statistics(G[0], z[0], xs[r, N], N, lo)
    for l in range(L):
        _pm(P[r, l], G[l], M[l])
        _mp(M[l], Q[r, l], A[l])
        for i in range(k):
            for e in range(n):
                A[l, i, i, e] += 1
        _mv(A[l], z[l], z[l + 1])
        if l + 1 < L:  # G_L is never read
            _mm(A[l], G[l], AG[l])
            _mmt(AG[l], A[l], G[l + 1])
    return G, M, A, AG, z


@numba.njit(fastmath=True)
def _finish_statistics(G, z, query, N, lo):
    """G_0 (k, k, n) from its lower triangle summed over the context tokens: divided by N and mirrored; z (k, n)
    receives the query's covariates, query[:, lo .. lo + n] (its label row stays 0). The same for their tangents."""
    k, n = G.shape[0], G.shape[-1]
    for i in range(k):
        for j in range(i + 1):
            for e in range(n):
                G[i, j, e] /= N
                G[j, i, e] = G[i, j, e]
    for i in range(k - 1):
        for e in range(n):
            z[i, e] = query[i, lo + e]


@numba.njit(fastmath=True)
def _full_backward(P, Q, G, M, A, AG, z, z_bar, r, grads):
    """_fused_full's backward from z_bar, the adjoint of z_L (k, n): the attention parameters' gradient added into
    grads[layer, {P, Q}]. Returns (the adjoint of G_0, of z_0, and per layer the adjoints the tangent pass reads: of
    z_{l+1} and G_{l+1} entering layer l, A_bar, M_bar, A^T G_bar and G_bar + G_bar^T)."""
    L, k, n = P.shape[1], P.shape[2], z.shape[-1]
    dtype = P.dtype
    zb_in = np.empty((L, k, n), dtype)
    Gb_in = np.zeros((L, k, k, n), dtype)
    Ab = np.empty((L, k, k, n), dtype)
    Mb = np.empty((L, k, k, n), dtype)
    AtGb = np.zeros((L, k, k, n), dtype)
    T = np.zeros((L, k, k, n), dtype)
    G_bar = np.zeros((k, k, n), dtype)
    scratch = np.empty((k, k, n), dtype)
    tmp = np.empty((k, k, n), dtype)
    G_new = np.empty((k, k, n), dtype)
    z_new = np.empty((k, n), dtype)
    for l in range(L - 1, -1, -1):
        zb_in[l] = z_bar
        # z_{l+1} = A z_l:  A_bar = z_bar z_l^T, z_l's adjoint A^T z_bar
        for i in range(k):
            for j in range(k):
                for e in range(n):
                    Ab[l, i, j, e] = z_bar[i, e] * z[l, j, e]
        _mtv(A[l], z_bar, z_new)
        if l + 1 < L:  # G_{l+1} = A G A^T (G symmetric):  A_bar += (G_bar + G_bar^T) A G,  G_l's share A^T G_bar A
            Gb_in[l] = G_bar
            _congruence_adjoint(A[l], AG[l], G_bar, Ab[l], T[l], scratch, AtGb[l], G_new, True)
        else:
            G_new[:] = 0
        # A = I + M Q, M = P G:  Q_bar += M^T A_bar,  M_bar = A_bar Q^T,  P_bar += M_bar G (= M_bar G^T),
        # G_l's share P^T M_bar
        _reduce_mtm(M[l], Ab[l], grads[l, 1])
        _mp(Ab[l], Q[r, l].T, Mb[l])
        _reduce_mm(Mb[l], G[l], grads[l, 0])
        _pm(P[r, l].T, Mb[l], tmp)
        for i in range(k):
            for j in range(k):
                for e in range(n):
                    G_bar[i, j, e] = G_new[i, j, e] + tmp[i, j, e]
            for e in range(n):
                z_bar[i, e] = z_new[i, e]
    return G_bar, z_bar, zb_in, Gb_in, Ab, Mb, AtGb, T


@numba.njit(parallel=True, cache=True)
def _fused_full_hvp(P, Q, xs, y, target, block, dP, dQ, dxs, moves, hvp_parts, dxs_bar):
    """Hessian-vector products through _fused_full by forward-over-reverse (dual numbers): for run r and each of
    its K directions, the tangent of the attention parameters' gradient along (dP[r, c], dQ[r, c]) (L, k, k) and
    the mapped covariates' tangent dxs[r, c] (N + 1, d, B), block partial sums into hvp_parts[r, block, c, layer,
    {P, Q}], and the tangent of the covariates' adjoints into dxs_bar[r, c] (torch carries it, and the pre-layer's
    own second derivative, back to the pre-layer's parameters). moves=False: the covariates have no tangent (dxs is
    not read). A block's forward and backward are computed once and kept; each direction then costs a tangent
    pass."""
    n_blocks = (xs.shape[-1] + block - 1) // block
    for task in numba.prange(P.shape[0] * n_blocks):
        _full_hvp_block(P, Q, xs, y, target, block, dP, dQ, dxs, moves, hvp_parts, dxs_bar, task // n_blocks,
                        task % n_blocks)


@numba.njit(fastmath=True, cache=True)
def _full_hvp_block(P, Q, xs, y, target, block, dP, dQ, dxs, moves, hvp_parts, dxs_bar, r, blk):
    L, k = P.shape[1], P.shape[2]
    N, d, B = y.shape[1], k - 1, xs.shape[-1]
    K = dP.shape[1]
    dtype = P.dtype
    lo = blk * block
    n = min(block, B - lo)
    Pr, Qr = P[r], Q[r]
    G, M, A, AG, z = _full_forward(P, Q, xs, y, r, lo, n)
    z_bar = np.zeros((k, n), dtype)
    for e in range(n):
        z_bar[d, e] = -2 * (-z[L, d, e] - target[r, lo + e]) / B
    G_bar, _, zb_in, Gb_in, Ab, Mb, AtGb, T = _full_backward(P, Q, G, M, A, AG, z, z_bar, r,
                                                              np.zeros((L, 2, k, k), dtype))
    T0 = np.empty((k, k, n), dtype)  # (G_0's adjoint + its transpose) / N, as _full_block
    for i in range(k):
        for j in range(k):
            for e in range(n):
                T0[i, j, e] = (G_bar[i, j, e] + G_bar[j, i, e]) / N
    dG = np.zeros((L, k, k, n), dtype)
    dM = np.zeros((L, k, k, n), dtype)
    dA = np.zeros((L, k, k, n), dtype)
    dAG = np.zeros((L, k, k, n), dtype)
    dz = np.zeros((L + 1, k, n), dtype)
    dzb = np.zeros((k, n), dtype)
    dzb_new = np.zeros((k, n), dtype)
    dGb = np.zeros((k, k, n), dtype)
    dGb_new = np.zeros((k, k, n), dtype)
    dAb = np.zeros((k, k, n), dtype)
    dMb = np.zeros((k, k, n), dtype)
    dT = np.zeros((k, k, n), dtype)
    tmp = np.zeros((k, k, n), dtype)
    for c in range(K):
        dPc, dQc, dx = dP[r, c], dQ[r, c], dxs[r, c]
        H = hvp_parts[r, blk, c]
        for arr in (dG, dM, dA, dAG):
            arr[:] = 0
        dz[:] = 0
        # tangent forward: dG_0 = (1/N) sum_t (dz_t z_t^T + z_t dz_t^T), dz_t = [dx_t; 0]
        if moves:
            for t in range(N):
                for i in range(d):
                    for j in range(i + 1):
                        for e in range(n):
                            dG[0, i, j, e] += (dx[t, i, lo + e] * xs[r, t, j, lo + e]
                                               + xs[r, t, i, lo + e] * dx[t, j, lo + e])
                for j in range(d):  # the label row (its tangent is 0)
                    for e in range(n):
                        dG[0, d, j, e] += y[r, t, lo + e] * dx[t, j, lo + e]
            _finish_statistics(dG[0], dz[0], dx[N], N, lo)
        for l in range(L):
            _layer_matrix_tangent(Pr[l], dPc[l], G[l], dG[l], M[l], Qr[l], dQc[l], dM[l], dA[l])
            _acc_mv(dA[l], z[l], dz[l + 1])
            _acc_mv(A[l], dz[l], dz[l + 1])
            if l + 1 < L:
                _congruence_tangent(A[l], dA[l], G[l], dG[l], AG[l], dAG[l], dG[l + 1])
        # tangent backward, line by line of _full_backward
        dzb[:] = 0
        for e in range(n):
            dzb[d, e] = 2 * dz[L, d, e] / B
        dGb[:] = 0
        for l in range(L - 1, -1, -1):
            dAb[:] = 0
            _acc_outer(dzb, z[l], dAb)
            _acc_outer(zb_in[l], dz[l], dAb)
            dzb_new[:] = 0
            _acc_mtv(dA[l], zb_in[l], dzb_new)
            _acc_mtv(A[l], dzb, dzb_new)
            dGb_new[:] = 0
            if l + 1 < L:
                for i in range(k):
                    for j in range(k):
                        for e in range(n):
                            dT[i, j, e] = dGb[i, j, e] + dGb[j, i, e]
                _acc_mm(dT, AG[l], dAb)
                _acc_mm(T[l], dAG[l], dAb)
                # d(A^T G_bar A) = (dA^T G_bar + A^T dG_bar) A + (A^T G_bar) dA
                tmp[:] = 0
                _acc_mtm(dA[l], Gb_in[l], tmp)
                _acc_mtm(A[l], dGb, tmp)
                _acc_mm(tmp, A[l], dGb_new)
                _acc_mm(AtGb[l], dA[l], dGb_new)
            _reduce_mtm(dM[l], Ab[l], H[l, 1])
            _reduce_mtm(M[l], dAb, H[l, 1])
            dMb[:] = 0
            _acc_mp(dAb, Qr[l].T, dMb)
            _acc_mp(Ab[l], dQc[l].T, dMb)
            _reduce_mm(dMb, G[l], H[l, 0])
            _reduce_mm(Mb[l], dG[l], H[l, 0])
            _acc_pm(dPc[l].T, Mb[l], dGb_new)
            _acc_pm(Pr[l].T, dMb, dGb_new)
            dGb[:] = dGb_new
            dzb[:] = dzb_new
        # the covariates' adjoints' tangents: d[(1/N) (G_bar + G_bar^T) z_t] = the same map of dG_bar, plus
        # (1/N) (G_bar + G_bar^T) dz_t; the query's dz_bar
        _covariate_adjoints(dGb, dzb, xs, y, r, lo, dT, dxs_bar[r, c])
        if moves:
            for t in range(N):
                for i in range(d):
                    for j in range(d):
                        for e in range(n):
                            dxs_bar[r, c, t, i, lo + e] += T0[i, j, e] * dx[t, j, lo + e]


# ---- Fig. 15's learned pre-layer x -> W2 relu(W1 x + b1) + b2, and its derivatives, in the kernels' layout ----------
# Covariates X (S, N + 1, d, B) (the query last; run r reads X[run_data[r]]), mapped covariates and their adjoints
# (runs, N + 1, d, B): examples innermost, so every line below is a vectorised pass over a block of examples
# [lo, lo + n) that stays in L1. One task per (run, token); each writes its own partial sums, added up in float64 by
# the caller. Measured (2026-12-02, one thread): as torch ops (matmuls, autograd, einsums) the pre-layer and its
# backward were 155 ms of Fig. 15's 259 ms training step (10 runs x 2,000 prompts), and its tangents 2.8 s of a
# 4.5 s Hessian; these kernels made them ~40 ms and ~0.45 s (blocking over examples: no gain measured).
PRE_LAYER_BLOCK = 256


@numba.njit(fastmath=True)
def _hidden(W1, b1, r, j, x, lo, out):  # out[e] = W1[r, j] . x[:, lo + e] + b1[r, j] (before the ReLU)
    d, n = x.shape[0], out.shape[0]
    for e in range(n):
        out[e] = b1[r, j]
    for i in range(d):
        w, xi = W1[r, j, i], x[i, lo:lo + n]  # a slice: a negative index is impossible, so the loop vectorises
        for e in range(n):
            out[e] += w * xi[e]


@numba.njit(fastmath=True)
def _relu(W1, b1, r, j, x, lo, out):  # out = relu(W1[r, j] . x + b1[r, j]), per example
    _hidden(W1, b1, r, j, x, lo, out)
    for e in range(out.shape[0]):
        out[e] = max(out[e], 0)


@numba.njit(fastmath=True)
def _relu_masked(hidden, out):  # out *= relu'(u), given hidden = relu(u) (0 at u = 0, as torch's)
    for e in range(out.shape[0]):
        out[e] = out[e] if hidden[e] > 0 else 0


@numba.njit(fastmath=True)
def _accumulate(w, v, y, lo):  # y[lo + e] += w v[e]
    n = v.shape[0]
    yb = y[lo:lo + n]
    for e in range(n):
        yb[e] += w * v[e]


@numba.njit(fastmath=True)
def _dot(u, y, lo):  # sum_e u[e] y[lo + e]
    n = u.shape[0]
    yb = y[lo:lo + n]
    acc = u[0] * 0
    for e in range(n):
        acc += u[e] * yb[e]
    return acc


@numba.njit(fastmath=True)
def _combine(W2, r, j, g, lo, out):  # out[e] = sum_o W2[r, o, j] g[o, lo + e]
    for e in range(out.shape[0]):
        out[e] = 0
    n = out.shape[0]
    for o in range(g.shape[0]):
        w, go = W2[r, o, j], g[o, lo:lo + n]
        for e in range(n):
            out[e] += w * go[e]


@numba.njit(fastmath=True)
def _pre_layer_sums(x, g, hidden, hidden_bar, j, h, lo, out):
    """Hidden unit j's share of the pre-layer's gradient (or of its tangent) from examples lo ..: W2[:, j] gets
    sum_e g hidden, W1[j] sum_e hidden_bar x, b1[j] sum_e hidden_bar; into out, flattened as model.pre_layer's
    parameters (W1 (h, d), b1 (h), W2 (d, h), b2 (d))."""
    d = x.shape[0]
    for o in range(d):
        out[h * d + h + o * h + j] += _dot(hidden, g[o], lo)
    for i in range(d):
        out[j * d + i] += _dot(hidden_bar, x[i], lo)
    acc = out[0] * 0
    for e in range(hidden_bar.shape[0]):
        acc += hidden_bar[e]
    out[h * d + j] += acc


@numba.njit(fastmath=True)
def _bias_sums(g, lo, n, h, out):  # b2's share: sum_e g[o, lo + e]
    d = g.shape[0]
    for o in range(d):
        acc = out[0] * 0
        go = g[o, lo:lo + n]
        for e in range(n):
            acc += go[e]
        out[2 * h * d + h + o] += acc


@numba.njit(parallel=True, cache=True)
def _pre_layer_forward(W1, b1, W2, b2, X, run_data, xs):
    """xs[r, t] = W2[r] relu(W1[r] X[run_data[r], t] + b1[r]) + b2[r] for every token t, (d, B) each."""
    runs, h = W1.shape[0], W1.shape[1]
    T, d, B = X.shape[1], X.shape[2], X.shape[3]
    for task in numba.prange(runs * T):
        r, t = task // T, task % T
        x, out = X[run_data[r], t], xs[r, t]
        for lo in range(0, B, PRE_LAYER_BLOCK):
            n = min(PRE_LAYER_BLOCK, B - lo)
            hidden = np.empty(n, X.dtype)
            for o in range(d):
                out[o, lo:lo + n] = b2[r, o]
            for j in range(h):
                _relu(W1, b1, r, j, x, lo, hidden)
                for o in range(d):
                    _accumulate(W2[r, o, j], hidden, out[o], lo)


@numba.njit(parallel=True, cache=True)
def _pre_layer_backward(W1, b1, W2, X, run_data, xs_bar, parts):
    """The pre-layer's gradient from the mapped covariates' adjoints xs_bar (runs, N + 1, d, B): token t's share in
    parts[r, t] (_pre_layer_sums' order)."""
    runs, h = W1.shape[0], W1.shape[1]
    T, B = X.shape[1], X.shape[3]
    for task in numba.prange(runs * T):
        r, t = task // T, task % T
        x, g, out = X[run_data[r], t], xs_bar[r, t], parts[r, t]
        for lo in range(0, B, PRE_LAYER_BLOCK):
            n = min(PRE_LAYER_BLOCK, B - lo)
            hidden, hidden_bar = np.empty(n, X.dtype), np.empty(n, X.dtype)
            for j in range(h):
                _relu(W1, b1, r, j, x, lo, hidden)
                _combine(W2, r, j, g, lo, hidden_bar)
                _relu_masked(hidden, hidden_bar)
                _pre_layer_sums(x, g, hidden, hidden_bar, j, h, lo, out)
            _bias_sums(g, lo, n, h, out)


@numba.njit(parallel=True, cache=True)
def _pre_layer_tangent(W1, b1, W2, dW1, db1, dW2, db2, X, run_data, dxs):
    """The mapped covariates' tangent along each direction c of run r, dxs[r, c, t] (d, B):
    W2 (relu'(u) (dW1 x + db1)) + dW2 relu(u) + db2, u = W1 x + b1."""
    runs, h = W1.shape[0], W1.shape[1]
    K = dW1.shape[1]
    T, d, B = X.shape[1], X.shape[2], X.shape[3]
    for task in numba.prange(runs * T):
        r, t = task // T, task % T
        x = X[run_data[r], t]
        for lo in range(0, B, PRE_LAYER_BLOCK):
            n = min(PRE_LAYER_BLOCK, B - lo)
            hidden, d_hidden = np.empty(n, X.dtype), np.empty(n, X.dtype)
            for c in range(K):
                for o in range(d):
                    dxs[r, c, t, o, lo:lo + n] = db2[r, c, o]
            for j in range(h):
                _relu(W1, b1, r, j, x, lo, hidden)
                for c in range(K):
                    _hidden(dW1[r], db1[r], c, j, x, lo, d_hidden)
                    _relu_masked(hidden, d_hidden)
                    out = dxs[r, c, t]
                    for o in range(d):
                        _accumulate(W2[r, o, j], d_hidden, out[o], lo)
                        _accumulate(dW2[r, c, o, j], hidden, out[o], lo)


@numba.njit(parallel=True, cache=True)
def _pre_layer_tangent_grad(W1, b1, W2, dW1, db1, dW2, X, run_data, C, dC, moves, parts):
    """The tangent of the pre-layer's gradient J^T C along each direction c of run r: from the covariates' adjoints
    C (runs, N + 1, d, B) and their tangents dC (runs, K, N + 1, d, B), the pre-layer's own second derivative
    included (moves=False: the direction leaves the pre-layer alone, dW = 0). Token t's share in parts[r, t, c]
    (_pre_layer_sums' order)."""
    runs, h = W1.shape[0], W1.shape[1]
    K = dC.shape[1]
    T, d, B = X.shape[1], X.shape[2], X.shape[3]
    for task in numba.prange(runs * T):
        r, t = task // T, task % T
        x, g = X[run_data[r], t], C[r, t]
        for lo in range(0, B, PRE_LAYER_BLOCK):
            n = min(PRE_LAYER_BLOCK, B - lo)
            hidden, d_hidden = np.empty(n, X.dtype), np.empty(n, X.dtype)
            d_hidden_bar, scratch = np.empty(n, X.dtype), np.empty(n, X.dtype)
            for j in range(h):
                _relu(W1, b1, r, j, x, lo, hidden)
                for c in range(K):
                    dg, out = dC[r, c, t], parts[r, t, c]
                    _combine(W2, r, j, dg, lo, d_hidden_bar)  # W2^T dC
                    if moves:  # + dW2^T C, and W2's share from C's side: sum_e C relu'(u) (dW1 x + db1)
                        _combine(dW2[r], c, j, g, lo, scratch)
                        for e in range(n):
                            d_hidden_bar[e] += scratch[e]
                        _hidden(dW1[r], db1[r], c, j, x, lo, d_hidden)
                        _relu_masked(hidden, d_hidden)
                        for o in range(d):
                            out[h * d + h + o * h + j] += _dot(d_hidden, g[o], lo)
                    _relu_masked(hidden, d_hidden_bar)
                    _pre_layer_sums(x, dg, hidden, d_hidden_bar, j, h, lo, out)
            for c in range(K):
                _bias_sums(dC[r, c, t], lo, n, h, parts[r, t, c])


def supports_full(arch):
    """Whether loss_and_grad_full applies: Fig. 15's model (linear attention, the full parametrization, one Q, a
    learned pre-layer)."""
    return (arch.parametrization == "full" and arch.attention == "linear" and arch.query_key == "single"
            and arch.mlp_hidden > 0)


def _full_inputs(theta, arch, prompts, run_data):
    """Fig. 15's kernel inputs: P, Q (runs, L, k, k); the pre-layer's weights (W1, b1, W2, b2) per run; the raw
    covariates X (S, N + 1, d, B) of the S batches, the query last; run_data (runs,), run r's batch; and, as the
    kernels read them, the mapped covariates xs (runs, N + 1, d, B), labels y (runs, N, B) and targets (runs, B).
    prompts: one batch, or one per seed (run_data[r] is run r's: default batch r, or the one batch)."""
    runs = theta.shape[0]
    if prompts.w.dim() == 2:  # one batch for all runs: give it a leading axis
        prompts = stack_prompts([prompts])
    if run_data is None:
        run_data = np.zeros(runs, np.int64) if prompts.w.shape[0] == 1 else np.arange(runs)
    run_data = np.asarray(run_data, dtype=np.int64)
    P, Q = (np.ascontiguousarray(m.detach().numpy()) for m in attention_matrices(theta, arch))
    dtype = P.dtype
    weights = _split_pre_layer(theta[:, arch.n_attention_params:].detach().numpy(), arch)
    X = torch.cat([prompts.x, prompts.x_query.unsqueeze(-2)], -2)  # (S, B, N + 1, d)
    X = np.ascontiguousarray(X.permute(0, 2, 3, 1).numpy(), dtype=dtype)
    xs = np.empty((runs, *X.shape[1:]), dtype)
    _pre_layer_forward(*weights, X, run_data, xs)
    # the labels of each batch once (the target network is the costly part), then each run's
    y = np.ascontiguousarray(prompts.y.permute(0, 2, 1).numpy()[run_data], dtype=dtype)
    target = np.ascontiguousarray(prompts.y_query.numpy()[run_data], dtype=dtype)
    return P, Q, weights, X, run_data, xs, y, target


def _full_adjoints(P, Q, xs, y, target):
    """_fused_full on its inputs: per-prompt squared errors, the attention parameters' gradient (runs, L * 2 * k * k)
    and the mapped covariates' adjoints xs_bar (like xs)."""
    runs, L, k = P.shape[0], P.shape[1], P.shape[2]
    B = xs.shape[-1]
    blocks = block_size(k)
    per_prompt = np.empty((runs, B), P.dtype)
    parts = np.zeros((runs, (B + blocks - 1) // blocks, L, 2, k, k), P.dtype)
    xs_bar = np.empty_like(xs)
    _fused_full(P, Q, xs, y, target, blocks, per_prompt, parts, xs_bar)
    return per_prompt, torch.from_numpy(parts.sum(1).reshape(runs, -1)), xs_bar


def loss_and_grad_full(theta, arch, prompts, run_data=None):
    """Per-run mean loss (runs,) and gradient (runs, n_params), as model.loss_and_grad on Prompts, for Fig. 15's
    model. prompts: one batch, or one per seed (leading axis; run_data[r] is run r's, default: batch r, or the one
    batch for all). The pre-layer maps each run's covariates (_pre_layer_forward), the statistics and the attention
    layers are fused (_fused_full), whose adjoints of the mapped covariates _pre_layer_backward carries back through
    the pre-layer."""
    P, Q, weights, X, run_data, xs, y, target = _full_inputs(theta, arch, prompts, run_data)
    per_prompt, attention_grad, xs_bar = _full_adjoints(P, Q, xs, y, target)
    parts = np.zeros((theta.shape[0], X.shape[1], arch.n_params - arch.n_attention_params), P.dtype)
    _pre_layer_backward(weights[0], weights[1], weights[2], X, run_data, xs_bar, parts)
    pre_layer_grad = torch.from_numpy(parts.sum(1, dtype=np.float64)).to(theta.dtype)
    return torch.from_numpy(per_prompt.mean(1)), torch.cat([attention_grad, pre_layer_grad], 1)


def _split_pre_layer(flat, arch):
    """The pre-layer's (W1 (.., h, d), b1 (.., h), W2 (.., d, h), b2 (.., d)) from its flat parameters (.., n), in
    model.pre_layer's order, each part contiguous."""
    h, d = arch.mlp_hidden, arch.d
    ends = np.cumsum([h * d, h, d * h])
    W1, b1, W2, b2 = np.split(flat, ends, axis=-1)
    return (np.ascontiguousarray(W1.reshape(*W1.shape[:-1], h, d)), np.ascontiguousarray(b1),
            np.ascontiguousarray(W2.reshape(*W2.shape[:-1], d, h)), np.ascontiguousarray(b2))


def hessian_vector_products_full(theta, arch, prompts, directions, chunk=32, pre_layer_rows=True):
    """H(theta_r) v for every run r and each of its directions (runs, K, n_params), on one batch of prompts, for
    Fig. 15's model; returns (runs, K, n_params). Forward-over-reverse in three steps: the tangents of the mapped
    covariates (_pre_layer_tangent), the fused tangent pass (_fused_full_hvp: the attention rows, and the tangents
    of the covariates' adjoints), then the pre-layer rows, the tangent of its gradient (_pre_layer_tangent_grad;
    pre_layer_rows=False: left out, zeros). `chunk` directions at a time."""
    theta = theta.detach()
    runs, K, p = directions.shape
    a, L, k = arch.n_attention_params, arch.n_layers, arch.d + 1
    P, Q, (W1, b1, W2, _), X, run_data, xs, y, target = _full_inputs(theta, arch, prompts, None)
    dtype = P.dtype
    _, _, C = _full_adjoints(P, Q, xs, y, target)
    B, T = xs.shape[-1], xs.shape[1]
    blocks = block_size(k)
    directions = np.asarray(directions, dtype=dtype)
    out = torch.empty(runs, K, p, dtype=theta.dtype)
    for start in range(0, K, chunk):
        V = directions[:, start:start + chunk]
        c = V.shape[1]
        dW1, db1, dW2, db2 = _split_pre_layer(V[..., a:], arch)
        moves = bool(V[..., a:].any())  # unit vectors of the attention parameters leave the covariates alone
        if moves:
            dxs = np.empty((runs, c, *xs.shape[1:]), dtype)
            _pre_layer_tangent(W1, b1, W2, dW1, db1, dW2, db2, X, run_data, dxs)
        else:
            dxs = np.zeros((runs, c, 1, 1, 1), dtype)
        blocks_of_v = V[..., :a].reshape(runs, c, L, 2, k, k)
        dP, dQ = (np.ascontiguousarray(blocks_of_v[:, :, :, m]) for m in (0, 1))
        parts = np.zeros((runs, (B + blocks - 1) // blocks, c, L, 2, k, k), dtype)
        dxs_bar = np.empty((runs, c, *xs.shape[1:]), dtype)
        _fused_full_hvp(P, Q, xs, y, target, blocks, dP, dQ, dxs, moves, parts, dxs_bar)
        out[:, start:start + c, :a] = torch.from_numpy(parts.sum(1).reshape(runs, c, a))
        if not pre_layer_rows:
            out[:, start:start + c, a:] = 0
            continue
        pre_parts = np.zeros((runs, T, c, p - a), dtype)
        _pre_layer_tangent_grad(W1, b1, W2, dW1, db1, dW2, X, run_data, C, dxs_bar, moves, pre_parts)
        out[:, start:start + c, a:] = torch.from_numpy(pre_parts.sum(1, dtype=np.float64)).to(theta.dtype)
    return out


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


def hessian_vector_products(theta, arch, stats, directions, first=None):
    """H(theta_r) v for every run r and each of its directions: theta (runs, n_params), directions (runs, K,
    n_params), one batch `stats`; returns (runs, K, n_params). Forward-over-reverse in the compiled kernel
    (_fused_hvp): exact, no finite differences. first (K,): direction k is zero in the layers below first[k], and
    only the entries of layers >= first[k] are computed (the rest are zeros); None: every layer. Separate W_Q, W_K:
    the kernel's product along dQ = dW_K^T W_Q + W_K^T dW_Q, mapped by _to_factors, plus the derivative of that map
    itself: dW_K dL/dQ for W_Q and dW_Q (dL/dQ)^T for W_K."""
    runs, K, p = directions.shape
    L, d = arch.n_layers, arch.d
    G, z, target = _arrays(stats)
    P, Q, factors = _blocks(theta.detach().numpy(), arch)
    dtype = P.dtype
    dP, dQ, dfactors = _blocks(np.asarray(directions, dtype=dtype).reshape(runs * K, p), arch)
    if factors is not None:  # the score matrix's direction, by the product rule
        W_Q, W_K = (np.repeat(f, K, axis=0) for f in factors)
        dW_Q, dW_K = dfactors
        dQ = np.ascontiguousarray(dW_K.swapaxes(-1, -2) @ W_Q + W_K.swapaxes(-1, -2) @ dW_Q)
    blocks = block_size(d)
    n_blocks = (G.shape[-1] + blocks - 1) // blocks
    parts = np.zeros((runs, n_blocks, K, L, 2, d, d), dtype)
    first = np.zeros(K, np.int64) if first is None else np.asarray(first, np.int64)
    _fused_hvp(P, Q, G.astype(dtype, copy=False), z.astype(dtype, copy=False), target.astype(dtype, copy=False),
               np.zeros(runs, np.int64), blocks, dP.reshape(runs, K, *dP.shape[1:]),
               dQ.reshape(runs, K, *dQ.shape[1:]), np.ascontiguousarray(np.broadcast_to(first, (runs, K))), parts)
    out = _to_factors(parts.sum(1), factors)
    if factors is not None:
        G_Q = _run(theta.detach(), arch, stats, np.zeros(runs, np.int64), True)[1][:, None, :, 1]  # dL/dQ
        dW_Q, dW_K = (f.reshape(runs, K, L, d, d) for f in dfactors)
        extra = np.stack([np.zeros_like(dW_Q), dW_K @ G_Q, dW_Q @ G_Q.swapaxes(-1, -2)], axis=-3)
        out = out + extra.reshape(runs, K, p)
    return torch.from_numpy(out)


def _products(arch):
    """The Hessian-vector products of the architecture's fused path: statistics (sparse) or Fig. 15's prompts."""
    return hessian_vector_products_full if supports_full(arch) else hessian_vector_products


def hessians(theta, arch, data):
    """Exact Hessians (runs, n_params, n_params) of the loss on one batch (PromptStatistics; Prompts for Fig. 15's
    model): the Hessian-vector products with every unit vector (symmetrised: the two triangles agree to round-off).
    Fig. 15's model: the attention parameters' unit vectors give their attention rows only (the compiled pass); the
    pre-layer's give whole columns, whose attention rows are, by symmetry, the missing pre-layer rows of the first.
    The statistics path: the unit vector of a layer-l parameter gives the rows of layers >= l only (its tangents
    vanish below l: a tangent pass through L - l layers instead of L); the rows below are the symmetric entries
    (measured 2026-12-02, one thread, one process against all rows: 1.95x at L = 3, 2.0x at L = 4, 2.2x at L = 8;
    the same Hessian to 1e-7 relative)."""
    runs, p = theta.shape
    unit = np.broadcast_to(np.eye(p, dtype=np.float32), (runs, p, p))
    if supports_full(arch):
        a = arch.n_attention_params
        H = torch.cat([hessian_vector_products_full(theta, arch, data, unit[:, :a], pre_layer_rows=False),
                       hessian_vector_products_full(theta, arch, data, unit[:, a:])], 1)
        H[:, :a, a:] = H[:, a:, :a].transpose(1, 2)
    else:
        layer = np.arange(p) // (p // arch.n_layers)  # the parameters are layer-major (model.py)
        H = hessian_vector_products(theta, arch, data, unit, first=layer)  # H[:, k, i] for layer[i] >= layer[k]
        below = torch.from_numpy(layer[None, :] < layer[:, None])  # the entries not computed: their mirror was
        H = torch.where(below, H.transpose(1, 2), H)
    return (H + H.transpose(1, 2)) / 2


def directional_smoothness(theta, direction, arch, data):
    """u^T H u / |u|^2 per run on one batch, as diagnostics.directional_smoothness: one Hessian-vector product."""
    u = direction.detach()
    Hu = _products(arch)(theta, arch, data, u.numpy()[:, None, :])[:, 0]
    return (Hu * u).sum(1) / (u * u).sum(1)


def clip_and_step(theta, grad, state):
    """optim.clip_by_global_norm and optim.step in one compiled pass (the training loop's ~15 small torch operations
    a step cost ~0.15 ms of a 12-run Setting-1 step, measured 2026-12-05): the same updates in theta's dtype, tested
    against them. Returns (new parameters, each run's gradient norm before clipping); updates `state`."""
    state.steps += 1
    t, dtype = state.steps, theta.numpy().dtype
    constants = np.array([MOMENTUM, BETAS[0], 1 - BETAS[0], BETAS[1], 1 - BETAS[1], 1 - BETAS[0] ** t,
                          (1 - BETAS[1] ** t) ** 0.5, EPS], dtype)
    new_theta, norm = np.empty_like(theta.numpy()), np.empty(len(theta), dtype)
    _clip_and_step(theta.numpy(), np.ascontiguousarray(grad.detach().numpy()), state.is_adam.numpy(),
                   state.lr.numpy(), state.clip.numpy(), state.momentum_buffer.numpy(), state.exp_avg.numpy(),
                   state.exp_avg_sq.numpy(), constants, new_theta, norm)
    return torch.from_numpy(new_theta), torch.from_numpy(norm)


@numba.njit(cache=True, error_model="numpy")  # IEEE division: a zero norm gives inf, as torch's
def _clip_and_step(theta, grad, is_adam, lr, clip, momentum_buffer, exp_avg, exp_avg_sq, constants, new_theta, norms):
    momentum, beta1, one_minus_beta1, beta2, one_minus_beta2, bias1, bias2_root, eps = constants
    one = constants.dtype.type(1)
    for r in range(theta.shape[0]):
        squares = 0.0
        for k in range(theta.shape[1]):
            squares += np.float64(grad[r, k]) * grad[r, k]
        norm = norms.dtype.type(np.sqrt(squares))
        norms[r] = norm
        scale = clip[r] / norm  # norm 0 gives inf -> 1; a NaN norm stays NaN (torch.clamp's)
        if scale > one:
            scale = one
        for k in range(theta.shape[1]):
            g = grad[r, k] * scale
            momentum_buffer[r, k] = momentum_buffer[r, k] * momentum + g
            exp_avg[r, k] = exp_avg[r, k] * beta1 + one_minus_beta1 * g
            exp_avg_sq[r, k] = exp_avg_sq[r, k] * beta2 + one_minus_beta2 * g * g
            if is_adam[r]:
                direction = (exp_avg[r, k] / bias1) / (np.sqrt(exp_avg_sq[r, k]) / bias2_root + eps)
            else:
                direction = momentum_buffer[r, k]
            new_theta[r, k] = theta[r, k] - lr[r] * direction


# Prompts per block of _gaussian_batch and _radial_batch: a block's numbers, transposed, stay in L1. Measured 2026-12-05
# (1 thread, 1,000 Setting-3 prompts): 32 and 64 tie (0.20 ms; one prompt at a time, reading the numbers in place:
# 0.38 ms), 128: 0.29 ms.
STATISTICS_BLOCK = 64


@numba.njit(parallel=True, cache=True)
def gaussian_statistics(normals, uniforms, n_context, chi2, G, z_query, target, draw_chi2):
    """Fill PromptStatistics' arrays G (D, d+1, d+1, B), z_query (D, d+1, B) and target (D, B) of D batches of B
    Gaussian prompts from their random numbers (data.sample_statistics draws them). A prompt's normals (D, >= B, 3d +
    d(d-1)/2): w, the query x, A's entries below the diagonal, and a candidate normal for each chi-square A_jj^2 ~
    chi^2(N - j) (Bartlett: N S = A A^T, A lower triangular); then b = S w, c = w^T S w, target <w, x>. With
    draw_chi2, chi2 (D, d, B) is drawn first (_bartlett_chi_squares, from those normals and uniforms (D, >= B, d)),
    and a batch left with missing chi-squares (its spares ran out) is not formed: its count is returned, and
    data.sample_statistics fills them and calls again without draw_chi2. Batches in parallel, one region."""
    missing = np.zeros(normals.shape[0], np.int64)
    for i in numba.prange(normals.shape[0]):
        if draw_chi2:
            missing[i] = _bartlett_chi_squares(normals[i], uniforms[i], n_context, chi2[i])
        if missing[i] == 0:
            _gaussian_batch(normals[i], chi2[i], n_context, G[i], z_query[i], target[i])
    return missing


@numba.njit
def _bartlett_chi_squares(normals, uniforms, n_context, out):
    """One batch's chi-squares out[j, e] ~ chi^2(N - j), e < B: chi^2(k) = 2 Gamma(k / 2) by Marsaglia and Tsang's
    method (2000), exact (an accepted candidate has the Gamma law). Candidate (e, j) takes the normal normals[e, K - d
    + j] and the uniform uniforms[e, j]; a rejected one takes the next spare pair, in order: the rows B.. of normals
    and of uniforms, flattened. chi^2(1) is the normal squared. Returns the count left NaN when the spares ran out."""
    d, B = out.shape
    K = normals.shape[1]
    spare_normals, spare_uniforms = normals[B:].ravel(), uniforms[B:].ravel()
    n_spares = min(spare_normals.size, spare_uniforms.size)
    s, missing = 0, 0
    for e in range(B):
        for j in range(d):
            dof = n_context - j
            value = _chi_square_candidate(dof, normals[e, K - d + j], uniforms[e, j])
            while np.isnan(value) and s < n_spares:
                value = _chi_square_candidate(dof, spare_normals[s], spare_uniforms[s])
                s += 1
            if np.isnan(value):
                missing += 1
            out[j, e] = value
    return missing


@numba.njit
def _chi_square_candidate(dof, normal, uniform):
    """2 Gamma(dof / 2) from one normal and one uniform by Marsaglia and Tsang's test (shape dof / 2 >= 1), or NaN
    where the test rejects; chi^2(1) is the normal squared (shape 1/2, below the method's range)."""
    z = np.float64(normal)
    if dof == 1:
        return z * z
    shape = dof / 2 - 1 / 3
    v = 1 + z / np.sqrt(9 * shape)
    if v <= 0:
        return np.nan
    v = v * v * v
    z2 = z * z
    if uniform < 1 - 0.0331 * z2 * z2 or np.log(uniform) < 0.5 * z2 + shape * (1 - v + np.log(v)):
        return 2 * shape * v
    return np.nan


@numba.njit
def _gaussian_batch(normals, chi2, n_context, G, z_query, target):
    """One batch of gaussian_statistics, in blocks of prompts transposed first (as _radial_batch; the same bits as
    one prompt at a time: float64 sums in the same order, no fastmath). A prompt's normals: w, the query x, then A's
    entries below the diagonal row by row."""
    d, B = z_query.shape[0] - 1, z_query.shape[1]
    u = np.empty((2 * d + d * (d - 1) // 2, STATISTICS_BLOCK), np.float32)
    A = np.empty((d, d, STATISTICS_BLOCK))
    s = np.empty(STATISTICS_BLOCK)
    for lo in range(0, B, STATISTICS_BLOCK):
        n = min(STATISTICS_BLOCK, B - lo)
        _transpose_block(normals, lo, n, u)
        k = 2 * d
        for i in range(d):
            for e in range(n):
                A[i, i, e] = np.sqrt(chi2[i, lo + e])
            for j in range(i):
                for e in range(n):
                    A[i, j, e] = u[k, e]
                k += 1
        for i in range(d):  # N S = A A^T
            for j in range(i + 1):
                s[:] = 0.0
                for m in range(j + 1):
                    for e in range(n):
                        s[e] += A[i, m, e] * A[j, m, e]
                for e in range(n):
                    G[i, j, lo + e] = G[j, i, lo + e] = s[e] / n_context
        _finish_block(G, z_query, target, u, u[d:2 * d], lo, n)


@numba.njit
def _transpose_block(rows, lo, n, out):  # out[k, e] = rows[lo + e, k]: a block of prompts' first numbers, transposed
    for e in range(n):
        for k in range(out.shape[0]):
            out[k, e] = rows[lo + e, k]


@numba.njit
def _finish_block(G, z_query, target, u, x, lo, n):
    """Given S in G[:d, :d, lo:lo + n]: b = S w, c = w^T S w, the query token [x; 0] and the target <w, x>, with w
    each prompt's first d numbers (u, the block transposed) and x (d, n) its query covariate."""
    d = x.shape[0]
    b = np.empty(n)
    c = np.zeros(n)
    t = np.zeros(n)
    for i in range(d):
        b[:] = 0.0
        for j in range(d):
            for e in range(n):
                b[e] += G[i, j, lo + e] * u[j, e]
        for e in range(n):
            G[i, d, lo + e] = G[d, i, lo + e] = b[e]
            c[e] += b[e] * u[i, e]
            t[e] += u[i, e] * x[i, e]
            z_query[i, lo + e] = x[i, e]
    for e in range(n):
        G[d, d, lo + e] = c[e]
        z_query[d, lo + e] = 0.0
        target[lo + e] = t[e]


@numba.njit(parallel=True, cache=True)
def radial_statistics(normals, radii_squared, n_context, G, z_query, target):
    """As gaussian_statistics for covariates x = r g/|g| (spherical: r = 1; heavy-tailed: r^2 ~ Gamma(k, theta)):
    normals (D, B, (N + 2) d) are w, then the N context covariates' and the query's g; radii_squared (D, B, N + 1)
    their r^2. Only S, b, c and the query are formed (no prompt array)."""
    for i in numba.prange(normals.shape[0]):
        _radial_batch(normals[i], radii_squared[i], n_context, G[i], z_query[i], target[i])


@numba.njit
def _radial_batch(normals, radii_squared, n_context, G, z_query, target):
    """One batch of radial_statistics, in blocks of prompts: each block's numbers transposed first, so that every
    loop below runs over the block's prompts with unit stride (vectorised). Per prompt the arithmetic is that of one
    prompt at a time (float64 sums in the same order; no fastmath): the same bits."""
    d, B = z_query.shape[0] - 1, z_query.shape[1]
    K = normals.shape[1]
    S = np.empty((d, d, STATISTICS_BLOCK))
    x = np.empty((d, STATISTICS_BLOCK))
    g = np.empty((K, STATISTICS_BLOCK), np.float32)
    r2 = np.empty((n_context + 1, STATISTICS_BLOCK), np.float32)
    norm = np.empty(STATISTICS_BLOCK)
    weight = np.empty(STATISTICS_BLOCK)
    for lo in range(0, B, STATISTICS_BLOCK):
        n = min(STATISTICS_BLOCK, B - lo)
        _transpose_block(normals, lo, n, g)
        _transpose_block(radii_squared, lo, n, r2)
        S[:] = 0.0
        for m in range(n_context + 1):  # the context covariates x x^T = (r^2 / |g|^2) g g^T, then the query
            base = (m + 1) * d
            norm[:] = 0.0
            for i in range(d):
                gi = g[base + i]
                for e in range(n):
                    norm[e] += np.float64(gi[e]) * gi[e]
            for e in range(n):
                weight[e] = r2[m, e] / norm[e]
            if m == n_context:
                for i in range(d):
                    for e in range(n):
                        x[i, e] = g[base + i, e] * np.sqrt(weight[e])
                break
            for i in range(d):
                gi = g[base + i]
                for j in range(i + 1):
                    gj, Sij = g[base + j], S[i, j]
                    for e in range(n):
                        Sij[e] += weight[e] * gi[e] * gj[e]
        for i in range(d):
            for j in range(i + 1):
                for e in range(n):
                    G[i, j, lo + e] = G[j, i, lo + e] = S[i, j, e] / n_context
        _finish_block(G, z_query, target, g, x[:, :n], lo, n)
