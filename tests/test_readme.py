"""The README's examples run, in order, as a new user would paste them, in a fresh folder.

Python blocks run in one namespace; a block fenced as ```python file=NAME is the file NAME (the
user's own model file) and is written, not run; the ``losslab`` lines of the "Your own model"
section run as commands on the files the Python blocks wrote.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from _helpers import assert_certified

README = Path(__file__).resolve().parents[1] / "README.md"


def section(text: str, title: str) -> str:
    start = text.index(f"## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start:] if end < 0 else text[start:end]


@pytest.fixture(scope="module")
def readme_run(tmp_path_factory):
    """Run every Python block of the README in a fresh folder; return (folder, namespace)."""
    folder = tmp_path_factory.mktemp("readme")
    text = README.read_text(encoding="utf-8")
    for name, body in re.findall(r"```python file=(\S+)\n(.*?)```", text, flags=re.S):
        (folder / name).write_text(body, encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(blocks) >= 2
    namespace: dict = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(folder)
        mp.syspath_prepend(str(folder))
        for block in blocks:
            exec(compile(block, str(README), "exec"), namespace)
    return folder, namespace


def test_readme_python_blocks_run_and_say_what_they_claim(readme_run):
    _, namespace = readme_run
    report = namespace["report"]
    assert report.verdict == "non-convex"
    assert_certified(namespace["problem"], report.witness)
    assert report.by_group["v"].verdict == "convex"
    assert namespace["s"].losses.shape == (41, 41)
    assert len(namespace["top"].values) == 5
    result = namespace["result"]
    assert result.settings["noise"] == 0.2 and len(result.numbers["test_mse"]) == len(result.numbers["degrees"])


def test_your_own_model_section_says_what_it_claims(readme_run):
    _, ns = readme_run
    net, X, y, problem = ns["net"], ns["X"], ns["y"], ns["digits_problem"]
    assert ns["joint"].verdict == "non-convex"
    assert_certified(problem, ns["joint"].witness)
    head = ns["head"]
    assert head.verdict == "convex" and "traced graph" in head.proof.statement
    assert "eval mode" in problem.describe() and "eval mode" in ns["on_loader"].describe()
    plane = ns["digits_plane"]
    assert tuple(plane.losses.shape) == (15, 15)
    with torch.no_grad():  # the centre of the plane is the user's module, through its own forward
        own = torch.nn.functional.cross_entropy(net(X), y)
    assert float(plane.losses[7, 7]) == pytest.approx(float(own), rel=1e-5)
    # each eigenpair's residual, recomputed with torch.autograd on the module's own forward
    names = [k for k, _ in net.named_parameters()]
    params = tuple(p.detach().double() for p in net.parameters())

    def loss(*ps):
        out = torch.func.functional_call(net, dict(zip(names, ps)), (X.double(),))
        return torch.nn.functional.cross_entropy(out, y)

    top = ns["digits_top"]
    sizes = [p.numel() for p in params]
    assert len(top.values) == len(top.bounds) == top.vectors.shape[1] > 0
    for value, bound, vector in zip(top.values, top.bounds, top.vectors.T):
        v = tuple(c.reshape(p.shape) for c, p in zip(vector.split(sizes), params))
        hv = torch.cat([h.reshape(-1) for h in torch.autograd.functional.hvp(loss, params, v)[1]])
        assert float(torch.linalg.norm(hv - value * vector)) <= 10 * float(bound) + 1e-4 * abs(float(value))
    assert ns["digits_density"].moment(0) == pytest.approx(1.0, abs=1e-6)
    trace = ns["digits_trace"]
    assert trace.method == "xtrace" and trace.matvecs == 24 and 0 < trace.stderr < abs(trace.estimate)


def test_your_own_model_commands_run_on_the_files_the_readme_wrote(readme_run):
    folder, _ = readme_run
    lines = [ln for ln in section(README.read_text(encoding="utf-8"), "Your own model").splitlines() if ln.startswith("losslab ")]
    assert len(lines) >= 2
    for line in lines:
        args = shlex.split(line)[1:]
        result = subprocess.run([sys.executable, "-m", "losslab.cli", *args], capture_output=True, text=True, cwd=folder, timeout=300)
        assert result.returncode == 0, f"{line}\n{result.stderr}"
        if "--json" in args:
            report = json.loads(result.stdout)
            assert report["verdict"] == "non-convex" and report["witness_verified"] and report["mode"] == "eval"
        elif args[0] == "check":
            assert "verdict: convex" in result.stdout and "eval mode" in result.stdout


def _bash_commands(text: str) -> list[str]:
    """Every ``losslab`` command of the README's bash blocks (the quick start's ``... && losslab demo`` included)."""
    out = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        for raw in block.splitlines():
            line = raw.split(" && ")[-1] if raw.startswith("python3 -m venv") else raw
            words = shlex.split(line, comments=True)
            if words and words[0] == "losslab":
                out.append(shlex.join(words))
    return out


def test_every_command_of_the_readme_runs(readme_run):
    """The command blocks, as a user pastes them, in the folder the Python blocks wrote (the digits files)."""
    folder, _ = readme_run
    text = README.read_text(encoding="utf-8")
    mine = set(ln for ln in section(text, "Your own model").splitlines() if ln.startswith("losslab "))
    commands = [c for c in _bash_commands(text) if c not in mine]  # those run in the test above
    assert "losslab demo" in commands and any(c.startswith("losslab spectrum --model-file") for c in commands)
    for line in dict.fromkeys(commands):
        args = shlex.split(line)[1:]
        result = subprocess.run([sys.executable, "-m", "losslab.cli", *args], capture_output=True, text=True, cwd=folder, timeout=600)
        assert result.returncode == 0, f"{line}\n{result.stderr[-2000:]}"
