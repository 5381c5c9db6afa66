"""One pass end to end in process, against the simulator over 127.0.0.1 (no real waits)."""

from __future__ import annotations

import errno
import io
import json
import os
import re
import threading
from collections.abc import Callable, Iterable, Iterator, MutableMapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from pruner.config.digest import config_sha256
from pruner.config.load import parse_config
from pruner.config.schema import Config
from pruner.engine.models import Decision
from pruner.engine.results import PassResult
from pruner.engine.scope import Scope
from pruner.engine.two_phase import planned_deletion
from pruner.ops.logging import configure_logging
from pruner.passes.lock import LockHeld, PassLock
from pruner.passes.one_pass import run_pass
from pruner.report.pass_summary import PassSummary
from pruner.report.summary import summarize
from pruner.sim import (
    READ_TOKEN,
    WRITE_TOKEN,
    Fleet,
    ScriptedResponse,
    Simulator,
    generate_fleet,
)
from pruner.vpsbg.client import ApiClient, build_session
from pruner.vpsbg.errors import TokenMissing
from pruner.vpsbg.token import Secret

NOW = datetime(2026, 11, 27, 3, 30, tzinfo=UTC)

MakeConfig = Callable[..., Config]
Run = Callable[..., PassResult]


@pytest.fixture(scope="module")
def fleet() -> Fleet:
    # 8 servers: a locked one, a stale one, a terminated one with backups, and ordinary ones.
    return generate_fleet(now=NOW, servers=8, days=40, seed=1)


pytestmark = pytest.mark.usefixtures("restore_logging")


@pytest.fixture
def make_config(sim: Simulator, tmp_path: Path) -> MakeConfig:
    def make(**overrides: Any) -> Config:
        settings: dict[str, Any] = {
            "api": {"base_url": sim.base_url, "retries": 1, "backoff": "0.001s", "timeout": "5s"},
            "dry_run": False,
            "state_dir": str(tmp_path / "state"),
            "safety": {
                "max_delete_fraction": 1.0,
                "max_deletions_per_run": None,
                "stale_after": "14d",
            },
            "policies": [{"name": "all", "keep_daily": 7}],
        }
        for key, value in overrides.items():
            if isinstance(value, dict):
                settings[key] = {**settings[key], **value}
            else:
                settings[key] = value
        return parse_config(json.dumps(settings), source="test.yaml")

    return make


@pytest.fixture
def run(sim: Simulator) -> Iterator[Run]:
    """run_pass with a client over the simulator that shares the pass's stop event."""
    sessions = []

    def run_it(
        config: Config,
        *,
        token: str = WRITE_TOKEN,
        stop: threading.Event | None = None,
        **options: Any,
    ) -> PassResult:
        stop = stop if stop is not None else threading.Event()
        session = build_session(config.api.concurrency)
        session.trust_env = False
        sessions.append(session)
        client = ApiClient.from_settings(config.api, Secret(token), session=session, stop=stop)
        options.setdefault("dry_run", False)
        options.setdefault("clock", lambda: NOW)
        return run_pass(config, client=client, token=Secret(token), stop=stop, **options)

    yield run_it
    for session in sessions:
        session.close()


def _last_plan(config: Config) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(
        (config.state_dir / "last-plan.json").read_text(encoding="utf-8")
    )
    return document


def test_run_pass_deletes_what_the_plan_decides_and_warns_about_the_rest(
    sim: Simulator, make_config: MakeConfig, run: Run
) -> None:
    result = run(make_config())

    deletions = {(d.backup.resource, d.backup.id) for d in result.plan.deletions}
    assert deletions
    assert set(sim.deleted) == deletions
    assert all(outcome.done for outcome in result.outcomes)
    assert result.exit_code == 0  # stale, locked and orphaned servers are warnings
    guards = {g.guard for g in result.plan.groups if g.status == "skipped"}
    assert guards == {"stale", "locked"}
    assert "orphan" in {g.status for g in result.plan.groups}
    assert not result.interrupted
    assert result.executed


@pytest.mark.parametrize(("in_config", "flag"), [(True, False), (False, True), (True, True)])
def test_run_pass_dry_run_sends_no_delete(
    sim: Simulator, make_config: MakeConfig, run: Run, in_config: bool, flag: bool
) -> None:
    config = make_config(dry_run=in_config)

    result = run(config, dry_run=flag)

    assert sim.request_count("DELETE") == 0
    assert result.dry_run
    assert result.would_delete > 0
    assert not result.executed
    assert result.outcomes == ()
    assert result.exit_code == 0
    document = _last_plan(config)
    assert document["dry_run"] is True
    assert "execution" not in document
    assert all("outcome" not in d for d in document["decisions"])


def test_run_pass_dry_run_with_a_cap_exits_3_as_the_real_pass_would(
    sim: Simulator, make_config: MakeConfig, run: Run
) -> None:
    config = make_config(safety={"max_deletions_per_run": 1})

    dry = run(config, dry_run=True)
    real = run(config)

    assert (dry.exit_code, real.exit_code) == (3, 3)
    assert sim.request_count("DELETE") == 0  # the cap held everything back
    assert dry.blocked_by_caps == real.blocked_by_caps > 1


def test_run_pass_exits_3_when_the_fraction_cap_skips_a_server(
    sim: Simulator, make_config: MakeConfig, run: Run
) -> None:
    result = run(make_config(safety={"max_delete_fraction": 0.5}))

    assert result.exit_code == 3
    assert "max_delete_fraction" in {g.guard for g in result.plan.groups}
    assert sim.request_count("DELETE") == len(result.outcomes)  # the other servers are pruned


def test_run_pass_allow_large_deletions_lifts_the_caps(
    sim: Simulator, make_config: MakeConfig, run: Run
) -> None:
    config = make_config(safety={"max_delete_fraction": 0.1, "max_deletions_per_run": 1})

    result = run(config, allow_large_deletions=True)

    assert result.exit_code == 0
    assert result.blocked_by_caps == 0
    assert len(sim.deleted) == result.would_delete > 1


def test_run_pass_exits_1_for_an_incomplete_listing_before_3_for_a_cap(
    sim: Simulator, make_config: MakeConfig, run: Run
) -> None:
    policies = [
        {"name": "all", "keep_daily": 7},
        {"name": "snapshots", "resource": "snapshots", "keep_last": 1},
    ]
    config = make_config(policies=policies, safety={"max_deletions_per_run": 1})
    sim.script("GET", "/v1/snapshots", ScriptedResponse(500), ScriptedResponse(500))

    result = run(config)

    assert result.exit_code == 1
    assert sim.request_count("DELETE") == 0
    snapshot_groups = [g for g in result.plan.groups if g.resource == "snapshots"]
    assert snapshot_groups  # every server shows up, none of its snapshots listed or deleted
    assert all(g.status == "incomplete" and not g.decisions for g in snapshot_groups)
    assert "the snapshots listing is incomplete" in result.failures[0]


def test_run_pass_writes_the_last_plan_with_outcomes(
    sim: Simulator, make_config: MakeConfig, run: Run
) -> None:
    config = make_config()
    vanished = sim.backups()[0]["id"]  # the oldest: deleted by the plan, gone before its DELETE
    sim.script("DELETE", f"/v1/backups/{vanished}", ScriptedResponse(404, perform=True))

    result = run(config)

    document = _last_plan(config)
    assert document["schema"] == "pruner.plan/v1"
    assert document["run_id"] == result.run_id
    assert document["dry_run"] is False
    outcomes = {d["id"]: d.get("outcome") for d in document["decisions"]}
    deleted = [d for d in document["decisions"] if d["action"] == "delete"]
    assert outcomes[vanished] == "already_gone"
    assert {d["outcome"] for d in deleted} == {"deleted", "already_gone"}
    assert all("outcome" not in d for d in document["decisions"] if d["action"] == "keep")
    execution = document["execution"]
    assert execution["deleted"] + execution["already_gone"] == len(deleted)
    assert execution["failed"] == execution["not_attempted"] == 0
    assert result.exit_code == 0
    assert not list(config.state_dir.glob(".*.tmp"))


def test_run_pass_names_the_config_and_the_api_in_the_last_plan(
    sim: Simulator, make_config: MakeConfig, run: Run
) -> None:
    config = make_config()

    run(config, dry_run=True)

    document = _last_plan(config)
    assert document["config_sha256"] == config_sha256(config)
    assert document["api_base_url"] == sim.base_url


def test_run_pass_exits_1_when_the_last_plan_cannot_be_written(
    sim: Simulator, make_config: MakeConfig, run: Run
) -> None:
    config = make_config()
    (config.state_dir / "last-plan.json").mkdir(parents=True)  # in the way of the file

    with capture_logs() as events:
        result = run(config)

    assert result.exit_code == 1
    assert result.failures == (f"state_dir {config.state_dir}: last-plan.json was not written",)
    assert "state.write_failed" in {e["event"] for e in events}
    assert len(sim.deleted) == len(result.outcomes) > 0  # the deletions themselves went through


def test_run_pass_with_a_read_key_deletes_nothing_and_exits_1(
    sim: Simulator, make_config: MakeConfig, run: Run
) -> None:
    config = make_config(api={"concurrency": 1})

    result = run(config, token=READ_TOKEN)

    assert sim.deleted == []
    assert sim.request_count("DELETE") == 1
    assert result.exit_code == 1
    read_only = "this API key has Read permission only; deletions need a Write key"
    assert read_only in result.failures[0]
    document = _last_plan(config)
    assert document["execution"]["not_attempted"] == result.would_delete - 1
    assert document["execution"]["fatal"] == result.failures[0]
    assert "failed" in {g["status"] for g in document["groups"]}


@pytest.mark.parametrize(
    ("options", "said"),
    [
        ({}, r"deleted \d+ of \d+ backups \(\d+ kept\); disk size of the deleted"),
        ({"dry_run": True}, r"would delete \d+ of \d+ backups \(\d+ kept\); disk"),
        ({"execute": False}, r"would delete \d+ of \d+ backups \(\d+ kept\); disk"),
    ],
)
def test_run_pass_summary_event_says_in_words_what_the_pass_did(
    make_config: MakeConfig, run: Run, options: dict[str, Any], said: str
) -> None:
    with capture_logs() as logs:
        result = run(make_config(), **options)

    [summary] = [entry for entry in logs if entry["event"] == "pass.summary"]
    assert re.match(said, summary["message"])
    assert (
        summary["message"]
        == PassSummary.of(result, planned_only=not options.get("execute", True)).sentence()
    )


@pytest.mark.parametrize(
    ("status", "said"),
    [(401, "the API token was rejected (HTTP 401)"), (403, "HTTP 403")],
)
def test_run_pass_refused_while_listing_still_records_and_summarises_the_pass(
    sim: Simulator, make_config: MakeConfig, run: Run, status: int, said: str
) -> None:
    config = make_config()
    sim.script("GET", "/v1/servers", ScriptedResponse(status, {"message": "no"}))

    with capture_logs() as logs:
        result = run(config)

    assert sim.request_count("DELETE") == 0
    assert (result.exit_code, result.key_refused, result.interrupted) == (1, True, False)
    assert said in result.failures[0]
    [summary] = [entry for entry in logs if entry["event"] == "pass.summary"]
    assert (summary["exit_code"], summary["log_level"]) == (1, "error")
    assert said in summary["failures"][0]
    assert "pass.failed" not in {entry["event"] for entry in logs}
    document = _last_plan(config)
    assert document["run_id"] == result.run_id
    assert document["decisions"] == []
    assert said in document["problems"][0]["message"]


def test_run_pass_stop_during_deletions_lets_the_one_on_the_wire_finish(
    sim: Simulator, make_config: MakeConfig, run: Run
) -> None:
    config = make_config(api={"concurrency": 1})
    stop = threading.Event()
    sim.delete_gate.clear()
    results: list[PassResult] = []
    worker = threading.Thread(target=lambda: results.append(run(config, stop=stop)))
    worker.start()
    assert sim.delete_started.wait(5)

    stop.set()
    sim.delete_gate.set()
    worker.join(10)

    [result] = results
    assert len(sim.deleted) == sim.request_count("DELETE") == 1
    assert result.interrupted
    assert result.exit_code == 1
    assert "stopped by a signal before it finished" in result.failures[0]
    assert len(result.not_attempted) == result.would_delete - 1
    assert _last_plan(config)["execution"]["interrupted"] is True


class Alarm:
    """A fake threading.Timer: the test says when the deadline comes."""

    def __init__(self, interval: float, function: Callable[[], None]) -> None:
        self.interval = interval
        self.function = function
        self.started = threading.Event()
        self.cancelled = False

    def start(self) -> None:
        self.started.set()

    def cancel(self) -> None:
        self.cancelled = True

    def ring(self) -> None:
        assert self.started.is_set()
        assert not self.cancelled
        self.function()


class Alarms:
    """The timer factory run_pass is given; remembers every alarm it made."""

    def __init__(self) -> None:
        self.made: list[Alarm] = []

    def __call__(self, interval: float, function: Callable[[], None]) -> Alarm:
        self.made.append(Alarm(interval, function))
        return self.made[-1]


def test_run_pass_past_max_pass_duration_stops_as_if_signalled_and_says_why(
    sim: Simulator, make_config: MakeConfig, run: Run
) -> None:
    config = make_config(api={"concurrency": 1}, safety={"max_pass_duration": "90min"})
    stop = threading.Event()
    alarms = Alarms()
    sim.delete_gate.clear()
    results: list[PassResult] = []
    with capture_logs() as logs:
        worker = threading.Thread(
            target=lambda: results.append(run(config, stop=stop, timer=alarms))
        )
        worker.start()
        assert sim.delete_started.wait(5)
        [alarm] = alarms.made
        alarm.ring()  # 90 minutes later, the first DELETE still on the wire
        assert stop.is_set()  # the pass's stop, as a signal would set it
        sim.delete_gate.set()
        worker.join(10)

    [result] = results
    assert alarm.interval == 90 * 60
    assert alarm.cancelled
    assert len(sim.deleted) == sim.request_count("DELETE") == 1
    assert (result.exit_code, result.interrupted, result.deadline_reached) == (1, True, True)
    assert result.failures[0].startswith(
        "the pass reached its deadline (safety.max_pass_duration: 5400 s) before it finished: "
    )
    assert not any("signal" in failure for failure in result.failures)
    [deadline] = [entry for entry in logs if entry["event"] == "pass.deadline"]
    assert deadline["log_level"] == "warning"
    assert deadline["max_pass_duration_seconds"] == 5400
    [summary] = [entry for entry in logs if entry["event"] == "pass.summary"]
    assert summary["deadline_reached"] is True
    assert summary["failures"] == list(result.failures)


def test_run_pass_deadline_while_listing_says_so(
    sim: Simulator, make_config: MakeConfig, run: Run
) -> None:
    config = make_config()
    alarms = Alarms()
    sim.on_request(lambda _method, _path: alarms.made[0].ring())  # comes during the first GET

    result = run(config, timer=alarms)

    assert sim.request_count("DELETE") == 0
    assert (result.exit_code, result.deadline_reached) == (1, True)
    assert result.failures == (
        "the pass reached its deadline (safety.max_pass_duration: 3600 s) before it finished "
        "(while listing): nothing was deleted",
    )
    assert _last_plan(config)["problems"][0]["message"] == result.failures[0]


def test_run_pass_that_ends_in_time_cancels_its_deadline(
    sim: Simulator, make_config: MakeConfig, run: Run
) -> None:
    alarms = Alarms()

    result = run(make_config(), timer=alarms)

    assert result.exit_code == 0
    [alarm] = alarms.made
    assert alarm.cancelled
    assert not result.deadline_reached


def test_run_pass_a_signal_before_the_deadline_is_the_reason_it_stopped(
    sim: Simulator, make_config: MakeConfig, run: Run
) -> None:
    stop = threading.Event()
    alarms = Alarms()

    def signal_then_deadline(_method: str, _path: str) -> None:
        stop.set()
        alarms.made[0].ring()

    sim.on_request(signal_then_deadline)

    result = run(make_config(), stop=stop, timer=alarms)

    assert (result.interrupted, result.deadline_reached) == (True, False)
    assert result.failures[0].startswith("stopped by a signal before it finished")


def test_run_pass_stopped_before_listing_deletes_nothing_and_records_so(
    sim: Simulator, make_config: MakeConfig, run: Run
) -> None:
    stop = threading.Event()
    stop.set()
    config = make_config()

    with capture_logs() as logs:
        result = run(config, stop=stop)

    assert result.interrupted
    assert result.exit_code == 1
    assert sim.request_count() == 0
    [summary] = [entry for entry in logs if entry["event"] == "pass.summary"]
    assert summary["interrupted"] is True
    document = _last_plan(config)
    assert document["run_id"] == result.run_id
    assert "stopped by a signal" in document["problems"][0]["message"]


def test_run_pass_refuses_to_start_while_another_pass_holds_the_lock(
    sim: Simulator, make_config: MakeConfig, run: Run
) -> None:
    config = make_config()
    with PassLock(config.state_dir), pytest.raises(LockHeld, match="try again later"):
        run(config)
    assert sim.request_count() == 0


def test_run_pass_without_a_token_fails_before_the_lock_and_any_request(
    sim: Simulator, make_config: MakeConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("VPSBG_API_TOKEN", raising=False)
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    config = make_config()
    with PassLock(config.state_dir), pytest.raises(TokenMissing):  # 2 comes before 75
        run_pass(config, dry_run=False)
    assert sim.request_count() == 0


def test_run_pass_builds_its_client_from_the_config(
    sim: Simulator, make_config: MakeConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    monkeypatch.setenv("VPSBG_API_TOKEN", WRITE_TOKEN)

    result = run_pass(make_config(), dry_run=True, clock=lambda: NOW)

    assert result.exit_code == 0
    assert result.would_delete > 0
    assert sim.request_count("GET") > 0


def test_run_pass_without_execute_is_a_plan_no_lock_no_state_no_delete(
    sim: Simulator, make_config: MakeConfig, run: Run
) -> None:
    config = make_config(safety={"max_deletions_per_run": 1})

    with PassLock(config.state_dir):  # a plan does not need the lock
        result = run(config, execute=False, token=READ_TOKEN)

    assert sim.request_count("DELETE") == 0
    assert result.exit_code == 0  # for `pruner plan`, guards are shown inside the plan
    assert result.blocked_by_caps > 0
    assert not (config.state_dir / "last-plan.json").exists()


def test_run_pass_puts_its_run_id_on_every_log_line(
    sim: Simulator, make_config: MakeConfig, run: Run
) -> None:
    stream = io.StringIO()
    configure_logging("json", "debug", stream)

    result = run(make_config())

    events = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert {e["run_id"] for e in events} == {result.run_id}
    names = {e["event"] for e in events}
    assert {"pass.start", "backup.deleted", "pass.summary"} <= names
    assert any(e["logger"].startswith("urllib3") for e in events)  # stdlib lines, from workers
    assert WRITE_TOKEN not in stream.getvalue()


def test_run_pass_logs_one_small_summary(sim: Simulator, make_config: MakeConfig, run: Run) -> None:
    with capture_logs() as events:
        result = run(make_config())

    [summary] = [e for e in events if e["event"] == "pass.summary"]
    assert summary["log_level"] == "info"
    assert summary["deleted"] == len(sim.deleted) == len(result.outcomes) > 0
    assert summary["kept"] + summary["deleted"] == summary["listed"]
    assert summary["failed"] == summary["not_attempted"] == 0
    assert summary["skipped_groups"] == 2
    assert summary["size_freed"] == sum(d.backup.size or 0 for d in result.plan.deletions)
    assert summary["dry_run"] is False
    assert summary["exit_code"] == 0
    assert summary["duration"] >= 0
    assert "would_delete" not in summary
    assert len(json.dumps(summary, default=str)) < 1000  # never the whole plan


def test_run_pass_dry_run_says_so_and_what_it_would_delete(
    sim: Simulator, make_config: MakeConfig, run: Run
) -> None:
    with capture_logs() as events:
        result = run(make_config(), dry_run=True)

    [banner] = [e for e in events if e["event"] == "pass.dry_run"]
    assert banner["message"] == "DRY RUN: nothing will be deleted (--dry-run)"
    [summary] = [e for e in events if e["event"] == "pass.summary"]
    assert (summary["dry_run"], summary["deleted"]) == (True, 0)
    assert summary["would_delete"] == result.would_delete > 0


def test_run_pass_logs_each_guard_with_its_numbers_and_config_key(
    sim: Simulator, make_config: MakeConfig, run: Run
) -> None:
    with capture_logs() as events:
        run(make_config(safety={"max_deletions_per_run": 2}))

    by_name: dict[str, list[MutableMapping[str, Any]]] = {}
    for event in events:
        by_name.setdefault(event["event"], []).append(event)
    [stale] = by_name["backup.stale"]  # the stale guard: the event to alert on
    assert stale["log_level"] == "warning"
    assert stale["config_key"] == "stale_after"
    assert stale["server_hostname"] == "app-03"
    assert "stale_after 14d" in stale["message"]
    assert stale["stale_after"] == "14d"
    assert stale["age_seconds"] > 14 * 86400
    assert str(stale["newest_backup_id"]) in stale["message"]
    [locked] = by_name["guard.locked"]
    assert locked["server_hostname"] == "web-02"
    [cap] = by_name["guard.max_deletions_per_run"]
    assert cap["max_deletions_per_run"] == 2
    assert cap["would_delete"] > 2
    assert cap["config_key"] == "safety.max_deletions_per_run"
    assert "more than max_deletions_per_run 2" in cap["message"]
    orphans = [e for e in by_name["plan.problem"] if "terminated" in e["message"]]
    assert orphans
    assert all(e["log_level"] == "warning" for e in by_name["plan.problem"])


def test_run_pass_warns_of_a_locked_server_whose_backups_stopped(
    sim: Simulator, make_config: MakeConfig, run: Run
) -> None:
    stale_server = next(s["id"] for s in sim.servers() if s["hostname"] == "app-03")
    sim.set_server(stale_server, locked=True)

    with capture_logs() as events:
        run(make_config())

    [stale] = [e for e in events if e["event"] == "backup.stale"]
    assert (stale["server_id"], stale["log_level"]) == (stale_server, "warning")
    assert "locked" in stale["message"]
    assert stale["age_seconds"] > 14 * 86400
    assert [e["server_id"] for e in events if e["event"] == "guard.locked"].count(stale_server)


def test_run_pass_says_nothing_of_staleness_without_stale_after(
    sim: Simulator, make_config: MakeConfig, run: Run
) -> None:
    policies = [
        {"name": "all", "keep_daily": 7, "stale_after": None},
        {"name": "snapshots", "resource": "snapshots", "keep_last": 1},  # stale_after null
    ]

    with capture_logs() as events:
        result = run(make_config(policies=policies))

    assert [e for e in events if e["event"] == "backup.stale"] == []
    assert "stale" not in {g.guard for g in result.plan.groups}


# --- two-phase deletion (safety.confirm_after) ---------------------------------------------------

WINDOW = timedelta(hours=12)


def _at(moment: datetime) -> Callable[[], datetime]:
    return lambda: moment


def _two_phase(make_config: MakeConfig, keep_daily: int = 7, **safety: Any) -> Config:
    return make_config(
        safety={"confirm_after": "12h", **safety},
        policies=[{"name": "all", "keep_daily": keep_daily}],
    )


def _items(decisions: Iterable[Decision]) -> set[tuple[str, int]]:
    return {(d.backup.resource, d.backup.id) for d in decisions}


def _waiting(result: PassResult) -> dict[tuple[str, int], str]:
    """What waits for its confirmation, and since when (the detail of its `pending` reason)."""
    return {
        (d.backup.resource, d.backup.id): str(d.reasons[0].detail)
        for d in result.plan.decisions
        if d.pending
    }


def _planned(result: PassResult) -> set[tuple[str, int]]:
    """What the pass planned to delete: deleted, waiting, or held back by a guard (locked...)."""
    return _items(d for d in result.plan.decisions if planned_deletion(d))


def _pending_file(config: Config) -> dict[tuple[str, int], str]:
    document = json.loads((config.state_dir / "pending.json").read_text(encoding="utf-8"))
    assert document["schema"] == "pruner.pending/v1"
    return {(e["resource"], e["id"]): e["first_seen"] for e in document["entries"]}


def test_run_pass_two_phase_first_pass_deletes_nothing_and_records_what_it_planned(
    sim: Simulator, make_config: MakeConfig, run: Run
) -> None:
    config = _two_phase(make_config)
    planned = _items(run(make_config(), execute=False).plan.deletions)

    result = run(config)

    assert sim.request_count("DELETE") == 0
    assert result.exit_code == 0
    assert result.plan.deletions == ()
    assert set(_waiting(result)) == planned
    assert set(_waiting(result).values()) == {NOW.isoformat()}
    assert summarize(result.plan).pending == len(planned) > 0
    assert _planned(result) > planned  # and what the locked and stale servers hold back
    assert _pending_file(config) == dict.fromkeys(_planned(result), NOW.isoformat())
    assert _last_plan(config)["summary"]["pending"] == len(planned)


def test_run_pass_two_phase_inside_the_window_deletes_nothing(
    sim: Simulator, make_config: MakeConfig, run: Run
) -> None:
    config = _two_phase(make_config)
    first = run(config)

    second = run(config, clock=_at(NOW + WINDOW - timedelta(seconds=1)))

    assert sim.request_count("DELETE") == 0
    assert _waiting(second) == _waiting(first)  # still since the first pass
    assert _pending_file(config) == dict.fromkeys(_planned(first), NOW.isoformat())


def test_run_pass_two_phase_after_the_window_deletes_exactly_what_both_passes_planned(
    sim: Simulator, make_config: MakeConfig, run: Run
) -> None:
    first = run(_two_phase(make_config, keep_daily=10))
    later = NOW + WINDOW
    stricter = _two_phase(make_config, keep_daily=7)  # plans more deletions than the first

    second = run(stricter, clock=_at(later))

    both = set(_waiting(first))
    assert _items(second.plan.deletions) == both
    assert set(sim.deleted) == both
    newly = _planned(second) - _planned(first)
    assert newly
    assert set(_waiting(second)) <= newly
    assert _pending_file(stricter) == {
        **dict.fromkeys(_planned(first), NOW.isoformat()),  # the deleted: until no longer listed
        **dict.fromkeys(newly, later.isoformat()),
    }


def test_run_pass_two_phase_never_deletes_a_backup_a_pass_in_between_planned_to_keep(
    sim: Simulator, make_config: MakeConfig, run: Run
) -> None:
    strict, lenient = _two_phase(make_config, keep_daily=5), _two_phase(make_config, keep_daily=9)
    first = run(strict)
    between = run(lenient, clock=_at(NOW + timedelta(hours=6)))  # a fixed mistake, say

    third = run(strict, clock=_at(NOW + 2 * WINDOW))

    kept_between = set(_waiting(first)) - _planned(between)
    assert kept_between
    assert not kept_between & set(sim.deleted)
    assert set(sim.deleted) == set(_waiting(first)) - kept_between
    assert all(_waiting(third)[item] == (NOW + 2 * WINDOW).isoformat() for item in kept_between)


@pytest.mark.parametrize("content", ["{not json", '{"schema": "pruner.pending/v1"}', "[]"])
def test_run_pass_two_phase_with_a_corrupt_pending_file_deletes_nothing_and_rebuilds_it(
    sim: Simulator, make_config: MakeConfig, run: Run, content: str
) -> None:
    config = _two_phase(make_config)
    first = run(config)
    (config.state_dir / "pending.json").write_text(content, encoding="utf-8")
    later = NOW + 2 * WINDOW

    with capture_logs() as logs:
        result = run(config, clock=_at(later))

    assert sim.request_count("DELETE") == 0
    assert result.exit_code == 0
    [error] = [e for e in logs if e["event"] == "pending.unreadable"]
    assert error["path"] == str(config.state_dir / "pending.json")
    assert _pending_file(config) == dict.fromkeys(_planned(first), later.isoformat())


def test_run_pass_two_phase_dry_runs_count_as_the_first_phase(
    sim: Simulator, make_config: MakeConfig, run: Run
) -> None:
    config = _two_phase(make_config)
    dry = run(config, dry_run=True)
    assert _pending_file(config) == dict.fromkeys(_planned(dry), NOW.isoformat())

    real = run(config, clock=_at(NOW + WINDOW))

    assert set(sim.deleted) == set(_waiting(dry)) == _items(real.plan.deletions)


def test_run_pass_two_phase_plan_reads_the_pending_file_and_never_writes_it(
    sim: Simulator, make_config: MakeConfig, run: Run
) -> None:
    config = _two_phase(make_config)
    first = run(config)
    before = (config.state_dir / "pending.json").read_bytes()

    audit = run(config, execute=False, clock=_at(NOW + WINDOW))

    assert _items(audit.plan.deletions) == set(_waiting(first))
    assert (config.state_dir / "pending.json").read_bytes() == before


def test_run_pass_two_phase_deletes_nothing_when_the_pending_file_cannot_be_written(
    sim: Simulator, make_config: MakeConfig, run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _two_phase(make_config)
    run(config)

    def full_disk(path: Path, pending: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr("pruner.passes.pending.write_pending", full_disk)
    with capture_logs() as logs:
        result = run(config, clock=_at(NOW + WINDOW))

    assert sim.request_count("DELETE") == 0
    assert result.exit_code == 1
    assert result.plan.deletions  # confirmed, and still not deleted
    assert f"{config.state_dir}: pending.json was not written" in result.failures[-1]
    assert "pending.write_failed" in {e["event"] for e in logs}


def test_run_pass_two_phase_off_removes_an_old_pending_file(
    sim: Simulator, make_config: MakeConfig, run: Run
) -> None:
    run(_two_phase(make_config))
    config = make_config(policies=[{"name": "all", "keep_daily": 7}])

    with capture_logs() as logs:
        result = run(config, clock=_at(NOW + timedelta(hours=1)))

    assert len(sim.deleted) == result.would_delete > 0  # at once: no wait
    assert not (config.state_dir / "pending.json").exists()
    assert "pending.removed" in {e["event"] for e in logs}


# --- scoping a pass (--server, --policy) -------------------------------------------------------


def test_run_pass_scoped_deletes_on_the_scoped_servers_alone(
    sim: Simulator, make_config: MakeConfig, run: Run
) -> None:
    owners = {("backups", b["id"]): b["server_id"] for b in sim.backups()}
    unscoped = run(make_config(), execute=False)
    web = {
        g.server_id for g in unscoped.plan.groups if (g.server_hostname or "").startswith("web-")
    }
    [some] = [g.server_id for g in unscoped.plan.groups if g.status == "ok" and g.deleted][:1]

    result = run(make_config(), scope=Scope((str(some), "web-*")))

    scoped = {some} | web
    assert {g.server_id for g in result.plan.groups} == scoped
    pruned = {g.server_id for g in unscoped.plan.groups if g.server_id in scoped and g.deleted}
    assert len(pruned) > 1
    assert {owners[item] for item in sim.deleted} == pruned
    assert set(sim.deleted) == _items(result.plan.deletions)
    assert _last_plan(make_config())["scope"] == {"servers": [str(some), "web-*"], "policy": None}


def test_run_pass_scoped_counts_the_run_cap_over_the_scope(
    sim: Simulator, make_config: MakeConfig, run: Run
) -> None:
    unscoped = run(make_config(), execute=False)
    ok = [g for g in unscoped.plan.groups if g.status == "ok" and g.deleted]
    largest = max(ok, key=lambda g: g.deleted)
    config = make_config(safety={"max_deletions_per_run": largest.deleted})
    assert run(config, execute=False).exit_code == 0  # a plan: the cap shows, no exit 3

    result = run(config, scope=Scope((str(largest.server_id),)))

    assert result.exit_code == 0
    assert len(sim.deleted) == largest.deleted


def test_run_pass_scoped_records_pending_deletions_of_the_scoped_servers_alone(
    sim: Simulator, make_config: MakeConfig, run: Run
) -> None:
    config = _two_phase(make_config)
    first = run(config)
    waiting = [
        g for g in first.plan.groups if g.status == "ok" and any(d.pending for d in g.decisions)
    ]
    some = waiting[0].server_id
    later = NOW + WINDOW

    scoped = run(config, clock=_at(later), scope=Scope((str(some),)))

    owners = {item: d.backup.server_id for d in first.plan.decisions for item in _items([d])}
    assert {owners[item] for item in sim.deleted} == {some}
    recorded = _pending_file(config)
    others = {item for item in _planned(first) if owners[item] != some}
    assert others
    assert {item: recorded[item] for item in others} == dict.fromkeys(others, NOW.isoformat())
    assert _items(scoped.plan.deletions) == set(sim.deleted)
