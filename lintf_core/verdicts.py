"""Verdict rules: a page's test of one of the paper's claims, as a small function (each page also states its rule in
prose). A verdict is one of VERDICTS. Conventions shared by the rules:
  - a run that diverged (its evaluation loss left the floating-point range) has an infinite late loss;
  - a comparison involving NaN is false, so missing numbers never count in a claim's favour;
  - an empty input gives "not reproduced" (nothing was shown).

Every verdict also states how sure it is (the second half of this module): a paired comparison over seeds gets the
exact sign test of "k of n seeds" and a bootstrap confidence interval of its median (the statistics:
uncertainty.py), and an outcome that separates "the claim holds", "the opposite holds" and "cannot tell at n seeds".
"""

import numpy as np
from scipy import stats

from .uncertainty import bootstrap_interval, ratio_interval, sign_test

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


def late_losses(trajectories, optimizer, metric="eval_loss", **match):
    """Per matching run, the late loss (Trajectories.late_loss of `metric`); infinite for a run that diverged."""
    late = trajectories.late_loss(optimizer, metric=metric, **match)
    return np.where(trajectories.diverged(optimizer, **match) | ~np.isfinite(late), np.inf, late)


def paired_gap(sgd_late, adam_late):
    """Median over seeds of SGDM/Adam late loss. A diverged Adam run gives 0, a diverged SGDM run infinity, a seed
    where both diverged (inf/inf) is left out; NaN if no seed remains."""
    ratios = late_loss_ratios(sgd_late, adam_late)
    ratios = ratios[~np.isnan(ratios)]
    return float(np.median(ratios)) if len(ratios) else float("nan")


def late_loss_ratios(numerator_late, denominator_late):
    """Per seed, one run's late loss over its paired run's (same seed: same initialization and data). A diverged
    denominator run (inf) gives 0, a diverged numerator run infinity, a seed where both diverged NaN."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(numerator_late, dtype=float) / np.asarray(denominator_late, dtype=float)


def votes_verdict(votes, partly_from=1):
    """Reproduced if every vote holds, partly if at least `partly_from` do; not reproduced otherwise or for none."""
    votes = [bool(v) for v in votes]
    if votes and all(votes):
        return REPRODUCED
    return PARTLY if votes and sum(votes) >= partly_from else NOT_REPRODUCED


def majority_verdict(holds):
    """Reproduced if it holds on every seed (or case), partly if on more than half; not reproduced otherwise or for
    none. NaN comparisons arrive as False."""
    holds = [bool(h) for h in holds]
    if holds and all(holds):
        return REPRODUCED
    return PARTLY if holds and sum(holds) > len(holds) / 2 else NOT_REPRODUCED


# ---- Section 2 (Fig. 1): the premise on real networks ----------------------------------------------------------------

def competitive_verdict(ratios):
    """Fig. 1 (SGD trains a CNN about as well as Adam): `ratios` are the paired final-loss ratios SGD(m)/Adam. By
    Fig. 2's rule a gap is "much" (Adam >> SGD) from a median ratio of 2: reproduced if every seed's ratio is below
    2, partly if the median is, not reproduced otherwise (a diverged SGD run's infinite ratio counts against)."""
    ratios = np.asarray(ratios, dtype=float)
    finite = ratios[~np.isnan(ratios)]
    if len(finite) and (finite < 2).all():
        return REPRODUCED
    return PARTLY if len(finite) and np.median(finite) < 2 else NOT_REPRODUCED


def larger_gap_verdict(ratios, other_ratios):
    """Fig. 1 (the gap is larger here than there: a Transformer than a CNN, a large batch than a small one): paired
    per-seed gaps. Reproduced if larger on every seed, partly if the median gap is larger, not reproduced otherwise
    (NaN pairs count against)."""
    ratios, other_ratios = np.asarray(ratios, dtype=float), np.asarray(other_ratios, dtype=float)
    with np.errstate(invalid="ignore"):
        larger = ratios > other_ratios
    if len(larger) and larger.all():
        return REPRODUCED
    return PARTLY if len(larger) and np.nanmedian(ratios) > np.nanmedian(other_ratios) else NOT_REPRODUCED


# ---- Section 3 (Figs. 2-5): the features of Transformer training --------------------------------------------------

def adam_gap_verdict(ratios):
    """Fig. 2 (Adam >> SGD): `ratios` are the paired late-loss ratios SGDM/Adam (late_loss_ratios). Reproduced if their
    median exceeds 2 and Adam is lower on every seed, partly if the median exceeds 1. A seed where both diverged
    counts against "every seed" and is left out of the median (paired_gap)."""
    ratios = np.asarray(ratios, dtype=float)
    median = paired_gap(ratios, np.ones_like(ratios))
    if len(ratios) and median > 2 and (ratios > 1).all():
        return REPRODUCED
    return PARTLY if median > 1 else NOT_REPRODUCED


def heavy_tailed(tails):
    """Fig. 3's rule for one noise sample (diagnostics.tail_statistics): excess kurtosis above 1 and the 99.9%
    quantile more than 4 standard deviations above the mean (a Gaussian's is at 3.09)."""
    return bool(tails["excess_kurtosis"] > 1 and tails["q0.999_in_sd"] > 4)


def nonlinear_features(loss_ratios, tails, rmed_ratios, smoothness_sgd, smoothness_adam):
    """Fig. 15 (the nonlinear task keeps the features), per feature whether it holds: Adam beats SGDM (the paired
    late-loss ratio SGDM/Adam above 1 on every seed), heavy-tailed noise (heavy_tailed), R_med larger for SGDM (the
    mean paired ratio SGD/Adam above 1, diverged runs left out), Adam smoother (its median directional smoothness
    lower on every seed)."""
    return {"Adam beats SGDM": bool((np.asarray(loss_ratios) > 1).all()),
            "heavy-tailed noise": heavy_tailed(tails),
            "R_med larger for SGDM": bool(np.nanmean(rmed_ratios) > 1),
            "Adam smoother": bool((np.asarray(smoothness_adam) < np.asarray(smoothness_sgd)).all())}


def tails_noise_verdict(heavy, light):
    """Fig. 10 (heavy-tailed covariates give heavy-tailed noise, spherical ones do not): of the tail statistics of the
    two noise samples, the heavy-tailed covariates' is heavy-tailed, the spherical ones' is not, and the first has
    the larger excess kurtosis. Reproduced if all three hold, partly if two do."""
    return votes_verdict([heavy_tailed(heavy), not heavy_tailed(light),
                          heavy["excess_kurtosis"] > light["excess_kurtosis"]], partly_from=2)


def wider_gap_verdict(heavy_means, light_means):
    """Fig. 11 (heavy tails widen the R_med gap): per table iteration, whether the mean paired ratio SGD/Adam is
    larger for heavy-tailed covariates. Reproduced if at every iteration, partly if at some."""
    return votes_verdict([h > l for h, l in zip(heavy_means, light_means)])


def further_verdict(progress_first, progress_second):
    """Fig. 9 (both optimizers converge faster on the first covariates): per optimizer, whether its median late loss
    relative to the initial loss is lower on the first. Reproduced if for every optimizer, partly if for some."""
    return votes_verdict([np.median(f) < np.median(s) for f, s in zip(progress_first, progress_second)])


def heavy_tail_verdict(tails):
    """Fig. 3 (the gradient noise is heavy-tailed): reproduced if heavy_tailed, not reproduced otherwise."""
    return REPRODUCED if heavy_tailed(tails) else NOT_REPRODUCED


def light_tail_verdict(tails):
    """Fig. 6 (a CNN's gradient noise looks Gaussian): reproduced if not heavy_tailed, not reproduced otherwise."""
    return NOT_REPRODUCED if heavy_tailed(tails) else REPRODUCED


def heaviest_tails_verdict(tails, others):
    """Fig. 3 (heavier-tailed covariates, heavier-tailed noise): reproduced if `tails` has a larger excess kurtosis
    and a smaller Hill tail index (heavier tail) than each of `others`; not reproduced otherwise or with no other."""
    heaviest = bool(others) and all(tails["excess_kurtosis"] > o["excess_kurtosis"]
                                    and tails["hill_tail_index"] < o["hill_tail_index"] for o in others)
    return REPRODUCED if heaviest else NOT_REPRODUCED


def condition_gap_verdict(ratios):
    """Fig. 4 (R_med larger along SGD's path than Adam's), one setting and iteration: two votes, the mean paired
    ratio SGD/Adam above 1 and SGD's R_med the larger on a majority of seeds. Reproduced with both, partly with one.
    A NaN ratio makes the mean NaN (that vote fails) and does not count as larger."""
    ratios = np.asarray(ratios, dtype=float)
    if not len(ratios):
        return NOT_REPRODUCED
    return votes_verdict([ratios.mean() > 1, (ratios > 1).sum() > len(ratios) / 2])


# ---- Section 4 (Figs. 7-11, 15) ------------------------------------------------------------------------------------

def faster_verdict(ratios):
    """Fig. 7 (linear attention much faster than softmax): `ratios` are softmax's late loss over linear attention's
    per (seed, optimizer). Reproduced if linear is lower in every pair and the median ratio exceeds 2 ("much"),
    partly if lower in more than half of the pairs."""
    ratios = np.asarray(ratios, dtype=float)
    lower = ratios > 1
    if len(ratios) and lower.all() and np.median(ratios) > 2:
        return REPRODUCED
    return PARTLY if lower.sum() > len(ratios) / 2 else NOT_REPRODUCED


def similar_within(ratios, factor=3.0):
    """Every ratio within `factor` of 1 (NaN is not; False for no ratio)."""
    ratios = np.asarray(ratios, dtype=float)
    return bool(len(ratios) and ((ratios >= 1 / factor) & (ratios <= factor)).all())


def separate_qk_verdict(single, separate, factor=3.0):
    """Fig. 8 left (separate W_Q, W_K behave like the single Q): per optimizer the separate model's median late loss
    within `factor` of the single Q's (similar_within), and Adam's late loss below SGDM's on every seed of both
    models. Reproduced if both hold, partly if one does. single, separate: {optimizer: per-seed late losses}."""
    ratios = [np.median(separate[opt]) / np.median(single[opt]) for opt in single]
    same_order = all(bool((np.asarray(m["adam"]) < np.asarray(m["sgd"])).all()) for m in (single, separate))
    return votes_verdict([similar_within(ratios, factor), same_order])


def large_model_verdict(ratios):
    """Fig. 8 right (the larger model shows the same Adam/SGD gap): paired late-loss ratios SGDM/Adam at each
    optimizer's best rate. Reproduced if above 2 on every seed, partly if above 1 on every seed."""
    ratios = np.asarray(ratios, dtype=float)
    if not len(ratios):
        return NOT_REPRODUCED
    return REPRODUCED if (ratios > 2).all() else PARTLY if (ratios > 1).all() else NOT_REPRODUCED


def correlation_verdict(rho):
    """Fig. 16 ((L0, L1)-smoothness: smoothness grows with the gradient norm): Spearman's rho of the two along
    training. Reproduced at rho >= 0.5, partly at >= 0.2; NaN is not reproduced."""
    return REPRODUCED if rho >= 0.5 else PARTLY if rho >= 0.2 else NOT_REPRODUCED


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


def better_rate_verdict(table2_medians, code_medians):
    """Table 2 against the authors' code where their rates differ (Adam, Settings 1 and 2): per setting, whether
    Table 2's rate has the lower median late loss. Reproduced if it has in every setting, not reproduced if in none
    (the code's values are the better ones), partly otherwise."""
    return votes_verdict([t < c for t, c in zip(table2_medians, code_medians)])


def share_verdict(hits):
    """Reproduced if every cell holds, partly if at least half do; not reproduced for none or an empty input."""
    hits = list(hits)
    if not hits:
        return NOT_REPRODUCED
    return REPRODUCED if all(hits) else PARTLY if sum(hits) >= len(hits) / 2 else NOT_REPRODUCED


# ---- The poster's chapter ------------------------------------------------------------------------------------------

CONVERGED_BELOW = 1e-8  # f_T / f_0 of a converged run (float32 reaches ~1e-15 on the poster's tasks)
STALLED_ABOVE = 1e-3  # f_T / f_0 of a run that stalled


def converged(loss_ratios):
    """Per run, whether it converged: its final loss over its initial loss, f_T / f_0, below CONVERGED_BELOW."""
    return np.asarray(loss_ratios) < CONVERGED_BELOW


def kernel_contrast(gaussian_ratios, softmax_ratios):
    """At one init scale, Theorem 2's contrast: every Gaussian run converged while some softmax run stalled
    (f_T / f_0 above STALLED_ABOVE)."""
    return bool(converged(gaussian_ratios).all() and (np.asarray(softmax_ratios) > STALLED_ABOVE).any())


def gaussian_lower(gaussian_ratios, softmax_ratios):
    """At one init scale, whether the Gaussian kernel ended lower than softmax on every seed (a seed where both
    converged, a tie at the float floor, does not count as lower)."""
    gaussian, softmax = np.asarray(gaussian_ratios), np.asarray(softmax_ratios)
    both_floor = converged(gaussian) & converged(softmax)
    return bool(((gaussian < softmax) & ~both_floor).all())


def kernel_contrast_verdict(contrast_scales, lower_scales):
    """Poster, Theorem 2 (the Gaussian kernel converges where softmax stalls): reproduced if at some init scale
    every Gaussian run converged while some softmax run stalled, partly if at some scale the Gaussian kernel ended
    lower on every seed."""
    return REPRODUCED if len(contrast_scales) else PARTLY if len(lower_scales) else NOT_REPRODUCED


def rugged_verdict(more_minima, more_variation):
    """Poster, Fig. 3 (softmax's landscape is more rugged): per seed, softmax has more local minima / a larger
    non-convex share than the Gaussian kernel. Reproduced if both hold on every seed, partly if either holds on
    more than half of the seeds."""
    more_minima, more_variation = [bool(m) for m in more_minima], [bool(v) for v in more_variation]
    if more_minima and all(more_minima) and all(more_variation):
        return REPRODUCED
    seeds = len(more_minima)
    return PARTLY if sum(more_minima) > seeds / 2 or sum(more_variation) > seeds / 2 else NOT_REPRODUCED


# ---- Uncertainty: every verdict with its n, its sign test and its confidence interval -----------------------------

HOLDS, OPPOSITE, UNDECIDED = "holds", "opposite holds", "cannot tell"
OUTCOMES = (HOLDS, OPPOSITE, UNDECIDED)
ALPHA = 0.05  # one-sided level of each direction's test
def sign_outcome(test, alpha=ALPHA):
    """HOLDS when the sign test says "above" at level alpha, OPPOSITE when it says "below", else UNDECIDED."""
    if test["p_above"] < alpha:
        return HOLDS
    return OPPOSITE if test["p_below"] < alpha else UNDECIDED


def interval_outcome(low, high, threshold):
    """HOLDS when a confidence interval lies above `threshold`, OPPOSITE when below it, else UNDECIDED (NaN too)."""
    if low > threshold:
        return HOLDS
    return OPPOSITE if high < threshold else UNDECIDED


def paired_comparison(ratios, threshold=1.0, confidence=0.95):
    """A claim "ratio > threshold" read on paired per-seed ratios (same seed: same initialization and data): the
    sign test, the bootstrap interval of the median ratio, and the outcome (decided by the sign test; the interval
    says how large). Returns the sign test's dict with "median", "low", "high", "confidence", "outcome"."""
    ratios = np.asarray(ratios, dtype=float).ravel()
    test = sign_test(ratios, threshold)
    finite = ratios[~np.isnan(ratios)]
    low, high = ratio_interval(finite, confidence)
    median = float(np.median(finite)) if len(finite) else float("nan")
    return {**test, "threshold": threshold, "median": median, "low": low, "high": high, "confidence": confidence,
            "outcome": sign_outcome(test)}


def _number(v):
    return "∞" if v == np.inf else "0" if v == 0 else f"{v:.3g}"


def describe_comparison(comparison, unit="seeds"):
    """One line: "k/n seeds (sign test p = ...); median ratio m, 95% CI [low, high]"."""
    c = comparison
    ci = (f"{c['confidence']:.0%} CI [{_number(c['low'])}, {_number(c['high'])}]" if not np.isnan(c["low"])
          else "no CI (fewer than 2 values)")
    extra = "".join(f", {c[k]} {label}" for k, label in (("ties", "tied"), ("missing", "without a comparison"))
                    if c.get(k))
    return (f"{c['above']}/{c['n']} {unit} above {c.get('threshold', 1):g} (sign test p = {c['p_above']:.2g}){extra}; "
            f"median {_number(c['median'])}, {ci}")


def uncertainty_fields(comparison, unit="seeds"):
    """The scorecard's uncertainty columns from a paired comparison: n, the one-line uncertainty and its outcome."""
    return {"n": f"{comparison['n']} {unit}", "uncertainty": describe_comparison(comparison, unit),
            "robust": comparison["outcome"]}


def batch_share(outcomes):
    """Across K evaluation batches, each with its own outcome: the share of batches on which the claim holds, and
    the robust outcome — the one that at least 90% of the batches agree on, else UNDECIDED (the claim then depends
    on the evaluation batch)."""
    outcomes = list(outcomes)
    if not outcomes:
        return 0.0, UNDECIDED
    share = {o: sum(x == o for x in outcomes) / len(outcomes) for o in OUTCOMES}
    agreed = [o for o in OUTCOMES if share[o] >= 0.9]
    return share[HOLDS], agreed[0] if agreed else UNDECIDED


def per_batch_comparisons(ratios, threshold=1.0):
    """ratios (seeds, batches): one paired comparison per evaluation batch, and over them the share of batches on
    which the claim holds and the robust outcome (batch_share)."""
    ratios = np.asarray(ratios, dtype=float)
    comparisons = [paired_comparison(ratios[:, j], threshold) for j in range(ratios.shape[1])]
    share, outcome = batch_share([c["outcome"] for c in comparisons])
    return {"comparisons": comparisons, "share": share, "outcome": outcome}


DIAGNOSES = ("holds", "holds only under", "fails under the paper's protocol", "undecided at")


def diagnose(paper_outcome, robust_outcome, n, conditions=()):
    """One computed conclusion for a claim from its readings, each an outcome of OUTCOMES:
    paper_outcome: the paper's protocol (one fixed evaluation batch, the paper's seeds, with its sign test);
    robust_outcome: the reading robust to the draw (K evaluation batches, `n` seeds);
    conditions: [(condition, outcome)] of the other experiments (the grid's best rates at the full horizon, ...);
    n: the number of seeds, or a text that names its unit ("6 (seed, iteration) pairs").
    Returns a sentence that starts with one of DIAGNOSES."""
    n = f"{n} seeds" if isinstance(n, (int, np.integer)) else f"n = {n}"
    if paper_outcome == HOLDS and robust_outcome == HOLDS:
        return "holds"
    if robust_outcome == HOLDS:
        return "holds only under a reading robust to the evaluation batch"
    holding = [name for name, outcome in conditions if outcome == HOLDS]
    if holding:
        return "holds only under " + " and ".join(holding)
    if paper_outcome == HOLDS:
        return "holds only under the paper's fixed evaluation batch"
    if robust_outcome == OPPOSITE or paper_outcome == OPPOSITE:
        return "fails under the paper's protocol" + ("" if robust_outcome == OPPOSITE else
                                                      f" (undecided at {n} on other evaluation batches)")
    return f"undecided at {n}"


def row_diagnosis(row, conditions=()):
    """diagnose() for a scorecard row read one way (no second evaluation-batch reading): its own test or interval
    (`robust`, with its `n`) stands for both readings, and `conditions` are the page's other experiments."""
    return diagnose(row["robust"], row["robust"], row["n"], conditions)


def trend_comparison(xs, values):
    """A claim "the value grows with x" (e.g. with depth) read within each seed: values (len(xs), seeds) with the
    seeds aligned; per seed Spearman's rho over the xs (rank_correlation; 0 and inf from diverged runs rank as
    they are, NaN is left out), then the sign test of rho > 0 and the bootstrap interval of the median rho."""
    values = np.asarray(values, dtype=float)
    rhos = np.array([rank_correlation(xs, values[:, s]) for s in range(values.shape[1])])
    test = sign_test(rhos, 0.0)
    finite = rhos[~np.isnan(rhos)]
    low, high = bootstrap_interval(finite)
    return {**test, "threshold": 0.0, "median": float(np.median(finite)) if len(finite) else float("nan"),
            "low": low, "high": high, "confidence": 0.95, "outcome": sign_outcome(test), "values": rhos}


def intervals_outcome(higher, lower):
    """Whether every interval (low, high) of `higher` lies above every one of `lower` (HOLDS), every one below
    (OPPOSITE), or they overlap (UNDECIDED; also when either group is empty). Fig. 13: the deep models' noise
    kurtosis against the shallow ones'."""
    if not higher or not lower:
        return UNDECIDED
    if min(low for low, _ in higher) > max(high for _, high in lower):
        return HOLDS
    if max(high for _, high in higher) < min(low for low, _ in lower):
        return OPPOSITE
    return UNDECIDED


def interval_fields(name, value, low, high, threshold, n, unit, note="", claim_above=True):
    """The scorecard's uncertainty columns for one statistic with its interval: the outcome is HOLDS when the
    interval lies above `threshold`, OPPOSITE when below (interval_outcome); the reverse for a claim that the
    statistic lies below it (claim_above=False)."""
    outcome = interval_outcome(low, high, threshold) if claim_above else interval_outcome(-high, -low, -threshold)
    return {"n": f"{n} {unit}", "robust": outcome,
            "uncertainty": f"{name} {value:.3g}, 95% bootstrap CI [{low:.3g}, {high:.3g}] (threshold {threshold:g})"
                           + (f"; {note}" if note else "")}


def count_fields(hits, unit, note=""):
    """The scorecard's uncertainty columns for "the claim holds in k of n cases" (runs, cells, seeds): the exact
    binomial test of a share above one half, the Clopper-Pearson 95% interval of the share, the outcome."""
    hits = [bool(h) for h in hits]
    k, n = sum(hits), len(hits)
    test = sign_test([1.0 if h else -1.0 for h in hits], 0.0)
    interval = stats.binomtest(k, n).proportion_ci() if n else None
    ci = f"95% CI of the share [{interval.low:.2f}, {interval.high:.2f}]" if n else "no case"
    return {"n": f"{n} {unit}", "robust": sign_outcome(test),
            "uncertainty": f"{k}/{n} {unit} (binomial test p = {test['p_above']:.2g}); {ci}"
                           + (f"; {note}" if note else "")}
