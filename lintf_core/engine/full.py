"""Fig. 15's model (a learned pre-layer, then full (d+1) x (d+1) P and Q): each prompt's statistics of the mapped
tokens and the attention layers fused (_fused_full), and its Hessian-vector products by the same forward-over-reverse
(_fused_full_hvp), over the same forward and backward (_full_forward, _full_backward). The pre-layer and its
derivatives are pre_layer.py's."""

import numba
import numpy as np
import torch

from ..data import stack_prompts
from ..model import attention_matrices
from .pre_layer import _pre_layer_backward, _pre_layer_forward, _pre_layer_tangent, _pre_layer_tangent_grad, \
    _split_pre_layer
from .products import _acc_mm, _acc_mp, _acc_mtm, _acc_mtv, _acc_mv, _acc_outer, _acc_pm, _congruence_adjoint, \
    _congruence_tangent, _layer_matrix_tangent, _mm, _mmt, _mp, _mtv, _mv, _pm, _reduce_mm, _reduce_mtm
from .sparse import block_size


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
    d, B = k - 1, xs.shape[-1]
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
    """The driver of one (run, block) pair: _full_forward and _full_backward once, then per direction the tangent
    forward, the tangent backward and the tangent of the covariates' adjoints."""
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
    tangents = (np.zeros((L, k, k, n), dtype), np.zeros((L, k, k, n), dtype), np.zeros((L, k, k, n), dtype),
                np.zeros((L, k, k, n), dtype))  # dG, dM, dA, dAG
    dz = np.zeros((L + 1, k, n), dtype)
    dzb = np.zeros((k, n), dtype)
    dGb = np.zeros((k, k, n), dtype)
    dT = np.zeros((k, k, n), dtype)
    for c in range(K):
        dPc, dQc, dx = dP[r, c], dQ[r, c], dxs[r, c]
        for arr in tangents:
            arr[:] = 0
        dz[:] = 0
        _full_tangent_forward(Pr, Qr, dPc, dQc, dx, moves, xs, y, r, lo, (G, M, A, AG, z), tangents, dz)
        dzb[:] = 0
        for e in range(n):
            dzb[d, e] = 2 * dz[L, d, e] / B
        dGb[:] = 0
        _full_tangent_backward(Pr, Qr, dPc, dQc, (G, M, A, AG, z), (zb_in, Gb_in, Ab, Mb, AtGb, T), tangents, dz,
                               dzb, dGb, dT, hvp_parts[r, blk, c])
        # the covariates' adjoints' tangents: d[(1/N) (G_bar + G_bar^T) z_t] = the same map of dG_bar, plus
        # (1/N) (G_bar + G_bar^T) dz_t; the query's dz_bar
        _covariate_adjoints(dGb, dzb, xs, y, r, lo, dT, dxs_bar[r, c])
        if moves:
            for t in range(N):
                for i in range(d):
                    for j in range(d):
                        for e in range(n):
                            dxs_bar[r, c, t, i, lo + e] += T0[i, j, e] * dx[t, j, lo + e]


@numba.njit(fastmath=True)
def _full_tangent_forward(Pr, Qr, dPc, dQc, dx, moves, xs, y, r, lo, kept, tangents, dz):
    """_full_forward's tangent along (dP, dQ) and the mapped covariates' tangent dx (moves=False: none), by the
    product rule: dG_0 = (1/N) sum_t (dz_t z_t^T + z_t dz_t^T) with dz_t = [dx_t; 0], then layer by layer."""
    G, M, A, AG, z = kept
    dG, dM, dA, dAG = tangents
    L, k, n = G.shape[0], G.shape[1], G.shape[3]
    N, d = y.shape[1], k - 1
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


@numba.njit(fastmath=True)
def _full_tangent_backward(Pr, Qr, dPc, dQc, kept, adjoints, tangents, dz, dzb, dGb, dT, H):
    """_full_backward's tangent, line by line, from the tangent dzb of z_L's adjoint: the Hessian-vector product's
    attention parts added into H (L, 2, k, k); leaves the tangents of G_0's and z_0's adjoints in dGb and dzb (dT
    is scratch)."""
    G, M, A, AG, z = kept
    zb_in, Gb_in, Ab, Mb, AtGb, T = adjoints
    dG, dM, dA, dAG = tangents
    L, k, n = G.shape[0], G.shape[1], G.shape[3]
    dtype = G.dtype
    dzb_new = np.zeros((k, n), dtype)
    dGb_new = np.zeros((k, k, n), dtype)
    dAb = np.zeros((k, k, n), dtype)
    dMb = np.zeros((k, k, n), dtype)
    tmp = np.zeros((k, k, n), dtype)
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
