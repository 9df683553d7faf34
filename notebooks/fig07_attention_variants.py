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
# # Figure 7: linear attention suits linear regression better than softmax
#
# **This page draws** Figure 7 of {cite:t}`ahn2024linear` — the loss of 3-layer Transformers with linear and with
# softmax attention — and adds, as an extension, the Gaussian-kernel attention of the poster by Song et al. (the
# subject of the book's poster chapter).
#
# **Parameters** (next cell; override with papermill `-p name value`): `profile` (`"quick"` or `"paper"`),
# `setting`, `seeds`, `n_iters`, `lr_sgd`, `lr_adam`. `None` means "take it from the profile or the setting".
#
# ## The claim
#
# "The loss of linear Transformer decreases much faster" than that of the softmax Transformer (Figure 7): linear
# attention is "much better suited to the task of linear regression" (Section 3.1), which is one reason to study it.

# %% tags=["parameters"]
profile = "quick"  # "quick": 3 seeds x 200 iterations; "paper": 6 seeds x 2,000 (see the note on cost below)
setting = "setting1"  # the paper does not say; Setting 1 is its default
seeds = None  # None: the profile's
n_iters = None  # None: the profile's variant_iters (quick: 200, paper: 2,000)
lr_sgd = None  # None: the setting's (code) learning rates, for every attention
lr_adam = None

# %%
import numpy as np
from IPython.display import Markdown, display
from myst_nb import glue

from lintf_core import plots, profiles, scorecard, verdicts
from lintf_core.settings import get_setting
from lintf_core.train import OPTIMIZER_LABELS, train_profile

plots.use_book_style()
config = profiles.resolve(profile, seeds=profiles.as_list("seeds", seeds), variant_iters=n_iters)
config["n_iters"] = config["variant_iters"]
caption = profiles.describe(config)
print(caption)
VARIANTS = {"linear": dict(attention="linear"), "softmax": dict(attention="softmax"),
            "gaussian": dict(attention="gaussian", query_key="separate")}
LABELS = {"linear": "linear (the paper's model)", "softmax": "softmax (Fig. 7)",
          "gaussian": "Gaussian kernel (extension: the poster's)"}

# %% [markdown]
# ## Method
#
# The same training as Figure 2 (paired seeds, clipping at 1, the code's learning rates, the fixed evaluation batch)
# with three attention units in every layer, scoring key $i$ for query $j$ by
#
# - **linear**: $z_i^\top Q z_j$, Eq. (7);
# - **softmax**: the softmax over $i$ of $z_i^\top Q z_j$, taken over all $n+1$ tokens *before* the mask hides the
#   query, with the $1/n$ kept — as in the comment in the authors' code, the only trace of this experiment there;
# - **Gaussian kernel** (extension): $\exp(-\lVert W_Q z_j - W_K z_i\rVert^2/(2\sqrt d))$, unnormalized, as in the
#   poster's Eq. (3)–(4); it needs separate query and key matrices, both trained and initialized like $Q$.
#
# The paper gives neither optimizer nor learning rate for Figure 7: we train both optimizers at Setting 1's rates.
# Softmax and Gaussian attention have no exact prompt-statistics form, so they train at token level (a fused,
# compiled forward and backward, `lintf_core/engine/tokens.py`, tested against the readable model), still about ten
# times slower a step than linear attention; hence the shorter runs of both profiles (the linear curve uses the
# same length).

# %%
runs = {}
for variant, overrides in VARIANTS.items():
    runs[variant] = train_profile(setting, config, lr={"sgd": lr_sgd, "adam": lr_adam}, **overrides)

# %% tags=["hide-input"]
COLORS = {"linear": "tab:blue", "softmax": "tab:orange", "gaussian": "tab:green"}
fig, axes = plots.grid_of_axes(1, 2)
for ax, opt in zip(axes[0], OPTIMIZER_LABELS):
    for variant in VARIANTS:
        result = runs[variant]
        losses = result.eval_loss[result.runs(optimizer=opt)]
        mean, std = losses.mean(0), losses.std(0, ddof=1) if len(losses) > 1 else 0 * losses[0]
        ax.plot(result.eval_iterations, mean, color=COLORS[variant], lw=2, label=LABELS[variant])
        ax.fill_between(result.eval_iterations, mean - std / 4, mean + std / 4, color=COLORS[variant], alpha=0.1)
        ax.plot(result.eval_iterations, losses.T, color=COLORS[variant], lw=0.5, alpha=0.3)
    ax.set_yscale("log")
    ax.set_xlabel("Iteration")
    ax.set_ylabel("loss (mean over evaluation prompts)")
    ax.set_title(f"{OPTIMIZER_LABELS[opt]}")
axes[0, 0].legend(fontsize=7)
fig.suptitle(f"Figure 7 (+ Gaussian kernel) — {get_setting(setting).title} — {caption}", fontsize=9)
glue("fig07_curves", fig, display=False)
plots.plt.close(fig)

# %% [markdown]
# ```{glue:figure} fig07_curves
# :name: fig07
#
# Evaluation loss of 3-layer Transformers with linear (blue), softmax (orange) and Gaussian-kernel (green)
# attention; left SGDM, right Adam. Thick: mean over seeds; band: ± std/4; thin: every seed. Fidelity:
# {glue:md}`fig07_caption`.
# ```

# %% [markdown]
# ## Measuring the gap
#
# Per optimizer and seed (the variants share initial data streams, not parameters), the late loss (median over the
# last 10% of evaluations) of softmax over that of linear attention. Our reading of the claim: **reproduced** when
# linear attention's late loss is lower for every seed with both optimizers and the median ratio exceeds 2 ("much
# faster"); **partly reproduced** when it is lower for most seeds; **not reproduced** otherwise.

# %% tags=["hide-input"]
table, ratios = [], {}
for opt in OPTIMIZER_LABELS:
    linear = verdicts.late_losses(runs["linear"], opt)  # a diverged run: inf
    row = {"optimizer": OPTIMIZER_LABELS[opt], "linear: late loss (median)": f"{np.median(linear):.3g}"}
    for variant in ("softmax", "gaussian"):
        other = verdicts.late_losses(runs[variant], opt)
        with np.errstate(invalid="ignore", divide="ignore"):
            ratios[variant, opt] = other / linear
        row[f"{variant}: late loss (median)"] = f"{np.median(other):.3g}"
        row[f"{variant} / linear (median, per seed)"] = (f"{np.median(ratios[variant, opt]):.3g} ("
                                                         + ", ".join(f"{r:.2g}" for r in ratios[variant, opt]) + ")")
    table.append(row)
display(Markdown(scorecard.markdown_table(table, columns=list(table[0]))))

softmax_ratios = np.concatenate([ratios["softmax", opt] for opt in OPTIMIZER_LABELS])
wins = int((softmax_ratios > 1).sum())
verdict = verdicts.faster_verdict(softmax_ratios)
gaussian_ratios = np.concatenate([ratios["gaussian", opt] for opt in OPTIMIZER_LABELS])
rows = [{"claim": "linear attention beats softmax on linear regression", "figure": "Fig. 7", "setting": setting,
         "paper": "the linear Transformer's loss decreases much faster",
         "ours": f"softmax/linear late-loss ratio, median {np.median(softmax_ratios):.3g}; linear lower in "
                 f"{wins}/{len(softmax_ratios)} (seed, optimizer) pairs ({profile} profile, "
                 f"{config['n_iters']} iterations)", "verdict": verdict,
         **verdicts.uncertainty_fields(verdicts.paired_comparison(softmax_ratios), unit="(seed, optimizer) pairs")}]
glue("fig07_verdict", Markdown(verdict), display=False)
glue("fig07_softmax_ratio", float(np.median(softmax_ratios)), display=False)
glue("fig07_gaussian_ratio", float(np.median(gaussian_ratios)), display=False)
glue("fig07_caption", Markdown(caption), display=False)

# %% [markdown]
# The key numbers, rounded (nbval compares this output with the committed reference):

# %% tags=["nbval-check"]
# NBVAL_CHECK_OUTPUT
for (variant, opt), r in ratios.items():
    print(f"{variant}/linear late-loss ratio, {opt}: median {np.median(r):.2g}")

# %% [markdown]
# ## What we see
#
# Softmax attention's late loss is a median {glue:text}`fig07_softmax_ratio:.3g` times linear attention's
# (**{glue:md}`fig07_verdict`** by our rule); the Gaussian kernel's is {glue:text}`fig07_gaussian_ratio:.3g`
# times. With a single head, a softmax layer averages the value vectors with positive weights that sum to one,
# which cannot express the signed, unnormalized sum $\frac1n\sum_i y_i x_i^\top Q x_j$ that one step of gradient
# descent on the prompt's regression needs {cite:p}`vonoswald2023transformers`; the Gaussian kernel's weights are
# positive too.
#
# ## How it compares with the paper
#
# The paper shows one panel without numbers, optimizer or learning rate. Our runs are shorter than the paper's
# 10,000 iterations in both profiles because token-level attention costs about ten times more per step (Setting 1's
# learning rates were tuned for linear attention, not for the other two — a fairer comparison would tune each).
# The poster chapter studies the Gaussian kernel on its own terms: {doc}`poster_kernels_convergence` (gradient
# descent's convergence with each kernel) and {doc}`poster_landscape` (the loss landscapes).

# %%
scorecard.show(rows)
