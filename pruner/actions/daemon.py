"""`pruner daemon [--dry-run]`: a pass on every schedule tick until SIGTERM/SIGINT.

Everything that can be checked before the first tick is checked before the scheduler starts, so
a mistake exits 2 at once instead of failing every pass: the config (with a `schedule`), the API
token, and a usable state_dir. The API itself is not contacted at start.
"""

from __future__ import annotations

import argparse
import logging
import os
from datetime import UTC, datetime
from pathlib import Path

from pruner.actions.common import load_and_warn
from pruner.api import Secret, TokenMissing, load_token
from pruner.config import Config
from pruner.daemon import Daemon, stop_on_signals
from pruner.errors import UserError
from pruner.health import Heartbeat
from pruner.lock import LockHeld, PassLock
from pruner.sdnotify import Notifier

__all__ = ["main"]


def main(args: argparse.Namespace) -> int:
    config = load_and_warn(args)
    _require_schedule(config)
    token = _token(config)
    _check_state_dir(config.state_dir)
    _quiet_scheduler_logs()
    daemon = Daemon(
        config,
        dry_run=args.dry_run,
        token=token,
        clock=_wall_clock,
        heartbeat=Heartbeat(config.state_dir).beat,
        notifier=Notifier.from_environ(os.environ),
    )
    with stop_on_signals(daemon.request_stop):
        return daemon.run()


def _wall_clock() -> datetime:
    return datetime.now(UTC)


def _require_schedule(config: Config) -> None:
    if config.schedule is None:
        raise UserError(
            f"{config.source}: schedule: `pruner daemon` needs a schedule and the config has "
            'none: add one, e.g. schedule: {cron: "30 3 * * *"} or schedule: {interval: 6h} '
            "(or use `pruner run` from a systemd timer or a CronJob)"
        )


def _token(config: Config) -> Secret:
    try:
        return load_token(config.api, os.environ)
    except TokenMissing as error:
        raise UserError(error.message) from None


def _check_state_dir(state_dir: Path) -> None:
    """Take and release the pass lock once: an unusable state_dir is a StateDirError (exit 2)
    now, not a failure of every pass. A pass holding the lock shows the directory works."""
    try:
        with PassLock(state_dir):
            pass
    except LockHeld:
        pass


def _quiet_scheduler_logs() -> None:
    """APScheduler's INFO lines ("Running job", "executed successfully") repeat daemon.pass in
    another shape; its warnings and errors still show. --log-level debug shows everything."""
    scheduler_log = logging.getLogger("apscheduler")
    if scheduler_log.getEffectiveLevel() > logging.DEBUG:
        scheduler_log.setLevel(logging.WARNING)
