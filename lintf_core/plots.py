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


METRIC_LABELS = {"eval_loss": "evaluation loss (mean)",  # short: stacked panels share the height
                 "eval_loss_median": "median per-prompt loss"}


def loss_curves(ax, trajectories, metric="eval_loss", band_divisor=4, per_seed=True, title=None):
    """Evaluation loss vs iteration per optimizer (and learning rate); see optimizer_curves. The authors' loss plots
    use a band of +-std/4. metric: "eval_loss" (the paper's) or "eval_loss_median"."""
    optimizer_curves(ax, trajectories, trajectories.eval_iterations, getattr(trajectories, metric),
                     band_divisor=band_divisor, per_seed=per_seed, ylabel=METRIC_LABELS[metric], title=title)


def optimizer_curves(ax, trajectories, x, values, band_divisor=4, per_seed=True, ylabel=None, title=None):
    """values (R, len(x)) of every run against x, per optimizer (and learning rate): the mean over seeds (thick), a
    band of +-std/band_divisor (unbiased std, as torch.std in the authors' plots), the median over seeds (dashed)
    and every seed (thin). Log y axis; non-positive values cannot be drawn there, so each one is marked by a
    triangle at the bottom edge of the axes, never dropped silently. Returns the count of non-positive values."""
    values = np.asarray(values, dtype=np.float64)
    for opt in OPTIMIZER_LABELS:
        for lr in sorted({float(v) for v in trajectories.lr[trajectories.runs(optimizer=opt)]}):
            runs = trajectories.runs(optimizer=opt, lr=lr)
            if not runs:
                continue
            curves = values[runs]
            mean = curves.mean(0)
            std = curves.std(0, ddof=1) if len(runs) > 1 else np.zeros_like(mean)
            color = COLORS[opt]
            ax.plot(x, mean, color=color, lw=2, label=f"{OPTIMIZER_LABELS[opt]} (lr {lr:g}): mean")
            ax.fill_between(x, mean - std / band_divisor, mean + std / band_divisor, color=color, alpha=0.1, lw=0)
            if len(runs) > 1:
                ax.plot(x, np.median(curves, 0), color=color, lw=1, ls="--", label="median over seeds")
                if per_seed:
                    ax.plot(x, curves.T, color=color, lw=0.5, alpha=0.3)
            bad_x = np.broadcast_to(x, curves.shape)[curves <= 0]
            if bad_x.size:
                mark_on_bottom_edge(ax, bad_x, color=color)
    ax.set_yscale("log", nonpositive="clip")
    ax.set_xlabel("Iteration")
    if ylabel:
        ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    return int((values <= 0).sum())


def ablation_panels(columns, width=4.2, height=3.4, legend_size=7, one_row_each=False):
    """The Section 4 figure: one column per setting, rows loss curves (±std/4), gradient noise at initialization
    (histogram + q-q) and R_med along training (diagonal, ±std/2). columns: (title, trajectories, noise norms,
    condition_numbers result) per column. one_row_each: one *row* per setting instead (three panels side by side),
    which keeps four or more settings legible at a page's width. Returns (fig, axes)."""
    if one_row_each:
        fig, axes = grid_of_axes(len(columns), 3, width=width, height=height)
    else:
        fig, grid = grid_of_axes(3, len(columns), width=width, height=height)
        axes = grid.T  # axes[setting, panel] either way
    for i, (title, runs, noise, numbers) in enumerate(columns):
        loss_curves(axes[i, 0], runs, title=title)
        noise_histogram(axes[i, 1], noise, title=title if one_row_each else None)
        optimizer_curves(axes[i, 2], runs, numbers["iterations"], numbers["diagonal"], band_divisor=2,
                         ylabel=r"$R_{\mathrm{med}}$ (diagonal)", title=title if one_row_each else None)
    axes[0, 0].legend(fontsize=legend_size, loc="lower left")
    return fig, axes if one_row_each else axes.T


def mark_on_bottom_edge(ax, x, **style):
    """Triangles at the bottom edge of the axes at positions x: values a log axis cannot draw (zero or negative)."""
    return _mark_on_edge(ax, x, 0.0, style)


def mark_on_top_edge(ax, x, **style):
    """Triangles at the top edge of the axes at positions x: values no axis can draw (infinite: diverged runs)."""
    return _mark_on_edge(ax, x, 1.0, style)


def _mark_on_edge(ax, x, edge, style):
    artist = ax.scatter(x, np.full(len(x), edge), marker="^", s=16, alpha=0.6, clip_on=False,
                        transform=ax.get_xaxis_transform(), **style)  # y in axes units: 0 bottom, 1 top
    artist.set_in_layout(False)  # outside the data area: constrained_layout must not make room for it
    return artist


def grid_of_axes(rows, cols, width=4.2, height=3.4):
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False,
                             constrained_layout=True)
    return fig, axes


def noise_histogram(ax, norms, title=None, bins=100):
    """Figure 3's panel: a density histogram (`bins` bins) of gradient-error norms with an inset q-q plot against the
    best-fit Gaussian (scipy.stats.probplot; red: least-squares line). Points above the line on the right are a
    tail heavier than Gaussian."""
    ax.hist(norms, bins=bins, density=True, color="tab:blue", alpha=0.8)
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


def ratio_strip(ax, ratios, labels, title=None, ylabel=None):
    """Paired ratios (seeds, batches) as a strip per batch on a log axis: a dot per seed, a bar at the median, a
    line at 1. A ratio of 0 or infinity (a diverged run) is marked at the bottom or top edge, never dropped."""
    ratios = np.asarray(ratios, dtype=np.float64)
    rng = np.random.default_rng(0)  # the horizontal jitter only
    for j in range(ratios.shape[1]):
        values = ratios[:, j]
        finite = values[np.isfinite(values) & (values > 0)]
        ax.scatter(j + rng.uniform(-0.2, 0.2, len(finite)), finite, s=9, color="tab:blue", alpha=0.6, lw=0)
        if len(finite):
            ax.plot([j - 0.3, j + 0.3], [np.median(values[~np.isnan(values)])] * 2, color="black", lw=1.5)
        if (values == 0).any():
            mark_on_bottom_edge(ax, [j] * int((values == 0).sum()), color="tab:blue")
        if np.isinf(values).any():
            mark_on_top_edge(ax, [j] * int(np.isinf(values).sum()), color="tab:blue")
    ax.axhline(1, color="grey", lw=1, ls=":")
    ax.set_yscale("log")
    ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=7)
    ax.set_xlabel("evaluation batch (seed)")
    if ylabel:
        ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
