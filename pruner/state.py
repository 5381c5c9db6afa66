"""Files in state_dir, written so that a reader never sees half of one.

A crash or power loss leaves either the old file or the new one: the new content goes to a temp
file in the same directory, is flushed to disk, renamed over the old one, and the directory
entry is flushed too. The temp files of a writer killed mid-write are removed when the next pass
starts (`recover_state_dir`).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:  # `pruner health` imports this module: it must not load structlog
    from structlog.typing import FilteringBoundLogger

__all__ = [
    "LAST_PLAN",
    "recover_state_dir",
    "remove_temp_files",
    "sync_directory",
    "write_json_atomically",
]

LAST_PLAN = "last-plan.json"

Writer = Callable[[TextIO], None]


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
                json.dump(document, stream, indent=1)
                stream.write("\n")
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    sync_directory(path.parent)


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


def recover_state_dir(state_dir: Path, *, now: datetime, log: FilteringBoundLogger) -> None:
    """Clear what a kill -9 left in state_dir before a pass writes there: temp files of
    last-plan.json are removed. Call it holding the pass lock. Never raises: what it cannot do
    is logged."""
    try:
        for temp, size in remove_temp_files(state_dir / LAST_PLAN):
            log.info(
                "state.temp_removed",
                path=str(temp),
                size=size,
                message="removed a temp file of a pass killed while writing its plan",
            )
    except OSError as error:
        log.warning(
            "state.temp_not_removed",
            path=str(state_dir),
            message=f"{error.strerror or error}: remove .{LAST_PLAN}.*.tmp files by hand",
        )


def sync_directory(directory: Path) -> None:
    """Make a rename or a new file in `directory` durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
