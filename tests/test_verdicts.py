"""The verdict rules (lintf_core/verdicts.py): ties, NaN, diverged runs, a single seed or depth, empty input."""

import numpy as np
import pytest

from lintf_core import verdicts
from lintf_core.verdicts import NOT_REPRODUCED, PARTLY, REPRODUCED

INF, NAN = float("inf"), float("nan")


@pytest.mark.parametrize("values, expected", [
    ([1, 2, 3], True), ([1, 2, 2], False), ([1, NAN, 3], False), ([1, INF], True), ([5], False), ([], False),
])
def test_increasing_is_strict_and_nan_breaks_it(values, expected):
    assert verdicts.increasing(values) is expected


def test_paired_gap_counts_divergence_and_leaves_out_double_divergence():
    assert verdicts.paired_gap([4.0, 9.0, 1.0], [1.0, 1.0, 1.0]) == 4.0
    assert verdicts.paired_gap([1.0, 1.0, 1.0], [INF, INF, 1.0]) == 0.0  # a diverged Adam run: ratio 0
    assert verdicts.paired_gap([INF, INF, 2.0], [1.0, 1.0, 1.0]) == INF  # diverged SGDM runs: ratio infinity
    assert verdicts.paired_gap([INF, 3.0], [INF, 1.0]) == 3.0  # seed 0: both diverged, left out
    assert np.isnan(verdicts.paired_gap([INF], [INF]))
    assert np.isnan(verdicts.paired_gap([], []))
    assert verdicts.paired_gap([6.0], [2.0]) == 3.0  # a single seed


def test_depth_gap_rule():
    depths = [2, 4, 6, 8]
    assert verdicts.depth_gap_verdict(depths, [1, 2, 3, 4]) == REPRODUCED
    assert verdicts.depth_gap_verdict([8, 2, 6, 4], [4, 1, 3, 2]) == REPRODUCED  # order of the input does not matter
    assert verdicts.depth_gap_verdict(depths, [1, 3, 2, 4]) == PARTLY  # not monotone, positive rank correlation
    assert verdicts.depth_gap_verdict(depths, [1, 2, 2, 3]) == PARTLY  # a tie breaks "every added depth"
    assert verdicts.depth_gap_verdict(depths, [4, 3, 2, 1]) == NOT_REPRODUCED
    assert verdicts.depth_gap_verdict(depths, [1, NAN, NAN, 0.5]) == NOT_REPRODUCED  # too few numbers to correlate
    assert verdicts.depth_gap_verdict(depths, [0.8, 18, 0, 0]) == NOT_REPRODUCED  # diverged Adam: ratio 0
    assert verdicts.depth_gap_verdict([2], [3.0]) == NOT_REPRODUCED
    assert verdicts.depth_gap_verdict([], []) == NOT_REPRODUCED


def test_depth_level_rule():
    depths = [2, 4, 6, 8]
    assert verdicts.depth_level_verdict(depths, [4, 3, 2, 1], [8, 6, 4, 2]) == REPRODUCED
    assert verdicts.depth_level_verdict(depths, [4, 3, 2, 1], [1, 2, 3, 4]) == PARTLY
    assert verdicts.depth_level_verdict(depths, [4, 3, 2, INF], [4, 3, 3, 1]) == NOT_REPRODUCED  # diverged; a tie
    assert verdicts.depth_level_verdict([], [], []) == NOT_REPRODUCED


def test_depth_noise_rule():
    assert verdicts.depth_noise_verdict([2, 4, 6, 8], [1, 2, 3, 4]) == REPRODUCED
    assert verdicts.depth_noise_verdict([2, 4, 6, 8], [1, 5, 3, 4]) == PARTLY
    assert verdicts.depth_noise_verdict([2, 4, 6, 8], [5, 5, 5, 5]) == NOT_REPRODUCED  # ties
    assert verdicts.depth_noise_verdict([2, 4, 6, 8], [1, 2, NAN, 4]) == NOT_REPRODUCED  # NaN compares false
    assert verdicts.depth_noise_verdict([2, 4], [1, 2]) == NOT_REPRODUCED  # no deep model


def test_depth_condition_rule():
    depths = [2, 4, 6, 8]
    assert verdicts.depth_condition_verdict(depths, [[1, 1], [2, 2], [3, 3], [4, 4]]) == REPRODUCED
    assert verdicts.depth_condition_verdict(depths, [[1, 1], [2, 0.5], [3, 3], [4, 4]]) == PARTLY
    assert verdicts.depth_condition_verdict(depths, [[1, 1], [NAN, NAN], [NAN, NAN], [4, 4]]) == NOT_REPRODUCED
    assert verdicts.depth_condition_verdict([4, 6], [[2, 2], [3, 3]]) == NOT_REPRODUCED  # no L = 2 to compare with
    assert verdicts.depth_condition_verdict([2], [[1, 1]]) == NOT_REPRODUCED


class _Runs:
    """The two Trajectories methods grid_best reads, for hand-made late losses."""

    def __init__(self, late):  # {lr: [per-seed late loss, NaN or inf for a diverged run]}
        self.late = {lr: np.asarray(v, dtype=float) for lr, v in late.items()}

    def late_loss(self, optimizer, lr, metric="eval_loss"):
        return self.late[lr]

    def diverged(self, optimizer, lr):
        return ~np.isfinite(self.late[lr])


def test_grid_best_and_table2_confirmation():
    grid = verdicts.grid_best(_Runs({0.01: [3, 3, 3], 0.02: [1, 2, 9], 0.04: [2, 2, 2], 0.08: [NAN, 1, INF]}),
                              "adam", [0.01, 0.02, 0.04, 0.08])
    assert grid["best"] == 0.02 and grid["settled"]
    assert grid["scores"][0.08][0] == INF  # a diverged seed scores infinity
    assert sorted(grid["close"]) == [0.01, 0.02, 0.04]  # medians within the best rate's worst seed (9)
    assert verdicts.rate_confirmed(0.04, grid) and verdicts.rate_confirmed(0.01, grid)
    assert not verdicts.rate_confirmed(0.08, grid)


def test_grid_without_a_best_confirms_nothing():
    grid = verdicts.grid_best(_Runs({0.1: [INF, INF, 1], 0.2: [INF, INF, INF]}), "adam", [0.1, 0.2])
    assert not grid["settled"]
    assert not verdicts.rate_confirmed(0.1, grid)


def test_grid_with_a_single_seed():
    grid = verdicts.grid_best(_Runs({0.1: [2.0], 0.2: [1.0]}), "sgd", [0.1, 0.2])
    assert grid["best"] == 0.2 and grid["close"] == [0.2]


@pytest.mark.parametrize("hits, expected", [
    ([True] * 4, REPRODUCED), ([True, True, False, False], PARTLY), ([True, False, False], NOT_REPRODUCED),
    ([], NOT_REPRODUCED),
])
def test_share_verdict(hits, expected):
    assert verdicts.share_verdict(hits) == expected


def test_late_loss_ratios_follow_the_divergence_conventions():
    ratios = verdicts.late_loss_ratios([2.0, 1.0, INF, INF], [1.0, INF, 1.0, INF])
    assert ratios[0] == 2.0 and ratios[1] == 0.0 and ratios[2] == INF and np.isnan(ratios[3])


@pytest.mark.parametrize("votes, partly_from, expected", [
    ([True, True], 1, REPRODUCED), ([True, False], 1, PARTLY), ([False, False], 1, NOT_REPRODUCED),
    ([True, True, False], 2, PARTLY), ([True, False, False], 2, NOT_REPRODUCED), ([], 1, NOT_REPRODUCED),
    ([np.nan > 1, True], 1, PARTLY),  # a NaN comparison is a failed vote
])
def test_votes_verdict(votes, partly_from, expected):
    assert verdicts.votes_verdict(votes, partly_from) == expected


@pytest.mark.parametrize("holds, expected", [
    ([True] * 3, REPRODUCED), ([True, True, False], PARTLY), ([True, False], NOT_REPRODUCED),  # a tie: no majority
    ([True], REPRODUCED), ([False], NOT_REPRODUCED), ([], NOT_REPRODUCED),
])
def test_majority_verdict(holds, expected):
    assert verdicts.majority_verdict(holds) == expected


def test_fig01_competitive_rule():
    assert verdicts.competitive_verdict([1.1, 0.8, 1.9]) == REPRODUCED
    assert verdicts.competitive_verdict([1.1, 1.5, 3.0]) == PARTLY  # one seed with a "much" gap
    assert verdicts.competitive_verdict([2.0, 2.5, 1.0]) == NOT_REPRODUCED  # a ratio of exactly 2 is a gap
    assert verdicts.competitive_verdict([1.0, INF, INF]) == NOT_REPRODUCED  # SGD diverged on two seeds
    assert verdicts.competitive_verdict([1.0, 1.2, NAN]) == REPRODUCED  # both diverged on one seed: left out
    assert verdicts.competitive_verdict([]) == NOT_REPRODUCED


def test_fig01_larger_gap_rule():
    assert verdicts.larger_gap_verdict([2.0, 3.0, 1.5], [1.0, 1.1, 1.2]) == REPRODUCED
    assert verdicts.larger_gap_verdict([2.0, 3.0, 1.0], [1.0, 1.1, 1.2]) == PARTLY  # smaller on one seed
    assert verdicts.larger_gap_verdict([2.0, 1.0, 1.0], [1.0, 1.1, 1.2]) == NOT_REPRODUCED
    assert verdicts.larger_gap_verdict([2.0, NAN, 3.0], [1.0, 1.0, 1.0]) == PARTLY  # a NaN pair is not "larger"
    assert verdicts.larger_gap_verdict([], []) == NOT_REPRODUCED


def test_fig02_adam_gap_rule():
    assert verdicts.adam_gap_verdict([3.0, 5.0, 2.5]) == REPRODUCED
    assert verdicts.adam_gap_verdict([3.0, 5.0, 0.9]) == PARTLY  # Adam higher on one seed
    assert verdicts.adam_gap_verdict([2.0, 2.0, 2.0]) == PARTLY  # a median of exactly 2 is not "> 2"
    assert verdicts.adam_gap_verdict([0.5, 0.9, 1.5]) == NOT_REPRODUCED
    assert verdicts.adam_gap_verdict(verdicts.late_loss_ratios([3.0, 3.0, 1.0], [1.0, 1.0, INF])) == PARTLY  # Adam diverged
    assert verdicts.adam_gap_verdict([3.0, 4.0, NAN]) == PARTLY  # both diverged on one seed: not "every seed"
    assert verdicts.adam_gap_verdict([4.0]) == REPRODUCED  # a single seed
    assert verdicts.adam_gap_verdict([NAN]) == NOT_REPRODUCED
    assert verdicts.adam_gap_verdict([]) == NOT_REPRODUCED


def _tails(kurtosis, q999=5.0, hill=3.0):
    return {"excess_kurtosis": kurtosis, "q0.999_in_sd": q999, "hill_tail_index": hill}


def test_fig03_tail_rules():
    assert verdicts.heavy_tailed(_tails(2.0, 5.0))
    assert not verdicts.heavy_tailed(_tails(2.0, 4.0))  # a tie at the threshold is not above it
    assert not verdicts.heavy_tailed(_tails(NAN, 5.0))
    heavy, light = _tails(9.0, hill=2.0), _tails(1.0, hill=4.0)
    assert verdicts.heaviest_tails_verdict(heavy, [light, light]) == REPRODUCED
    assert verdicts.heaviest_tails_verdict(heavy, [light, _tails(9.0, hill=4.0)]) == NOT_REPRODUCED  # a tie
    assert verdicts.heaviest_tails_verdict(_tails(9.0, hill=5.0), [light]) == NOT_REPRODUCED  # the index disagrees
    assert verdicts.heaviest_tails_verdict(heavy, []) == NOT_REPRODUCED


def test_fig04_condition_gap_rule():
    assert verdicts.condition_gap_verdict([2.0, 3.0, 0.5]) == REPRODUCED
    assert verdicts.condition_gap_verdict([9.0, 0.5, 0.5]) == PARTLY  # mean above 1, no majority
    assert verdicts.condition_gap_verdict([1.1, 1.1, 0.1]) == PARTLY  # majority, mean below 1
    assert verdicts.condition_gap_verdict([1.0, 1.0]) == NOT_REPRODUCED  # ties
    assert verdicts.condition_gap_verdict([2.0, NAN, 2.0]) == PARTLY  # NaN: the mean's vote fails
    assert verdicts.condition_gap_verdict([2.0]) == REPRODUCED
    assert verdicts.condition_gap_verdict([]) == NOT_REPRODUCED


def test_fig07_faster_rule():
    assert verdicts.faster_verdict([3.0, 4.0, 2.5, 5.0]) == REPRODUCED
    assert verdicts.faster_verdict([1.5, 1.5, 1.5]) == PARTLY  # lower everywhere but not "much"
    assert verdicts.faster_verdict([3.0, 3.0, 0.5]) == PARTLY
    assert verdicts.faster_verdict([3.0, 0.5]) == NOT_REPRODUCED  # a tie in counts is no majority
    assert verdicts.faster_verdict([NAN, NAN, 3.0]) == NOT_REPRODUCED
    assert verdicts.faster_verdict([]) == NOT_REPRODUCED


def test_fig08_rules():
    assert verdicts.similar_within([0.5, 2.9])
    assert not verdicts.similar_within([0.3, 1.0])
    assert not verdicts.similar_within([NAN, 1.0]) and not verdicts.similar_within([])
    assert verdicts.large_model_verdict([3.0, 2.5]) == REPRODUCED
    assert verdicts.large_model_verdict([3.0, 2.0]) == PARTLY  # exactly 2 is not above it
    assert verdicts.large_model_verdict([3.0, 0.0]) == NOT_REPRODUCED  # Adam diverged on one seed
    assert verdicts.large_model_verdict([INF, INF]) == REPRODUCED  # SGDM diverged on every seed
    assert verdicts.large_model_verdict([NAN]) == NOT_REPRODUCED
    assert verdicts.large_model_verdict([]) == NOT_REPRODUCED


@pytest.mark.parametrize("rho, expected", [(0.5, REPRODUCED), (0.49, PARTLY), (0.2, PARTLY), (0.19, NOT_REPRODUCED),
                                           (-0.9, NOT_REPRODUCED), (NAN, NOT_REPRODUCED)])
def test_fig16_correlation_rule(rho, expected):
    assert verdicts.correlation_verdict(rho) == expected


def test_poster_rules():
    assert verdicts.kernel_contrast_verdict([0.1], [0.1, 1.0]) == REPRODUCED
    assert verdicts.kernel_contrast_verdict([], [1.0]) == PARTLY
    assert verdicts.kernel_contrast_verdict([], []) == NOT_REPRODUCED
    assert verdicts.rugged_verdict([True, True], [True, True]) == REPRODUCED
    assert verdicts.rugged_verdict([True, True, False], [False, False, False]) == PARTLY
    assert verdicts.rugged_verdict([True, False], [False, True]) == NOT_REPRODUCED  # ties on both
    assert verdicts.rugged_verdict([], []) == NOT_REPRODUCED


def test_poster_convergence_thresholds():
    assert verdicts.converged([1e-9, 1e-8, 1e-3, NAN]).tolist() == [True, False, False, False]  # 1e-8 is not below
    assert verdicts.kernel_contrast([1e-12, 1e-10], [1e-12, 0.5])  # every Gaussian run converged, one softmax stalled
    assert not verdicts.kernel_contrast([1e-12, 1e-6], [1e-12, 0.5])  # a Gaussian run did not converge
    assert not verdicts.kernel_contrast([1e-12, 1e-10], [1e-12, 1e-3])  # softmax slow, not stalled (1e-3 is not above)
    assert verdicts.gaussian_lower([1e-5, 1e-6], [1e-4, 1e-3])
    assert not verdicts.gaussian_lower([1e-12, 1e-6], [1e-13, 1e-3])  # both at the float floor: not "lower"
    assert not verdicts.gaussian_lower([1e-5, 1e-2], [1e-4, 1e-3])


def test_table2_better_rate_rule():
    assert verdicts.better_rate_verdict([0.1, 0.2], [0.3, 0.4]) == REPRODUCED
    assert verdicts.better_rate_verdict([0.1, 0.5], [0.3, 0.4]) == PARTLY
    assert verdicts.better_rate_verdict([0.3, 0.4], [0.3, 0.1]) == NOT_REPRODUCED  # a tie is not a win
    assert verdicts.better_rate_verdict([INF], [1.0]) == NOT_REPRODUCED  # Table 2's rate diverged
    assert verdicts.better_rate_verdict([], []) == NOT_REPRODUCED


def test_fig09_11_rules():
    heavy, light = _tails(9.0, 6.0), _tails(0.5, 3.5)
    assert verdicts.tails_noise_verdict(heavy, light) == REPRODUCED
    assert verdicts.tails_noise_verdict(heavy, _tails(2.0, 5.0)) == PARTLY  # both heavy-tailed: two of three
    assert verdicts.tails_noise_verdict(_tails(0.5, 3.5), _tails(9.0, 6.0)) == NOT_REPRODUCED  # the other way round
    assert verdicts.wider_gap_verdict([3.0, 4.0], [1.0, 2.0]) == REPRODUCED
    assert verdicts.wider_gap_verdict([3.0, 1.0], [1.0, 2.0]) == PARTLY
    assert verdicts.wider_gap_verdict([NAN, NAN], [1.0, 2.0]) == NOT_REPRODUCED
    assert verdicts.further_verdict([[0.1, 0.2], [0.1]], [[0.5, 0.6], [0.2]]) == REPRODUCED
    assert verdicts.further_verdict([[0.1, 0.2], [0.3]], [[0.5, 0.6], [0.2]]) == PARTLY
    assert verdicts.further_verdict([[INF, INF, 0.1]], [[0.5, 0.5, 0.5]]) == NOT_REPRODUCED  # diverged runs count


def test_fig15_features():
    features = verdicts.nonlinear_features([2.0, 3.0], _tails(2.0, 5.0), [1.5, NAN], [1.0, 2.0], [0.5, 1.0])
    assert features == {"Adam beats SGDM": True, "heavy-tailed noise": True, "R_med larger for SGDM": True,
                        "Adam smoother": True}
    features = verdicts.nonlinear_features([2.0, 1.0], _tails(0.5, 5.0), [0.5, 1.2], [1.0, 2.0], [1.0, 1.0])
    assert not any(features.values())  # a tie at 1, kurtosis below 1, mean ratio 0.85, a tie in smoothness
    # the noise feature is Fig. 3's rule, the one definition of heavy-tailed
    assert verdicts.nonlinear_features([2.0], _tails(0.8, 5.0), [2.0], [1.0], [0.5])["heavy-tailed noise"] is False


def test_fig03_verdict_and_interval_separation():
    assert verdicts.heavy_tail_verdict(_tails(2.0, 5.0)) == REPRODUCED
    assert verdicts.heavy_tail_verdict(_tails(2.0, 4.0)) == NOT_REPRODUCED
    above, below = [(3.0, 5.0), (4.0, 6.0)], [(0.5, 1.0), (1.5, 2.5)]
    assert verdicts.intervals_outcome(above, below) == verdicts.HOLDS
    assert verdicts.intervals_outcome(below, above) == verdicts.OPPOSITE
    assert verdicts.intervals_outcome([(2.0, 5.0)], below) == verdicts.UNDECIDED  # overlaps 1.5-2.5
    assert verdicts.intervals_outcome([(2.5, 5.0)], [(1.0, 2.5)]) == verdicts.UNDECIDED  # touching is not above
    assert verdicts.intervals_outcome([], below) == verdicts.UNDECIDED


def test_fig08_separate_qk_rule():
    single = {"sgd": np.array([4.0, 5.0]), "adam": np.array([1.0, 2.0])}
    assert verdicts.separate_qk_verdict(single, {"sgd": np.array([8.0, 9.0]), "adam": np.array([2.0, 3.0])}) \
        == REPRODUCED
    far = {"sgd": np.array([40.0, 50.0]), "adam": np.array([1.0, 2.0])}  # SGDM 10x the single Q's
    assert verdicts.separate_qk_verdict(single, far) == PARTLY
    swapped = {"sgd": np.array([1.0, 50.0]), "adam": np.array([4.0, 2.0])}  # Adam above SGDM on a seed
    assert verdicts.separate_qk_verdict(single, swapped) == NOT_REPRODUCED
    diverged = {"sgd": np.array([4.0, 5.0]), "adam": np.array([INF, 2.0])}  # a diverged Adam seed: median inf
    assert verdicts.separate_qk_verdict(single, diverged) == NOT_REPRODUCED
    three = {"sgd": np.array([4.0, 5.0, 6.0]), "adam": np.array([1.0, 2.0, 1.5])}
    one_diverged = {"sgd": np.array([4.0, 5.0, 6.0]), "adam": np.array([INF, 2.0, 1.5])}
    assert verdicts.separate_qk_verdict(three, one_diverged) == PARTLY  # medians alike, but not below on every seed


def test_light_tails_are_the_negation_of_heavy_tails():
    assert verdicts.light_tail_verdict(_tails(0.2, 3.1)) == REPRODUCED
    assert verdicts.light_tail_verdict(_tails(2.0, 5.0)) == NOT_REPRODUCED
    assert verdicts.light_tail_verdict(_tails(2.0, 4.0)) == REPRODUCED  # not above both thresholds: not heavy


@pytest.mark.parametrize("low, high, above, below", [(1.5, 3.0, verdicts.HOLDS, verdicts.OPPOSITE),
                                                     (-0.5, 0.5, verdicts.OPPOSITE, verdicts.HOLDS),
                                                     (0.5, 1.5, verdicts.UNDECIDED, verdicts.UNDECIDED)])
def test_interval_fields_read_the_interval_against_the_threshold_either_way(low, high, above, below):
    assert verdicts.interval_fields("k", 1.0, low, high, 1, 10, "samples")["robust"] == above
    fields = verdicts.interval_fields("k", 1.0, low, high, 1, 10, "samples", claim_above=False)
    assert fields["robust"] == below and fields["n"] == "10 samples"
