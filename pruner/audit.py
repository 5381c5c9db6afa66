"""The audit trail: every deletion pruner sets out to do, and what became of it, as JSON lines.

state_dir/audit.jsonl gets two lines per deletion, each with the backup's full metadata, the
policy and the reasons:
- `{"event": "intent", ...}` before its DELETE is sent;
- `{"event": "outcome", "outcome": "deleted" | "already_gone" | "locked" | "failed" |
  "not_attempted", "status": 204, "message": "...", ...}` after.

Deletions go in waves (the executor's): all of a wave's intents are written and fsync'd before
any of its DELETEs starts; its outcomes are written as they come and fsync'd once the wave is
over (one disk flush per wave, not one per line). An intent without an outcome therefore means
the process died while that DELETE may have been on the wire.

The first write in a new month (UTC) renames the file to `audit-YYYY-MM.jsonl`, the month of its
last entry, and starts a new one; old months are kept (pruner never deletes them). Dry runs and
`pruner plan` write nothing.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO

from pruner.models import Decision, Group
from pruner.state import sync_directory

__all__ = ["AUDIT_FILE", "AuditTrail", "AuditWave", "archive_name"]

AUDIT_FILE = "audit.jsonl"
_TAIL = 64 * 1024  # bytes read from the end of the file to find its last entry


def archive_name(moment: datetime) -> str:
    """The name the trail of `moment`'s month (UTC) is kept under once that month is over."""
    moment = moment.astimezone(UTC)
    return f"audit-{moment.year:04d}-{moment.month:02d}.jsonl"


@dataclass(frozen=True, slots=True)
class _Entry:
    group: Group
    decision: Decision

    def fields(self) -> dict[str, Any]:
        backup = self.decision.backup
        return {
            "resource": backup.resource,
            "id": backup.id,
            "server_id": backup.server_id,
            "server_hostname": backup.server_hostname or self.group.server_hostname,
            "name": backup.name,
            "created_at": backup.created_at.isoformat(),
            "size": backup.size,
            "policy": self.group.policy,
            "reasons": list(self.decision.reasons),
        }


class AuditTrail:
    """The audit file of one state_dir, written by one pass (`run_id`); times from `clock`."""

    def __init__(self, state_dir: Path, *, run_id: str, clock: Callable[[], datetime]) -> None:
        self.path = state_dir / AUDIT_FILE
        self.run_id = run_id
        self._clock = clock
        self._month: tuple[int, int] | None = None  # of the file's last entry, once known

    def wave(self, deletions: Sequence[tuple[Group, Decision]]) -> AuditWave:
        """Write and fsync the intents of `deletions`; the wave then takes their outcomes.

        Raises OSError when the file cannot be written: then none of them may be deleted.
        """
        now = self._clock()
        self._rotate(now)
        created = not self.path.exists()
        stream = self.path.open("a", encoding="utf-8")
        try:
            if created:
                sync_directory(self.path.parent)
            entries = [_Entry(group, decision) for group, decision in deletions]
            stream.writelines(self._line("intent", now, entry.fields()) for entry in entries)
            _sync(stream)
        except BaseException:
            stream.close()
            raise
        self._month = (now.astimezone(UTC).year, now.astimezone(UTC).month)
        return AuditWave(self, stream, entries)

    def _line(self, event: str, moment: datetime, fields: dict[str, Any]) -> str:
        record = {"event": event, "run_id": self.run_id, "time": moment.isoformat(), **fields}
        return json.dumps(record, ensure_ascii=False) + "\n"

    def _rotate(self, now: datetime) -> None:
        """Keep last month's entries as audit-YYYY-MM.jsonl before this month's first write."""
        month = (now.astimezone(UTC).year, now.astimezone(UTC).month)
        if self._month == month:
            return
        last = self._last_entry_time()
        if last is None or (last.year, last.month) == month:
            self._month = month if last is not None else None
            return
        target = _free_name(self.path.with_name(archive_name(last)))
        os.replace(self.path, target)
        sync_directory(self.path.parent)
        self._month = None

    def _last_entry_time(self) -> datetime | None:
        """When the file's last entry was written (UTC); None when there is no file yet."""
        try:
            with self.path.open("rb") as stream:
                size = stream.seek(0, os.SEEK_END)
                stream.seek(max(0, size - _TAIL))
                tail = stream.read()
                modified = os.fstat(stream.fileno()).st_mtime
        except FileNotFoundError:
            return None
        for line in reversed(tail.splitlines()):
            try:
                moment = datetime.fromisoformat(json.loads(line)["time"])
            except (ValueError, KeyError, TypeError):
                continue  # a line cut by a crash, or the start of a long line
            return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
        if size == 0:
            return None
        return datetime.fromtimestamp(modified, UTC)  # nothing readable: the file's own time


class AuditWave:
    """One wave's open trail: `record` each outcome (any thread); closing fsyncs them and
    records `not_attempted` for every intent that got no outcome."""

    def __init__(self, trail: AuditTrail, stream: TextIO, entries: list[_Entry]) -> None:
        self._trail = trail
        self._stream = stream
        self._pending = {(e.decision.backup.resource, e.decision.backup.id): e for e in entries}
        self._lock = threading.Lock()

    def record(
        self, decision: Decision, outcome: str, status: int | None, message: str | None
    ) -> None:
        """Append the outcome line of `decision` (written through to the OS, fsync'd at close)."""
        key = (decision.backup.resource, decision.backup.id)
        with self._lock:
            entry = self._pending.pop(key)
            fields = {**entry.fields(), "outcome": outcome, "status": status, "message": message}
            self._stream.write(self._trail._line("outcome", self._trail._clock(), fields))
            self._stream.flush()

    def close(self, reason: str = "not attempted") -> None:
        """Record `reason` as the `not_attempted` outcome of what got none; fsync; close."""
        with self._lock:
            if self._stream.closed:
                return
            try:
                for entry in list(self._pending.values()):
                    fields = {
                        **entry.fields(),
                        "outcome": "not_attempted",
                        "status": None,
                        "message": reason,
                    }
                    self._stream.write(self._trail._line("outcome", self._trail._clock(), fields))
                self._pending.clear()
                _sync(self._stream)
            finally:
                self._stream.close()

    def __enter__(self) -> AuditWave:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def _sync(stream: TextIO) -> None:
    stream.flush()
    os.fsync(stream.fileno())


def _free_name(path: Path) -> Path:
    """`path`, or `audit-YYYY-MM.N.jsonl` when that month was kept already (a clock set back)."""
    candidate, number = path, 1
    while candidate.exists():
        candidate = path.with_name(f"{path.stem}.{number}{path.suffix}")
        number += 1
    return candidate
