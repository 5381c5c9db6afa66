"""The executor over real HTTP against the simulator: exactly the plan's deletions, each on its
own, and a clean stop. Synchronised on the simulator's events, never on sleeps."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import structlog
from structlog.testing import capture_logs

from pruner.engine.models import Backup, Decision, Group, Plan
from pruner.engine.reasons import NOT_SELECTED, Reason
from pruner.engine.results import Execution
from pruner.passes.executor import execute
from pruner.sim import (
    READ_TOKEN,
    WRITE_TOKEN,
    Faults,
    Fleet,
    ScriptedResponse,
    Simulator,
)
from pruner.sim import generate_fleet as _generate_fleet
from pruner.vpsbg.client import ApiClient, build_session
from pruner.vpsbg.listing import parse_backups
from pruner.vpsbg.token import Secret
from tests._factories import RecordedProgress

NOW = datetime(2026, 11, 27, 3, 30, tzinfo=UTC)

MakeClient = Callable[..., ApiClient]


@pytest.fixture(scope="module")
def fleet() -> Fleet:
    return _generate_fleet(now=NOW, servers=3, days=8)  # three servers, none of them locked


@pytest.fixture
def make_client(sim: Simulator) -> Iterator[MakeClient]:
    sessions = []

    def make(token: str = WRITE_TOKEN, **options: Any) -> ApiClient:
        settings: dict[str, Any] = {
            "timeout": 5.0,
            "retries": 2,
            "backoff": 0.001,
            "concurrency": 4,
        }
        settings.update(options)
        session = build_session(settings["concurrency"])
        session.trust_env = False  # no proxy from the environment for 127.0.0.1
        sessions.append(session)
        return ApiClient(sim.base_url, Secret(token), session=session, **settings)

    yield make
    for session in sessions:
        session.close()


def _plan(sim: Simulator, per_server: int = 2, extra: tuple[Backup, ...] = ()) -> Plan:
    """Every server's `per_server` oldest backups deleted, the rest kept; `extra` deleted too
    (in the first group)."""
    backups, problems = parse_backups(sim.backups(), "backups")
    assert problems == []
    by_server: dict[int, list[Backup]] = {}
    for backup in sorted(backups, key=Backup.sort_key):
        by_server.setdefault(backup.server_id, []).append(backup)
    groups: list[Group] = []
    for server_id, items in sorted(by_server.items()):
        decisions = [
            Decision(b, "delete", (NOT_SELECTED,))
            if n < per_server
            else Decision(b, "keep", (Reason("keep_last", "1"),))
            for n, b in enumerate(items)
        ]
        if not groups:
            decisions += [Decision(b, "delete", (NOT_SELECTED,)) for b in extra]
        groups.append(
            Group("backups", server_id, items[0].server_hostname, "default", "ok", tuple(decisions))
        )
    return Plan(NOW, NOW, dry_run=False, groups=tuple(groups))


def _run(
    plan: Plan, client: ApiClient, stop: threading.Event | None = None, **options: Any
) -> Execution:
    return execute(
        plan,
        client,
        concurrency=4,
        stop=stop if stop is not None else threading.Event(),
        log=structlog.get_logger("test"),
        **options,
    )


def _keys(decisions: tuple[Decision, ...]) -> set[tuple[str, int]]:
    return {(d.backup.resource, d.backup.id) for d in decisions}


def test_execute_deletes_exactly_the_plan_deletions(
    sim: Simulator, make_client: MakeClient
) -> None:
    plan = _plan(sim)

    execution = _run(plan, make_client())

    assert set(sim.deleted) == _keys(plan.deletions)
    assert sim.request_count("DELETE") == len(plan.deletions) == 6
    assert [o.result for o in execution.outcomes] == ["deleted"] * 6
    assert execution.complete
    assert execution.plan == plan  # every group ok: nothing to change
    remaining = {b["id"] for b in sim.backups()}
    assert all(d.backup.id in remaining for d in plan.decisions if d.action == "keep")


def test_execute_counts_a_backup_already_gone_as_deleted(
    sim: Simulator, make_client: MakeClient
) -> None:
    vanished = Backup("backups", 999_999, 0, NOW)
    plan = _plan(sim, per_server=1, extra=(vanished,))

    execution = _run(plan, make_client())

    assert execution.outcome_of(vanished) == "already_gone"
    assert execution.complete
    assert {g.status for g in execution.plan.groups} == {"ok"}
    assert len(execution.done) == 4


def test_execute_fails_a_locked_server_s_backups_and_goes_on(
    sim: Simulator, make_client: MakeClient
) -> None:
    plan = _plan(sim)
    locked = plan.groups[0].server_id
    sim.set_server(locked, locked=True)

    execution = _run(plan, make_client())

    results = {o.id: o.result for o in execution.outcomes}
    for decision in plan.deletions:
        expected = "locked" if decision.backup.server_id == locked else "deleted"
        assert results[decision.backup.id] == expected
    assert not execution.complete
    assert len(execution.failed) == 2
    assert len(sim.deleted) == 4
    failed = execution.plan.groups[0]
    assert failed.status == "failed"
    assert "2 of 2 deletions were not done" in failed.messages[-1]
    assert "HTTP 423" in failed.messages[-1]
    assert [g.status for g in execution.plan.groups[1:]] == ["ok", "ok"]
    assert [d.action for d in failed.decisions] == [d.action for d in plan.groups[0].decisions]


def test_execute_fails_one_refused_deletion_and_goes_on(
    sim: Simulator, make_client: MakeClient
) -> None:
    plan = _plan(sim)
    refused = plan.deletions[0].backup
    sim.script(
        "DELETE",
        f"/v1/backups/{refused.id}",
        ScriptedResponse(422, {"message": "The backup is in use."}),
    )

    execution = _run(plan, make_client())

    [failure] = execution.failed
    assert (failure.id, failure.result, failure.status) == (refused.id, "failed", 422)
    assert "The backup is in use." in failure.message
    assert len(execution.done) == 5
    assert execution.plan.groups[0].status == "failed"


def test_execute_stops_at_a_read_only_key(sim: Simulator, make_client: MakeClient) -> None:
    plan = _plan(sim)

    execution = execute(
        plan,
        make_client(READ_TOKEN, concurrency=1),
        concurrency=1,
        stop=threading.Event(),
        log=structlog.get_logger("test"),
    )

    assert sim.request_count("DELETE") == 1  # the first refusal ends it
    assert sim.deleted == []
    assert execution.fatal is not None
    assert "this API key has Read permission only; deletions need a Write key" in execution.fatal
    assert len(execution.not_attempted) == 5
    assert not execution.interrupted
    assert {g.status for g in execution.plan.groups} == {"failed"}


@pytest.mark.parametrize("client_shares_stop", [True, False])
def test_execute_lets_the_deletion_on_the_wire_finish_and_starts_nothing_new(
    sim: Simulator, make_client: MakeClient, client_shares_stop: bool
) -> None:
    plan = _plan(sim)
    stop = threading.Event()
    client = make_client(concurrency=1, stop=stop if client_shares_stop else None)
    sim.delete_gate.clear()  # the first DELETE is held on the wire
    result: list[Execution] = []
    worker = threading.Thread(
        target=lambda: result.append(
            execute(plan, client, concurrency=1, stop=stop, log=structlog.get_logger("test"))
        )
    )
    worker.start()
    assert sim.delete_started.wait(5)

    stop.set()
    sim.delete_gate.set()
    worker.join(10)

    [execution] = result
    first = plan.deletions[0].backup
    assert [(o.id, o.result) for o in execution.outcomes] == [(first.id, "deleted")]
    assert sim.deleted == [("backups", first.id)]
    assert sim.request_count("DELETE") == 1
    assert _keys(execution.not_attempted) == _keys(plan.deletions[1:])
    assert execution.interrupted
    assert execution.fatal is None
    assert execution.outcome_of(plan.deletions[1].backup) == "not_attempted"
    assert "not attempted: the pass was stopped" in execution.plan.groups[0].messages[-1]


def test_execute_refuses_a_dry_run_plan(sim: Simulator, make_client: MakeClient) -> None:
    plan = _plan(sim)
    dry = Plan(plan.generated_at, plan.now, dry_run=True, groups=plan.groups)

    with pytest.raises(ValueError, match="dry-run"):
        _run(dry, make_client())

    assert sim.request_count() == 0


def test_execute_logs_one_event_per_deletion(sim: Simulator, make_client: MakeClient) -> None:
    plan = _plan(sim)
    sim.script("DELETE", f"/v1/backups/{plan.deletions[0].backup.id}", ScriptedResponse(422))

    with capture_logs() as events:
        _run(plan, make_client())

    deleted = [e for e in events if e["event"] == "backup.deleted"]
    [failed] = [e for e in events if e["event"] == "backup.delete_failed"]
    assert len(deleted) == 5
    backup = plan.deletions[0].backup
    assert failed["backup_id"] == backup.id
    assert failed["outcome"] == "failed"
    assert failed["status"] == 422
    expected = {
        "server_id": backup.server_id,
        "server_hostname": backup.server_hostname,
        "resource": "backups",
        "name": backup.name,
        "created_at": backup.created_at.isoformat(),
        "size": backup.size,
        "reasons": ["not_selected"],
        "policy": "default",
    }
    assert {key: failed[key] for key in expected} == expected
    assert {e["outcome"] for e in deleted} == {"deleted"}


def test_execute_with_nothing_to_delete_sends_nothing(
    sim: Simulator, make_client: MakeClient
) -> None:
    plan = _plan(sim, per_server=0)

    execution = _run(plan, make_client())

    assert execution.complete
    assert execution.outcomes == ()
    assert sim.request_count() == 0


# --- a failing API, a refused key: as few DELETEs as it takes to know -------------------------


def test_execute_stops_deleting_after_max_consecutive_failures(
    sim: Simulator, make_client: MakeClient
) -> None:
    plan = _plan(sim)  # six deletions
    sim.faults = Faults(error_rate=1.0)  # the API is down: every DELETE answers 500

    with capture_logs() as logs:
        execution = _run(plan, make_client(retries=0), max_consecutive_failures=3)

    assert sim.request_count("DELETE") == 3
    assert [o.result for o in execution.outcomes] == ["failed"] * 3
    assert _keys(execution.not_attempted) == _keys(plan.deletions[3:])
    assert not execution.interrupted
    assert execution.fatal is not None
    assert execution.fatal.startswith("stopped deleting after 3 deletions in a row failed")
    assert "HTTP 500" in execution.fatal
    assert "check the VPSBG API's status and the network" in execution.fatal
    messages = " ".join(m for g in execution.plan.groups for m in g.messages)
    assert "not attempted: 3 deletions in a row failed" in messages
    [stopped] = [log for log in logs if log["event"] == "executor.stopped"]
    assert stopped["reason"] == "3 deletions in a row failed"


def test_execute_a_done_deletion_resets_the_failure_count(
    sim: Simulator, make_client: MakeClient
) -> None:
    plan = _plan(sim)
    for n in (0, 1, 3, 4):  # failed, failed, done, failed, failed, done
        backup = plan.deletions[n].backup
        sim.script("DELETE", f"/v1/backups/{backup.id}", ScriptedResponse(500))

    execution = execute(
        plan,
        make_client(retries=0, concurrency=1),
        concurrency=1,
        stop=threading.Event(),
        log=structlog.get_logger("test"),
        max_consecutive_failures=3,
    )

    assert [o.result for o in execution.outcomes] == ["failed", "failed", "deleted"] * 2
    assert execution.not_attempted == ()
    assert execution.fatal is None


def test_execute_with_a_read_key_sends_one_delete_whatever_the_workers(
    sim: Simulator, make_client: MakeClient
) -> None:
    plan = _plan(sim)

    execution = _run(plan, make_client(READ_TOKEN))

    assert sim.request_count("DELETE") == 1
    assert len(execution.not_attempted) == 5
    assert execution.fatal is not None
    assert "Read permission only" in execution.fatal


def test_execute_fans_out_only_once_a_deletion_was_done(
    sim: Simulator, make_client: MakeClient
) -> None:
    plan = _plan(sim)
    first = plan.deletions[0].backup
    sim.script("DELETE", f"/v1/backups/{first.id}", ScriptedResponse(500))
    done_before: list[int] = []  # for each DELETE as it arrives: how many were done by then
    second = threading.Event()
    overlapped: list[bool] = []

    def on_request(method: str, _path: str) -> None:
        if method != "DELETE":
            return
        done_before.append(len(sim.deleted))
        if len(done_before) == 1:  # hold the first a moment: does another come meanwhile?
            overlapped.append(second.wait(0.1))
        elif len(done_before) == 2:
            second.set()

    sim.on_request(on_request)

    execution = _run(plan, make_client(retries=0))

    assert overlapped == [False]
    assert len(execution.done) == 5
    # The first failed, so the second went alone too; the rest only after it was done.
    assert done_before[:2] == [0, 0]
    assert min(done_before[2:]) >= 1


def test_execute_with_one_worker_deletes_in_the_calling_thread(
    sim: Simulator, make_client: MakeClient
) -> None:
    # One request at a time needs no pool: handing each deletion to a worker thread and back
    # cost two thread switches a deletion.
    plan = _plan(sim)
    threads: set[str] = set()
    client = make_client(concurrency=1)
    original = client.delete

    def delete(resource: Any, item_id: int) -> Any:
        threads.add(threading.current_thread().name)
        return original(resource, item_id)

    client.delete = delete  # type: ignore[method-assign]

    execution = execute(
        plan, client, concurrency=1, stop=threading.Event(), log=structlog.get_logger("test")
    )

    assert len(execution.done) == 6
    assert threads == {threading.current_thread().name}


def test_execute_tells_its_progress_one_deletion_at_a_time(
    sim: Simulator, make_client: MakeClient
) -> None:
    plan = _plan(sim)
    progress = RecordedProgress()

    _run(plan, make_client(), progress=progress)

    assert progress.calls[0] == ("start", "deleting", 6)
    assert progress.of("deleting") == ["start", *["advance"] * 6, "finish"]


def test_execute_finishes_its_progress_when_deleting_stops_early(
    sim: Simulator, make_client: MakeClient
) -> None:
    plan = _plan(sim)
    progress = RecordedProgress()

    execute(
        plan,
        make_client(READ_TOKEN, concurrency=1),
        concurrency=1,
        stop=threading.Event(),
        log=structlog.get_logger("test"),
        progress=progress,
    )

    assert progress.of("deleting") == ["start", "advance", "finish"]  # one refusal ends it
