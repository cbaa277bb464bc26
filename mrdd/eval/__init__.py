"""Evaluation: the protocol (codes → named representations → score rows) and its tables.

The metric primitives live in :mod:`mrdd.eval.metrics`, the figures in
:mod:`mrdd.eval.figures` and :mod:`mrdd.eval.gallery`.
"""

from mrdd.eval.protocol import evaluate_model
from mrdd.eval.representations import extract_codes, named_representations
from mrdd.eval.tables import ScoreRow, metrics_markdown, pivot, save_metrics

__all__ = [
    "ScoreRow",
    "evaluate_model",
    "extract_codes",
    "metrics_markdown",
    "named_representations",
    "pivot",
    "save_metrics",
]
