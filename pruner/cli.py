"""Command line: argument parsing and exit codes only."""

from __future__ import annotations


def main(argv: list[str] | None = None) -> int:
    raise SystemExit("pruner: not yet implemented")
