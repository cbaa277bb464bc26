"""How the scripts report a user error: the one place that catches :class:`MRDDError`.

Every script that reads settings, data or checkpoints (train, evaluate, encode, benchmark,
missing_views, make_suite) runs its work inside :func:`reporting_user_errors`, so a
setting, data file or checkpoint the user must fix is printed the same way everywhere,
as one ``error: ...`` line on stderr, and the script exits with
:data:`USER_ERROR_STATUS`. Anything that is not an :class:`MRDDError` propagates
untouched (a script may turn a failing disk into its own line and status 1)::

    with reporting_user_errors() as refusal:
        metrics = mrdd.evaluate(run_dir)
    if refusal:
        return refusal.status

(No Hydra here: the package does not import it; the scripts compose their configs.)
"""

from __future__ import annotations

import sys
from types import TracebackType

from mrdd.errors import MRDDError

#: The exit status of a script refused for a user error: fix the settings, data or checkpoint.
USER_ERROR_STATUS = 2


class UserErrorReport:
    """The outcome of a :func:`reporting_user_errors` block: true when it was refused.

    ``status`` is :data:`USER_ERROR_STATUS` after a refusal and 0 otherwise; ``error`` is
    the refused :class:`MRDDError` (``None`` when the block ran to its end)."""

    def __init__(self, context: str) -> None:
        self.context = context
        self.error: MRDDError | None = None

    @property
    def status(self) -> int:
        return 0 if self.error is None else USER_ERROR_STATUS

    def __bool__(self) -> bool:
        return self.error is not None

    def __enter__(self) -> UserErrorReport:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, err: BaseException | None, _tb: TracebackType | None
    ) -> bool:
        if not isinstance(err, MRDDError):
            return False
        self.error = err
        print(f"error: {self.context}{err}", file=sys.stderr)
        return True


def reporting_user_errors(context: str = "") -> UserErrorReport:
    """A context manager that prints an :class:`MRDDError` raised inside as one line,
    ``error: <context><message>``, and swallows it; the report it returns says whether it
    did (its ``status`` is then the exit status to end with). ``context`` prefixes the
    message, e.g. ``"job 3 (lr=0.1): "`` for one job of a sweep."""
    return UserErrorReport(context)
