"""Fig. 15's learned pre-layer x -> W2 relu(W1 x + b1) + b2 on every token's covariate, compiled in the kernels'
layout (tokens, d, examples): its forward, its gradient (reverse mode) and the two derivatives the Hessian-vector
products need (the covariates' tangent, and the tangent of the gradient), all derived by hand."""

import numba
import numpy as np


# ---- Fig. 15's learned pre-layer x -> W2 relu(W1 x + b1) + b2, and its derivatives, in the kernels' layout ----------
# Covariates X (S, N + 1, d, B) (the query last; run r reads X[run_data[r]]), mapped covariates and their adjoints
# (runs, N + 1, d, B): examples innermost, so every line below is a vectorised pass over a block of examples
# [lo, lo + n) that stays in L1. One task per (run, token); each writes its own partial sums, added up in float64 by
# the caller. Compiled because as torch operations the pre-layer dominated Fig. 15's training step and Hessians.
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


def _split_pre_layer(flat, arch):
    """The pre-layer's (W1 (.., h, d), b1 (.., h), W2 (.., d, h), b2 (.., d)) from its flat parameters (.., n), in
    model.pre_layer's order, each part contiguous."""
    h, d = arch.mlp_hidden, arch.d
    ends = np.cumsum([h * d, h, d * h])
    W1, b1, W2, b2 = np.split(flat, ends, axis=-1)
    return (np.ascontiguousarray(W1.reshape(*W1.shape[:-1], h, d)), np.ascontiguousarray(b1),
            np.ascontiguousarray(W2.reshape(*W2.shape[:-1], d, h)), np.ascontiguousarray(b2))
