"""Webhooks against a receiver the test runs on 127.0.0.1: the JSON a pass sends, retries with
backoff within a bound, a receiver that is down or slow never holding or failing the pass, and
the API token never sent. The passes run against the simulator."""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from structlog.testing import capture_logs

from pruner.actions.common import for_config
from pruner.config.load import parse_config
from pruner.config.schema import Config
from pruner.ops.notify import Notifier
from pruner.ops.webhook import SCHEMA, Webhooks
from pruner.report.pass_summary import PassSummary
from pruner.sim import WRITE_TOKEN, Fleet, Simulator
from pruner.sim import generate_fleet as _generate_fleet
from tests._receiver import Receiver, closed_port_url
from tests.ops._alerting import NOW, alert_config, pass_with_hooks


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as server:
        yield server


@pytest.fixture(scope="module")
def fleet() -> Fleet:
    return _generate_fleet(now=NOW, servers=3, days=8)


def _local_session() -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # no proxy from the environment for 127.0.0.1
    return session


def _webhooks(config: Config, **options: Any) -> Webhooks:
    options.setdefault("sleep", lambda _: None)
    return Webhooks(
        config.notify,
        host="backup-01",
        max_deletions_per_run=config.safety.max_deletions_per_run,
        session_factory=_local_session,
        **options,
    )


def _finished(hook: Webhooks) -> None:
    assert hook.wait(timeout=10), "the webhook deliveries did not end"


def test_webhooks_post_the_summary_and_problems_of_a_pass(
    sim: Simulator, tmp_path: Path, receiver: Receiver
) -> None:
    config = alert_config(
        sim, tmp_path, safety={"max_deletions_per_run": 2}, webhooks=[f"{receiver.url}/hook"]
    )
    hook = _webhooks(config)

    result = pass_with_hooks(config, (hook,))
    _finished(hook)

    assert result.exit_code == 3
    assert receiver.paths() == ["/hook"]
    posted = receiver.received[0]
    assert posted.headers["Content-Type"] == "application/json"
    document = posted.json()
    assert {key: document[key] for key in ("schema", "event", "host", "run_id")} == {
        "schema": SCHEMA,
        "event": "pass.finished",
        "host": "backup-01",
        "run_id": result.run_id,
    }
    assert (document["exit_code"], document["dry_run"], document["status"]) == (3, False, "fail")
    assert document["text"].startswith(
        f"pruner on backup-01: pass {result.run_id} deleted 0 of {result.listed} backups "
        f"({result.listed} kept) (exit 3): the run cap "
        "safety.max_deletions_per_run (2) would have been exceeded"
    )
    summary = document["summary"]
    assert summary["blocked_by_caps"] == result.blocked_by_caps > 2
    assert summary["kept"] == sum(1 for d in result.plan.decisions if d.action == "keep")
    capped = [p for p in document["problems"] if p["guard"] == "max_deletions_per_run"]
    assert len(capped) == 1
    assert capped[0]["level"] == "warning"
    assert document["problems_left_out"] == 0


def test_webhooks_never_carry_the_api_token(
    sim: Simulator, tmp_path: Path, receiver: Receiver
) -> None:
    config = alert_config(sim, tmp_path, webhooks=[f"{receiver.url}/hook"])
    hook = _webhooks(config)

    pass_with_hooks(config, (hook,))
    _finished(hook)

    posted = receiver.received[0]
    assert "Authorization" not in posted.headers
    assert WRITE_TOKEN not in posted.body
    assert WRITE_TOKEN not in json.dumps(posted.headers)


@pytest.mark.parametrize(("stale_after", "status"), [("1min", "warning"), ("14d", "ok")])
def test_webhooks_status_of_a_good_pass_is_warning_when_a_server_is_stale(
    sim: Simulator, tmp_path: Path, receiver: Receiver, stale_after: str, status: str
) -> None:
    policy = {"stale_after": stale_after}
    config = alert_config(sim, tmp_path, policy=policy, webhooks=[f"{receiver.url}/hook"])
    hook = _webhooks(config)

    result = pass_with_hooks(config, (hook,))
    _finished(hook)

    document = receiver.received[0].json()
    assert (document["status"], document["exit_code"]) == (status, 0)
    if status == "ok":  # nothing for a person: the summary, as the log words it
        assert document["text"] == (
            f"pruner on backup-01: pass {result.run_id}: {PassSummary.of(result).sentence()}"
        )
    else:
        assert document["text"].startswith(
            f"pruner on backup-01: pass {result.run_id} deleted 0 of {result.listed} backups "
            f"({result.listed} kept) (exit 0): 3 servers are "
            "stale"
        )
        stale = [p for p in document["problems"] if p["guard"] == "stale"]
        assert [p["server_id"] for p in stale] == [s["id"] for s in sim.servers()]


def test_webhooks_retry_a_receiver_that_fails_once(
    sim: Simulator, tmp_path: Path, receiver: Receiver
) -> None:
    config = alert_config(sim, tmp_path, webhooks=[f"{receiver.url}/flaky"])
    sleeps: list[float] = []
    hook = _webhooks(config, sleep=sleeps.append, rng=random.Random(0))

    with capture_logs() as logs:
        pass_with_hooks(config, (hook,))
        _finished(hook)

    assert receiver.paths() == ["/flaky", "/flaky"]
    assert receiver.received[0].body == receiver.received[1].body
    assert len(sleeps) == 1
    assert 0.1 <= sleeps[0] <= 0.2  # notify.timeout / 10 at most, jittered in its upper half
    assert not [e for e in logs if e["event"] == "webhook.failed"]


def test_webhooks_give_up_after_three_tries_with_a_warning_that_hides_the_url(
    sim: Simulator, tmp_path: Path, receiver: Receiver
) -> None:
    config = alert_config(sim, tmp_path, webhooks=[f"{receiver.url}/down/secret-key"])
    sleeps: list[float] = []
    hook = _webhooks(config, sleep=sleeps.append)

    with capture_logs() as logs:
        result = pass_with_hooks(config, (hook,))
        _finished(hook)

    assert result.exit_code == 0
    assert receiver.paths() == ["/down/secret-key"] * 3
    assert len(sleeps) == 2
    assert sleeps[1] > sleeps[0]
    failed = [e for e in logs if e["event"] == "webhook.failed"]
    assert [(e["url"], e["host"], e["attempts"], e["log_level"]) for e in failed] == [
        ("notify.webhooks[0]", "127.0.0.1", 3, "warning")
    ]
    assert "HTTP 500" in failed[0]["message"]
    assert "secret-key" not in str(failed)


def test_webhooks_do_not_retry_a_receiver_that_refuses_the_post(
    sim: Simulator, tmp_path: Path, receiver: Receiver
) -> None:
    config = alert_config(sim, tmp_path, webhooks=[f"{receiver.url}/gone"])
    hook = _webhooks(config)

    with capture_logs() as logs:
        pass_with_hooks(config, (hook,))
        _finished(hook)

    assert receiver.paths() == ["/gone"]
    failed = [e for e in logs if e["event"] == "webhook.failed"]
    assert [(e["attempts"], "HTTP 404" in e["message"]) for e in failed] == [(1, True)]


def test_a_dead_receiver_is_a_warning_and_the_other_receivers_still_get_the_post(
    sim: Simulator, tmp_path: Path, receiver: Receiver
) -> None:
    config = alert_config(sim, tmp_path, webhooks=[closed_port_url(), f"{receiver.url}/hook"])
    hook = _webhooks(config)

    with capture_logs() as logs:
        result = pass_with_hooks(config, (hook,))
        _finished(hook)

    assert result.exit_code == 0
    assert receiver.paths() == ["/hook"]
    failed = [e for e in logs if e["event"] == "webhook.failed"]
    assert [(e["url"], e["attempts"]) for e in failed] == [("notify.webhooks[0]", 3)]
    assert "no answer" in failed[0]["message"]


def test_a_slow_receiver_does_not_hold_the_pass(
    sim: Simulator, tmp_path: Path, receiver: Receiver
) -> None:
    config = alert_config(sim, tmp_path, webhooks=[f"{receiver.url}/held"])
    hook = _webhooks(config)

    result = pass_with_hooks(config, (hook,))  # returns while the receiver still holds the POST

    assert receiver.arrived.wait(timeout=10)
    assert not hook.wait(timeout=0)
    receiver.release.set()
    _finished(hook)
    assert result.exit_code == 0
    assert receiver.paths() == ["/held"]


def test_webhooks_stop_trying_at_their_deadline(
    sim: Simulator, tmp_path: Path, receiver: Receiver
) -> None:
    config = alert_config(sim, tmp_path, webhooks=[f"{receiver.url}/down"], timeout="2s")
    ticks = itertools.count(0.0, 2.5)  # each reading of the clock: 2.5 s later
    hook = _webhooks(config, monotonic=lambda: next(ticks))

    with capture_logs() as logs:
        pass_with_hooks(config, (hook,))
        _finished(hook)

    assert len(receiver.paths()) < 3  # 3 tries have 3 times notify.timeout, not more
    failed = [e for e in logs if e["event"] == "webhook.failed"]
    assert len(failed) == 1
    assert "within 6s" in failed[0]["message"]


@pytest.mark.parametrize(("on_dry_run", "posts"), [(False, 0), (True, 1)])
def test_webhooks_post_dry_runs_only_when_asked(
    sim: Simulator, tmp_path: Path, receiver: Receiver, on_dry_run: bool, posts: int
) -> None:
    config = alert_config(sim, tmp_path, webhooks=[f"{receiver.url}/hook"], on_dry_run=on_dry_run)
    hook = _webhooks(config)

    pass_with_hooks(config, (hook,), dry_run=True)
    _finished(hook)

    assert len(receiver.received) == posts
    if posts:
        document = receiver.received[0].json()
        assert document["dry_run"] is True
        assert "would_delete" in document["summary"]


def test_webhooks_tell_of_a_pass_that_raised(tmp_path: Path, receiver: Receiver) -> None:
    settings = {
        "notify": {"webhooks": [f"{receiver.url}/hook"]},
        "policies": [{"name": "a", "keep_last": 1}],
    }
    config = parse_config(json.dumps(settings), source="test.yaml")
    hook = _webhooks(config)

    hook.pass_started("run9", dry_run=False)
    hook.pass_failed("run9", RuntimeError("a bug"))
    _finished(hook)

    document = receiver.received[0].json()
    assert {key: document[key] for key in ("event", "run_id", "status", "exit_code")} == {
        "event": "pass.failed",
        "run_id": "run9",
        "status": "fail",
        "exit_code": 1,
    }
    assert document["text"] == "pruner on backup-01: pass run9 failed: RuntimeError: a bug"


def test_for_config_adds_webhooks_when_they_are_set(sim: Simulator, tmp_path: Path) -> None:
    pings = ["https://hc-ping.com/x"]
    hooks = ["https://hooks.example/pruner"]

    assert [type(h) for h in for_config(alert_config(sim, tmp_path, urls=pings))] == [Notifier]
    assert [type(h) for h in for_config(alert_config(sim, tmp_path, webhooks=hooks))] == [Webhooks]
    both = for_config(alert_config(sim, tmp_path, urls=pings, webhooks=hooks))
    assert [type(h) for h in both] == [Notifier, Webhooks]
