"""What can go wrong talking to the VPSBG API; each message says what is wrong and what to do."""

from __future__ import annotations

from typing import Literal

__all__ = [
    "ApiAuthError",
    "ApiError",
    "ApiPermissionError",
    "IncompleteListing",
    "ListedResource",
    "PassInterrupted",
    "TokenMissing",
]

ListedResource = Literal["backups", "snapshots", "servers"]


class ApiError(Exception):
    """The API could not be used as needed; the message says what is wrong and what to do."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class ApiAuthError(ApiError):
    """HTTP 401: the token was rejected. Fatal for the pass; never retried."""


class ApiPermissionError(ApiError):
    """HTTP 403: the key may not do this (most likely a Read key asked to delete). Fatal."""


class IncompleteListing(ApiError):
    """A listing could not be read completely: nothing it covers may be deleted (fail closed)."""

    def __init__(
        self,
        resource: ListedResource,
        detail: str,
        *,
        page: int | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(f"the {resource} listing is incomplete: {detail}", status=status)
        self.resource: ListedResource = resource
        self.page = page


class PassInterrupted(ApiError):
    """`stop` was set: no new request starts (one already on the wire was allowed to finish)."""


class TokenMissing(ApiError):
    """No usable API token was configured: a user error (exit 2), found before any request."""
