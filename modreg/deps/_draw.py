"""Pictures of module graphs: boxes in columns joined by arrows, module text shown as written."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from modreg._text import plain_figure_text, safe_text

__all__ = ["box_text", "draw"]


def draw(
    columns: list[list[str]], edges: list[tuple[int, int, int, int]], path: Path, title: str
) -> Path:
    """Boxes in columns (left to right) joined by arrows ``(col, row) -> (col, row)``.

    Each label is lines of module text, shown as written (:func:`box_text`, no math text).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    height = max(len(c) for c in columns)
    # The picture is modreg's own: a user's text.usetex would hand module text to LaTeX.
    with matplotlib.rc_context({"text.usetex": False}):
        fig, ax = plt.subplots(figsize=(3.4 * len(columns) + 1, 1.1 * height + 1.2))
        try:
            _boxes(ax, columns, edges, height)
            plain_figure_text(ax.set_title(title, fontsize=10))
            fig.tight_layout()
            fig.savefig(path, dpi=120)
        finally:
            plt.close(fig)
    return path


def _boxes(
    ax: Any, columns: list[list[str]], edges: list[tuple[int, int, int, int]], height: int
) -> None:
    def where(col: int, row: int) -> tuple[float, float]:
        size = len(columns[col])
        return col * 3.4, (height - 1) / 2 - row + (size - 1) / 2

    ax.set_axis_off()
    box = {"boxstyle": "round", "facecolor": "#e8eef7", "edgecolor": "#4a6fa5"}
    arrow = {"arrowstyle": "->", "color": "#555", "shrinkA": 38, "shrinkB": 38}
    for col, labels in enumerate(columns):
        for row, label in enumerate(labels):
            x, y = where(col, row)
            plain_figure_text(ax.text(x, y, label, ha="center", va="center", fontsize=8, bbox=box))
    for col_a, row_a, col_b, row_b in edges:
        ax.annotate("", xy=where(col_b, row_b), xytext=where(col_a, row_a), arrowprops=arrow)
    ax.set_xlim(-1.8, 3.4 * (len(columns) - 1) + 1.8)
    ax.set_ylim(-0.8, height - 0.2)


def box_text(*lines: str) -> str:
    """A box's text: each line (module text, untrusted) made safe, then stacked."""
    return "\n".join(safe_text(line) for line in lines)
