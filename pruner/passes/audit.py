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

On a full disk the file stays valid JSON lines: each line reaches it whole or not at all (a
write cut short is taken back out before the error is raised). A wave whose intents cannot all
be written sends none of its DELETEs: the intents that did reach the file get their
`not_attempted` outcome, and when even those cannot be written, the wave's lines are taken back
out (none of them was acted on); what still could not be recorded is named in the error. A line
cut by a crash is set aside when the next pass starts (pruner.passes.state.recover_state_dir); until
then the trail refuses to write after it.

The file is 0600, like last-plan.json. The first write in a new month (UTC) renames it to
`audit-YYYY-MM.jsonl`, the month of its last entry, and starts a new one; old months are kept
(pruner never deletes them). Dry runs and `pruner plan` add nothing to it.
"""

from __future__ import annotations

import json
import os
import stat
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from pruner.engine.models import Decision, Group
from pruner.engine.reasons import texts
from pruner.passes.state import AUDIT_FILE, Write, ends_cut, sync_directory

__all__ = ["AUDIT_FILE", "AuditTrail", "AuditWave", "AuditWriteError", "archive_name"]

_NOT_WRITTEN = "not attempted: the audit trail cannot be written"
_CUT = "its last line is cut short; the next pass sets it aside"
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
            "reasons": texts(self.decision.reasons),
        }

    @property
    def name(self) -> str:
        """`backups/40780`: the backup as its API path names it."""
        return f"{self.decision.backup.resource}/{self.decision.backup.id}"


class AuditWriteError(Exception):
    """The trail could not be written (`reason`, as the OS said it). `unrecorded` names the
    backups whose intent stays in the file without an outcome; `withdrawn` those whose intent
    was taken back out because its outcome could not follow (their DELETEs were not sent)."""

    def __init__(
        self,
        path: Path,
        reason: str,
        *,
        unrecorded: Iterable[_Entry] = (),
        withdrawn: Iterable[_Entry] = (),
    ) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason
        self.unrecorded = tuple(entry.name for entry in unrecorded)
        self.withdrawn = tuple(entry.name for entry in withdrawn)


class AuditTrail:
    """The audit file of one state_dir, written by one pass (`run_id`); times from `clock`.

    `write` is os.write, or a stand-in for a full disk in tests."""

    def __init__(
        self,
        state_dir: Path,
        *,
        run_id: str,
        clock: Callable[[], datetime],
        write: Write = os.write,
    ) -> None:
        self.path = state_dir / AUDIT_FILE
        self.run_id = run_id
        self._clock = clock
        self._write = write
        self._month: tuple[int, int] | None = None  # of the file's last entry, once known

    def wave(self, deletions: Sequence[tuple[Group, Decision]]) -> AuditWave:
        """Write and fsync the intents of `deletions`; the wave then takes their outcomes.

        Raises AuditWriteError when they cannot all be written: then none of them may be
        deleted, and the intents that were written are closed (see the module doc).
        """
        now = self._clock()
        entries = [_Entry(group, decision) for group, decision in deletions]
        try:
            self._rotate(now)
            journal = _Journal(self.path, self._write)
        except OSError as error:
            raise self._error(error) from None
        written: list[_Entry] = []
        try:
            for entry in entries:
                journal.append(self._line("intent", now, entry.fields()))
                written.append(entry)
            journal.sync()
        except OSError as error:
            raise self._abandon(journal, written, error) from None
        except BaseException:
            journal.close()
            raise
        self._month = (now.astimezone(UTC).year, now.astimezone(UTC).month)
        return AuditWave(self, journal, entries)

    def _abandon(self, journal: _Journal, written: list[_Entry], error: OSError) -> AuditWriteError:
        """Close a wave none of whose deletions will be sent: its intents in the file get their
        `not_attempted` outcome or, when even that fails, are taken back out."""
        try:
            try:
                for entry in written:
                    journal.append(self._outcome(entry, "not_attempted", None, _NOT_WRITTEN))
                journal.sync()
            except OSError:
                return self._withdraw(journal, written, error)
            return self._error(error)
        finally:
            journal.close()

    def _withdraw(
        self, journal: _Journal, written: list[_Entry], error: OSError
    ) -> AuditWriteError:
        """Take the wave's lines back out: none of them was acted on."""
        try:
            journal.truncate(journal.opened_at)
            journal.sync()
        except OSError:
            return self._error(error, unrecorded=written)
        return self._error(error, withdrawn=written)

    def _error(
        self,
        error: OSError,
        *,
        unrecorded: Iterable[_Entry] = (),
        withdrawn: Iterable[_Entry] = (),
    ) -> AuditWriteError:
        reason = error.strerror or str(error)
        return AuditWriteError(self.path, reason, unrecorded=unrecorded, withdrawn=withdrawn)

    def _line(self, event: str, moment: datetime, fields: dict[str, Any]) -> str:
        record = {"event": event, "run_id": self.run_id, "time": moment.isoformat(), **fields}
        return json.dumps(record, ensure_ascii=False) + "\n"

    def _outcome(self, entry: _Entry, outcome: str, status: int | None, message: str | None) -> str:
        fields = {**entry.fields(), "outcome": outcome, "status": status, "message": message}
        return self._line("outcome", self._clock(), fields)

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

    def __init__(self, trail: AuditTrail, journal: _Journal, entries: list[_Entry]) -> None:
        self._trail = trail
        self._journal = journal
        self._pending = {(e.decision.backup.resource, e.decision.backup.id): e for e in entries}
        self._lock = threading.Lock()

    def record(
        self, decision: Decision, outcome: str, status: int | None, message: str | None
    ) -> None:
        """Append the outcome line of `decision` (fsync'd at close).

        Raises AuditWriteError when it cannot be written: the intent then stays without one."""
        key = (decision.backup.resource, decision.backup.id)
        with self._lock:
            entry = self._pending.pop(key)
            try:
                self._journal.append(self._trail._outcome(entry, outcome, status, message))
            except OSError as error:
                raise self._trail._error(error, unrecorded=[entry]) from None

    def close(self, reason: str = "not attempted") -> None:
        """Record `reason` as the `not_attempted` outcome of what got none; fsync; close.

        Raises AuditWriteError naming the intents whose outcome could not be written."""
        with self._lock:
            if self._journal.closed:
                return
            try:
                for key, entry in list(self._pending.items()):
                    self._journal.append(self._trail._outcome(entry, "not_attempted", None, reason))
                    del self._pending[key]
                self._journal.sync()
            except OSError as error:
                unrecorded = list(self._pending.values())
                raise self._trail._error(error, unrecorded=unrecorded) from None
            finally:
                self._journal.close()

    def __enter__(self) -> AuditWave:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


class _Journal:
    """The trail's file, open for appending: every line reaches it whole or not at all."""

    def __init__(self, path: Path, write: Write) -> None:
        created = not path.exists()
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            status = os.fstat(fd)
            if ends_cut(fd, status.st_size):
                raise OSError(_CUT)
            if stat.S_IMODE(status.st_mode) & 0o077:
                os.fchmod(fd, 0o600)  # written by an older pruner: private from now on
            if created:
                sync_directory(path.parent)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        self._write = write
        self.opened_at = self.size = status.st_size  # the pass lock: nobody else appends
        self._cut = False  # a line cut short could not be taken back out
        self.closed = False

    def append(self, line: str) -> None:
        """Raises OSError when `line` cannot be written; the file then ends where it did."""
        if self._cut:
            raise OSError(_CUT)
        data, start = line.encode("utf-8"), self.size
        try:
            while data:
                written = self._write(self._fd, data)
                self.size += written
                data = data[written:]
        except OSError:
            try:
                self.truncate(start)
            except OSError:
                self._cut = True
            raise

    def truncate(self, size: int) -> None:
        os.ftruncate(self._fd, size)
        self.size = size

    def sync(self) -> None:
        os.fsync(self._fd)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            os.close(self._fd)


def _free_name(path: Path) -> Path:
    """`path`, or `audit-YYYY-MM.N.jsonl` when that month was kept already (a clock set back)."""
    candidate, number = path, 1
    while candidate.exists():
        candidate = path.with_name(f"{path.stem}.{number}{path.suffix}")
        number += 1
    return candidate
