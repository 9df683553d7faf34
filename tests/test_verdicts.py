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

    def late_loss(self, optimizer, lr):
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
