"""mrdd: multi-view representation learning by distilled disentangling (MRDD, CVPR 2024).

Stage 1 learns a view-consistent code ``c`` by masked cross-view prediction;
stage 2 learns one view-specific code ``s_v`` per view and distils ``c`` out of
it with a CLUB mutual-information bound. See docs/method.md and the README.
"""

__version__ = "0.1.0"

from mrdd.api import TrainedModel, build_model, evaluate, load, with_networks  # noqa: E402
from mrdd.config import ConfigError, RunConfig  # noqa: E402

__all__ = [
    "ConfigError",
    "RunConfig",
    "TrainedModel",
    "__version__",
    "build_model",
    "evaluate",
    "load",
    "with_networks",
]
