"""Health pings against an HTTP server the test runs on 127.0.0.1: order, bodies, a dead
endpoint that does not fail the pass, dry runs. The passes run against the simulator."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from pruner.actions.common import for_config
from pruner.config.schema import Config
from pruner.engine.results import PassResult
from pruner.ops.notify import BODY_LIMIT, Notifier, ping_url
from pruner.sim import WRITE_TOKEN, Fleet, ScriptedResponse, Simulator
from pruner.sim import generate_fleet as _generate_fleet
from tests._receiver import Receiver, closed_port_url
from tests.ops._alerting import NOW, alert_config, pass_with_hooks


@pytest.fixture
def pings() -> Iterator[Receiver]:
    with Receiver() as server:
        yield server


@pytest.fixture(scope="module")
def fleet() -> Fleet:
    return _generate_fleet(now=NOW, servers=3, days=8)


def _notifier(config: Config) -> Notifier:
    notifier = Notifier(
        config.notify, host="backup-01", max_deletions_per_run=config.safety.max_deletions_per_run
    )
    notifier._session.trust_env = False  # no proxy from the environment for 127.0.0.1
    return notifier


def test_notifier_pings_start_then_success_with_the_summary(
    sim: Simulator, tmp_path: Path, pings: Receiver
) -> None:
    config = alert_config(sim, tmp_path, urls=[f"{pings.url}/ping/abc"])

    result = pass_with_hooks(config, (_notifier(config),))

    assert result.exit_code == 0
    assert pings.paths() == ["/ping/abc/start", "/ping/abc"]
    start, success = pings.received
    assert start.method == success.method == "POST"
    assert start.body == ""
    assert success.body.startswith(f"pruner pass {result.run_id}: exit 0\n")
    assert f"deleted {len(result.outcomes)} of {result.listed} backups (" in success.body
    assert "Authorization" not in success.headers
    assert WRITE_TOKEN not in str(success.headers)


def test_notifier_pings_fail_when_deletions_fail(
    sim: Simulator, tmp_path: Path, pings: Receiver
) -> None:
    config = alert_config(sim, tmp_path, urls=[f"{pings.url}/ping/abc"])
    doomed = sim.backups()[0]["id"]  # the oldest: the plan deletes it
    sim.script("DELETE", f"/v1/backups/{doomed}", ScriptedResponse(500), ScriptedResponse(500))

    result = pass_with_hooks(config, (_notifier(config),))

    assert result.exit_code == 1
    assert pings.paths() == ["/ping/abc/start", "/ping/abc/fail"]
    body = pings.received[1].body
    assert body.startswith(
        f"pruner on backup-01: pass {result.run_id} deleted {len(result.outcomes) - 1} of "
        f"{result.listed} backups ({result.listed - len(result.outcomes)} kept, 1 left: 1 failed) "
        "(exit 1): 1 deletion(s) failed (see the failed groups). Also: "
        f"deletions that failed: backup {doomed} on server "
    )
    assert "(HTTP 500); the backups are still there and the next pass tries again.\n\n" in body
    assert "FAILED: 1 deletion(s) failed" in body
    assert len(body) <= BODY_LIMIT


def test_notifier_pings_fail_with_the_alert_when_a_cap_trips(
    sim: Simulator, tmp_path: Path, pings: Receiver
) -> None:
    config = alert_config(
        sim, tmp_path, safety={"max_deletions_per_run": 2}, urls=[f"{pings.url}/p"]
    )

    result = pass_with_hooks(config, (_notifier(config),))

    assert result.exit_code == 3
    assert pings.paths() == ["/p/start", "/p/fail"]
    body = pings.received[1].body
    alert, summary = body.split("\n\n", 1)
    assert alert.startswith(
        f"pruner on backup-01: pass {result.run_id} deleted 0 of {result.listed} backups "
        f"({result.listed} kept) (exit 3): the run cap "
        f"safety.max_deletions_per_run (2) would have been exceeded ({result.blocked_by_caps} "
        "deletions planned across 3 servers), so none was made. Run `pruner run "
        "--allow-large-deletions` once if this is intended, or raise "
        "safety.max_deletions_per_run."
    )
    assert summary.startswith(f"pruner pass {result.run_id}: exit 3\n")
    assert len(body) <= BODY_LIMIT


def test_notifier_logs_the_alert_then_pings_success_for_a_pass_with_a_stale_server(
    sim: Simulator, tmp_path: Path, pings: Receiver
) -> None:
    config = alert_config(sim, tmp_path, policy={"stale_after": "1min"}, urls=[f"{pings.url}/p"])

    result = pass_with_hooks(config, (_notifier(config),))

    assert result.exit_code == 0
    assert pings.paths() == ["/p/start", "/p/log", "/p"]
    logged, success = pings.received[1].body, pings.received[2].body
    assert logged.startswith(
        f"pruner on backup-01: pass {result.run_id} deleted 0 of {result.listed} backups "
        f"({result.listed} kept) (exit 0): 3 servers are "
        "stale (nothing new for too long)"
    )
    assert success.startswith(f"pruner pass {result.run_id}: exit 0\n")
    assert "stale servers 3" in success


def test_notifier_pings_fail_when_the_key_is_refused_while_listing(
    sim: Simulator, tmp_path: Path, pings: Receiver
) -> None:
    config = alert_config(sim, tmp_path, urls=[f"{pings.url}/p"])

    result = pass_with_hooks(config, (_notifier(config),), token="not-a-key")

    assert result.exit_code == 1
    assert pings.paths() == ["/p/start", "/p/fail"]
    body = pings.received[1].body
    assert body.startswith(
        f"pruner on backup-01: pass {result.run_id} failed (exit 1): the API token was rejected"
    )
    assert f"pruner pass {result.run_id}: exit 1" in body
    assert "FAILED: the API token was rejected (HTTP 401)" in body


def test_notifier_pings_every_url_and_a_dead_one_does_not_fail_the_pass(
    sim: Simulator, tmp_path: Path, pings: Receiver
) -> None:
    urls = [closed_port_url(), f"{pings.url}/down/x", f"{pings.url}/ok"]
    config = alert_config(sim, tmp_path, urls=urls)

    with capture_logs() as logs:
        result = pass_with_hooks(config, (_notifier(config),))

    assert result.exit_code == 0
    assert pings.paths() == ["/down/x/start", "/ok/start", "/down/x", "/ok"]
    failed = [e for e in logs if e["event"] == "notify.failed"]
    assert [(e["url"], e["ping"], e["log_level"]) for e in failed] == [
        ("notify.urls[0]", "start", "warning"),
        ("notify.urls[1]", "start", "warning"),
        ("notify.urls[0]", "success", "warning"),
        ("notify.urls[1]", "success", "warning"),
    ]
    assert failed[1]["status"] == 500
    assert all("/dead" not in str(e) for e in failed)  # the URL is a secret: not logged whole


@pytest.mark.parametrize(("on_dry_run", "expected"), [(False, []), (True, ["/p/start", "/p"])])
def test_notifier_pings_dry_runs_only_when_asked(
    sim: Simulator, tmp_path: Path, pings: Receiver, on_dry_run: bool, expected: list[str]
) -> None:
    config = alert_config(sim, tmp_path, urls=[f"{pings.url}/p"], on_dry_run=on_dry_run)

    result = pass_with_hooks(config, (_notifier(config),), dry_run=True)

    assert result.dry_run
    assert pings.paths() == expected
    if on_dry_run:
        assert "(dry run)" in pings.received[1].body


def test_notifier_times_out_on_a_silent_endpoint_without_failing_the_pass(
    sim: Simulator, tmp_path: Path
) -> None:
    with socket.socket() as silent:  # accepts connections (the backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        config = alert_config(sim, tmp_path, urls=[f"http://127.0.0.1:{port}/p"], timeout="0.05s")

        with capture_logs() as logs:
            result = pass_with_hooks(config, (_notifier(config),))

    assert result.exit_code == 0
    assert [e["ping"] for e in logs if e["event"] == "notify.failed"] == ["start", "success"]


def test_for_config_pings_only_when_urls_are_set(sim: Simulator, tmp_path: Path) -> None:
    class Extra:
        def pass_started(self, run_id: str, *, dry_run: bool) -> None: ...
        def api_response(self, method: str, status: int | None) -> None: ...
        def pass_finished(self, result: PassResult) -> None: ...
        def pass_failed(self, run_id: str, error: BaseException) -> None: ...

    extra = Extra()

    assert for_config(alert_config(sim, tmp_path), [extra]) == (extra,)
    hooks = for_config(alert_config(sim, tmp_path, urls=["https://hc-ping.com/x"]), [extra])
    assert [type(h) for h in hooks] == [Notifier, Extra]


@pytest.mark.parametrize(
    ("url", "ping", "expected"),
    [
        ("https://hc-ping.com/u", "start", "https://hc-ping.com/u/start"),
        ("https://hc-ping.com/u/", "fail", "https://hc-ping.com/u/fail"),
        ("https://hc-ping.com/u", "success", "https://hc-ping.com/u"),
        ("https://hc-ping.com/u", "log", "https://hc-ping.com/u/log"),
        ("https://hc.example/ping/k/slug?create=1", "start", "https://hc.example/ping/k/slug/start?create=1"),
    ],
)  # fmt: skip
def test_ping_url_appends_to_the_path(url: str, ping: Any, expected: str) -> None:
    assert ping_url(url, ping) == expected
