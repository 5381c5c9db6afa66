"""What the actions share: finding the config, logging its warnings, the hooks it asks for.

Light to import: `pruner health` uses `config_path`, and must not load pydantic, structlog or
requests; what needs them is imported where it is used.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pruner.config.schema import Config
    from pruner.passes.hooks import PassHooks

__all__ = [
    "DEFAULT_CONFIG",
    "PASS_REPORT_EVENTS",
    "config_path",
    "for_config",
    "leave_to_report_on_terminal",
    "load_and_warn",
]

DEFAULT_CONFIG = Path("/etc/pruner/config.yaml")
# What `pruner run` and `pruner apply` print on stdout: the guards that held a server back, each
# failed deletion, the summary (and the dry run it was, and the deleted backups' counts).
PASS_REPORT_EVENTS = frozenset(
    {
        "guard.*",
        "backup.stale",
        "backup.deleted",
        "backup.delete_failed",
        "pass.dry_run",
        "pass.summary",
    }
)


def config_path(args: argparse.Namespace) -> Path:
    """--config, else $PRUNER_CONFIG, else /etc/pruner/config.yaml."""
    if args.config is not None:
        return Path(args.config)
    from_environment = os.environ.get("PRUNER_CONFIG")
    return Path(from_environment) if from_environment else DEFAULT_CONFIG


def load_and_warn(args: argparse.Namespace) -> Config:
    """Load the config (ConfigError on any problem) and log its warnings."""
    # Imported here: `pruner health` uses config_path and must not load pydantic and structlog.
    import structlog  # noqa: PLC0415

    from pruner.config.load import load_config  # noqa: PLC0415

    config = load_config(config_path(args))
    log = structlog.get_logger("pruner")
    for warning in config.warnings:
        log.warning("config.warning", message=warning)
    return config


def leave_to_report_on_terminal(events: frozenset[str]) -> None:
    """When a person reads stdout at a terminal, the report there carries `events`: the log
    (key=value for a person) leaves them out, so each message shows once. JSON logs keep them."""
    if sys.stdout.isatty():
        from pruner.ops.logging import leave_to_report  # noqa: PLC0415 (structlog)

        leave_to_report(events)


def for_config(config: Config, extra: Sequence[PassHooks] = ()) -> tuple[PassHooks, ...]:
    """The hooks `config` asks for (health pings when notify.urls is set, webhooks when
    notify.webhooks is), then `extra` (e.g. the daemon's metrics). Pass the result to
    run_pass(hooks=...). The one place that knows which hooks a config asks for, for `pruner
    run` and the daemon alike."""
    from pruner.ops.notify import Notifier  # noqa: PLC0415 (requests: not for probes)
    from pruner.ops.webhook import Webhooks  # noqa: PLC0415

    hooks: list[PassHooks] = []
    run_cap = config.safety.max_deletions_per_run
    if config.notify.urls:
        hooks.append(Notifier(config.notify, max_deletions_per_run=run_cap))
    if config.notify.webhooks:
        hooks.append(Webhooks(config.notify, max_deletions_per_run=run_cap))
    return (*hooks, *extra)
