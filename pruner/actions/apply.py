"""`pruner apply PLAN.json [--dry-run] [--max-age D] [--force] [--ignore-config-change]
[--server ID|GLOB]… [--policy NAME]`: delete exactly the `delete` decisions of a reviewed plan
(of the servers in scope), re-checked against a fresh listing.

It is a pass like `run` (the same lock, guards, logs, audit trail, last-plan.json, metrics and
pings; SIGTERM and SIGINT wind it down) whose decisions are the reviewed plan's, as
pruner.engine.review reconciles them with the backups as they are now. The report on stdout is
`run`'s, then what became of the reviewed deletions, and why the plan was refused if it was.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from pruner.actions.common import (
    PASS_REPORT_EVENTS,
    leave_to_report_on_terminal,
    load_and_warn,
)
from pruner.actions.run import pass_and_report
from pruner.actions.scoping import scope_of
from pruner.engine.results import PassResult
from pruner.engine.review import NotDeleted, Review, ReviewOutcome
from pruner.report.plan_file import read_plan_file
from pruner.report.text import wrapped

__all__ = ["main", "write_review_report"]

_SHOWN = 20  # skipped deletions listed on stdout; the log has every one
_KINDS = {
    "vanished": "vanished",
    "changed": "changed",
    "kept": "kept now",
    "guarded": "held back",
}


def main(args: argparse.Namespace) -> int:
    leave_to_report_on_terminal(PASS_REPORT_EVENTS)
    config = load_and_warn(args)  # exit 2 before any API call
    scope = scope_of(args, config)
    review = Review(
        read_plan_file(Path(args.plan_file)),  # exit 2 too: a file that is not a plan
        max_age=args.max_age,
        force=args.force,
        ignore_config_change=args.ignore_config_change,
    )
    result = pass_and_report(
        args,
        config,
        scope,
        review=review,
        then=lambda result: write_review_report(result, review, sys.stdout),
    )
    return result.exit_code


def write_review_report(result: PassResult, review: Review, stream: TextIO) -> None:
    """What became of the reviewed deletions, after the pass's own report."""
    if result.review is not None:
        stream.writelines(_review_lines(result, review, result.review))
        stream.flush()


def _review_lines(result: PassResult, review: Review, outcome: ReviewOutcome) -> Iterator[str]:
    plan = review.plan
    if outcome.refused:
        verdict = "none deleted"
    elif result.dry_run:
        verdict = f"{outcome.deleting} would be deleted"
    else:
        verdict = f"{outcome.deleting} carried out"
    yield "\n"
    aside = ""
    if outcome.out_of_scope:
        aside = (
            f", {len(outcome.out_of_scope)} out of scope (left for an apply that includes "
            "their servers)"
        )
    yield from wrapped(
        f"Reviewed plan {plan.source}, made {plan.generated_at.isoformat()}: "
        f"{outcome.reviewed} deletions; {verdict}, {len(outcome.skipped)} skipped{aside}"
        + (":" if outcome.skipped else ""),
        "",
    )
    for entry in outcome.skipped[:_SHOWN]:
        yield from wrapped(_skipped_line(entry), "  ")
    if len(outcome.skipped) > _SHOWN:
        more = len(outcome.skipped) - _SHOWN
        yield f"  and {more} more (each is an apply.skipped event in the log)\n"
    for refusal in outcome.refusals:
        yield from wrapped(f"REFUSED: {refusal}", "")


def _skipped_line(entry: NotDeleted) -> str:
    return f"{_KINDS[entry.kind]}: {entry.backup}: {entry.why}"
