"""`pruner simulate`: a backtest of the policies, forward in time from a listing.

The listing is a saved one (--listing FILE: no API call) or a live one, listed as `pruner plan`
lists (a Read key is enough; no lock, no state written). Either way it is planned at --now (default:
now), and the plan's groups are simulated day by day (pruner.engine.simulate). The report goes to
stdout, the picture to --svg FILE; exit 1 when the listing was incomplete, as for `plan`.
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

import structlog

from pruner.actions.common import load_and_warn
from pruner.config.schema import Config
from pruner.engine.models import Plan
from pruner.engine.planner import build_plan
from pruner.engine.simulate import Simulation, simulate
from pruner.errors import EXIT_INCOMPLETE, EXIT_OK, PassFailed, UserError
from pruner.report.problems import log_problem
from pruner.report.simulation import write_simulation_json, write_simulation_table
from pruner.report.summary import summarize
from pruner.report.svg import render_svg
from pruner.vpsbg.listing import load_listing

__all__ = ["main"]


def main(args: argparse.Namespace) -> int:
    config = load_and_warn(args)
    if args.svg is not None:
        _check_folder(args.svg)
    plan, complete = _plan(args, config)
    simulation = simulate(
        plan, config.policies, days=args.days, cadence=args.cadence, zone=config.timezone
    )
    _log_summary(simulation, complete)
    if args.svg is not None:
        _write_svg(args.svg, simulation)
    if args.format == "json":
        write_simulation_json(simulation, sys.stdout)
    else:
        write_simulation_table(simulation, sys.stdout)
    sys.stdout.flush()
    return EXIT_OK if complete else EXIT_INCOMPLETE


def _plan(args: argparse.Namespace, config: Config) -> tuple[Plan, bool]:
    """The plan the backtest starts from, and whether its listing was complete."""
    if args.listing is None:
        # Only a live backtest needs the client (requests): --listing starts without it.
        from pruner.passes.one_pass import run_pass  # noqa: PLC0415

        result = run_pass(config, dry_run=True, execute=False, now=args.now)
        if result.key_refused:  # an empty backtest would read as "nothing to keep"
            raise PassFailed(*result.failures)
        return result.plan, result.exit_code != EXIT_INCOMPLETE
    now: datetime = args.now or datetime.now(UTC)
    plan = build_plan(
        load_listing(args.listing),
        config.policies,
        now=now,
        generated_at=now,
        zone=config.timezone,
        max_deletions_per_run=None,  # the backtest leaves the caps out
        dry_run=True,
    )
    log = structlog.get_logger("pruner")
    for problem in plan.problems:  # as `plan` logs them, and a live listing does
        log_problem(problem, log)
    return plan, summarize(plan).complete


def _log_summary(simulation: Simulation, complete: bool) -> None:
    structlog.get_logger("pruner").info(
        "simulate.summary",
        now=simulation.now.isoformat(),
        days=simulation.days,
        simulated=len(simulation.backtests),
        not_simulated=len(simulation.not_simulated),
        complete=complete,
    )


def _check_folder(path: Path) -> None:
    """Before any listing: the picture's folder must exist."""
    if not path.parent.is_dir():
        raise UserError(
            f"--svg {path}: the folder {path.parent} does not exist: create it, or give a path "
            "in an existing folder"
        )


def _write_svg(path: Path, simulation: Simulation) -> None:
    """The whole picture or what was there before: a reader never sees half of one. Created
    like any file a command writes (the umask applies), not private like the state files."""
    text = render_svg(simulation)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
        with open(descriptor, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.replace(temporary, path)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        raise UserError(
            f"--svg {path}: cannot write it ({error.strerror or error}): check the folder's "
            "permissions and free space"
        ) from error
