"""Guards found by trying to break a Problem over a user's module and data: none may give a wrong verdict."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset, WeightedRandomSampler

from losslab import LosslabError, Problem, check_convexity
from losslab.landscape import plane
from losslab.models import Module

from _helpers import gen

DT = torch.float64
X = torch.randn(12, 2, generator=gen(0), dtype=DT)
Y = X.sum(1) ** 2


def _linear(seed: int = 0) -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return nn.Linear(2, 1).double()


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_non_finite_targets_in_a_later_batch_are_refused(bad):
    y = Y.clone()
    y[8] = bad
    with pytest.raises(LosslabError, match=r"expected finite targets, got 1 NaN/inf value\(s\) in batch 1"):
        Problem(Module(_linear()), [(X[:6], Y[:6]), (X[6:], y[6:])])


def test_forward_hooks_are_invisible_to_the_traced_graph_so_nothing_is_proven():
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 1)).double()
    net[2].register_forward_hook(lambda m, i, o: o.clamp(-1e3, 1e3))
    model = Module(net)
    assert model.affine_sets == () and "hooks" in model.trace_note
    report = check_convexity(Problem(model, X, Y), groups=["2.weight", "2.bias"], budget=200, train_steps=0)
    assert report.verdict != "convex"


def test_a_declared_affine_set_that_saturates_far_out_is_caught():
    class Clamped(nn.Module):
        def __init__(self):
            super().__init__()
            self.l = _linear()

        def forward(self, x):
            return self.l(x).clamp(-100, 100)

    problem = Problem(Module(Clamped(), affine_sets=[{"l.weight", "l.bias"}]), X, Y)
    with pytest.raises(LosslabError, match=r"expected the declared affine_sets to hold"):
        check_convexity(problem)


def test_an_in_place_update_by_a_held_parameter_falls_back_to_one_point_at_a_time():
    class PosEmb(nn.Module):
        def __init__(self):
            super().__init__()
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(0)
                self.e, self.o = nn.Linear(2, 3).double(), nn.Linear(3, 1).double()
            self.pos = nn.Parameter(torch.zeros(3, dtype=DT))

        def forward(self, x):
            h = self.e(x)
            h += self.pos
            return self.o(torch.relu(h))

    problem = Problem(Module(PosEmb()), X, Y)
    restricted = problem.restrict(["pos"])  # h (unbatched) += pos (batched): vmap refuses
    Theta = restricted.default_theta() + torch.randn(3, restricted.n_params, generator=gen(1), dtype=DT)
    got = restricted.loss_batch(Theta)
    torch.testing.assert_close(got, torch.stack([restricted.loss(t) for t in Theta]), rtol=0, atol=0)
    assert "one at a time" in restricted.describe()
    report = check_convexity(problem, budget=120, train_steps=0)
    assert report.verdict in ("non-convex", "no violation found")
    assert plane(problem.restrict(["e.weight"]), problem.restrict(["e.weight"]).default_theta(), steps=3).losses.isfinite().all()


@pytest.mark.parametrize("device", ["xpu", "hpu", "lazy", "tpu", "", 1.5])
def test_devices_losslab_does_not_run_on_are_one_line_errors(device):
    with pytest.raises(LosslabError, match=r"expected a device") as info:
        Problem(Module(_linear()), X, Y, device=device)
    assert "\n" not in str(info.value)


def test_a_module_on_the_meta_device_is_refused_even_with_a_device():
    with pytest.raises(LosslabError, match=r"got one on the 'meta' device"):
        Problem(Module(nn.Linear(2, 1, device="meta")), X, Y, device="cpu")


def test_an_init_function_that_changes_nothing_is_refused():
    model = Module(_linear(), init=lambda m, g: None)
    with pytest.raises(LosslabError, match=r"expected init=fn to re-draw the parameters in place"):
        model.init(seed=1)
    drawn = Module(_linear(), init=lambda m, g: [nn.init.normal_(p, generator=g) for p in m.parameters()])
    assert not torch.equal(drawn.init(seed=1)["weight"], drawn.init(seed=2)["weight"])
    assert torch.equal(drawn.init(seed=1)["weight"], drawn.init(seed=1)["weight"])


def test_random_samplers_and_cached_augmentation_are_refused():
    data = TensorDataset(X, Y)
    sampler = WeightedRandomSampler(torch.ones(12), 12, generator=gen(2))
    with pytest.raises(LosslabError, match=r"got one with a WeightedRandomSampler"):
        Problem(Module(_linear()), DataLoader(data, batch_size=4, sampler=sampler))

    class Jitter(torch.utils.data.Dataset):
        def __len__(self):
            return 12

        def __getitem__(self, i):
            return X[i] + 0.01 * torch.randn(2, dtype=DT), Y[i]

    with pytest.raises(LosslabError, match=r"different first batch on a second pass"):
        Problem(Module(_linear()), DataLoader(Jitter(), batch_size=4))  # small enough to be cached


def test_bce_logits_that_happen_to_lie_in_zero_one_are_accepted_when_declared():
    net = _linear()
    with torch.no_grad():
        net.weight.fill_(0.1)
        net.bias.fill_(0.5)
    x = torch.rand(12, 2, generator=gen(3), dtype=DT)
    y = (x[:, 0] > 0.5).to(DT)
    with pytest.raises(LosslabError, match=r"bce takes logits"):
        Problem(Module(net), x, y, loss="bce")
    problem = Problem(Module(net, link=None), x, y, loss="bce")
    ref = nn.functional.binary_cross_entropy_with_logits(net(x)[:, 0], y)
    torch.testing.assert_close(problem.loss(problem.default_theta()), ref, rtol=1e-14, atol=0)
    assert check_convexity(problem).verdict == "convex"


class _Shrinking:
    """Re-iterable, but yields one batch fewer from its third pass on (the data changed under losslab)."""

    def __init__(self):
        self.passes = 0

    def __iter__(self):
        self.passes += 1
        parts = [(X[:6], Y[:6]), (X[6:], Y[6:])]
        return iter(parts if self.passes <= 2 else parts[:1])


class _OneShotBehindAWrapper:
    """``__iter__`` returns the same stored generator every time: the second pass is empty."""

    def __init__(self):
        self.it = iter([(X[:6], Y[:6]), (X[6:], Y[6:])])

    def __iter__(self):
        return self.it


def test_a_streamed_source_that_yields_fewer_batches_later_is_refused_not_averaged_over_the_old_n():
    with pytest.raises(LosslabError, match=r"expected every pass over the data to yield the 2 batches / 12 rows of the first pass, got 1"):
        problem = Problem(Module(_linear()), _Shrinking(), cache_bytes=0)  # its build reads the source three times
        problem.loss(problem.default_theta())


def test_a_one_shot_source_behind_a_re_iterable_wrapper_is_one_line():
    with pytest.raises(LosslabError, match="yield the 2 batches / 12 rows of the first pass, got nothing"):
        Problem(Module(_linear()), _OneShotBehindAWrapper())


@pytest.mark.parametrize("kind", ["meta", "sparse"])
def test_data_without_ordinary_storage_is_refused(kind):
    bad = X.to("meta") if kind == "meta" else X.to_sparse()
    with pytest.raises(LosslabError, match=f"got a {'meta tensor' if kind == 'meta' else 'sparse_coo tensor'}"):
        Problem(Module(_linear()), bad, Y)
    with pytest.raises(LosslabError, match=f"got a {'meta tensor' if kind == 'meta' else 'sparse_coo tensor'}"):
        Problem(Module(_linear()), [(bad, Y)])


def test_theta_of_the_wrong_shape_or_kind_is_one_line_and_another_dtype_is_cast():
    problem = Problem(Module(_linear()), X, Y)
    theta = problem.default_theta()
    for bad, match in ((theta[:2], r"expected theta of shape \(3,\)"), (theta.numpy(), "expected theta as a real torch tensor"),
                       (theta.to(torch.complex128), "got dtype torch.complex128")):
        with pytest.raises(LosslabError, match=match):
            problem.loss(bad)
        with pytest.raises(LosslabError, match=match):
            problem.grad(bad)
    with pytest.raises(LosslabError, match=r"expected v of shape \(3,\)"):
        problem.hvp(theta, theta[:2])
    single = problem.to(torch.float32)
    assert single.loss(theta).dtype == torch.float32  # float64 θ on a float32 problem: evaluated in float32
    assert torch.allclose(single.loss(theta).double(), problem.loss(theta), rtol=1e-6)


def test_a_restriction_at_a_point_with_nan_in_the_held_groups_is_refused():
    problem = Problem(Module(_linear()), X, Y)
    with pytest.raises(LosslabError, match=r"got NaN/inf in \['bias'\]"):
        problem.restrict(["weight"], at={"weight": torch.ones(1, 2, dtype=DT), "bias": torch.tensor([math.nan], dtype=DT)})


def test_check_convexity_with_a_point_in_place_of_the_groups_says_so():
    problem = Problem(Module(_linear()), X, Y)
    with pytest.raises(LosslabError, match=r"expected groups as names among .*pass the point as at="):
        check_convexity(problem, problem.default_theta())
    assert check_convexity(problem, iter(["weight"]), budget=30, train_steps=0).groups == ("weight",)  # an iterator of names


def test_integer_labels_with_a_regression_loss_suggest_cross_entropy():
    torch.manual_seed(0)
    net = nn.Linear(2, 3).double()
    with pytest.raises(LosslabError, match=r"got integer labels of shape \(12,\); for class labels use loss='cross_entropy'"):
        Problem(Module(net), X, torch.arange(12) % 3, loss="mse")


class _Widening:
    """Re-iterable; once ``wide`` is set, every batch has one more input column."""

    wide = False

    def __iter__(self):
        Xs = torch.cat([X, X[:, :1]], 1) if self.wide else X
        return iter([(Xs[:6], Y[:6]), (Xs[6:], Y[6:])])


def test_a_streamed_source_whose_batches_change_shape_later_is_one_line_and_keeps_vmap():
    source = _Widening()
    problem = Problem(Module(_linear()), source, cache_bytes=0)
    theta = problem.default_theta()
    source.wide = True
    with pytest.raises(LosslabError, match=r"got batch 0 with shapes and dtypes"):
        problem.loss_batch(theta[None].repeat(2, 1))
    with pytest.raises(LosslabError, match=r"got batch 0 with shapes and dtypes"):
        problem.grad(theta)
    assert problem._batched  # not switched to one point at a time by the refusal
