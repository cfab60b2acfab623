"""Every command that writes (landscape, spectrum, demo, experiment) follows one --out rule.

New folder in an existing parent, empty folder, or the same command's earlier folder (its manifest
lists every file); anything else refused before any work, naming the foreign files. Writes go to a
hidden sibling renamed into place; a failed write leaves nothing, a killed one is cleaned up by the
next run. References: the folder's listing before and after, and a process killed with SIGKILL.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest
from typer.testing import CliRunner

from losslab import LosslabError, Problem, data
from losslab.cli import app
from losslab.models import TwoLayer
from losslab.report import MANIFEST, check_out_folder, writing_folder

from references import dense_eigenvalues

SRC = os.path.join(os.path.dirname(__file__), os.pardir, "src")


def write(out, kind="landscape", files=("a.txt",)):
    with writing_folder(out, kind, version="test") as tmp:
        for name in files:
            (tmp / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp / name).write_text(name)


def listing(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


# (how to prepare tmp_path / "out", the --out to use, the kind, the message expected)
REFUSED = [
    (lambda out: out.write_text("x"), "out", "landscape", "expected --out to be a folder, got an existing file"),
    (lambda out: None, "missing/out", "landscape", "expected --out inside an existing folder, got "),
    (lambda out: None, "missing/deeper/out", "spectrum", "does not exist; create it first (mkdir -p) or choose another --out"),
    (lambda out: out.mkdir() or (out / "notes.txt").write_text("mine"), "out", "landscape",
     "holds files losslab did not write there: notes.txt; choose another --out (an empty or new folder)"),
    (lambda out: write(out) or (out / "sub").mkdir() or (out / "sub" / "x.csv").write_text("1"), "out", "landscape",
     "files losslab did not write there: sub/x.csv;"),
    (lambda out: write(out) or (out / "a.txt").unlink() or (out / "b.txt").write_text("1"), "out", "landscape",
     "files losslab did not write there: b.txt;"),
    (lambda out: write(out, "spectrum", ("spectrum.json",)), "out", "landscape",
     "which holds a losslab spectrum (losslab-manifest.json, spectrum.json); choose another --out"),
    (lambda out: write(out, "landscape", ("landscape.npz",)), "out", "report", "which holds a losslab landscape"),
    (lambda out: out.mkdir() or (out / MANIFEST).write_text("{not json"), "out", "landscape",
     "files losslab did not write there: losslab-manifest.json;"),
    (lambda out: out.mkdir() or [(out / f"f{i}").write_text("") for i in range(8)], "out", "report",
     "not write there: f0, f1, f2, f3, f4 (and 3 more);"),
    (lambda out: out.mkdir() or (out / "index.html").write_text("mine"), "out", "report", "did not write there: index.html;"),
    (lambda out: None, "out", "plot", "unknown output kind 'plot'"),
]


@pytest.mark.parametrize(("prepare", "given", "kind", "message"), REFUSED)
def test_a_folder_holding_what_losslab_did_not_write_is_refused_untouched(tmp_path, prepare, given, kind, message):
    prepare(tmp_path / "out")
    before = listing(tmp_path)
    with pytest.raises(LosslabError) as err:
        check_out_folder(tmp_path / given, kind)
    assert message in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(LosslabError):
        write(tmp_path / given, kind)
    assert listing(tmp_path) == before


@pytest.mark.parametrize(
    "prepare",
    [lambda out: None, lambda out: out.mkdir(), lambda out: write(out), lambda out: write(out, files=("a.txt", "figs/b.png"))],
    ids=["new", "empty", "own", "own-with-subfolder"],
)
def test_new_empty_or_own_folders_are_written_whole(tmp_path, prepare):
    prepare(tmp_path / "out")
    write(tmp_path / "out", files=("c.txt",))
    assert listing(tmp_path) == ["out", "out/c.txt", f"out/{MANIFEST}"]  # nothing of the earlier run left beside it
    manifest = json.loads((tmp_path / "out" / MANIFEST).read_text())
    assert manifest == {"losslab": "test", "kind": "landscape", "files": ["c.txt"]}


def test_a_report_written_before_manifests_is_still_recognised(tmp_path):
    out = tmp_path / "r"
    (out / "figures").mkdir(parents=True)
    (out / "figures" / "x-y.png").write_bytes(b"png")
    (out / "index.html").write_text("<html>")
    (out / "results.json").write_text(json.dumps({"losslab": "0.1.0"}))
    write(out, "report", ("index.html",))
    assert listing(tmp_path) == ["r", "r/index.html", f"r/{MANIFEST}"]


def test_a_failed_write_leaves_the_earlier_folder_and_nothing_hidden(tmp_path):
    write(tmp_path / "out", files=("old.txt",))
    with pytest.raises(RuntimeError, match="disk full"), writing_folder(tmp_path / "out", "landscape", version="test") as tmp:
        (tmp / "new.txt").write_text("half")
        raise RuntimeError("disk full")
    assert listing(tmp_path) == ["out", f"out/{MANIFEST}", "out/old.txt"]


KILLED = """
import os, signal, sys
from losslab.report import writing_folder
with writing_folder(sys.argv[1], "landscape", version="test") as tmp:
    (tmp / "landscape.npz").write_bytes(b"half")
    os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_killed_run_leaves_a_partial_folder_that_the_next_run_removes(tmp_path):
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": SRC}
    killed = subprocess.run([sys.executable, "-c", KILLED, str(out)], env=env, capture_output=True, timeout=120)
    assert killed.returncode == -signal.SIGKILL
    partial = [p.name for p in tmp_path.iterdir()]
    assert len(partial) == 1 and partial[0].startswith(".out.losslab-partial-") and not out.exists()
    alive = tmp_path / f".out.losslab-partial-{os.getppid()}-abc"  # a run still going (our parent process): left alone
    alive.mkdir()
    write(out)
    assert sorted(p.name for p in tmp_path.iterdir()) == [alive.name, "out"]


def test_a_killed_run_is_recognised_by_its_released_lock_even_when_its_pid_is_alive(tmp_path):
    """In a container every run is PID 1, and PIDs are reused: the partial folder's lock, released by the kernel when
    its run dies, decides. Here the dead run's folder carries this test's own PID (alive) and an unheld lock."""
    out = tmp_path / "out"
    dead = tmp_path / f".out.losslab-partial-{os.getpid()}-dead"
    dead.mkdir()
    (dead / ".losslab-lock").write_text("")
    (dead / "landscape.npz").write_bytes(b"half")
    with writing_folder(out, "landscape", version="test") as tmp:  # a live run: its own partial folder holds its lock
        (tmp / "a.txt").write_text("x")
        assert not dead.exists()  # removed when the run started
        other = [p.name for p in tmp_path.iterdir() if p.name.startswith(".out.losslab-partial-")]
        assert other == [tmp.name]
        check_out_folder(out, "landscape")  # a second look while it runs: the live folder is left alone
        assert tmp.exists() and (tmp / ".losslab-lock").exists()
    assert listing(tmp_path) == ["out", "out/a.txt", f"out/{MANIFEST}"]  # the lock file is not part of the output


def test_a_run_killed_mid_swap_gets_its_earlier_folder_back(tmp_path):
    """Killed after moving the earlier folder aside and before renaming the new one in: the next run restores it."""
    write(tmp_path / "out", files=("old.txt",))
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True).stdout.strip()
    aside = tmp_path / f".out.losslab-old-{dead}-xyz"
    aside.mkdir()
    (tmp_path / "out").rename(aside / "previous")
    check_out_folder(tmp_path / "out", "landscape")
    assert listing(tmp_path) == ["out", f"out/{MANIFEST}", "out/old.txt"]


@pytest.mark.parametrize("given", [".", "..", "./"])
def test_the_current_folder_or_one_above_it_is_refused(tmp_path, monkeypatch, given):
    (tmp_path / "here").mkdir()
    monkeypatch.chdir(tmp_path / "here")
    with pytest.raises(LosslabError, match="which holds the current folder"):
        check_out_folder(given, "landscape")
    assert listing(tmp_path) == ["here"]


def test_sigterm_unwinds_the_command_line_so_its_partial_folder_is_removed(tmp_path):
    """The CLI turns SIGTERM into SystemExit, so a terminated write cleans up after itself."""
    script = textwrap.dedent("""
        import os, signal, sys
        from losslab import cli
        from losslab.report import writing_folder
        signal.signal(signal.SIGTERM, cli._terminate)
        with writing_folder(sys.argv[1], "landscape", version="test") as tmp:
            (tmp / "x").write_text("half")
            os.kill(os.getpid(), signal.SIGTERM)
    """)
    result = subprocess.run([sys.executable, "-c", script, str(tmp_path / "out")], env={**os.environ, "PYTHONPATH": SRC},
                            capture_output=True, timeout=120)
    assert result.returncode == 128 + signal.SIGTERM and list(tmp_path.iterdir()) == []


def invoke(*args):
    return CliRunner().invoke(app, list(args))


LANDSCAPE = ("landscape", "--n", "30", "--steps", "5", "--train-steps", "20")
SPECTRUM = ("spectrum", "--n", "30", "--at", "init", "--k", "1", "--probes", "2")


def test_a_line_into_a_planes_folder_replaces_it_whole(tmp_path):
    out = tmp_path / "slices"
    plane = invoke(*LANDSCAPE, "--out", str(out))
    assert plane.exit_code == 0, plane.output
    assert sorted(p.name for p in out.iterdir()) == ["landscape.html", "landscape.npz", "landscape.png", MANIFEST]
    line = invoke(*LANDSCAPE, "--dims", "1", "--out", str(out))
    assert line.exit_code == 0, line.output
    assert sorted(p.name for p in out.iterdir()) == ["landscape.npz", "landscape.png", MANIFEST]  # no plane HTML left
    assert sorted(p.name for p in tmp_path.iterdir()) == ["slices"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((*LANDSCAPE, "--out", "{tmp}/missing/slices"), "expected --out inside an existing folder, got {tmp}/missing/slices"),
        ((*SPECTRUM, "--out", "{tmp}/missing/s"), "expected --out inside an existing folder, got {tmp}/missing/s"),
        (("demo", "--quick", "--only", "linear-in-parameters", "--out", "{tmp}/missing/r"), "expected --out inside an existing"),
        (("experiment", "overfitting", "--quick", "--out", "{tmp}/missing/r"), "expected --out inside an existing folder"),
        ((*LANDSCAPE, "--out", "{tmp}/mine"), "holds files losslab did not write there: notes.txt;"),
        ((*SPECTRUM, "--out", "{tmp}/mine"), "holds files losslab did not write there: notes.txt;"),
        (("demo", "--quick", "--only", "linear-in-parameters", "--out", "{tmp}/mine"), "did not write there: notes.txt;"),
        (("experiment", "overfitting", "--quick", "--out", "{tmp}/mine"), "did not write there: notes.txt;"),
    ],
)
def test_every_writing_command_refuses_the_same_way_before_any_work(tmp_path, args, message):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("precious")
    result = invoke(*(a.format(tmp=tmp_path) for a in args))
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message.format(tmp=tmp_path) in lines[0], result.output
    assert listing(tmp_path) == ["mine", "mine/notes.txt"]


def test_spectrum_lists_largest_first_and_each_eigenvalue_once_when_k_exceeds_p(tmp_path):
    """--k 100 on a 24-parameter net: all 24 eigenvalues once (12 largest descending, 12 smallest ascending), with a note."""
    result = invoke("spectrum", "--n", "30", "--at", "init", "--k", "100", "--probes", "2", "--out", str(tmp_path / "s"), "--json")
    assert result.exit_code == 0, result.output
    s = json.loads(result.output)
    problem = Problem(TwoLayer(1, 8, "tanh"), *data.cubic(30, seed=0))
    exact = dense_eigenvalues(problem.loss, problem.default_theta(0)).tolist()
    largest, smallest = [r["value"] for r in s["largest"]], [r["value"] for r in s["smallest"]]
    assert len(largest) == len(smallest) == 12 and largest == sorted(largest, reverse=True) and smallest == sorted(smallest)
    assert sorted(smallest + largest) == pytest.approx(exact, abs=1e-8)
    assert "--k 100 at each end would list eigenvalues twice: the Hessian has 24" in s["k_note"]
    table = invoke("spectrum", "--n", "30", "--at", "init", "--k", "100", "--probes", "2", "--out", str(tmp_path / "s"))
    assert table.exit_code == 0 and "note: --k 100 at each end" in table.output
    assert table.output.index("largest") < table.output.index("smallest")


def test_examples_json_lists_every_example():
    from losslab.examples import EXAMPLES

    result = invoke("examples", "--json")
    assert result.exit_code == 0
    assert [e["name"] for e in json.loads(result.output)] == list(EXAMPLES)


def test_every_command_takes_json():
    import typer.main

    group = typer.main.get_command(app)
    for name, command in group.commands.items():
        assert "--json" in [o for p in command.params for o in p.opts], name


def test_version_does_not_import_torch():
    code = ("import sys; sys.argv = ['losslab', '--version']; from losslab.cli import run; run(); "
            "assert 'torch' not in sys.modules, 'torch imported'")
    result = subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": SRC}, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    from losslab import __version__

    assert result.stdout == f"losslab {__version__}\n"
