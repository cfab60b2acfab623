"""Module: every bad argument, output, init or forward gets a one-line LosslabError with the fix."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from losslab import LosslabError
from losslab.models import Module

DT = torch.float64
X = torch.linspace(-1, 1, 8, dtype=DT).reshape(4, 2)


def lin() -> nn.Sequential:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 1)).to(DT)


def frozen() -> nn.Sequential:
    return lin().requires_grad_(False)


class Returns(nn.Module):
    """forward returns ``make(h, x)`` with h = Linear(x)."""

    def __init__(self, make):
        super().__init__()
        self.l, self.make = nn.Linear(2, 1).to(DT), make

    def forward(self, x):
        return self.make(self.l(x), x)


class Plain(nn.Module):
    def __init__(self):
        super().__init__()
        self.l = nn.Linear(2, 2).to(DT)
        self.scale = torch.ones(2, 1)  # not a buffer: never cast with the parameters

    def forward(self, x):
        return self.l(x) @ self.scale  # a float32 matrix product: fails on float64 activations


class Custom(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.ones(2, dtype=DT))

    def forward(self, x):
        return x @ self.w


class CastIn(nn.Module):
    def __init__(self):
        super().__init__()
        self.l = nn.Linear(2, 1).to(DT)

    def forward(self, x):
        return self.l(x.to(torch.float32))


def run(net: nn.Module, **kwargs):
    model = Module(net, **kwargs)
    return model.logit(model.init(), X)


def broken_init(m, g):
    raise ValueError("no")


BAD = [
    ("not a module", lambda: Module("net"), r"^expected a torch.nn.Module, got str$"),
    ("d_in zero", lambda: Module(lin(), d_in=0), r"expected d_in to be an integer >= 1, got d_in=0"),
    ("output a float", lambda: Module(lin(), output=1.5), r"expected output to be None, a key/attribute name .*got output=1.5"),
    ("output negative", lambda: Module(lin(), output=-1), r"got output=-1"),
    ("params unknown", lambda: Module(lin(), params="some"), r"unknown params 'some': expected one of 'trainable', 'all'"),
    ("params a number", lambda: Module(lin(), params=3), r"expected params='trainable', 'all' or a list of parameter names, got params=3"),
    ("params empty", lambda: Module(lin(), params=[]),
     r"expected params to name at least one parameter, got an empty list; valid names: \['0.weight'"),
    ("params bad names", lambda: Module(lin(), params=["0.weight", "9.w"]),
     r"unknown parameter name\(s\) \['9.w'\] in params: expected names among \['0.weight', '0.bias', '2.weight', '2.bias'\]"),
    ("params repeated", lambda: Module(lin(), params=["0.bias", "0.bias"]), r"expected distinct parameter names in params"),
    ("all frozen", lambda: Module(frozen()),
     r"expected a module with trainable parameters, got Sequential whose 4 parameters all have requires_grad=False; "
     r"pass Module\(net, params='all'\)"),
    ("mode", lambda: Module(lin(), mode="training"), r"unknown mode 'training': expected one of 'eval', 'train'"),
    ("link", lambda: Module(lin(), link="softmax"), r"expected link to be 'auto', 'sigmoid' or None, got link='softmax'"),
    ("link sigmoid without one", lambda: Module(lin(), link="sigmoid"),
     r"expected a module whose last operation is a sigmoid for link='sigmoid', got Sequential without one found; pass link=None"),
    ("init not callable", lambda: Module(lin(), init=3), r"expected init to be None or a function fn\(module, generator\), got init=3"),
    ("affine_sets a string", lambda: Module(lin(), affine_sets="2.weight"), r"expected affine_sets as a list of sets of group names"),
    ("affine_sets of strings", lambda: Module(lin(), affine_sets=["2.weight"]), r"expected each of affine_sets to be a set of group names"),
    ("affine_sets empty set", lambda: Module(lin(), affine_sets=[set()]), r"expected each of affine_sets to be a non-empty set"),
    ("affine_sets unknown", lambda: Module(lin(), affine_sets=[{"2.weight", "nope"}]),
     r"unknown group\(s\) \['nope'\] in affine_sets: expected names among \['0.weight', '0.bias', '2.weight', '2.bias'\]"),
    ("affine_sets frozen", lambda: Module(lin(), params=["2.weight"], affine_sets=[{"2.bias"}]),
     r"unknown group\(s\) \['2.bias'\] in affine_sets \(\['2.bias'\] are frozen: held fixed, not analysed\)"),
    ("seed negative", lambda: Module(lin()).init(seed=-1), r"expected seed to be an integer in \[0, 2\*\*63 - 1\], got seed=-1"),
    ("seed not drawn", lambda: Module(Custom()).init(seed=0),
     r"cannot re-initialise with seed=0: no reset_parameters\(\) draws \['w'\]; pass Module\(net, init=fn\)"),
    ("init fn fails", lambda: Module(lin(), init=broken_init).init(seed=0),
     r"expected init=fn to re-initialise the module copy in place as fn\(module, generator\), got ValueError: no"),
    ("inputs a float", lambda: Module(lin()).logit(Module(lin()).init(), 3.0),
     r"expected inputs as a tensor, a tuple of tensors \(module\(\*x\)\) or a dict of tensors \(module\(\*\*x\)\), got float"),
    ("dict output", lambda: run(Returns(lambda h, x: {"logits": h, "hidden": x})),
     r"^forward returned a dict with keys \['logits', 'hidden'\]; pass Module\(net, output='logits'\)$"),
    ("tuple output", lambda: run(Returns(lambda h, x: (x.sum(1).long(), h))),
     r"^forward returned a tuple of 2; pass Module\(net, output=1\)$"),
    ("unknown output key", lambda: run(Returns(lambda h, x: {"logits": h}), output="logit"),
     r"expected output='logit' to name a key or attribute of what forward returns, got a dict with keys \['logits'\]"),
    ("output index out of range", lambda: run(Returns(lambda h, x: (h,)), output=1),
     r"expected output=1 to index the tuple forward returns, got a tuple of 1"),
    ("unusable output", lambda: run(Returns(lambda h, x: {"ids": x.long()}), output="ids"),
     r"forward returned something unusable: expected a floating tensor of shape \(n, …\), got a torch.int64 tensor of shape \(4, 2\)"),
    ("None output", lambda: run(Returns(lambda h, x: None)),
     r"forward returned something unusable: expected a floating tensor of shape \(n, …\), got a NoneType"),
    ("plain tensor attribute", lambda: Module(nn.Sequential(Plain())).check_float64(X),
     r"got a plain torch.float32 tensor attribute 0.scale; register it in __init__ with self.register_buffer\('scale', tensor\)"),
    ("x.float() in forward", lambda: Module(Returns(lambda h, x: h.float())).check_float64(X),
     r"expected float64 outputs from float64 parameters, got torch.float32 .*drop the cast or use x.to\(weight.dtype\)"),
    ("cast before a layer", lambda: Module(CastIn()).check_float64(X),
     r"to run in float64, got RuntimeError: .*dtype.*; the forward casts \(x.float\(\) or .to\(torch.float32\)\): drop the cast"),
]



@pytest.mark.parametrize(("call", "match"), [(c, m) for _, c, m in BAD], ids=[n for n, _, _ in BAD])
def test_bad_input_is_refused_with_a_one_line_message(call, match):
    with pytest.raises(LosslabError, match=match) as info:
        call()
    assert "\n" not in str(info.value)
