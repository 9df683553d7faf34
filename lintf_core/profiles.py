"""Fidelity profiles. `quick`: every notebook in about a minute on 2 cores (CI). `paper`: the paper's fidelity."""

import json

from .errors import ParameterError, check_choice

PROFILES = {
    # reference_iters: length of the cross-check run of the straightforward reference loop (lintf_core.bench)
    # noise_*: Figure 3's stochastic gradients at initialization (count, and prompts of the "true" gradient)
    # hessian_every: stride of Figure 4's Hessians along the runs; smoothness_iters: Figure 16's stride-1 window.
    # ablation_hessian_every: the same for the ablation chapters (Section 4), whose quick runs cannot afford 250;
    #   paper: 500, half the authors' 250, to keep the paper edition within its time budget (PERFORMANCE.md).
    # gamma_shapes: the tail-weight sweep of the covariate-tails chapter (beyond the paper; three shapes in both
    #   profiles, within the paper edition's time budget: `-p gamma_shapes` adds 0.2 and 1).
    # variant_iters: runs of the token-level variants (softmax, Gaussian kernel), ~10x slower a step.
    # large_*: Figure 8's L=8, d=20, N=60 model (~31 ms per run and step here): the seeds of its learning-rate search,
    #   iterations, the grid (no rate is published), and large_final_seeds, the seeds then trained at each
    #   optimizer's best rate (the search's own runs at those rates are reused); reduced in both profiles, as its
    #   page states (paper: the search on one seed, ~4 CPU-minutes a seed). The paper grid's Adam rates reach down to
    #   0.0002, because larger ones diverged on every search seed; a diverged run is retired early (train._train), so
    #   the grid's unstable rates cost little.
    # nonlinear_*: Figure 15's runs (B=2000 and a learned MLP, the costliest page): seeds (paper: the authors' 0-4),
    #   iterations, the stride of its condition numbers (paper: 1,000, the curves' resolution only: the verdict reads
    #   the last iteration; the code's 250 costs ~5 CPU-minutes more), and its noise sample.
    # poster_*: the poster chapter's synthetic runs (full-batch gradient descent): seeds and iterations.
    # grid_*: the Table 2 learning-rate search: seeds and iterations of its short runs.
    # verdict_seeds: the seeds the verdicts of Settings 1-3 rest on (figures draw `seeds`, the paper's six, from the
    #   same training); eval_batches: the independent evaluation batches of the reading robust to the draw;
    #   horizon_seeds: the seeds of the learning-rate grid run at the full horizon (n_iters) for a claim that fails
    #   (paper: two, within the edition's time budget; quick: one; `-p horizon_seeds` asks for more).
    #   depth_verdict_seeds: the depth chapter's (the figure's own): 20 would train 2 x 4 depths x 40 runs, about
    #   3.5 times the cost of 6 and beyond the paper edition's time budget (README, "How sure is each verdict");
    #   `-p verdict_seeds` asks for them.
    # premise_*: the real networks of Figs. 1, 6 and 16-left (realnets.py): the English text's training tokens (the
    #   language models' training set on all three pages), Fig. 6's random minibatches per network, Fig. 16-left's
    #   steps per network, and Fig. 1's passes over the training set per network (the Transformer's gap opens only
    #   after several passes), the seeds of its step-size search (Kunstner et al. used 3; paper: 2, within the
    #   edition's time budget, quick: 1; `-p search_seeds` asks for more), the seeds its verdicts rest on (the
    #   search's and more, at the best rates) and its optimizers (at the larger batch size and on the LSTM only SGD(m)
    #   and Adam), and the Rademacher probes of its Hutchinson estimate of the Hessian's diagonal (R_med at the end of
    #   each run).
    # poster_task_*: the poster's own tasks (postertasks.py): seeds, Pathfinder's training and test images, steps per
    #   task (the text stand-in's test accuracy tops out within ~250 steps, Pathfinder's softmax model needs ~1,000),
    #   Figure 3's second-stage steps and its plane's points per axis.
    # quick trains 1,250 iterations so that Figure 4's table (iterations 750 and 1,250) exists in CI too.
    "quick": dict(seeds=[0, 1, 2], n_iters=1250, batch_size=1000, eval_every=50, eval_batch_size=1000,
                  reference_iters=1000, noise_samples=500, noise_true_batch=100000, hessian_every=250,
                  smoothness_iters=1000, ablation_hessian_every=1250, gamma_shapes=[0.1, 0.5, 2.5],
                  variant_iters=200, large_seeds=[0], large_final_seeds=[0], large_iters=100, nonlinear_iters=500,
                  nonlinear_seeds=[0, 1], nonlinear_hessian_every=500, nonlinear_noise_samples=500,
                  large_lr_grid={"sgd": [0.05, 0.1], "adam": [0.002, 0.005]}, grid_seeds=[0, 1], grid_iters=200,
                  poster_seeds=[0, 1, 2], poster_iters=1500, verdict_seeds=list(range(6)), eval_batches=5,
                  horizon_seeds=[0], depth_verdict_seeds=[0, 1, 2], premise_text_tokens=10000,
                  premise_noise_samples=24, premise_smoothness_steps=40, premise_search_seeds=[0],
                  premise_epochs={"lenet5": 1, "transformer_small": 1, "lstm": 1},
                  premise_verdict_seeds=[0, 1], premise_optimizers=["sgd_momentum", "adam"],
                  premise_hutchinson_probes=5, poster_task_seeds=[0, 1], poster_task_images=[200, 100],
                  poster_task_steps={"pathfinder": 40, "text": 40}, poster_task_stage2_steps=10,
                  poster_task_grid=5),
    "paper": dict(seeds=[0, 1, 2, 3, 4, 5], n_iters=10000, batch_size=1000, eval_every=50, eval_batch_size=1000,
                  reference_iters=3000, noise_samples=10000, noise_true_batch=100000, hessian_every=250,
                  smoothness_iters=2000, ablation_hessian_every=500, gamma_shapes=[0.1, 0.5, 2.5],
                  variant_iters=2000, large_seeds=[0], large_final_seeds=[0, 1, 2, 3, 4, 5],
                  large_iters=1000, nonlinear_iters=10000, nonlinear_seeds=[0, 1, 2, 3, 4],
                  nonlinear_hessian_every=1000, nonlinear_noise_samples=10000,
                  large_lr_grid={"sgd": [0.05, 0.1, 0.2], "adam": [0.0002, 0.0005, 0.001, 0.002]}, grid_seeds=[0, 1, 2],
                  grid_iters=2000, poster_seeds=[0, 1, 2, 3, 4, 5], poster_iters=10000,
                  verdict_seeds=list(range(20)), eval_batches=10, horizon_seeds=[0, 1],
                  depth_verdict_seeds=[0, 1, 2, 3, 4, 5], premise_text_tokens=15000, premise_noise_samples=200,
                  premise_smoothness_steps=200, premise_search_seeds=[0, 1],
                  premise_epochs={"lenet5": 4, "transformer_small": 8, "lstm": 8},
                  premise_verdict_seeds=[0, 1, 2, 3, 4, 5],
                  premise_optimizers=["sgd", "sgd_momentum", "adam", "adam_no_momentum"],
                  premise_hutchinson_probes=20, poster_task_seeds=[0, 1, 2], poster_task_images=[3000, 600],
                  poster_task_steps={"pathfinder": 1500, "text": 500}, poster_task_stage2_steps=150,
                  poster_task_grid=15),
}


def resolve(profile, **overrides):
    """The profile's values, with every override that is not None taking precedence."""
    check_choice("profile", profile, tuple(PROFILES))
    values = dict(PROFILES[profile])
    values.update({k: v for k, v in overrides.items() if v is not None})
    values["profile"] = profile
    return values


def hessian_iterations(values, extra=()):
    """Iterations at which the ablation chapters form Hessians: every `ablation_hessian_every`, plus `extra`."""
    stride = values["ablation_hessian_every"]
    return sorted(set(range(0, values["n_iters"] + 1, stride)) | {int(t) for t in extra})


def describe(values):
    """One line for a figure caption: which profile and which fidelity produced it."""
    seeds = values["seeds"]
    return (f"profile '{values['profile']}': {len(seeds)} seeds, {values['n_iters']} iterations, "
            f"batch {values['batch_size']}, evaluation batch {values['eval_batch_size']}")


def as_list(name, value):
    """A list parameter as papermill may deliver it: a list, a JSON list string ('["setting3"]', as from
    `-p settings '["setting3"]'`), a single value, or None (kept: "take it from the profile")."""
    if value is None or isinstance(value, list):
        return value
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, str) and value.strip().startswith("["):
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            raise ParameterError(name, value, 'a JSON list such as \'["setting1", "setting3"]\'') from None
        if isinstance(parsed, list):
            return parsed
    return [value]
