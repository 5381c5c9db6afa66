"""What the hooks that tell people of a pass share (health pings, webhooks): this machine's
name, the run cap an alert names, which passes are worth telling of, and whether a pass that
failed was a dry run (a hook is told only its run_id then)."""

from __future__ import annotations

import socket
import threading

from pruner.config.schema import NotifySettings

__all__ = ["PassTeller", "error_text"]


class PassTeller:
    """A base for PassHooks that tell of passes: `host` defaults to this machine's hostname."""

    def __init__(
        self,
        settings: NotifySettings,
        *,
        host: str | None = None,
        max_deletions_per_run: int | None = None,
    ) -> None:
        self.settings = settings
        self._host = host if host is not None else socket.gethostname()
        self._run_cap = max_deletions_per_run
        self._dry_runs: dict[str, bool] = {}  # run_id -> dry run, for pass_failed
        self._lock = threading.Lock()

    def _started(self, run_id: str, dry_run: bool) -> bool:
        """Remember the pass; whether it is one to tell of."""
        with self._lock:
            self._dry_runs[run_id] = dry_run
        return self._wanted(dry_run)

    def _ended(self, run_id: str) -> bool:
        """Forget the pass; whether it was a dry run (not, when it was never started here)."""
        with self._lock:
            return self._dry_runs.pop(run_id, False)

    def _wanted(self, dry_run: bool) -> bool:
        return not dry_run or self.settings.on_dry_run


def error_text(error: BaseException) -> str:
    """What a pass that raised says: a pruner error's own message, else its type and text."""
    return getattr(error, "message", None) or f"{type(error).__name__}: {error}"
