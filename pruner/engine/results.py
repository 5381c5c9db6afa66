"""What a finished pass comes to: the outcome of each deletion, of the execution, of the pass.

Values only, read by whatever watches a pass (hooks, metrics, pings, reports) without reaching
back into the code that ran it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pruner.engine.models import Resource

__all__ = ["DeleteOutcome", "DeleteResult"]

DeleteResult = Literal["deleted", "already_gone", "locked", "failed"]


@dataclass(frozen=True, slots=True)
class DeleteOutcome:
    """What one DELETE came to. `deleted` and `already_gone` are both done (the backup is gone)."""

    resource: Resource
    id: int
    result: DeleteResult
    status: int | None  # the last HTTP status; None when no answer came at all
    message: str

    @property
    def done(self) -> bool:
        return self.result in ("deleted", "already_gone")
