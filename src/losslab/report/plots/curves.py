"""Curves against a setting: panels side by side, with fixed spacing (rendering, not layout, is the slow part)."""

from __future__ import annotations

from ..figures import subplots

__all__ = ["panels", "two_panels"]


def panels(titles: tuple[str, ...], *, width: float = 5.0, height: float = 3.8, wspace: float = 0.22):
    """A figure with one axes per title, side by side: (figure, tuple of axes); ``width`` inches per panel."""
    fig, axes = subplots(1, len(titles), figsize=(width * len(titles), height), gridspec_kw={"wspace": wspace}, squeeze=False)
    axes = tuple(axes[0])
    for ax, title in zip(axes, titles, strict=True):
        ax.set_title(title, fontsize=10)
    return fig, axes


def two_panels(title_left: str, title_right: str):
    """A (10 × 3.8)-inch figure with two axes side by side: (figure, left, right)."""
    fig, (left, right) = panels((title_left, title_right))
    return fig, left, right
