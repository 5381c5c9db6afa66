"""The safety guards, end to end: each trips with its documented exit code and deletes
nothing it protects, while the rest of the fleet is pruned as planned."""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from pruner.engine.models import Plan

from .conftest import E2E, POLICIES

pytestmark = pytest.mark.usefixtures("no_token_leaks")

Item = tuple[str, int]
STARTED = 30.0  # seconds to wait for a background pass to reach its first DELETE


def _last_plan(state_dir: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((state_dir / "last-plan.json").read_text("utf-8"))
    return document


def _group(document: dict[str, Any], server_id: int, resource: str = "backups") -> dict[str, Any]:
    found: list[dict[str, Any]] = [
        g for g in document["groups"] if g["server_id"] == server_id and g["resource"] == resource
    ]
    assert len(found) == 1, f"{len(found)} groups for {resource} of server {server_id}"
    return found[0]


def _reasons(document: dict[str, Any], server_id: int, resource: str = "backups") -> set[str]:
    return {
        reason
        for d in document["decisions"]
        if d["server_id"] == server_id and d["resource"] == resource
        for reason in d["reasons"]
    }


def _skipped_by(document: dict[str, Any], server_id: int, guard: str) -> bool:
    """The server's backups group was skipped by `guard`: all kept, those it saved say so."""
    decisions = [
        d
        for d in document["decisions"]
        if d["server_id"] == server_id and d["resource"] == "backups"
    ]
    group = _group(document, server_id)
    saved = [d for d in decisions if f"skipped:{guard}" in d["reasons"]]
    return (
        group["status"] == "skipped"
        and group.get("guard", guard) == guard
        and all(d["action"] == "keep" for d in decisions)
        and len(saved) > 0
    )


def _planned(plan: Plan) -> set[Item]:
    return {(d.backup.resource, d.backup.id) for d in plan.deletions}


def _owners(e2e: E2E) -> dict[Item, int]:
    """Which server each backup and snapshot belongs to (call before a pass deletes them)."""
    return {
        (resource, item["id"]): item["server_id"]
        for resource in ("backups", "snapshots")
        for item in e2e.simulator.backups(resource)
    }


def _deleted_of(
    e2e: E2E, owners: dict[Item, int], server_ids: Iterable[int], resource: str | None = None
) -> set[Item]:
    wanted = set(server_ids)
    return {
        item
        for item in e2e.simulator.deleted
        if owners[item] in wanted and resource in (None, item[0])
    }


def _backup_ids(e2e: E2E, server_id: int) -> set[int]:
    return {b["id"] for b in e2e.simulator.backups() if b["server_id"] == server_id}


def _policies(**changes: dict[str, Any]) -> list[dict[str, Any]]:
    """The fleet's policies, with some keys of the named ones changed (None removes a key)."""
    policies = copy.deepcopy(POLICIES)
    for policy in policies:
        for key, value in changes.get(policy["name"], {}).items():
            if value is None:
                policy.pop(key, None)
            else:
                policy[key] = value
    return policies


# --- caps (exit 3) ------------------------------------------------------------------------------


def test_run_fraction_cap_exits_3_and_spares_the_servers_it_guards(e2e: E2E) -> None:
    # Every backups group would lose more than half; the snapshots policy lifts its own cap.
    config = e2e.config(
        safety={"max_delete_fraction": 0.5},
        policies=_policies(snapshots={"max_delete_fraction": 1.0}),
    )
    expected = e2e.plan(config, datetime.now(UTC))
    guarded = [g.server_id for g in expected.groups if g.guard == "max_delete_fraction"]
    owners = _owners(e2e)
    assert guarded
    assert expected.deletions

    result = e2e.cli("--config", config, "run")

    assert result.returncode == 3, result.stderr
    assert set(e2e.simulator.deleted) == _planned(expected)
    assert {resource for resource, _ in e2e.simulator.deleted} == {"snapshots"}
    last = _last_plan(e2e.state_dir)
    for server_id in guarded:
        assert not _deleted_of(e2e, owners, [server_id], "backups")
        assert _skipped_by(last, server_id, "max_delete_fraction")
    assert "max_delete_fraction" in result.stderr


def test_run_run_cap_exits_3_and_deletes_nothing_at_all(e2e: E2E) -> None:
    config = e2e.config(safety={"max_deletions_per_run": 5})

    result = e2e.cli("--config", config, "run")

    assert result.returncode == 3, result.stderr
    assert e2e.simulator.request_count("DELETE") == 0
    last = _last_plan(e2e.state_dir)
    assert all(d["action"] == "keep" for d in last["decisions"])
    skipped = [g for g in last["groups"] if g["status"] == "skipped"]
    assert any("skipped:max_deletions_per_run" in _reasons(last, g["server_id"]) for g in skipped)
    assert "max_deletions_per_run" in result.stderr


def test_run_dry_run_with_a_cap_exits_3_like_the_real_pass(e2e: E2E) -> None:
    config = e2e.config(safety={"max_deletions_per_run": 5})

    result = e2e.cli("--config", config, "run", "--dry-run")

    assert result.returncode == 3, result.stderr
    assert e2e.simulator.request_count("DELETE") == 0


def test_run_allow_large_deletions_lifts_both_caps_for_one_pass_only(e2e: E2E) -> None:
    config = e2e.config(safety={"max_delete_fraction": 0.5, "max_deletions_per_run": 5})
    listed = e2e.listing()

    lifted = e2e.cli("--config", config, "run", "--allow-large-deletions")

    assert lifted.returncode == 0, lifted.stderr
    now = datetime.fromisoformat(_last_plan(e2e.state_dir)["now"])
    expected = e2e.plan(config, now, listing=listed, allow_large_deletions=True)
    assert set(e2e.simulator.deleted) == _planned(expected)
    assert len(e2e.simulator.deleted) > 5
    # New backups pile up on one server: the next pass is capped again.
    db = e2e.server(hostname="db-01")["id"]
    newest = datetime.now(UTC).replace(microsecond=0)
    for minutes in range(1, 31):
        e2e.simulator.add_backup(db, created_at=newest - timedelta(minutes=minutes))
    deletes = e2e.simulator.request_count("DELETE")

    capped = e2e.cli("--config", config, "run")

    assert capped.returncode == 3, capped.stderr
    assert e2e.simulator.request_count("DELETE") == deletes


# --- guards that skip a server (exit 0) -------------------------------------------------------


def test_run_skips_locked_servers_and_prunes_the_rest(e2e: E2E) -> None:
    config = e2e.config()
    web = e2e.server(locked=True)["id"]  # locked in the fleet
    db = e2e.server(hostname="db-01")["id"]
    e2e.simulator.set_server(db, locked=True)
    owners = _owners(e2e)
    before = {server_id: _backup_ids(e2e, server_id) for server_id in (web, db)}

    result = e2e.cli("--config", config, "run")

    assert result.returncode == 0, result.stderr
    assert e2e.simulator.deleted  # the others were pruned
    assert not _deleted_of(e2e, owners, [web, db])
    last = _last_plan(e2e.state_dir)
    for server_id in (web, db):
        assert _backup_ids(e2e, server_id) == before[server_id]
        assert _skipped_by(last, server_id, "locked")


def test_run_server_locked_during_the_pass_keeps_its_backups_and_exits_1(e2e: E2E) -> None:
    config = e2e.config()
    db = e2e.server(hostname="db-01")["id"]
    owners = _owners(e2e)
    before = _backup_ids(e2e, db)
    locking = threading.Lock()
    locked: list[int] = []

    def lock_at_first_delete(method: str, _path: str) -> None:
        with locking:  # no DELETE is answered before the server is locked
            if method == "DELETE" and not locked:
                e2e.simulator.set_server(db, locked=True)
                locked.append(db)

    e2e.simulator.on_request(lock_at_first_delete)

    result = e2e.cli("--config", config, "run")

    assert result.returncode == 1, result.stderr  # its deletions failed (423 after retries)
    assert _backup_ids(e2e, db) == before
    assert e2e.simulator.deleted  # the other servers' deletions went on
    assert not _deleted_of(e2e, owners, [db])
    assert _group(_last_plan(e2e.state_dir), db)["status"] == "failed"


def test_run_does_not_prune_a_stale_server(e2e: E2E) -> None:
    config = e2e.config()
    stale = e2e.server(hostname="app-03")["id"]  # its backups stopped 30 days ago
    owners = _owners(e2e)
    before = _backup_ids(e2e, stale)

    result = e2e.cli("--config", config, "run")

    assert result.returncode == 0, result.stderr
    # Snapshots are made by hand: their policies have no stale_after, so they may be pruned.
    assert not _deleted_of(e2e, owners, [stale], "backups")
    assert _backup_ids(e2e, stale) == before
    last = _last_plan(e2e.state_dir)
    assert _skipped_by(last, stale, "stale")
    assert "stale" in result.stderr


def test_run_keeps_the_backups_of_terminated_and_vanished_servers(e2e: E2E) -> None:
    config = e2e.config()
    terminated = e2e.server(status="terminated")["id"]
    gone = e2e.server(hostname="mail-01")["id"]
    e2e.simulator.set_server(gone, status="deleted")  # no longer in GET /servers at all
    before = {server_id: _backup_ids(e2e, server_id) for server_id in (terminated, gone)}

    result = e2e.cli("--config", config, "run")

    assert result.returncode == 0, result.stderr
    assert e2e.simulator.deleted  # the others were pruned
    last = _last_plan(e2e.state_dir)
    for server_id in (terminated, gone):
        assert _backup_ids(e2e, server_id) == before[server_id]
        assert _group(last, server_id)["status"] == "orphan"
        assert "orphan" in _reasons(last, server_id)


def test_run_prunes_a_terminated_server_whose_policy_says_orphans_apply(e2e: E2E) -> None:
    terminated = e2e.server(status="terminated")["id"]
    orphans = {
        "name": "terminated",
        "match": {"server_ids": [terminated]},
        "keep_last": 3,
        "orphans": "apply",
        "stale_after": None,  # its backups stopped when it was terminated
    }
    config = e2e.config(policies=[orphans, *POLICIES])
    expected = e2e.plan(config, datetime.now(UTC))
    keep = set(sorted(_backup_ids(e2e, terminated))[-3:])  # ids grow with created_at

    result = e2e.cli("--config", config, "run")

    assert result.returncode == 0, result.stderr
    assert _backup_ids(e2e, terminated) == keep
    assert set(e2e.simulator.deleted) == _planned(expected)


def test_run_min_keep_floor_keeps_the_newest_backups(e2e: E2E) -> None:
    databases = {"keep_last": 0, "keep_daily": None, "keep_weekly": None, "min_keep": 2}
    config = e2e.config(policies=_policies(databases=databases))
    db = e2e.server(hostname="db-01")["id"]
    backups = [b for b in e2e.simulator.backups() if b["server_id"] == db]
    protected = {b["id"] for b in backups if "pre-upgrade" in b["name"]}
    unprotected = sorted((b["id"] for b in backups if b["id"] not in protected), reverse=True)

    result = e2e.cli("--config", config, "run")

    assert result.returncode == 0, result.stderr
    assert _backup_ids(e2e, db) == protected | set(unprotected[:2])
    assert "min_keep:2" in _reasons(_last_plan(e2e.state_dir), db)


def test_run_never_deletes_protected_backups(e2e: E2E) -> None:
    db1, db2 = e2e.server(hostname="db-01")["id"], e2e.server(hostname="db-02")["id"]
    ordinary = [
        b
        for b in e2e.simulator.backups()
        if b["server_id"] == db2 and "pre-upgrade" not in b["name"]
    ]
    chosen = ordinary[len(ordinary) // 2]["id"]  # an old one no rule would keep
    databases = {
        "keep_last": 0,
        "keep_daily": None,
        "keep_weekly": None,
        "min_keep": 0,
        "protect": {"ids": [chosen], "names": ["*pre-upgrade*"]},
    }
    config = e2e.config(policies=_policies(databases=databases))
    pre_upgrade = {
        server_id: {
            b["id"]
            for b in e2e.simulator.backups()
            if b["server_id"] == server_id and "pre-upgrade" in b["name"]
        }
        for server_id in (db1, db2)
    }
    assert all(len(ids) == 1 for ids in pre_upgrade.values())

    result = e2e.cli("--config", config, "run")

    assert result.returncode == 0, result.stderr
    assert _backup_ids(e2e, db1) == pre_upgrade[db1]
    assert _backup_ids(e2e, db2) == pre_upgrade[db2] | {chosen}
    reasons = _reasons(_last_plan(e2e.state_dir), db2)
    assert "protected:*pre-upgrade*" in reasons
    assert any(r.startswith("protected") and "pre-upgrade" not in r for r in reasons)


# --- one pass at a time (exit 75) -----------------------------------------------------------


def test_run_while_another_pass_holds_the_lock_exits_75(e2e: E2E) -> None:
    config = e2e.config(api={"concurrency": 1})  # one DELETE at a time: exactly one is held
    e2e.simulator.delete_gate.clear()  # the first pass waits at its first DELETE
    first = e2e.start("--config", config, "run")
    while not e2e.simulator.delete_started.wait(0.05):
        assert first.popen.poll() is None, first.finish().stderr
    requests = e2e.simulator.request_count()

    second = e2e.cli("--config", config, "run")

    assert second.returncode == 75, second.stderr
    assert "lock" in second.stderr.lower()
    assert e2e.simulator.request_count() == requests  # it never reached the API
    plan = e2e.cli("--config", config, "plan", "--format", "json")  # needs no lock
    assert plan.returncode == 0, plan.stderr
    assert e2e.simulator.request_count("DELETE") == 1  # the held one
    assert e2e.simulator.deleted == []
    e2e.simulator.delete_gate.set()
    finished = first.finish()
    assert finished.returncode == 0, finished.stderr
    assert e2e.simulator.deleted
