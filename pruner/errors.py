"""Errors a user can fix, and the exit codes (docs/exit-codes.md), in one place."""

from __future__ import annotations

__all__ = [
    "EXIT_CAPPED",
    "EXIT_INCOMPLETE",
    "EXIT_LOCKED",
    "EXIT_OK",
    "EXIT_REFUSED",
    "EXIT_USAGE",
    "PassFailed",
    "UserError",
]

EXIT_OK = 0
EXIT_INCOMPLETE = 1  # the pass failed or is incomplete
EXIT_USAGE = 2  # usage or configuration error; nothing was contacted
EXIT_CAPPED = 3  # a cap blocked deletions
EXIT_REFUSED = 4  # apply refused the plan
EXIT_LOCKED = 75  # another pass holds the lock (EX_TEMPFAIL)


class UserError(Exception):
    """A mistake the user can fix: what is wrong, where, what to do; one line each."""

    exit_code = EXIT_USAGE

    def __init__(self, *lines: str) -> None:
        super().__init__(*lines)
        self.lines = lines


class PassFailed(UserError):
    """The pass could not do its work (e.g. the API refused the token): exit 1, not 2."""

    exit_code = EXIT_INCOMPLETE
