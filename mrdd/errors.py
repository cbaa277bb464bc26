"""The errors a user fixes: one base class, :class:`MRDDError`, and one subclass per kind.

Everything the package refuses before or during a run because of its input (a setting,
a data file, a checkpoint, views passed to the API) raises a subclass of
:class:`MRDDError` with one actionable line: what is wrong and what to do. The scripts
print that line as ``error: ...`` and exit with status 2 (:mod:`mrdd.cli`); anything
else (a NaN in training, a full disk, a bug) is not an ``MRDDError``.

The classes live here, below every other module, so that each layer can raise them
without importing a higher one; :mod:`mrdd.config`, :mod:`mrdd.data` and
:mod:`mrdd.train` re-export the ones of their domain. Each also derives from the builtin
it has always been (``ValueError``, ``RuntimeError``), so existing ``except`` clauses
keep working.
"""

from __future__ import annotations


class MRDDError(Exception):
    """An input the user must fix; its message is one line saying what and how."""


class ConfigError(MRDDError, ValueError):
    """A configuration value is unknown, missing, or out of range."""


class DataError(MRDDError, ValueError):
    """A dataset is missing, malformed, or inconsistent."""


class CheckpointError(MRDDError, RuntimeError):
    """A checkpoint is missing, unreadable, or does not match the run."""
