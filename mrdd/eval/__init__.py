"""Evaluation: metrics on representations, code extraction, reports, tables and figures."""

from mrdd.eval.evaluate import classification_report, clustering_report, redundancy_report
from mrdd.eval.figures import (
    curves_figure,
    embedding_figure,
    image_grids_figure,
    reconstruction_figure,
)
from mrdd.eval.metrics import (
    cluster_accuracy,
    clustering_scores,
    evaluate_classification,
    evaluate_clustering,
    pairwise_fscore,
    purity,
    redundancy_r2,
    summarize,
)
from mrdd.eval.report import evaluate_model, metrics_markdown
from mrdd.eval.representations import extract_codes

__all__ = [
    "classification_report",
    "cluster_accuracy",
    "clustering_report",
    "clustering_scores",
    "curves_figure",
    "embedding_figure",
    "evaluate_classification",
    "evaluate_clustering",
    "evaluate_model",
    "extract_codes",
    "image_grids_figure",
    "metrics_markdown",
    "pairwise_fscore",
    "purity",
    "reconstruction_figure",
    "redundancy_r2",
    "redundancy_report",
    "summarize",
]
