"""Markdown tables for the numbers a run (or a set of runs) reports."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def mean_std(summary: dict[str, Any], scale: float = 1.0, digits: int = 2) -> str:
    """``"mean ± std"`` of a ``{"mean", "std"}`` summary, both multiplied by ``scale``."""
    return f"{summary['mean'] * scale:.{digits}f} ± {summary['std'] * scale:.{digits}f}"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub-flavoured Markdown table; the first column is left-aligned, the rest right."""
    align = [":--"] + ["--:"] * (len(header) - 1)
    lines = [header, align, *rows]
    return "\n".join("| " + " | ".join(str(cell) for cell in line) + " |" for line in lines)
