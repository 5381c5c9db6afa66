"""A backtest for people and for scripts: the table and the `pruner.simulation/v1` JSON.

The JSON's fields are described in docs/backtest.md.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import timedelta
from typing import Any, TextIO

from pruner.engine.simulate import Backtest, NotSimulated, Simulation, Tick
from pruner.report.text import wrapped

__all__ = [
    "SCHEMA",
    "cadence_text",
    "render_simulation_table",
    "simulation_to_json",
    "write_simulation_json",
    "write_simulation_table",
]

SCHEMA = "pruner.simulation/v1"
_SAMPLE_DAYS = (0, 30, 90, 180, 365)  # the totals' rows, and the horizon's
_RULE_WORDS = {
    "keep_last": "last",
    "keep_hourly": "hourly",
    "keep_daily": "daily",
    "keep_weekly": "weekly",
    "keep_monthly": "monthly",
    "keep_yearly": "yearly",
}
_UNITS = (("d", 86400), ("h", 3600), ("min", 60), ("s", 1))


def simulation_to_json(simulation: Simulation) -> dict[str, Any]:
    """The simulation as docs/backtest.md documents it."""
    return {
        "schema": SCHEMA,
        "now": simulation.now.isoformat(),
        "days": simulation.days,
        "servers": [_server_entry(run) for run in simulation.backtests],
        "totals": [_tick_entry(tick) for tick in simulation.totals],
        "not_simulated": [_left_out_entry(left_out) for left_out in simulation.not_simulated],
    }


def write_simulation_json(simulation: Simulation, stream: TextIO) -> None:
    json.dump(simulation_to_json(simulation), stream)
    stream.write("\n")


def _server_entry(run: Backtest) -> dict[str, Any]:
    low, high = run.settled
    return {
        "server_id": run.server_id,
        "hostname": run.hostname,
        "resource": run.resource,
        "policy": run.policy,
        "cadence_seconds": _seconds(run.cadence),
        "timeline": [_tick_entry(tick) for tick in run.timeline],
        "settled": {"min": low, "max": high},
        "filled": dict(run.filled),
    }


def _tick_entry(tick: Tick) -> dict[str, Any]:
    return {"at": tick.at.isoformat(), "kept": tick.kept, "size": tick.size}


def _left_out_entry(left_out: NotSimulated) -> dict[str, Any]:
    return {
        "server_id": left_out.server_id,
        "hostname": left_out.hostname,
        "resource": left_out.resource,
        "policy": left_out.policy,
        "why": left_out.why,
    }


def _seconds(span: timedelta | None) -> int | float | None:
    if span is None:
        return None
    seconds = span.total_seconds()
    return int(seconds) if seconds.is_integer() else seconds


# --- the table ----------------------------------------------------------------------------------


def render_simulation_table(simulation: Simulation) -> str:
    return "".join(_table_lines(simulation))


def write_simulation_table(simulation: Simulation, stream: TextIO) -> None:
    stream.writelines(_table_lines(simulation))


def cadence_text(cadence: timedelta | None) -> str:
    """`1d`, `12h`, `23h59min`, `21d11h`: the largest unit and the next, for people (the JSON
    has the exact seconds); `none` without a cadence."""
    if cadence is None:
        return "none"
    rest = round(cadence.total_seconds())
    parts: list[str] = []
    for unit, seconds in _UNITS:
        count, rest = divmod(rest, seconds)
        if count and len(parts) < 2:
            parts.append(f"{count}{unit}")
        elif parts:
            break
    return "".join(parts) or "0s"


def _table_lines(simulation: Simulation) -> Iterator[str]:
    yield from wrapped(
        f"Backtest from {simulation.now.isoformat()} over {simulation.days} days: each server's "
        "policy applied once a day to its backups and to those its cadence will make, with "
        "protection and min_keep; the guards and caps are left out.",
        "",
        "",
    )
    yield "\n"
    if simulation.backtests:
        yield from _server_rows(simulation.backtests, simulation.days)
    else:
        yield "No server is simulated: no policy governs any server of the listing.\n"
    yield "\n"
    yield from _totals(simulation)
    if simulation.not_simulated:
        yield "\nNot simulated:\n"
        for left_out in simulation.not_simulated:
            where = f"server {left_out.server_id}{_hostname(left_out.hostname)}"
            yield from wrapped(f"{where}, {left_out.resource}: {left_out.why}", "  ", "    ")


def _server_rows(runs: Sequence[Backtest], days: int) -> Iterator[str]:
    """One line per server; the last column (when each count rule's buckets fill) is free."""
    rows = [_cells(run) for run in runs]
    headings = (
        "server",
        "hostname",
        "resource",
        "policy",
        "cadence",
        "settled",
        f"GB day 0 → {days}",
        "buckets full on day",
    )
    widths = [max(len(row[i]) for row in [headings, *rows]) for i in range(len(headings) - 1)]
    right = {0, 4, 5, 6}  # numbers line up on the right
    for row in [headings, *rows]:
        cells = [
            cell.rjust(width) if index in right else cell.ljust(width)
            for index, (cell, width) in enumerate(zip(row, widths, strict=False))
        ]
        yield ("  ".join([*cells, row[-1]])).rstrip() + "\n"


def _cells(run: Backtest) -> tuple[str, ...]:
    low, high = run.settled
    start, end = run.timeline[0].size, run.timeline[-1].size
    return (
        str(run.server_id),
        run.hostname or "-",
        run.resource,
        run.policy,
        cadence_text(run.cadence),
        str(low) if low == high else f"{low}-{high}",
        f"{start} → {end}",
        ", ".join(
            f"{_RULE_WORDS[rule]} {'never' if day is None else day}" for rule, day in run.filled
        )
        or "-",
    )


def _totals(simulation: Simulation) -> Iterator[str]:
    totals = simulation.totals
    days = sorted({day for day in _SAMPLE_DAYS if day <= simulation.days} | {simulation.days})
    yield "Totals over time, all simulated servers:\n"
    yield f"  {'day':>5}  {'date':<10}  {'backups':>8}  {'size GB':>9}\n"
    for day in days:
        tick = totals[day]
        yield f"  {day:>5}  {tick.at.date().isoformat():<10}  {tick.kept:>8}  {tick.size:>9}\n"


def _hostname(hostname: str | None) -> str:
    return f" ({hostname})" if hostname else ""
