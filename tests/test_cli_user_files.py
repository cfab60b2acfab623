"""``--model-file``, ``--weights``, ``--data FILE``: the user's own model and data on the command line.

References: the user's module's own forward (its loss at the saved centre of a slice), a Problem
rebuilt here from the same files (witnesses re-verified in float64), and the same slice
without ``--batch-size``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from losslab import Problem
from losslab.cli import app
from losslab.convexity import chord_gap
from losslab.fit import train
from losslab.landscape import load_slice
from losslab.models import Module

NET = """
import torch


def build():
    torch.manual_seed(1)
    return torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.Tanh(), torch.nn.Linear(6, 3)).double()


def not_a_module():
    return 3


def needs_width(width):
    return torch.nn.Linear(4, width)


def broken():
    return torch.nn.Linear(4, 3)(torch.zeros(2))
"""

TWO_INPUTS = """
import torch


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.a = torch.nn.Linear(3, 5)
        self.b = torch.nn.Linear(2, 5)
        self.head = torch.nn.Linear(5, 3)

    def forward(self, a, b):
        return self.head(torch.tanh(self.a(a) + self.b(b)))


def build():
    return Net().double()
"""

BATCHNORM = """
import torch


def build():
    torch.manual_seed(2)
    net = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.BatchNorm1d(6), torch.nn.Tanh(), torch.nn.Linear(6, 3)).double()
    net[0].requires_grad_(False)  # a frozen body
    return net
"""


def invoke(*args: str):
    return CliRunner().invoke(app, list(args))


def run_json(*args: str) -> dict:
    result = invoke(*args, "--json")
    assert result.exit_code == 0, result.stderr + result.stdout
    return json.loads(result.stdout)


@pytest.fixture
def files(tmp_path):
    """A model file, its weights (changed from build()'s), and 40 examples of 3 classes, float64."""
    (tmp_path / "net.py").write_text(textwrap.dedent(NET))
    gen = np.random.default_rng(0)
    X, y = gen.normal(size=(40, 4)), gen.integers(0, 3, size=40)
    np.savez(tmp_path / "data.npz", X=X, y=y)
    torch.manual_seed(5)
    net = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.Tanh(), torch.nn.Linear(6, 3)).double()
    torch.save(net.state_dict(), tmp_path / "w.pt")
    return tmp_path, net, torch.tensor(X), torch.tensor(y)


def user_args(folder, *extra: str) -> list[str]:
    return ["--model-file", f"{folder}/net.py:build", "--weights", f"{folder}/w.pt", "--data", f"{folder}/data.npz",
            "--loss", "cross_entropy", *extra]


def test_check_on_a_model_file_gives_a_witness_the_library_rechecks(files):
    folder, net, X, y = files
    report = run_json("check", *user_args(folder, "--budget", "300"))
    assert report["verdict"] == "non-convex" and report["witness_verified"] is True
    assert report["mode"] == "eval" and "eval mode" in report["problem"]
    assert report["by_group"]["2.weight"]["verdict"] == "convex" and "affine" in report["by_group"]["2.weight"]["proof"]["statement"]
    problem = Problem(Module(net), X, y, loss="cross_entropy")
    w = report["witness"]
    check = chord_gap(problem, torch.tensor(w["a"], dtype=torch.float64), torch.tensor(w["b"], dtype=torch.float64), w["lam"])
    assert check.holds and check.gap == pytest.approx(w["gap"], rel=1e-9)


def test_landscape_centre_is_the_given_weights_with_the_modules_own_loss(files):
    folder, net, X, y = files
    summary = run_json("landscape", *user_args(folder, "--steps", "5", "--out", str(folder / "a")))
    assert summary["at"] == "weights" and summary["mode"] == "eval"
    saved = load_slice(folder / "a" / "landscape.npz")
    own = torch.cat([p.detach().reshape(-1) for p in net.parameters()])
    assert torch.equal(torch.as_tensor(saved.center), own)
    with torch.no_grad():
        expected = torch.nn.functional.cross_entropy(net(X), y)  # the user's own forward
    assert float(saved.losses[2, 2]) == pytest.approx(float(expected), rel=1e-12)
    batched = run_json("landscape", *user_args(folder, "--steps", "5", "--batch-size", "7", "--out", str(folder / "b")))
    assert "tensors in 6 batches of 7" in batched["problem"]
    again = load_slice(folder / "b" / "landscape.npz")
    torch.testing.assert_close(torch.as_tensor(again.losses), torch.as_tensor(saved.losses), rtol=1e-12, atol=0)


def test_pt_data_with_a_dict_of_inputs_and_safetensors_weights(tmp_path):
    import safetensors.torch as safetensors  # a dependency of losslab
    (tmp_path / "two.py").write_text(textwrap.dedent(TWO_INPUTS))
    code: dict = {}
    exec(TWO_INPUTS, code)  # the same source the CLI imports, to build the reference
    torch.manual_seed(3)
    net = code["build"]()
    safetensors.save_file(net.state_dict(), str(tmp_path / "w.safetensors"))
    gen = torch.Generator().manual_seed(0)
    a, b, y = torch.randn(30, 3, generator=gen, dtype=torch.float64), torch.randn(30, 2, generator=gen, dtype=torch.float64), \
        torch.randint(0, 3, (30,), generator=gen)
    torch.save({"a": a, "b": b, "labels": y}, tmp_path / "data.pt")
    summary = run_json("landscape", "--model-file", f"{tmp_path}/two.py:build", "--weights", f"{tmp_path}/w.safetensors",
                       "--data", f"{tmp_path}/data.pt", "--x-key", "a", "--x-key", "b", "--y-key", "labels",
                       "--loss", "cross_entropy", "--steps", "3", "--out", str(tmp_path / "o"))
    saved = load_slice(tmp_path / "o" / "landscape.npz")
    with torch.no_grad():
        expected = torch.nn.functional.cross_entropy(net(a=a, b=b), y)
    assert float(saved.losses[1, 1]) == pytest.approx(float(expected), rel=1e-12)
    assert "Module(Net, 53 parameters, eval mode" in summary["problem"]
    proof = run_json("check", "--model-file", f"{tmp_path}/two.py:build", "--data", f"{tmp_path}/data.pt", "--x-key", "a",
                     "--x-key", "b", "--y-key", "labels", "--loss", "cross_entropy", "--group", "head.weight", "--group", "head.bias")
    assert proof["verdict"] == "convex"


def test_train_mode_and_params_all_are_stated(tmp_path, files):
    folder = files[0]
    (tmp_path / "bn.py").write_text(textwrap.dedent(BATCHNORM))
    common = ["--model-file", f"{tmp_path}/bn.py:build", "--data", f"{folder}/data.npz", "--loss", "cross_entropy",
              "--group", "3.weight", "--group", "3.bias"]
    default = run_json("check", *common)
    assert default["mode"] == "eval" and "eval mode" in default["problem"] and "frozen" in default["problem"]
    assert default["verdict"] == "convex"  # the head alone, BatchNorm with running statistics
    every = run_json("check", *common, "--params", "all")
    assert "p=21 in ['3.weight', '3.bias'], fixed ['0.weight', '0.bias', '1.weight', '1.bias']" in every["problem"]
    assert "p=21 in ['3.weight', '3.bias'], fixed ['1.weight', '1.bias']" in default["problem"]  # 0.* frozen: not in θ


def test_train_mode_with_batchnorm_is_stated(tmp_path, files):
    (tmp_path / "bn.py").write_text(textwrap.dedent(BATCHNORM))
    train = run_json("check", "--model-file", f"{tmp_path}/bn.py:build", "--data", f"{files[0]}/data.npz", "--loss", "cross_entropy",
                     "--mode", "train", "--budget", "100")
    assert train["mode"] == "train" and "train mode" in train["problem"]


@pytest.mark.parametrize(
    ("make", "args", "message"),
    [
        (None, ["--model-file", "{d}/nope.py:build"], "expected --model-file to name an existing Python file, got '{d}/nope.py'"),
        (None, ["--model-file", "{d}/net.py"], "expected --model-file FILE.py:FUNCTION (e.g. net.py:build), got '{d}/net.py'"),
        (None, ["--model-file", "{d}/net.py:biuld"], "expected a function 'biuld' in {d}/net.py, got none; functions there: ['broken'"),
        (None, ["--model-file", "{d}/net.py:not_a_module"], "expected {d}/net.py:not_a_module() to return a torch.nn.Module, got int"),
        (None, ["--model-file", "{d}/net.py:needs_width"], "expected {d}/net.py:needs_width to take no arguments, got needs_width(width)"),
        (None, ["--model-file", "{d}/net.py:broken"], "shapes cannot be multiplied (1x2 and 4x3) (net.py, line 19)"),
        ("syntax", ["--model-file", "{d}/bad.py:build"], "expected --model-file {d}/bad.py to import, got SyntaxError"),
        ("missing", ["--weights", "{d}/x.pt"], "to match the module's state dict, got missing ['2.weight', '2.bias']"),
        ("extra", ["--weights", "{d}/x.pt"], "got unexpected ['9.weight']"),
        ("shape", ["--weights", "{d}/x.pt"], "got shapes differ (2.weight: (2, 6) vs (3, 6))"),
        ("pickle", ["--weights", "{d}/x.pt"], "needs arbitrary unpickling (it needs torch.nn.modules.container.Sequential)"),
        ("text", ["--weights", "{d}/x.pt"], "expected --weights {d}/x.pt to be a file written by torch.save, got something else"),
        ("nested", ["--weights", "{d}/x.pt"], None),  # {"model": state_dict, "epoch": 3} is read
        ("names", ["--data", "{d}/z.npz"], "expected arrays named ['X', 'y'] in --data {d}/z.npz, got ['inputs', 'y'] (missing ['X'])"),
        ("object", ["--data", "{d}/z.npz"], "expected --data {d}/z.npz to hold numeric arrays, got object arrays"),
        (None, ["--data", "{d}/z.csv"], "expected --data to name an existing data file (.npz, .pt or .safetensors), got '{d}/z.csv'"),
        ("csv", ["--data", "{d}/z.csv"], "expected --data as a .npz, .pt or .safetensors file (or a built-in data set name)"),
        (None, ["--device", "cuda:7"], "expected an existing device, got device='cuda:7'"),
        (None, ["--mode", "training"], "unknown --mode 'training': expected one of 'eval', 'train'"),
        (None, ["--model", "mlp"], "expected either --model-file or the built-in model options, got --model-file with --model"),
        (None, ["--example", "polynomial"], "expected either --example or your own --model-file/--data"),
        (None, ["--params", "0.weight,zz"], "unknown parameter name(s) ['zz'] in params"),
    ],
)
def test_a_bad_file_or_option_is_one_line_naming_it(files, make, args, message):
    d = files[0]
    net = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.Tanh(), torch.nn.Linear(6, 3)).double()
    sd = net.state_dict()
    if make == "syntax":
        (d / "bad.py").write_text("def build(:\n    pass\n")
    writes = {
        "missing": lambda: torch.save({k: v for k, v in sd.items() if k.startswith("0.")}, d / "x.pt"),
        "extra": lambda: torch.save({**sd, "9.weight": torch.zeros(1)}, d / "x.pt"),
        "shape": lambda: torch.save({**sd, "2.weight": torch.zeros(2, 6)}, d / "x.pt"),
        "pickle": lambda: torch.save(net, d / "x.pt"),
        "text": lambda: (d / "x.pt").write_text("not a checkpoint"),
        "nested": lambda: torch.save({"model": sd, "epoch": 3}, d / "x.pt"),
        "names": lambda: np.savez(d / "z.npz", inputs=np.zeros((4, 4)), y=np.zeros(4)),
        "object": lambda: np.savez(d / "z.npz", X=np.array([{"a": 1}] * 4, dtype=object), y=np.zeros(4)),
        "csv": lambda: (d / "z.csv").write_text("1,2\n"),
    }
    if make in writes:
        writes[make]()
    base = {"--model-file": f"{d}/net.py:build", "--data": f"{d}/data.npz", "--loss": "cross_entropy"}
    given = dict(zip(args[::2], args[1::2]))
    options = [x for k, v in {**base, **given}.items() for x in (k, v.format(d=d))]
    result = invoke("check", *options, "--budget", "30", "--json")
    if message is None:
        assert result.exit_code == 0, result.stderr
        return
    assert result.exit_code == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message.format(d=d) in lines[0], result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--weights", "w.pt"], "expected --weights only with --model-file FILE.py:FUNCTION, got it with --model two-layer"),
        (["--mode", "train"], "expected --mode only with --model-file"),
        (["--x-key", "a"], "expected --x-key/--y-key only with a --data file, got them with --data cubic"),
    ],
)
def test_module_options_need_a_model_file(args, message):
    result = invoke("check", *args)
    assert result.exit_code == 2 and message in result.stderr


def test_at_weights_needs_a_model_file(tmp_path):
    result = invoke("spectrum", "--at", "weights", "--out", str(tmp_path))
    assert result.exit_code == 2 and "expected --at init or trained for a built-in model, got --at weights" in result.stderr


def test_a_refused_checkpoint_is_one_line_from_the_real_command(files):
    """The console script, not the in-process runner: exit code 2 and no traceback."""
    d = files[0]
    torch.save(torch.nn.Linear(4, 3), d / "whole.pt")  # a pickled module, not a state dict
    result = subprocess.run([sys.executable, "-m", "losslab.cli", "check", "--model-file", f"{d}/net.py:build",
                             "--weights", f"{d}/whole.pt", "--data", f"{d}/data.npz"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"error: expected --weights {d}/whole.pt to load with torch.load(weights_only=True)")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--at", "init"], "expected --at weights or trained with --model-file, got --at init"),
        (["--directions", "pca", "--at", "weights"], "expected --at trained with --directions pca"),
        (["--dims", "1", "--at", "trained"], "expected no --at with --dims 1"),
    ],
)
def test_landscape_points_a_model_file_cannot_have_are_one_line(files, extra, message):
    folder = files[0]
    result = invoke("landscape", *user_args(folder, "--steps", "3", "--out", str(folder / "x"), *extra))
    assert result.exit_code == 2 and message in result.stderr, result.stderr


def test_a_pca_plane_is_centred_at_the_trained_point_and_says_so(files):
    folder, net, X, y = files
    summary = run_json("landscape", *user_args(folder, "--steps", "3", "--directions", "pca", "--train-steps", "20",
                                               "--out", str(folder / "p")))
    assert summary["at"] == "trained"
    saved = load_slice(folder / "p" / "landscape.npz")
    problem = Problem(Module(net), X, y, loss="cross_entropy")
    trained = train(problem, optimizer="adam", lr=1e-2, steps=20, seed=0, theta0=problem.default_theta()).theta
    torch.testing.assert_close(torch.as_tensor(saved.center), trained, rtol=1e-12, atol=1e-12)
    assert not torch.equal(torch.as_tensor(saved.center), problem.default_theta())
