"""A Plan for people, in plain text: one line per server, then totals and problems.

What needs attention comes first (stale, blocked and incomplete servers), then every other
server by hostname; `details` adds each group's decisions with full names, dates in the
configured time zone and the reasons. This is the text for pipes, files and scripts: no colour,
nothing cut, one row a line, so it stays greppable. On a terminal pruner.report.terminal draws
the same rows with rich, fitted to the terminal's width.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import TextIO

from pruner.engine.models import Decision, Group, Plan, Problem
from pruner.engine.planner import LARGE_DELETIONS_HINT, newest_unprotected_before
from pruner.engine.reasons import texts
from pruner.report.pass_summary import resources_noun, would_delete, would_size
from pruner.report.problems import problem_line
from pruner.report.summary import Summary, Tally, summarize

__all__ = [
    "DECISION_COLUMNS",
    "NUMERIC_COLUMNS",
    "PENDING_COLUMNS",
    "SERVER_COLUMNS",
    "ServerRow",
    "decision_cells",
    "group_heading",
    "heading",
    "render_table",
    "server_cells",
    "server_rows",
    "shown_problems",
    "totals",
    "write_table",
]

SERVER_COLUMNS = ("hostname", "server", "policy", "kept", "delete", "protected", "newest backup")
PENDING_COLUMNS = (*SERVER_COLUMNS[:4], "pending", *SERVER_COLUMNS[4:])  # with confirm_after
DECISION_COLUMNS = ("action", "id", "created_at", "GB", "name", "reasons")
NUMERIC_COLUMNS = frozenset({"server", "kept", "pending", "delete", "protected", "id", "GB"})
_ATTENTION_FIRST = ("skipped", "incomplete", "failed")  # stale, locked, capped, unknown


@dataclass(frozen=True, slots=True)
class ServerRow:
    """One server in the plan: its groups (backups, snapshots) counted together."""

    server_id: int
    hostname: str
    policy: str  # of its backups (of its snapshots when it has none): --details shows each
    kept: int
    delete: int
    protected: int
    pending: int
    newest: str  # `2026-11-30 (5h)`: the newest backup's day and age, or "-"
    attention: str  # the guard or problem in a few words; "" when all is well
    urgent: bool  # stale, blocked or incomplete: shown first

    def cells(self, *, pending: bool = False) -> tuple[str, ...]:
        """The row under SERVER_COLUMNS, or with `pending` under PENDING_COLUMNS."""
        counts = (str(self.kept), str(self.pending)) if pending else (str(self.kept),)
        return (
            self.hostname,
            str(self.server_id),
            self.policy,
            *counts,
            str(self.delete),
            str(self.protected),
            self.newest,
        )


def server_rows(plan: Plan, zone: tzinfo | None = None) -> list[ServerRow]:
    """One row per server, those that need attention first, then by hostname."""
    by_server: dict[int, list[Group]] = {}
    for group in plan.groups:
        by_server.setdefault(group.server_id, []).append(group)
    rows = [_server_row(groups, plan.now, zone) for groups in by_server.values()]
    return sorted(rows, key=lambda row: (not row.urgent, not row.attention, row.hostname))


def _server_row(groups: Sequence[Group], now: datetime, zone: tzinfo | None) -> ServerRow:
    decisions = [d for group in groups for d in group.decisions]
    deletions = sum(1 for d in decisions if d.action == "delete")
    hostname = next((g.server_hostname for g in groups if g.server_hostname), None)
    first = groups[0]  # backups, when the server has any (the planner lists them first)
    newest = newest_unprotected_before(first.decisions, now)
    attention: dict[str, str] = {}  # by guard: one label for both groups of a locked server
    for group in groups:
        label = _attention(group)
        if label:
            attention.setdefault(label.split(" (")[0], label)
    return ServerRow(
        server_id=groups[0].server_id,
        hostname=hostname or "?",
        policy=first.policy or "-",
        kept=len(decisions) - deletions,
        delete=deletions,
        protected=sum(1 for d in decisions if d.protected),
        pending=sum(1 for d in decisions if d.pending),
        newest="-" if newest is None else _when(newest.created_at, now, zone),
        attention=", ".join(attention.values()),
        urgent=any(g.status in _ATTENTION_FIRST for g in groups),
    )


def _attention(group: Group) -> str:
    """A group's guard or status in a few words; "" for a group pruned as planned."""
    if group.status == "ok":
        return ""
    what: str = group.guard or group.status
    if group.blocked_deletions:
        what += f" ({group.blocked_deletions} held)"
    elif group.status == "incomplete":
        what += " (not decided)"
    return what


def _when(moment: datetime, now: datetime, zone: tzinfo | None) -> str:
    shown = moment.astimezone(zone) if zone is not None else moment
    return f"{shown:%Y-%m-%d} ({age(now - moment)})"


def age(span: timedelta) -> str:
    """`3d`, `5h`, `12min`: how old, to the largest whole unit."""
    seconds = max(int(span.total_seconds()), 0)
    if seconds >= 86400:
        return f"{seconds // 86400}d"
    if seconds >= 3600:
        return f"{seconds // 3600}h"
    return f"{seconds // 60}min"


def heading(plan: Plan, servers: int) -> Iterator[str]:
    """`Plan at …, N servers` and, when so, how it was scoped."""
    mode = " (dry_run: true: a pass with this config deletes nothing)" if plan.dry_run else ""
    at = plan.now.isoformat(timespec="seconds")
    yield f"Plan at {at}, {servers} servers{mode}"
    if plan.scope is not None:
        yield f"Scoped to {plan.scope}: no other server was planned"


def totals(plan: Plan, summary: Summary) -> str:
    """What the plan comes to, in the words of `pruner run`: it deletes nothing itself."""
    noun = resources_noun(group.resource for group in plan.groups)
    total = summary.kept + summary.deleted
    words = [
        would_delete(summary.deleted, total, noun, summary.kept, summary.pending),
        would_size(summary.size_freed, noun),
    ]
    if summary.skipped_groups:
        words.append(f"{summary.skipped_groups} group(s) skipped by a guard, their backups kept")
    if summary.incomplete_groups:
        words.append(
            f"{summary.incomplete_groups} group(s) not decided (incomplete): their backups are kept"
        )
    return "Totals: " + "; ".join(words)


def shown_problems(plan: Plan, *, details: bool) -> tuple[list[Problem], str | None]:
    """The problems the plan shows, and a line for those it leaves to the rows: without
    `details`, a warning about one server is its row's `attention` (and the caps' hint, once)."""
    if details:
        return sorted(plan.problems, key=lambda p: p.level != "error"), None
    shown = [p for p in plan.problems if p.level == "error" or p.server_id is None]
    left = len(plan.problems) - len(shown)
    capped = plan.blocked_by_caps
    notes = []
    if capped:
        notes.append(f"caps held back {capped} deletions: {LARGE_DELETIONS_HINT}")
    if left:
        notes.append(f"{left} warnings about single servers are in their rows; --details has each")
    return sorted(shown, key=lambda p: p.level != "error"), "; ".join(notes) or None


def group_heading(group: Group) -> str:
    """`server 2401 (web-01) · backups · policy web · ok · would delete 3 of 10 (7 kept)`."""
    policy = f"policy {group.policy}" if group.policy is not None else "no policy"
    status = group.status if group.guard is None else f"{group.status} ({group.guard})"
    hostname = f" ({group.server_hostname})" if group.server_hostname else ""
    tally = Tally.of(group)
    outcome = would_delete(
        tally.deleted, len(group.decisions), group.resource, tally.kept, tally.pending
    )
    where = f"server {group.server_id}{hostname} · {group.resource}"
    return f"{where} · {policy} · {status} · {outcome}"


def decision_cells(decision: Decision, zone: tzinfo | None) -> tuple[str, ...]:
    backup = decision.backup
    created = backup.created_at.astimezone(zone) if zone is not None else backup.created_at
    return (
        decision.action,
        str(backup.id),
        created.isoformat(timespec="minutes"),
        "-" if backup.size is None else str(backup.size),
        backup.name or "-",
        ", ".join(texts(decision.reasons)),
    )


# --- plain text -------------------------------------------------------------------------------


def render_table(
    plan: Plan,
    summary: Summary | None = None,
    *,
    zone: tzinfo | None = None,
    details: bool = False,
) -> str:
    return "".join(_lines(plan, summary or summarize(plan), zone, details))


def write_table(
    plan: Plan,
    stream: TextIO,
    summary: Summary | None = None,
    *,
    zone: tzinfo | None = None,
    details: bool = False,
) -> None:
    stream.writelines(_lines(plan, summary or summarize(plan), zone, details))


def server_cells(
    rows: list[ServerRow], *, pending: bool
) -> tuple[tuple[str, ...], list[tuple[str, ...]]]:
    """The servers table's columns (the pending one with confirm_after) and each row's cells,
    `attention` last."""
    columns = (*(PENDING_COLUMNS if pending else SERVER_COLUMNS), "attention")
    return columns, [(*row.cells(pending=pending), row.attention) for row in rows]


def _lines(plan: Plan, summary: Summary, zone: tzinfo | None, details: bool) -> Iterator[str]:
    rows = server_rows(plan, zone)
    for line in heading(plan, len(rows)):
        yield line + "\n"
    yield "\n"
    yield from _aligned(*server_cells(rows, pending=summary.pending > 0))
    yield "\n"
    yield totals(plan, summary) + "\n"
    problems, note = shown_problems(plan, details=details)
    if note:
        yield f"Note: {note}\n"
    if problems:
        yield "Problems:\n"
        for problem in problems:
            yield f"  {problem_line(problem)}\n"
    if details:
        for group in plan.groups:
            yield "\n"
            yield group_heading(group) + "\n"
            for message in group.messages:
                yield f"  ! {message}\n"
            cells = [decision_cells(decision, zone) for decision in group.decisions]
            yield from _aligned(DECISION_COLUMNS, cells, indent="  ")


def _aligned(
    header: Sequence[str], rows: Iterable[Sequence[str]], indent: str = ""
) -> Iterator[str]:
    """Columns as wide as their widest cell, numbers to the right; nothing is cut."""
    table = [tuple(header), *(tuple(row) for row in rows)]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        cells = [
            cell.rjust(width) if name in NUMERIC_COLUMNS else cell.ljust(width)
            for name, cell, width in zip(header, row, widths, strict=True)
        ]
        yield (indent + "  ".join(cells)).rstrip() + "\n"
