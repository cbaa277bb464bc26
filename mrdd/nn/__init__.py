"""Building blocks: per-view conv ResNet / MLP encoders and decoders."""

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
