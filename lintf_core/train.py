"""Train one setting for many runs at once: seeds x optimizers x learning rates as one batched computation.

As in the authors' code: runs with the same seed share their initialization and their stream of training batches
(so per-seed SGDM/Adam comparisons are like for like), every iteration draws B fresh prompts, and the loss is
measured on one fixed evaluation batch (its own seed, 99) every `eval_every` iterations.
"""

import itertools
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm import tqdm

from . import cache, cluster, engine, verdicts
from .data import EVAL_STREAMS, SAMPLERS, TRAIN, PromptStream, evaluation_prompts, stack_prompts, stack_statistics
from .errors import ParameterError, check_choice, check_nonnegative_int, check_positive
from .model import Architecture, init_params, model_input
from .optim import init_state
from .sampler import sample_statistics
from .settings import LR_SOURCES, OPTIMIZERS, get_setting

OPTIMIZER_LABELS = {"sgd": "SGDM", "adam": "Adam"}
DTYPES = ("float32", "float64")  # train(dtype=...): float64 re-runs a diverged run in double precision


@dataclass
class Trajectories:
    """Everything recorded for R runs. Arrays are numpy; run r has optimizer[r], lr[r], seed[r]."""

    setting: str
    config: dict
    optimizer: list
    lr: np.ndarray  # (R,)
    seed: np.ndarray  # (R,)
    eval_iterations: np.ndarray  # (T,) iterations t at which x_t was evaluated (t = 0 is the initialization)
    eval_loss: np.ndarray  # (R, T) mean loss on the fixed evaluation batch
    eval_loss_se: np.ndarray  # (R, T) its standard error over the batch's prompts (sampling spread)
    eval_loss_median: np.ndarray  # (R, T) the median per-prompt loss: the typical prompt, not the heavy tail
    train_loss: np.ndarray  # (R, n_iters) minibatch loss at x_t, before step t
    grad_norm: np.ndarray  # (R, n_iters) minibatch gradient norm at x_t, before clipping
    iterate_iterations: np.ndarray  # (K,)
    iterates: np.ndarray = field(repr=False)  # (R, K, n_params) parameters x_t at iterate_iterations
    steps: np.ndarray = field(repr=False)  # (R, K, n_params) the step actually taken there, x_{t+1} - x_t
    #                                        (NaN at t = n_iters); directional smoothness needs it (Fig. 5, 16)

    @property
    def n_runs(self):
        return len(self.optimizer)

    def runs(self, optimizer=None, lr=None, seed=None):
        """Indices of the runs matching every given attribute, in run order."""
        return [r for r in range(self.n_runs)
                if (optimizer is None or self.optimizer[r] == optimizer)
                and (lr is None or np.isclose(self.lr[r], lr))
                and (seed is None or self.seed[r] == seed)]

    def late_loss(self, optimizer=None, fraction=0.1, metric="eval_loss", **match):
        """Per matching run: the median over the last `fraction` of iterations of `metric` (eval_loss or
        eval_loss_median); robust to a single spike at the very last evaluation, which the curves still show."""
        late = self.eval_iterations >= (1 - fraction) * self.eval_iterations[-1]
        return np.median(getattr(self, metric)[self.runs(optimizer=optimizer, **match)][:, late], axis=1)

    def eval_index(self, t):
        """The position of iteration t among the evaluations (eval_iterations); a one-line error if t was not
        evaluated."""
        found = np.flatnonzero(self.eval_iterations == t)
        if not len(found):
            raise ParameterError("iteration", t, f"an evaluated iteration (multiples of {self.config['eval_every']} up "
                                                 f"to {int(self.eval_iterations[-1])})")
        return int(found[0])

    def spiking_runs(self, optimizer=None, factor=10.0, **match):
        """Per matching run: did its evaluation loss ever rise above `factor` x its best value so far?"""
        return spiked(self.eval_loss[self.runs(optimizer=optimizer, **match)], factor)

    def diverged(self, optimizer=None, **match):
        """Per matching run: did its evaluation loss become non-finite (NaN or inf) at some point?"""
        return ~np.isfinite(self.eval_loss[self.runs(optimizer=optimizer, **match)]).all(axis=1)

    def select(self, runs):
        """The runs `runs` (indices) alone, as Trajectories."""
        runs = list(runs)
        per_run = {k: getattr(self, k)[runs] for k in _ARRAYS if k not in ("eval_iterations", "iterate_iterations")}
        config = {**self.config, "runs": [self.config["runs"][r] for r in runs]}
        return Trajectories(setting=self.setting, config=config, optimizer=[self.optimizer[r] for r in runs],
                            eval_iterations=self.eval_iterations, iterate_iterations=self.iterate_iterations,
                            **per_run)

    def to_payload(self):
        arrays = {k: torch.from_numpy(np.ascontiguousarray(getattr(self, k))) for k in _ARRAYS}
        return {"setting": self.setting, "config": self.config, "optimizer": list(self.optimizer), **arrays}

    @classmethod
    def from_payload(cls, payload):
        arrays = {k: payload[k].numpy() for k in _ARRAYS}
        return cls(setting=payload["setting"], config=payload["config"], optimizer=list(payload["optimizer"]),
                   **arrays)

    def to_json(self):
        """The CLI's JSON (`train --out`): {"setting", "config", "runs": [{optimizer, lr, seed, iterations, eval_loss,
        eval_loss_se, eval_loss_median}, ...]}."""
        runs = [{"optimizer": self.optimizer[r], "lr": float(self.lr[r]), "seed": int(self.seed[r]),
                 "iterations": self.eval_iterations.tolist(), "eval_loss": _floats(self.eval_loss[r]),
                 "eval_loss_se": _floats(self.eval_loss_se[r]),
                 "eval_loss_median": _floats(self.eval_loss_median[r])} for r in range(self.n_runs)]
        return {"setting": self.setting, "config": self.config, "runs": runs}


def concatenate(parts):
    """The runs of several Trajectories of one setting and schedule as one, in order. Exact: a run does not depend on
    the runs trained beside it (its own seed's data stream, initialization and optimizer state; tested), so Fig. 8
    reuses the rate search's runs at the best rates instead of training them again."""
    first = parts[0]
    schedule = {k: v for k, v in first.config.items() if k != "runs"}
    for part in parts[1:]:
        if {k: v for k, v in part.config.items() if k != "runs"} != schedule:
            raise ValueError("concatenate: the trajectories differ in more than their runs")
    per_run = {k: np.concatenate([getattr(p, k) for p in parts]) for k in _ARRAYS
               if k not in ("eval_iterations", "iterate_iterations")}
    config = {**first.config, "runs": [run for p in parts for run in p.config["runs"]]}
    return Trajectories(setting=first.setting, config=config, optimizer=[o for p in parts for o in p.optimizer],
                        eval_iterations=first.eval_iterations, iterate_iterations=first.iterate_iterations, **per_run)


def spiked(losses, factor=10.0):
    """Along the last axis of `losses` (one curve per row): did the value ever rise above `factor` x the best
    value so far?"""
    losses = np.asarray(losses)
    return (losses > factor * np.minimum.accumulate(losses, axis=-1)).any(axis=-1)


_ARRAYS = ("lr", "seed", "eval_iterations", "eval_loss", "eval_loss_se", "eval_loss_median", "train_loss", "grad_norm",
           "iterate_iterations", "iterates", "steps")


def _floats(values):
    return [float(v) if np.isfinite(v) else None for v in values]  # JSON has no NaN


def _learning_rates(setting, optimizers, lr, lr_source):
    """{optimizer: [lr, ...]} from None (the setting's), a number (all optimizers), or {optimizer: number|list}."""
    out = {}
    for opt in optimizers:
        value = lr.get(opt) if isinstance(lr, dict) else lr
        if value is None:
            value = setting.learning_rate(opt, lr_source)
        values = list(value) if isinstance(value, (list, tuple)) else [value]
        if not values:
            raise ParameterError(f"lr[{opt}]", value, "a positive number or a non-empty list of them")
        out[opt] = [check_positive(f"lr[{opt}]" if isinstance(lr, dict) else "lr", v) for v in values]
    return out


def train(setting, optimizers=("sgd", "adam"), seeds=range(6), n_iters=10000, lr=None, batch_size=None,
          eval_every=50, eval_batch_size=1000, eval_seed=99, eval_stream="book", iterate_every=250, lr_source="code",
          clip=None,
          parametrization=None, attention=None, query_key=None, sampler="statistics", dtype="float32", progress=True,
          use_cache=True):
    """Train every (seed, optimizer, learning rate) run of `setting` together; returns Trajectories.

    lr: None (the setting's, from `lr_source` "code" or "paper"), a number for every optimizer, or a dict
        {optimizer: number or list}; lists make a learning-rate grid (one run per value).
    clip: the global gradient-norm threshold; None uses the code's (1, or 0.1 for spherical data); inf disables.
    parametrization, attention, query_key: override the setting's architecture (None keeps it).
    sampler: "statistics" draws what the model sees of each training prompt directly (data.py: same law, another
        stream; only where the fused kernel applies); "prompts" draws every prompt, as the reference loop does.
    iterate_every: record the parameters x_t and the step x_{t+1} - x_t every this many iterations (and x_t at
        t = n_iters).
    eval_stream: "book" (the book's own seed-`eval_seed` batch) or "authors" (the batch the authors' plotting code
        draws from torch's and numpy's global generators: data.authors_evaluation_batch).
    dtype: "float32" (the paper's) or "float64": the same runs (initialization, prompts, rates) in double precision,
        to tell float32's overflow from an optimizer's instability (the prompts stay float32 numbers).
    """
    setting = get_setting(setting)
    optimizers = list(optimizers) if not isinstance(optimizers, str) else [optimizers]
    if not optimizers:
        raise ParameterError("optimizer", optimizers, "one or more of " + ", ".join(OPTIMIZERS))
    for opt in optimizers:
        check_choice("optimizer", opt, OPTIMIZERS)
    seeds = [check_nonnegative_int("seeds", s) for s in seeds]
    if not seeds or len(set(seeds)) != len(seeds):
        raise ParameterError("seeds", seeds, "a non-empty list of distinct integers >= 0")
    n_iters = check_nonnegative_int("n_iters", n_iters)
    check_choice("lr_source", lr_source, LR_SOURCES)
    batch_size = check_positive("batch_size", setting.batch_size if batch_size is None else batch_size, integer=True)
    eval_every = check_positive("eval_every", eval_every, integer=True)
    eval_batch_size = check_positive("eval_batch_size", eval_batch_size, integer=True)
    iterate_every = check_positive("iterate_every", iterate_every, integer=True)
    eval_seed = check_nonnegative_int("eval_seed", eval_seed)
    check_choice("eval_stream", eval_stream, EVAL_STREAMS)
    clip = setting.clip("code") if clip is None else check_positive("clip", clip)
    check_choice("sampler", sampler, SAMPLERS)
    check_choice("dtype", dtype, DTYPES)
    lrs = _learning_rates(setting, optimizers, lr, lr_source)
    arch = Architecture.of(setting, parametrization=parametrization, attention=attention, query_key=query_key)

    runs = [(s, o, v) for s, o in itertools.product(seeds, optimizers) for v in lrs[o]]
    config = dict(kind="train", setting=setting.as_dict(), architecture=vars(arch), runs=runs, n_iters=n_iters,
                  batch_size=batch_size, eval_every=eval_every, eval_batch_size=eval_batch_size,
                  eval_seed=eval_seed, iterate_every=iterate_every, clip=clip,
                  **({"eval_stream": eval_stream} if eval_stream != "book" else {}),
                  sampler=sampler if engine.reads_statistics(arch) else "prompts",
                  **({"dtype": dtype} if dtype != "float32" else {}))

    def compute():
        client = cluster.sweep_client()  # a Dask scheduler in $LINTF_SCHEDULER: the runs split over its workers
        if client is not None and len(runs) > 1:
            return _train_split(client, setting, arch, runs, config).to_payload()
        return _train(setting, arch, runs, config, progress).to_payload()

    return Trajectories.from_payload(cache.cached(config, compute, use_cache))


def _train_split(client, setting, arch, runs, config):
    """_train's runs in chunks (cluster.split_runs), one Dask task each, concatenated in order: the same runs and
    numbers as one _train (tested), computed on the workers and cached by the caller (train), not by them."""
    expected = cache.computing_environment()
    futures = [client.submit(_train_chunk, setting, arch, chunk, {**config, "runs": chunk}, expected, pure=False)
               for chunk in cluster.split_runs(runs, cluster.total_threads(client))]
    return concatenate([Trajectories.from_payload(payload) for payload in client.gather(futures)])


def _train_chunk(setting, arch, runs, config, expected):
    cluster.check_worker(expected)
    return _train(setting, arch, runs, config, progress=False).to_payload()


def train_profile(setting, config, lr=None, lr_source="code", **overrides):
    """train() at the fidelity of a resolved profile (profiles.resolve): its seeds, iterations, batch size,
    evaluation stride and evaluation batch. Figures 2, 4 and 5 call it alike, so 4 and 5 reuse Figure 2's cached
    runs. lr: as train's (a dict may hold None for "the setting's")."""
    overrides = {"seeds": config["seeds"], **overrides}
    return train(setting, n_iters=config["n_iters"], lr=lr, batch_size=config["batch_size"],
                 eval_every=config["eval_every"], eval_batch_size=config["eval_batch_size"], lr_source=lr_source,
                 **overrides)


def train_verdict_seeds(setting, config, lr=None, lr_source="code", **overrides):
    """The runs a verdict rests on and the paper's runs a figure draws, from one training: train_profile on the
    union of the profile's `verdict_seeds` and `seeds` (>= 20 seeds at paper fidelity, where the engine makes it
    cheap). Returns (all runs, the runs of the profile's seeds): a run does not depend on the runs beside it, so the
    second are exactly what train_profile alone gives (tested)."""
    seeds = sorted(set(config["seeds"]) | set(config.get("verdict_seeds") or config["seeds"]))
    runs = train_profile(setting, config, lr=lr, lr_source=lr_source, seeds=seeds, **overrides)
    figure = runs.select([r for r in range(runs.n_runs) if runs.seed[r] in set(config["seeds"])])
    return runs, figure


def train_profile_readings(setting, config, readings, lr_source="code"):
    """train_profile at several choices of learning rates ({name: lr as train_profile's}) trained as one batch: the
    runs of every choice share each iteration's fresh prompts and the loop's per-iteration cost, and a rate two
    choices share trains once. Returns {name: Trajectories of that choice's runs}, the runs train_profile would
    return for it (exact: a run does not depend on the runs beside it). Figures 12-14 read two choices."""
    chosen = {name: _learning_rates(get_setting(setting), OPTIMIZERS, lr, lr_source) for name, lr in readings.items()}
    union = {opt: sorted({v for rates in chosen.values() for v in rates[opt]}) for opt in OPTIMIZERS}
    runs = train_profile(setting, config, lr=union, lr_source=lr_source)
    return {name: runs.select([r for r in range(runs.n_runs) if runs.lr[r] in rates[runs.optimizer[r]]])
            for name, rates in chosen.items()}


def learning_rate_grid(setting, config, exponents):
    """Table 2's search redone (Appendix A: "the best learning rate from a grid search over 10 different values"):
    every optimizer of `setting` on Table 2's rate x 2^k for k in `exponents`, at the grid fidelity of a resolved
    profile (grid_seeds, grid_iters). Returns ({optimizer: [rates]}, Trajectories); verdicts.grid_best reads it."""
    setting = get_setting(setting)
    grid = {opt: [setting.learning_rate(opt, "paper") * 2.0**k for k in exponents] for opt in OPTIMIZERS}
    runs = train(setting, seeds=config["grid_seeds"], n_iters=config["grid_iters"], lr=grid,
                 batch_size=config["batch_size"], eval_every=max(1, config["grid_iters"] // 20),
                 eval_batch_size=config["eval_batch_size"], iterate_every=config["grid_iters"])
    return grid, runs


def full_horizon_grid(setting, config):
    """The paper's own rule for its rates (Appendix A: the best of a 10-value grid; Table 2's rate x 2^k,
    k = -5..4) applied at the full horizon: the grid trained as the verdict seeds are (train_profile: n_iters, the
    evaluation stride and batch) on the profile's horizon_seeds. Returns ({optimizer: [rates]}, Trajectories)."""
    setting = get_setting(setting)
    grid = {opt: [setting.learning_rate(opt, "paper") * 2.0**k for k in range(-5, 5)] for opt in OPTIMIZERS}
    return grid, train_profile(setting, config, lr=grid, seeds=config["horizon_seeds"])


def rates_at_full_horizon(setting, config):
    """full_horizon_grid read by verdicts.grid_best. Returns {optimizer: best rate}."""
    grid, runs = full_horizon_grid(setting, config)
    return {opt: verdicts.grid_best(runs, opt, grid[opt])["best"] for opt in OPTIMIZERS}


def train_at_full_horizon_rates(setting, config, verdict_runs):
    """The learning-rate experiment of a claim that fails (Figures 2, 4 and 5 share its cached runs): the best rates
    at the full horizon, the rates `verdict_runs` used, and the verdict seeds at the best ones (None where they are
    the rates used): train_verdict_seeds' runs, of which the grid's seeds are the grid's own runs at those rates
    (a run does not depend on the runs beside it; tested) and only the other seeds are trained.
    Returns (best, used, Trajectories or None)."""
    grid, grid_runs = full_horizon_grid(setting, config)
    best = {opt: verdicts.grid_best(grid_runs, opt, grid[opt])["best"] for opt in OPTIMIZERS}
    used = {opt: float(verdict_runs.lr[verdict_runs.runs(optimizer=opt)][0]) for opt in best}
    if all(np.isclose(best[opt], used[opt]) for opt in best):
        return best, used, None
    seeds = sorted(set(config["seeds"]) | set(config.get("verdict_seeds") or config["seeds"]))
    reused = [r for r in range(grid_runs.n_runs)
              if grid_runs.seed[r] in seeds and grid_runs.lr[r] == best[grid_runs.optimizer[r]]]
    others = [s for s in seeds if s not in set(grid_runs.seed.tolist())]
    parts = ([grid_runs.select(reused)] if reused else []) + (
        [train_profile(setting, config, lr=best, seeds=others)] if others else [])
    runs = concatenate(parts)
    by_seed = sorted(range(runs.n_runs), key=lambda r: (int(runs.seed[r]), OPTIMIZERS.index(runs.optimizer[r])))
    return best, used, runs.select(by_seed)


def _train(setting, arch, runs, config, progress, retire_diverged=True):
    """The engine's inner loop (the one place it lives).

    retire_diverged: a run whose parameters are all NaN stays so (its loss, gradient, clipped step and evaluations
    are NaN from then on), so it is no longer computed and NaN is recorded instead: the same records (tested against
    retire_diverged=False), without the cost of runs that diverged early (Adam at depth 6 and 8 by iteration
    ~50-500 of 10,000)."""
    n_iters, batch_size = config["n_iters"], config["batch_size"]
    seeds = sorted({s for s, _, _ in runs})
    run_seed = torch.tensor([seeds.index(s) for s, _, _ in runs])
    streams = [PromptStream(setting, s, TRAIN) for s in seeds]
    eval_data = model_input(arch, evaluation_prompts(setting, config.get("eval_stream", "book"),
                                                     config["eval_batch_size"], config["eval_seed"]))
    on_statistics = engine.reads_statistics(arch)  # then each seed's batch is drawn as statistics
    run_data = run_seed.numpy()
    live = torch.arange(len(runs))  # the runs still computed (see retire_diverged)

    def draw():  # one fresh batch per seed; the runs of a seed all see it
        if config["sampler"] == "statistics":
            return sample_statistics(streams, batch_size)
        return stack_statistics([model_input(arch, stream.sample(batch_size)) for stream in streams])

    def gradient(theta, run_data):  # minibatch loss and gradient of the runs `theta` on a fresh batch per seed
        batch = draw() if on_statistics else stack_prompts([s.sample(batch_size) for s in streams])
        return engine.loss_and_grad(theta, arch, batch, run_data)

    theta = init_params(arch, seeds, setting.init_std)[run_seed].to(getattr(torch, config.get("dtype", "float32")))
    state = init_state(theta, [o for _, o, _ in runs], [v for _, _, v in runs], [config["clip"]] * len(runs))

    eval_at = list(range(0, n_iters + 1, config["eval_every"]))
    iterate_at = set(range(0, n_iters + 1, config["iterate_every"])) | {n_iters}
    eval_loss, eval_se, eval_median, iterates, steps = [], [], [], [], []
    train_loss = torch.empty(len(runs), n_iters, dtype=theta.dtype)
    grad_norm = torch.empty(len(runs), n_iters, dtype=theta.dtype)

    for t in tqdm(range(n_iters + 1), desc=setting.name, disable=not progress, mininterval=2.0):
        if t in iterate_at:
            iterates.append(theta.clone())
        if t % config["eval_every"] == 0:
            per_prompt = torch.full((len(runs), config["eval_batch_size"]), float("nan"), dtype=theta.dtype)
            if len(live):
                per_prompt[live] = engine.per_prompt_loss(theta[live], arch, eval_data)
            eval_loss.append(per_prompt.mean(1))
            eval_se.append(per_prompt.std(1) / per_prompt.shape[1] ** 0.5)
            eval_median.append(per_prompt.median(1).values)
        if t == n_iters:
            if t in iterate_at:
                steps.append(torch.full_like(theta, float("nan")))
            break
        if len(live) == len(runs):
            value, grad = gradient(theta, run_data)
        else:
            value = torch.full((len(runs),), float("nan"), dtype=theta.dtype)
            grad = torch.full_like(theta, float("nan"))
            if len(live):
                value[live], grad[live] = gradient(theta[live], run_data[live.numpy()])
        new_theta, norm = engine.clip_and_step(theta, grad, state)  # optim's clip_by_global_norm and step, compiled
        train_loss[:, t], grad_norm[:, t] = value, norm
        if t in iterate_at:
            steps.append(new_theta - theta)
        theta = new_theta
        if retire_diverged:
            live = torch.nonzero(~torch.isnan(theta).all(1)).flatten()

    return Trajectories(
        setting=setting.name, config=config, optimizer=[o for _, o, _ in runs],
        lr=np.array([v for _, _, v in runs], dtype=np.float64), seed=np.array([s for s, _, _ in runs]),
        eval_iterations=np.array(eval_at), eval_loss=torch.stack(eval_loss, 1).numpy(),
        eval_loss_se=torch.stack(eval_se, 1).numpy(), eval_loss_median=torch.stack(eval_median, 1).numpy(),
        train_loss=train_loss.numpy(), grad_norm=grad_norm.numpy(),
        iterate_iterations=np.array(sorted(iterate_at)), iterates=torch.stack(iterates, 1).numpy(),
        steps=torch.stack(steps, 1).numpy(),
    )
