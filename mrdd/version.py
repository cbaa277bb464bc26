"""The package version, in a module of its own so that what records it (checkpoints, run
provenance) need not import the package root, which imports the whole API."""

__version__ = "0.1.0"
