"""Losses of the model output: values against references, declared convexity, stability, targets."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from losslab import LOSSES, Loss, LosslabError
from losslab.losses import check_targets, get_loss

from _helpers import gen

DT = torch.float64


def sample(name: str, n: int, seed: int, k: int = 4, scale: float = 3.0):
    """Outputs f and valid targets y for loss ``name``."""
    g = gen(seed)
    if name == "mse":
        return scale * torch.randn(n, 2, generator=g, dtype=DT), torch.randn(n, 2, generator=g, dtype=DT)
    if name == "bce":
        return scale * torch.randn(n, generator=g, dtype=DT), torch.rand(n, generator=g, dtype=DT)
    return scale * torch.randn(n, k, generator=g, dtype=DT), torch.randint(0, k, (n,), generator=g)


def test_the_table_has_the_three_losses():
    assert set(LOSSES) == {"mse", "bce", "cross_entropy"}
    for name, loss in LOSSES.items():
        assert loss.name == name and loss.convex_in_output and loss.why
        assert get_loss(name) is loss and get_loss(loss) is loss
    with pytest.raises(dataclasses.FrozenInstanceError):
        LOSSES["mse"].convex_in_output = False  # type: ignore[misc]


def test_mse_is_the_mean_of_squares():
    f, y = sample("mse", 9, 0)
    np.testing.assert_allclose(LOSSES["mse"](f, y).item(), np.mean((f.numpy() - y.numpy()) ** 2), rtol=1e-14)
    assert LOSSES["mse"](f, y).item() == pytest.approx(F.mse_loss(f, y).item(), rel=1e-14)


def test_bce_is_the_cross_entropy_of_the_sigmoid():
    f, y = sample("bce", 11, 1)
    p = 1 / (1 + np.exp(-f.numpy()))
    ref = -np.mean(y.numpy() * np.log(p) + (1 - y.numpy()) * np.log(1 - p))
    assert LOSSES["bce"](f, y).item() == pytest.approx(ref, rel=1e-12)
    assert LOSSES["bce"](f, y).item() == pytest.approx(F.binary_cross_entropy_with_logits(f, y).item(), rel=1e-13)


def test_cross_entropy_is_the_negative_log_softmax():
    f, y = sample("cross_entropy", 10, 2)
    fn = f.numpy()
    ref = np.mean([math.log(np.exp(row).sum()) - row[label] for row, label in zip(fn, y.tolist())])
    assert LOSSES["cross_entropy"](f, y).item() == pytest.approx(ref, rel=1e-12)
    assert LOSSES["cross_entropy"](f, y).item() == pytest.approx(F.cross_entropy(f, y).item(), rel=1e-13)


@pytest.mark.parametrize("name", ["bce", "cross_entropy"])
def test_logit_losses_are_stable_for_huge_logits(name):
    f, y = sample(name, 8, 3, scale=1e4)
    got = LOSSES[name](f, y)
    assert torch.isfinite(got)
    ref = F.binary_cross_entropy_with_logits(f, y) if name == "bce" else F.cross_entropy(f, y)
    assert got.item() == pytest.approx(ref.item(), rel=1e-12)
    g = torch.func.grad(lambda f: LOSSES[name](f, y))(f)
    assert torch.isfinite(g).all()


@pytest.mark.parametrize("name", ["mse", "bce", "cross_entropy"])
def test_declared_convexity_in_the_output_holds(name):
    """ℓ(·, y) is convex in f: PSD Hessian at random f, and chords lie above the graph."""
    loss = LOSSES[name]
    for seed in range(5):
        f, y = sample(name, 5, seed)
        H = torch.func.hessian(loss)(f, y).reshape(f.numel(), f.numel())
        torch.testing.assert_close(H, H.T, rtol=0, atol=1e-14)
        assert torch.linalg.eigvalsh(H).min() >= -1e-12
        f2, _ = sample(name, 5, 100 + seed)
        for lam in (0.1, 0.5, 0.9):
            mid = loss(lam * f + (1 - lam) * f2, y)
            assert mid <= lam * loss(f, y) + (1 - lam) * loss(f2, y) + 1e-12


def test_the_squared_error_of_a_probability_is_not_convex_in_the_logit():
    """Why the declaration is about the loss of the *output*: mse∘σ is not convex in the logit."""
    z = torch.linspace(-6, 6, 121, dtype=DT)
    second = torch.func.vmap(torch.func.hessian(lambda z: LOSSES["mse"](torch.sigmoid(z)[None], torch.zeros(1, dtype=DT))))(z)
    assert second.min() < -1e-3 and second.max() > 1e-3


def test_get_loss_rejects_unknown_names():
    with pytest.raises(LosslabError, match=r"unknown loss 'hinge': expected one of 'mse', 'bce', 'cross_entropy'"):
        get_loss("hinge")
    with pytest.raises(LosslabError, match=r"unknown loss None"):
        get_loss(None)  # type: ignore[arg-type]


def test_a_custom_loss_passes_through():
    mae = Loss("mae", lambda f, y: (f - y).abs().mean(), True, "|f − y| is convex")
    assert get_loss(mae) is mae
    assert mae(torch.tensor([1.0, -1.0]), torch.zeros(2)).item() == 1.0


# ---- target checks -------------------------------------------------------------------------------


def test_check_targets_casts_and_squeezes():
    y = check_targets(LOSSES["mse"], (4,), torch.arange(4)[:, None], DT)
    assert y.shape == (4,) and y.dtype == DT
    y = check_targets(LOSSES["mse"], (4, 2), torch.zeros(4, 2, dtype=torch.float32), DT)
    assert y.shape == (4, 2) and y.dtype == DT
    y = check_targets(LOSSES["bce"], (3,), torch.tensor([0, 1, 1]), torch.float32)
    assert y.dtype == torch.float32 and y.tolist() == [0.0, 1.0, 1.0]
    y = check_targets(LOSSES["cross_entropy"], (3, 5), torch.tensor([0.0, 4.0, 2.0], dtype=DT), DT)
    assert y.dtype == torch.int64 and y.tolist() == [0, 4, 2]


@pytest.mark.parametrize(
    ("loss", "out_shape", "y", "match"),
    [
        ("mse", (4,), torch.zeros(5), r"expected y of shape \(4,\), got shape \(5,\)"),
        ("mse", (4, 2), torch.zeros(4), r"expected y of shape \(4, 2\), got shape \(4,\)"),
        ("bce", (3,), torch.tensor([0.0, 0.5, 1.5]), r"bce expects targets y in \[0, 1\], got values in \[0, 1.5\]"),
        ("bce", (3,), torch.tensor([-0.5, 0.5, 1.0]), r"bce expects targets y in \[0, 1\], got values in \[-0.5, 1\]"),
        ("cross_entropy", (3,), torch.tensor([0, 1, 0]), r"expects the model to output logits of shape \(n, k\).*got output shape \(3,\)"),
        ("cross_entropy", (3, 2), torch.tensor([0.0, 0.5, 1.0]), r"cross_entropy expects integer class labels y, got non-integer"),
        ("cross_entropy", (3, 2), torch.tensor([0, 2, 1]), r"cross_entropy expects labels in \[0, 2\), got labels in \[0, 2\]"),
        ("cross_entropy", (3, 2), torch.tensor([-1, 0, 1]), r"cross_entropy expects labels in \[0, 2\), got labels in \[-1, 1\]"),
        ("cross_entropy", (3, 2), torch.tensor([0, 1]), r"expected y of shape \(3,\), got shape \(2,\)"),
    ],
)
def test_check_targets_rejects(loss, out_shape, y, match):
    with pytest.raises(LosslabError, match=match):
        check_targets(LOSSES[loss], out_shape, y, DT)
