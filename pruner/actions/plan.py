"""`pruner plan`: decide and report; never sends a DELETE.

Live (the default), a pass with execute=False lists through the API (a Read key is enough),
takes no lock and writes no state. With --listing FILE, it decides on a saved listing and makes
no API call at all. Either way the report goes to stdout; exit 1 when the plan is incomplete.
With two-phase deletion on, it reads state_dir/pending.json (never writes it) to show what a
pass would delete now and what still waits.
"""

from __future__ import annotations

import argparse
import gc
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

import structlog

from pruner.actions.common import leave_to_report_on_terminal, load_and_warn
from pruner.actions.progress import terminal_progress
from pruner.actions.scoping import scope_of
from pruner.config.digest import plan_origin
from pruner.config.schema import Config
from pruner.engine.models import Plan
from pruner.engine.planner import build_plan
from pruner.engine.scope import Scope
from pruner.engine.two_phase import TwoPhase
from pruner.errors import EXIT_INCOMPLETE, EXIT_OK, PassFailed
from pruner.ops.logging import is_terminal
from pruner.passes.pending import load_pending
from pruner.report.plan_json import write_plan_json
from pruner.report.problems import log_problem
from pruner.report.summary import Summary, summarize
from pruner.report.table import write_table
from pruner.vpsbg.listing import load_listing

__all__ = ["main"]

# The table's rows, totals and problems carry these: on a terminal the log leaves them out.
_REPORTED = frozenset({"plan.problem", "guard.*", "backup.stale", "pass.summary", "plan.summary"})


def main(args: argparse.Namespace) -> int:
    if args.format == "table":
        leave_to_report_on_terminal(_REPORTED)
    config = load_and_warn(args)
    scope = scope_of(args, config)
    if args.listing is None:
        return _plan_live(args, config, scope)
    now: datetime = args.now or datetime.now(UTC)
    with _without_cyclic_gc():
        complete = _plan_listing(args, config, now, scope)
    return EXIT_OK if complete else EXIT_INCOMPLETE


def _plan_live(args: argparse.Namespace, config: Config, scope: Scope | None) -> int:
    # Only a live plan needs the client (requests): `plan --listing` starts without it.
    from pruner.passes.one_pass import run_pass  # noqa: PLC0415

    with terminal_progress(args) as progress:
        result = run_pass(
            config, dry_run=False, execute=False, now=args.now, scope=scope, progress=progress
        )
    if result.key_refused:  # an empty plan would read as "nothing to delete"
        raise PassFailed(*result.failures)
    _write_report(result.plan, summarize(result.plan), config, args, sys.stdout)
    return EXIT_INCOMPLETE if result.exit_code == EXIT_INCOMPLETE else EXIT_OK


def _plan_listing(
    args: argparse.Namespace, config: Config, now: datetime, scope: Scope | None
) -> bool:
    """Plan the saved listing args.listing and report it; whether the plan is complete."""
    path: Path = args.listing
    listing = load_listing(path)
    plan = build_plan(
        listing,
        config.policies,
        now=now,
        generated_at=datetime.now(UTC),
        zone=config.timezone,
        max_deletions_per_run=config.safety.max_deletions_per_run,
        dry_run=config.dry_run,
        two_phase=_two_phase(config),
        scope=scope,
    )
    summary = summarize(plan)
    _log_plan(plan, summary, path)
    _write_report(plan, summary, config, args, sys.stdout)
    return summary.complete


def _two_phase(config: Config) -> TwoPhase | None:
    confirm_after = config.safety.confirm_after
    if confirm_after is None:
        return None
    log = structlog.get_logger("pruner")
    return load_pending(config.state_dir, log).two_phase(confirm_after)


def _write_report(
    plan: Plan, summary: Summary, config: Config, args: argparse.Namespace, stream: TextIO
) -> None:
    if args.format == "json":
        write_plan_json(plan, stream, summary, origin=plan_origin(config))
    elif args.format == "html":
        from pruner.report.html import write_html  # noqa: PLC0415 (only this format needs it)

        write_html(plan, stream, summary, origin=plan_origin(config))
    elif is_terminal(stream):
        from rich.console import Console  # noqa: PLC0415 (only a terminal needs rich)

        from pruner.report.terminal import print_plan  # noqa: PLC0415

        console = Console(file=stream, highlight=False)
        print_plan(plan, console, summary, zone=config.timezone, details=args.details)
    else:
        write_table(plan, stream, summary, zone=config.timezone, details=args.details)
    stream.flush()


@contextmanager
def _without_cyclic_gc() -> Iterator[None]:
    """A large listing is millions of acyclic objects: collection passes over them only cost time
    (a third of a million-backup plan). Let them go before collection resumes, or its first pass
    walks them all."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _log_plan(plan: Plan, summary: Summary, listing: Path) -> None:
    log = structlog.get_logger("pruner")
    for problem in plan.problems:
        log_problem(problem, log)
    log.info("plan.summary", listing=str(listing), dry_run=plan.dry_run, **summary.as_log())
