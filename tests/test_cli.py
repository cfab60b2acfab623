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

from references import dense_eigenvalues


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


def test_experiment_command_runs_one_experiment_with_changed_settings(tmp_path):
    result = losslab("experiment", "linear-in-parameters", "--quick", "--seed", "3", "--json", "--out", str(tmp_path / "r"))
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    (exp,) = payload["experiments"]
    assert exp["name"] == "linear-in-parameters" and exp["seed"] == 3 and exp["claims"]
    assert json.loads((tmp_path / "r" / "results.json").read_text())["experiments"][0]["numbers"] == exp["numbers"]


def test_experiment_show_settings_applies_set_with_the_field_types():
    default = json.loads(losslab("experiment", "overfitting", "--show-settings", "--json").stdout)
    changed = losslab("experiment", "overfitting", "--show-settings", "--json", "--set", "noise=0.25", "--set", "truth=1,0,2")
    table = losslab("experiment", "overfitting", "--show-settings")
    assert table.returncode == 0 and "max_degree" in table.stdout and "noise" in table.stdout
    assert changed.returncode == 0, changed.stderr
    assert json.loads(changed.stdout) == {**default, "noise": 0.25, "truth": [1.0, 0.0, 2.0]}
    clash = losslab("experiment", "overfitting", "--set", f"n={default['n'] + 5}")  # validated together: max_degree ≥ n − 1
    assert clash.returncode == 2 and "max_degree" in clash.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["experiment", "nope"], "unknown experiment 'nope'; valid names: linear-in-parameters, underfitting"),
        (["experiment", "overfitting", "--set", "bogus=1"], "unknown setting 'bogus'; valid settings: "),
        (["experiment", "overfitting", "--set", "no-equals-sign"], "expected --set key=value, got 'no-equals-sign'"),
        (["demo", "--only", "nope"], "unknown experiment 'nope'; valid names:"),
    ],
)
def test_experiment_names_and_settings_are_checked(args, message):
    result = losslab(*args)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith("error: ") and message in result.stderr


def test_demo_refuses_to_overwrite_a_folder_that_is_not_a_report(tmp_path):
    (tmp_path / "notes.txt").write_text("precious")
    result = losslab("demo", "--quick", "--only", "linear-in-parameters", "--out", str(tmp_path))
    assert result.returncode == 2 and "holds files losslab did not write there: notes.txt;" in result.stderr
    assert (tmp_path / "notes.txt").read_text() == "precious"


def test_landscape_writes_data_png_and_offline_html(tmp_path):
    from losslab.landscape import load_slice

    result = losslab("landscape", "--n", "60", "--steps", "9", "--train-steps", "30", "--out", str(tmp_path), "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["method"] == "grid" and summary["dims"] == 2
    saved = load_slice(tmp_path / "landscape.npz")
    assert tuple(saved.losses.shape) == (9, 9)
    assert summary["loss_min"] == pytest.approx(float(saved.losses.min()))
    # the saved centre and directions reproduce the saved losses through the library
    problem = Problem(TwoLayer(1, 8, "tanh"), *data.cubic(60, seed=0))
    i, j = 2, 7
    theta = saved.center + saved.alphas[i] * saved.d1 + saved.betas[j] * saved.d2
    assert float(problem.loss(theta)) == pytest.approx(float(saved.losses[i, j]), rel=1e-10)
    assert (tmp_path / "landscape.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = (tmp_path / "landscape.html").read_text()
    assert "Plotly.newPlot" in page and '<script src="http' not in page  # plotly.js embedded: opens offline
    assert not list(tmp_path.glob(".*"))


def test_landscape_of_a_polynomial_is_an_exact_quadratic_with_no_negative_curvature(tmp_path):
    result = losslab("landscape", "--model", "polynomial", "--at", "init", "--steps", "11", "--out", str(tmp_path), "--json")
    summary = json.loads(result.stdout)
    assert summary["method"] == "exact quadratic"
    assert summary["discrete_convexity"]["negative_beyond_rounding"] == 0


def test_spectrum_reports_bounds_and_the_nonlinearity_term(tmp_path):
    result = losslab("spectrum", "--n", "60", "--train-steps", "30", "--k", "2", "--probes", "3", "--out", str(tmp_path), "--json")
    assert result.returncode == 0, result.stderr
    s = json.loads(result.stdout)
    problem = Problem(TwoLayer(1, 8, "tanh"), *data.cubic(60, seed=0))
    from losslab.fit import train

    theta = train(problem, optimizer="adam", lr=1e-2, steps=30, seed=0, theta0=problem.default_theta(0)).theta
    exact = dense_eigenvalues(problem.loss, theta)
    assert [r["value"] for r in s["largest"]] == sorted((r["value"] for r in s["largest"]), reverse=True)  # largest first
    assert len(s["largest"]) == len(s["smallest"]) == 2  # the loops below check every row
    for row, value in zip(s["largest"], exact[-2:].flip(0).tolist()):
        assert abs(row["value"] - value) <= row["bound"] + 1e-9
    for row, value in zip(s["smallest"], exact[:2].tolist()):
        assert abs(row["value"] - value) <= row["bound"] + 1e-9
    assert abs(s["trace"]["estimate"] - float(exact.sum())) <= 5 * s["trace"]["stderr"]  # within its stated error
    assert s["nonlinearity_term"]["frobenius_norm"] > 0
    assert json.loads((tmp_path / "spectrum.json").read_text())["largest"] == s["largest"]
    rf = losslab("spectrum", "--model", "random-features", "--width", "6", "--n", "40", "--at", "init", "--k", "1", "--probes", "2",
                 "--out", str(tmp_path / "rf"), "--json")
    assert json.loads(rf.stdout)["nonlinearity_term"]["frobenius_norm"] == 0.0  # fixed features: no such curvature


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["landscape", "--dims", "3"], "expected --dims 1 or 2, got --dims 3"),
        (["landscape", "--directions", "diagonal"], "unknown --directions 'diagonal'"),
        (["landscape", "--steps", "1", "--at", "init"], "expected steps to be an integer >= 2, got steps=1"),
        (["landscape", "--at", "middle"], "unknown --at 'middle'"),
        (["spectrum", "--k", "0"], "expected k to be an integer >= 1, got k=0"),
    ],
)
def test_landscape_and_spectrum_bad_input(args, message, tmp_path):
    result = losslab(*args, "--out", str(tmp_path))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
