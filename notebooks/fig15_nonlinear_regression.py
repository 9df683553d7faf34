# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: lintf
#     language: python
#     name: lintf
# ---

# %% [markdown]
# # Figure 15: the features survive a nonlinear regression task
#
# **This page draws** Figure 15 of {cite:t}`ahn2024linear` (Appendix B): loss, gradient noise, robust condition
# number and directional smoothness of a linear Transformer with a learned ReLU pre-layer, trained on regression
# through a fixed random ReLU network.
#
# **Parameters** (next cell; override with papermill `-p name value`): `profile` (`"quick"` or `"paper"`), `seeds`,
# `n_iters`, `hessian_every`, `iterate_every`, `noise_seed`, `lr_sgd`, `lr_adam`. `None` means "take it from the
# profile or the setting".
#
# ## The claim
#
# Appendix B: with a nonlinear target, "we get similar plots to the case of linear regression" — that is, Adam
# beats SGDM, the stochastic gradient noise is heavy-tailed, the robust condition number of SGDM's iterates exceeds
# Adam's, and Adam's directional smoothness is smaller.

# %% tags=["parameters"]
profile = "quick"  # "quick": 2 seeds x 500 iterations; "paper": the authors' 5 seeds x 10,000
seeds = None  # None: the profile's nonlinear_seeds
n_iters = None  # None: the profile's nonlinear_iters
hessian_every = None  # None: the profile's nonlinear_hessian_every (a multiple of iterate_every)
iterate_every = None  # None: 250 (the authors' smoothness stride) in the paper profile, 50 in quick
noise_seed = 7  # the initialization of the noise panel (the authors' code: 7)
lr_sgd = None  # None: the paper's (and code's) 0.05
lr_adam = None  # None: 0.01

# %%
import numpy as np
from scipy import stats
from IPython.display import Markdown, display
from myst_nb import glue

from lintf_core import plots, profiles, scorecard, uncertainty, verdicts
from lintf_core.diagnostics import (condition_numbers, noise_at_init, paired_ratios, paired_values,
                                    smoothness_along, tail_statistics)
from lintf_core.errors import ParameterError
from lintf_core.model import Architecture
from lintf_core.settings import get_setting
from lintf_core.train import train

plots.use_book_style()
SETTING = get_setting("nonlinear")
config = profiles.resolve(profile, nonlinear_seeds=profiles.as_list("seeds", seeds), nonlinear_iters=n_iters,
                          nonlinear_hessian_every=hessian_every)
n_iters = config["nonlinear_iters"]
iterate_every = iterate_every or (250 if profile == "paper" else 50)
if config["nonlinear_hessian_every"] % iterate_every:
    raise ParameterError("hessian_every", config["nonlinear_hessian_every"], f"a multiple of iterate_every "
                                                                             f"({iterate_every})")
caption = (f"profile '{profile}': {len(config['nonlinear_seeds'])} seeds, {n_iters} iterations, batch "
           f"{SETTING.batch_size}, evaluation batch {config['eval_batch_size']}, a Hessian every "
           f"{config['nonlinear_hessian_every']} iterations, a smoothness value every {iterate_every}")
print(caption)

# %% [markdown]
# ## Method
#
# As the paper describes it (Appendix B): a random ReLU network $\phi = $ Linear(5, 5)–ReLU–Linear(5, 5), drawn once
# (PyTorch's default initialization, seed 7) and frozen, distorts the covariates, $y = \langle w, \phi(x)\rangle$ with
# $w \sim N(0, I_5)$, while the prompt's tokens carry the raw $x$. The model applies a learned ReLU network with 15
# hidden units to every token's covariate (the query's too) and then three layers of linear attention with full
# $6\times 6$ matrices $P$ and $Q$: {glue:text}`fig15_n_params` parameters. As the authors' code: 2,000 prompts per
# iteration, initialization $N(0, 0.1^2)$, clipping at 1, SGDM lr 0.05 and Adam lr 0.01 ($\beta_1=\beta_2=0.9$).
#
# Where the authors' final code differs: its target network has 10 hidden units and its learned
# one 30 (an earlier commit matches the paper's 5 and 15, which we follow); its loss panel shows the training
# minibatch loss; and its smoothness step rebuilds the target network with the run's seed, so it evaluates on a
# *different* function than the one trained on — a bug we do not copy: every diagnostic here uses the fixed
# evaluation batch (seed 99) labelled by the training target. The noise panel is at the initialization of seed
# {glue:text}`fig15_noise_seed` (the code's) with the profile's sample count (the code: 100,000 samples and a
# 200,000-prompt true gradient; here {glue:text}`fig15_noise_samples` and {glue:text}`fig15_noise_true`).

# %%
runs = train(SETTING, seeds=config["nonlinear_seeds"], n_iters=n_iters, lr={"sgd": lr_sgd, "adam": lr_adam},
             eval_every=max(1, n_iters // 50), eval_batch_size=config["eval_batch_size"],
             iterate_every=iterate_every)
noise = noise_at_init(SETTING, seed=noise_seed, n_samples=config["nonlinear_noise_samples"],
                      batch_size=SETTING.batch_size, true_batch=config["noise_true_batch"])
hessian_at = list(range(0, n_iters + 1, config["nonlinear_hessian_every"]))
numbers = condition_numbers(runs, iterations=hessian_at)
smooth = smoothness_along(runs)
glue("fig15_n_params", Architecture.of(SETTING).n_params, display=False)
glue("fig15_noise_seed", noise_seed, display=False)
paper = profiles.PROFILES["paper"]
glue("fig15_paper_seeds", len(paper["nonlinear_seeds"]), display=False)
glue("fig15_paper_iters", f"{paper['nonlinear_iters']:,}", display=False)
glue("fig15_paper_stride", f"{paper['nonlinear_hessian_every']:,}", display=False)
glue("fig15_noise_samples", config["nonlinear_noise_samples"], display=False)
glue("fig15_noise_true", config["noise_true_batch"], display=False)

# %% tags=["hide-input"]
fig, axes = plots.grid_of_axes(1, 4, width=3.6, height=3.2)
plots.loss_curves(axes[0, 0], runs, title="loss")
plots.noise_histogram(axes[0, 1], noise, title=f"gradient noise at init (seed {noise_seed})")
plots.optimizer_curves(axes[0, 2], runs, numbers["iterations"], numbers["diagonal"], band_divisor=2,
                       ylabel=r"$R_{\mathrm{med}}$ (diagonal)", title="robust condition number")
n_nonpositive = plots.optimizer_curves(axes[0, 3], runs, smooth["iterations"], smooth["smoothness"],
                                       ylabel="directional smoothness", title="directional smoothness")
axes[0, 0].legend(fontsize=6, loc="lower left")
fig.suptitle(f"Figure 15 — {SETTING.title} — {caption}", fontsize=8)
glue("fig15_panels", fig, display=False)
plots.plt.close(fig)
glue("fig15_nonpositive", n_nonpositive, display=False)

# %% [markdown]
# ```{glue:figure} fig15_panels
# :name: fig15
#
# SGDM black, Adam red. Left to right: evaluation loss (mean, ± std/4, median and every seed); gradient error at
# initialization with q-q inset; $R_{\mathrm{med}}$ (mean ± std/2); directional smoothness of the step taken (mean ±
# std/4; {glue:text}`fig15_nonpositive` non-positive values are triangles on the bottom edge). Fidelity:
# {glue:md}`fig15_caption`.
# ```

# %% [markdown]
# ## Measuring the four features
#
# Per seed (SGDM and Adam share initialization and data): **loss**, the late loss (median of the last 10% of
# evaluations) of SGDM over Adam's; **noise**, the excess kurtosis of the noise norms and their 99.9% quantile
# against a Gaussian's; **condition number**, $R^{\mathrm{SGD}}_{\mathrm{med}}/R^{\mathrm{Adam}}_{\mathrm{med}}$ at
# the last Hessian iteration; **smoothness**, the median over recorded steps (after the first) of each run's
# directional smoothness. A feature holds if (`verdicts.nonlinear_features`): the loss ratio exceeds 1 on every seed;
# the noise is heavy-tailed by {doc}`fig03_gradient_noise`'s rule (excess kurtosis above 1 and the 99.9% quantile
# beyond 4 sd); the mean condition-number ratio exceeds 1; Adam's median smoothness is lower on every seed. The claim is **reproduced** if all four hold, **partly** if two or three do, **not
# reproduced** otherwise.

# %% tags=["hide-input"]
loss_ratio = verdicts.late_loss_ratios(verdicts.late_losses(runs, "sgd"), verdicts.late_losses(runs, "adam"))
tails = tail_statistics(noise)
rmed_ratio, _ = paired_ratios(runs, numbers["diagonal"][:, -1:])
rmed_ratio = rmed_ratio[:, 0]
later = smooth["iterations"] > 0
smooth_sgd, smooth_adam, _ = paired_values(runs, np.median(smooth["smoothness"][:, later], axis=1))
features = verdicts.nonlinear_features(loss_ratio, tails, rmed_ratio, smooth_sgd, smooth_adam)
held = sum(features.values())
verdict = verdicts.votes_verdict(features.values(), partly_from=2)
table = [
    {"feature": "Adam beats SGDM", "measured": "late-loss ratio SGDM/Adam per seed: "
     + ", ".join(f"{r:.3g}" for r in loss_ratio)},
    {"feature": "heavy-tailed noise", "measured": f"excess kurtosis {tails['excess_kurtosis']:.3g}; 99.9% quantile "
     f"{tails['q0.999_in_sd']:.3g} sd (Gaussian {tails['q0.999_gaussian_in_sd']:.3g})"},
    {"feature": "R_med larger for SGDM", "measured": f"ratio SGD/Adam at t={numbers['iterations'][-1]} per seed: "
     + ", ".join(f"{r:.3g}" for r in rmed_ratio)},
    {"feature": "Adam smoother", "measured": "median directional smoothness SGDM / Adam per seed: "
     + ", ".join(f"{a:.3g} / {b:.3g}" for a, b in zip(smooth_sgd, smooth_adam))},
]
for row in table:
    row["holds"] = "yes" if features[row["feature"]] else "no"
display(Markdown(scorecard.markdown_table(table, columns=["feature", "measured", "holds"])))
rows = [{"claim": "the nonlinear task keeps the features", "figure": "Fig. 15", "setting": "nonlinear",
         "paper": "similar plots to the case of linear regression",
         "ours": "; ".join(f"{r['feature']}: {r['holds']}" for r in table)
                 + f" ({held}/4; {profile} profile, {n_iters} iterations)", "verdict": verdict,
         **verdicts.count_fields(
             [verdicts.paired_comparison(loss_ratio)["outcome"] == verdicts.HOLDS,
              verdicts.interval_outcome(*uncertainty.statistic_interval(noise, stats.kurtosis), 1) == verdicts.HOLDS,
              verdicts.paired_comparison(rmed_ratio)["outcome"] == verdicts.HOLDS,
              verdicts.paired_comparison(smooth_sgd / smooth_adam)["outcome"] == verdicts.HOLDS],
             "features decided at level 0.05 (sign tests over seeds; the noise's kurtosis interval)",
             f"{len(loss_ratio)} seeds: a sign test decides at 5 of 5 or more")}]
glue("fig15_verdict", Markdown(verdict), display=False)
glue("fig15_held", held, display=False)
glue("fig15_failed", Markdown(", ".join(k for k, v in features.items() if not v) or "none"), display=False)
glue("fig15_caption", Markdown(caption), display=False)

# %% [markdown]
# The key numbers, rounded (nbval compares this output with the committed reference):

# %% tags=["nbval-check"]
# NBVAL_CHECK_OUTPUT
print("late-loss ratio SGDM/Adam:", [f"{r:.2g}" for r in loss_ratio])
print(f"noise excess kurtosis: {tails['excess_kurtosis']:.2g}")
print("R_med ratio SGD/Adam (last):", [f"{r:.2g}" for r in rmed_ratio])

# %% [markdown]
# ## What we see
#
# {glue:text}`fig15_held` of the four features hold (**{glue:md}`fig15_verdict`**); the ones that do not:
# {glue:md}`fig15_failed`. Directional smoothness is not a sign-definite quantity: away from a minimum the Hessian is
# indefinite, and the step can point along negative curvature (the triangles in the last panel).
#
# ## How it compares with the paper
#
# The paper shows the four panels without numbers, for 5 seeds over 10,000 iterations. The quick profile's runs are
# 500 iterations long (two seeds), so its loss and condition-number comparisons are early-training ones; the paper
# edition (plain `make book`) runs the authors' {glue:text}`fig15_paper_seeds` seeds for
# {glue:text}`fig15_paper_iters` iterations with a Hessian every {glue:text}`fig15_paper_stride` iterations (the
# code's stride is 250).

# %%
scorecard.show(rows)
