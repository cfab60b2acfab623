"""The README's examples run, in order, as a new user would paste them, in a fresh folder.

Python blocks run in one namespace; a block fenced as ```python file=NAME (or ```toml file=NAME) is
the file NAME (the user's own model file, a sweep's config) and is written, not run; the
``losslab`` lines of the "Your own model" section run as commands on the files the Python blocks
wrote. Every ```bash block runs fully in that folder, except the three of the quick start, which
install packages, run the test suite or the full demo: their commands are checked (see
``test_every_bash_block_runs_fully_or_is_checked``).
"""

from __future__ import annotations

import importlib.util
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from losslab.report import draw

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
    for name, body in re.findall(r"```(?:python|toml) file=(\S+)\n(.*?)```", text, flags=re.S):
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
    assert result.settings["noise"] == 0.2 and len(result.measured.test_mse) == len(result.numbers["degrees"])
    blows_up = result.claim("test-error-blows-up")
    assert blows_up.holds == (result.measured.test_mse[-1] >= 10 * min(result.measured.test_mse))
    assert [f.name for f in draw(result).figures] == ["train-test-vs-degree"]


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


def bash_blocks(text: str) -> list[tuple[str, str]]:
    """Every ```bash block of the README: (the section it is in, its text)."""
    blocks, title = [], "top"
    for part in re.split(r"(```bash\n.*?```)", text, flags=re.S):
        if part.startswith("```bash"):
            blocks.append((title, part[len("```bash\n"):-3]))
        else:
            titles = re.findall(r"^## (.+)$", part, flags=re.M)
            title = titles[-1] if titles else title
    return blocks


def commands(block: str) -> list[list[str]]:
    """The block's commands as argument lists, one per line and per ``&&``, comments dropped."""
    out = []
    for line in block.splitlines():
        for piece in line.split(" && "):
            words = shlex.split(piece, comments=True)
            if words:
                out.append(words)
    return out


def why_checked_only(block: str) -> str | None:
    """Why a block cannot run inside a test (then its commands are only checked), or None: it runs fully."""
    words = [w for c in commands(block) for w in c[:2]]
    if "pip" in words or "venv" in words:
        return "installs packages"
    if "pytest" in words:
        return "runs the whole test suite"
    if any(c[:2] == ["losslab", "demo"] and not {"--quick", "--only"} & set(c) for c in commands(block)):
        return "runs the full demo (a minute or more)"
    return None


def check_accepted(words: list[str]) -> None:
    """A command of a block that is not run: its arguments are accepted, as far as can be known without running it."""
    import typer.main

    from losslab.cli import app

    root = Path(__file__).resolve().parents[1]
    if words[0] == "losslab":  # parsed by the real command line (options, types), not run
        group = typer.main.get_command(app)
        assert words[1] in group.commands, words
        with group.commands[words[1]].make_context(words[1], words[2:]):
            pass
    elif words[:2] == ["pip", "install"]:
        optional = (root / "pyproject.toml").read_text().split("[project.optional-dependencies]")[1].split("\n[")[0]
        extras = re.findall(r"^([\w-]+) = \[", optional, flags=re.M)
        it = iter(words[2:])
        for word in it:
            if word == "-e":
                target = next(it)
                assert target.split("[")[0] == ".", words
                assert all(e in extras for e in re.findall(r"\[(.*)\]", target)[0].split(",")) if "[" in target else True, words
            elif word == "--index-url":
                assert re.fullmatch(r"https://download\.pytorch\.org/whl/(cpu|cu\d{3})", next(it)), words
            else:  # the torch the README pins is the torch the tests run with
                assert word == f"torch=={torch.__version__.split('+')[0]}", words
    elif words[:3] == ["python3", "-m", "venv"] or words == [".", ".venv/bin/activate"]:
        pass
    elif words[0] in ("ruff", "pytest"):
        assert importlib.util.find_spec(words[0]) is not None, words
    else:
        raise AssertionError(f"the README runs {shlex.join(words)!r}, which this test does not know how to check")


def test_every_bash_block_runs_fully_or_is_checked(readme_run):
    """Each ```bash block of the README, as a user pastes it.

    Blocks that install packages (venv, pip), run the whole test suite or the full ``losslab demo``
    are only checked: each ``losslab`` command is parsed by the real command line (unknown options,
    wrong types fail), each ``pip install`` names the torch the tests run with, an existing extra
    and PyTorch's own index. Every other block runs fully, line by line, in the folder the Python
    blocks wrote (the digits files); the "Your own model" commands run in the test above, which
    also checks their output.
    """
    folder, _ = readme_run
    text = README.read_text(encoding="utf-8")
    blocks = bash_blocks(text)
    checked = [(title, why_checked_only(b)) for title, b in blocks if why_checked_only(b)]
    assert checked == [("Quick start", "installs packages")] * 3, checked  # the main job, choosing torch's build, the tests
    for _, block in blocks:
        if why_checked_only(block):
            for words in commands(block):
                check_accepted(words)
    mine = {ln for ln in section(text, "Your own model").splitlines() if ln.startswith("losslab ")}
    run = [(title, words) for title, b in blocks if not why_checked_only(b) for words in commands(b)]
    assert {title for title, _ in run} == {"The report", "The command line", "Your own model", "Sweeps"}
    for title, words in run:
        assert words[0] == "losslab", f"{title}: a block that runs fully holds {shlex.join(words)!r}: check it or run it here"
        line = next((ln for ln in mine if shlex.split(ln) == words), None)
        if line is not None:
            continue  # run (and its output checked) by the test above
        result = subprocess.run([sys.executable, "-m", "losslab.cli", *words[1:]], capture_output=True, text=True, cwd=folder,
                                timeout=600)
        assert result.returncode == 0, f"{shlex.join(words)}\n{result.stderr[-2000:]}"
