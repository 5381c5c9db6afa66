"""The audit trail: intents before DELETEs, outcomes after, one fsync each per wave, a file per
month. Passes run in process against the simulator over 127.0.0.1; clocks are injected."""

from __future__ import annotations

import errno
import json
import os
import stat
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import structlog
from structlog.testing import capture_logs

from pruner.config.load import parse_config
from pruner.config.schema import Config
from pruner.engine.models import Backup, Decision, Group, Plan
from pruner.engine.reasons import NOT_SELECTED, texts
from pruner.engine.results import Execution, PassResult
from pruner.passes.audit import AUDIT_FILE, AuditTrail, archive_name
from pruner.passes.executor import execute
from pruner.passes.one_pass import run_pass
from pruner.sim import WRITE_TOKEN, Fleet, ScriptedResponse, Simulator, generate_fleet
from pruner.vpsbg.client import ApiClient, build_session
from pruner.vpsbg.token import Secret

NOW = datetime(2026, 11, 27, 3, 30, tzinfo=UTC)

Run = Callable[..., PassResult]


@pytest.fixture(scope="module")
def fleet() -> Fleet:
    return generate_fleet(now=NOW, servers=8, days=40, seed=1)


@pytest.fixture
def config(sim: Simulator, tmp_path: Path) -> Config:
    settings: dict[str, Any] = {
        "api": {"base_url": sim.base_url, "retries": 1, "backoff": "0.001s", "timeout": "5s"},
        "dry_run": False,
        "state_dir": str(tmp_path / "state"),
        "safety": {"max_delete_fraction": 1.0, "max_deletions_per_run": None},
        "policies": [{"name": "all", "keep_daily": 7}],
    }
    (tmp_path / "state").mkdir()
    return parse_config(json.dumps(settings), source="test.yaml")


@pytest.fixture
def client(sim: Simulator, config: Config) -> Iterator[ApiClient]:
    session = build_session(config.api.concurrency)
    session.trust_env = False  # no proxy from the environment for 127.0.0.1
    with ApiClient.from_settings(config.api, Secret(WRITE_TOKEN), session=session) as made:
        yield made
    session.close()


def _run(config: Config, client: ApiClient, **options: Any) -> PassResult:
    options.setdefault("dry_run", False)
    return run_pass(config, client=client, clock=lambda: NOW, **options)


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _planned(config: Config, client: ApiClient) -> Plan:
    return _run(config, client, execute=False).plan


def test_run_pass_audit_has_an_outcome_matching_the_api_for_every_intent(
    sim: Simulator, config: Config, client: ApiClient
) -> None:
    doomed = [d.backup.id for d in _planned(config, client).deletions]
    failing, locked, gone = doomed[0], doomed[1], doomed[2]
    sim.script("DELETE", f"/v1/backups/{failing}", ScriptedResponse(500), ScriptedResponse(500))
    sim.script("DELETE", f"/v1/backups/{locked}", *[ScriptedResponse(423)] * 2)
    sim.script("DELETE", f"/v1/backups/{gone}", ScriptedResponse(404, perform=True))

    result = _run(config, client)

    entries = _lines(config.state_dir / AUDIT_FILE)
    intents = {e["id"]: e for e in entries if e["event"] == "intent"}
    outcomes = {e["id"]: e for e in entries if e["event"] == "outcome"}
    assert len(entries) == 2 * len(doomed)
    assert sorted(intents) == sorted(outcomes) == sorted(doomed)
    assert {e["run_id"] for e in entries} == {result.run_id}
    assert (outcomes[failing]["outcome"], outcomes[failing]["status"]) == ("failed", 500)
    assert (outcomes[locked]["outcome"], outcomes[locked]["status"]) == ("locked", 423)
    assert outcomes[gone]["outcome"] == "already_gone"
    deleted = {i for i, e in outcomes.items() if e["outcome"] == "deleted"}
    assert deleted == {i for r, i in sim.deleted if r == "backups"} - {gone}
    assert result.exit_code == 1


def test_run_pass_audit_lines_carry_the_backup_policy_and_reasons(
    config: Config, client: ApiClient
) -> None:
    result = _run(config, client)

    decision = result.plan.deletions[0]
    backup = decision.backup
    intent, outcome = [e for e in _lines(config.state_dir / AUDIT_FILE) if e["id"] == backup.id]
    assert intent == {
        "event": "intent",
        "run_id": result.run_id,
        "time": NOW.isoformat(),
        "resource": "backups",
        "id": backup.id,
        "server_id": backup.server_id,
        "server_hostname": backup.server_hostname,
        "name": backup.name,
        "created_at": backup.created_at.isoformat(),
        "size": backup.size,
        "policy": "all",
        "reasons": texts(decision.reasons),
    }
    assert outcome == {
        **intent,
        "event": "outcome",
        "outcome": "deleted",
        "status": outcome["status"],
        "message": outcome["message"],
    }
    assert outcome["status"] in (200, 202, 204)


def test_run_pass_dry_run_writes_no_audit(config: Config, client: ApiClient) -> None:
    result = _run(config, client, dry_run=True)

    assert result.would_delete > 0
    assert not (config.state_dir / AUDIT_FILE).exists()


def test_execute_fsyncs_intents_before_a_waves_deletes_and_outcomes_after(
    sim: Simulator, config: Config, client: ApiClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = _planned(config, client)
    events: list[str] = []
    lock = threading.Lock()
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        if not stat.S_ISDIR(os.fstat(fd).st_mode):  # the directory entry of a new file
            with lock:
                events.append("fsync")
        real_fsync(fd)

    def on_request(method: str, _path: str) -> None:
        if method == "DELETE":
            with lock:
                events.append("DELETE")

    monkeypatch.setattr(os, "fsync", fsync)
    sim.on_request(on_request)
    audit = AuditTrail(config.state_dir, run_id="r1", clock=lambda: NOW)

    execute(
        plan,
        client,
        concurrency=2,
        stop=threading.Event(),
        log=structlog.get_logger("test"),
        audit=audit,
        wave_size=3,
    )

    count = len(plan.deletions)
    assert count > 6
    expected: list[str] = []
    for start in range(0, count, 3):
        expected += ["fsync", *["DELETE"] * len(range(start, min(start + 3, count))), "fsync"]
    assert events == expected


def test_execute_records_not_attempted_for_the_rest_of_a_wave_cut_short_by_stop(
    sim: Simulator, config: Config, client: ApiClient
) -> None:
    plan = _planned(config, client)
    stop = threading.Event()
    sim.on_request(lambda method, _path: stop.set() if method == "DELETE" else None)
    audit = AuditTrail(config.state_dir, run_id="r1", clock=lambda: NOW)

    execution = execute(
        plan,
        client,
        concurrency=1,
        stop=stop,
        log=structlog.get_logger("test"),
        audit=audit,
        wave_size=10,
    )

    outcomes = [e for e in _lines(audit.path) if e["event"] == "outcome"]
    intents = [e for e in _lines(audit.path) if e["event"] == "intent"]
    assert len(intents) == len(outcomes) == 10  # the waves that never started wrote nothing
    assert outcomes[0]["outcome"] == "deleted"
    assert [e["outcome"] for e in outcomes[1:]] == ["not_attempted"] * (len(outcomes) - 1)
    assert outcomes[-1]["message"] == "not attempted: the pass was stopped"
    assert len(execution.not_attempted) == len(plan.deletions) - 1


def test_execute_deletes_nothing_when_the_audit_cannot_be_written(
    sim: Simulator, config: Config, client: ApiClient, tmp_path: Path
) -> None:
    plan = _planned(config, client)
    audit = AuditTrail(tmp_path / "missing", run_id="r1", clock=lambda: NOW)

    execution = execute(
        plan,
        client,
        concurrency=2,
        stop=threading.Event(),
        log=structlog.get_logger("test"),
        audit=audit,
    )

    assert sim.request_count("DELETE") == 0
    assert "audit trail" in (execution.fatal or "")
    assert len(execution.not_attempted) == len(plan.deletions)


# --- the file, month by month ----------------------------------------------------------------


def _deletion(backup_id: int) -> tuple[Group, Decision]:
    backup = Backup(
        resource="backups",
        id=backup_id,
        server_id=7,
        server_hostname="db-01",
        name=f"backup {backup_id}",
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
        size=20,
    )
    decision = Decision(backup, "delete", (NOT_SELECTED,))
    return Group("backups", 7, "db-01", "databases", "ok", (decision,)), decision


def _write(state_dir: Path, moment: datetime, backup_id: int) -> None:
    trail = AuditTrail(state_dir, run_id=f"run{backup_id}", clock=lambda: moment)
    with trail.wave([_deletion(backup_id)]) as wave:
        wave.record(_deletion(backup_id)[1], "deleted", 204, "deleted")


def test_audit_trail_keeps_last_months_file_at_the_first_write_of_a_new_month(
    tmp_path: Path,
) -> None:
    march = datetime(2026, 3, 31, 23, 59, tzinfo=UTC)
    _write(tmp_path, march - timedelta(days=3), 1)
    _write(tmp_path, march, 2)

    _write(tmp_path, march + timedelta(minutes=2), 3)  # April, UTC

    kept = _lines(tmp_path / "audit-2026-03.jsonl")
    assert [e["id"] for e in kept] == [1, 1, 2, 2]
    assert [e["id"] for e in _lines(tmp_path / AUDIT_FILE)] == [3, 3]


def test_audit_trail_is_not_renamed_within_a_month(tmp_path: Path) -> None:
    _write(tmp_path, datetime(2026, 3, 1, tzinfo=UTC), 1)
    _write(tmp_path, datetime(2026, 3, 31, 23, tzinfo=UTC), 2)

    assert sorted(p.name for p in tmp_path.iterdir()) == [AUDIT_FILE]


def test_audit_trail_never_overwrites_a_kept_month(tmp_path: Path) -> None:
    _write(tmp_path, datetime(2026, 3, 5, tzinfo=UTC), 1)
    _write(tmp_path, datetime(2026, 4, 5, tzinfo=UTC), 2)
    _write(tmp_path, datetime(2026, 3, 6, tzinfo=UTC), 3)  # the clock was set back
    _write(tmp_path, datetime(2026, 4, 6, tzinfo=UTC), 4)

    assert [e["id"] for e in _lines(tmp_path / "audit-2026-03.jsonl")] == [1, 1]
    assert [e["id"] for e in _lines(tmp_path / "audit-2026-04.jsonl")] == [2, 2]
    assert [e["id"] for e in _lines(tmp_path / "audit-2026-03.1.jsonl")] == [3, 3]
    assert [e["id"] for e in _lines(tmp_path / AUDIT_FILE)] == [4, 4]


def test_archive_name_is_the_utc_month() -> None:
    moment = datetime(2026, 4, 1, 1, 0, tzinfo=ZoneInfo("Europe/Sofia"))  # 22:00 UTC, 31 March

    assert archive_name(moment) == "audit-2026-03.jsonl"


# --- a full disk ------------------------------------------------------------------------------


class _Disk:
    """os.write on a disk that fills up after `room` more writes: the next one is cut short
    (half of it reaches the file), the one after fails with ENOSPC. After that the disk has
    room again if `freed`, else every write fails."""

    def __init__(self, room: int, *, freed: bool) -> None:
        self.room = room
        self.freed = freed
        self.full = False

    def write(self, fd: int, data: bytes) -> int:
        if self.full:
            if not self.freed:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            self.full = False
            self.room = 1_000_000
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        if self.room == 0:
            self.full = True
            return os.write(fd, data[: len(data) // 2])
        self.room -= 1
        return os.write(fd, data)


def _execute(
    plan: Plan, client: ApiClient, audit: AuditTrail, *, wave_size: int, stop: Any = None
) -> Execution:
    return execute(
        plan,
        client,
        concurrency=1,
        stop=stop if stop is not None else threading.Event(),
        log=structlog.get_logger("test"),
        audit=audit,
        wave_size=wave_size,
    )


def _unanswered(entries: list[dict[str, Any]]) -> list[int]:
    """Ids of the intents that have no outcome."""
    answered = {(e["resource"], e["id"]) for e in entries if e["event"] == "outcome"}
    return [
        e["id"]
        for e in entries
        if e["event"] == "intent" and (e["resource"], e["id"]) not in answered
    ]


def test_execute_sends_nothing_of_a_wave_whose_intents_were_cut_short_and_closes_the_rest(
    sim: Simulator, config: Config, client: ApiClient
) -> None:
    plan = _planned(config, client)
    audit = AuditTrail(
        config.state_dir, run_id="r1", clock=lambda: NOW, write=_Disk(2, freed=True).write
    )

    with capture_logs() as events:
        execution = _execute(plan, client, audit, wave_size=10)

    assert sim.request_count("DELETE") == 0
    entries = _lines(audit.path)  # every line whole
    first_two = [d.backup.id for d in plan.deletions[:2]]
    assert [(e["event"], e["id"]) for e in entries] == [
        *[("intent", i) for i in first_two],
        *[("outcome", i) for i in first_two],
    ]
    assert {(e["outcome"], e["message"]) for e in entries[2:]} == {
        ("not_attempted", "not attempted: the audit trail cannot be written")
    }
    [failed] = [e for e in events if e["event"] == "audit.write_failed"]
    assert "No space left on device" in failed["message"]
    assert "withdrawn" not in failed
    assert "unrecorded" not in failed
    assert "audit trail" in (execution.fatal or "")
    assert len(execution.not_attempted) == len(plan.deletions)


def test_execute_takes_back_the_intents_of_a_wave_whose_outcomes_cannot_follow(
    sim: Simulator, config: Config, client: ApiClient
) -> None:
    _write(config.state_dir, NOW, 1)
    before = (config.state_dir / AUDIT_FILE).read_bytes()
    plan = _planned(config, client)
    audit = AuditTrail(
        config.state_dir, run_id="r1", clock=lambda: NOW, write=_Disk(2, freed=False).write
    )

    with capture_logs() as events:
        _execute(plan, client, audit, wave_size=10)

    assert sim.request_count("DELETE") == 0
    assert audit.path.read_bytes() == before
    [failed] = [e for e in events if e["event"] == "audit.write_failed"]
    assert failed["withdrawn"] == [f"backups/{d.backup.id}" for d in plan.deletions[:2]]


def test_execute_goes_on_when_an_outcome_cannot_be_written_and_keeps_the_file_whole(
    sim: Simulator, config: Config, client: ApiClient
) -> None:
    plan = _planned(config, client)
    audit = AuditTrail(
        config.state_dir, run_id="r1", clock=lambda: NOW, write=_Disk(4, freed=True).write
    )

    with capture_logs() as events:
        execution = _execute(plan, client, audit, wave_size=3)

    second = plan.deletions[1].backup.id  # 3 intents, 1 outcome, then the disk was full
    entries = _lines(audit.path)
    assert _unanswered(entries) == [second]
    assert len(execution.done) == len(plan.deletions)
    [failed] = [e for e in events if e["event"] == "audit.write_failed"]
    assert failed["backup_id"] == second


def test_execute_names_the_not_attempted_deletions_whose_outcome_cannot_be_written(
    sim: Simulator, config: Config, client: ApiClient
) -> None:
    plan = _planned(config, client)
    stop = threading.Event()
    sim.on_request(lambda method, _path: stop.set() if method == "DELETE" else None)
    disk = _Disk(10 + 1 + 2, freed=False)  # intents, the deletion's outcome, 2 not_attempted
    audit = AuditTrail(config.state_dir, run_id="r1", clock=lambda: NOW, write=disk.write)

    with capture_logs() as events:
        _execute(plan, client, audit, wave_size=10, stop=stop)

    unrecorded = [d.backup.id for d in plan.deletions[3:10]]
    assert _unanswered(_lines(audit.path)) == unrecorded
    [failed] = [e for e in events if e["event"] == "audit.write_failed"]
    assert failed["unrecorded"] == [f"backups/{i}" for i in unrecorded]
    assert "their DELETEs were not sent" in failed["message"]


def test_audit_trail_refuses_to_write_after_a_cut_line(
    sim: Simulator, config: Config, client: ApiClient
) -> None:
    path = config.state_dir / AUDIT_FILE
    path.write_text('{"event": "intent", "id": 1}\n{"event": "outc', encoding="utf-8")
    plan = _planned(config, client)
    audit = AuditTrail(config.state_dir, run_id="r1", clock=lambda: NOW)

    execution = _execute(plan, client, audit, wave_size=10)

    assert sim.request_count("DELETE") == 0
    assert path.read_text(encoding="utf-8") == '{"event": "intent", "id": 1}\n{"event": "outc'
    assert "its last line is cut short; the next pass sets it aside" in (execution.fatal or "")


def test_audit_trail_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    older = tmp_path / "older"
    older.mkdir()
    (older / AUDIT_FILE).write_text("", encoding="utf-8")
    (older / AUDIT_FILE).chmod(0o644)

    _write(tmp_path, NOW, 1)
    _write(older, NOW, 2)

    assert stat.S_IMODE((tmp_path / AUDIT_FILE).stat().st_mode) == 0o600
    assert stat.S_IMODE((older / AUDIT_FILE).stat().st_mode) == 0o600


def test_the_audit_trail_and_the_log_give_one_cause_for_what_was_not_attempted(
    sim: Simulator, config: Config, client: ApiClient
) -> None:
    # The second DELETE in a row fails too, but with a 401: the key was refused, which is
    # what stopped the pass, not a breaker that trips on that same failure.
    plan = _planned(config, client)
    first, second = (decision.backup for decision in plan.deletions[:2])
    sim.script("DELETE", f"/v1/backups/{first.id}", ScriptedResponse(422))  # not retried
    sim.script("DELETE", f"/v1/backups/{second.id}", ScriptedResponse(401))
    audit = AuditTrail(config.state_dir, run_id="r1", clock=lambda: NOW)

    with capture_logs() as logs:
        execution = execute(
            plan,
            client,
            concurrency=1,
            stop=threading.Event(),
            log=structlog.get_logger("test"),
            audit=audit,
            wave_size=10,
            max_consecutive_failures=2,
        )

    outcomes = [e for e in _lines(audit.path) if e["event"] == "outcome"]
    assert [e["outcome"] for e in outcomes[:2]] == ["failed", "failed"]
    assert {e["message"] for e in outcomes[2:]} == {"not attempted: the API refused the key"}
    [stopped] = [log for log in logs if log["event"] == "executor.stopped"]
    assert stopped["reason"] == "the API refused the key"
    assert not [log for log in logs if log["event"] == "executor.breaker_tripped"]
    assert execution.fatal is not None
