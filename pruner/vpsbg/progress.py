"""What long work tells whoever shows its progress: a seam, so the client and the passes stay
free of any display. `pruner.actions.progress` draws it on a terminal; everywhere else (logs,
pipes, the daemon, CI) it is NO_PROGRESS and nothing is shown."""

from __future__ import annotations

from typing import Protocol

__all__ = ["NO_PROGRESS", "Progress"]


class Progress(Protocol):
    """Steps of named tasks (`listing backups`: pages; `deleting`: deletions). `advance` may be
    called from worker threads."""

    def start(self, task: str, total: int) -> None:
        """`task` begins (or begins again, as a listing does) with `total` steps."""

    def advance(self, task: str, steps: int = 1) -> None: ...

    def finish(self, task: str) -> None:
        """`task` is over, done or not: what showed it goes away."""


class _Silent:
    def start(self, task: str, total: int) -> None:
        pass

    def advance(self, task: str, steps: int = 1) -> None:
        pass

    def finish(self, task: str) -> None:
        pass


NO_PROGRESS: Progress = _Silent()
