"""Alerts that reach people, from the real CLI against the simulator: a tripped cap is a `/fail`
ping and a webhook whose paragraph says which cap, the numbers and what to do; a pass with a
stale server logs it to `/log` and succeeds; a webhook receiver that is down leaves the pass as
it would have been. The receivers run on 127.0.0.1 in the test."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests._receiver import Receiver, closed_port_url

from .conftest import E2E, E2E_WRITE_TOKEN

pytestmark = pytest.mark.usefixtures("no_token_leaks")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as server:
        yield server


def _last_plan(state_dir: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((state_dir / "last-plan.json").read_text("utf-8"))
    return document


def _server(group: dict[str, Any]) -> str:
    return f"server {group['server_id']} ({group['server_hostname']}) {group['resource']}"


def test_a_tripped_cap_reaches_the_ping_and_the_webhook_in_words(
    e2e: E2E, receiver: Receiver
) -> None:
    notify = {"urls": [f"{receiver.url}/ping/uuid"], "webhooks": [f"{receiver.url}/hook?key=k1"]}
    config = e2e.config(safety={"max_deletions_per_run": 5}, notify=notify)

    result = e2e.cli("--config", config, "run")

    assert result.returncode == 3, result.stderr
    assert e2e.simulator.request_count("DELETE") == 0
    assert sorted(receiver.paths()) == ["/hook?key=k1", "/ping/uuid/fail", "/ping/uuid/start"]
    plan = _last_plan(e2e.state_dir)
    capped = [g for g in plan["groups"] if g["guard"] == "max_deletions_per_run"]
    planned = sum(g["blocked_deletions"] for g in capped)
    servers = len({g["server_id"] for g in capped})
    (stale,) = [g for g in plan["groups"] if g["guard"] == "stale"]
    listed = len(plan["decisions"])
    paragraph = (
        f"pruner on {socket.gethostname()}: pass {plan['run_id']} deleted 0 of {listed} backups "
        f"and snapshots ({listed} kept) (exit 3): the run cap safety.max_deletions_per_run (5) "
        f"would have been exceeded ({planned} deletions "
        f"planned across {servers} servers), so none was made. Run `pruner run "
        "--allow-large-deletions` once if this is intended, or raise "
        f"safety.max_deletions_per_run. Also: {_server(stale)}: no new backup for "
    )
    ping = next(r for r in receiver.received if r.path == "/ping/uuid/fail")
    assert ping.body.startswith(paragraph)
    hook = next(r for r in receiver.received if r.path.startswith("/hook"))
    document = hook.json()
    assert (document["schema"], document["event"]) == ("pruner.webhook/v1", "pass.finished")
    assert (document["run_id"], document["exit_code"], document["status"]) == (
        plan["run_id"],
        3,
        "fail",
    )
    assert document["text"] == ping.body.split("\n\n")[0]
    assert document["summary"]["blocked_by_caps"] == planned
    assert {p["guard"] for p in document["problems"]} >= {"max_deletions_per_run", "stale"}
    for request in receiver.received:  # neither the ping nor the webhook carries the API token
        assert E2E_WRITE_TOKEN not in request.body
        assert E2E_WRITE_TOKEN not in json.dumps(request.headers)
        assert "Authorization" not in request.headers


def test_a_stale_server_is_logged_and_the_pass_succeeds(e2e: E2E, receiver: Receiver) -> None:
    notify = {"urls": [f"{receiver.url}/p"], "webhooks": [f"{receiver.url}/hook"]}
    config = e2e.config(notify=notify)

    result = e2e.cli("--config", config, "run")

    assert result.returncode == 0, result.stderr
    assert e2e.simulator.deleted
    pings = [r.path for r in receiver.received if r.path.startswith("/p")]
    assert pings == ["/p/start", "/p/log", "/p"]
    plan = _last_plan(e2e.state_dir)
    (stale,) = [g for g in plan["groups"] if g["guard"] == "stale"]
    logged = receiver.received[1].body
    deleted, listed = len(e2e.simulator.deleted), len(plan["decisions"])
    assert logged.startswith(
        f"pruner on {socket.gethostname()}: pass {plan['run_id']} deleted {deleted} of "
        f"{listed} backups and snapshots ({listed - deleted} kept) (exit 0): "
        f"{_server(stale)}: no new backup for "
    )
    locked = [g for g in plan["groups"] if g["guard"] == "locked" and g["blocked_deletions"]]
    for group in locked:
        assert f"{_server(group)} ({group['blocked_deletions']} deletions)" in logged
    document = next(r for r in receiver.received if r.path == "/hook").json()
    assert (document["status"], document["exit_code"]) == ("warning", 0)
    assert document["text"] == logged.rstrip("\n")


def test_a_webhook_receiver_that_is_down_leaves_the_pass_unaffected(
    e2e: E2E, receiver: Receiver
) -> None:
    down = [closed_port_url(), f"{receiver.url}/down/hook"]
    config = e2e.config(notify={"webhooks": down, "timeout": "1s"})
    listed = e2e.listing()

    result = e2e.cli("--config", config, "run")

    assert result.returncode == 0, result.stderr
    plan = _last_plan(e2e.state_dir)
    expected = e2e.plan(config, datetime.fromisoformat(plan["now"]), listing=listed)
    assert set(e2e.simulator.deleted) == {
        (d.backup.resource, d.backup.id) for d in expected.deletions
    }
    assert receiver.paths() == ["/down/hook"] * 3  # tried three times, then given up
    events = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    failed = sorted(
        (e["url"], e["attempts"], e["level"]) for e in events if e["event"] == "webhook.failed"
    )
    assert failed == [("notify.webhooks[0]", 3, "warning"), ("notify.webhooks[1]", 3, "warning")]
