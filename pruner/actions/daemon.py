"""`pruner daemon [--dry-run]`: a pass on every schedule tick until SIGTERM/SIGINT; SIGHUP
reloads the config and the token.

Everything that can be checked before the first tick is checked before the scheduler starts, so
a mistake exits 2 at once instead of failing every pass: the config (with a `schedule`), the API
token, a usable state_dir, and the metrics endpoint's address (`metrics.listen`). The API
itself is not contacted at start. A reload checks the same (but the address, which only a
restart changes), and a mistake then keeps the config in use instead of ending the daemon.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import structlog
from prometheus_client import CollectorRegistry
from prometheus_client.process_collector import ProcessCollector

from pruner.actions.common import for_config, load_and_warn
from pruner.config.schema import Config
from pruner.errors import UserError
from pruner.ops.daemon import Daemon, ReloadWatcher, Setup
from pruner.ops.heartbeat import Heartbeat
from pruner.ops.metrics import MetricsServer, PassMetrics, ReloadMetrics, new_registry
from pruner.ops.sdnotify import Notifier
from pruner.ops.signals import stop_on_signals
from pruner.passes.hooks import PassHooks
from pruner.passes.lock import LockHeld, PassLock
from pruner.vpsbg.errors import TokenMissing
from pruner.vpsbg.token import Secret, load_token

__all__ = ["main"]


def main(args: argparse.Namespace) -> int:
    config = load_and_warn(args)
    token = _usable(config)
    _quiet_scheduler_logs()
    registry = new_registry()
    metrics = _metrics(config, registry)
    watching: tuple[PassHooks, ...] = (metrics,) if metrics is not None else ()
    setup = _setup(config, token, watching)
    reloads: tuple[ReloadWatcher, ...] = ()
    if metrics is not None:
        reloads = (metrics, ReloadMetrics(registry, clock=_wall_clock))
    daemon = Daemon(
        config,
        dry_run=args.dry_run,
        token=token,
        clock=_wall_clock,
        heartbeat=setup.heartbeat,
        notifier=Notifier.from_environ(os.environ),
        hooks=setup.hooks,
        on_skipped=(metrics,) if metrics is not None else (),
        reload=partial(_reload, args, watching),
        on_reload=reloads,
    )
    with (
        _metrics_endpoint(config, registry),
        stop_on_signals(daemon.request_stop, on_reload=daemon.request_reload),
    ):
        return daemon.run()


def _usable(config: Config) -> Secret:
    """The token, once the config is known to suit the daemon: at start and at each reload.
    Raises UserError: no schedule, no usable token, or an unusable state_dir."""
    _require_schedule(config)
    token = _token(config)
    _check_state_dir(config.state_dir)
    return token


def _reload(args: argparse.Namespace, watching: tuple[PassHooks, ...]) -> Setup:
    """What the daemon runs with, read afresh (the daemon's `reload`): ConfigError or UserError
    when it cannot be used, and the daemon keeps what it has."""
    config = load_and_warn(args)
    return _setup(config, _usable(config), watching)


def _setup(config: Config, token: Secret, watching: tuple[PassHooks, ...]) -> Setup:
    return Setup(
        config,
        token,
        for_config(config, extra=watching),
        Heartbeat(config.state_dir).beat,
    )


def _metrics(config: Config, registry: CollectorRegistry) -> PassMetrics | None:
    if config.metrics.listen is None:
        return None
    ProcessCollector(registry=registry)  # memory, CPU, open files: a daemon's vital signs
    return PassMetrics(config, registry, clock=_wall_clock)


@contextlib.contextmanager
def _metrics_endpoint(config: Config, registry: CollectorRegistry) -> Iterator[None]:
    """Serve /metrics on metrics.listen while inside; a port that cannot be bound is exit 2."""
    if config.metrics.listen is None:
        yield
        return
    host, port = config.metrics.listen
    try:
        server = MetricsServer(registry, host, port)
    except OSError as error:
        shown = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        raise UserError(
            f"{config.source}: metrics.listen: cannot listen on {shown}: "
            f"{error.strerror or error}: choose a free address, or set metrics.listen to null "
            "to turn the endpoint off"
        ) from None
    bound_host, bound_port = server.address
    structlog.get_logger("pruner.metrics").info(
        "metrics.listen", host=bound_host, port=bound_port, url=server.url
    )
    try:
        yield
    finally:
        server.stop()


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
