"""Scoping a pass (`--server ID|GLOB`, `--policy NAME`) through the real CLI against the simulated
API: only the servers in scope are decided and deleted, the caps count them alone, and the plan
says it was scoped."""

from __future__ import annotations

import json
from typing import Any

import pytest

from .conftest import E2E

pytestmark = pytest.mark.usefixtures("no_token_leaks")

Item = tuple[str, int]


def _owners(e2e: E2E) -> dict[Item, int]:
    return {
        (resource, entry["id"]): entry["server_id"]
        for resource in ("backups", "snapshots")
        for entry in e2e.simulator.backups(resource)
    }


def _last_plan(e2e: E2E) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(
        (e2e.state_dir / "last-plan.json").read_text(encoding="utf-8")
    )
    return document


def _deleting(e2e: E2E) -> dict[int, int]:
    """Server id -> how many of its backups and snapshots an unscoped pass would delete now."""
    counts: dict[int, int] = {}
    for decision in e2e.plan(e2e.config(), e2e.now).deletions:
        counts[decision.backup.server_id] = counts.get(decision.backup.server_id, 0) + 1
    return counts


def test_run_scoped_by_id_deletes_on_that_server_alone(e2e: E2E) -> None:
    owners = _owners(e2e)
    deleting = _deleting(e2e)
    server = max(deleting, key=lambda server_id: deleting[server_id])

    result = e2e.cli("--config", e2e.config(), "run", "--server", server)

    assert result.returncode == 0, result.stderr
    assert f"Scoped to servers {server}: no other server was planned" in result.stdout
    assert len(e2e.simulator.deleted) == deleting[server]
    assert {owners[item] for item in e2e.simulator.deleted} == {server}
    last = _last_plan(e2e)
    assert last["scope"] == {"servers": [str(server)], "policy": None}
    assert {group["server_id"] for group in last["groups"]} == {server}


def test_plan_scoped_by_glob_decides_the_matching_servers_alone(e2e: E2E) -> None:
    databases = {s["id"] for s in e2e.simulator.servers() if s["hostname"].startswith("db-")}
    assert len(databases) > 1

    result = e2e.cli("--config", e2e.config(), "plan", "--format", "json", "--server", "db-*")

    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    assert plan["scope"] == {"servers": ["db-*"], "policy": None}
    assert {group["server_id"] for group in plan["groups"]} == databases
    assert {d["server_id"] for d in plan["decisions"]} == databases
    assert e2e.simulator.request_count("DELETE") == 0


def test_run_scoped_by_policy_prunes_that_policys_groups_alone(e2e: E2E) -> None:
    result = e2e.cli("--config", e2e.config(), "run", "--policy", "snapshots")

    assert result.returncode == 0, result.stderr
    assert e2e.simulator.deleted
    assert {resource for resource, _ in e2e.simulator.deleted} == {"snapshots"}
    assert {g["policy"] for g in _last_plan(e2e)["groups"]} == {"snapshots"}


def test_run_scoped_counts_the_run_cap_over_the_scope(e2e: E2E) -> None:
    deleting = _deleting(e2e)
    server = max(deleting, key=lambda server_id: deleting[server_id])
    config = e2e.config(safety={"max_deletions_per_run": deleting[server]})
    assert sum(deleting.values()) > deleting[server]  # a whole pass would trip the cap

    result = e2e.cli("--config", config, "run", "--server", server)

    assert result.returncode == 0, result.stderr
    assert len(e2e.simulator.deleted) == deleting[server]


def test_a_server_no_listed_server_answers_to_is_a_warning_not_silence(e2e: E2E) -> None:
    result = e2e.cli("--config", e2e.config(), "run", "--server", "dv-*")

    assert result.returncode == 0, result.stderr
    assert e2e.simulator.request_count("DELETE") == 0
    problems = [p["message"] for p in _last_plan(e2e)["problems"]]
    assert any(message.startswith("--server dv-* matches no listed server") for message in problems)
    assert "--server dv-* matches no listed server" in result.stderr


def test_an_unknown_policy_exits_2_before_any_request(e2e: E2E) -> None:
    result = e2e.cli("--config", e2e.config(), "plan", "--policy", "database")

    assert result.returncode == 2
    assert "--policy database: the config has no such policy; its policies are: databases" in (
        result.stderr
    )
    assert e2e.simulator.request_count() == 0
