"""What watches a pass from outside: metrics, health pings. Monitoring never breaks a pass.

`run_pass(..., hooks=...)` calls each hook at three (or four) moments:
- `pass_started(run_id, dry_run=...)`: the pass has its lock and API client and starts listing.
  A pass that ends before that (no token: exit 2; another pass holds the lock: exit 75) calls no
  hook at all: nothing ran.
- `api_response(method, status)`: after every API attempt (retries included), from whatever
  thread made it; `status` None when no answer came (connection error, timeout). Only wired
  when run_pass builds the API client itself (a client passed in keeps its own `on_response`).
- `pass_finished(result)`: the pass ended with a result, whatever its exit code.
- `pass_failed(run_id, error)`: the pass raised after `pass_started` (a bug: a refused key or
  a failed listing ends it with a result); the error is re-raised after the hooks ran.

A hook that raises is logged as a `hook.failed` warning and ignored, like borgmatic's monitoring
hooks: a monitoring outage must never fail, or stop, the pruning itself.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar

import structlog
from structlog.typing import FilteringBoundLogger

from pruner.engine.results import PassResult

__all__ = ["FannedOut", "PassHooks", "guarded"]

_log = structlog.get_logger("pruner.hooks")
_Hook = TypeVar("_Hook")


class PassHooks(Protocol):
    """Something told about each pass; see the module doc for when each method is called."""

    def pass_started(self, run_id: str, *, dry_run: bool) -> None: ...

    def api_response(self, method: str, status: int | None) -> None: ...

    def pass_finished(self, result: PassResult) -> None: ...

    def pass_failed(self, run_id: str, error: BaseException) -> None: ...


class FannedOut:
    """Several hooks as one, each call guarded: a hook that raises is logged and skipped."""

    def __init__(self, hooks: Sequence[PassHooks]) -> None:
        self.hooks = tuple(hooks)

    def pass_started(self, run_id: str, *, dry_run: bool) -> None:
        for hook in self.hooks:
            guarded(hook, "pass_started", lambda h: h.pass_started(run_id, dry_run=dry_run))

    def api_response(self, method: str, status: int | None) -> None:
        for hook in self.hooks:
            guarded(hook, "api_response", lambda h: h.api_response(method, status))

    def pass_finished(self, result: PassResult) -> None:
        for hook in self.hooks:
            guarded(hook, "pass_finished", lambda h: h.pass_finished(result))

    def pass_failed(self, run_id: str, error: BaseException) -> None:
        for hook in self.hooks:
            guarded(hook, "pass_failed", lambda h: h.pass_failed(run_id, error))


def guarded(
    hook: _Hook,
    method: str,
    call: Callable[[_Hook], None],
    *,
    log: FilteringBoundLogger = _log,
    goes_on: str = "the pass",
) -> None:
    """`call(hook)`; if it raises, a `hook.failed` warning: monitoring never stops `goes_on`."""
    try:
        call(hook)
    except Exception as error:
        log.warning(
            "hook.failed",
            hook=type(hook).__name__,
            method=method,
            message=f"{type(error).__name__}: {error} ({goes_on} goes on)",
        )
