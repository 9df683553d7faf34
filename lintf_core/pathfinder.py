"""Pathfinder (Linsley et al. 2018; Long Range Arena's image task), written from the published description.

An image holds two dashed curves ("snakes") grown from two seeds `seed_distance` pixels apart, and distractor
snakes. A snake is a chain of short line segments ("paddles") with gaps between them; each next paddle turns by an
angle drawn with weight cos^2(min(continuity * |turn|, pi/2)) among the turns whose paddle lands on free pixels.
Two marker discs are drawn: one where the first snake starts, the other where the first snake ends (label 1: on the
same snake) or where the second ends (label 0: on different snakes). Both snakes start close together and grow
alike, and an image is kept only where the two candidate second markers lie about equally far from the first
(DISTANCE_TOLERANCE), so the markers' distance does not give the label away; everything but the second marker is
drawn before the label is known.

Geometry. Positions live on a grid `antialias` times finer than the image; each paddle is drawn there (the fine
pixels within half the thickness of the segment, at least one fine pixel wide) and averaged into the image's
pixels. The rule that makes the task well posed, checked by the tests with a flood fill: paddles of different
snakes, and a marker and any snake it does not sit on, keep a Chebyshev distance above `margin` + 1 image pixels,
as do paddles of one snake more than two apart along it; consecutive paddles of a snake are within it. So the drawn
pixels, joined when at most `margin` + 1 apart, connect the markers exactly when the label is 1.

Long Range Arena's 32 x 32 parameters are LRA_32; the difficulty is the contour length (paddles a snake): 6, 9 or
14. Distractor snakes have contour_length // 3 paddles, 20 // that many of them (fewer where no room is left). Not
reproduced: LRA's per-snake contrast lists; here each paddle's intensity is drawn from [paddle_contrast, 1] and the
markers are drawn at 1.
"""

import math
from functools import lru_cache

import numpy as np

from .errors import ParameterError, check_positive

LRA_32 = dict(size=32, padding=1, paddle_length=2, thickness=0.5, margin=1, marker_radius=1.5, seed_distance=7,
              continuity=1.0, paddle_contrast=0.75, antialias=2)
DIFFICULTY = {"easy": 6, "intermediate": 9, "hard": 14}  # LRA's contour lengths
DIRECTIONS = 36  # a paddle points in one of 36 directions, 10 degrees apart
TURNS = np.arange(-8, 9)  # the turns a next paddle may take, in steps of 10 degrees (+-90 has weight 0 at continuity 1)
MAX_TRIES = 20_000  # attempts at an image before giving up (at 16 pixels, contour 4, about 1 in 200 succeeds)
DISTRACTOR_TRIES = 20  # starts tried for a distractor before leaving it out
DISTANCE_TOLERANCE = 2.0  # image pixels: the largest difference between the two candidate markers' distances


def distractors(contour_length):
    """(paddles a distractor, number of distractors) for a contour length, as LRA: length // 3 and 20 // that."""
    length = max(1, contour_length // 3)
    return length, 20 // length


def _check(size, padding, paddle_length, thickness, margin, marker_radius, seed_distance, continuity,
           paddle_contrast, antialias, contour_length):
    check_positive("size", size, integer=True)
    check_positive("paddle_length", paddle_length)
    check_positive("thickness", thickness)
    check_positive("marker_radius", marker_radius)
    check_positive("seed_distance", seed_distance)
    check_positive("continuity", continuity)
    check_positive("antialias", antialias, integer=True)
    check_positive("contour_length", contour_length, integer=True)
    if not (isinstance(padding, int) and padding >= 0):
        raise ParameterError("padding", padding, "an integer >= 0")
    if not (isinstance(margin, int) and margin >= 0):
        raise ParameterError("margin", margin, "an integer >= 0")
    if not 0 < paddle_contrast <= 1:
        raise ParameterError("paddle_contrast", paddle_contrast, "a number in (0, 1]")
    smallest = math.ceil(2 * padding + 2 * (paddle_length + margin) + seed_distance)
    if size < smallest:
        raise ParameterError("size", size, f"at least {smallest} for these paddles, padding and seed distance")


@lru_cache(maxsize=8)
def _stamps(paddle_length, thickness, margin, marker_radius, antialias):
    """Precomputed shapes, in image pixels relative to the image pixel that holds the start, for each direction and
    each phase of the start's fine pixel within its image pixel: the paddle's pixels with their coverage (share of
    fine pixels drawn), the pixels within margin + 1 of them (Chebyshev), and where the paddle ends (fine-grid
    offset); and the marker disc's pixels, coverage and pixels within margin + 1 per phase."""
    a = antialias
    reach = margin + 1
    half_width = max(thickness * a / 2, 0.5)
    span = int(math.ceil(max(paddle_length * a + half_width, marker_radius * a))) + 1
    fy, fx = np.mgrid[-span:span + 1, -span:span + 1]  # fine pixels around the start (fine pixel centres at +0.5)

    def shape(on, py, px):
        """Image pixels (relative to the start's) of the fine pixels `on` (a mask over fy, fx) for a start of phase
        (py, px), their coverage, and the pixels within margin + 1 of them."""
        cells = {}
        for y, x in zip(fy[on] + py, fx[on] + px):
            key = (int(y) // a, int(x) // a)
            cells[key] = cells.get(key, 0) + 1.0 / (a * a)
        near = {(y + dy, x + dx) for (y, x) in cells for dy in range(-reach, reach + 1)
                for dx in range(-reach, reach + 1)}
        return tuple(cells), tuple(cells.values()), frozenset(near)

    paddles = {}
    length = paddle_length * a
    for d in range(DIRECTIONS):
        theta = 2 * math.pi * d / DIRECTIONS
        uy, ux = math.sin(theta), math.cos(theta)
        # distance from each fine pixel's centre to the segment from the start pixel's centre along u
        along = np.clip(fy * uy + fx * ux, 0, length)
        on = np.hypot(fy - along * uy, fx - along * ux) <= half_width
        for py in range(a):
            for px in range(a):
                paddles[d, py, px] = (*shape(on, py, px), (length * uy, length * ux))
    disc = np.hypot(fy, fx) <= marker_radius * a
    markers = {(py, px): shape(disc, py, px) for py in range(a) for px in range(a)}
    return paddles, markers


class _Canvas:
    """The image being drawn: its pixels, and for each image pixel how many paddles of each snake come within
    margin + 1 of it. Every change is logged, so that a distractor that cannot grow is taken back whole."""

    def __init__(self, size, padding, stamps, antialias):
        self.size, self.padding, self.a = size, padding, antialias
        self.paddles, self.markers = stamps
        self.image = np.zeros((size, size))
        self.near = {}  # image pixel -> {snake id: paddles of it within margin + 1}
        self.log = []

    def paddle_at(self, start, direction):
        """A paddle from the fine-grid pixel `start` in `direction`: (pixels, coverage, a function giving its pixels
        within margin + 1, the fine-grid point where it ends)."""
        y, x = start
        cells, coverage, near, (ey, ex) = self.paddles[direction % DIRECTIONS, y % self.a, x % self.a]
        by, bx = y // self.a, x // self.a
        return ([(by + dy, bx + dx) for dy, dx in cells], coverage,
                lambda: frozenset((by + dy, bx + dx) for dy, dx in near), (y + ey, x + ex))

    def inside(self, cells):
        lo, hi = self.padding, self.size - self.padding
        return all(lo <= y < hi and lo <= x < hi for y, x in cells)

    def free(self, cells, snake, recent=()):
        """No pixel of `cells` within margin + 1 of another snake's paddle, or of `snake`'s own but its `recent`
        ones (their sets of pixels within margin + 1): a dashed snake's paddle lies that close to the two before it,
        and further back the snake may not come back on itself."""
        for cell in cells:
            owners = self.near.get(cell)
            if owners and any(n > (s == snake) * sum(cell in r for r in recent) for s, n in owners.items()):
                return False
        return True

    def draw(self, cells, coverage, near, snake, intensity):
        for (y, x), c in zip(cells, coverage):
            self.log.append(("pixel", y, x, self.image[y, x]))
            self.image[y, x] = max(self.image[y, x], c * intensity)
        for cell in near:
            owners = self.near.setdefault(cell, {})
            owners[snake] = owners.get(snake, 0) + 1
            self.log.append(("near", cell, snake))

    def undo(self, mark):
        """Takes back every change since len(self.log) was `mark`."""
        while len(self.log) > mark:
            entry = self.log.pop()
            if entry[0] == "pixel":
                self.image[entry[1], entry[2]] = entry[3]
            else:
                owners = self.near[entry[1]]
                owners[entry[2]] -= 1
                if not owners[entry[2]]:
                    del owners[entry[2]]

    def marker(self, point):
        """The disc's pixels, coverage and pixels within margin + 1 at the fine-grid point `point`."""
        y, x = int(round(point[0])), int(round(point[1]))
        cells, coverage, near = self.markers[y % self.a, x % self.a]
        by, bx = y // self.a, x // self.a
        return ([(by + dy, bx + dx) for dy, dx in cells], coverage, [(by + dy, bx + dx) for dy, dx in near])

    def marker_clear(self, point, snake):
        """The disc at `point` lies inside the image and beyond margin + 1 of every snake but `snake`."""
        cells, _, _ = self.marker(point)
        return all(0 <= y < self.size and 0 <= x < self.size for y, x in cells) and all(
            set(self.near.get(cell, {})) <= {snake} for cell in cells)


class _Snake:
    """A snake being drawn on `canvas`, one paddle at a time: seed() draws its first paddle, extend() the next, which
    turns by a weighted draw among the turns whose paddle is free and within margin + 1 of the one before; each
    paddle's intensity is drawn from [contrast, 1]. Both return False (drawing nothing) where no paddle fits."""

    def __init__(self, canvas, rng, ident, weights, gap, contrast):
        self.canvas, self.rng, self.ident, self.weights, self.gap, self.contrast = (canvas, rng, ident, weights, gap,
                                                                                     contrast)
        self.recent = []  # the near pixels of the last two paddles, the latest last

    def _draw(self, paddle, direction):
        cells, coverage, near, self.end = paddle
        near = near()
        self.direction = direction
        self.canvas.draw(cells, coverage, near, self.ident, self.rng.uniform(self.contrast, 1.0))
        self.recent = [*self.recent[-1:], near]

    def seed(self, start, direction):
        paddle = self.canvas.paddle_at(start, direction)
        if not (self.canvas.inside(paddle[0]) and self.canvas.free(paddle[0], self.ident)):
            return False
        self._draw(paddle, direction)
        return True

    def extend(self):
        w = self.weights.copy()
        while w.sum() > 1e-12:
            turn = int(TURNS[min(np.searchsorted(np.cumsum(w), self.rng.random() * w.sum(), side="right"),
                                 len(TURNS) - 1)])
            theta = 2 * np.pi * (self.direction + turn) / DIRECTIONS
            start = (int(round(self.end[0] + self.gap * np.sin(theta))),
                     int(round(self.end[1] + self.gap * np.cos(theta))))
            paddle = self.canvas.paddle_at(start, self.direction + turn)
            if (self.canvas.inside(paddle[0]) and self.canvas.free(paddle[0], self.ident, self.recent)
                    and self.recent[-1].intersection(paddle[0])):
                self._draw(paddle, self.direction + turn)
                return True
            w[TURNS == turn] = 0.0
        return False


def image(seed, index, contour_length=14, size=32, padding=1, paddle_length=2, thickness=0.5, margin=1,
          marker_radius=1.5, seed_distance=7, continuity=1.0, paddle_contrast=0.75, antialias=2):
    """Image `index` of the dataset of `seed`: (pixels (size, size) in [0, 1], label, markers). Its label is
    index % 2 (a dataset of an even number of images is exactly balanced); its randomness comes from numpy's
    Generator seeded with (seed, index) alone. `markers`: the two marker centres, in image pixels (row, column)."""
    _check(size, padding, paddle_length, thickness, margin, marker_radius, seed_distance, continuity,
           paddle_contrast, antialias, contour_length)
    label = index % 2
    rng = np.random.default_rng([seed, index])
    a = antialias
    stamps = _stamps(float(paddle_length), float(thickness), int(margin), float(marker_radius), int(a))
    gap = margin * a
    d_length, n_distractors = distractors(contour_length)
    lo, hi = padding * a, (size - padding) * a
    weights = np.cos(np.minimum(continuity * np.abs(TURNS) * 2 * np.pi / DIRECTIONS, np.pi / 2)) ** 2
    for _ in range(MAX_TRIES):
        canvas = _Canvas(size, padding, stamps, a)
        first = (int(rng.integers(lo, hi)), int(rng.integers(lo, hi)))
        angle = rng.uniform(0, 2 * np.pi)
        second = (int(round(first[0] + seed_distance * a * np.sin(angle))),
                  int(round(first[1] + seed_distance * a * np.cos(angle))))
        # the two snakes grow a paddle each in turn, so that neither takes the room the other needs
        snakes = [_Snake(canvas, rng, ident, weights, gap, paddle_contrast) for ident in (0, 1)]
        grown = all(snake.seed(start, int(rng.integers(DIRECTIONS))) for snake, start in zip(snakes, (first, second)))
        grown = grown and all(snake.extend() for _ in range(contour_length - 1) for snake in snakes)
        if not grown:
            continue
        ends = [snake.end for snake in snakes]
        # either end may be marked: the two candidate markers lie about as far from the first, so that the markers'
        # distance does not tell the label (without this, at 16 pixels it told it 77 % of the time)
        if abs(math.dist(first, ends[0]) - math.dist(first, ends[1])) > DISTANCE_TOLERANCE * a:
            continue
        # the discs where the first snake starts and where both snakes end must clear the other snake: either end
        # may be marked, and nothing before the last step depends on the label
        tips = (first, *ends)
        owners = (0, 0, 1)
        clear = True
        for tip, owner in zip(tips, owners):  # each disc then counts as part of its snake: the next discs and the
            clear = clear and canvas.marker_clear(tip, owner)  # distractors keep clear of it
            canvas.draw([], (), canvas.marker(tip)[2], owner, 0.0)
        if not clear:
            continue
        for k in range(n_distractors):  # until one finds no room in DISTRACTOR_TRIES starts
            for _ in range(DISTRACTOR_TRIES):
                mark = len(canvas.log)
                snake = _Snake(canvas, rng, 2 + k, weights, gap, paddle_contrast)
                start = (int(rng.integers(lo, hi)), int(rng.integers(lo, hi)))
                if snake.seed(start, int(rng.integers(DIRECTIONS))) and all(
                        snake.extend() for _ in range(d_length - 1)):
                    break
                canvas.undo(mark)
            else:
                break
        marked = (tips[0], tips[1] if label == 1 else tips[2])
        for tip in marked:
            cells, coverage, _ = canvas.marker(tip)
            for (y, x), c in zip(cells, coverage):
                canvas.image[y, x] = max(canvas.image[y, x], c)
        markers = np.array([[int(round(t[0])) + 0.5, int(round(t[1])) + 0.5] for t in marked]) / a
        return canvas.image, label, markers
    raise RuntimeError(f"pathfinder: no image after {MAX_TRIES} tries (seed {seed}, index {index}): the canvas is "
                       "too small for these snakes")
