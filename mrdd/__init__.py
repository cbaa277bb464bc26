"""mrdd: multi-view representation learning by distilled disentangling (MRDD, CVPR 2024).

Stage 1 learns a view-consistent code ``c`` by masked cross-view prediction;
stage 2 learns one view-specific code ``s_v`` per view and distils ``c`` out of
it with a CLUB mutual-information bound. See docs/method.md and the README.

Every error a user fixes is a :class:`MRDDError` (:mod:`mrdd.errors`).
"""

from mrdd.api import TrainedModel, build_model, evaluate, load, with_networks
from mrdd.config import RunConfig
from mrdd.errors import CheckpointError, ConfigError, DataError, MRDDError
from mrdd.version import __version__

__all__ = [
    "CheckpointError",
    "ConfigError",
    "DataError",
    "MRDDError",
    "RunConfig",
    "TrainedModel",
    "__version__",
    "build_model",
    "evaluate",
    "load",
    "with_networks",
]
