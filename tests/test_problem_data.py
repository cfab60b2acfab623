"""A Problem over a DataLoader (or any re-iterable of batches) is the full-batch problem, exactly.

References: the same data as one tensor (float64), dense ``torch.func.hessian`` of the
hand-written full-batch loss, and the module's own forward with torch's own losses.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from losslab import LosslabError, Problem, check_convexity
from losslab.fit import train
from losslab.landscape import line, plane
from losslab.models import MLP, Module

from _helpers import gen
from references import dense_hessian, module_outputs

DT = torch.float64
N, D, K = 53, 4, 3  # 53 = 4 batches of 16 with a short last batch of 5


def _net(seed: int = 0, out: int = K) -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return nn.Sequential(nn.Linear(D, 6), nn.Tanh(), nn.Linear(6, out)).double()


def _data(kind: str = "cross_entropy"):
    X = torch.randn(N, D, generator=gen(1), dtype=DT)
    y = torch.randint(0, K, (N,), generator=gen(2)) if kind == "cross_entropy" else torch.randn(N, generator=gen(2), dtype=DT)
    return X, y


def _pair(loss: str = "cross_entropy", l2: float = 0.0, **kw):
    X, y = _data(loss)
    out = K if loss == "cross_entropy" else 1
    tensors = Problem(Module(_net(out=out)), X, y, loss=loss, l2=l2)
    loader = Problem(Module(_net(out=out)), DataLoader(TensorDataset(X, y), batch_size=16), loss=loss, l2=l2, **kw)
    return tensors, loader


@pytest.mark.parametrize("loss", ["cross_entropy", "mse"])
@pytest.mark.parametrize("cache_bytes", [None, 0], ids=["cached", "streamed"])
def test_a_dataloader_of_uneven_batches_gives_the_full_batch_loss_gradient_and_hvp(loss, cache_bytes):
    kw = {} if cache_bytes is None else {"cache_bytes": cache_bytes}
    a, b = _pair(loss, l2=0.01, **kw)
    assert b.data.count == 4 and b.n == N and (b.data.cached is None) == (cache_bytes == 0)
    theta = a.default_theta()
    v = torch.randn(a.n_params, generator=gen(3), dtype=DT)
    torch.testing.assert_close(b.loss(theta), a.loss(theta), rtol=1e-14, atol=0)
    torch.testing.assert_close(b.grad(theta), a.grad(theta), rtol=1e-12, atol=1e-15)
    torch.testing.assert_close(b.hvp(theta, v), a.hvp(theta, v), rtol=1e-12, atol=1e-15)
    Theta = theta + 0.3 * torch.randn(5, a.n_params, generator=gen(4), dtype=DT)
    torch.testing.assert_close(b.loss_batch(Theta), a.loss_batch(Theta), rtol=1e-13, atol=0)


def test_the_loss_is_torch_own_loss_of_the_module_forward_over_all_data():
    X, y = _data()
    net = _net()
    b = Problem(Module(net), DataLoader(TensorDataset(X, y), batch_size=16), loss="cross_entropy")
    ref = nn.functional.cross_entropy(net(X), y)
    torch.testing.assert_close(b.loss(b.default_theta()), ref, rtol=1e-14, atol=0)
    # and the Hessian is the dense Hessian of that hand-written loss
    theta = b.default_theta()
    H = dense_hessian(lambda t: nn.functional.cross_entropy(module_outputs(net, X)(t), y), theta)
    cols = torch.stack([b.hvp(theta, e) for e in torch.eye(b.n_params, dtype=DT)[:7]], dim=1)
    torch.testing.assert_close(cols, H[:, :7], rtol=1e-10, atol=1e-13)


def test_dict_batches_with_tuple_and_dict_inputs_and_integer_ids():
    class Embed(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(11, 5)
            self.head = nn.Linear(5, 3)

        def forward(self, input_ids, attention_mask):
            h = (self.emb(input_ids) * attention_mask[..., None]).sum(1) / attention_mask.sum(1, keepdim=True)
            return self.head(h)

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = Embed().double()
    ids = torch.randint(0, 11, (21, 6), generator=gen(5))
    mask = torch.ones(21, 6, dtype=DT)
    mask[:, 4:] = 0
    labels = torch.randint(0, 3, (21,), generator=gen(6))
    batches = [{"input_ids": ids[i : i + 8], "attention_mask": mask[i : i + 8], "labels": labels[i : i + 8]} for i in range(0, 21, 8)]
    prob = Problem(Module(net), batches, loss="cross_entropy")
    first = next(prob.batches())
    assert first.inputs["input_ids"].dtype == torch.int64  # ids are never cast
    ref = nn.functional.cross_entropy(net(ids, mask), labels)
    torch.testing.assert_close(prob.loss(prob.default_theta()), ref, rtol=1e-14, atol=0)
    # the same data as a tuple-input tensor problem
    tup = Problem(Module(net), (ids, mask), labels, loss="cross_entropy")
    torch.testing.assert_close(tup.loss(tup.default_theta()), ref, rtol=1e-14, atol=0)
    # a float32 problem keeps the ids int64 and casts only the mask
    p32 = Problem(Module(net.float()), batches, loss="cross_entropy", dtype=torch.float32)
    first = next(p32.batches())
    assert first.inputs["input_ids"].dtype == torch.int64 and first.inputs["attention_mask"].dtype == torch.float32


def test_landscapes_verdicts_and_training_agree_between_tensor_and_loader():
    a, b = _pair()
    theta = a.default_theta()
    pa, pb = plane(a, theta, steps=5, seed=0), plane(b, theta, steps=5, seed=0)
    torch.testing.assert_close(pb.losses, pa.losses, rtol=1e-13, atol=0)
    other = a.init(1)
    torch.testing.assert_close(line(b, theta, other, steps=5).losses, line(a, theta, other, steps=5).losses, rtol=1e-13, atol=0)
    ra, rb = check_convexity(a, budget=200, train_steps=10), check_convexity(b, budget=200, train_steps=10)
    assert ra.verdict == rb.verdict == "non-convex"
    assert rb.witness.verify(b).holds and rb.witness.verify(a).holds
    assert rb.by_group["2.weight"].verdict == "convex"
    ta, tb = train(a, optimizer="adam", steps=5, theta0=theta), train(b, optimizer="adam", steps=5, theta0=theta)
    torch.testing.assert_close(tb.theta, ta.theta, rtol=1e-10, atol=1e-12)
    sgd = train(b, optimizer="sgd", lr=0.1, steps=8, theta0=theta)  # steps through the loader's 4 batches, twice
    assert sgd.losses[-1] < sgd.losses[0]


def test_a_frozen_body_with_a_linear_head_is_softmax_regression_and_proven_convex():
    net = _net()
    for p in net[0].parameters():
        p.requires_grad_(False)
    X, y = _data()
    prob = Problem(Module(net), DataLoader(TensorDataset(X, y), batch_size=16), loss="cross_entropy")
    assert prob.groups == ("2.weight", "2.bias")
    report = check_convexity(prob)
    assert report.verdict == "convex"
    full = Problem(Module(net, params="all"), X, y, loss="cross_entropy")
    assert full.groups == ("0.weight", "0.bias", "2.weight", "2.bias")
    assert check_convexity(full, budget=300, train_steps=0).verdict == "non-convex"


def test_bce_on_a_final_sigmoid_is_logistic_regression_and_equals_torch_bce():
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = nn.Sequential(nn.Linear(2, 1), nn.Sigmoid()).double()
    X = torch.randn(40, 2, generator=gen(7), dtype=DT)
    y = (X[:, 0] + 0.3 * torch.randn(40, generator=gen(8), dtype=DT) > 0).to(DT)
    prob = Problem(Module(net), X, y, loss="bce")
    ref = nn.BCELoss()(net(X)[:, 0], y)
    torch.testing.assert_close(prob.loss(prob.default_theta()), ref, rtol=1e-12, atol=0)
    assert check_convexity(prob).verdict == "convex"

    class Functional(nn.Module):  # torch.sigmoid in forward: read as a sigmoid link from the traced graph
        def __init__(self):
            super().__init__()
            self.lin = net[0]

        def forward(self, x):
            return torch.sigmoid(self.lin(x))

    prob = Problem(Module(Functional()), X, y, loss="bce")
    assert prob.model.link == "sigmoid"
    torch.testing.assert_close(prob.loss(prob.default_theta()), ref, rtol=1e-12, atol=0)


class _RandomForward(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(D, 1).double()

    def forward(self, x):
        return nn.functional.dropout(self.lin(x), p=0.5, training=True)


class _Branchy(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(D, 1).double()

    def forward(self, x):
        h = self.lin(x)
        return torch.tanh(h) if bool(h.sum() > 0) else torch.sin(h)


def test_a_model_vmap_cannot_batch_is_evaluated_point_by_point_and_says_so():
    X, y = _data("mse")
    prob = Problem(Module(_Branchy()), X, y)
    assert not prob._batched and "one at a time" in prob.describe()
    Theta = prob.default_theta() + 0.1 * torch.randn(3, prob.n_params, generator=gen(9), dtype=DT)
    torch.testing.assert_close(prob.loss_batch(Theta), torch.stack([prob.loss(t) for t in Theta]), rtol=0, atol=0)
    assert check_convexity(prob, budget=60, train_steps=0).verdict in ("non-convex", "no violation found")
    assert plane(prob, prob.default_theta(), steps=3).losses.shape == (3, 3)
    lstm = nn.LSTM(2, 3, batch_first=True).double()

    class Seq(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm, self.head = lstm, nn.Linear(3, 1).double()

        def forward(self, x):
            return self.head(self.lstm(x)[0][:, -1])

    seqs = torch.randn(10, 4, 2, generator=gen(10), dtype=DT)
    rnn = Problem(Module(Seq()), seqs, torch.randn(10, generator=gen(11), dtype=DT))
    assert rnn.loss_batch(rnn.default_theta()[None]).shape == (1,)


def _loader_yielding_nothing():
    return DataLoader(TensorDataset(torch.zeros(0, D), torch.zeros(0)), batch_size=4)


class _Float32Attr(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(D, 2)
        self.proj = torch.ones(2, 1)  # a plain tensor, not a buffer: stays float32 when the witness is re-checked in float64

    def forward(self, x):
        return self.lin(x) @ self.proj


X32, Y32 = torch.randn(8, D, generator=gen(12)), torch.randn(8, generator=gen(13))
BAD = [
    ("a DataLoader that yields nothing", lambda: Problem(Module(_net()), _loader_yielding_nothing()),
     r"expected data with at least one batch"),
    (
        "batches with mixed shapes",
        lambda: Problem(Module(_net()), [(torch.zeros(4, D, dtype=DT), torch.zeros(4, dtype=torch.int64)),
                                         (torch.zeros(4, D + 1, dtype=DT), torch.zeros(4, dtype=torch.int64))], loss="cross_entropy"),
        r"expected every batch to have the shapes and dtypes of batch 0 .* got batch 1",
    ),
    (
        "labels out of range in one batch",
        lambda: Problem(Module(_net()), [(torch.zeros(4, D, dtype=DT), torch.zeros(4, dtype=torch.int64)),
                                         (torch.zeros(4, D, dtype=DT), torch.tensor([0, 1, 2, 7]))], loss="cross_entropy"),
        r"in batch 1: cross_entropy expects labels in \[0, 3\), got labels in \[0, 7\]",
    ),
    ("a device that does not exist", lambda: Problem(Module(_net()), *_data(), loss="cross_entropy", device="cuda:7"),
     r"expected an existing device, got device='cuda:7'"),
    ("a device name that is not one", lambda: Problem(Module(_net()), *_data(), loss="cross_entropy", device="gpu0"),
     r"expected a device such as 'cpu' or 'cuda:0', got device='gpu0'"),
    ("a module on a different device from the data (meta: no weights)", lambda: Problem(Module(nn.Linear(D, 1, device="meta")), X32, Y32),
     r"expected a module with real weights, got one on the 'meta' device; load its weights first"),
    ("a forward returning a tuple", lambda: Problem(Module(nn.LSTM(D, 2)), X32[:, None, :], Y32),
     r"forward returned a tuple of 2; pass Module\(net, output=0\)"),
    ("a shuffling DataLoader", lambda: Problem(Module(_net()), DataLoader(TensorDataset(*_data()), batch_size=8, shuffle=True)),
     r"got one with shuffle=True .* build it with shuffle=False"),
    ("a one-shot generator", lambda: Problem(Module(_net()), (b for b in [(X32, Y32)])), r"got a one-shot iterator"),
    ("a batch that is not (inputs, targets)", lambda: Problem(Module(_net()), [(X32, Y32, Y32)]),
     r"expected each batch to be \(inputs, targets\) or a dict with the targets under 'labels', got batch 0 as a tuple of 3"),
    ("a dict batch without the target key", lambda: Problem(Module(_net()), [{"x": X32, "y": Y32}]),
     r"expected batch 0 \(a dict\) to hold the targets under 'labels', got keys \['x', 'y'\]; pass Problem\(..., target_key=KEY\)"),
    ("loss passed positionally with a loader", lambda: Problem(Module(_net()), [(X32, Y32)], "mse"),
     r"pass the loss by keyword: Problem\(model, loader, loss='mse'\)"),
    ("dropout active in forward", lambda: Problem(Module(_RandomForward()), X32.double(), Y32.double()),
     r"expected a deterministic loss, got two evaluations at one θ that differ"),
    ("a float32 tensor attribute that is not a buffer", lambda: Problem(Module(_Float32Attr()), X32, Y32),
     r"got a plain torch.float32 tensor attribute proj; register it in __init__ with self.register_buffer\('proj', tensor\)"),
    ("batch_size with a loader", lambda: Problem(MLP([D, 1]), DataLoader(TensorDataset(X32, Y32), batch_size=4), batch_size=2),
     r"expected batch_size only with tensors X, y"),
    ("bce on probabilities", lambda: Problem(Module(_Prob()), X32, (Y32 > 0).float(), loss="bce"),
     r"bce takes logits, got outputs all in \[0.\d+, 0.\d+\] \(probabilities\?\) .* or pass Module\(net, link=None\)"),
]


class _Prob(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(D, 1)

    def forward(self, x):
        return 0.5 * (torch.tanh(self.lin(x)) + 1)  # a probability, but not through a sigmoid losslab can strip


@pytest.mark.parametrize(("make", "match"), [pytest.param(m, r, id=name) for name, m, r in BAD])
def test_bad_data_and_devices_get_one_clear_line(make, match):
    with pytest.raises(LosslabError, match=match) as info:
        make()
    assert "\n" not in str(info.value)


def test_a_loader_whose_batches_change_between_passes_is_refused():
    class Augmenting:
        def __init__(self):
            self.calls = 0

        def __iter__(self):
            self.calls += 1
            g = gen(self.calls)
            yield torch.randn(8, D, generator=g, dtype=DT), torch.randn(8, dtype=DT)

    with pytest.raises(LosslabError, match=r"different first batch on a second pass"):
        Problem(Module(_net(out=1)), Augmenting(), cache_bytes=0)
