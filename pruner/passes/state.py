"""Files in state_dir, written so that a reader never sees half of one.

A crash or power loss leaves either the old file or the new one: the new content goes to a temp
file in the same directory, is flushed to disk, renamed over the old one, and the directory
entry is flushed too. What a kill -9 or a full disk leaves behind anyway (a temp file, a JSON
lines file whose last line was cut short) is dealt with when the next pass starts
(`recover_state_dir`).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:  # `pruner health` imports this module: it must not load structlog
    from structlog.typing import FilteringBoundLogger

__all__ = [
    "AUDIT_FILE",
    "LAST_PLAN",
    "PENDING_FILE",
    "CutLine",
    "ends_cut",
    "recover_state_dir",
    "remove_temp_files",
    "set_aside_cut_line",
    "sync_directory",
    "write_json_atomically",
]

LAST_PLAN = "last-plan.json"
AUDIT_FILE = "audit.jsonl"
PENDING_FILE = "pending.json"  # two-phase deletion: when a pass first planned each deletion

Writer = Callable[[TextIO], None]
Write = Callable[[int, bytes], int]  # os.write's shape

_CHUNK = 64 * 1024
_SHOWN = 200  # characters of a cut line quoted in the log


def write_json_atomically(path: Path, document: object | Writer) -> None:
    """Replace `path` with `document` as JSON, or with what `document(stream)` writes.

    Raises OSError when the directory cannot be written; the old file is then left as it was.
    """
    fd, temp_name = tempfile.mkstemp(dir=path.parent, prefix=_temp_prefix(path), suffix=".tmp")
    temp = Path(temp_name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as stream:
            if callable(document):
                document(stream)
            else:
                stream.write(_json_text(document))
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    sync_directory(path.parent)


def _json_text(document: object) -> str:
    """`document` as JSON, each entry of a list at its top on a line of its own: a plan's
    decisions read and grep well, and json's C encoder writes each one (indenting would take
    its pure-Python encoder, ten times slower on a large plan)."""
    if not isinstance(document, dict):
        return json.dumps(document) + "\n"
    fields = []
    for key, value in document.items():
        if isinstance(value, list) and value:
            entries = ",\n  ".join(map(json.dumps, value))
            fields.append(f" {json.dumps(key)}: [\n  {entries}\n ]")
        else:
            fields.append(f" {json.dumps(key)}: {json.dumps(value)}")
    return "{\n" + ",\n".join(fields) + "\n}\n"


def remove_temp_files(path: Path) -> list[tuple[Path, int]]:
    """Remove the temp files write_json_atomically(path) left when it was killed mid-write;
    the removed ones, with their sizes. Call it only when no such write can be running (for
    last-plan.json: holding the pass lock). Raises OSError when one cannot be removed."""
    removed = []
    for temp in sorted(path.parent.glob(f"{_temp_prefix(path)}*.tmp")):
        try:
            size = temp.stat().st_size
            temp.unlink()
        except FileNotFoundError:
            continue
        removed.append((temp, size))
    return removed


def _temp_prefix(path: Path) -> str:
    return f".{path.name}."


@dataclass(frozen=True, slots=True)
class CutLine:
    """What followed the last newline of a JSON lines file: a line whose write was cut short."""

    path: Path  # the file it was cut from, which now ends with its last complete line
    kept_as: Path  # where its bytes were moved
    size: int  # bytes
    text: str  # its start, for the log


def set_aside_cut_line(path: Path, now: datetime, *, write: Write = os.write) -> CutLine | None:
    """When `path` does not end with a newline, move what follows its last one to
    `<name>.cut-<now, UTC>` (0600) and cut `path` back to its last complete line; None when
    there is nothing to do (no file, an empty one, or one that ends with a newline).

    The bytes are on disk in their new file before they leave `path`. Raises OSError when
    that cannot be done: `path` is then left as it was."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)  # a whole file needs no write access
    except FileNotFoundError:
        return None
    try:
        size = os.fstat(fd).st_size
        if not ends_cut(fd, size):
            return None
        start = _end_of_last_line(fd, size)
        text = os.pread(fd, min(size - start, _SHOWN * 4), start)  # UTF-8: 4 bytes a character
        kept_as = _keep(fd, start, size, path.with_name(f"{path.name}.cut-{_stamp(now)}"), write)
        os.truncate(path, start)
        os.fsync(fd)
    finally:
        os.close(fd)
    shown = text.decode("utf-8", errors="replace")[:_SHOWN]
    return CutLine(path=path, kept_as=kept_as, size=size - start, text=shown)


def ends_cut(fd: int, size: int) -> bool:
    """Whether the file of `size` bytes open at `fd` ends inside a line: a write was cut."""
    return size > 0 and os.pread(fd, 1, size - 1) != b"\n"


def _end_of_last_line(fd: int, size: int) -> int:
    """The offset just after the last newline before `size`; 0 when there is none."""
    end = size
    while end > 0:
        begin = max(0, end - _CHUNK)
        found = os.pread(fd, end - begin, begin).rfind(b"\n")
        if found >= 0:
            return begin + found + 1
        end = begin
    return 0


def _keep(fd: int, start: int, end: int, target: Path, write: Write) -> Path:
    """Copy bytes start..end of `fd` to a new file named like `target`, on disk; its path."""
    out, kept_as = _create_new(target)
    try:
        offset = start
        while offset < end:
            chunk = os.pread(fd, min(_CHUNK, end - offset), offset)
            if not chunk:
                break  # the file got shorter: nothing more to keep
            offset += len(chunk)
            while chunk:
                chunk = chunk[write(out, chunk) :]
        os.fsync(out)
    except BaseException:
        os.close(out)
        kept_as.unlink(missing_ok=True)
        raise
    os.close(out)
    sync_directory(kept_as.parent)
    return kept_as


def _create_new(target: Path) -> tuple[int, Path]:
    """Open `target` (or `target.1`, `.2`… when taken) as a new private file."""
    candidate, number = target, 1
    while True:
        try:
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
            return os.open(candidate, flags, 0o600), candidate
        except FileExistsError:
            candidate = target.with_name(f"{target.name}.{number}")
            number += 1


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def recover_state_dir(state_dir: Path, *, now: datetime, log: FilteringBoundLogger) -> None:
    """Clear what a kill -9 or a full disk left in state_dir before a pass writes there: temp
    files of last-plan.json and pending.json are removed, a cut last line of the audit trail is
    set aside. Call it holding the pass lock. Never raises: what it cannot do is logged (and the
    audit trail refuses to add a line to a cut one, so nothing is deleted unrecorded meanwhile)."""
    for name in (LAST_PLAN, PENDING_FILE):
        _remove_temp_files(state_dir / name, log)
    _recover_audit_trail(state_dir / AUDIT_FILE, now, log)


def _remove_temp_files(path: Path, log: FilteringBoundLogger) -> None:
    try:
        for temp, size in remove_temp_files(path):
            log.info(
                "state.temp_removed",
                path=str(temp),
                size=size,
                message=f"removed a temp file of a pass killed while writing {path.name}",
            )
    except OSError as error:
        log.warning(
            "state.temp_not_removed",
            path=str(path.parent),
            message=f"{error.strerror or error}: remove .{path.name}.*.tmp files by hand",
        )


def _recover_audit_trail(path: Path, now: datetime, log: FilteringBoundLogger) -> None:
    try:
        cut = set_aside_cut_line(path, now)
    except OSError as error:
        log.error(
            "audit.cut_line",
            path=str(path),
            message=f"the last line of {path} was cut short and cannot be moved aside "
            f"({error.strerror or error}): no deletion is made until it is; free space in "
            "state_dir",
        )
        return
    if cut is not None:
        log.warning(
            "audit.cut_line",
            path=str(path),
            kept_as=str(cut.kept_as),
            size=cut.size,
            text=cut.text,
            message=f"the last line of {path} was cut short (a crash or a full disk while it "
            f"was written): its {cut.size} bytes were moved to {cut.kept_as}; the trail goes "
            "on after its last complete line",
        )


def sync_directory(directory: Path) -> None:
    """Make a rename or a new file in `directory` durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
