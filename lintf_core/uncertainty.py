"""The statistics behind every verdict's uncertainty (verdicts.py reads them): the exact sign test of "k of n
seeds", percentile-bootstrap confidence intervals (of a median, of a median ratio on the log scale, of any statistic of
one sample), all from scipy.stats."""

import numpy as np
from scipy import stats

# A diverged run makes a ratio 0 or infinite; the bootstrap works on log10 ratios, where such a value stands as
# +-EXTREME_LOG10 (beyond any finite ratio seen), so that percentiles between two of them stay defined.
EXTREME_LOG10 = 300.0


def sign_test(values, threshold=1.0):
    """The exact sign test of "values lie above `threshold`" (e.g. per-seed ratios SGDM/Adam above 1). NaN values
    (no comparison: both paired runs diverged) and ties (exactly at the threshold) are left out, as the test
    prescribes. Returns {"n": compared, "above", "below", "ties", "missing", "p_above": one-sided exact p of at
    least `above` of n under fair coins, "p_below": the same for the opposite direction}."""
    values = np.asarray(values, dtype=float).ravel()
    missing = int(np.isnan(values).sum())
    values = values[~np.isnan(values)]
    above, below = int((values > threshold).sum()), int((values < threshold).sum())
    n = above + below
    if n == 0:
        p_above = p_below = 1.0
    else:
        p_above = float(stats.binomtest(above, n, 0.5, alternative="greater").pvalue)
        p_below = float(stats.binomtest(below, n, 0.5, alternative="greater").pvalue)
    return {"n": n, "above": above, "below": below, "ties": len(values) - n, "missing": missing,
            "p_above": p_above, "p_below": p_below}


def bootstrap_interval(values, statistic=np.median, confidence=0.95, n_resamples=9999, seed=0):
    """The percentile bootstrap confidence interval of `statistic` of a sample (scipy.stats.bootstrap, a fixed
    seed: the same interval on every build). NaN values are left out. Returns (low, high); (v, v) for a constant
    sample, (NaN, NaN) below two values."""
    values = np.asarray(values, dtype=float).ravel()
    values = values[~np.isnan(values)]
    if len(values) < 2:
        return float("nan"), float("nan")
    if np.all(values == values[0]):
        return float(values[0]), float(values[0])
    result = stats.bootstrap((values,), lambda x, axis: statistic(x, axis=axis), confidence_level=confidence,
                             n_resamples=n_resamples, method="percentile", rng=np.random.default_rng(seed),
                             vectorized=True)
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def ratio_interval(ratios, confidence=0.95):
    """The bootstrap interval of the median of positive ratios, taken on their log10 (a ratio and its inverse
    weigh alike); 0 and infinity (a diverged run) stand as the most extreme values and come back as 0 and inf."""
    ratios = np.asarray(ratios, dtype=float).ravel()
    with np.errstate(divide="ignore"):
        logs = np.clip(np.log10(ratios), -EXTREME_LOG10, EXTREME_LOG10)
    low, high = bootstrap_interval(logs, confidence=confidence)

    def back(v):
        return v if np.isnan(v) else 0.0 if v <= -EXTREME_LOG10 / 2 else np.inf if v >= EXTREME_LOG10 / 2 else 10**v
    return back(low), back(high)


def statistic_interval(samples, statistic, n_resamples=2000):
    """The bootstrap 95% interval of `statistic` (a function of one sample) over the sample's values."""
    return bootstrap_interval(samples, lambda x, axis: np.apply_along_axis(statistic, axis, x),
                              n_resamples=n_resamples)


def pairs_interval(xs, ys, statistic, n_resamples=1000):
    """The bootstrap 95% interval of statistic(xs, ys) (e.g. Spearman's rho of two series along one run) over the
    (x, y) pairs, resampled together."""
    xs, ys = np.asarray(xs), np.asarray(ys)
    return bootstrap_interval(np.arange(len(xs)), lambda i, axis: np.apply_along_axis(
        lambda j: statistic(xs[j.astype(int)], ys[j.astype(int)]), axis, i), n_resamples=n_resamples)
