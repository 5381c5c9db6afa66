"""A Plan for scripts (JSON, SPEC §6) and for people (a table readable in 100 columns)."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from json.encoder import encode_basestring_ascii as _quote
from typing import Any, TextIO

from pruner.models import Decision, Group, Plan, Problem

__all__ = [
    "SCHEMA",
    "Summary",
    "Tally",
    "plan_to_json",
    "render_table",
    "summarize",
    "write_plan_json",
    "write_table",
]

SCHEMA = "pruner.plan/v1"
_CHUNK = 10_000  # decision lines per write
_WIDTH = 100


@dataclass(frozen=True, slots=True)
class Tally:
    """One group's counts (Group's properties count again on every call)."""

    kept: int
    deleted: int
    size_freed: int

    @classmethod
    def of(cls, group: Group) -> Tally:
        deleted = size_freed = 0
        for decision in group.decisions:
            if decision.action == "delete":
                deleted += 1
                size_freed += decision.backup.size or 0
        return cls(len(group.decisions) - deleted, deleted, size_freed)


@dataclass(frozen=True, slots=True)
class Summary:
    """What a plan comes to, counted once: for the report, the summary log event and exit code."""

    tallies: tuple[Tally, ...]  # one per group, in plan order
    kept: int
    deleted: int
    size_freed: int
    groups: int
    skipped_groups: int
    incomplete_groups: int
    errors: int
    warnings: int

    @property
    def complete(self) -> bool:
        """No group is incomplete and no problem is an error (exit 1 otherwise)."""
        return not self.incomplete_groups and not self.errors

    def as_json(self) -> dict[str, int]:
        """SPEC §6's `summary`."""
        return {
            "kept": self.kept,
            "deleted": self.deleted,
            "skipped_groups": self.skipped_groups,
            "size_freed": self.size_freed,
        }

    def as_log(self) -> dict[str, int | bool]:
        return {
            "complete": self.complete,
            "groups": self.groups,
            **self.as_json(),
            "incomplete_groups": self.incomplete_groups,
            "errors": self.errors,
            "warnings": self.warnings,
        }


def summarize(plan: Plan) -> Summary:
    tallies = tuple(Tally.of(group) for group in plan.groups)
    statuses = [group.status for group in plan.groups]
    levels = [problem.level for problem in plan.problems]
    return Summary(
        tallies=tallies,
        kept=sum(t.kept for t in tallies),
        deleted=sum(t.deleted for t in tallies),
        size_freed=sum(t.size_freed for t in tallies),
        groups=len(statuses),
        skipped_groups=statuses.count("skipped"),
        incomplete_groups=statuses.count("incomplete"),
        errors=levels.count("error"),
        warnings=levels.count("warning"),
    )


def plan_to_json(plan: Plan, summary: Summary | None = None) -> dict[str, Any]:
    """The plan as SPEC §6 shapes it, plus `guard`, `blocked_deletions`, `messages`, `problems`."""
    document = _head(plan)
    document["decisions"] = [entry for group in plan.groups for entry in _decision_entries(group)]
    document.update(_tail(plan, summary or summarize(plan)))
    return document


def write_plan_json(plan: Plan, stream: TextIO, summary: Summary | None = None) -> None:
    """Write `plan_to_json(plan)` to `stream`, one decision per line, without building it whole."""
    head = json.dumps(_head(plan))
    stream.write(head[:-1] + ', "decisions": [')
    separator = "\n"
    reasons_json: dict[tuple[str, ...], str] = {}  # the same reasons recur across servers
    for group in plan.groups:
        lines = _decision_lines(group, reasons_json)
        for start in range(0, len(lines), _CHUNK):
            stream.write(separator + ",\n".join(lines[start : start + _CHUNK]))
            separator = ",\n"
    stream.write("\n],")
    tail = _tail(plan, summary or summarize(plan))
    stream.write(_json_lines("groups", tail["groups"]) + ",")
    stream.write(f' "summary": {json.dumps(tail["summary"])},')
    stream.write(_json_lines("problems", tail["problems"]) + "}\n")


def _decision_lines(group: Group, reasons_json: dict[tuple[str, ...], str]) -> list[str]:
    """Each decision as one JSON object, formatted directly: json.dumps costs twice as much.

    Every string goes through the json module's own escaping; tests compare the result with
    `plan_to_json`. `reasons_json` caches the text of each list of reasons.
    """
    hostnames: dict[str | None, str] = {None: _json_text(group.server_hostname)}
    policy = _json_text(group.policy)
    lines = []
    for decision in group.decisions:
        backup = decision.backup
        hostname = hostnames.get(backup.server_hostname)
        if hostname is None:
            hostname = hostnames[backup.server_hostname] = _json_text(backup.server_hostname)
        name = "null" if backup.name is None else _quote(backup.name)
        size = "null" if backup.size is None else backup.size
        reasons = reasons_json.get(decision.reasons)
        if reasons is None:
            reasons = reasons_json[decision.reasons] = ", ".join(map(_quote, decision.reasons))
        lines.append(
            f'{{"resource": "{backup.resource}", "id": {backup.id}, '
            f'"server_id": {backup.server_id}, "server_hostname": {hostname}, "name": {name}, '
            f'"created_at": "{backup.created_at.isoformat()}", "size": {size}, '
            f'"policy": {policy}, "action": "{decision.action}", "reasons": [{reasons}]}}'
        )
    return lines


def _json_lines(key: str, entries: list[dict[str, Any]]) -> str:
    """` "key": [` and one entry per line."""
    if not entries:
        return f' "{key}": []'
    return f' "{key}": [\n' + ",\n".join(map(json.dumps, entries)) + "\n]"


def _json_text(value: str | None) -> str:
    return "null" if value is None else _quote(value)


def _head(plan: Plan) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "generated_at": plan.generated_at.isoformat(),
        "now": plan.now.isoformat(),
        "dry_run": plan.dry_run,
    }


def _tail(plan: Plan, summary: Summary) -> dict[str, Any]:
    return {
        "groups": [
            _group_entry(group, tally)
            for group, tally in zip(plan.groups, summary.tallies, strict=True)
        ],
        "summary": summary.as_json(),
        "problems": [_problem_entry(problem) for problem in plan.problems],
    }


def _decision_entries(group: Group) -> Iterator[dict[str, Any]]:
    hostname, policy = group.server_hostname, group.policy
    for decision in group.decisions:
        backup = decision.backup
        yield {
            "resource": backup.resource,
            "id": backup.id,
            "server_id": backup.server_id,
            "server_hostname": backup.server_hostname or hostname,
            "name": backup.name,
            "created_at": backup.created_at.isoformat(),
            "size": backup.size,
            "policy": policy,
            "action": decision.action,
            "reasons": list(decision.reasons),
        }


def _group_entry(group: Group, tally: Tally) -> dict[str, Any]:
    return {
        "resource": group.resource,
        "server_id": group.server_id,
        "server_hostname": group.server_hostname,
        "policy": group.policy,
        "status": group.status,
        "kept": tally.kept,
        "deleted": tally.deleted,
        "size_freed": tally.size_freed,
        "guard": group.guard,
        "blocked_deletions": group.blocked_deletions,
        "messages": list(group.messages),
    }


def _problem_entry(problem: Problem) -> dict[str, Any]:
    return {
        "level": problem.level,
        "message": problem.message,
        "resource": problem.resource,
        "server_id": problem.server_id,
        "backup_id": problem.backup_id,
        "field": problem.field,
    }


# --- the table ------------------------------------------------------------------------------


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
                reason_width = max(reason_width, *map(len, decision.reasons))
        reason_width = min(reason_width, 30)
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
            yield from _wrapped(f"{problem.level}: {problem.message}", "  ", "    ")


def _newest(group: Group, plan: Plan) -> str:
    """`: newest backup <date> (N days old)`, as the stale guard judged it; "" without one."""
    made = [
        d.backup.created_at
        for d in group.decisions
        if d.backup.created_at < plan.now and not d.reasons[0].startswith("protected")
    ]
    if not made:
        return ""
    newest = max(made)
    days = (plan.now - newest).days
    return f": newest backup {newest.isoformat(timespec='minutes')} ({days} days old)"


def _group_lines(group: Group, tally: Tally, columns: _Columns) -> Iterator[str]:
    policy = f"policy {group.policy}" if group.policy is not None else "no policy"
    status = group.status if group.guard is None else f"{group.status} ({group.guard})"
    yield (
        f"server {group.server_id}{_hostname(group)} · {group.resource} · {policy} · {status}"
        f" · kept {tally.kept}, deleted {tally.deleted}\n"
    )
    for message in group.messages:
        yield from _wrapped(message, "  ! ", "    ")
    yield _row(("action", "id", "created_at", "GB", "name", "reasons"), columns)
    for decision in group.decisions:
        yield from _decision_rows(decision, columns)


def _decision_rows(decision: Decision, columns: _Columns) -> Iterator[str]:
    backup = decision.backup
    lines = _reason_lines(decision.reasons, columns.reasons)
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


def _reason_lines(reasons: tuple[str, ...], width: int) -> list[str]:
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
        f"Summary: kept {summary.kept}, deleted {summary.deleted}, "
        f"skipped groups {summary.skipped_groups}, size freed {summary.size_freed} GB\n"
    )
    if summary.incomplete_groups:
        yield (
            f"{summary.incomplete_groups} group(s) incomplete: their backups are kept "
            "(see problems)\n"
        )
    if plan.dry_run:
        yield "dry run: nothing was deleted\n"


def _hostname(group: Group) -> str:
    return f" ({group.server_hostname})" if group.server_hostname else ""


def _truncate(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _wrapped(text: str, first: str, rest: str) -> Iterator[str]:
    for line in textwrap.wrap(
        text, _WIDTH, initial_indent=first, subsequent_indent=rest, break_on_hyphens=False
    ):
        yield line + "\n"
