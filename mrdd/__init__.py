"""mrdd: multi-view representation learning by distilled disentangling (MRDD, CVPR 2024)."""

__version__ = "0.1.0"
