from __future__ import annotations

import json
import os
import stat
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import structlog
from hypothesis import given
from hypothesis import strategies as st
from structlog.testing import capture_logs

from pruner.engine.models import Decision, Group, Plan, Server
from pruner.engine.planner import build_plan
from pruner.engine.reasons import NOT_SELECTED, SKIPPED_INCOMPLETE, Reason, skipped
from pruner.engine.scope import Scope
from pruner.engine.two_phase import TwoPhase, planned_deletion
from pruner.passes.pending import (
    PENDING_SCHEMA,
    PendingDeletions,
    PendingEntry,
    load_pending,
    read_pending,
    record_pending,
    write_pending,
)
from pruner.passes.state import PENDING_FILE
from tests._factories import NOW, backup, daily, listing, policy

WINDOW = timedelta(hours=12)
LOG = structlog.get_logger("test")


def _entry(id_: int, first_seen: datetime = NOW, server_id: int = 2478) -> PendingEntry:
    return PendingEntry("backups", id_, server_id, first_seen)


def _state(*entries: PendingEntry) -> PendingDeletions:
    return PendingDeletions.of(entries)


def _plan(*groups: Group) -> Plan:
    return Plan(generated_at=NOW, now=NOW, dry_run=False, groups=groups)


def _group(*decisions: Decision, status: Any = "ok", server_id: int = 2478) -> Group:
    return Group("backups", server_id, "ubuntu-2gb", "default", status, decisions)


def _decide(
    state: PendingDeletions, backups: Any, scope: Scope | None = None, **fields: Any
) -> Plan:
    return build_plan(
        listing(backups, **fields),
        [policy("default", keep_last=2, max_delete_fraction=1.0)],
        now=NOW,
        generated_at=NOW,
        zone=None,
        max_deletions_per_run=None,
        dry_run=False,
        two_phase=state.two_phase(WINDOW),
        scope=scope,
    )


# --- the file ---------------------------------------------------------------------------------


def test_write_pending_writes_a_versioned_private_file_read_pending_reads_back(
    tmp_path: Path,
) -> None:
    path = tmp_path / PENDING_FILE
    state = _state(_entry(4, NOW - WINDOW), _entry(3), PendingEntry("snapshots", 3, 7, NOW))

    write_pending(path, state)

    document = json.loads(path.read_text(encoding="utf-8"))
    assert document["schema"] == PENDING_SCHEMA == "pruner.pending/v1"
    assert document["entries"][0] == {
        "resource": "backups",
        "id": 3,
        "server_id": 2478,
        "first_seen": "2026-11-27T03:30:00+00:00",
    }
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert read_pending(path) == state


def test_read_pending_of_no_file_is_nothing_pending(tmp_path: Path) -> None:
    assert read_pending(tmp_path / PENDING_FILE) is None


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("{not json", "not JSON"),
        ("[]", "not a pruner.pending/v1 document"),
        ('{"schema": "pruner.pending/v2", "entries": []}', "not a pruner.pending/v1 document"),
        ('{"schema": "pruner.pending/v1"}', "entries: must be a list"),
        ('{"schema": "pruner.pending/v1", "entries": [7]}', "entries[0]: must be an object"),
        (
            '{"schema": "pruner.pending/v1", "entries": [{"resource": "disks", "id": 1, '
            '"server_id": 2, "first_seen": "2026-11-27T03:30:00+00:00"}]}',
            "entries[0].resource: must be backups or snapshots",
        ),
        (
            '{"schema": "pruner.pending/v1", "entries": [{"resource": "backups", "id": true, '
            '"server_id": 2, "first_seen": "2026-11-27T03:30:00+00:00"}]}',
            "entries[0].id: must be an integer",
        ),
        (
            '{"schema": "pruner.pending/v1", "entries": [{"resource": "backups", "id": 1, '
            '"server_id": 2, "first_seen": "2026-11-27T03:30:00"}]}',
            "entries[0].first_seen: must be an RFC 3339 time with a UTC offset",
        ),
        (
            '{"schema": "pruner.pending/v1", "entries": [{"resource": "backups", "id": 1, '
            '"server_id": 2, "first_seen": "yesterday"}]}',
            "entries[0].first_seen: must be an RFC 3339 time with a UTC offset",
        ),
    ],
)
def test_read_pending_names_what_is_wrong_with_a_corrupt_file(
    tmp_path: Path, text: str, why: str
) -> None:
    path = tmp_path / PENDING_FILE
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=why.replace("[", r"\[").replace("]", r"\]")):
        read_pending(path)


def test_read_pending_refuses_the_same_backup_twice(tmp_path: Path) -> None:
    path = tmp_path / PENDING_FILE
    entry = {"resource": "backups", "id": 1, "server_id": 2, "first_seen": NOW.isoformat()}
    path.write_text(json.dumps({"schema": PENDING_SCHEMA, "entries": [entry, entry]}), "utf-8")
    with pytest.raises(ValueError, match=r"entries\[1\]: backups 1 is listed twice"):
        read_pending(path)


# --- what a plan leaves -----------------------------------------------------------------------


def test_after_records_what_the_plan_would_delete_keeping_the_first_time_seen() -> None:
    earlier = NOW - timedelta(hours=3)
    state = _state(_entry(3, earlier))
    plan = _decide(state, daily(5))

    after = state.after(plan)

    assert after == _state(_entry(3, earlier), _entry(4), _entry(5))


def test_after_resets_a_backup_a_pass_plans_to_keep() -> None:
    state = _state(_entry(1, NOW - 2 * WINDOW), _entry(3, NOW - 2 * WINDOW))
    plan = _decide(state, daily(3))

    assert state.after(plan) == _state(_entry(3, NOW - 2 * WINDOW))  # 1 is kept: forgotten


def test_after_forgets_backups_that_are_no_longer_listed() -> None:
    state = _state(_entry(3), _entry(99, server_id=5))
    assert state.after(_decide(state, daily(3))) == _state(_entry(3))


def test_after_keeps_waiting_deletions_a_guard_held_back_this_pass() -> None:
    earlier = NOW - timedelta(hours=3)
    state = _state(_entry(3, earlier))
    locked = [Server(2478, hostname="ubuntu-2gb", status="active", locked=True)]
    plan = _decide(state, daily(4), servers=locked)

    assert plan.groups[0].guard == "locked"
    assert state.after(plan) == _state(_entry(3, earlier), _entry(4))


def test_after_resets_the_groups_a_pass_could_not_decide() -> None:
    state = _state(_entry(3, NOW - 2 * WINDOW), _entry(13, NOW - 2 * WINDOW, server_id=2))
    group = _group(
        Decision(backup(3), "keep", (SKIPPED_INCOMPLETE,)), status="incomplete", server_id=2478
    )
    other = _group(Decision(backup(13, 2), "keep", (skipped("max_delete_fraction"),)), server_id=2)

    after = state.after(_plan(group, other))

    assert after == _state(_entry(13, NOW - 2 * WINDOW, server_id=2))


def test_after_counts_a_deletion_done_or_not_as_planned_again() -> None:
    state = _state(_entry(3, NOW - WINDOW))
    group = _group(
        Decision(backup(3), "delete", (NOT_SELECTED,)),
        Decision(backup(4), "keep", (Reason("pending", NOW.isoformat()), NOT_SELECTED)),
    )
    assert state.after(_plan(group)) == _state(_entry(3, NOW - WINDOW), _entry(4))


def test_after_a_scoped_plan_leaves_the_entries_of_groups_out_of_scope_alone() -> None:
    earlier = NOW - timedelta(hours=3)
    state = _state(_entry(3, earlier), _entry(13, earlier, server_id=2), _entry(14, server_id=9))
    backups = [*daily(3), *daily(3, 2, first_id=11)]
    plan = _decide(state, backups, scope=Scope(("2",)))

    assert [group.server_id for group in plan.groups] == [2]
    assert state.after(plan) == _state(
        _entry(3, earlier), _entry(13, earlier, server_id=2), _entry(14, server_id=9)
    )
    unscoped = _decide(state, backups)
    assert state.after(unscoped) == _state(_entry(3, earlier), _entry(13, earlier, server_id=2))


def test_two_phase_confirms_what_was_first_seen_long_enough_ago() -> None:
    state = _state(_entry(3, NOW - WINDOW), _entry(4, NOW - timedelta(hours=1)))
    two_phase = state.two_phase(WINDOW)
    assert two_phase == TwoPhase(
        WINDOW, {("backups", 3): NOW - WINDOW, ("backups", 4): NOW - timedelta(hours=1)}
    )


# --- in a pass --------------------------------------------------------------------------------


def test_load_pending_of_a_corrupt_file_confirms_nothing_and_says_what_to_do(
    tmp_path: Path,
) -> None:
    path = tmp_path / PENDING_FILE
    path.write_text("{not json", encoding="utf-8")

    with capture_logs() as logs:
        state = load_pending(tmp_path, LOG)

    assert state == PendingDeletions.of(())
    [event] = logs
    assert event["event"] == "pending.unreadable"
    assert event["log_level"] == "error"
    assert event["path"] == str(path)
    assert "not JSON" in event["message"]
    assert "nothing is confirmed this pass, so nothing is deleted" in event["message"]
    assert "A pruner run or daemon pass rewrites the file from its plan" in event["message"]


def test_load_pending_of_an_unreadable_file_confirms_nothing(
    tmp_path: Path, deny_access: Any
) -> None:
    (tmp_path / PENDING_FILE).write_text(json.dumps({"schema": PENDING_SCHEMA, "entries": []}))
    deny_access(tmp_path)

    with capture_logs() as logs:
        state = load_pending(tmp_path, LOG)

    assert state == PendingDeletions.of(())
    assert [e["event"] for e in logs] == ["pending.unreadable"]
    assert "Permission denied" in logs[0]["message"]


def test_load_pending_says_when_nothing_was_recorded_yet(tmp_path: Path) -> None:
    with capture_logs() as logs:
        assert load_pending(tmp_path, LOG) == PendingDeletions.of(())
    assert [(e["event"], e["log_level"]) for e in logs] == [("pending.none", "info")]


def test_record_pending_writes_the_state_a_plan_leaves(tmp_path: Path) -> None:
    state = _state(_entry(1, NOW - WINDOW))
    plan = _decide(state, daily(3))

    with capture_logs():
        assert record_pending(tmp_path, state, plan, LOG)

    assert read_pending(tmp_path / PENDING_FILE) == _state(_entry(3))


def test_record_pending_says_when_the_file_cannot_be_written(tmp_path: Path) -> None:
    missing = tmp_path / "gone"
    plan = _decide(PendingDeletions.of(()), daily(3))

    with capture_logs() as logs:
        assert not record_pending(missing, PendingDeletions.of(()), plan, LOG)

    [event] = logs
    assert (event["event"], event["log_level"]) == ("pending.write_failed", "error")
    assert "nothing is deleted this pass" in event["message"]


def test_first_seen_is_kept_in_utc() -> None:
    sofia = NOW.astimezone(timezone(timedelta(hours=2)))
    first_seen = _state(_entry(3, sofia)).entries[("backups", 3)].first_seen
    assert (first_seen, first_seen.tzinfo) == (NOW, UTC)


# --- the contract, over any sequence of passes ------------------------------------------------


@given(
    passes=st.lists(
        st.tuples(st.integers(min_value=0, max_value=20), st.integers(min_value=0, max_value=8)),
        min_size=1,
        max_size=8,
    )
)
def test_a_backup_is_deleted_exactly_when_a_pass_long_enough_before_and_every_pass_since_planned_it(
    passes: list[tuple[int, int]],
) -> None:
    """Each pass comes `hours` after the one before and keeps the `keep` newest: a backup goes
    at the first pass whose earlier pass, at least the window before, planned to delete it, as
    did every pass in between."""
    backups = daily(10)
    state = PendingDeletions.of(())
    gone: set[int] = set()
    history: list[tuple[datetime, set[int]]] = []  # each pass's time and planned deletions
    now = NOW
    for hours, keep in passes:
        now += timedelta(hours=hours)
        plan = build_plan(
            listing(b for b in backups if b.id not in gone),
            [policy("default", keep_last=keep, max_delete_fraction=1.0)],
            now=now,
            generated_at=now,
            zone=None,
            max_deletions_per_run=None,
            dry_run=False,
            two_phase=state.two_phase(WINDOW),
        )
        planned = {d.backup.id for d in plan.decisions if planned_deletion(d)}
        history.append((now, planned))
        deleted = {d.backup.id for d in plan.deletions}
        assert deleted == {backup_id for backup_id in planned if _confirmed(backup_id, history)}
        state = state.after(plan)
        gone |= deleted


def _confirmed(backup_id: int, history: list[tuple[datetime, set[int]]]) -> bool:
    """The last pass of `history` planned it, and so did every pass back to one at least the
    window before the last."""
    now = history[-1][0]
    for moment, planned in reversed(history):
        if backup_id not in planned:
            return False
        if moment <= now - WINDOW:
            return True
    return False
