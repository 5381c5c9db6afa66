"""Files in state_dir, written so that a reader never sees half of one (SPEC §6).

A crash or power loss leaves either the old file or the new one: the new content goes to a temp
file in the same directory, is flushed to disk, renamed over the old one, and the directory
entry is flushed too.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

__all__ = ["LAST_PLAN", "sync_directory", "write_json_atomically"]

LAST_PLAN = "last-plan.json"

Writer = Callable[[TextIO], None]


def write_json_atomically(path: Path, document: object | Writer) -> None:
    """Replace `path` with `document` as JSON, or with what `document(stream)` writes.

    Raises OSError when the directory cannot be written; the old file is then left as it was.
    """
    fd, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
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


def sync_directory(directory: Path) -> None:
    """Make a rename or a new file in `directory` durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
