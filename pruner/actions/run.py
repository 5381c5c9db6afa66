"""`pruner run [--dry-run] [--allow-large-deletions] [--server ID|GLOB]… [--policy NAME]`: one
pass now (of the whole account, or of the servers in scope), and a short report.

The report on stdout says what was deleted (or would be) per server, what failed and why, and
the summary; every detail is in the logs and in state_dir/last-plan.json. SIGTERM or SIGINT
lets the pass wind down (requests on the wire finish, nothing new starts), record what it did,
and exit 1; a second one only says what it still waits for.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import structlog

from pruner.actions.common import (
    PASS_REPORT_EVENTS,
    for_config,
    leave_to_report_on_terminal,
    load_and_warn,
)
from pruner.actions.progress import terminal_progress
from pruner.actions.scoping import scope_of
from pruner.config.schema import Config
from pruner.engine.models import Group
from pruner.engine.results import PassResult
from pruner.engine.review import Review
from pruner.engine.scope import Scope
from pruner.ops import signals
from pruner.passes.hooks import PassHooks
from pruner.passes.one_pass import run_pass
from pruner.report.pass_summary import PassSummary, group_outcome
from pruner.report.text import wrapped

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

__all__ = ["main", "pass_and_report", "stop_on_signals", "textfile_metrics", "write_pass_report"]

_STOPPING = (
    "stopping: the requests on the wire finish, no new one starts; then the pass records what "
    "it did and exits 1"
)
_STILL_STOPPING = (
    "still stopping: waiting for the requests on the wire to finish (each within api.timeout) "
    "so that the pass can record their outcome"
)


def main(args: argparse.Namespace) -> int:
    leave_to_report_on_terminal(PASS_REPORT_EVENTS)
    config = load_and_warn(args)  # exit 2 before any API call
    scope = scope_of(args, config)
    result = pass_and_report(args, config, scope, allow_large_deletions=args.allow_large_deletions)
    return result.exit_code


def pass_and_report(
    args: argparse.Namespace,
    config: Config,
    scope: Scope | None,
    *,
    allow_large_deletions: bool = False,
    review: Review | None = None,
    then: Callable[[PassResult], None] | None = None,
) -> PassResult:
    """One pass as `run` and `apply` make it: a signal stops it, the metrics textfile and the
    progress bars follow it, and its report goes to stdout, followed by `then`'s (still under
    the signal handling: a Ctrl-C while it prints ends the pass's way)."""
    stop = threading.Event()
    with stop_on_signals(stop):
        with textfile_metrics(config, scope) as watching, terminal_progress(args) as progress:
            result = run_pass(
                config,
                dry_run=args.dry_run,
                allow_large_deletions=allow_large_deletions,
                stop=stop,
                hooks=for_config(config, extra=watching),
                review=review,
                scope=scope,
                progress=progress,
            )
        cause = "dry_run: true in the config" if config.dry_run else "--dry-run"
        write_pass_report(result, sys.stdout, dry_run_cause=cause)
        if then is not None:
            then(result)
    return result


@contextmanager
def textfile_metrics(config: Config, scope: Scope | None) -> Iterator[tuple[PassHooks, ...]]:
    """With metrics.textfile: the metrics hook while inside, and the file written after the
    pass (also when it raised after starting). A file that cannot be written is logged: the
    pass's outcome stands.

    A scoped pass leaves the file as the last whole pass wrote it: replaced by its figures, the
    account's gauges (stale servers, newest backup ages, backups by state) would describe only
    the servers in scope, and its last success would hide that whole passes stopped."""
    path = config.metrics.textfile
    if path is None:
        yield ()
        return
    if scope is not None:
        structlog.get_logger("pruner.metrics").info(
            "metrics.textfile_skipped",
            path=str(path),
            message=f"a pass scoped to {scope} does not write {path}: its figures would stand "
            "for the whole account's; it keeps those of the last whole pass",
        )
        yield ()
        return
    # prometheus_client only when there is a file to write: a pass without one never loads it.
    from pruner.ops.metrics import PassMetrics, new_registry, previous_success  # noqa: PLC0415

    registry = new_registry()
    watcher = PassMetrics(config, registry, clock=lambda: datetime.now(UTC))
    earlier = previous_success(path)
    if earlier is not None:
        watcher.remember_success(earlier)
    try:
        yield (watcher,)
    finally:
        if watcher.observed:  # no pass started (lock held, no token): keep the last file
            _write_textfile(registry, path)


def _write_textfile(registry: CollectorRegistry, path: Path) -> None:
    from pruner.ops.metrics import write_textfile  # noqa: PLC0415

    log = structlog.get_logger("pruner.metrics")
    try:
        write_textfile(registry, path)
    except OSError as error:
        log.error(
            "metrics.textfile_failed",
            path=str(path),
            message=f"{error.strerror or error}: make its directory writable by pruner "
            "(ReadWritePaths= in a hardened systemd unit)",
        )
        return
    log.debug("metrics.textfile", path=str(path))


@contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """While inside, SIGTERM and SIGINT set `stop` instead of ending the process: the pass winds
    down (requests on the wire finish, nothing new starts) and records what it did.

    A second signal does not cut that short: a DELETE abandoned on the wire would leave its
    outcome unknown and the pass unrecorded. It says what the pass still waits for instead.
    """
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may handle signals
        return
    log = structlog.get_logger("pruner")
    seen: list[int] = []

    def on_signal(signum: int) -> None:  # from the signal watcher's thread: it may log
        seen.append(signum)
        name = signal.Signals(signum).name
        if len(seen) == 1:
            stop.set()
            log.warning("run.stopping", signal=name, message=_STOPPING)
        else:
            log.warning("run.still_stopping", signal=name, message=_STILL_STOPPING)

    with signals.stop_on_signals(on_signal):
        yield


def write_pass_report(
    result: PassResult, stream: TextIO, *, dry_run_cause: str = "dry run"
) -> None:
    """The pass for people: a few lines per server that had deletions, then the summary."""
    stream.writelines(_report_lines(result, dry_run_cause))
    stream.flush()


def _report_lines(result: PassResult, dry_run_cause: str) -> Iterator[str]:
    plan = result.plan
    summary = PassSummary.of(result)
    if result.dry_run:
        yield f"DRY RUN: nothing will be deleted ({dry_run_cause})\n"
    yield f"Pass {result.run_id} at {plan.now.isoformat()}\n"
    if plan.scope is not None:
        yield f"Scoped to {plan.scope}: no other server was planned\n"
    for group in plan.groups:
        yield from _group_lines(result, group)
    yield from _not_pruned(plan.groups)
    yield "\n"
    yield from wrapped(f"Summary: {summary.sentence()}", "")
    caps = summary.caps()
    if caps is not None:
        yield from wrapped(caps, "")
    for failure in summary.failures():
        yield from wrapped(failure, "")
    if result.dry_run:
        would = f"a real pass {summary.acted()}" if summary.decided else summary.acted()
        yield f"DRY RUN: nothing was deleted; {would}\n"


def _group_lines(result: PassResult, group: Group) -> Iterator[str]:
    deletions = [d for d in group.decisions if d.action == "delete"]
    if not deletions:
        return
    yield from wrapped(
        f"{_where(group)} · policy {group.policy}: {group_outcome(result, group)}", ""
    )
    if not result.executed:
        return
    why = {(o.resource, o.id): o.message for o in result.outcomes if not o.done}
    for decision in deletions:
        outcome = result.outcome_of(decision)
        backup = decision.backup
        if outcome in ("locked", "failed"):
            reason = why.get((backup.resource, backup.id), "")
            yield from wrapped(f"FAILED id {backup.id} ({outcome}): {reason}", "  ")
        elif outcome == "not_attempted":
            yield f"  not attempted: id {backup.id}\n"


def _not_pruned(groups: tuple[Group, ...]) -> Iterator[str]:
    held = [g for g in groups if g.status in ("skipped", "incomplete", "orphan", "unmanaged")]
    if not held:
        return
    yield "Not pruned this pass (their backups are kept):\n"
    for group in held:
        status = f"{group.status} ({group.guard})" if group.guard else group.status
        reason = group.messages[-1] if group.messages else ""
        yield from wrapped(f"{_where(group)} · {status}: {reason}", "  ")


def _where(group: Group) -> str:
    hostname = f" ({group.server_hostname})" if group.server_hostname else ""
    return f"server {group.server_id}{hostname} · {group.resource}"
