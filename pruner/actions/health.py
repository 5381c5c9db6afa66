"""`pruner health`: exit 0 while the daemon's heartbeat is fresh and no pass of it runs past its
deadline (`safety.max_pass_duration`), 1 with the reason otherwise.

It answers container and orchestrator probes, which give it a few seconds: it reads only
`state_dir` from the config, with the config's own strict YAML reader but without validating
the rest (the daemon did that when it started), and imports nothing heavier than PyYAML.
Every failure, an unreadable config included, is exit 1: Docker reads 1 as unhealthy and
reserves 2.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path

from pruner.actions.common import config_path
from pruner.config import _yaml
from pruner.config.defaults import DEFAULT_STATE_DIR
from pruner.errors import EXIT_OK
from pruner.ops.heartbeat import check

__all__ = ["EXIT_UNHEALTHY", "main"]

EXIT_UNHEALTHY = 1


class _NoStateDir(Exception):
    """The config does not say where state_dir is; the message says why."""


def main(args: argparse.Namespace) -> int:
    now = datetime.now(UTC)
    try:
        state_dir = _state_dir(config_path(args))
    except _NoStateDir as error:
        print(f"pruner: unhealthy: {error}", file=sys.stderr)
        return EXIT_UNHEALTHY
    health = check(state_dir, now)
    if not health.ok:
        print(f"pruner: unhealthy: {health.reason}", file=sys.stderr)
        return EXIT_UNHEALTHY
    print(f"healthy: {health.reason}")
    return EXIT_OK


def _state_dir(config: Path) -> Path:
    try:
        text = config.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) else "not UTF-8 text"
        raise _NoStateDir(
            f"cannot read the config {config} ({reason}) to find state_dir: point --config or "
            "$PRUNER_CONFIG at the daemon's config"
        ) from None
    document = _document(config, text)
    value = document.data.get("state_dir")
    if value is None:
        return DEFAULT_STATE_DIR
    if not isinstance(value, str) or not value:
        raise _NoStateDir(
            f"{config}:{document.line_of(('state_dir',))}: state_dir: must be a directory path"
        )
    return Path(value)


def _document(config: Path, text: str) -> _yaml.Document:
    """The config as YAML; problems elsewhere in it do not hide a readable state_dir."""
    try:
        return _yaml.load(text)
    except _yaml.YamlError as error:
        relevant = [p for p in error.problems if p.path[:1] in ((), ("state_dir",))]
        if error.document is not None and not relevant:
            return error.document
        first = (relevant or list(error.problems))[0]
        where = f"{config}:{first.line}" if first.line is not None else str(config)
        key = f" {_yaml.format_path(first.path)}:" if first.path else ""
        raise _NoStateDir(
            f"{where}:{key} {first.message} (`pruner check-config` lists every problem)"
        ) from None
