"""A fast path for the token-level attention variants of Fig. 7 (softmax, and the poster's Gaussian kernel), in the
authors' sparse parametrization, tested against model.predict_tokens (tests/test_tokens.py: losses and
gradients in float64).

A fused forward + hand-derived backward, compiled by numba like sparse.py: tokens are a block of prompts' (n+1) x
(d+1) matrices with the examples innermost, so every token-by-token product is a vectorised loop over the block.
Per layer, with z_i = [x_i; y_i] (i <= n, the query last) and the sparse P_full = [[P, 0], [0, 1]]:
    scores  softmax   s_ji = x_i . (Q x_j),  a_ji = softmax_i(s_ji) over all n+1 keys
            gaussian  a_ji = exp(-|W_Q x_j - W_K x_i|^2 / (2 sqrt d))
    w_j     = sum_{i<n} a_ji z_i                        (the mask M drops the query as a key)
    z_j    += [P w_j[:d]; w_j[d]] / n
The last layer forms only the query's row, the only one the prediction -z_{n+1}[d] reads.
"""

import math

import numba
import numpy as np
import torch

from ..data import input_matrix


def supports(arch):
    """Whether this kernel computes the architecture exactly."""
    return (arch.parametrization == "sparse" and not arch.mlp_hidden
            and ((arch.attention == "softmax" and arch.query_key == "single")
                 or (arch.attention == "gaussian" and arch.query_key == "separate")))


BLOCK = 64  # examples per block: a block's stored scores and tokens (~0.3 MB) stay in L2


@numba.njit(parallel=True, cache=True)
def _fused(params, Z, target, run_data, gaussian, want_grad, per_prompt, grad_parts):
    """Per run r and prompt e of data batch run_data[r]: the squared error into per_prompt[r, e] and, if want_grad,
    the batch-mean loss's gradient, partial sums per block into grad_parts[r, block, layer, matrix, d, d].
    params (runs, L, 2 or 3, d, d): (P, Q) or (P, W_Q, W_K). Z (batches, n+1, d+1, B): tokens, examples last."""
    n_blocks = (Z.shape[-1] + BLOCK - 1) // BLOCK
    for task in numba.prange(params.shape[0] * n_blocks):
        _block(params, Z, target, run_data, gaussian, want_grad, per_prompt, grad_parts, task // n_blocks,
               task % n_blocks)


@numba.njit(fastmath=True, cache=True)
def _block(params, Z, target, run_data, gaussian, want_grad, per_prompt, grad_parts, r, blk):
    """The driver of one (run, block) pair: the forward, the squared errors, and the backward if want_grad."""
    L, d = params.shape[1], params.shape[3]
    T, B = Z.shape[1], Z.shape[-1]  # T = n + 1 tokens
    n = T - 1
    dtype = params.dtype
    lo = blk * BLOCK
    E = min(BLOCK, B - lo)
    data = run_data[r]
    constants = np.empty(4, dtype)  # in the parameters' precision, so float32 math stays float32
    constants[0], constants[1], constants[2] = 1.0 / (2.0 * np.sqrt(d)), 1.0 / n, -2.0 / B
    constants[3] = -2.0 * constants[0]
    tape = _tokens_forward(params, Z, gaussian, r, data, lo, E, constants)
    X = tape[0]
    gX = np.zeros((T, d + 1, E), dtype)  # adjoint of the current layer's output tokens
    for e in range(E):
        residual = -X[L, n, d, e] - target[data, lo + e]
        per_prompt[r, lo + e] = residual * residual
        gX[n, d, e] = constants[2] * residual  # d loss / d z_{n+1}[d]: the prediction is its negative
    if not want_grad:
        return
    _tokens_backward(params, gaussian, r, tape, gX, constants, grad_parts[r, blk])


@numba.njit(fastmath=True)
def _tokens_forward(params, Z, gaussian, r, data, lo, E, constants):
    """The layers of the module docstring for run r on prompts lo .. lo + E of data batch `data`, keeping each
    layer's input tokens X[l], scores a[l], key-side features f[l] (Q x or W_K x), query-side features g[l] (W_Q x;
    softmax: unused) and attention-weighted sums w[l]. Returns (X, a, f, g, w)."""
    L, d = params.shape[1], params.shape[3]
    T = Z.shape[1]
    n = T - 1
    dtype = params.dtype
    scale, inv_n = constants[0], constants[1]
    X = np.empty((L + 1, T, d + 1, E), dtype)
    a = np.empty((L, T, T, E), dtype)
    f = np.empty((L, T, d, E), dtype)
    g = np.empty((L, T, d, E), dtype)
    w = np.empty((L, T, d + 1, E), dtype)
    peak, total = np.empty(E, dtype), np.empty(E, dtype)  # the softmax's row maximum and sum
    bits = np.empty(E, np.int32)
    for t in range(T):
        for c in range(d + 1):
            for e in range(E):
                X[0, t, c, e] = Z[data, t, c, lo + e]
    for l in range(L):
        first = n if l == L - 1 else 0  # rows formed: the last layer needs only the query's
        P = params[r, l, 0]
        _features(params[r, l, 1], X[l], f[l], first)  # softmax: Q x_t;  gaussian: W_Q x_t (rows formed only)
        if gaussian:
            _features(params[r, l, 2], X[l], g[l], 0)  # W_K x_t (the keys)
        for j in range(first, T):
            _scores(X[l], f[l], g[l], a[l, j], j, gaussian, scale, peak, total, bits)
            for c in range(d + 1):
                for e in range(E):
                    w[l, j, c, e] = 0
            for i in range(n):
                for c in range(d + 1):
                    for e in range(E):
                        w[l, j, c, e] += a[l, j, i, e] * X[l, i, c, e]
            for c in range(d):
                for e in range(E):
                    X[l + 1, j, c, e] = X[l, j, c, e]
                for k in range(d):
                    for e in range(E):
                        X[l + 1, j, c, e] += P[c, k] * w[l, j, k, e] * inv_n
            for e in range(E):
                X[l + 1, j, d, e] = X[l, j, d, e] + w[l, j, d, e] * inv_n
    return X, a, f, g, w


@numba.njit(fastmath=True)
def _scores(X, f, g, a, j, gaussian, scale, peak, total, bits):
    """Query token j's attention weights a[i] over the keys i, in one layer (X its tokens, f and g its features)."""
    T, d, E = X.shape[0], f.shape[1], X.shape[2]
    n = T - 1
    if gaussian:  # a_ji = exp(-|q_j - k_i|^2 scale), keys i < n only (the query is masked)
        for i in range(n):
            for e in range(E):
                a[i, e] = 0
            for k in range(d):
                for e in range(E):
                    diff = f[j, k, e] - g[i, k, e]
                    a[i, e] += diff * diff
            for e in range(E):
                a[i, e] = -a[i, e] * scale
            _exp(a[i], bits)
    else:  # a_ji = softmax_i(x_i . Q x_j) over all T keys
        for i in range(T):
            for e in range(E):
                a[i, e] = 0
            for k in range(d):
                for e in range(E):
                    a[i, e] += X[i, k, e] * f[j, k, e]
        for e in range(E):
            peak[e] = a[0, e]
            total[e] = 0
        for i in range(1, T):
            for e in range(E):
                peak[e] = max(peak[e], a[i, e])
        for i in range(T):
            for e in range(E):
                a[i, e] = a[i, e] - peak[e]
            _exp(a[i], bits)
            for e in range(E):
                total[e] += a[i, e]
        for i in range(T):
            for e in range(E):
                a[i, e] /= total[e]


@numba.njit(fastmath=True)
def _tokens_backward(params, gaussian, r, tape, gX, constants, grad_parts):
    """Reverse mode through _tokens_forward's lines from gX, the adjoint of the last layer's output tokens: the
    gradient's parts added into grad_parts[layer, {P, Q or W_Q, W_K}]."""
    X, a, f, g, w = tape
    L, d = params.shape[1], params.shape[3]
    T, E = X.shape[1], X.shape[3]
    n = T - 1
    dtype = params.dtype
    inv_n, minus_2scale = constants[1], constants[3]
    gw = np.empty((T, d + 1, E), dtype)
    ga = np.empty((T, E), dtype)
    gf = np.zeros((T, d, E), dtype)
    gg = np.zeros((T, d, E), dtype)
    rowsum = np.empty(E, dtype)
    for l in range(L - 1, -1, -1):
        first = n if l == L - 1 else 0
        P = params[r, l, 0]
        grads = grad_parts[l]
        for j in range(T):
            for k in range(d):
                for e in range(E):
                    gf[j, k, e] = 0
                    gg[j, k, e] = 0
        # z_j += [P w_j[:d]; w_j[d]] / n:  gw_j = [P^T gz_j[:d]; gz_j[d]] / n,  gP += gz_j[:d] w_j[:d]^T / n;
        # the residual passes gX on unchanged
        for j in range(first, T):
            for k in range(d):
                for e in range(E):
                    gw[j, k, e] = 0
                for c in range(d):
                    for e in range(E):
                        gw[j, k, e] += P[c, k] * gX[j, c, e] * inv_n
            for e in range(E):
                gw[j, d, e] = gX[j, d, e] * inv_n
            for c in range(d):
                for k in range(d):
                    s = 0.0
                    for e in range(E):
                        s += gX[j, c, e] * w[l, j, k, e]
                    grads[0, c, k] += s * inv_n
        # w_j = sum_{i<n} a_ji z_i:  ga_ji = gw_j . z_i,  gz_i += a_ji gw_j; then through the scores
        for j in range(first, T):
            for i in range(n):
                for e in range(E):
                    ga[i, e] = 0
                for c in range(d + 1):
                    for e in range(E):
                        ga[i, e] += gw[j, c, e] * X[l, i, c, e]
                if l > 0:
                    for c in range(d + 1):
                        for e in range(E):
                            gX[i, c, e] += a[l, j, i, e] * gw[j, c, e]
            if gaussian:  # a_ji = exp(-|q_j - k_i|^2 scale): gq_j += 2 u (q_j - k_i), gk_i -= the same
                for i in range(n):
                    for e in range(E):
                        ga[i, e] *= minus_2scale * a[l, j, i, e]
                    for k in range(d):
                        for e in range(E):
                            diff = ga[i, e] * (f[l, j, k, e] - g[l, i, k, e])
                            gf[j, k, e] += diff
                            gg[i, k, e] -= diff
            else:  # softmax: gs_ji = a_ji (ga_ji - sum_i' a_ji' ga_ji'), ga_jn = 0 (masked); s_ji = x_i . f_j
                for e in range(E):
                    rowsum[e] = 0
                for i in range(n):
                    for e in range(E):
                        rowsum[e] += a[l, j, i, e] * ga[i, e]
                for i in range(T):
                    for e in range(E):
                        gs = a[l, j, i, e] * ((ga[i, e] if i < n else 0.0) - rowsum[e])
                        ga[i, e] = gs  # ga now holds gs (ga[n] is written last)
                    for k in range(d):
                        for e in range(E):
                            gf[j, k, e] += ga[i, e] * X[l, i, k, e]
                            if l > 0:
                                gX[i, k, e] += ga[i, e] * f[l, j, k, e]
        # features f = M1 x (Q or W_Q), g = W_K x:  gM += gf x^T, gx += M^T gf
        _feature_grads(params[r, l, 1], X[l], gf, grads[1], gX, l > 0, first)
        if gaussian:
            _feature_grads(params[r, l, 2], X[l], gg, grads[2], gX, l > 0, 0)


# float32 constants of _exp_inplace (numba freezes globals with their type: float32 math stays float32)
_LOG2E, _LN2_HI, _LN2_LO = np.float32(1.4426950408889634), np.float32(0.693359375), np.float32(-2.12194440e-4)
_FLOOR, _HALF = np.float32(-87.0), np.float32(0.5)
_C = [np.float32(1 / math.factorial(i)) for i in range(8)]
_C2, _C3, _C4, _C5, _C6, _C7 = _C[2:]


@numba.njit(fastmath=True, cache=True)
def _exp_inplace(v, bits):
    """v <- exp(v) for a row of float32 values <= 0, in arithmetic that vectorises (numba's np.exp is a scalar
    libm call, where the forward spent most of its time): x = k ln 2 + f, |f| <= ln(2)/2, exp(f) by its Taylor
    series to f^7 (relative error < 1e-8, below float32's), 2^k built in the exponent bits. x is clamped at -87:
    exp(-87) ~ 2e-38 is nothing beside the weights it sits with. bits: an int32 scratch row as long as v."""
    scale = bits.view(np.float32)
    for e in range(v.shape[0]):
        x = max(v[e], _FLOOR)
        k = np.floor(x * _LOG2E + _HALF)
        f = (x - k * _LN2_HI) - k * _LN2_LO
        v[e] = np.float32(1) + f * (np.float32(1) + f * (_C2 + f * (_C3 + f * (_C4 + f * (_C5 + f * (_C6 + f * _C7))))))
        bits[e] = (np.int32(k) + np.int32(127)) << np.int32(23)
    for e in range(v.shape[0]):
        v[e] *= scale[e]


@numba.njit(fastmath=True, cache=True)
def _exp(v, bits):
    """v <- exp(v), v <= 0: the vectorised float32 version, or numpy's (float64, the tests' precision)."""
    if v.itemsize == 4:
        _exp_inplace(v, bits)
    else:
        for e in range(v.shape[0]):
            v[e] = np.exp(v[e])


@numba.njit(fastmath=True, cache=True)
def _features(M, X, out, first):  # out[t, i, :] = sum_k M[i, k] X[t, k, :] (the covariates only)
    T, d, E = out.shape
    for t in range(first, T):
        for i in range(d):
            for e in range(E):
                out[t, i, e] = 0
            for k in range(d):
                for e in range(E):
                    out[t, i, e] += M[i, k] * X[t, k, e]


@numba.njit(fastmath=True, cache=True)
def _feature_grads(M, X, gout, gM, gX, want_x, first):  # out = M x per token (rows first..): gM += sum gout x^T,
    T, d, E = gout.shape                                  # gX += M^T gout
    for t in range(first, T):
        for i in range(d):
            for k in range(d):
                s = 0.0
                for e in range(E):
                    s += gout[t, i, e] * X[t, k, e]
                gM[i, k] += s
        if want_x:
            for k in range(d):
                for i in range(d):
                    for e in range(E):
                        gX[t, k, e] += M[i, k] * gout[t, i, e]


def tokens(prompts):
    """The kernel's input of a batch of Prompts (..., B, N, d): tokens (batches, n+1, d+1, B), targets (batches, B)."""
    Z = input_matrix(prompts)  # (..., B, d+1, n+1)
    Z = Z.reshape(-1, *Z.shape[-3:]).permute(0, 3, 2, 1)
    target = prompts.y_query.reshape(-1, Z.shape[-1])
    return np.ascontiguousarray(Z.numpy()), np.ascontiguousarray(target.numpy())


def _run(theta, arch, prompts, run_data, want_grad):
    runs, L, d = theta.shape[0], arch.n_layers, arch.d
    Z, target = tokens(prompts)
    if run_data is None:
        run_data = np.zeros(runs, np.int64) if Z.shape[0] == 1 else np.arange(runs)
    run_data = np.asarray(run_data, dtype=np.int64)
    m = arch.matrices_per_layer
    params = np.ascontiguousarray(theta.detach().numpy().reshape(runs, L, m, d, d))
    dtype = params.dtype
    B = Z.shape[-1]
    n_blocks = (B + BLOCK - 1) // BLOCK
    per_prompt = np.empty((runs, B), dtype)
    grad_parts = np.zeros((runs, n_blocks if want_grad else 1, L, m, d, d), dtype)
    _fused(params, Z.astype(dtype, copy=False), target.astype(dtype, copy=False), run_data,
           arch.attention == "gaussian", want_grad, per_prompt, grad_parts)
    return per_prompt, grad_parts.sum(1).reshape(runs, -1)


def per_prompt_loss(theta, arch, prompts, run_data=None):
    """(runs, B) squared errors, as model.per_prompt_loss. prompts: Prompts with a leading data-batch axis (or
    none); run_data[r]: the batch run r is evaluated on (default: batch r, or the one batch for all)."""
    per_prompt, _ = _run(theta, arch, prompts, run_data, False)
    return torch.from_numpy(per_prompt)


def loss_and_grad(theta, arch, prompts, run_data=None):
    """Per-run mean loss (runs,) and gradient (runs, n_params), as model.loss_and_grad."""
    per_prompt, grad = _run(theta, arch, prompts, run_data, True)
    return torch.from_numpy(per_prompt.mean(1)), torch.from_numpy(grad)
