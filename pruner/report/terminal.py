"""The plan on a terminal: pruner.report.table's rows drawn with rich, fitted to the width.

Imported only when stdout is a terminal, so that `plan --format json`, pipes and probes never
load rich. Colour marks what needs a look (a guard, a deletion, an error); rich leaves it out
under NO_COLOR and for a terminal that has none. Long names wrap within their column instead of
being cut, so that snapshot rows that differ only in their date stay apart.
"""

from __future__ import annotations

import io
from datetime import tzinfo

from rich import box
from rich.console import Console
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from pruner.engine.models import Group, Plan
from pruner.report.problems import problem_line
from pruner.report.summary import Summary, summarize
from pruner.report.table import (
    DECISION_COLUMNS,
    NUMERIC_COLUMNS,
    ServerRow,
    decision_cells,
    group_heading,
    heading,
    server_cells,
    server_rows,
    shown_problems,
    totals,
)

__all__ = ["decision_lines", "print_plan"]

_MAX_WIDTH = {"hostname": 24, "policy": 18}  # the rest of the width goes to what needs a look
_MIN_WIDTH = {
    "newest backup": len("2026-11-30 (31d)"),
    "attention": 24,
    "reasons": len("keep_daily:2026-11-30,"),
}
_DROPPED_FIRST = ("protected", "pending", "newest backup", "server")


def print_plan(
    plan: Plan,
    console: Console,
    summary: Summary | None = None,
    *,
    zone: tzinfo | None = None,
    details: bool = False,
) -> None:
    """The plan as `pruner plan` shows it on a terminal: a line per server, totals, problems;
    with `details`, every decision of every group."""
    summary = summary or summarize(plan)
    rows = server_rows(plan, zone)
    first, *rest = heading(plan, len(rows))
    console.print(Text(first, style="bold"))
    for line in rest:
        console.print(line)
    console.print()
    console.print(_servers(rows, pending=summary.pending > 0, width=console.width))
    console.print()
    console.print(totals(plan, summary))
    problems, note = shown_problems(plan, details=details)
    if note:
        console.print(Text(f"Note: {note}", style="yellow"))
    if problems:
        console.print(Text("Problems:", style="bold"))
        for problem in problems:
            style = "red" if problem.level == "error" else "yellow"
            console.print(Padding(Text(problem_line(problem), style=style), (0, 0, 0, 2)))
    if details:
        for group in plan.groups:
            console.print()
            _print_group(group, console, zone)


def decision_lines(
    group: Group, *, width: int, zone: tzinfo | None, rows: int | None = None
) -> list[str]:
    """A group's heading and (its first `rows`) decisions as --details draws them, in plain
    text `width` wide."""
    stream = io.StringIO()
    _print_group(group, Console(file=stream, width=width, color_system=None), zone, rows)
    return [line.rstrip() for line in stream.getvalue().splitlines()]


def _print_group(
    group: Group, console: Console, zone: tzinfo | None, rows: int | None = None
) -> None:
    console.print(Text(group_heading(group), style="bold"))
    for message in group.messages:
        console.print(Padding(Text(f"! {message}", style="yellow"), (0, 0, 0, 2)))
    decisions = group.decisions[:rows]
    table = _table(DECISION_COLUMNS, wrap={"name", "reasons"})
    # Whole names where the width allows: the date in a name tells snapshots apart.
    longest = max((len(d.backup.name or "") for d in decisions), default=0)
    table.columns[DECISION_COLUMNS.index("name")].min_width = min(longest, console.width // 3)
    for decision in decisions:
        style = "red" if decision.action == "delete" else ""
        table.add_row(*decision_cells(decision, zone), style=style)
    console.print(Padding(table, (0, 0, 0, 2)))


def _servers(rows: list[ServerRow], *, pending: bool, width: int) -> Table:
    columns, cells = server_cells(rows, pending=pending)
    shown = _fitting(columns, cells, width)
    table = _table(tuple(columns[i] for i in shown), wrap={"attention"})
    for row, row_cells in zip(rows, cells, strict=True):
        *counts, attention = (row_cells[i] for i in shown)
        label = Text(attention, style="bold red" if row.urgent else "yellow")
        style = "red" if row.delete and not row.urgent else ""
        table.add_row(*counts, label, style=style)
    return table


def _fitting(columns: tuple[str, ...], cells: list[tuple[str, ...]], width: int) -> list[int]:
    """The columns that fit in `width`: on a narrow terminal the ones --details repeats go first
    (the protected and pending counts, the date of the newest backup, the server id)."""
    shown = list(range(len(columns)))
    for name in _DROPPED_FIRST:
        if _needed(columns, cells, shown) <= width:
            break
        if name in columns:
            shown.remove(columns.index(name))
    return shown


def _needed(columns: tuple[str, ...], cells: list[tuple[str, ...]], shown: list[int]) -> int:
    widths = []
    for i in shown:
        name = columns[i]
        wide = max([len(name), *(len(row[i]) for row in cells)])
        widths.append(min(wide, _MAX_WIDTH.get(name, wide), _MIN_WIDTH.get(name, wide)))
    return sum(widths) + len(widths) - 1


def _table(columns: tuple[str, ...], *, wrap: set[str]) -> Table:
    table = Table(
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        padding=0,  # the box puts one space between columns
        header_style="bold",
    )
    for name in columns:
        table.add_column(
            name,
            justify="right" if name in NUMERIC_COLUMNS else "left",
            no_wrap=name not in wrap,
            overflow="fold" if name in wrap else "ellipsis",
            min_width=_MIN_WIDTH.get(name, len(name) if name in NUMERIC_COLUMNS else 6),
            max_width=_MAX_WIDTH.get(name),
        )
    return table
