"""The verdicts' uncertainty (uncertainty.py, verdicts.py) against independent truths: exact binomial sums, bootstrap
intervals of known cases, and the book's conventions for ties, NaN, diverged runs and one seed; and the authors'
evaluation batch against the fingerprints measured from their code."""

from math import comb

import numpy as np
import pytest
import torch
from scipy import stats

from lintf_core import scorecard, uncertainty, verdicts
from lintf_core.data import authors_evaluation_batch, evaluation_prompts
from lintf_core.errors import ParameterError
from lintf_core.settings import get_setting


def exact_upper_tail(k, n):
    return sum(comb(n, i) for i in range(k, n + 1)) / 2**n


@pytest.mark.parametrize("k, n", [(6, 6), (5, 6), (3, 6), (15, 20), (20, 20), (0, 4)])
def test_the_sign_test_gives_the_exact_binomial_tail(k, n):
    values = [2.0] * k + [0.5] * (n - k)
    test = uncertainty.sign_test(values)
    assert test["p_above"] == pytest.approx(exact_upper_tail(k, n))
    assert test["p_below"] == pytest.approx(exact_upper_tail(n - k, n))
    assert (test["above"], test["below"], test["n"]) == (k, n - k, n)


def test_six_of_six_holds_and_five_of_six_cannot_tell():
    assert verdicts.paired_comparison([2, 3, 4, 5, 6, 7])["outcome"] == verdicts.HOLDS  # p = 1/64
    assert verdicts.paired_comparison([2, 3, 4, 5, 6, 0.5])["outcome"] == verdicts.UNDECIDED  # p = 7/64
    assert verdicts.paired_comparison([0.1] * 6)["outcome"] == verdicts.OPPOSITE


def test_ties_and_nan_are_left_out_and_counted():
    test = uncertainty.sign_test([1.0, 1.0, np.nan, 2.0, 3.0])
    assert (test["n"], test["ties"], test["missing"], test["above"]) == (2, 2, 1, 2)
    assert test["p_above"] == pytest.approx(0.25)


def test_diverged_runs_count_as_extreme_ratios():
    # a diverged Adam run: ratio SGDM/Adam 0; a diverged SGDM run: inf (late_loss_ratios)
    comparison = verdicts.paired_comparison([0.0, np.inf, np.inf, 5.0, 6.0, 7.0])
    assert (comparison["above"], comparison["below"]) == (5, 1)
    assert comparison["high"] == np.inf and comparison["low"] > 0
    assert "∞" in verdicts.describe_comparison(comparison)


def test_one_seed_cannot_decide_and_has_no_interval():
    comparison = verdicts.paired_comparison([5.0])
    assert comparison["outcome"] == verdicts.UNDECIDED and np.isnan(comparison["low"])
    assert "no CI" in verdicts.describe_comparison(comparison)
    empty = verdicts.paired_comparison([np.nan])
    assert empty["n"] == 0 and empty["outcome"] == verdicts.UNDECIDED


def test_bootstrap_interval_known_cases():
    assert uncertainty.bootstrap_interval([3.0, 3.0, 3.0]) == (3.0, 3.0)  # constant: a point
    x = np.random.default_rng(1).normal(10, 2, 400)
    low, high = uncertainty.bootstrap_interval(x, np.mean)
    half = 1.96 * x.std(ddof=1) / np.sqrt(len(x))  # the normal-theory interval of a mean
    assert low == pytest.approx(x.mean() - half, abs=0.05) and high == pytest.approx(x.mean() + half, abs=0.05)
    assert uncertainty.bootstrap_interval(x, np.mean) == (low, high)  # a fixed seed: the same interval every build


def test_the_ratio_interval_is_symmetric_in_log():
    ratios = np.array([0.5, 1, 2, 4, 8, 16, 32])
    low, high = uncertainty.ratio_interval(ratios)
    inv_low, inv_high = uncertainty.ratio_interval(1 / ratios)
    assert low == pytest.approx(1 / inv_high) and high == pytest.approx(1 / inv_low)


def test_interval_and_count_outcomes():
    assert verdicts.interval_outcome(1.5, 3, 1) == verdicts.HOLDS
    assert verdicts.interval_outcome(0.2, 0.5, 1) == verdicts.OPPOSITE
    assert verdicts.interval_outcome(0.5, 3, 1) == verdicts.UNDECIDED
    assert verdicts.interval_outcome(np.nan, np.nan, 1) == verdicts.UNDECIDED
    fields = verdicts.count_fields([True] * 9 + [False], "runs")
    assert fields["robust"] == verdicts.HOLDS and "9/10 runs" in fields["uncertainty"]
    interval = stats.binomtest(9, 10).proportion_ci()
    assert f"[{interval.low:.2f}, {interval.high:.2f}]" in fields["uncertainty"]


def test_a_trend_is_read_within_each_seed():
    rising = np.array([[1, 2, 3], [2, 3, 4], [3, 4, 5], [4, 5, np.inf]]).astype(float)  # (depths, seeds)
    assert verdicts.trend_comparison([2, 4, 6, 8], rising)["above"] == 3
    assert list(verdicts.trend_comparison([2, 4, 6, 8], -rising)["values"]) == [-1.0, -1.0, -1.0]


def test_batches_must_agree_for_a_robust_outcome():
    holds = [[2.0] * 6] * 10
    assert verdicts.per_batch_comparisons(np.array(holds).T)["outcome"] == verdicts.HOLDS
    mixed = np.array([[2.0] * 6] * 8 + [[0.5] * 6] * 2).T  # the claim holds on 8 of 10 batches
    result = verdicts.per_batch_comparisons(mixed)
    assert result["share"] == pytest.approx(0.8) and result["outcome"] == verdicts.UNDECIDED


def test_the_diagnosis_is_computed_from_the_readings():
    H, O, U = verdicts.HOLDS, verdicts.OPPOSITE, verdicts.UNDECIDED
    assert verdicts.diagnose(H, H, 20) == "holds"
    assert verdicts.diagnose(O, H, 20).startswith("holds only under a reading robust")
    assert verdicts.diagnose(O, U, 20, [("the grid's best rates", H)]) == "holds only under the grid's best rates"
    assert verdicts.diagnose(O, O, 20) == "fails under the paper's protocol"
    assert verdicts.diagnose(U, U, 20) == "undecided at 20 seeds"
    assert any(verdicts.diagnose(*case, 6).startswith(d) for d in verdicts.DIAGNOSES
               for case in [(H, U), (O, U), (U, O)])
    # n may name its unit; a row read one way diagnoses from its own test
    assert verdicts.diagnose(U, U, "6 (seed, iteration) pairs") == "undecided at n = 6 (seed, iteration) pairs"
    assert verdicts.row_diagnosis({"robust": O, "n": "3 seeds"}) == "fails under the paper's protocol"
    assert verdicts.row_diagnosis({"robust": U, "n": "3 seeds"}, [("float64", H)]) == "holds only under float64"


def test_a_row_shown_without_a_diagnosis_gets_the_computed_one(monkeypatch):
    import IPython.display

    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda payload, raw: shown.append(payload))
    row = dict(claim="c", figure="Fig. 2", setting="setting1", paper="p", ours="o", verdict="not reproduced",
               n="6 seeds", uncertainty="u", robust=verdicts.UNDECIDED)
    scorecard.show([row, {**row, "diagnosis": "holds only under the page's own condition"}])
    carried = shown[0][scorecard.MIME]
    assert [r["diagnosis"] for r in carried] == ["undecided at n = 6 seeds",
                                                 "holds only under the page's own condition"]


def test_scorecard_rows_need_their_uncertainty():
    row = dict(claim="c", figure="Fig. 2", setting="setting1", paper="p", ours="o", verdict="reproduced")
    with pytest.raises(ValueError, match="robust"):
        scorecard.show([row])
    with pytest.raises(ValueError, match="robust"):
        scorecard.show([{**row, "n": "6 seeds", "uncertainty": "u", "robust": "probably"}])


FINGERPRINTS = {  # measured from the authors' code: Z[0,0,:], y_test[:3], sum of |x|^2 over every token, max |x|^2 (prompt, token)
    "setting1": ([0.79003, 0.33678, -2.13422, -0.71784, -0.68457, -3.01884], [-2.15145, 0.16599, -4.45446],
                 104732.08, 26.6512, (103, 17)),
    "setting2": ([0.79003, 0.33678, -2.13422, -0.71784, -0.68457, -3.01884], [-2.15525, 0.51902, -0.16751],
                 30300.61, 27.8333, (166, 5)),
    "setting3": ([0.13694, 0.05838, -0.36994, -0.12443, -0.11866, -0.52328], [-0.04905, 0.00000, -0.00667],
                 21442.33, 53.8569, (446, 16)),
    "sphere": ([0.31535, 0.13443, -0.85189, -0.28653, -0.27325, -1.20499], [-1.06465, 0.07396, -1.67983],
               21000.00, 1.0000, None),
}


@pytest.mark.parametrize("name", FINGERPRINTS)
def test_the_authors_evaluation_batch_matches_their_code(name):
    first_token, targets, total, largest, where = FINGERPRINTS[name]
    global_state = torch.get_rng_state(), np.random.get_state()[1].copy()
    prompts = authors_evaluation_batch(get_setting(name))
    assert torch.equal(torch.get_rng_state(), global_state[0])  # the global generators are left alone
    assert np.array_equal(np.random.get_state()[1], global_state[1])
    token = torch.cat([prompts.x[0, 0], prompts.y[0, :1]])
    np.testing.assert_allclose(token.numpy(), first_token, atol=6e-6)
    np.testing.assert_allclose(prompts.y_query[:3].numpy(), targets, atol=6e-6)
    squared = (torch.cat([prompts.x, prompts.x_query[:, None]], 1) ** 2).sum(-1)
    assert float(squared.sum()) == pytest.approx(total, abs=0.01)
    assert float(squared.max()) == pytest.approx(largest, abs=1e-4)
    if where:
        assert divmod(int(squared.argmax()), squared.shape[1]) == where


def test_evaluation_prompts_names_its_streams():
    with pytest.raises(ParameterError, match="eval_stream"):
        evaluation_prompts(get_setting("setting1"), "mine")
    with pytest.raises(ValueError, match="linear targets"):
        authors_evaluation_batch(get_setting("nonlinear"))


def test_iterates_scored_on_the_runs_own_batch_repeat_their_evaluations():
    from lintf_core.diagnostics import iterate_losses, late_iterate_losses
    from lintf_core.train import train

    runs = train("setting3", seeds=[0, 1], n_iters=100, eval_every=50, iterate_every=50, progress=False,
                 use_cache=False)
    losses = iterate_losses(runs, [("book", 99), ("authors", 99)], use_cache=False)
    np.testing.assert_allclose(losses["mean"][:, :, 0], runs.eval_loss, rtol=1e-5)
    np.testing.assert_allclose(losses["median"][:, :, 0], runs.eval_loss_median, rtol=1e-5)
    assert ((losses["top_share"] > 0) & (losses["top_share"] <= 1)).all()
    authors = train("setting3", seeds=[0, 1], n_iters=100, eval_every=50, iterate_every=50, progress=False,
                    use_cache=False, eval_stream="authors")
    np.testing.assert_allclose(losses["mean"][:, :, 1], authors.eval_loss, rtol=1e-5)
    assert late_iterate_losses(losses).shape == (runs.n_runs, 2)


def test_the_verdict_seeds_contain_the_figures_runs_exactly():
    from lintf_core import profiles
    from lintf_core.train import train_profile, train_verdict_seeds

    config = profiles.resolve("quick", n_iters=60, seeds=[0, 1], verdict_seeds=[0, 1, 2, 3])
    every, figure = train_verdict_seeds("setting1", config, progress=False, use_cache=False)
    alone = train_profile("setting1", config, progress=False, use_cache=False)
    assert every.n_runs == 8 and sorted(set(figure.seed.tolist())) == [0, 1]
    np.testing.assert_array_equal(figure.eval_loss, alone.eval_loss)
    np.testing.assert_array_equal(figure.iterates, alone.iterates)


def test_the_pairs_interval_resamples_pairs_together():
    x = np.arange(30.0)
    assert uncertainty.pairs_interval(x, 2 * x + 1, lambda a, b: stats.spearmanr(a, b).statistic) == pytest.approx((1, 1))
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=200), rng.normal(size=200)
    b = a + b  # correlation 1/sqrt(2)
    low, high = uncertainty.pairs_interval(a, b, lambda u, v: np.corrcoef(u, v)[0, 1])
    assert low < np.corrcoef(a, b)[0, 1] < high and low < 2 ** -0.5 < high
