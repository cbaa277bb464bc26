"""Models: the stage-1 consistency model (MCP), specific VAEs, CLUB, and MRDD."""

from mrdd.models.club import CLUB, batch_moments
from mrdd.models.consistency import (
    ConsistencyModel,
    ConsistencyOutput,
    consistency_loss,
    group_views_by_shape,
)
from mrdd.models.gaussian import kl_standard_normal, reparameterize, squared_error
from mrdd.models.masking import mask_view, mask_views, random_keep_mask
from mrdd.models.mrdd import MRDD, Codes, Estimators, view_model_loss
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
    "batch_moments",
    "consistency_loss",
    "view_model_loss",
    "group_views_by_shape",
    "kl_standard_normal",
    "mask_view",
    "mask_views",
    "random_keep_mask",
    "reparameterize",
    "squared_error",
]
