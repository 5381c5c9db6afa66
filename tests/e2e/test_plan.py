"""`pruner plan` against the simulated API: a Read key is enough, stdout is clean JSON, and the
plan is exactly what the engine decides for the account's state. No DELETE is ever sent."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pruner.engine.models import Plan
from pruner.engine.reasons import texts
from pruner.sim import ScriptedResponse

from .conftest import E2E

pytestmark = pytest.mark.usefixtures("no_token_leaks")

Row = tuple[str, int, str, tuple[str, ...]]
GroupRow = tuple[str, int, str | None, str]


def _rows(document: dict[str, Any]) -> set[Row]:
    return {
        (d["resource"], d["id"], d["action"], tuple(d["reasons"])) for d in document["decisions"]
    }


def _engine_rows(plan: Plan) -> set[Row]:
    return {
        (d.backup.resource, d.backup.id, d.action, tuple(texts(d.reasons))) for d in plan.decisions
    }


def _groups(document: dict[str, Any]) -> set[GroupRow]:
    return {(g["resource"], g["server_id"], g["policy"], g["status"]) for g in document["groups"]}


def _engine_groups(plan: Plan) -> set[GroupRow]:
    return {(g.resource, g.server_id, g.policy, g.status) for g in plan.groups}


def test_plan_json_with_read_key_matches_the_engine(e2e: E2E, read_token: str) -> None:
    config = e2e.config()
    before = datetime.now(UTC).replace(microsecond=0)

    result = e2e.cli(
        "--config", config, "plan", "--format", "json", env={"VPSBG_API_TOKEN": read_token}
    )

    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)  # clean: nothing but the plan on stdout
    assert document["schema"] == "pruner.plan/v1"
    now = datetime.fromisoformat(document["now"])
    assert before <= now <= datetime.now(UTC)
    expected = e2e.plan(config, now)
    assert _rows(document) == _engine_rows(expected)
    assert _groups(document) == _engine_groups(expected)
    deletions = [d for d in document["decisions"] if d["action"] == "delete"]
    assert document["summary"]["deleted"] == len(deletions) == len(expected.deletions) > 0
    assert e2e.simulator.request_count("DELETE") == 0


def test_plan_shows_every_kind_of_group_of_the_fleet(e2e: E2E) -> None:
    config = e2e.config()

    result = e2e.cli("--config", config, "plan", "--format", "json")

    assert result.returncode == 0, result.stderr
    groups = {(g["server_id"], g["resource"]): g for g in json.loads(result.stdout)["groups"]}
    locked = e2e.server(locked=True)["id"]
    terminated = e2e.server(status="terminated")["id"]
    stale = e2e.server(hostname="app-03")["id"]
    assert groups[locked, "backups"]["status"] == "skipped"
    assert groups[stale, "backups"]["status"] == "skipped"
    assert groups[terminated, "backups"]["status"] == "orphan"
    assert {g["status"] for g in groups.values()} == {"ok", "skipped", "orphan"}


def test_plan_now_fixes_the_clock(e2e: E2E) -> None:
    # Ten days on, a max_age of 30d removes backups that the wall clock would keep.
    later = e2e.now + timedelta(days=10)
    config = e2e.config(policies=[{"name": "all", "keep_last": -1, "max_age": "30d"}])

    result = e2e.cli("--config", config, "plan", "--format", "json", "--now", later.isoformat())

    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert datetime.fromisoformat(document["now"]) == later
    assert _rows(document) == _engine_rows(e2e.plan(config, later))
    reasons = {r for _, _, action, rs in _rows(document) if action == "delete" for r in rs}
    assert reasons == {"max_age:30d"}


def test_plan_table_with_a_write_key_and_dry_run_off_sends_no_delete(e2e: E2E) -> None:
    config = e2e.config(dry_run=False)

    result = e2e.cli("--config", config, "plan")

    assert result.returncode == 0, result.stderr
    for server in e2e.simulator.servers():
        assert server["hostname"] in result.stdout
    assert not result.stdout.lstrip().startswith("{")  # a table, not JSON
    assert e2e.simulator.request_count("GET") > 0
    assert e2e.simulator.request_count("DELETE") == 0
    assert e2e.simulator.deleted == []


def test_plan_json_stays_clean_with_debug_logs_and_retries(e2e: E2E) -> None:
    config = e2e.config()
    e2e.simulator.faults.rate_limit_every = 4  # retries log warnings: on stderr only
    e2e.simulator.faults.retry_after = 0.01

    result = e2e.cli("--log-level", "debug", "--config", config, "plan", "--format", "json")

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["schema"] == "pruner.plan/v1"
    events = [json.loads(line) for line in result.stderr.splitlines()]  # JSON lines: no terminal
    assert any(event.get("level") == "debug" for event in events)


def test_plan_of_an_incomplete_listing_exits_1_and_deletes_nothing_it_covers(e2e: E2E) -> None:
    config = e2e.config()
    e2e.simulator.script("GET", "/v1/snapshots", *[ScriptedResponse(500, {"message": "x"})] * 20)

    result = e2e.cli("--config", config, "plan", "--format", "json")

    assert result.returncode == 1, result.stderr
    document = json.loads(result.stdout)  # the plan is still shown
    snapshots = [d for d in document["decisions"] if d["resource"] == "snapshots"]
    assert all(d["action"] == "keep" for d in snapshots)
    assert any(d["action"] == "delete" for d in document["decisions"])  # backups: complete
    assert "snapshots" in result.stderr
    assert e2e.simulator.request_count("DELETE") == 0
