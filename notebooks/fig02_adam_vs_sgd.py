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
# # Figure 2: Adam beats SGD with momentum
#
# **This page draws** the right three panels of Figure 2 of {cite:t}`ahn2024linear`: the loss against the iteration
# for SGD with momentum (SGDM) and Adam on the 3-layer linear Transformer, in Settings 1–3 of Table 1.
#
# **Parameters** (the next cell; every one can be overridden with papermill, e.g.
# `papermill notebooks/fig02_adam_vs_sgd.ipynb out.ipynb -p settings '["setting3"]' -p n_iters 300`):
# `profile` (`"quick"` or `"paper"`), `settings`, `seeds`, `n_iters`, `batch_size`, `lr_sgd`, `lr_adam`,
# `lr_source` (`"code"` or `"paper"`), `verdict_seeds` (the seeds the verdicts rest on), `eval_batches` (the
# independent evaluation batches of the reading robust to the draw), `horizon_seeds` (the seeds of the
# learning-rate grid at the full horizon). `None` means "take it from the profile or the setting".
#
# ## The claim
#
# Real Transformers train much faster with Adam than with SGD, whereas CNNs do not care much
# {cite:p}`kunstner2023noise`. The paper's first piece of evidence that the linear Transformer is a faithful
# abstraction is that it shows the same gap: "we observe the phenomenon (Adam ≫ SGD) over three different settings,
# to different extents" (Section 3.2).

# %% tags=["parameters"]
profile = "quick"  # "quick": CI fidelity (about a minute); "paper": 6 seeds x 10,000 iterations
settings = ["setting1", "setting2", "setting3"]
seeds = None  # None: the profile's seeds (quick: 0-2, paper: 0-5)
n_iters = None  # None: the profile's (quick: 1,250, paper: 10,000)
batch_size = None  # None: the profile's (1,000 fresh prompts per iteration, as in the authors' code)
lr_sgd = None  # None: the setting's learning rate from lr_source
lr_adam = None
lr_source = "code"  # "code": the authors' notebooks (default); "paper": Table 2
verdict_seeds = None  # None: the profile's (quick: 0-5, paper: 0-19); the figure draws `seeds`
eval_batches = None  # None: the profile's (10)
horizon_seeds = None  # None: the profile's (paper: 0 and 1; quick: 0)

# %%
import numpy as np
from IPython.display import Markdown, display
from myst_nb import glue

from lintf_core import plots, profiles, scorecard, verdicts
from lintf_core.settings import get_setting
from lintf_core.premise import premise_entry
from lintf_core.bench import reference_evaluations
from lintf_core.diagnostics import evaluation_batches, iterate_losses, late_iterate_losses, paired_ratios
from lintf_core.train import OPTIMIZER_LABELS, spiked, train_at_full_horizon_rates, train_verdict_seeds

plots.use_book_style()
settings = profiles.as_list("settings", settings)  # papermill -p passes lists as JSON text
config = profiles.resolve(profile, seeds=profiles.as_list("seeds", seeds), n_iters=n_iters, batch_size=batch_size,
                          verdict_seeds=profiles.as_list("verdict_seeds", verdict_seeds), eval_batches=eval_batches,
                          horizon_seeds=profiles.as_list("horizon_seeds", horizon_seeds))
caption = profiles.describe(config)
print(caption)

# %% [markdown]
# ## Method
#
# Each setting trains every seed with both optimizers in one batched computation (`lintf_core.train`). As in the
# authors' code, runs with the same seed share their initialization (i.i.d. $\mathcal N(0, 0.05^2)$) and their
# stream of fresh training prompts, gradients are clipped to global norm 1, SGDM uses momentum 0.9 and Adam
# $\beta_1=\beta_2=0.9$. The loss is measured every 50 iterations on one fixed evaluation batch of 1,000 prompts
# (seed 99), the same for every run. Learning rates follow the authors' code: for Adam it uses 0.02 in Setting 1 and
# 0.005 in Setting 2, where the paper's Table 2 says 0.005 and 0.02 (they look swapped); `lr_source="paper"` uses
# Table 2 instead.

# %%
results, verdict_runs = {}, {}
for name in settings:  # the verdict seeds and the figure's seeds in one training; the figure draws the latter
    verdict_runs[name], results[name] = train_verdict_seeds(name, config, lr={"sgd": lr_sgd, "adam": lr_adam},
                                                            lr_source=lr_source)

# %% tags=["hide-input"]
fig, axes = plots.grid_of_axes(2, len(settings))
for column, name in enumerate(settings):
    plots.loss_curves(axes[0, column], results[name], metric="eval_loss", title=get_setting(name).title)
    plots.loss_curves(axes[1, column], results[name], metric="eval_loss_median")
axes[0, 0].legend(fontsize=7, loc="lower left")
fig.suptitle(f"Figure 2 (right), top row; bottom row: beyond the paper — {caption}", fontsize=9)
glue("fig02_loss_curves", fig, display=False)
plots.plt.close(fig)  # shown once, through the glued figure below

# %% [markdown]
# ```{glue:figure} fig02_loss_curves
# :name: fig02
#
# Top row (the paper's figure): loss on the fixed evaluation batch (the mean over its 1,000 prompts) against the
# iteration, SGDM (black) and Adam (red). Thick: mean over seeds; band: ± std/4 (as in the authors' plots);
# dashed: median over seeds; thin: every seed. Bottom row (beyond the paper): the same runs measured by the median
# per-prompt loss of the evaluation batch, i.e. how the model does on a typical prompt. Fidelity:
# {glue:md}`fig02_caption`.
# ```

# %% [markdown]
# ## Measuring the gap
#
# A run's **late loss** is the median of its evaluation losses over the last 10% of iterations: Adam's loss can
# spike for a few evaluations (the thin lines show it), and one spike at the very last evaluation should not decide
# the verdict by itself. The raw final losses are in the table too. For each seed we divide SGDM's late loss by
# Adam's (the two runs share initialization and data, so the ratio compares like with like). The claim holds, in
# our reading, when the **median of these paired ratios exceeds 2 and Adam is lower on every seed**; it holds partly
# when the median ratio exceeds 1; otherwise it is not reproduced. The evaluation batch is finite: its standard error
# (spread of the per-prompt losses / √1000) is shown relative to the loss, because per-prompt losses are
# heavy-tailed.

# %% tags=["hide-input"]
def final_losses(result, optimizer):
    runs = result.runs(optimizer=optimizer)
    return result.eval_loss[runs, -1], result.eval_loss_se[runs, -1]


rows, table, differences, paper_test, row_of = [], [], [], {}, {}
for name in settings:
    result = results[name]
    sgd, sgd_se = final_losses(result, "sgd")
    adam, adam_se = final_losses(result, "adam")
    late_sgd, late_adam = verdicts.late_losses(result, "sgd"), verdicts.late_losses(result, "adam")  # diverged: inf
    ratios = verdicts.late_loss_ratios(late_sgd, late_adam)
    with np.errstate(invalid="ignore", divide="ignore"):  # the median prompt's late losses, paired (diverged: inf)
        typical = (verdicts.late_losses(result, "sgd", metric="eval_loss_median")
                   / verdicts.late_losses(result, "adam", metric="eval_loss_median"))
    median_ratio = verdicts.paired_gap(late_sgd, late_adam)
    adam_wins = int((ratios > 1).sum())
    verdict = verdicts.adam_gap_verdict(ratios)
    paper_test[name] = verdicts.paired_comparison(ratios)
    table.append({"setting": name, "SGDM final loss (mean ± sd)": f"{sgd.mean():.3g} ± {sgd.std(ddof=1):.2g}",
                  "Adam final loss (mean ± sd)": f"{adam.mean():.3g} ± {adam.std(ddof=1):.2g}",
                  "SGDM median": f"{np.median(sgd):.3g}", "Adam median": f"{np.median(adam):.3g}",
                  "paired late-loss ratio SGDM/Adam (median, range)":
                      f"{median_ratio:.3g} ({np.nanmin(ratios):.3g}–{np.nanmax(ratios):.3g})",
                  "Adam lower on": f"{adam_wins}/{len(ratios)} seeds",
                  "typical-prompt ratio SGDM/Adam (median)": f"{np.median(typical):.3g}",
                  "eval-batch s.e. / loss": f"{np.median(sgd_se / sgd):.0%} (SGDM), {np.median(adam_se / adam):.0%} (Adam)",
                  "sign test, Adam lower (one-sided p)": f"{paper_test[name]['p_above']:.2g}",
                  "median ratio, 95% bootstrap CI": f"[{paper_test[name]['low']:.3g}, {paper_test[name]['high']:.3g}]",
                  "verdict (paper's protocol)": f"{verdict}; {paper_test[name]['outcome']} at n = {len(ratios)}"})
    row_of[name] = len(rows)
    rows.append({"claim": "Adam ≫ SGD (loss gap)", "figure": "Fig. 2", "setting": name,
                 "paper": "Adam well below SGDM in all three settings, to different extents",
                 "ours": f"late loss SGDM/Adam: median paired ratio {median_ratio:.3g}, Adam lower on "
                         f"{adam_wins}/{len(ratios)} seeds ({config['profile']} profile)",
                 "verdict": verdict,
                 "premise": premise_entry(name, "gap", verdict == verdicts.REPRODUCED,
                                          f"gap {median_ratio:.3g} [{paper_test[name]['low']:.3g}, "
                                          f"{paper_test[name]['high']:.3g}], Adam lower on {adam_wins}/{len(ratios)} "
                                          "seeds")})
    glue(f"fig02_ratio_{name}", median_ratio, display=False)
    glue(f"fig02_typical_{name}", float(np.median(typical)), display=False)
    if verdict != "reproduced":
        differences.append(
            f"In {get_setting(name).title.split(':')[0]} ({config['profile']} profile) the paper's gap is "
            f"{verdict}: SGDM's late loss is {median_ratio:.3g}× Adam's (median over seeds), while on a typical "
            f"prompt it is {np.median(typical):.3g}×; the standard error of Adam's final evaluation loss is "
            f"{np.median(adam_se / adam):.0%} of the loss itself.")
    glue(f"fig02_verdict_{name}", Markdown(verdict), display=False)

glue("fig02_caption", Markdown(caption), display=False)
glue("fig02_differences", Markdown(" ".join(differences) or
                                   "Every setting shows the gap the paper reports, at this fidelity."),
     display=False)


def spike_count(result, optimizer):
    spiked = result.spiking_runs(optimizer, factor=10)
    return f"{OPTIMIZER_LABELS[optimizer]} {spiked.sum()}/{len(spiked)}"


spike_summary = "; ".join(f"{get_setting(name).title.split(':')[0]}: {spike_count(results[name], 'adam')}, "
                          f"{spike_count(results[name], 'sgd')}" for name in settings)
glue("fig02_spikes", Markdown(spike_summary), display=False)
# One column per setting: easier to read than one very wide row per setting.
metrics = [key for key in table[0] if key != "setting"]
display(Markdown(scorecard.markdown_table([{"": m, **{t["setting"]: t[m] for t in table}} for m in metrics],
                                          columns=["", *settings])))

# %% [markdown]
# **Cross-check.** Are Adam's spikes a property of the problem or an artefact of our batched engine? The
# straightforward reference loop of `lintf_core/bench.py` (one run at a time, token-level attention, autograd and
# `torch.optim`; the tests hold it equal to the engine step by step on a shared stream of prompts) re-trains the
# most spike-prone Adam run on its own and is evaluated on the same batch. It draws every prompt, while the engine
# draws each prompt's statistics directly (`lintf_core/data.py`: the same law, another random stream), so a spike
# need not fall at the same iteration: the question is whether the reference loop spikes too.

# %% tags=["hide-input"]
spike_rate = {name: results[name].spiking_runs("adam").mean() for name in settings}
spiky = max(settings, key=spike_rate.get)
if spike_rate[spiky] > 0:
    adam_runs = results[spiky].runs(optimizer="adam")
    spiking = results[spiky].spiking_runs("adam")
    seed, lr = int(results[spiky].seed[adam_runs][spiking][0]), float(results[spiky].lr[adam_runs][0])
    reference = reference_evaluations(spiky, "adam", seed, lr, config["reference_iters"], config)
    means, medians = reference["mean"], reference["median"]
    reference_spiked = bool(spiked(means, factor=10))
    reference_text = (
        f"The reference loop, trained on {spiky} with Adam (seed {seed}, lr {lr:g}, {config['reference_iters']} "
        f"iterations), {'also spiked' if reference_spiked else 'did not spike'}: its mean evaluation loss reached "
        f"{means.max():.3g}, {means.max() / means.min():.3g}× its best value, while its median per-prompt loss "
        f"was at most {medians.max():.3g}.")
else:
    reference_text = "No Adam run spiked at this fidelity, so there was nothing to cross-check."
glue("fig02_reference", Markdown(reference_text), display=False)
print(reference_text)

# %% [markdown]
# ## A reading that does not hang on one batch
#
# The verdicts above follow the paper's protocol: one fixed evaluation batch of 1,000 prompts (seed 99), six seeds.
# The model's prediction is a polynomial of high degree in the covariates (each layer is cubic in its input), so
# with heavy-tailed covariates the mean loss over 1,000 prompts can be set by the single largest prompt of the batch.
# So we read the same runs a second way, robust to that draw:
#
# - **more seeds**: the verdict seeds ({glue:text}`fig02_n_verdict_seeds` of them; the figure above draws the
#   paper's six, trained in the same batch of runs, so they are exactly the same runs);
# - **more batches**: every recorded iterate ($t = 0, 250, \dots$) is scored on {glue:text}`fig02_n_batches`
#   further independent batches of 1,000 prompts (seeds 100, 101, …), besides the book's seed-99 batch and the
#   authors' own seed-99 batch (drawn exactly as their plotting code draws it: `data.authors_evaluation_batch`);
# - per batch, a seed's late loss is the median over the iterates of the last 10% of training; the paired ratio
#   SGDM/Adam is read with the exact **sign test** ("Adam lower on k of n seeds", one-sided, level 0.05 each way) and
#   a **bootstrap 95% interval** of its median (`verdicts.paired_comparison`). Each batch then says *holds*,
#   *opposite holds* or *cannot tell*; the robust verdict is the outcome that at least 90% of the batches agree on,
#   else *cannot tell*;
# - the **typical prompt**: the same, with the median prompt's loss in place of the batch mean;
# - the **weight of the largest prompts**: the share of a batch's mean loss that its 10 largest prompts (1%) carry.

# %% tags=["hide-input"]
batches = [("book", 99)] + evaluation_batches(config["eval_batches"], authors=True)
batch_labels = ["99 (book's)"] + [str(seed) for _, seed in batches[1:-1]] + ["authors'"]
readings, robust_rows, typical_test = {}, [], {}
for name in settings:
    losses = iterate_losses(verdict_runs[name], batches)
    ratios_by_batch, seed_list = paired_ratios(verdict_runs[name], late_iterate_losses(losses))
    typical_by_batch, _ = paired_ratios(verdict_runs[name], late_iterate_losses(losses, "median"))
    fresh = slice(1, len(batches) - 1)  # the independent batches (not the two seed-99 ones)
    readings[name] = {"losses": losses, "ratios": ratios_by_batch, "seeds": seed_list,
                      "fresh": verdicts.per_batch_comparisons(ratios_by_batch[:, fresh]),
                      "book": verdicts.paired_comparison(ratios_by_batch[:, 0]),
                      "authors": verdicts.paired_comparison(ratios_by_batch[:, -1])}
    typical_test[name] = verdicts.paired_comparison(np.median(typical_by_batch[:, fresh], axis=1))
    late = losses["iterations"] >= 0.9 * losses["iterations"][-1]
    top_share = losses["top_share"][:, late][:, :, fresh]
    r = readings[name]
    robust_rows.append({
        "setting": name, "seeds": len(seed_list),
        "book's seed-99 batch": verdicts.describe_comparison(r["book"]) + f" → **{r['book']['outcome']}**",
        "authors' seed-99 batch": verdicts.describe_comparison(r["authors"]) + f" → **{r['authors']['outcome']}**",
        f"{config['eval_batches']} fresh batches: share where the claim holds":
            f"{r['fresh']['share']:.0%} → **{r['fresh']['outcome']}**",
        "typical prompt (median of the per-batch ratios)":
            verdicts.describe_comparison(typical_test[name]) + f" → **{typical_test[name]['outcome']}**",
        "share of the late mean loss in the 10 largest prompts (median, max)":
            f"{np.median(top_share):.0%}, {np.nanmax(top_share):.0%}"})
    glue(f"fig02_share_{name}", Markdown(f"{r['fresh']['share']:.0%}"), display=False)
    glue(f"fig02_robust_{name}", Markdown(r["fresh"]["outcome"]), display=False)
    glue(f"fig02_authors_{name}", Markdown(r["authors"]["outcome"]), display=False)
glue("fig02_n_verdict_seeds", len(readings[settings[0]]["seeds"]), display=False)
glue("fig02_n_batches", config["eval_batches"], display=False)
display(Markdown(scorecard.markdown_table([{"": m, **{t["setting"]: t[m] for t in robust_rows}}
                                           for m in list(robust_rows[0])[1:]], columns=["", *settings])))

# %% tags=["hide-input"]
fig, axes = plots.grid_of_axes(2, len(settings))
for column, name in enumerate(settings):
    r = readings[name]
    plots.ratio_strip(axes[0, column], r["ratios"], batch_labels, title=get_setting(name).title,
                      ylabel="late-loss ratio SGDM/Adam, per seed")
    losses = r["losses"]
    plots.optimizer_curves(axes[1, column], verdict_runs[name], losses["iterations"], losses["mean"][:, :, -1],
                           band_divisor=4, ylabel="loss on the authors' batch")
axes[1, 0].legend(fontsize=7, loc="lower left")
fig.suptitle(f"Figure 2, read on other evaluation batches — {len(readings[settings[0]]['seeds'])} seeds, "
             f"{caption}", fontsize=9)
glue("fig02_batches", fig, display=False)
plots.plt.close(fig)

# %% [markdown]
# ```{glue:figure} fig02_batches
# :name: fig02-batches
#
# Top: each seed's late-loss ratio SGDM/Adam (a dot; above the line Adam is lower) on each evaluation batch: the
# book's seed-99 batch (the paper's protocol), the independent batches, and the authors' seed-99 batch; a bar marks
# the median over seeds. Bottom: the same runs' loss on the authors' evaluation batch along training (the
# iterates every 250 iterations), as the authors' plotting code would have drawn it: thick the mean over the seeds,
# band ± std/4, thin every seed.
# ```

# %% [markdown]
# ## Each claim that is not reproduced, diagnosed
#
# A "not reproduced" can have four causes, and each is put to an experiment here rather than argued:
#
# - **the evaluation batch**: the readings above;
# - **the learning rate**: the paper's own rule — the best of a 10-value grid (Table 2's rate × $2^k$,
#   $k = -5, \dots, 4$) — applied at the full horizon ({glue:text}`fig02_horizon_iters` iterations, seeds
#   {glue:md}`fig02_horizon_seeds`) instead of the short runs of the Table 2 page, and the claim re-read at the
#   two best rates on the verdict seeds and the fresh batches (run only where the claim does not already hold on
#   the fresh batches: there no other condition can change the conclusion);
# - **precision**: a run that diverged would be re-run in float64 (as on the depth page); the table counts them;
# - **the seeds**: the sign test and the interval.
#
# The conclusion is computed from those outcomes (`verdicts.diagnose`).

# %% tags=["hide-input"]
diagnoses, diagnosis_table = {}, []
for name in settings:
    verdict, r = rows[row_of[name]]["verdict"], readings[name]
    conditions, lr_text = [], "not needed (reproduced)"
    if verdict != "reproduced" and r["fresh"]["outcome"] == verdicts.HOLDS:
        lr_text = "not run: the claim holds on the fresh batches, which no other condition changes"
    elif verdict != "reproduced":
        best, used, at_best = train_at_full_horizon_rates(name, config, verdict_runs[name])
        if at_best is None:
            lr_outcome = r["fresh"]["outcome"]
        else:
            best_ratios, _ = paired_ratios(at_best, late_iterate_losses(iterate_losses(at_best, batches[1:-1])))
            lr_outcome = verdicts.per_batch_comparisons(best_ratios)["outcome"]
        conditions.append((f"the grid's best rates at the full horizon (SGDM {best['sgd']:g}, Adam "
                           f"{best['adam']:g})", lr_outcome))
        lr_text = (f"best of the grid at {config['n_iters']} iterations: SGDM {best['sgd']:g}, Adam {best['adam']:g} "
                   f"(used: {used['sgd']:g}, {used['adam']:g}) → **{lr_outcome}**")
    diverged = int(verdict_runs[name].diverged().sum())
    diagnoses[name] = verdicts.diagnose(r["book"]["outcome"], r["fresh"]["outcome"], len(r["seeds"]), conditions)
    diagnosis_table.append({
        "setting": name, "paper's protocol (its seeds, the seed-99 batch)":
            f"{verdict}; {paper_test[name]['outcome']} at n = {paper_test[name]['n']}",
        "evaluation batch": f"seed-99 batch, {len(r['seeds'])} seeds: {r['book']['outcome']}; fresh batches: "
                            f"holds on {r['fresh']['share']:.0%} → {r['fresh']['outcome']}; authors' batch: "
                            f"{r['authors']['outcome']}",
        "learning rate": lr_text,
        "precision": f"{diverged} of {verdict_runs[name].n_runs} runs diverged" +
                     (" (float64 re-run not done here)" if diverged else ": not in question"),
        "seeds": verdicts.describe_comparison(r["book"]),
        "conclusion": f"**{diagnoses[name]}**"})
    rows[row_of[name]].update(
        n=f"{paper_test[name]['n']} seeds (paper's protocol); {len(r['seeds'])} seeds × {config['eval_batches']} "
          f"batches (robust)", uncertainty=verdicts.describe_comparison(paper_test[name]),
        robust=r["fresh"]["outcome"], diagnosis=diagnoses[name])
    glue(f"fig02_diagnosis_{name}", Markdown(diagnoses[name]), display=False)
glue("fig02_horizon_iters", config["n_iters"], display=False)
glue("fig02_horizon_seeds", Markdown(", ".join(map(str, config["horizon_seeds"]))), display=False)
display(Markdown(scorecard.markdown_table([{"": m, **{t["setting"]: t[m] for t in diagnosis_table}}
                                           for m in list(diagnosis_table[0])[1:]], columns=["", *settings])))

# %% [markdown]
# The key numbers, rounded (CI's nbval compares this cell's output with the committed reference, so a drift in
# the engine shows up as a failing test):

# %% tags=["nbval-check"]
# NBVAL_CHECK_OUTPUT
for name in settings:
    result = results[name]
    init = result.eval_loss[:, 0].mean()
    ratio = verdicts.paired_gap(verdicts.late_losses(result, "sgd"), verdicts.late_losses(result, "adam"))
    print(f"{name}: initial loss {init:.3g}, median late-loss ratio SGDM/Adam {ratio:.2g}; robust: "
          f"{readings[name]['fresh']['outcome']} ({readings[name]['fresh']['share']:.0%} of batches); "
          f"authors' batch: {readings[name]['authors']['outcome']}; {diagnoses[name]}")

# %% [markdown]
# ## What we see
#
# The median paired ratio of late losses, SGDM over Adam, is {glue:text}`fig02_ratio_setting1:.3g` in Setting 1,
# {glue:text}`fig02_ratio_setting2:.3g` in Setting 2 and {glue:text}`fig02_ratio_setting3:.3g` in Setting 3, so
# our verdicts under the paper's protocol are **{glue:md}`fig02_verdict_setting1`**,
# **{glue:md}`fig02_verdict_setting2`** and **{glue:md}`fig02_verdict_setting3`**. Read on
# {glue:text}`fig02_n_batches` independent evaluation batches with {glue:text}`fig02_n_verdict_seeds` seeds, the claim
# holds on {glue:md}`fig02_share_setting1`, {glue:md}`fig02_share_setting2` and {glue:md}`fig02_share_setting3` of
# the batches (robust verdicts: {glue:md}`fig02_robust_setting1`, {glue:md}`fig02_robust_setting2`,
# {glue:md}`fig02_robust_setting3`); on the authors' own evaluation batch it is {glue:md}`fig02_authors_setting1`,
# {glue:md}`fig02_authors_setting2` and {glue:md}`fig02_authors_setting3`. The computed diagnoses: Setting 1
# {glue:md}`fig02_diagnosis_setting1`, Setting 2 {glue:md}`fig02_diagnosis_setting2`, Setting 3
# {glue:md}`fig02_diagnosis_setting3`. Where the paper's protocol and the robust reading disagree, the verdict is
# decided by the evaluation batch, not by the optimizers. On a typical prompt (bottom row) the ratios are
# {glue:text}`fig02_typical_setting1:.3g`, {glue:text}`fig02_typical_setting2:.3g` and
# {glue:text}`fig02_typical_setting3:.3g`.
#
# The thin per-seed lines show what a mean hides. Runs whose evaluation loss at some point rose above ten times
# their best value so far: {glue:md}`fig02_spikes`. Such spikes come from a handful of prompts: with heavy-tailed
# covariates (Setting 3) a prompt whose covariates are far out in the tail gets an enormous squared error, and the
# mean over 1,000 prompts is then set by one or two of them (the standard errors in the table say how much), while
# the median prompt keeps improving. The paper's loss curves are means over prompts; ours are too (top row), and
# the bottom row separates the two effects.
#
# ## How it compares with the paper
#
# The paper shows the three panels without numbers and reports Adam below SGDM in all three settings, "to
# different extents". {glue:md}`fig02_differences`
#
# {glue:md}`fig02_reference` The authors report that their learning rates were the best of a 10-point grid;
# their grid and its results were not published, and a later chapter re-runs that search. The quick profile runs 1,250 of the paper's 10,000
# iterations; `make book PROFILE=paper` (or `-p profile paper`) re-runs this page at the paper's fidelity. The
# scorecard rows below carry the measured ratios and verdicts to the book's
# {doc}`scorecard <../book/scorecard>`.

# %%
scorecard.show(rows)
