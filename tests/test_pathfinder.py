"""The Pathfinder generator (lintf_core/pathfinder.py): balanced labels, markers joined by a snake exactly when the
label says so (an independent flood fill over the drawn pixels), determinism by seed, one-line errors."""

from collections import deque

import numpy as np
import pytest

from lintf_core import pathfinder
from lintf_core.errors import ParameterError

SMALL = dict(size=16, contour_length=4)  # the book's scale: quick to draw


def _components(drawn, reach):
    """Labels of the drawn pixels' components, two pixels joined when their Chebyshev distance is at most `reach`
    (a breadth-first flood fill; 0 = not drawn)."""
    labels = np.zeros(drawn.shape, dtype=int)
    current = 0
    for start in zip(*np.nonzero(drawn)):
        if labels[start]:
            continue
        current += 1
        labels[start] = current
        queue = deque([start])
        while queue:
            y, x = queue.popleft()
            for dy in range(-reach, reach + 1):
                for dx in range(-reach, reach + 1):
                    ny, nx = y + dy, x + dx
                    if 0 <= ny < drawn.shape[0] and 0 <= nx < drawn.shape[1] and drawn[ny, nx] and not labels[ny, nx]:
                        labels[ny, nx] = current
                        queue.append((ny, nx))
    return labels


@pytest.mark.parametrize("params", [SMALL, dict(size=32, contour_length=14), dict(size=32, contour_length=6)])
def test_a_flood_fill_joins_the_markers_exactly_when_the_label_is_one(params):
    for index in range(24):
        pixels, label, markers = pathfinder.image(seed=3, index=index, **params)
        components = _components(pixels > 0, reach=pathfinder.LRA_32["margin"] + 1)
        (y0, x0), (y1, x1) = np.floor(markers).astype(int)
        assert components[y0, x0] and components[y1, x1]
        assert (components[y0, x0] == components[y1, x1]) == (label == 1), (params, index)


def test_labels_are_balanced_and_the_markers_distance_does_not_give_them_away():
    draws = [pathfinder.image(seed=0, index=i, **SMALL) for i in range(160)]
    labels = np.array([label for _, label, _ in draws])
    assert labels.sum() == 80
    distance = np.array([np.linalg.norm(m[0] - m[1]) for _, _, m in draws])
    # the markers' distance alone: the best threshold classifier stays near chance
    best = max(np.mean((distance > t) == labels) for t in np.unique(distance))
    best = max(best, max(np.mean((distance <= t) == labels) for t in np.unique(distance)))
    assert best < 0.7


def test_images_are_determined_by_seed_and_index_and_stay_in_range():
    a, label_a, markers_a = pathfinder.image(seed=5, index=7, **SMALL)
    b, label_b, markers_b = pathfinder.image(seed=5, index=7, **SMALL)
    assert np.array_equal(a, b) and label_a == label_b and np.array_equal(markers_a, markers_b)
    assert not np.array_equal(a, pathfinder.image(seed=6, index=7, **SMALL)[0])
    assert a.shape == (16, 16) and a.min() >= 0 and a.max() <= 1 and a.max() == 1  # the markers at full intensity


def test_distractors_follow_lras_rule():
    assert pathfinder.distractors(14) == (4, 5)
    assert pathfinder.distractors(9) == (3, 6)
    assert pathfinder.distractors(6) == (2, 10)


@pytest.mark.parametrize("params, name", [
    (dict(size=0), "size"), (dict(size=8), "size"), (dict(contour_length=0), "contour_length"),
    (dict(paddle_contrast=1.5), "paddle_contrast"), (dict(margin=-1), "margin"), (dict(continuity=0), "continuity"),
])
def test_bad_parameters_stop_with_one_line(params, name):
    with pytest.raises(ParameterError) as error:
        pathfinder.image(seed=0, index=0, **params)
    assert str(error.value).startswith(name + ":") and "\n" not in str(error.value)
