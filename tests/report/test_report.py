from __future__ import annotations

import io
import json
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pruner.engine.models import Backup, Decision, Group, Plan, Problem
from pruner.engine.reasons import NOT_SELECTED, SKIPPED_INCOMPLETE, Reason, skipped
from pruner.engine.scope import Scope
from pruner.report.plan_json import SCHEMA, PlanOrigin, plan_to_json, write_plan_json
from pruner.report.table import render_table

SOFIA_SUMMER = timezone(timedelta(hours=3))
GENERATED = datetime(2026, 11, 27, 3, 30, tzinfo=UTC)


def _backup(id_: int, **fields: Any) -> Backup:
    values: dict[str, Any] = {
        "resource": "backups",
        "id": id_,
        "server_id": 2478,
        "created_at": datetime(2023, 6, 19, 22, 36, 35, tzinfo=SOFIA_SUMMER)
        - timedelta(days=min(id_, 1000)),
        "name": f"{id_}_ubuntu-2gb_2023_06_19-19_34_40.qcow2.gz",
        "size": 50,
        "server_hostname": "ubuntu-2gb",
    }
    values.update(fields)
    return Backup(**values)


def _plan(dry_run: bool = True) -> Plan:
    ok = Group(
        resource="backups",
        server_id=2478,
        server_hostname="ubuntu-2gb",
        policy="default",
        status="ok",
        decisions=(
            Decision(
                _backup(0),
                "keep",
                (Reason("keep_last", "1"), Reason("keep_daily", "2023-06-19")),
            ),
            Decision(_backup(1), "delete", (NOT_SELECTED,)),
        ),
    )
    stale = Group(
        resource="snapshots",
        server_id=7,
        server_hostname="db-1",
        policy="snaps",
        status="skipped",
        guard="stale",
        blocked_deletions=1,
        messages=("its newest backup is older than stale_after 14d",),
        decisions=(
            Decision(
                _backup(5, resource="snapshots", server_id=7, server_hostname=None),
                "keep",
                (skipped("stale"),),
            ),
        ),
    )
    problem = Problem(
        "warning", "server 7 (db-1), snapshots: stale", resource="snapshots", server_id=7
    )
    return Plan(
        generated_at=GENERATED,
        now=GENERATED,
        dry_run=dry_run,
        groups=(ok, stale),
        problems=(problem,),
    )


# --- JSON -----------------------------------------------------------------------------------


def test_plan_to_json_has_the_spec_shape() -> None:
    document = plan_to_json(_plan())
    assert list(document) == [
        "schema",
        "generated_at",
        "now",
        "dry_run",
        "scope",
        "decisions",
        "groups",
        "summary",
        "problems",
    ]
    assert document["schema"] == SCHEMA == "pruner.plan/v1"
    assert document["generated_at"] == "2026-11-27T03:30:00+00:00"
    assert document["now"] == "2026-11-27T03:30:00+00:00"
    assert document["dry_run"] is True
    assert document["scope"] is None


ORIGIN = PlanOrigin(config_sha256="ab" * 32, api_base_url="https://api.vpsbg.eu/v1")


def test_plan_to_json_adds_where_the_plan_comes_from_after_the_head() -> None:
    document = plan_to_json(_plan(), origin=ORIGIN)

    assert list(document)[:6] == [
        "schema",
        "generated_at",
        "now",
        "dry_run",
        "config_sha256",
        "api_base_url",
    ]
    assert document["config_sha256"] == "ab" * 32
    assert document["api_base_url"] == "https://api.vpsbg.eu/v1"


def test_write_plan_json_writes_the_origin_as_plan_to_json_does() -> None:
    stream = io.StringIO()

    write_plan_json(_plan(), stream, origin=ORIGIN)

    assert json.loads(stream.getvalue()) == plan_to_json(_plan(), origin=ORIGIN)


def test_plan_to_json_shapes_each_decision_as_the_spec_does() -> None:
    first = plan_to_json(_plan())["decisions"][0]
    assert first == {
        "resource": "backups",
        "id": 0,
        "server_id": 2478,
        "server_hostname": "ubuntu-2gb",
        "name": "0_ubuntu-2gb_2023_06_19-19_34_40.qcow2.gz",
        "created_at": "2023-06-19T22:36:35+03:00",
        "size": 50,
        "policy": "default",
        "action": "keep",
        "reasons": ["keep_last:1", "keep_daily:2023-06-19"],
    }
    assert list(first) == [
        "resource",
        "id",
        "server_id",
        "server_hostname",
        "name",
        "created_at",
        "size",
        "policy",
        "action",
        "reasons",
    ]


def test_plan_to_json_gives_snapshots_the_groups_hostname() -> None:
    snapshot = plan_to_json(_plan())["decisions"][2]
    assert (snapshot["resource"], snapshot["server_hostname"]) == ("snapshots", "db-1")
    assert snapshot["reasons"] == ["skipped:stale"]


def test_plan_to_json_shapes_groups_with_the_added_fields() -> None:
    ok, stale = plan_to_json(_plan())["groups"]
    assert ok == {
        "resource": "backups",
        "server_id": 2478,
        "server_hostname": "ubuntu-2gb",
        "policy": "default",
        "status": "ok",
        "kept": 1,
        "deleted": 1,
        "size_freed": 50,
        "pending": 0,
        "guard": None,
        "blocked_deletions": 0,
        "messages": [],
    }
    assert (stale["status"], stale["guard"], stale["blocked_deletions"]) == ("skipped", "stale", 1)
    assert stale["messages"] == ["its newest backup is older than stale_after 14d"]


def test_plan_to_json_sums_up_and_lists_problems() -> None:
    document = plan_to_json(_plan())
    assert document["summary"] == {
        "kept": 2,
        "deleted": 1,
        "skipped_groups": 1,
        "size_freed": 50,
        "pending": 0,
    }
    assert document["problems"] == [
        {
            "level": "warning",
            "message": "server 7 (db-1), snapshots: stale",
            "resource": "snapshots",
            "server_id": 7,
            "backup_id": None,
            "field": None,
        }
    ]


def test_write_plan_json_writes_what_plan_to_json_returns() -> None:
    stream = io.StringIO()
    write_plan_json(_plan(), stream)
    assert json.loads(stream.getvalue()) == plan_to_json(_plan())


@pytest.mark.parametrize(
    "fields",
    [
        {"name": 'quote " and backslash \\ and }, {', "size": None},
        {"name": "ünïcode ☃ \u2028 tab\t", "server_hostname": None},
        {"name": None, "created_at": datetime(2024, 8, 29, 14, 21, 54, 123456, tzinfo=UTC)},
    ],
)
def test_write_plan_json_escapes_like_the_json_module(fields: dict[str, Any]) -> None:
    group = Group(
        "backups",
        1,
        None,
        None,
        "unmanaged",
        (Decision(_backup(1, **fields), "keep", (Reason('un"managed'),)),),
    )
    plan = Plan(GENERATED, GENERATED, False, (group,))
    stream = io.StringIO()
    write_plan_json(plan, stream)
    assert json.loads(stream.getvalue()) == plan_to_json(plan)


ZONES_WRITTEN = st.sampled_from(
    [
        UTC,
        SOFIA_SUMMER,
        timezone(timedelta(hours=-9, minutes=-30)),
        timezone(timedelta(0), "GMT"),
        timezone(timedelta(hours=1, seconds=7)),  # offsets with seconds: isoformat keeps them
        timezone(timedelta(minutes=5, microseconds=3)),
        ZoneInfo("Europe/Sofia"),  # 1880: an offset of +1:33:16
    ]
)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.datetimes(
            min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=ZONES_WRITTEN
        ),
        max_size=6,
    )
)
def test_write_plan_json_writes_each_created_at_as_isoformat_does(moments: list[datetime]) -> None:
    decisions = tuple(
        Decision(_backup(n, created_at=moment), "keep", (Reason("keep_all"),))
        for n, moment in enumerate(moments)
    )
    group = Group("backups", 2478, "ubuntu-2gb", "default", "ok", decisions)
    stream = io.StringIO()
    write_plan_json(Plan(GENERATED, GENERATED, False, (group,)), stream)
    written = [entry["created_at"] for entry in json.loads(stream.getvalue())["decisions"]]
    assert written == [moment.isoformat() for moment in moments]


def test_write_plan_json_writes_one_decision_per_line() -> None:
    stream = io.StringIO()
    write_plan_json(_plan(), stream)
    lines = stream.getvalue().splitlines()
    decision_lines = [line for line in lines if '"action": ' in line]
    assert len(decision_lines) == 3


def test_write_plan_json_handles_an_empty_plan() -> None:
    plan = Plan(GENERATED, GENERATED, True, ())
    stream = io.StringIO()
    write_plan_json(plan, stream)
    document = json.loads(stream.getvalue())
    assert document["decisions"] == []
    assert document == plan_to_json(plan)


# --- table ----------------------------------------------------------------------------------


def test_render_table_shows_a_line_per_server_then_totals() -> None:
    lines = render_table(_plan()).splitlines()

    assert (
        lines[0] == "Plan at 2026-11-27T03:30:00+00:00, 2 servers (dry_run: true: a pass with "
        "this config deletes nothing)"
    )
    header = lines[2].split()
    assert header[:4] == ["hostname", "server", "policy", "kept"]
    assert header[-1] == "attention"
    db, ubuntu = lines[3], lines[4]  # the stale server first
    assert db.split()[:6] == ["db-1", "7", "snaps", "1", "0", "0"]
    assert db.endswith("stale (1 held)")
    assert ubuntu.split()[:6] == ["ubuntu-2gb", "2478", "default", "1", "1", "0"]
    assert "2023-06-19 (1256d)" in ubuntu
    assert (
        "Totals: would delete 1 of 3 backups and snapshots (2 kept); disk size of the backups "
        "and snapshots it would delete: 50 GB; 1 group(s) skipped by a guard, their backups kept"
    ) in lines
    assert lines[-1] == (
        "Note: 1 warnings about single servers are in their rows; --details has each"
    )
    assert "qcow2" not in "\n".join(lines)  # no backup rows without --details
    detailed = render_table(_plan(), details=True).splitlines()
    assert (
        detailed[detailed.index("Problems:") + 1] == "  warning: server 7 (db-1), snapshots: stale"
    )


def test_render_table_lists_errors_and_account_wide_problems_and_the_caps_hint() -> None:
    capped = replace(_plan().groups[1], guard="max_delete_fraction", blocked_deletions=4)
    problems = (
        Problem("warning", "server 7 (db-1): the plan would delete 4 of 5", server_id=7),
        Problem("error", "the snapshots listing could not be read completely"),
        Problem("warning", "the listing holds no snapshots at all"),
    )
    plan = replace(_plan(), groups=(_plan().groups[0], capped), problems=problems)

    lines = render_table(plan).splitlines()

    assert lines[lines.index("Problems:") + 1 :] == [
        "  error: the snapshots listing could not be read completely",
        "  warning: the listing holds no snapshots at all",
    ]
    assert (
        "Note: caps held back 4 deletions: run with --allow-large-deletions for one pass if this "
        "is intended; 1 warnings about single servers are in their rows; --details has each"
    ) in lines


def test_render_table_says_would_delete_and_never_freed_for_a_real_config() -> None:
    table = render_table(_plan(dry_run=False))

    assert "dry_run" not in table.splitlines()[0]
    assert "would delete 1 of 3" in table
    assert not re.search(r"freed|(?<!would )delete[sd]? \d", table)


def test_render_table_details_show_every_backup_with_its_full_name_and_zone() -> None:
    name = "752_ubuntu-2gb_2026_11_27-03_30_00_with_a_long_and_telling_name.qcow2.gz"
    plan = replace(
        _plan(),
        groups=(
            replace(
                _plan().groups[0],
                decisions=(
                    Decision(_backup(0, name=name), "keep", (Reason("keep_last", "1"),)),
                    Decision(_backup(1), "delete", (NOT_SELECTED,)),
                ),
            ),
            _plan().groups[1],
        ),
    )

    table = render_table(plan, zone=ZoneInfo("UTC"), details=True)

    assert (
        "server 2478 (ubuntu-2gb) · backups · policy default · ok · would delete 1 of 2 backups "
        "(1 kept)"
    ) in table
    keep_row = next(line for line in table.splitlines() if name in line)
    assert keep_row.split() == ["keep", "0", "2023-06-19T19:36+00:00", "50", name, "keep_last:1"]
    assert "  ! its newest backup is older than stale_after 14d" in table
    assert "skipped:stale" in table


def test_render_table_counts_pending_deletions_in_their_own_column() -> None:
    table = render_table(_pending_plan()).splitlines()

    assert table[2].split()[3:6] == ["kept", "pending", "delete"]
    assert table[3].split()[3:6] == ["2", "1", "1"]
    assert "(2 kept, 1 of them pending)" in "\n".join(table)


def test_render_table_names_incomplete_groups_in_the_totals() -> None:
    group = Group(
        "backups",
        1,
        None,
        "p",
        "incomplete",
        (Decision(_backup(1), "keep", (SKIPPED_INCOMPLETE,)),),
    )
    table = render_table(Plan(GENERATED, GENERATED, True, (group,)))
    assert "1 group(s) not decided (incomplete): their backups are kept" in table
    assert table.splitlines()[3].endswith("incomplete (not decided)")


def _pending_plan() -> Plan:
    first_seen = GENERATED - timedelta(hours=3)
    waiting = Reason("pending", first_seen.isoformat())
    group = Group(
        "backups",
        2478,
        "ubuntu-2gb",
        "default",
        "ok",
        (
            Decision(_backup(0), "keep", (Reason("keep_last", "1"),)),
            Decision(_backup(1, name="x" * 80), "keep", (waiting, NOT_SELECTED)),
            Decision(_backup(2), "delete", (NOT_SELECTED,)),
        ),
    )
    return Plan(GENERATED, GENERATED, False, (group,))


def test_plan_to_json_counts_the_pending_deletions_among_the_kept() -> None:
    document = plan_to_json(_pending_plan())
    assert document["summary"]["kept"] == 2
    assert document["summary"]["pending"] == 1
    assert document["groups"][0]["pending"] == 1
    assert document["decisions"][1]["reasons"] == [
        "pending:2026-11-27T00:30:00+00:00",
        "not_selected",
    ]


def test_a_scoped_plan_says_so_in_json_and_in_the_table() -> None:
    plan = replace(_plan(), scope=Scope(("2478", "db-*"), "default"))
    assert plan_to_json(plan)["scope"] == {"servers": ["2478", "db-*"], "policy": "default"}
    stream = io.StringIO()
    write_plan_json(plan, stream)
    assert json.loads(stream.getvalue()) == plan_to_json(plan)
    table = render_table(plan).splitlines()
    assert table[1] == "Scoped to servers 2478, db-*; policy default: no other server was planned"
    assert "Scoped" not in render_table(_plan())
