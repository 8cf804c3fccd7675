"""The pure-Python assignment of ``ast_match`` picks exactly the pairs scipy's
``linear_sum_assignment(maximize=True)`` picks, ties included (verdicts and credit depend on it)."""

from __future__ import annotations

import random

import pytest

from toolgym.env.reward.ast_match import _lsap_max

np = pytest.importorskip("numpy")
scipy_opt = pytest.importorskip("scipy.optimize")


def _scipy(m):
    rows, cols = scipy_opt.linear_sum_assignment(np.array(m, dtype=float), maximize=True)
    return sorted((int(r), int(c)) for r, c in zip(rows, cols))


@pytest.mark.parametrize("levels", [1, 2, 3, 5, 1000])
def test_same_pairs_as_scipy_on_tie_heavy_matrices(levels):
    rng = random.Random(levels)
    for _ in range(3000):
        nr, nc = rng.randint(1, 8), rng.randint(1, 8)
        m = [[float(rng.randrange(levels) * rng.choice((1, 7, 49)) + 1) for _ in range(nc)] for _ in range(nr)]
        assert sorted(_lsap_max(m)) == _scipy(m), m


def test_same_pairs_as_scipy_on_matcher_shaped_weights():
    # the matcher's weights: big (passing) + accepted params * b + 1
    rng = random.Random(0)
    for _ in range(3000):
        nr, nc = rng.randint(2, 7), rng.randint(2, 7)
        n_params, b = rng.randint(0, 12), min(nr, nc) + 1
        big = n_params * b + min(nr, nc) + 1
        m = [[float((big if rng.random() < 0.3 else 0) + rng.randint(0, 3) * b + 1) for _ in range(nc)] for _ in range(nr)]
        assert sorted(_lsap_max(m)) == _scipy(m), m
