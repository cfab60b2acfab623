"""Tests for experiment 15 (mode-connectivity) and the digits loader.

References independent of the experiment's code: the digits against ``sklearn.datasets.load_digits``; the loss of the
one-hidden-layer relu MLP written out by hand (``F.cross_entropy`` of relu(X W0ᵀ + b0) W1ᵀ + b1); the aligned
permutation by brute force over every permutation of a width-4 layer; the claims re-judged from the measured numbers.
"""

from __future__ import annotations

import dataclasses
import itertools
import math

import pytest
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits

from losslab import LosslabError
from losslab.data import digits
from losslab.experiments import get_experiment, run_experiment
from losslab.experiments._connectivity_runs import digits_problems, network_seed
from losslab.experiments.mode_connectivity import CURVE, LARGE, MOST, claims, shrink_ratios
from losslab.fit import train
from losslab.models import MLP
from losslab.problem import Problem

from _helpers import assert_evidence_shows_values

F64 = torch.float64
KEYS = ("naive-barrier-large", "alignment-shrinks-barrier", "shrinks-more-with-width", "curve-connects")
OVERRIDES = {"widths": (4, 6), "pairs": 2, "n_train": 120, "steps": 40, "points": 5, "curve_steps": 5}


def test_digits_are_sklearns_in_a_seeded_order():
    bunch = load_digits()
    X, y = digits(seed=3)
    assert X.shape == (1797, 64) and y.dtype == torch.int64
    rows = {(*tuple((16 * r).round().int().tolist()), int(c)) for r, c in zip(X, y)}
    want = {(*tuple(int(v) for v in r), int(c)) for r, c in zip(bunch.data, bunch.target)}
    assert rows == want and float(X.min()) == 0.0 and float(X.max()) == 1.0
    assert torch.equal(digits(seed=3)[0], X)  # same seed, same order
    assert not torch.equal(digits(seed=4)[0], X)
    assert torch.equal(digits(10, seed=3)[0], X[:10])


@pytest.mark.parametrize(("n", "match"), [(0, "expected n to be an integer >= 1, got n=0"), (1798, "expected n <= 1797"),
                                          (2.0, "expected n to be an integer >= 1"), (True, "expected n to be an integer")])
def test_digits_bad_n(n, match):
    with pytest.raises(LosslabError, match=match):
        digits(n)


@pytest.fixture(scope="module")
def small_run():
    exp = get_experiment("mode-connectivity")
    return exp.make_settings(overrides=OVERRIDES), run_experiment(exp, seed=2, overrides=OVERRIDES)


def _hand_loss(X, y, width):
    shapes = [(width, 64), (width,), (10, width), (10,)]
    sizes = [math.prod(s) for s in shapes]

    def loss(theta):
        W0, b0, W1, b1 = (p.reshape(s) for p, s in zip(theta.split(sizes), shapes, strict=True))
        return F.cross_entropy(torch.relu(X @ W0.T + b0) @ W1.T + b1, y)

    return loss


def _networks(settings, seed, index):
    X, y, _, _ = digits_problems(settings.n_train, seed)
    problem = Problem(MLP([64, settings.widths[index], 10], "relu"), X, y, loss="cross_entropy")
    thetas = [train(problem, optimizer="adam", lr=settings.lr, steps=settings.steps, seed=network_seed(seed, index, k),
                    record_every=settings.steps).theta.detach() for k in range(2 * settings.pairs)]
    return X, y, thetas


def test_segments_equal_the_hand_loss_and_alignment_is_the_brute_force_permutation(small_run):
    settings, result = small_run
    m = result.measured
    X, y, thetas = _networks(settings, 2, 0)
    width = settings.widths[0]
    loss = _hand_loss(X, y, width)
    ts = [k / (settings.points - 1) for k in range(settings.points)]
    for k in range(settings.pairs):
        a, b = thetas[2 * k], thetas[2 * k + 1]
        assert m.naive[0][k] == pytest.approx([float(loss((1 - t) * a + t * b)) for t in ts], rel=1e-9)
        # brute force: the permutation of b's hidden units maximising ⟨θ_a, π(θ_b)⟩
        W0, b0, W1 = b[: 64 * width].reshape(width, 64), b[64 * width: 65 * width], b[65 * width: 75 * width].reshape(10, width)

        def permuted(p, W0=W0, b0=b0, W1=W1, b=b):
            idx = torch.tensor(p)
            return torch.cat([W0[idx].reshape(-1), b0[idx], W1[:, idx].reshape(-1), b[75 * width:]])

        best = max((permuted(p) for p in itertools.permutations(range(width))), key=lambda t, a=a: float(a @ t))
        assert m.aligned[0][k] == pytest.approx([float(loss((1 - t) * a + t * best)) for t in ts], rel=1e-9)
        assert m.aligned[0][k][-1] == pytest.approx(m.naive[0][k][-1], rel=1e-12)  # π(θ_b) computes θ_b's function
        assert m.naive_barrier[0][k] == pytest.approx(max(m.naive[0][k]) - (m.naive[0][k][0] + m.naive[0][k][-1]) / 2, rel=1e-12)
    assert len(m.curve[0]) == settings.points and m.curve[0][0] == pytest.approx(m.naive[0][0][0], rel=1e-12)
    assert m.curve[0][-1] == pytest.approx(m.naive[0][0][-1], rel=1e-12)


def test_claims_are_judged_from_the_numbers_and_show_them(small_run):
    _settings, result = small_run
    m = result.measured
    assert tuple(c.key for c in result.claims) == KEYS
    holds = {c.key: c.holds for c in result.claims}
    cells = [(n, a, (la + lb) / 2) for nv, al, las, lbs in zip(m.naive_barrier, m.aligned_barrier, m.losses_a, m.losses_b)
             for n, a, la, lb in zip(nv, al, las, lbs)]
    assert holds["naive-barrier-large"] == all(n >= LARGE * e for n, _, e in cells)
    widest = zip(m.naive_barrier[-1], m.aligned_barrier[-1])
    assert holds["alignment-shrinks-barrier"] == (all(a < n for n, a, _ in cells) and all(a < MOST * n for n, a in widest))
    ratios = [sum(a / n for n, a in zip(nv, al)) / len(nv) for nv, al in zip(m.naive_barrier, m.aligned_barrier)]
    assert shrink_ratios(m) == pytest.approx(ratios, rel=1e-12)
    assert holds["shrinks-more-with-width"] == all(r2 < r1 for r1, r2 in itertools.pairwise(ratios))
    assert holds["curve-connects"] == all(c <= CURVE * nv[0] for c, nv in zip(m.curve_barrier, m.naive_barrier))
    for c in result.claims:
        assert_evidence_shows_values(c)


def test_each_claim_can_fail(small_run):
    settings, result = small_run
    m = result.measured
    flat = dataclasses.replace(m, naive_barrier=[[1e-9] * len(r) for r in m.naive_barrier])
    worse = dataclasses.replace(m, aligned_barrier=[[2 * v + 1 for v in r] for r in m.naive_barrier])
    wider_worse = dataclasses.replace(m, aligned_barrier=[[v * (i + 1) * 0.4 for v in r] for i, r in enumerate(m.naive_barrier)])
    bent = dataclasses.replace(m, curve_barrier=[r[0] for r in m.naive_barrier])
    # lowered at every width, but at the widest only to 0.6 of the naive barrier: not "most of it" removed
    partly = dataclasses.replace(m, aligned_barrier=[*[[v / 100 for v in r] for r in m.naive_barrier[:-1]],
                                                     [0.6 * v for v in m.naive_barrier[-1]]])
    for changed, key in ((flat, "naive-barrier-large"), (worse, "alignment-shrinks-barrier"), (partly, "alignment-shrinks-barrier"),
                         (wider_worse, "shrinks-more-with-width"), (bent, "curve-connects")):
        failed = {c.key: c for c in claims(settings, changed)}[key]
        assert not failed.holds
        assert "needs" in failed.evidence, failed.evidence  # a failing claim says what it needed, never a false "≥ 5"


def test_failing_evidence_reads_true(small_run):
    settings, result = small_run
    m = result.measured
    partly = dataclasses.replace(m, aligned_barrier=[[v / 100 for v in r] for r in m.naive_barrier[:-1]]
                                 + [[0.6 * v for v in m.naive_barrier[-1]]])
    c = {c.key: c for c in claims(settings, partly)}["alignment-shrinks-barrier"]
    assert "0.600 (pair 0), not below 0.5, needs < 0.5" in c.evidence and "), < 1;" in c.evidence
    flat = dataclasses.replace(m, naive_barrier=[[1e-9] * len(r) for r in m.naive_barrier])
    c = {c.key: c for c in claims(settings, flat)}["naive-barrier-large"]
    assert f"below {LARGE:g}, needs ≥ {LARGE:g}" in c.evidence and f"), ≥ {LARGE:g}" not in c.evidence
    zero = dataclasses.replace(m, naive_barrier=[[0.0] * len(r) for r in m.naive_barrier])  # identical ends: no barrier
    assert not any(c.holds for c in claims(settings, zero) if c.key != "shrinks-more-with-width")
    diverged = dataclasses.replace(m, curve_barrier=[math.nan] * len(m.curve_barrier))
    for c in claims(settings, diverged):
        assert not c.holds and "not finite (a run diverged)" in c.evidence


def test_same_seed_same_numbers(small_run):
    _, result = small_run
    again = run_experiment(get_experiment("mode-connectivity"), seed=2, overrides=OVERRIDES)
    assert again.measured.to_dict() == result.measured.to_dict()
