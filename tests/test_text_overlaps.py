"""The text-collision check of report figures (issue #11), on figures built to collide and not to."""

from __future__ import annotations

from losslab.report.figures import subplots
from losslab.report.text_overlaps import text_overlaps


def test_a_colourbar_label_running_into_the_next_panels_label_is_found():
    fig, (a, b) = subplots(1, 2, figsize=(6, 3), gridspec_kw={"wspace": 0.02})  # no room between the panels
    image = a.imshow([[0, 1], [1, 0]])
    fig.colorbar(image, ax=a, label="log10 loss, a long colourbar label")
    b.set_ylabel("β, the second coordinate")
    found = text_overlaps(fig)  # axes 1 is a's colourbar, axes 2 the next panel
    assert any("(axes 1)" in pair and "(axes 2)" in pair for pair in found), found


def test_a_legend_over_the_title_is_found_and_separated_panels_are_clean():
    fig, ax = subplots(figsize=(3, 2))
    ax.plot([0, 1], [0, 1], label="a line with a very long legend entry")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, 1.15))
    ax.set_title("a title under the legend")
    assert any("legend" in p and "title" in p for p in text_overlaps(fig))
    fig, (a, b) = subplots(1, 2, figsize=(8, 3), gridspec_kw={"wspace": 0.5})
    a.plot([0, 1], [0, 1], label="x")
    a.legend()
    a.set(xlabel="α", ylabel="loss", title="left")
    b.set(xlabel="α", ylabel="β", title="right")
    assert text_overlaps(fig) == ()


def test_ticks_outside_the_view_are_not_counted():
    fig, (a, b) = subplots(1, 2, figsize=(6, 3), gridspec_kw={"wspace": 0.3})
    a.plot([0, 1.02], [0, 1])  # the tick at 1.2 lies outside the view and is not drawn
    b.plot([-1, 1], [-1.6, 1.6])
    assert text_overlaps(fig) == ()
