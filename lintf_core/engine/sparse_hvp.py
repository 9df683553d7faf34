"""Exact Hessian-vector products of the sparse statistics form by forward-over-reverse: the tangent (dual-number)
pass of sparse.py's forward (the same function, its tape) and of the backward, derived by the product rule line by
line. A block's forward and backward are computed once and kept; each direction then costs one tangent pass:
_hvp_block drives _backward_keeping_adjoints, _tangent_forward and _tangent_backward."""

import numba
import numpy as np
import torch

from .products import _acc_mm, _acc_mp, _acc_mtm, _acc_mtv, _acc_mv, _acc_outer, _acc_pm, _acc_pv, \
    _congruence_tangent, _layer_matrix_tangent, _reduce_mm, _reduce_mtm, _reduce_outer
from .sparse import _arrays, _blocks, _run, _sparse_forward, _to_factors, block_size


@numba.njit(parallel=True, cache=True)
def _fused_hvp(P, Q, G0, z0, target, run_data, block, dP, dQ, first, hvp_parts):
    """Hessian-vector products of the batch-mean loss by forward-over-reverse (dual numbers) through sparse.py's
    forward and a backward that keeps its adjoints: for run r and each of its K directions (dP[r, k], dQ[r, k]) (layer, d, d), the derivative
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
    """The driver of one (run, block) pair: sparse.py's forward (every A formed) and a backward that keeps its
    adjoints, once; then per direction a tangent forward and a tangent backward."""
    L, d = P.shape[1], P.shape[2]
    K = dP.shape[1]
    B = G0.shape[-1]
    dtype = P.dtype
    lo = blk * block
    n = min(block, B - lo)
    data = run_data[r]
    tape, y = _sparse_forward(P, Q, G0, z0, r, data, lo, n, True)
    gy = np.empty(n, dtype)
    for e in range(n):
        gy[e] = 2 * (y[e] + target[data, lo + e]) / B  # d loss / d y, residual = -y - target
    adjoints = _backward_keeping_adjoints(P[r], Q[r], tape, gy)
    tangents = (np.zeros((L, d, d, n), dtype), np.zeros((L, d, d, n), dtype), np.zeros((L, d, d, n), dtype),
                np.zeros((L, d, d, n), dtype), np.zeros((L, d, n), dtype), np.zeros((L, d, n), dtype),
                np.zeros((L, d, n), dtype), np.zeros((L, d, n), dtype), np.zeros((L, d, n), dtype))
    dy = np.zeros(n, dtype)
    for k in range(K):
        for arr in tangents[:4]:
            arr[:] = 0
        for arr in tangents[4:]:
            arr[:] = 0
        dy[:] = 0
        _tangent_forward(P[r], Q[r], dP[r, k], dQ[r, k], first[r, k], tape, tangents, dy)
        dgy = np.empty(n, dtype)
        for e in range(n):
            dgy[e] = 2 * dy[e] / B
        _tangent_backward(P[r], Q[r], dP[r, k], dQ[r, k], first[r, k], tape, adjoints, tangents, gy, dgy,
                          hvp_parts[r, blk, k])


@numba.njit(fastmath=True)
def _backward_keeping_adjoints(Pr, Qr, tape, gy):
    """The primal backward (sparse.py's, without the last A's shortcut), keeping per layer l what the tangent
    backward reads: the adjoints of b_{l+1}, x_{l+1}, S_{l+1} entering it, and A_bar, S_bar + S_bar^T, h_bar, v_bar,
    M_bar."""
    S, M, A, AS, b, x, v, h, u, _, _, _ = tape
    L, d, n = S.shape[0], S.shape[1], gy.shape[0]
    dtype = S.dtype
    b_bar_in = np.zeros((L, d, n), dtype)
    x_bar_in = np.zeros((L, d, n), dtype)
    S_bar_in = np.zeros((L, d, d, n), dtype)
    A_bar = np.zeros((L, d, d, n), dtype)
    T = np.zeros((L, d, d, n), dtype)
    h_bar = np.zeros((L, d, n), dtype)
    v_bar = np.zeros((L, d, n), dtype)
    M_bar = np.zeros((L, d, d, n), dtype)
    b_bar = np.zeros((d, n), dtype)
    x_bar = np.zeros((d, n), dtype)
    S_bar = np.zeros((d, d, n), dtype)
    tmp = np.zeros((d, d, n), dtype)
    for l in range(L - 1, -1, -1):
        if l + 1 < L:
            b_bar_in[l], x_bar_in[l], S_bar_in[l] = b_bar, x_bar, S_bar
            _acc_outer(b_bar, h[l], A_bar[l])  # b_{l+1} = A h, x_{l+1} = A x
            _acc_outer(x_bar, x[l], A_bar[l])
            _acc_mtv(A[l], b_bar, h_bar[l])
            x_bar_new = np.zeros((d, n), dtype)
            S_bar_new = np.zeros((d, d, n), dtype)
            if l > 0:
                _acc_mtv(A[l], x_bar, x_bar_new)
            if l + 2 < L:  # S_{l+1} = A S A^T
                for i in range(d):
                    for j in range(d):
                        for e in range(n):
                            T[l, i, j, e] = S_bar[i, j, e] + S_bar[j, i, e]
                _acc_mm(T[l], AS[l], A_bar[l])
                if l > 0:
                    tmp[:] = 0
                    _acc_mtm(A[l], S_bar, tmp)
                    _acc_mm(tmp, A[l], S_bar_new)
            _acc_mv(S[l], h_bar[l], v_bar[l])  # h = b + S v, v = Q^T b
            _acc_mp(A_bar[l], Qr[l].T, M_bar[l])  # A = I + M Q, M = P S
            if l > 0:
                _acc_outer(h_bar[l], v[l], S_bar_new)
                _acc_pm(Pr[l].T, M_bar[l], S_bar_new)
                b_bar_new = np.zeros((d, n), dtype)
                _acc_pv(Qr[l], v_bar[l], b_bar_new)
                for i in range(d):
                    for e in range(n):
                        b_bar_new[i, e] += h_bar[l, i, e]
                b_bar, x_bar, S_bar = b_bar_new, x_bar_new, S_bar_new
        if l > 0:  # y += b . u, u = Q x
            b_bar_y = np.empty((d, n), dtype)
            for i in range(d):
                for e in range(n):
                    b_bar_y[i, e] = b_bar[i, e] + gy[e] * u[l, i, e]
            b_bar = b_bar_y
            x_bar_y = np.empty((d, n), dtype)
            for i in range(d):
                for e in range(n):
                    x_bar_y[i, e] = x_bar[i, e]
            u_bar = np.empty((d, n), dtype)
            for i in range(d):
                for e in range(n):
                    u_bar[i, e] = gy[e] * b[l, i, e]
            _acc_pv(Qr[l].T, u_bar, x_bar_y)
            x_bar = x_bar_y
    return b_bar_in, x_bar_in, S_bar_in, A_bar, T, h_bar, v_bar, M_bar


@numba.njit(fastmath=True)
def _tangent_forward(Pr, Qr, dPk, dQk, f, tape, tangents, dy):
    """The forward's tangent along (dP, dQ) by the product rule, line by line, into `tangents` (dS, dM, dA, dAS,
    db, dx, dv, dh, du) and dy. The data has no tangent, nor has any layer below f."""
    S, M, A, AS, b, x, v, h, u, _, _, _ = tape
    dS, dM, dA, dAS, db, dx, dv, dh, du = tangents
    L, d, n = S.shape[0], S.shape[1], dy.shape[0]
    for l in range(f, L):
        _acc_pv(dQk[l], x[l], du[l])  # y += b . u, u = Q x
        _acc_pv(Qr[l], dx[l], du[l])
        for i in range(d):
            for e in range(n):
                dy[e] += db[l, i, e] * u[l, i, e] + b[l, i, e] * du[l, i, e]
        if l + 1 == L:
            break
        _layer_matrix_tangent(Pr[l], dPk[l], S[l], dS[l], M[l], Qr[l], dQk[l], dM[l], dA[l])
        _acc_pv(dQk[l].T, b[l], dv[l])  # h = b + S v, v = Q^T b
        _acc_pv(Qr[l].T, db[l], dv[l])
        _acc_mv(dS[l], v[l], dh[l])
        _acc_mv(S[l], dv[l], dh[l])
        for i in range(d):
            for e in range(n):
                dh[l, i, e] += db[l, i, e]
        _acc_mv(dA[l], h[l], db[l + 1])  # b_{l+1} = A h, x_{l+1} = A x, S_{l+1} = A S A^T
        _acc_mv(A[l], dh[l], db[l + 1])
        _acc_mv(dA[l], x[l], dx[l + 1])
        _acc_mv(A[l], dx[l], dx[l + 1])
        if l + 2 < L:
            _congruence_tangent(A[l], dA[l], S[l], dS[l], AS[l], dAS[l], dS[l + 1])


@numba.njit(fastmath=True)
def _tangent_backward(Pr, Qr, dPk, dQk, f, tape, adjoints, tangents, gy, dgy, H):
    """The backward's tangent, layer by layer down to f (the rows below it are not computed): the Hessian-vector
    product's (P, Q) parts added into H (L, 2, d, d)."""
    S, M, A, AS, b, x, v, h, u, _, _, _ = tape
    L, d, n = S.shape[0], S.shape[1], gy.shape[0]
    dtype = S.dtype
    db, dx, du = tangents[4], tangents[5], tangents[8]
    d_b_bar = np.zeros((d, n), dtype)  # the tangents of the adjoints of b, x, S entering the layer
    d_x_bar = np.zeros((d, n), dtype)
    d_S_bar = np.zeros((d, d, n), dtype)
    u_bar = np.zeros((d, n), dtype)
    d_u_bar = np.zeros((d, n), dtype)
    for l in range(L - 1, f - 1, -1):
        if l + 1 < L:
            _tangent_layer_adjoints(Pr, Qr, dPk, dQk, f, l, tape, adjoints, tangents, d_b_bar, d_x_bar, d_S_bar, H)
        # y-term: d_b_bar += dgy u + gy du; d_u_bar = dgy b + gy db; dQ_bar += d_u_bar x^T + u_bar dx^T;
        # d_x_bar += dQ^T u_bar + Q^T d_u_bar
        for i in range(d):
            for e in range(n):
                u_bar[i, e] = gy[e] * b[l, i, e]
                d_u_bar[i, e] = dgy[e] * b[l, i, e] + gy[e] * db[l, i, e]
        _reduce_outer(d_u_bar, x[l], H[l, 1])
        _reduce_outer(u_bar, dx[l], H[l, 1])
        if l > f:
            for i in range(d):
                for e in range(n):
                    d_b_bar[i, e] += dgy[e] * u[l, i, e] + gy[e] * du[l, i, e]
            _acc_pv(dQk[l].T, u_bar, d_x_bar)
            _acc_pv(Qr[l].T, d_u_bar, d_x_bar)


@numba.njit(fastmath=True)
def _tangent_layer_adjoints(Pr, Qr, dPk, dQk, f, l, tape, adjoints, tangents, d_b_bar, d_x_bar, d_S_bar, H):
    """One layer l < L - 1 of the tangent backward: the tangents of A_bar, h_bar, v_bar, M_bar by the product rule,
    the (P, Q) parts into H, and (above layer f) the tangents of the adjoints leaving the layer, in place."""
    S, M, A, AS, b, x, v, h, u, _, _, _ = tape
    b_bar_in, x_bar_in, S_bar_in, A_bar, T, h_bar, v_bar, M_bar = adjoints
    dS, dM, dA, dAS, db, dx, dv, dh, du = tangents
    d, n = d_b_bar.shape
    dtype = d_b_bar.dtype
    d_A_bar = np.zeros((d, d, n), dtype)
    _acc_outer(d_b_bar, h[l], d_A_bar)
    _acc_outer(b_bar_in[l], dh[l], d_A_bar)
    _acc_outer(d_x_bar, x[l], d_A_bar)
    _acc_outer(x_bar_in[l], dx[l], d_A_bar)
    d_h_bar = np.zeros((d, n), dtype)
    _acc_mtv(dA[l], b_bar_in[l], d_h_bar)
    _acc_mtv(A[l], d_b_bar, d_h_bar)
    d_x_bar_new = np.zeros((d, n), dtype)
    d_S_bar_new = np.zeros((d, d, n), dtype)
    if l > f:
        _acc_mtv(dA[l], x_bar_in[l], d_x_bar_new)
        _acc_mtv(A[l], d_x_bar, d_x_bar_new)
    if l + 2 < S.shape[0]:
        d_T = np.zeros((d, d, n), dtype)
        for i in range(d):
            for j in range(d):
                for e in range(n):
                    d_T[i, j, e] = d_S_bar[i, j, e] + d_S_bar[j, i, e]
        _acc_mm(d_T, AS[l], d_A_bar)
        _acc_mm(T[l], dAS[l], d_A_bar)
        if l > f:  # d(A^T S_bar A) = dA^T S_bar A + A^T dS_bar A + A^T S_bar dA
            tmp = np.zeros((d, d, n), dtype)
            _acc_mtm(dA[l], S_bar_in[l], tmp)
            _acc_mtm(A[l], d_S_bar, tmp)
            _acc_mm(tmp, A[l], d_S_bar_new)
            tmp[:] = 0
            _acc_mtm(A[l], S_bar_in[l], tmp)
            _acc_mm(tmp, dA[l], d_S_bar_new)
    d_v_bar = np.zeros((d, n), dtype)
    _acc_mv(dS[l], h_bar[l], d_v_bar)
    _acc_mv(S[l], d_h_bar, d_v_bar)
    _reduce_outer(db[l], v_bar[l], H[l, 1])
    _reduce_outer(b[l], d_v_bar, H[l, 1])
    d_M_bar = np.zeros((d, d, n), dtype)
    _acc_mp(d_A_bar, Qr[l].T, d_M_bar)
    _acc_mp(A_bar[l], dQk[l].T, d_M_bar)
    _reduce_mtm(dM[l], A_bar[l], H[l, 1])
    _reduce_mtm(M[l], d_A_bar, H[l, 1])
    _reduce_mm(d_M_bar, S[l], H[l, 0])
    _reduce_mm(M_bar[l], dS[l], H[l, 0])
    if l > f:
        _acc_outer(d_h_bar, v[l], d_S_bar_new)
        _acc_outer(h_bar[l], dv[l], d_S_bar_new)
        _acc_pm(dPk[l].T, M_bar[l], d_S_bar_new)
        _acc_pm(Pr[l].T, d_M_bar, d_S_bar_new)
        d_b_bar_new = np.zeros((d, n), dtype)
        _acc_pv(dQk[l], v_bar[l], d_b_bar_new)
        _acc_pv(Qr[l], d_v_bar, d_b_bar_new)
        for i in range(d):
            for e in range(n):
                d_b_bar_new[i, e] += d_h_bar[i, e]
        d_b_bar[:] = d_b_bar_new
        d_x_bar[:] = d_x_bar_new
        d_S_bar[:] = d_S_bar_new


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
    # (a writeable C-ordered copy whatever the number of runs: a read-only array, which broadcast_to gives for one
    # run, or an F-ordered one is another signature to numba, compiled again for ~25 s)
    _fused_hvp(P, Q, G.astype(dtype, copy=False), z.astype(dtype, copy=False), target.astype(dtype, copy=False),
               np.zeros(runs, np.int64), blocks, dP.reshape(runs, K, *dP.shape[1:]),
               dQ.reshape(runs, K, *dQ.shape[1:]), np.array(np.broadcast_to(first, (runs, K)), order="C"), parts)
    out = _to_factors(parts.sum(1), factors)
    if factors is not None:
        G_Q = _run(theta.detach(), arch, stats, np.zeros(runs, np.int64), True)[1][:, None, :, 1]  # dL/dQ
        dW_Q, dW_K = (f.reshape(runs, K, L, d, d) for f in dfactors)
        extra = np.stack([np.zeros_like(dW_Q), dW_K @ G_Q, dW_Q @ G_Q.swapaxes(-1, -2)], axis=-3)
        out = out + extra.reshape(runs, K, p)
    return torch.from_numpy(out)
