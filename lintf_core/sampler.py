"""The direct sampler of prompts' statistics: what a linear-attention model sees of a batch of fresh prompts (G, the
query token and the target: data.PromptStatistics), formed in compiled code from bulk random numbers instead of
drawing every prompt. The same law as data.prompt_statistics(stream.sample(B)), another random stream (tests:
tests/test_engine.py, moments and laws)."""

import numba
import numpy as np
import torch

from .data import PromptStatistics, prompt_statistics, stack_statistics

# Spare (normal, uniform) pairs per batch for the Bartlett chi-squares' rejected candidates: a fixed number plus a
# fraction of the candidates (a few percent are rejected at the settings' sizes)
SPARE_PAIRS, SPARE_FRACTION = 64, 0.05


def sample_statistics(streams, batch_size):
    """One batch of `batch_size` fresh prompts from each stream, as PromptStatistics with a leading stream axis:
    what a linear-attention model sees of them, drawn directly where the law allows it (the same law as
    prompt_statistics(stream.sample(batch_size)), another random stream). Gaussian covariates and a linear target:
    N S ~ Wishart(N, I_d) by the Bartlett decomposition, N S = A A^T with A lower triangular, A_ii^2 ~ chi^2(N - i)
    (i = 0..d-1) and A_ij ~ N(0, 1) below the diagonal: d(d+1)/2 numbers per prompt instead of N d. With w and the
    query covariate ~ N(0, I_d): b = S w and c = w^T S w, as y_i = <w, x_i>, and the target <w, x_query>. Spherical
    and heavy-tailed covariates: each prompt's covariates g/|g| (times sqrt(s), s ~ Gamma) are formed and only S, b, c
    and the query kept. Nonlinear targets: the prompts are drawn and their statistics computed.
    The normals come in bulk from each stream's torch generator (its vectorised sampler is the fastest here), the
    uniforms and Gamma scales from its numpy generator, in float32; compiled code then draws the chi-squares from
    those numbers (Marsaglia and Tsang's method, faster than numpy's Gamma) and forms the statistics
    (gaussian_statistics, radial_statistics)."""
    s = streams[0].setting
    if s.target != "linear" or (s.covariates == "normal" and s.n_context < s.d):
        return stack_statistics([prompt_statistics(stream.sample(batch_size)) for stream in streams])
    d, N, D = s.d, s.n_context, len(streams)
    G, z_query = np.empty((D, d + 1, d + 1, batch_size), np.float32), np.empty((D, d + 1, batch_size), np.float32)
    target = np.empty((D, batch_size), np.float32)
    if s.covariates == "normal":
        # per prompt: w, the query x, A's entries below the diagonal and one candidate normal and uniform per
        # chi-square; then spare pairs for the rejected candidates (gaussian_statistics), as extra rows
        per_prompt = 3 * d + d * (d - 1) // 2
        spares = SPARE_PAIRS + int(SPARE_FRACTION * batch_size * d)
        normals = np.empty((D, batch_size + -(-spares // per_prompt), per_prompt), np.float32)
        uniforms = np.empty((D, batch_size + -(-spares // d), d), np.float32)
        for i, stream in enumerate(streams):
            torch.from_numpy(normals[i]).normal_(generator=stream.generator)
            stream.np_rng.random(out=uniforms[i], dtype=np.float32)
        chi2 = np.empty((D, d, batch_size))
        missing = gaussian_statistics(normals, uniforms, N, chi2, G, z_query, target, True)
        for i in np.flatnonzero(missing):  # a batch's spares ran out (not seen at the settings' sizes): numpy's Gamma
            j, e = np.nonzero(np.isnan(chi2[i]))
            chi2[i, j, e] = 2 * streams[i].np_rng.standard_gamma((N - j) / 2)
            one = slice(i, i + 1)
            gaussian_statistics(normals[one], uniforms[one], N, chi2[one], G[one], z_query[one], target[one],
                                     False)
    else:
        normals = np.empty((D, batch_size, (N + 2) * d), np.float32)
        for i, stream in enumerate(streams):
            torch.from_numpy(normals[i]).normal_(generator=stream.generator)
        radii_squared = np.ones((D, batch_size, N + 1), np.float32)
        if s.covariates == "gamma":
            for i, stream in enumerate(streams):
                stream.np_rng.standard_gamma(s.gamma_shape, out=radii_squared[i], dtype=np.float32)
            radii_squared *= np.float32(s.gamma_scale)
        radial_statistics(normals, radii_squared, N, G, z_query, target)
    return PromptStatistics(torch.from_numpy(G), torch.from_numpy(z_query), torch.from_numpy(target))


# Prompts per block of _gaussian_batch and _radial_batch: a block's numbers, transposed, stay in L1.
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
