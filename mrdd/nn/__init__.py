"""Building blocks: per-view conv ResNet / MLP encoders and decoders (the backbone), and
:mod:`mrdd.nn.networks`, which builds each view's networks from the backbone or from the
user's own classes (``model.networks``, docs/networks.md)."""

from mrdd.nn.blocks import (
    ConvDecoder,
    ConvEncoder,
    GaussianHead,
    MLPDecoder,
    MLPEncoder,
    ResBlock,
    make_decoder,
    make_encoder,
)

__all__ = [
    "ConvDecoder",
    "ConvEncoder",
    "GaussianHead",
    "MLPDecoder",
    "MLPEncoder",
    "ResBlock",
    "make_decoder",
    "make_encoder",
]
