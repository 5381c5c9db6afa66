"""Faults of the API during a real pass: 500s, 429s, 423s and garbage bodies, while listing and
while deleting. Whatever happens, nothing outside the fault-free plan is deleted; an incomplete
listing deletes nothing it covers (exit 1); and passes under random faults converge on the
fault-free outcome."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from pruner.engine.models import Plan
from pruner.sim import Faults, ScriptedResponse

from .conftest import E2E

pytestmark = pytest.mark.usefixtures("no_token_leaks")

Item = tuple[str, int]

FAULTS: dict[str, dict[str, Any]] = {
    "500": {"error_rate": 0.3},
    "429": {"rate_limit_every": 3, "retry_after": 0.01},
    "423": {"locked_delete_rate": 0.5},  # DELETEs only
    "garbage": {"garbage_rate": 0.3},  # GETs only: truncated JSON or an HTML page
}
RETRIES_EXHAUSTED = 100  # more bad answers than 3 retries (and any relisting) can use up
ANSWERS = {
    "500": ScriptedResponse(500, {"message": "Server Error"}),
    "truncated": ScriptedResponse(200, '{"data": [{"id": 1, "server_id": '),
    "html": ScriptedResponse(
        200, "<!DOCTYPE html><html><body>VPSBG</body></html>", {"Content-Type": "text/html"}
    ),
}


def _planned(plan: Plan) -> set[Item]:
    return {(d.backup.resource, d.backup.id) for d in plan.deletions}


def _fleet(e2e: E2E) -> set[Item]:
    return {
        (resource, item["id"])
        for resource in ("backups", "snapshots")
        for item in e2e.simulator.backups(resource)
    }


def _last_plan(state_dir: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((state_dir / "last-plan.json").read_text("utf-8"))
    return document


def _last_deletions(state_dir: Path) -> set[Item]:
    decisions = _last_plan(state_dir)["decisions"]
    return {(d["resource"], d["id"]) for d in decisions if d["action"] == "delete"}


def _set_faults(faults: Faults, knobs: dict[str, Any]) -> None:
    for knob, value in knobs.items():
        setattr(faults, knob, value)


def _at_first_delete(e2e: E2E, change: Any) -> None:
    """Call `change()` once, when the first DELETE arrives (before it is answered)."""
    done: list[bool] = []
    lock = threading.Lock()

    def callback(method: str, _path: str) -> None:
        with lock:
            if method == "DELETE" and not done:
                change()
                done.append(True)

    e2e.simulator.on_request(callback)


@pytest.mark.parametrize(
    ("fault", "phase"),
    [
        ("500", "listing"),
        ("500", "deleting"),
        ("429", "listing"),
        ("429", "deleting"),
        ("423", "deleting"),
        ("garbage", "listing"),
    ],
)
def test_run_under_faults_deletes_only_what_the_fault_free_plan_deletes(
    e2e: E2E, fault: str, phase: str
) -> None:
    config = e2e.config()
    planned = _planned(e2e.plan(config, datetime.now(UTC)))
    faults = e2e.simulator.faults
    if phase == "listing":
        _set_faults(faults, FAULTS[fault])
        _at_first_delete(e2e, lambda: _set_faults(faults, FAULTS[fault] | _off(fault)))
    else:
        _at_first_delete(e2e, lambda: _set_faults(faults, FAULTS[fault]))

    result = e2e.cli("--config", config, "run")

    deleted = set(e2e.simulator.deleted)
    assert result.returncode in (0, 1), result.stderr
    assert deleted <= planned
    assert deleted <= _last_deletions(e2e.state_dir)
    if deleted != planned:  # some deletion failed or a listing was incomplete: not a success
        assert result.returncode == 1, result.stderr
    if result.returncode == 0:
        assert deleted == planned


def _off(fault: str) -> dict[str, Any]:
    return {knob: 0 for knob in FAULTS[fault] if knob != "retry_after"}


@pytest.mark.parametrize(
    ("resource", "request_number", "answer"),
    [
        ("backups", 1, "500"),
        ("backups", 2, "truncated"),
        ("snapshots", 1, "html"),
    ],
)
def test_run_with_an_incomplete_listing_deletes_nothing_it_covers_and_exits_1(
    e2e: E2E, resource: str, request_number: int, answer: str
) -> None:
    config = e2e.config()
    planned = _planned(e2e.plan(config, datetime.now(UTC)))
    path = f"/v1/{resource}"
    seen: list[str] = []
    lock = threading.Lock()

    def break_the_listing(method: str, request_path: str) -> None:
        with lock:  # from the Nth page request on, every answer for that listing is bad
            if method == "GET" and request_path == path:
                seen.append(request_path)
                if len(seen) == request_number:
                    e2e.simulator.script("GET", path, *[ANSWERS[answer]] * RETRIES_EXHAUSTED)

    e2e.simulator.on_request(break_the_listing)

    result = e2e.cli("--config", config, "run")

    assert result.returncode == 1, result.stderr
    deleted = set(e2e.simulator.deleted)
    assert not {item for item in deleted if item[0] == resource}
    others = {item for item in planned if item[0] != resource}
    assert deleted == others  # the other listing was complete: pruned as planned
    assert resource in result.stderr
    last = _last_plan(e2e.state_dir)
    assert not {item for item in _last_deletions(e2e.state_dir) if item[0] == resource}
    assert any(p["level"] == "error" and p["resource"] == resource for p in last["problems"])


def test_run_with_an_incomplete_servers_listing_deletes_nothing_at_all(e2e: E2E) -> None:
    config = e2e.config()
    e2e.simulator.script("GET", "/v1/servers", *[ANSWERS["500"]] * RETRIES_EXHAUSTED)

    result = e2e.cli("--config", config, "run")

    assert result.returncode == 1, result.stderr
    assert e2e.simulator.request_count("DELETE") == 0
    assert "servers" in result.stderr


def test_run_counts_a_delete_whose_answer_was_lost_as_done(e2e: E2E) -> None:
    config = e2e.config()
    planned = _planned(e2e.plan(config, datetime.now(UTC)))
    lost, vanished = sorted(item_id for resource, item_id in planned if resource == "backups")[:2]
    # One is deleted but its answer is lost (the retry gets 404); the other vanished meanwhile.
    e2e.simulator.script("DELETE", f"/v1/backups/{lost}", ScriptedResponse(502, perform=True))
    e2e.simulator.script("DELETE", f"/v1/backups/{vanished}", ScriptedResponse(404, perform=True))

    result = e2e.cli("--config", config, "run")

    assert result.returncode == 0, result.stderr
    assert _fleet(e2e).isdisjoint(planned)
    assert all(g["status"] != "failed" for g in _last_plan(e2e.state_dir)["groups"])


def test_run_passes_under_random_faults_converge_on_the_fault_free_outcome(e2e: E2E) -> None:
    config = e2e.config()
    planned = _planned(e2e.plan(config, datetime.now(UTC)))
    outcome = _fleet(e2e) - planned
    e2e.simulator.faults = Faults(
        error_rate=0.15,
        rate_limit_every=7,
        retry_after=0.01,
        locked_delete_rate=0.15,
        garbage_rate=0.1,
    )

    codes = []
    for _ in range(6):
        result = e2e.cli("--config", config, "run")
        codes.append(result.returncode)
        assert result.returncode in (0, 1), result.stderr
        assert set(e2e.simulator.deleted) <= planned
        if _fleet(e2e) == outcome:
            break
    assert _fleet(e2e) == outcome, f"not converged after {len(codes)} passes (exits {codes})"

    e2e.simulator.faults = Faults()
    deletes = e2e.simulator.request_count("DELETE")
    final = e2e.cli("--config", config, "run")

    assert final.returncode == 0, final.stderr
    assert e2e.simulator.request_count("DELETE") == deletes
