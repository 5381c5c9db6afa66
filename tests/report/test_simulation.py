"""A backtest in words and in JSON: the `pruner.simulation/v1` document and the table."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from pruner.engine.models import Backup, Policy
from pruner.engine.planner import build_plan
from pruner.engine.simulate import Simulation, simulate
from pruner.report.simulation import (
    SCHEMA,
    cadence_text,
    render_simulation_table,
    simulation_to_json,
    write_simulation_json,
)
from tests._factories import backup, listing, policy

NOW = datetime(2026, 1, 5, 3, 30, tzinfo=UTC)
DAY = timedelta(days=1)


def _daily(server_id: int, count: int, hostname: str) -> list[Backup]:
    return [
        backup(
            server_id * 1000 + n, server_id, NOW - timedelta(hours=2) - n * DAY, hostname=hostname
        )
        for n in range(count)
    ]


def _simulation(days: int = 365) -> Simulation:
    backups = [
        *_daily(2478, 30, "ubuntu-2gb"),
        *_daily(7, 1, "db-1"),
        *_daily(9, 3, "mail-1"),
    ]
    policies: list[Policy] = [
        policy("databases", hostnames=["db-*"], keep_last=2),
        policy("default", hostnames=["ubuntu-*"], keep_daily=7, keep_weekly=4, keep_monthly=6),
    ]
    plan = build_plan(
        listing(backups),
        policies,
        now=NOW,
        generated_at=NOW,
        zone=None,
        max_deletions_per_run=None,
        dry_run=True,
    )
    return simulate(plan, policies, days=days)


def test_the_json_has_the_documented_shape() -> None:
    document = simulation_to_json(_simulation(days=2))

    assert list(document) == ["schema", "now", "days", "servers", "totals", "not_simulated"]
    assert document["schema"] == SCHEMA == "pruner.simulation/v1"
    assert document["now"] == "2026-01-05T03:30:00+00:00"
    assert document["days"] == 2
    db, default = document["servers"]
    assert list(default) == [
        "server_id",
        "hostname",
        "resource",
        "policy",
        "cadence_seconds",
        "timeline",
        "settled",
        "filled",
    ]
    assert (default["server_id"], default["hostname"], default["resource"], default["policy"]) == (
        2478,
        "ubuntu-2gb",
        "backups",
        "default",
    )
    assert default["cadence_seconds"] == 86400
    assert isinstance(default["cadence_seconds"], int)
    assert db["cadence_seconds"] is None  # a lone backup
    # Tue 2026-01-06: the 7 daily, 2 more Sundays, the oldest (monthly has budget left): 10.
    # Wed: Dec 31 leaves the daily ones but stays as December's newest: 11.
    assert default["timeline"][1] == {"at": "2026-01-06T03:30:00+00:00", "kept": 10, "size": 500}
    assert len(default["timeline"]) == 3
    assert default["settled"] == {"min": 10, "max": 11}
    assert default["filled"] == {"keep_daily": 0, "keep_weekly": 0, "keep_monthly": None}
    assert document["totals"][0] == {"at": "2026-01-05T03:30:00+00:00", "kept": 11, "size": 550}
    assert document["not_simulated"] == [
        {
            "server_id": 9,
            "hostname": "mail-1",
            "resource": "backups",
            "policy": None,
            "why": "no policy matches it",
        }
    ]


def test_the_json_on_a_stream_is_the_same_document_on_one_line() -> None:
    simulation = _simulation(days=3)
    stream = io.StringIO()

    write_simulation_json(simulation, stream)

    assert stream.getvalue().count("\n") == 1
    assert json.loads(stream.getvalue()) == simulation_to_json(simulation)


def test_a_cadence_with_a_fraction_of_a_second_stays_exact_in_the_json() -> None:
    simulation = _simulation(days=1)
    odd = replace(simulation.backtests[0], cadence=timedelta(seconds=1.5))

    document = simulation_to_json(replace(simulation, backtests=(odd,)))

    assert document["servers"][0]["cadence_seconds"] == 1.5


def test_the_table_has_one_line_per_server_then_the_totals() -> None:
    text = render_simulation_table(_simulation())

    lines = text.splitlines()
    [db] = [line for line in lines if " db-1 " in line]
    [default] = [line for line in lines if " ubuntu-2gb " in line]
    assert db.split()[:6] == ["7", "db-1", "backups", "databases", "none", "1"]
    assert "last never" in db  # one backup, no cadence: keep_last 2 never fills
    assert default.split()[:6] == ["2478", "ubuntu-2gb", "backups", "default", "1d", "13-15"]
    assert "500 → 650" in default  # 10 backups of 50 GB on day 0, 13 on day 365
    assert default.endswith("daily 0, weekly 0, monthly 116")
    totals = lines[lines.index("Totals over time, all simulated servers:") + 2 :]
    assert [row.split()[:2] for row in totals[:5]] == [
        ["0", "2026-01-05"],
        ["30", "2026-02-04"],
        ["90", "2026-04-05"],
        ["180", "2026-07-04"],
        ["365", "2027-01-05"],
    ]
    assert "server 9 (mail-1), backups: no policy matches it" in text


def test_the_totals_end_at_the_horizon() -> None:
    text = render_simulation_table(_simulation(days=45))

    totals = text.split("Totals over time, all simulated servers:\n", 1)[1].splitlines()[1:]
    assert [row.split()[0] for row in totals if row.strip()[:1].isdigit()] == ["0", "30", "45"]


def test_the_table_says_when_no_server_is_simulated() -> None:
    plan = build_plan(
        listing([backup(1)]),
        [policy(hostnames=["db-*"], keep_last=1)],
        now=NOW,
        generated_at=NOW,
        zone=None,
        max_deletions_per_run=None,
        dry_run=True,
    )

    text = render_simulation_table(simulate(plan, [], days=3))

    assert "No server is simulated" in text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (86400, "1d"),
        (86409, "1d"),
        (86351, "23h59min"),
        (43200, "12h"),
        (21600, "6h"),
        (604751, "6d23h"),
        (1855814.5, "21d11h"),
        (90, "1min30s"),
        (0.2, "0s"),
        (None, "none"),
    ],
)
def test_cadence_text_shows_the_two_largest_units(seconds: float | None, text: str) -> None:
    cadence = None if seconds is None else timedelta(seconds=seconds)

    assert cadence_text(cadence) == text
