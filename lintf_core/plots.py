"""The book's one look: a seaborn theme and the plot helpers every figure notebook uses.

Colours follow the authors' plots: SGDM black, Adam red; bands have alpha 0.1.
"""

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
from scipy import stats

from .train import OPTIMIZER_LABELS

COLORS = {"sgd": "black", "adam": "tab:red"}


def use_book_style():
    sns.set_theme(context="notebook", style="whitegrid", font_scale=0.9)
    plt.rcParams.update({"figure.dpi": 110, "savefig.dpi": 150, "axes.titleweight": "bold"})


METRIC_LABELS = {"eval_loss": "loss (mean over evaluation prompts)",
                 "eval_loss_median": "median per-prompt loss"}


def loss_curves(ax, trajectories, metric="eval_loss", band_divisor=4, per_seed=True, title=None):
    """Evaluation loss vs iteration per optimizer (and learning rate): the mean over seeds (thick), a band of
    +-std/band_divisor around it (the authors' plots use std/4, unbiased std), every seed (thin) and the median
    over seeds (dashed). Log y axis. metric: "eval_loss" (the paper's) or "eval_loss_median"."""
    x = trajectories.eval_iterations
    for opt in OPTIMIZER_LABELS:
        for lr in sorted({float(v) for v in trajectories.lr[trajectories.runs(optimizer=opt)]}):
            runs = trajectories.runs(optimizer=opt, lr=lr)
            losses = getattr(trajectories, metric)[runs]
            mean = losses.mean(0)
            std = losses.std(0, ddof=1) if len(runs) > 1 else np.zeros_like(mean)
            color = COLORS[opt]
            ax.plot(x, mean, color=color, lw=2, label=f"{OPTIMIZER_LABELS[opt]} (lr {lr:g}): mean")
            ax.fill_between(x, mean - std / band_divisor, mean + std / band_divisor, color=color, alpha=0.1, lw=0)
            if len(runs) > 1:
                ax.plot(x, np.median(losses, 0), color=color, lw=1, ls="--", label="median over seeds")
                if per_seed:
                    ax.plot(x, losses.T, color=color, lw=0.5, alpha=0.3)
    ax.set_yscale("log", nonpositive="clip")
    ax.set_xlabel("Iteration")
    ax.set_ylabel(METRIC_LABELS[metric])
    if title:
        ax.set_title(title)


def grid_of_axes(rows, cols, width=4.2, height=3.4):
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False,
                             constrained_layout=True)
    return fig, axes


def noise_histogram(ax, norms, title=None):
    """Figure 3's panel: a density histogram (100 bins) of gradient-error norms with an inset q-q plot against the
    best-fit Gaussian (scipy.stats.probplot; red: least-squares line). Points above the line on the right are a
    tail heavier than Gaussian."""
    ax.hist(norms, bins=100, density=True, color="tab:blue", alpha=0.8)
    ax.set_xlabel("Gradient error")
    ax.set_ylabel("Density")
    if title:
        ax.set_title(title)
    inset = ax.inset_axes([0.58, 0.5, 0.38, 0.38])
    (theoretical, ordered), (slope, intercept, _) = stats.probplot(norms, dist=stats.norm)
    inset.plot(theoretical, ordered, "o", ms=2, mfc="none", mec="tab:blue")
    inset.plot(theoretical, slope * theoretical + intercept, color="tab:red", lw=1)
    inset.set_xticks([])
    inset.set_yticks([])
    inset.set_xlabel("Gaussian quantiles", fontsize=6, labelpad=1)
    inset.set_ylabel("ordered errors", fontsize=6, labelpad=1)
