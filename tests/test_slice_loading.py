"""Loading a slice file validates it: each tampered file is one LosslabError with one line per problem.

Reference: files written by ``LineSlice.save``/``PlaneSlice.save`` of real slices, then changed
array by array with NumPy (as a user or a broken disk would), and the exact problem lines expected.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from losslab import LosslabError, Problem
from losslab.landscape import LineSlice, PlaneSlice, line, load_slice, plane
from losslab.models import TwoLayer

DT = torch.float64


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """The arrays of a real plane (3×4 grid of a two-layer net, p = 12) and of a real line, as written by .save."""
    folder = tmp_path_factory.mktemp("slices")
    x = torch.linspace(-1, 1, 6, dtype=DT)
    prob = Problem(TwoLayer(1, 4, "tanh"), x, x**3)
    theta = prob.init(0)
    plane(prob, theta, steps=3, seed=1).save(folder / "plane.npz")
    line(prob, theta, prob.init(1), steps=5).save(folder / "line.npz")
    out = {}
    for kind in ("plane", "line"):
        with np.load(folder / f"{kind}.npz", allow_pickle=False) as data:
            out[kind] = {k: data[k] for k in data.files}
    return out


def tampered(saved, tmp_path, kind, change):
    arrays = dict(saved[kind])
    change(arrays)
    path = tmp_path / f"{kind}.npz"
    np.savez(path, **arrays)
    return path


def _set(**values):
    def change(a):
        for k, v in values.items():
            if v is None:
                del a[k]
            else:
                a[k] = v(a) if callable(v) else v

    return change


BAD = [  # (kind, change, the problem lines expected, in order)
    ("plane", _set(losses=lambda a: a["losses"][:, :2]), ["losses: shape (3, 2), expected (3, 3) = (len(alphas), len(betas))"]),
    ("plane", _set(losses=lambda a: a["losses"].astype(str)), ["losses: dtype <U"]),
    ("plane", _set(losses=lambda a: np.full_like(a["losses"], np.nan)), ["losses: none of the 9 values is finite"]),
    ("plane", _set(losses=lambda a: np.where(np.eye(3, dtype=bool), np.nan, a["losses"])), ["losses: 3 NaN of 9 values"]),
    ("plane", _set(losses=lambda a: np.where(np.eye(3, dtype=bool), -np.inf, a["losses"])), ["losses: 3 -inf of 9 values"]),
    ("plane", _set(d1=lambda a: a["d1"][:5]), ["points of different lengths: center (12,), d1 (5,), d2 (12,)"]),
    ("plane", _set(center=lambda a: a["center"].reshape(3, 4)), ["center: shape (3, 4), expected (p,)"]),
    ("plane", _set(d2=lambda a: a["d2"].astype(np.float32)), ["mixed dtypes: alphas float64, betas float64, center float64, "
                                                              "d1 float64, d2 float32"]),
    ("plane", _set(alphas=lambda a: a["alphas"][::-1].copy()), ["alphas: not increasing"]),
    ("plane", _set(betas=lambda a: np.array([0.0, np.inf, 1.0])), ["betas: 1 non-finite of 3 values"]),
    ("plane", _set(center=lambda a: np.where(np.arange(12) < 2, np.nan, a["center"])), ["center: 2 non-finite of 12 values"]),
    ("plane", _set(d1=None), ["d1: missing"]),
    ("plane", _set(d1=None, losses=None, seed=None), ["losses: missing", "d1: missing", "seed: missing"]),
    ("plane", _set(method=np.array("magic")), ["method: 'magic', expected one of 'grid', 'exact quadratic'"]),
    ("plane", _set(method=np.array("exact quadratic")), ["coefficients: float64 array of shape (0,), expected finite floats of "
                                                          "shape (6,) for method 'exact quadratic'"]),
    ("plane", _set(seed=np.array([1.5])), ["seed: float64 array of shape (1,), expected an integer array"]),
    ("plane", _set(version=np.array(99)), ["version: array(99), expected an integer from 1 to 1"]),
    ("plane", _set(version=np.array(-5)), ["version: array(-5), expected an integer from 1 to 1"]),
    ("plane", _set(description=np.zeros(2)), ["description: float64 array of shape (2,), expected text"]),
    ("plane", _set(losses=lambda a: a["losses"][:2], d1=lambda a: a["d1"].astype(np.int64)),
     ["d1: dtype int64, expected float32 or float64 numbers", "losses: shape (2, 3), expected (3, 3)"]),
    ("line", _set(losses=lambda a: a["losses"][:4]), ["losses: shape (4,), expected (5,) = (len(t),)"]),
    ("line", _set(losses=lambda a: np.array(["a"] * 5)), ["losses: dtype <U1, expected float32 or float64 numbers"]),
    ("line", _set(losses=lambda a: np.full(5, np.nan)), ["losses: none of the 5 values is finite"]),
    ("line", _set(t=lambda a: a["t"].reshape(5, 1)), ["t: shape (5, 1), expected (steps,) with steps >= 2"]),
    ("line", _set(t=lambda a: np.zeros(5)), ["t: not increasing"]),
    ("line", _set(a=lambda a: a["a"][:3]), ["points of different lengths: a (3,), b (12,)"]),
    ("line", _set(b=lambda a: np.array([np.inf] * 12)), ["b: 12 non-finite of 12 values"]),
    ("line", _set(b=lambda a: a["b"].astype(np.complex128)), ["b: dtype complex128, expected float32 or float64 numbers"]),
    ("line", _set(losses=lambda a: a["losses"].astype(np.float16)), ["losses: dtype float16, expected float32 or float64 numbers"]),
    ("line", _set(losses=lambda a: a["losses"].astype(np.longdouble)),
     [f"losses: dtype {np.dtype(np.longdouble)}, expected float32 or float64 numbers"]),
    ("line", _set(a=None, b=None), ["a: missing", "b: missing"]),
]


@pytest.mark.parametrize(("kind", "change", "lines"), BAD)
def test_a_tampered_slice_is_one_error_with_a_line_per_problem(saved, tmp_path, kind, change, lines):
    path = tampered(saved, tmp_path, kind, change)
    for load in (load_slice, PlaneSlice.load if kind == "plane" else LineSlice.load):
        with pytest.raises(LosslabError) as err:
            load(path)
        head, *problems = str(err.value).splitlines()
        assert head.startswith(f"expected a {kind} slice file written by losslab (.save), got {path} with {len(lines)} problem")
        assert len(problems) == len(lines), str(err.value)
        for got, want in zip(problems, lines):
            assert want in got, str(err.value)


@pytest.mark.parametrize(
    ("write", "match"),
    [
        (lambda p: p.write_text("losses = [1, 2, 3]"), "which numpy cannot read without unpickling"),
        (lambda p: np.save(p.with_suffix(".npy"), np.zeros(3)) or p.with_suffix(".npy").rename(p), "a single .npy array"),
        (lambda p: np.savez(p, kind=np.array("surface"), losses=np.zeros(3)), r"got a file with keys \['kind', 'losses'\]"),
        (lambda p: np.savez(p, losses=np.zeros(3)), r"expected a slice file written by losslab \(.save\), got a file with keys"),
        (lambda p: None, "got no file at"),
        (lambda p: np.savez(p, kind=np.array("plane"), losses=np.array([{"a": 1}], dtype=object)),
         "losses: cannot be read without unpickling"),
    ],
)
def test_what_is_not_a_slice_file_is_one_line(tmp_path, write, match):
    path = tmp_path / "x.npz"
    write(path)
    with pytest.raises(LosslabError, match=match):
        load_slice(path)


def test_a_slice_with_overflowed_losses_still_loads(saved, tmp_path):
    """+inf is a loss that overflowed where it was evaluated: kept, as the slice was computed."""
    path = tampered(saved, tmp_path, "plane", _set(losses=lambda a: np.where(np.eye(3, dtype=bool), np.inf, a["losses"])))
    back = load_slice(path)
    assert int(torch.isinf(back.losses).sum()) == 3 and torch.isfinite(back.losses).sum() == 6


def test_the_untampered_files_load_exactly(saved, tmp_path):
    for kind in ("plane", "line"):
        back = load_slice(tampered(saved, tmp_path, kind, lambda a: None))
        assert np.array_equal(back.losses.numpy(), saved[kind]["losses"])


def test_a_saved_slice_has_the_permissions_of_any_new_file(tmp_path):
    """Written atomically through a private temp file (mode 0o600), then given 0o666 less the umask, as open() would."""
    import os
    import stat

    from losslab.landscape.slice_files import save_npz

    old = os.umask(0o022)
    try:
        save_npz(tmp_path / "s.npz", {"x": np.zeros(2)})
        save_npz(tmp_path / "t.npz", {"x": np.zeros(2)})
        os.umask(0o077)
        save_npz(tmp_path / "u.npz", {"x": np.zeros(2)})
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "s.npz").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "u.npz").stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.npz", "t.npz", "u.npz"]  # no temp file left
