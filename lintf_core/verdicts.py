"""Verdict rules: a page's test of one of the paper's claims, as a small function (each page also states its rule in
prose). A verdict is one of VERDICTS. Conventions shared by the rules:
  - a run that diverged (its evaluation loss left the floating-point range) has an infinite late loss;
  - a comparison involving NaN is false, so missing numbers never count in a claim's favour;
  - an empty input gives "not reproduced" (nothing was shown).
"""

import numpy as np
from scipy import stats

REPRODUCED, PARTLY, NOT_REPRODUCED = "reproduced", "partly reproduced", "not reproduced"
VERDICTS = (REPRODUCED, PARTLY, NOT_REPRODUCED)


def increasing(values):
    """Strictly increasing (a tie or a NaN breaks it); False for fewer than two values."""
    values = list(values)
    return len(values) >= 2 and all(b > a for a, b in zip(values, values[1:]))


def rank_correlation(xs, ys):
    """Spearman's rho of ys against xs over the pairs where y is not NaN (inf ranks last); NaN below three pairs."""
    pairs = [(x, y) for x, y in zip(xs, ys) if not np.isnan(y)]
    if len(pairs) < 3:
        return float("nan")
    return float(stats.spearmanr(*zip(*pairs)).statistic)


def late_losses(trajectories, optimizer, **match):
    """Per matching run, the late loss (Trajectories.late_loss); infinite for a run that diverged."""
    late = trajectories.late_loss(optimizer, **match)
    return np.where(trajectories.diverged(optimizer, **match) | ~np.isfinite(late), np.inf, late)


def paired_gap(sgd_late, adam_late):
    """Median over seeds of SGDM/Adam late loss. A diverged Adam run gives 0, a diverged SGDM run infinity, a seed
    where both diverged (inf/inf) is left out; NaN if no seed remains."""
    with np.errstate(invalid="ignore", divide="ignore"):
        ratios = np.asarray(sgd_late, dtype=float) / np.asarray(adam_late, dtype=float)
    ratios = ratios[~np.isnan(ratios)]
    return float(np.median(ratios)) if len(ratios) else float("nan")


# ---- Section 4.2 (Figs. 12-14): the four depth observations -------------------------------------------------------

def depth_gap_verdict(depths, gaps):
    """The Adam/SGD loss gap grows with depth: reproduced if the gap increases with every added layer count, partly
    if its rank correlation with depth is positive."""
    order = np.argsort(depths)
    gaps = [gaps[i] for i in order]
    if increasing(gaps):
        return REPRODUCED
    return PARTLY if rank_correlation(sorted(depths), gaps) > 0 else NOT_REPRODUCED


def depth_level_verdict(depths, level_sgd, level_adam):
    """The loss decreases with depth: reproduced if the median late loss falls with every added layer count for both
    optimizers, partly if for one."""
    order = np.argsort(depths)
    falling = [increasing([-level[i] for i in order]) for level in (level_sgd, level_adam)]
    return REPRODUCED if all(falling) else PARTLY if any(falling) else NOT_REPRODUCED


def depth_noise_verdict(depths, kurtosis):
    """Noise is heavier-tailed for L = 6, 8 than for L = 2, 4: reproduced if both deep kurtoses exceed both shallow
    ones, partly if their mean does."""
    deep = [k for L, k in zip(depths, kurtosis) if L >= 6]
    shallow = [k for L, k in zip(depths, kurtosis) if L <= 4]
    if not deep or not shallow:
        return NOT_REPRODUCED
    if min(deep) > max(shallow):
        return REPRODUCED
    return PARTLY if np.mean(deep) > np.mean(shallow) else NOT_REPRODUCED


def depth_condition_verdict(depths, ratio_means):
    """The R_med gap is larger for deeper models: ratio_means[i][j] is depth i's mean paired ratio SGD/Adam at table
    iteration j. Reproduced if every deeper model's exceeds L = 2's at every table iteration, partly if more than
    half of those comparisons hold (NaN compares false). Not reproduced without L = 2."""
    if 2 not in depths:
        return NOT_REPRODUCED
    base = ratio_means[list(depths).index(2)]
    comparisons = [m > b for L, means in zip(depths, ratio_means) if L > 2 for m, b in zip(means, base)]
    if comparisons and all(comparisons):
        return REPRODUCED
    return PARTLY if comparisons and sum(comparisons) > len(comparisons) / 2 else NOT_REPRODUCED


# ---- Table 2: the learning-rate grid ------------------------------------------------------------------------------

def grid_best(trajectories, optimizer, rates):
    """The Table 2 rule for one (setting, optimizer) on a learning-rate grid: each rate's per-seed late losses
    (diverged = inf), the best rate by median, whether a best exists (False when every rate diverged on most seeds:
    its median is infinite), and the rates indistinguishable from it (median within the best rate's worst seed).
    Returns {"scores": {rate: array}, "best": rate, "settled": bool, "close": [rates]}."""
    scores = {lr: late_losses(trajectories, optimizer, lr=lr) for lr in rates}
    medians = {lr: float(np.median(s)) for lr, s in scores.items()}
    best = min(medians, key=medians.get)
    settled = bool(np.isfinite(medians[best]))
    worst_seed_at_best = scores[best].max()
    return {"scores": scores, "best": best, "settled": settled,
            "close": [lr for lr, m in medians.items() if m <= worst_seed_at_best]}


def rate_confirmed(rate, grid):
    """Table 2's `rate` is confirmed by a grid_best result if a best exists and the rate is the best, one grid step
    (a factor 2) from it, or indistinguishable from it."""
    if not grid["settled"]:
        return False
    return bool(abs(np.log2(rate / grid["best"])) <= 1 + 1e-9 or any(np.isclose(rate, v) for v in grid["close"]))


def share_verdict(hits):
    """Reproduced if every cell holds, partly if at least half do; not reproduced for none or an empty input."""
    hits = list(hits)
    if not hits:
        return NOT_REPRODUCED
    return REPRODUCED if all(hits) else PARTLY if sum(hits) >= len(hits) / 2 else NOT_REPRODUCED
