"""The poster's model (Song, Han, Zhang, Ding, Hong): one layer of multi-head self-attention for sequence regression,
trained by full-batch gradient descent, batched over runs like the rest of the engine.

    MH(W^Q, W^K, W^V; X) = [head_1 ... head_H] W^O,   head_h = S_h X W^V_h,   X in R^{n x D}, W^*_h in R^{D x d}
    softmax kernel  (Eq. 1-2): S_h = row-softmax(X W^Q_h (X W^K_h)^T / sqrt(d))
    Gaussian kernel (Eq. 3-4): (S_h)_kj = exp(-|X_k W^Q_h - X_j W^K_h|^2 / (2 sqrt(d)))   (no normalization)
    objective       (Eq. 5):   f = 1/2 sum_i |MH(X_i) - y_i|^2,   y_i in R^n

W^O in R^{Hd x 1} maps each token's concatenated heads to its scalar label; the theorems train M = (W^Q, W^K, W^V)
(Theorem 1) or W^Q alone (Theorem 2) and keep W^O fixed, as here. Parameters of R runs: a dict of tensors with a
leading run axis, "query", "key", "value": (R, H, D, d) and "out": (R, H*d).
"""

from dataclasses import dataclass

import torch

from .errors import check_choice, check_positive

KERNELS = ("softmax", "gaussian")
TRAINED = ("all", "query")  # Theorem 1: W^Q, W^K, W^V; Theorem 2: W^Q only
MATRICES = ("query", "key", "value")


@dataclass(frozen=True)
class Regression:
    """A synthetic data set of the poster's problem: N sequences X_i (n x D) with labels y_i (n,)."""

    X: torch.Tensor  # (N, n, D)
    y: torch.Tensor  # (N, n)


def synthetic_regression(N, n, D, seed=0):
    """X_i with i.i.d. N(0, 1/D) entries (tokens of norm about 1) and arbitrary labels y_i ~ N(0, I_n): fitting
    them exactly is the "global optimum, zero loss" of the theorems, possible only with enough parameters."""
    for name, value in (("N", N), ("n", n), ("D", D)):
        check_positive(name, value, integer=True)
    generator = torch.Generator().manual_seed(seed)
    X = torch.randn(N, n, D, generator=generator) / D**0.5
    y = torch.randn(N, n, generator=generator)
    return Regression(X=X, y=y)


def init_params(runs_seeds, heads, D, d, scale=1.0):
    """Every matrix i.i.d. N(0, scale^2 / D) (W^O: N(0, 1 / (H d))), one draw per seed: {name: (R, ...)}."""
    check_positive("heads", heads, integer=True)
    check_positive("d", d, integer=True)
    params = {name: [] for name in (*MATRICES, "out")}
    for seed in runs_seeds:
        generator = torch.Generator().manual_seed(int(seed))
        for name in MATRICES:
            params[name].append(torch.randn(heads, D, d, generator=generator) * scale / D**0.5)
        params["out"].append(torch.randn(heads * d, generator=generator) / (heads * d) ** 0.5)
    return {name: torch.stack(values) for name, values in params.items()}


def attention_scores(queries, keys, kernel):
    """S (.., n, n) from per-head queries X W^Q and keys X W^K (.., n, d): row k is token k's weights over tokens j."""
    check_choice("kernel", kernel, KERNELS)
    d = queries.shape[-1]
    if kernel == "softmax":
        return torch.softmax(queries @ keys.transpose(-1, -2) / d**0.5, dim=-1)
    distance2 = ((queries**2).sum(-1, keepdim=True) + (keys**2).sum(-1).unsqueeze(-2)
                 - 2 * queries @ keys.transpose(-1, -2)).clamp_min(0)
    return torch.exp(-distance2 / (2 * d**0.5))


def predict(params, X, kernel):
    """MH(X_i) for every run and sequence: (R, N, n). X: (N, n, D)."""
    Xq = torch.einsum("snd,rhde->rhsne", X, params["query"])  # (R, H, N, n, d)
    Xk = torch.einsum("snd,rhde->rhsne", X, params["key"])
    Xv = torch.einsum("snd,rhde->rhsne", X, params["value"])
    heads = attention_scores(Xq, Xk, kernel) @ Xv  # (R, H, N, n, d)
    R, H, N, n, d = heads.shape
    concatenated = heads.permute(0, 2, 3, 1, 4).reshape(R, N, n, H * d)  # [head_1 ... head_H]
    return (concatenated * params["out"][:, None, None, :]).sum(-1)  # times W^O (H d x 1)


def objective(params, data, kernel):
    """Eq. (5) for every run: 1/2 sum_i |MH(X_i) - y_i|^2, shape (R,)."""
    return 0.5 * ((predict(params, data.X, kernel) - data.y) ** 2).sum((1, 2))


def gradient_descent(params, data, kernel, trained, step_size, n_iters):
    """Full-batch GD on the `trained` matrices ("all": W^Q, W^K, W^V; "query": W^Q only) with a per-run step size
    (R,) or a number. Returns the final parameters and, per iteration t = 0..n_iters, the loss and the norm of the
    gradient of the trained matrices (and of W^Q alone): {"loss", "grad_norm", "query_grad_norm"}: (R, n_iters+1)."""
    check_choice("kernel", kernel, KERNELS)
    check_choice("trained", trained, TRAINED)
    names = MATRICES if trained == "all" else ("query",)
    params = {k: v.clone() for k, v in params.items()}
    runs = params["query"].shape[0]
    eta = torch.as_tensor(step_size, dtype=params["query"].dtype).expand(runs)
    record = {k: torch.empty(runs, n_iters + 1) for k in ("loss", "grad_norm", "query_grad_norm")}
    for t in range(n_iters + 1):
        leaves = {k: params[k].detach().requires_grad_(k in names) for k in params}
        value = objective(leaves, data, kernel)
        grads = torch.autograd.grad(value.sum(), [leaves[k] for k in names])  # runs are independent
        record["loss"][:, t] = value.detach()
        record["grad_norm"][:, t] = torch.sqrt(sum((g**2).flatten(1).sum(1) for g in grads))
        record["query_grad_norm"][:, t] = grads[0].flatten(1).norm(dim=1)
        if t == n_iters:
            break
        for name, g in zip(names, grads):
            params[name] = params[name] - eta.view(-1, *[1] * (g.dim() - 1)) * g
    return params, record


def _flat(params, names):
    return torch.cat([params[k].flatten(1) for k in names], dim=1)


def _unflat(flat, like, names):
    out, start = {}, 0
    for k in names:
        size = like[k][0].numel()
        out[k] = flat[start:start + size].reshape(like[k].shape[1:])
        start += size
    return out


def curvature_step_size(params, data, kernel, trained, fraction=1.0):
    """Per run: fraction / lambda_max, lambda_max the largest |eigenvalue| of the Hessian of f with respect to the
    trained matrices at `params` (the classical 1/L step, with L measured at the initialization). (R,)"""
    names = MATRICES if trained == "all" else ("query",)
    steps = []
    for r in range(params["query"].shape[0]):
        one = {k: v[r] for k, v in params.items()}

        def f(flat):
            merged = {**one, **_unflat(flat, params, names)}
            return objective({k: v[None] for k, v in merged.items()}, data, kernel)[0]

        H = torch.func.hessian(f)(_flat(params, names)[r])
        if not torch.isfinite(H).all():
            raise ValueError(f"params: run {r} is not finite (a diverged run has no step size)")
        steps.append(fraction / torch.linalg.eigvalsh(H).abs().max())
    return torch.stack(steps)


def fitted_rate(losses, floor=1e-12):
    """Per run: rho of f_t ~ C (1 - rho)^t, by least squares on log f_t over the second half of the iterations where
    f_t / f_0 > floor (before the float floor); NaN where fewer than 10 such iterations remain. losses: (R, T+1)."""
    rates = []
    for curve in torch.as_tensor(losses, dtype=torch.float64):
        keep = torch.nonzero((curve / curve[0] > floor) & torch.isfinite(curve)).flatten()
        keep = keep[len(keep) // 2:]
        if len(keep) < 10:
            rates.append(float("nan"))
            continue
        t = keep.double()
        slope = torch.linalg.lstsq(torch.stack([torch.ones_like(t), t], 1), curve[keep].log()[:, None]).solution[1, 0]
        rates.append(float(1 - torch.exp(slope)))
    return torch.tensor(rates, dtype=torch.float64)


# ---- loss landscape (the poster's Figure 3) --------------------------------------------------------------------------

def filter_normalized_direction(matrix, seed):
    """A random direction shaped like `matrix` (H, D, d), each column (one head's output unit, a "filter") rescaled
    to that column's norm in `matrix` (Li et al., 2018), so the landscape's scale follows the weights'."""
    direction = torch.randn(matrix.shape, generator=torch.Generator().manual_seed(seed), dtype=matrix.dtype)
    return direction * matrix.norm(dim=-2, keepdim=True) / direction.norm(dim=-2, keepdim=True)


def loss_surface(params, data, kernel, query_direction, key_direction, coordinates):
    """f at W^Q + a U, W^K + b V (everything else as `params`, one run: tensors without the run axis) for every a, b
    in `coordinates`: (len, len), indexed [a, b]. The grid points are evaluated as runs of one batched call."""
    a, b = torch.meshgrid(coordinates, coordinates, indexing="ij")
    a, b = a.reshape(-1, 1, 1, 1), b.reshape(-1, 1, 1, 1)
    points = len(a)
    grid = {"query": params["query"] + a * query_direction, "key": params["key"] + b * key_direction,
            "value": params["value"].expand(points, *params["value"].shape),
            "out": params["out"].expand(points, *params["out"].shape)}
    return objective(grid, data, kernel).reshape(len(coordinates), len(coordinates))


FLAT = 1e-5  # relative to the surface's largest magnitude: differences below it are float noise, not ruggedness


def landscape_roughness(surface):
    """How rugged a loss surface (m, m) is, two ways, both independent of the loss's scale and of how deep its minimum
    is: the number of strict local minima of the grid (interior points below all 8 neighbours), and the fraction of
    interior points where the surface is not locally convex (its finite-difference 2x2 Hessian has a negative
    eigenvalue). Differences and curvatures within FLAT of the largest |value| count as zero, so that a flat surface
    (a model at chance, say), whose float32 noise would otherwise read as ruggedness, reads as flat."""
    s = torch.as_tensor(surface, dtype=torch.float64)
    noise = FLAT * s.abs().max()
    centre = s[1:-1, 1:-1]
    below_all = torch.ones_like(centre, dtype=torch.bool)
    for di in (-1, 0, 1):
        for dj in (-1, 0, 1):
            if di or dj:
                below_all &= centre < s[1 + di:s.shape[0] - 1 + di, 1 + dj:s.shape[1] - 1 + dj] - noise
    f_aa = s[2:, 1:-1] - 2 * centre + s[:-2, 1:-1]
    f_bb = s[1:-1, 2:] - 2 * centre + s[1:-1, :-2]
    f_ab = (s[2:, 2:] - s[2:, :-2] - s[:-2, 2:] + s[:-2, :-2]) / 4
    smallest_eigenvalue = (f_aa + f_bb) / 2 - torch.sqrt(((f_aa - f_bb) / 2) ** 2 + f_ab**2)
    nonconvex = smallest_eigenvalue < -noise
    return {"local_minima": int(below_all.sum()), "nonconvex_fraction": float(nonconvex.double().mean())}
