"""Per-example products in the engine's layout (k, k, examples), examples innermost: every innermost loop is a
vectorised pass over a block of examples. P, Q: a run's matrix, shared by its examples. The plain products overwrite
their output; the _acc_* family adds to it (the tangent pass of sparse_hvp and full)."""

import numba


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
