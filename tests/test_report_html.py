"""The HTML report: files, escaping, atomic replacement, and refusing to overwrite what is not a report."""

from __future__ import annotations

import json

import pytest

from losslab import LosslabError
from losslab.experiments import run_experiment
from losslab.report import MANIFEST, write_report
from losslab.report import html as report_html
from losslab.report import out_folder as report_out_folder

EVIL = "<script>alert('x')</script>"  # the fake experiment's label (conftest.FAKE)


@pytest.fixture
def fake_report(fake_experiment):
    """``fake_report(folder, seed)``: write the fake experiment's quick report into ``folder``; the index.html path."""

    def write(folder, seed: int = 0):
        result = run_experiment(fake_experiment, seed=seed, quick=True)
        return write_report([result], folder, seed=seed, quick=True, version="test")

    return write


def test_report_folder_has_page_json_figures_and_plotly(tmp_path, fake_report):
    index = fake_report(tmp_path / "r")
    folder = index.parent
    assert sorted(p.name for p in folder.iterdir()) == ["figures", "index.html", MANIFEST, "plotly.min.js", "results.json"]
    manifest = json.loads((folder / MANIFEST).read_text())
    assert manifest["kind"] == "report" and manifest["files"] == ["figures/fake-line.png", "index.html", "plotly.min.js", "results.json"]
    assert [p.name for p in (folder / "figures").iterdir()] == ["fake-line.png"]
    assert (folder / "figures" / "fake-line.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    payload = json.loads((folder / "results.json").read_text())
    assert payload["claims_held"] == 1 and payload["claims_total"] == 2 and payload["quick"] is True
    exp = payload["experiments"][0]
    assert exp["settings"] == {"n": 2, "label": EVIL} and exp["numbers"] == {"n": 2, "seed": 0, "label": EVIL} and exp["passed"] is False
    assert [c["holds"] for c in exp["claims"]] == [True, False]


def test_user_strings_are_escaped_and_failures_shown(tmp_path, fake_report):
    page = fake_report(tmp_path / "r").read_text()
    assert EVIL not in page and "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    assert page.count("class='badge failed'>fails") == 2  # the failed claim in the summary and in its section
    assert "1 of 2 claims hold" in page and "1/2 claims hold" in page


def test_rewriting_replaces_an_earlier_report(tmp_path, fake_report):
    fake_report(tmp_path / "r", seed=0)
    fake_report(tmp_path / "r", seed=5)
    assert json.loads((tmp_path / "r" / "results.json").read_text())["seed"] == 5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]  # no temporary folders left behind


def test_a_failed_write_leaves_the_earlier_report_and_no_debris(tmp_path, monkeypatch, fake_report):
    fake_report(tmp_path / "r", seed=0)

    def boom(*args, **kwargs):
        raise RuntimeError("killed while rendering")

    monkeypatch.setattr(report_html, "render_index", boom)
    with pytest.raises(RuntimeError, match="killed"):
        fake_report(tmp_path / "r", seed=7)
    assert json.loads((tmp_path / "r" / "results.json").read_text())["seed"] == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]


def test_a_failed_rename_puts_the_earlier_report_back(tmp_path, monkeypatch, fake_report):
    fake_report(tmp_path / "r", seed=0)
    real_replace = report_out_folder.os.replace

    def replace(src, dst):
        if ".r.losslab-partial-" in str(src):  # the finished new report cannot be moved into place
            raise OSError(5, "disk trouble")
        return real_replace(src, dst)

    monkeypatch.setattr(report_out_folder.os, "replace", replace)
    with pytest.raises(LosslabError, match=r"could not be replaced \(disk trouble\); the earlier folder is unchanged"):
        fake_report(tmp_path / "r", seed=7)
    assert json.loads((tmp_path / "r" / "results.json").read_text())["seed"] == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda p: (p / "x").write_text("mine"), "holds files losslab did not write there: x;"),
        (lambda p: None, "existing file"),
    ],
)
def test_refuses_to_replace_what_is_not_a_report(tmp_path, make, match, fake_report):
    target = tmp_path / "target"
    if match == "existing file":
        target.write_text("a file")
    else:
        target.mkdir()
        make(target)
    with pytest.raises(LosslabError, match=match):
        fake_report(target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["target"]


def test_an_empty_folder_is_fine(tmp_path, fake_report):
    (tmp_path / "r").mkdir()
    assert fake_report(tmp_path / "r").exists()


@pytest.mark.parametrize(
    ("overrides", "match"),
    [({"m": 1}, "unknown setting 'm'; valid settings: n, label"),
     ({"n": "many"}, "expected n to be an integer >= 2 and <= 50 \\(points on the line\\), got n='many'"), ({"n": 1}, "got n=1")],
)
def test_bad_settings_are_errors_listing_what_is_valid(overrides, match, fake_experiment):
    with pytest.raises(LosslabError, match=match):
        fake_experiment.make_settings(overrides=overrides)


def test_settings_from_strings_take_the_field_type(fake_experiment):
    s = fake_experiment.make_settings(quick=True, overrides={"label": "b"})
    assert (s.n, s.label) == (2, "b")
    assert fake_experiment.make_settings(overrides={"n": "7"}).n == 7


def test_a_crashing_experiment_becomes_a_failed_claim_and_the_others_still_run(tmp_path, fake_experiment):
    import dataclasses

    from losslab.cli.demo import run_all

    def crash(settings, seed, say):
        raise RuntimeError("a bug in the experiment")

    broken = dataclasses.replace(fake_experiment, name="broken", number=2, measure=crash)
    results, crashed = run_all([broken, fake_experiment], seed=0, quick=True)
    assert crashed == ["broken"] and [r.name for r in results] == ["broken", "fake"]
    (c,) = results[0].claims
    assert not c.holds and c.evidence.startswith("RuntimeError: a bug in the experiment (at test_report_html.py:")
    page = write_report(results, tmp_path / "r", seed=0, quick=True, version="test").read_text()
    assert "RuntimeError: a bug in the experiment" in page


def test_a_bad_setting_is_not_swallowed_as_a_crash(fake_experiment):
    from losslab.cli.demo import run_all

    with pytest.raises(LosslabError, match="unknown setting"):
        run_all([fake_experiment], seed=0, quick=True, overrides={"nope": 1})


def test_plain_words_are_shown_under_the_exact_evidence(tmp_path, fake_report):
    page = fake_report(tmp_path / "r").read_text()
    assert "<div class='evidence'>y = 2 &gt; 1</div><div class='plain'>In plain words: two is more than one</div>" in page
    assert page.count("In plain words:") == 1  # the claim without plain words gets none


def test_tables_scroll_in_their_box_and_number_columns_are_right_aligned(tmp_path, fake_report):
    page = fake_report(tmp_path / "r").read_text()
    assert ("<figcaption>a table</figcaption><div class='table-wrap' tabindex='0'><table><tr><th>k</th><th class='num'>value</th></tr>"
            "<tr><td>1</td><td class='num'>0.25</td></tr>") in page
    assert page.count("<table>") == page.count("<div class='table-wrap'") == 2  # the summary and the fake table


@pytest.mark.parametrize(
    ("cells", "numeric"),
    [((1, 2.5, 10**6), True), (("0.260 ± 0.062", "1e-3", "−4.2e+05", "12%"), True), ((0.5, "-", None, ""), True),
     (("-", None), False), ((1.0, "convex"), False), (([3.07], 1.0), False), ((True, False), False), (("1-D", "2-D"), False)],
)
def test_a_column_is_numeric_when_its_cells_are_numbers_or_blanks(cells, numeric):
    assert report_html._numeric_columns(["c"], [(x,) for x in cells]) == [numeric]


def _as(result, name: str, number: int, holds: tuple[bool, ...] | None = None):
    """The fake experiment's ``result`` posing as the built-in experiment ``name`` (claims held as ``holds``)."""
    import dataclasses

    claims = result.claims if holds is None else tuple(dataclasses.replace(c, holds=h) for c, h in zip(result.claims, holds))
    return dataclasses.replace(result, name=name, number=number, claims=claims)


@pytest.fixture
def fake_result(fake_experiment):
    return run_experiment(fake_experiment, seed=0, quick=True)


def test_closing_reports_a_step_with_a_failed_claim_as_not_borne_out(fake_result):
    from losslab.report.closing import closing_html

    text = closing_html([_as(fake_result, "underfitting", 2, (True, True)), _as(fake_result, "overfitting", 3)])
    step = text.split("<h3>")[1]  # too few features, too many features
    assert step.startswith("Too few features") and "failed-step" in text.split("<h3>")[0]
    assert "does <b>not</b> bear it out in full: 3 of 4 claims hold" in step and "bears it out:" not in step
    assert "Failed: “a claim that fails” (§3)." in step and "Not run in this report: more-data, bias-variance." in step
    assert "<a href='#underfitting'>§2 A fake &lt;script&gt;" in step and "(2 of 2 claims hold)" in step and "(1 of 2 claims hold)" in step
    assert EVIL not in text
    assert "3 of 4 claims of this report hold" in text and "<h3>The argument</h3>" not in text  # no source of theirs
    assert "Not checked in this report (its experiments were not run): Fixed features" in text


def test_closing_says_a_step_holds_only_when_every_claim_of_it_does(fake_result):
    from losslab.experiments import NAMES
    from losslab.report.closing import closing_html

    text = closing_html([_as(fake_result, "linear-in-parameters", 1, (True, True))])
    assert "This run bears it out: all 2 claims hold — <a href='#linear-in-parameters'>§1" in text
    assert "not</b> bear" not in text and "All 2 claims of this report hold." in text
    assert f"This report ran 1 of its {len(NAMES)} experiments, so it checks only part of it." in text
    assert "Golub &amp; Welsch" not in text and "Boyd and L. Vandenberghe" in text  # only sources of the sections present


def test_a_report_without_built_in_experiments_has_no_closing(tmp_path, fake_report):
    from losslab.report.closing import closing_html

    page = fake_report(tmp_path / "r").read_text()
    assert "id='closing'" not in page and "id='sources'" not in page
    assert closing_html([]) == ""


def test_every_built_in_experiment_belongs_to_one_step_and_every_source_is_cited_in_the_code():
    from pathlib import Path

    from losslab.experiments import NAMES
    from losslab.report import closing

    steps = [n for s in closing.STEPS for n in s.experiments]
    assert sorted(steps) == sorted(NAMES)
    src = Path(closing.__file__).parents[1]
    code = " ".join(" ".join(p.read_text(encoding="utf-8").split()) for p in src.rglob("*.py") if p.name != "closing.py")
    for s in closing.SOURCES:
        assert " ".join(s.cited.split()) in code, s.cited
        assert s.experiments and set(s.experiments) <= set(NAMES), s
        assert s.year.isdigit() and s.title and s.authors and s.venue
    assert len({(s.authors, s.year) for s in closing.SOURCES}) == len(closing.SOURCES)


def test_each_source_names_the_sections_that_use_it_once_in_order(fake_result):
    from losslab.report.closing import closing_html

    results = [_as(fake_result, n, k) for n, k in (("two-layer", 7), ("linear-in-parameters", 1), ("depth", 8))]
    text = closing_html(results)
    pearlmutter = next(li for li in text.split("<li>") if li.startswith("B. A. Pearlmutter (1994)"))
    assert pearlmutter.endswith("Hessian-vector products — <a href='#linear-in-parameters'>§1</a>, <a href='#two-layer'>§7</a>, "
                                "<a href='#depth'>§8</a>.</span></li>")
    assert "2nd ed.." not in text and "Numerical Optimization" not in text  # no section here uses the second-order test


def test_each_part_gets_its_heading_and_introduction_before_its_first_experiment(fake_result):
    from losslab.experiments.story import parts

    first, second = parts()
    results = [_as(fake_result, first.experiments[2], 3), _as(fake_result, first.experiments[4], 5),
               _as(fake_result, second.experiments[0], 14)]
    page = report_html.render_index(results, report_html.report_payload(results, seed=0, quick=True, version="test"))
    one, two = f"<h2 class='part-title'>Part I. {first.title}", f"<h2 class='part-title'>Part II. {second.title}"
    assert page.count(one) == 1 and page.count(two) == 1
    ids = [f"<section id='{r.name}'>" for r in results]
    assert page.index(one) < page.index(ids[0]) < page.index(ids[1]) < page.index(two) < page.index(ids[2])
    assert first.intro.split(".")[0] in page and second.intro.split(".")[0] in page
    # the summary table groups the claims under the same parts
    assert page.count(f"<th colspan='3'>Part I. {first.title}</th>") == 1


def test_a_report_of_only_custom_experiments_has_no_part_heading(tmp_path, fake_report):
    assert "class='part-title'" not in fake_report(tmp_path / "r").read_text(encoding="utf-8")
