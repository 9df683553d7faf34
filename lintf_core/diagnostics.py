"""Landscape diagnostics (Section 2 of the paper): gradient noise and its tails, Hessians and robust condition
numbers, directional smoothness. Everything is batched over runs, like the engine.

Gradient noise (Fig. 3, as in the authors' code): at a point theta, the "true" gradient is one gradient on a single
batch of `true_batch` prompts; each stochastic gradient comes from a fresh batch of `batch_size` prompts; the
statistic is the norm of their difference over all parameters. The stochastic gradients are independent, so they
are computed `chunk` at a time as if they were runs of the engine.
"""

import numpy as np
import torch
from scipy import optimize as scipy_optimize
from scipy import sparse as scipy_sparse
from scipy import stats as scipy_stats
from tqdm import tqdm

from . import cache, engine
from .data import NOISE, TRUE_GRADIENT, PromptStream, evaluation_prompts
from .errors import ParameterError, check_positive
from .model import Architecture, init_params, model_input
from .settings import Setting, get_setting

def true_gradient(setting, arch, theta, n_prompts, seed, chunk=20000):
    """The gradient at theta (n_params,) of the loss on one batch of n_prompts fresh prompts (accumulated in
    chunks of equal weight, so the result is the gradient of the mean over all n_prompts)."""
    stream = PromptStream(setting, seed, TRUE_GRADIENT)
    total, done = torch.zeros_like(theta), 0
    while done < n_prompts:
        size = min(chunk, n_prompts - done)
        _, grad = engine.loss_and_grad(theta[None], arch, model_input(arch, stream.sample(size)))
        total += grad[0] * size
        done += size
    return total / n_prompts


def gradient_noise(setting, arch, theta, n_samples, batch_size, true_batch, seed, chunk=50):
    """Norms |g_i - grad f| of n_samples stochastic gradients at theta (n_params,), each on a fresh batch of
    batch_size prompts, against the gradient on one batch of true_batch prompts. Returns a numpy array."""
    reference = true_gradient(setting, arch, theta, true_batch, seed=seed)
    stream = PromptStream(setting, seed, NOISE)
    norms = []
    for start in range(0, n_samples, chunk):
        size = min(chunk, n_samples - start)
        prompts = stream.sample(size * batch_size)
        # view the size*batch_size prompts as `size` independent batches, i.e. `size` runs of the engine
        for field in ("x", "w", "x_query"):
            value = getattr(prompts, field)
            setattr(prompts, field, value.reshape(size, batch_size, *value.shape[1:]))
        _, grads = engine.loss_and_grad(theta.expand(size, -1), arch, model_input(arch, prompts))
        norms.append((grads - reference).norm(dim=1))
    return torch.cat(norms).numpy()


def noise_at_init(setting, seed=1, n_samples=10000, batch_size=1000, true_batch=100000, use_cache=True):
    """Figure 3's sample: gradient-noise norms at the initialization of `seed` (the authors used seed 1), cached."""
    setting = get_setting(setting)
    arch = Architecture.of(setting)
    config = dict(kind="noise_at_init", setting=setting.as_dict(), seed=seed, n_samples=n_samples,
                  batch_size=batch_size, true_batch=true_batch)

    def compute():
        theta = init_params(arch, [seed], setting.init_std)[0]
        return {"norms": torch.from_numpy(gradient_noise(setting, arch, theta, n_samples, batch_size, true_batch,
                                                         seed))}

    return cache.cached(config, compute, use_cache)["norms"].numpy()


def tail_statistics(samples, quantiles=(0.99, 0.999)):
    """Numbers that say how heavy a sample's right tail is, next to a Gaussian fitted by mean and sd:
    excess kurtosis (0 for a Gaussian), the Hill estimate of the tail index from the top k = floor(sqrt(n))
    order statistics (small = heavy: a Student-t with nu degrees of freedom has index nu; a Gaussian's estimate
    grows without bound with n), and where the top quantiles sit in units of the fitted sd (Gaussian:
    2.33 sd at 99%, 3.09 sd at 99.9%)."""
    x = np.asarray(samples, dtype=np.float64)
    mean, sd = x.mean(), x.std(ddof=1)
    k = int(np.floor(np.sqrt(len(x))))
    top = np.sort(x)[::-1][:k + 1]
    hill = 1.0 / np.mean(np.log(top[:k] / top[k])) if top[k] > 0 else float("nan")
    out = {"n": len(x), "mean": mean, "sd": sd, "excess_kurtosis": float(scipy_stats.kurtosis(x)),
           "skewness": float(scipy_stats.skew(x)), "hill_tail_index": float(hill), "hill_k": k}
    for q in quantiles:
        out[f"q{q:g}_in_sd"] = float((np.quantile(x, q) - mean) / sd)
        out[f"q{q:g}_gaussian_in_sd"] = float(scipy_stats.norm.ppf(q))
    return out


def robust_condition_number(H, method="diagonal"):
    """R_med = max / median, per matrix of H (..., p, p).
    method "diagonal": |diag H| (Jiang et al.'s approximation, as in the authors' code; the median of an even
    count is the LOWER middle value, as torch.median); "eigenvalues": lambda_max / lambda_median, the definition in
    the paper's text, taken over the eigenvalues' magnitudes |lambda| (same median convention): away from a minimum
    H is indefinite, and a signed median can be ~0 or negative, which makes the ratio meaningless. A matrix with
    non-finite entries (a diverged run) gives NaN."""
    if method == "diagonal":
        values = H.diagonal(dim1=-2, dim2=-1).abs()
    elif method == "eigenvalues":
        finite = torch.isfinite(H).all(dim=(-2, -1), keepdim=True)
        # numpy's LAPACK (OpenBLAS, its kernels pinned by make), not torch's (MKL: CPU-dependent bits, optim.exact_sqrt);
        # eigh cannot take NaN: masked below
        values = torch.from_numpy(np.linalg.eigvalsh(torch.where(finite, H, 0.0).numpy())).abs()
        values = torch.where(finite[..., 0], values, float("nan"))
    else:
        raise ValueError(f"method: got {method!r}; allowed: diagonal, eigenvalues")
    return values.max(dim=-1).values / values.median(dim=-1).values


# ---- along trajectories (Figs. 4, 5, 16): everything on the run's fixed evaluation batch ----------------------------

def evaluation_batch(trajectories, batch=None):
    """(architecture, model input) of an evaluation batch of the runs' setting: by default the fixed batch the runs
    were evaluated on; `batch` = (stream, seed) picks another, e.g. ("book", 100) or ("authors", 99)
    (data.evaluation_prompts)."""
    config = trajectories.config
    setting = Setting(**config["setting"])
    stream, seed = (config.get("eval_stream", "book"), config["eval_seed"]) if batch is None else batch
    arch = Architecture(**config["architecture"])
    return arch, model_input(arch, evaluation_prompts(setting, stream, config["eval_batch_size"], seed))


def evaluation_batches(n_batches, first_seed=100, authors=False):
    """The batches of the reading robust to the draw: `n_batches` independent batches of the book's stream (seeds
    first_seed, first_seed + 1, ...; the fixed batch is seed 99), and the authors' seed-99 batch if `authors`."""
    n_batches = check_positive("eval_batches", n_batches, integer=True)
    return [("book", first_seed + k) for k in range(n_batches)] + ([("authors", 99)] if authors else [])


def iterate_losses(trajectories, batches, top=10, use_cache=True, chunk=200):
    """The recorded iterates x_t of every run scored on each of `batches` ((stream, seed) pairs, see
    evaluation_batch): per run, iterate and batch, the mean loss over the batch's prompts (the paper's number), the
    median prompt's loss, and the share of the mean that its `top` largest prompts carry (1 = the mean is theirs
    alone; top / B when every prompt weighs alike). A diverged iterate gives NaN. Returns {"iterations": (K,),
    "batches": [...], "mean", "median", "top_share": (R, K, J)}. Cached."""
    batches = [tuple(b) for b in batches]
    config = dict(kind="iterate_losses", train=trajectories.config, batches=batches, top=top)

    def compute():
        points = torch.from_numpy(trajectories.iterates).reshape(-1, trajectories.iterates.shape[-1])
        mean, median, top_share = [], [], []
        for batch in batches:
            arch, data = evaluation_batch(trajectories, batch)
            losses = torch.cat([engine.per_prompt_loss(points[i:i + chunk], arch, data).detach()
                                for i in range(0, len(points), chunk)]).double()
            mean.append(losses.mean(1))
            median.append(losses.median(1).values)
            top_share.append(losses.topk(top, dim=1).values.sum(1) / losses.sum(1))
        shape = (*trajectories.iterates.shape[:2], len(batches))
        return {k: torch.stack(v, 1).reshape(shape) for k, v in
                (("mean", mean), ("median", median), ("top_share", top_share))}

    result = cache.cached(config, compute, use_cache)
    return {"iterations": trajectories.iterate_iterations, "batches": batches,
            **{k: result[k].numpy() for k in ("mean", "median", "top_share")}}


def late_iterate_losses(losses, metric="mean", fraction=0.1):
    """Per run and batch, the median of `metric` over the recorded iterates in the last `fraction` of training (the
    late loss of Trajectories.late_loss, on the iterates' stride); a run that diverged there counts as infinite.
    Returns (R, J)."""
    iterations = losses["iterations"]
    late = iterations >= (1 - fraction) * iterations[-1]
    values = losses[metric][:, late]
    return np.where(np.isfinite(values).all(axis=1), np.median(values, axis=1), np.inf)


def condition_numbers(trajectories, every=250, iterations=None, batch=None, use_cache=True, progress=True):
    """R_med of the evaluation-batch Hessian at the recorded iterates t = 0, every, 2*every, ... of every run (or at
    the listed `iterations` only), both ways (see robust_condition_number). Returns {"iterations": (K,),
    "diagonal": (R, K), "eigenvalues": (R, K)}. `every` must be a multiple of the trajectories' iterate_every.
    batch: None (the runs' own evaluation batch) or (stream, seed) (evaluation_batch).
    Cached with the trajectories' configuration."""
    recorded = trajectories.iterate_iterations
    if iterations is None:
        every = check_positive("every", every, integer=True)
        stride = trajectories.config["iterate_every"]
        if every % stride:
            raise ParameterError("every", every, f"a multiple of the recorded iterate stride {stride}")
        pick = np.flatnonzero(recorded % every == 0)
    else:
        missing = [t for t in iterations if t not in set(recorded.tolist())]
        if missing:
            raise ParameterError("iterations", missing, "recorded iterations (multiples of iterate_every up to "
                                                        "n_iters)")
        pick = np.array([int(np.flatnonzero(recorded == t)[0]) for t in iterations])
    config = dict(kind="condition_numbers", train=trajectories.config, at=recorded[pick].tolist(),
                  **({"batch": list(batch)} if batch is not None else {}))

    def compute():
        arch, data = evaluation_batch(trajectories, batch)
        points = torch.from_numpy(trajectories.iterates[:, pick]).reshape(-1, arch.n_params)
        diagonal, eigenvalues, done = [], [], {}
        for theta in tqdm(points, desc=f"Hessians {trajectories.setting}", disable=not progress, mininterval=2.0):
            key = theta.numpy().tobytes()  # the runs of a seed share x_0: one Hessian for all of them
            if key not in done:
                # a diverged run has no condition number: recorded as NaN (and its Hessian is not computed)
                H = engine.hessians(theta[None], arch, data) if torch.isfinite(theta).all() else None
                if H is None or not torch.isfinite(H).all():
                    H = torch.full((1, arch.n_params, arch.n_params), float("nan"))
                done[key] = robust_condition_number(H, "diagonal"), robust_condition_number(H, "eigenvalues")
            diagonal.append(done[key][0])
            eigenvalues.append(done[key][1])
        shape = (trajectories.n_runs, len(pick))
        return {"diagonal": torch.cat(diagonal).reshape(shape), "eigenvalues": torch.cat(eigenvalues).reshape(shape)}

    result = cache.cached(config, compute, use_cache)
    return {"iterations": trajectories.iterate_iterations[pick], "diagonal": result["diagonal"].numpy(),
            "eigenvalues": result["eigenvalues"].numpy()}


def paired_values(trajectories, values, first="sgd", second="adam"):
    """Per seed, values of the `first` optimizer's run and of the `second`'s (runs with the same seed share the
    initialization and the data stream, as in the authors' code). values: (R, ...). Returns (seeds, ...) twice, and
    the seeds."""
    seeds = sorted(set(int(s) for s in trajectories.seed[trajectories.runs(optimizer=first)]))
    a = values[[trajectories.runs(optimizer=first, seed=s)[0] for s in seeds]]
    b = values[[trajectories.runs(optimizer=second, seed=s)[0] for s in seeds]]
    return a, b, seeds


def paired_ratios(trajectories, values, numerator="sgd", denominator="adam"):
    """Per seed, values[numerator's run] / values[denominator's run] (see paired_values). Returns the ratios
    (seeds, ...) and the seeds."""
    a, b, seeds = paired_values(trajectories, values, numerator, denominator)
    return a / b, seeds


def smoothness_along(trajectories, batch=None, use_cache=True, chunk=50):
    """At every recorded iterate x_t (t < n_iters) of every run, on the evaluation batch: the directional
    smoothness of the step actually taken, u^T H(x_t) u / |u|^2 with u = x_{t+1} - x_t (clipped and preconditioned
    as in training), and the unclipped gradient norm |grad f(x_t)|. Values can be zero or negative (H is
    indefinite). Returns {"iterations": (K,), "smoothness": (R, K), "grad_norm": (R, K)}. batch: None (the runs'
    own evaluation batch) or (stream, seed) (evaluation_batch). Cached."""
    keep = np.flatnonzero(trajectories.iterate_iterations < trajectories.config["n_iters"])
    config = dict(kind="smoothness_along", train=trajectories.config,
                  **({"batch": list(batch)} if batch is not None else {}))

    def compute():
        arch, data = evaluation_batch(trajectories, batch)
        points = torch.from_numpy(trajectories.iterates[:, keep]).reshape(-1, arch.n_params)
        steps = torch.from_numpy(trajectories.steps[:, keep]).reshape(-1, arch.n_params)
        smoothness, grad_norm = [], []
        for start in range(0, len(points), chunk):
            theta, step = points[start:start + chunk], steps[start:start + chunk]
            smoothness.append(engine.directional_smoothness(theta, step, arch, data).detach())
            grad_norm.append(engine.loss_and_grad(theta, arch, data)[1].norm(dim=1))
        shape = (trajectories.n_runs, len(keep))
        return {"smoothness": torch.cat(smoothness).reshape(shape), "grad_norm": torch.cat(grad_norm).reshape(shape)}

    result = cache.cached(config, compute, use_cache)
    return {"iterations": trajectories.iterate_iterations[keep], "smoothness": result["smoothness"].numpy(),
            "grad_norm": result["grad_norm"].numpy()}


def smoothness_envelope(grad_norm, smoothness, quantile=0.95):
    """(L0, L1) >= 0 of the (L0, L1)-smoothness line L0 + L1 |grad f| drawn as an upper envelope: the linear
    quantile regression of smoothness on gradient norm at `quantile` (a fraction `quantile` of the points lie on or
    below the line), solved as a linear program. All points count, non-positive smoothness included."""
    g = np.asarray(grad_norm, dtype=np.float64).ravel()
    s = np.asarray(smoothness, dtype=np.float64).ravel()
    n = len(g)
    # variables: L0, L1, over_1..n, under_1..n >= 0 with s_i = L0 + L1 g_i + over_i - under_i
    cost = np.concatenate([[0.0, 0.0], np.full(n, quantile), np.full(n, 1 - quantile)])
    identity = scipy_sparse.identity(n, format="csr")
    equality = scipy_sparse.hstack([np.ones((n, 1)), g[:, None], identity, -identity], format="csr")
    solution = scipy_optimize.linprog(cost, A_eq=equality, b_eq=s, bounds=(0, None), method="highs")
    if not solution.success:
        raise RuntimeError(f"smoothness_envelope: the linear program failed: {solution.message}")
    L0, L1 = solution.x[:2]
    return {"L0": float(L0), "L1": float(L1), "quantile": quantile,
            "fraction_below": float(np.mean(s <= L0 + L1 * g + 1e-9 * (1 + np.abs(s))))}
