"""Evaluation: metrics on representations, code extraction, reports and figures."""

from mrdd.eval.evaluate import clustering_report
from mrdd.eval.figures import reconstruction_figure
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
from mrdd.eval.representations import extract_codes

__all__ = [
    "cluster_accuracy",
    "clustering_report",
    "clustering_scores",
    "evaluate_classification",
    "evaluate_clustering",
    "extract_codes",
    "pairwise_fscore",
    "purity",
    "reconstruction_figure",
    "redundancy_r2",
    "summarize",
]
