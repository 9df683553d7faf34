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
# # Poster, Figure 3: is the softmax landscape more rugged than the Gaussian one?
#
# **This page redraws** Figure 3 of the poster {cite:p}`song2024unraveling` on synthetic data: train a one-layer
# multi-head attention model with the softmax kernel, continue a few hundred steps with each kernel, and look at the
# loss on a plane through the final weights, spanned by a direction in $W^Q$ and one in $W^K$. Beyond the poster, the
# ruggedness is measured.
#
# **Parameters** (next cell; override with papermill `-p name value`): `profile` (`"quick"` or `"paper"`), `seeds`,
# `N`, `n`, `D`, `d`, `heads`, `stage1_iters`, `stage2_iters`, `grid_points`, `radius`.
#
# ## The claim
#
# "With Softmax attention, the landscape appears more complicated compared with Gaussian kernel attention", which
# "indicates more potential bad local solutions" (poster, Figure 3 and its conclusion).

# %% tags=["parameters"]
profile = "quick"  # "quick": 3 seeds; "paper": 6 (the runs are the same length in both)
seeds = None  # None: the profile's poster_seeds
N = 16  # sequences (N n is 64 labels)
n = 4
D = 8
d = 8
heads = 1  # H D is 8, far below N n: a regime where interpolation is not guaranteed
stage1_iters = 1000  # gradient descent with the softmax kernel (the poster: 20,000 steps on IMDb)
stage2_iters = 300  # then this many more with each kernel (the poster: 500)
grid_points = 41  # per axis of the plane
step_fraction = 0.5  # gradient descent's step: this fraction of 1/lambda_max (1 diverged on a seed here)
radius = 1.0  # the plane spans [-radius, radius]^2 in units of the filter-normalized directions

# %%
import numpy as np
import torch
from IPython.display import Markdown, display
from myst_nb import glue

from lintf_core import multihead, plots, profiles, scorecard, verdicts

plots.use_book_style()
config = profiles.resolve(profile, poster_seeds=profiles.as_list("seeds", seeds))
seeds = config["poster_seeds"]
data = multihead.synthetic_regression(N, n, D, seed=0)
coordinates = torch.linspace(-radius, radius, grid_points)
caption = (f"profile '{profile}': {len(seeds)} seeds; N={N}, n={n}, D={D}, d={d}, H={heads}; {stage1_iters} softmax "
           f"steps, then {stage2_iters} with each kernel; a {grid_points}x{grid_points} grid over [-{radius:g}, "
           f"{radius:g}]^2")
print(caption)

# %% [markdown]
# ## Method
#
# As the poster's two-stage protocol, at the scale of a synthetic problem: (1) full-batch gradient descent on
# $(W^Q, W^K, W^V)$ with the softmax kernel from the initialization of the convergence page (scale 1), step size
# `step_fraction` $/\lambda_{\max}$ of the Hessian at the initialization (half the convergence page's step: the full
# one diverged on a seed of this harder problem); (2) from those weights, `stage2_iters` more steps with the softmax
# kernel, and separately with the Gaussian kernel (its own step, by the same rule at the stage-1 weights).
# Around each final point $W$ the loss is evaluated at $W^Q + aU$, $W^K + bV$ for $(a, b)$ on the grid, with $U$, $V$
# random directions, **filter-normalized** {cite:p}`li2018visualizing` (each column of each head scaled to the norm
# of that column of $W^Q$, $W^K$); both kernels use the same $U, V$ directions per seed. **Ruggedness**: the number
# of strict local minima of the grid (points below all 8 neighbours) and the share of grid points where the surface
# is not locally convex (its finite-difference $2\times2$ Hessian has a negative eigenvalue). Both ignore the loss's
# scale and the depth of the minimum, which differ between the kernels.

# %%
surfaces, stage2_loss = {}, {}
for seed in seeds:
    params = multihead.init_params([seed], heads, D, d)
    eta = multihead.curvature_step_size(params, data, "softmax", "all", fraction=step_fraction)
    stage1, _ = multihead.gradient_descent(params, data, "softmax", "all", eta, stage1_iters)
    for kernel in multihead.KERNELS:
        eta = multihead.curvature_step_size(stage1, data, kernel, "all", fraction=step_fraction)
        final, record = multihead.gradient_descent(stage1, data, kernel, "all", eta, stage2_iters)
        stage2_loss[seed, kernel] = record["loss"][0]
        one = {k: v[0] for k, v in final.items()}
        U = multihead.filter_normalized_direction(one["query"], seed=1000 + seed)
        V = multihead.filter_normalized_direction(one["key"], seed=2000 + seed)
        with torch.no_grad():
            surfaces[seed, kernel] = multihead.loss_surface(one, data, kernel, U, V, coordinates).numpy()

# %% tags=["hide-input"]
fig, axes = plots.grid_of_axes(1, 2, width=4.2, height=3.6)
for ax, kernel in zip(axes[0], multihead.KERNELS):
    surface = np.log10(surfaces[seeds[0], kernel])
    contour = ax.contourf(coordinates, coordinates, surface.T, levels=30, cmap="viridis")
    ax.contour(coordinates, coordinates, surface.T, levels=30, colors="k", linewidths=0.3)
    ax.plot(0, 0, "r+", ms=10)
    ax.set_xlabel("a (direction in $W^Q$)")
    ax.set_ylabel("b (direction in $W^K$)")
    ax.set_title(f"{kernel} kernel (seed {seeds[0]})", fontsize=9)
    fig.colorbar(contour, ax=ax, label="log10 loss")
fig.suptitle(f"Poster Figure 3 on synthetic data — {caption}", fontsize=7)
glue("poster_landscape", fig, display=False)
plots.plt.close(fig)

# %% [markdown]
# ```{glue:figure} poster_landscape
# :name: poster-landscape
#
# $\log_{10}$ of the loss on the plane through the final weights (red cross) after the second stage with each
# kernel, along a filter-normalized direction in $W^Q$ (horizontal) and one in $W^K$ (vertical); the first seed.
# Fidelity: {glue:md}`poster_landscape_caption`.
# ```

# %% [markdown]
# ## Measuring "more rugged"
#
# Per seed, both ruggedness numbers for each kernel. **Reproduced** if softmax's surface has more local minima *and*
# a larger non-convex share than the Gaussian one on every seed; **partly** if one of the two holds on a majority of
# seeds; **not reproduced** otherwise.

# %% tags=["hide-input"]
rough = {key: multihead.landscape_roughness(surface) for key, surface in surfaces.items()}
table = [{"seed": seed, **{f"{kernel}: {what}": (f"{rough[seed, kernel][key]:.3g}" if key == "nonconvex_fraction"
                                                 else rough[seed, kernel][key])
                           for kernel in multihead.KERNELS
                           for key, what in (("local_minima", "local minima"), ("nonconvex_fraction", "non-convex share"))},
          **{f"{kernel}: loss after stage 2": f"{stage2_loss[seed, kernel][-1]:.3g}" for kernel in multihead.KERNELS}}
         for seed in seeds]
display(Markdown(scorecard.markdown_table(table, columns=list(table[0]))))
more_minima = [rough[s, "softmax"]["local_minima"] > rough[s, "gaussian"]["local_minima"] for s in seeds]
more_variation = [rough[s, "softmax"]["nonconvex_fraction"] > rough[s, "gaussian"]["nonconvex_fraction"]
                  for s in seeds]
verdict = verdicts.rugged_verdict(more_minima, more_variation)
minima = {k: [rough[s, k]["local_minima"] for s in seeds] for k in multihead.KERNELS}
variation = {k: [rough[s, k]["nonconvex_fraction"] for s in seeds] for k in multihead.KERNELS}
rows = [{"claim": "the softmax loss landscape is more rugged than the Gaussian one", "figure": "Poster Fig. 3",
         "setting": f"synthetic N={N}, n={n}, D={D}, H={heads}",
         "paper": "softmax landscape more complicated (IMDb, Pathfinder)",
         "ours": f"local minima softmax {minima['softmax']} vs Gaussian {minima['gaussian']}; non-convex share "
                 + ", ".join(f"{a:.3g}/{b:.3g}" for a, b in zip(variation["softmax"], variation["gaussian"]))
                 + f" per seed ({profile} profile)", "verdict": verdict,
         **verdicts.count_fields(more_variation, "seeds (softmax's non-convex share the larger)")}]
glue("poster_landscape_verdict", Markdown(verdict), display=False)
glue("poster_landscape_minima", Markdown(f"{sum(more_minima)}/{len(seeds)}"), display=False)
glue("poster_landscape_variation", Markdown(f"{sum(more_variation)}/{len(seeds)}"), display=False)
glue("poster_landscape_caption", Markdown(caption), display=False)

# %% [markdown]
# The key numbers, rounded (nbval compares this output with the committed reference):

# %% tags=["nbval-check"]
# NBVAL_CHECK_OUTPUT
for seed in seeds:
    print(seed, {k: (rough[seed, k]["local_minima"], f"{rough[seed, k]['nonconvex_fraction']:.2g}")
                 for k in multihead.KERNELS})

# %% [markdown]
# ## What we see
#
# Softmax's surface has more local minima than the Gaussian one on {glue:md}`poster_landscape_minima` seeds and a
# larger non-convex share on {glue:md}`poster_landscape_variation` (**{glue:md}`poster_landscape_verdict`**). The two
# surfaces are drawn around different points (each kernel's own second-stage weights), as in the poster, so the
# comparison is of the landscapes each kernel trains in, not of one landscape.
#
# ## How it compares with the poster
#
# The poster shows contour plots on IMDb and Pathfinder (a 2-layer model after 20,000 softmax steps) without a
# number; ours is a one-layer model on synthetic data, so it tests the claim's mechanism, not its data sets;
# {doc}`the Pathfinder version <poster_tasks_landscape>` draws it for the poster's 2-layer classifier on a task of
# its own kind. The landscape of the paper's in-context regression model with a Gaussian kernel is on the Figure 7
# page's runs.

# %%
scorecard.show(rows)
