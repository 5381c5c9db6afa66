"""What an operator sees without reading logs: health pings at a URL, the audit trail in
state_dir, stale servers at the top of `pruner plan`. The real CLI against the simulator."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from pruner.sim import ScriptedResponse
from tests._receiver import Receiver, closed_port_url

from .conftest import E2E

pytestmark = pytest.mark.usefixtures("no_token_leaks")


@pytest.fixture
def pings() -> Iterator[Receiver]:
    with Receiver() as server:
        yield server


def _audit(state_dir: Path) -> list[dict[str, Any]]:
    text = (state_dir / "audit.jsonl").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines()]


def _last_plan(state_dir: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((state_dir / "last-plan.json").read_text("utf-8"))
    return document


def test_run_pings_start_then_success_and_audits_every_deletion(e2e: E2E, pings: Receiver) -> None:
    config = e2e.config(notify={"urls": [f"{pings.url}/ping/check-1"]})

    result = e2e.cli("--config", config, "run")

    assert result.returncode == 0, result.stderr
    # the fleet has a stale server: a warning for /log, before the success
    assert pings.paths() == ["/ping/check-1/start", "/ping/check-1/log", "/ping/check-1"]
    document = _last_plan(e2e.state_dir)
    assert pings.received[2].body.startswith(f"pruner pass {document['run_id']}: exit 0\n")
    entries = _audit(e2e.state_dir)
    deleted = {
        (d["resource"], d["id"]): d for d in document["decisions"] if d["action"] == "delete"
    }
    intents = {(e["resource"], e["id"]): e for e in entries if e["event"] == "intent"}
    outcomes = {(e["resource"], e["id"]): e for e in entries if e["event"] == "outcome"}
    assert len(entries) == 2 * len(deleted) > 0
    assert intents.keys() == outcomes.keys() == deleted.keys() == set(e2e.simulator.deleted)
    assert {e["outcome"] for e in outcomes.values()} == {"deleted"}
    assert {e["run_id"] for e in entries} == {document["run_id"]}
    for key, decision in deleted.items():
        expected = {k: decision[k] for k in ("server_id", "name", "created_at", "size", "policy")}
        assert {k: intents[key][k] for k in expected} == expected
        assert intents[key]["reasons"] == decision["reasons"]


def test_run_pings_fail_and_audits_the_failed_deletion(e2e: E2E, pings: Receiver) -> None:
    config = e2e.config(notify={"urls": [f"{pings.url}/p"]})
    doomed = e2e.plan(config, datetime.now(UTC)).deletions[0].backup
    answers = [ScriptedResponse(500)] * 4  # api.retries 3: every attempt fails
    e2e.simulator.script("DELETE", f"/v1/{doomed.resource}/{doomed.id}", *answers)

    result = e2e.cli("--config", config, "run")

    assert result.returncode == 1
    assert pings.paths() == ["/p/start", "/p/fail"]
    assert "FAILED: 1 deletion(s) failed" in pings.received[1].body
    outcomes = {
        (e["resource"], e["id"]): e for e in _audit(e2e.state_dir) if e["event"] == "outcome"
    }
    failed = outcomes[(doomed.resource, doomed.id)]
    assert (failed["outcome"], failed["status"]) == ("failed", 500)
    done = {key for key, e in outcomes.items() if e["outcome"] == "deleted"}
    assert done == set(e2e.simulator.deleted)


def test_run_with_a_dead_ping_endpoint_still_prunes(e2e: E2E) -> None:
    config = e2e.config(notify={"urls": [closed_port_url()], "timeout": "2s"})

    result = e2e.cli("--config", config, "run")

    assert result.returncode == 0, result.stderr
    assert e2e.simulator.deleted
    assert "notify.failed" in result.stderr + result.stdout


def test_run_dry_run_pings_nothing_and_audits_nothing(e2e: E2E, pings: Receiver) -> None:
    config = e2e.config(notify={"urls": [f"{pings.url}/p"]})

    result = e2e.cli("--config", config, "run", "--dry-run")

    assert result.returncode == 0, result.stderr
    assert pings.received == []
    assert not (e2e.state_dir / "audit.jsonl").exists()


def test_plan_shows_stale_servers_first(e2e: E2E) -> None:
    config = e2e.config()
    stale = e2e.server(hostname="app-03")

    result = e2e.cli("--config", config, "plan")

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("hostname "))
    first = lines[header + 1]  # what needs attention comes first, the stale server before all
    assert first.split()[:2] == ["app-03", str(stale["id"])]
    assert re.search(r" \d{4}-\d\d-\d\d \(\d+d\)  +stale \(\d+ held\)$", first)
