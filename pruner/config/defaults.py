"""Defaults needed where the schema is too heavy to import: `pruner health` reads only
`state_dir`, and must not load pydantic to know where it is when the file does not say."""

from __future__ import annotations

from pathlib import Path

__all__ = ["DEFAULT_STATE_DIR"]

DEFAULT_STATE_DIR = Path("/var/lib/pruner")
