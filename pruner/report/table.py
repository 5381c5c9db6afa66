"""A Plan for people: a table readable in 100 columns, what needs attention first."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TextIO

from pruner.engine.models import Decision, Group, Plan
from pruner.engine.planner import newest_unprotected_before
from pruner.engine.reasons import texts
from pruner.report.problems import problem_line
from pruner.report.summary import Summary, Tally, summarize

__all__ = ["render_table", "write_table"]

_WIDTH = 100
_REASON_WIDTH = len("pending:2026-11-27T03:30:00+00:00")  # the widest reason a column fits


@dataclass(frozen=True, slots=True)
class _Columns:
    """Column widths shared by every group, so the blocks line up."""

    id: int
    name: int
    reasons: int

    @classmethod
    def of(cls, plan: Plan) -> _Columns:
        id_width, reason_width = 2, 12
        for group in plan.groups:
            for decision in group.decisions:
                id_width = max(id_width, len(str(decision.backup.id)))
                reason_width = max(reason_width, *map(len, texts(decision.reasons)))
        reason_width = min(reason_width, _REASON_WIDTH)
        fixed = len(f"  {'':6}  {'':{id_width}}  {'':25}  {'':5}  ") + 3  # "  " + a comma
        return cls(id_width, max(_WIDTH - fixed - reason_width, 12), reason_width)


def render_table(plan: Plan, summary: Summary | None = None) -> str:
    """The plan for people: what needs attention first, then each group's rows, then totals."""
    return "".join(_table_lines(plan, summary or summarize(plan)))


def write_table(plan: Plan, stream: TextIO, summary: Summary | None = None) -> None:
    stream.writelines(_table_lines(plan, summary or summarize(plan)))


def _table_lines(plan: Plan, summary: Summary) -> Iterator[str]:
    mode = " (dry run)" if plan.dry_run else ""
    yield f"Plan at {plan.now.isoformat()}{mode}, generated {plan.generated_at.isoformat()}\n"
    if plan.scope is not None:
        yield f"Scoped to {plan.scope}: no other server was planned\n"
    yield from _attention(plan)
    columns = _Columns.of(plan)
    for group, tally in zip(plan.groups, summary.tallies, strict=True):
        yield "\n"
        yield from _group_lines(group, tally, columns)
    yield "\n"
    yield from _summary_lines(plan, summary)


def _attention(plan: Plan) -> Iterator[str]:
    stale = [group for group in plan.groups if group.guard == "stale"]
    if stale:
        yield "\nStale servers (backups have stopped; their history is kept):\n"
        for group in stale:
            where = f"server {group.server_id}{_hostname(group)}, {group.resource}"
            yield f"  {where}{_newest(group, plan)}\n"
    if plan.problems:
        yield "\nProblems:\n"
        for problem in sorted(plan.problems, key=lambda p: p.level != "error"):
            yield from _wrapped(problem_line(problem), "  ", "    ")


def _newest(group: Group, plan: Plan) -> str:
    """`: newest backup <date> (N days old)`, as the stale guard judged it; "" without one."""
    backup = newest_unprotected_before(group.decisions, plan.now)
    if backup is None:
        return ""
    newest = backup.created_at
    days = (plan.now - newest).days
    return f": newest backup {newest.isoformat(timespec='minutes')} ({days} days old)"


def _group_lines(group: Group, tally: Tally, columns: _Columns) -> Iterator[str]:
    policy = f"policy {group.policy}" if group.policy is not None else "no policy"
    status = group.status if group.guard is None else f"{group.status} ({group.guard})"
    yield (
        f"server {group.server_id}{_hostname(group)} · {group.resource} · {policy} · {status}"
        f" · kept {_kept(tally.kept, tally.pending)}, deleted {tally.deleted}\n"
    )
    for message in group.messages:
        yield from _wrapped(message, "  ! ", "    ")
    yield _row(("action", "id", "created_at", "GB", "name", "reasons"), columns)
    for decision in group.decisions:
        yield from _decision_rows(decision, columns)


def _decision_rows(decision: Decision, columns: _Columns) -> Iterator[str]:
    backup = decision.backup
    lines = _reason_lines(texts(decision.reasons), columns.reasons)
    cells = (
        decision.action,
        str(backup.id),
        backup.created_at.isoformat(timespec="seconds"),
        "-" if backup.size is None else str(backup.size),
        _truncate(backup.name or "-", columns.name),
        lines[0],
    )
    yield _row(cells, columns)
    for more in lines[1:]:
        yield _row(("", "", "", "", "", more), columns)


_Cells = tuple[str, str, str, str, str, str]  # action, id, created_at, size, name, reasons


def _row(cells: _Cells, columns: _Columns) -> str:
    action, id_, created, size, name, reasons = cells
    line = (
        f"  {action:<6}  {id_:>{columns.id}}  {created:<25}  {size:>5}  "
        f"{name:<{columns.name}}  {reasons}"
    )
    return line.rstrip() + "\n"


def _reason_lines(reasons: list[str], width: int) -> list[str]:
    """Reasons joined by commas, starting a new line whenever the next one would not fit."""
    lines: list[str] = []
    for reason in reasons:
        if lines and len(lines[-1]) + 2 + len(reason) <= width:
            lines[-1] += ", " + reason
        else:
            if lines:
                lines[-1] += ","
            lines.append(reason)
    return lines or [""]


def _summary_lines(plan: Plan, summary: Summary) -> Iterator[str]:
    yield (
        f"Summary: kept {_kept(summary.kept, summary.pending)}, deleted {summary.deleted}, "
        f"skipped groups {summary.skipped_groups}, size freed {summary.size_freed} GB\n"
    )
    if summary.incomplete_groups:
        yield (
            f"{summary.incomplete_groups} group(s) incomplete: their backups are kept "
            "(see problems)\n"
        )
    if plan.dry_run:
        yield "dry run: nothing was deleted\n"


def _kept(kept: int, pending: int) -> str:
    """`5`, or `5 (2 pending)` when some of them are deletions waiting for a confirmation."""
    return f"{kept} ({pending} pending)" if pending else str(kept)


def _hostname(group: Group) -> str:
    return f" ({group.server_hostname})" if group.server_hostname else ""


def _truncate(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _wrapped(text: str, first: str, rest: str) -> Iterator[str]:
    for line in textwrap.wrap(
        text, _WIDTH, initial_indent=first, subsequent_indent=rest, break_on_hyphens=False
    ):
        yield line + "\n"
