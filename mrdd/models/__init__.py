"""Models: the stage-1 consistency model (MCP), specific VAEs, CLUB estimators, MRDD, and
every objective (:mod:`mrdd.models.objectives`)."""

from mrdd.models.availability import fill_absent, view_weights, zero_absent_views
from mrdd.models.club import CLUB, Estimators
from mrdd.models.consistency import ConsistencyModel, ConsistencyOutput, group_views_by_shape
from mrdd.models.gaussian import reparameterize
from mrdd.models.masking import drop_views_per_sample, mask_view, mask_views, random_keep_mask
from mrdd.models.mrdd import MRDD, Codes, impute_views
from mrdd.models.objectives import (
    club_upper_bound,
    code_moment_sums,
    consistency_loss,
    estimator_loss,
    gaussian_log_density,
    kl_standard_normal,
    squared_error,
    view_model_loss,
    weighted_mean,
)
from mrdd.models.specific import SpecificModels, SpecificOutput, SpecificVAE

__all__ = [
    "CLUB",
    "MRDD",
    "Codes",
    "ConsistencyModel",
    "ConsistencyOutput",
    "Estimators",
    "SpecificModels",
    "SpecificOutput",
    "SpecificVAE",
    "club_upper_bound",
    "code_moment_sums",
    "consistency_loss",
    "drop_views_per_sample",
    "estimator_loss",
    "fill_absent",
    "gaussian_log_density",
    "group_views_by_shape",
    "impute_views",
    "kl_standard_normal",
    "mask_view",
    "mask_views",
    "random_keep_mask",
    "reparameterize",
    "squared_error",
    "view_model_loss",
    "view_weights",
    "weighted_mean",
    "zero_absent_views",
]
