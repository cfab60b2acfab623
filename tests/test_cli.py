"""The command line as a user meets it: real processes, exit codes, stdout/stderr."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from losslab import Problem, data
from losslab.convexity import chord_gap
from losslab.models import TwoLayer


def losslab(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "losslab.cli", *args], capture_output=True, text=True, cwd=cwd, timeout=300)


def test_help_lists_the_commands():
    result = losslab("--help")
    assert result.returncode == 0
    for command in ("check", "demo", "examples"):
        assert command in result.stdout


def test_check_json_gives_a_witness_anyone_can_recheck():
    result = losslab("check", "--model", "two-layer", "--width", "8", "--activation", "relu", "--data", "cubic", "--n", "200",
                     "--json", "--budget", "400")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["verdict"] == "non-convex" and report["witness_verified"] is True
    assert report["by_group"]["v"]["verdict"] == "convex"
    # rebuild the same problem from the library and re-verify the printed witness
    problem = Problem(TwoLayer(1, 8, "relu"), *data.cubic(200, seed=0))
    w = report["witness"]
    check = chord_gap(problem, torch.tensor(w["a"], dtype=torch.float64), torch.tensor(w["b"], dtype=torch.float64), w["lam"])
    assert check.holds and check.gap == pytest.approx(w["gap"], rel=1e-12)


def test_check_group_v_is_convex_with_its_proof():
    result = losslab("check", "--group", "v", "--json")
    report = json.loads(result.stdout)
    assert report["verdict"] == "convex" and report["groups"] == ["v"]
    assert "affine" in report["proof"]["statement"]


def test_check_prints_verdict_evidence_and_what_was_tried():
    result = losslab("check", "--example", "sigmoid-mse", "--budget", "400")
    assert result.returncode == 0
    assert "verdict: non-convex" in result.stdout and "re-checked in float64" in result.stdout and "holds" in result.stdout
    assert "tried:" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["check", "--model", "foo"], "unknown model 'foo': expected one of"),
        (["check", "--n", "0"], "expected n to be an integer >= 1, got n=0"),
        (["check", "--activation", "swish"], "unknown activation 'swish'"),
        (["check", "--loss", "hinge"], "unknown loss 'hinge'"),
        (["check", "--group", "Q"], "expected groups among ['W', 'b', 'v'], got ['Q']"),
        (["check", "--data", "mnist"], "unknown data set 'mnist'"),
        (["check", "--model", "polynomial", "--degree", "-1"], "expected degree to be an integer >= 0, got degree=-1"),
        (["check", "--loss", "bce"], "bce expects targets y in [0, 1]"),
        (["check", "--example", "nope"], "unknown example 'nope'"),
        (["check", "--model", "mlp", "--hidden", "8,x"], "expected --hidden as comma-separated widths"),
        (["check", "--example", "polynomial", "--group", "W"], "expected either --example or --group, got both"),
        (["check", "--seed", "-1"], "expected seed to be an integer in [0, 2**63 - 1], got seed=-1"),
        (["check", "--loss", "cross_entropy", "--data", "classes"], "expected --model mlp or deep-linear for 3 class logits"),
        (["demo", "--out", "/proc/losslab-cannot-write-here"], "expected --out to be a folder losslab can write"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(args, message):
    result = losslab(*args)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]


def test_cross_entropy_with_an_mlp_gets_one_logit_per_class():
    result = losslab("check", "--model", "mlp", "--data", "classes", "--loss", "cross_entropy", "--budget", "300", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert "MLP([2, 8, 8, 3]" in report["problem"] and report["verdict"] == "non-convex" and report["witness_verified"]


def test_unknown_option_is_a_usage_error_not_a_traceback():
    result = losslab("check", "--widht", "3")
    assert result.returncode == 2 and "Traceback" not in result.stderr and "--widht" in result.stderr


def test_demo_writes_results_that_agree_with_theory(tmp_path):
    result = losslab("demo", "--quick", "--out", str(tmp_path / "report"))
    assert result.returncode == 0, result.stderr
    payload = json.loads((tmp_path / "report" / "results.json").read_text())
    assert len(payload["examples"]) >= 10
    for row in payload["examples"]:
        assert row["agrees"], row["name"]
        assert row["report"]["verdict"] == row["expected"]
        if row["expected"] == "non-convex":
            assert row["witness_verified"] is True
    page = (tmp_path / "report" / "index.html").read_text()
    assert "losslab verdicts" in page and "two-layer-relu" in page
    assert not list((tmp_path / "report").glob(".*"))  # no temporary files left behind
