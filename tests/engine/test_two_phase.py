from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from pruner.engine.models import Decision, Plan, Server
from pruner.engine.planner import build_plan
from pruner.engine.reasons import NOT_SELECTED, Reason, pending, skipped, texts
from pruner.engine.two_phase import Key, TwoPhase, planned_deletion
from pruner.report.summary import summarize
from tests._factories import NOW, backup, daily, listing, policy

KEEP_2 = policy("default", keep_last=2)
WINDOW = timedelta(hours=12)


def _plan(
    backups_listing: object,
    first_seen: Mapping[Key, datetime] | None,
    *,
    keep: int = 2,
    cap: int | None = None,
    fraction: float = 1.0,
) -> Plan:
    two_phase = None if first_seen is None else TwoPhase(WINDOW, first_seen)
    return build_plan(
        backups_listing,  # type: ignore[arg-type]
        [policy("default", keep_last=keep, max_delete_fraction=fraction)],
        now=NOW,
        generated_at=NOW,
        zone=None,
        max_deletions_per_run=cap,
        dry_run=False,
        two_phase=two_phase,
    )


def _by_id(plan: Plan) -> dict[int, tuple[str, list[str]]]:
    return {d.backup.id: (d.action, texts(d.reasons)) for d in plan.decisions}


def test_pending_renders_when_a_pass_first_planned_the_deletion_in_utc() -> None:
    sofia = timezone(timedelta(hours=2))
    first = datetime(2026, 11, 27, 5, 30, 0, 123456, tzinfo=sofia)
    assert str(pending(first)) == "pending:2026-11-27T03:30:00+00:00"


def test_a_deletion_no_pass_planned_before_waits_with_the_reasons_it_would_go_for() -> None:
    plan = _plan(listing(daily(4)), {})
    assert _by_id(plan) == {
        1: ("keep", ["keep_last:1"]),
        2: ("keep", ["keep_last:2"]),
        3: ("keep", [f"pending:{NOW.isoformat()}", "not_selected"]),
        4: ("keep", [f"pending:{NOW.isoformat()}", "not_selected"]),
    }
    assert plan.deletions == ()


def test_a_deletion_planned_at_least_confirm_after_before_is_deleted() -> None:
    seen = {("backups", 3): NOW - WINDOW, ("backups", 4): NOW - WINDOW + timedelta(seconds=1)}
    plan = _plan(listing(daily(4)), seen)
    assert _by_id(plan)[3] == ("delete", ["not_selected"])
    earlier = (NOW - WINDOW + timedelta(seconds=1)).isoformat()
    assert _by_id(plan)[4] == ("keep", [f"pending:{earlier}", "not_selected"])


def test_without_two_phase_nothing_waits() -> None:
    plan = _plan(listing(daily(4)), None)
    assert [d.backup.id for d in plan.deletions] == [3, 4]


def test_a_first_seen_time_of_a_backup_the_policy_keeps_changes_nothing() -> None:
    plan = _plan(listing(daily(4)), {("backups", 1): NOW - 2 * WINDOW})
    assert _by_id(plan)[1] == ("keep", ["keep_last:1"])


def test_the_fraction_cap_counts_only_the_confirmed_deletions() -> None:
    backups = daily(10)
    confirmed = {("backups", 9): NOW - WINDOW, ("backups", 10): NOW - WINDOW}
    plan = _plan(listing(backups), confirmed, fraction=0.5)
    [group] = plan.groups
    assert (group.status, group.deleted) == ("ok", 2)  # 6 more wait: not counted
    everything = {("backups", n): NOW - WINDOW for n in range(3, 11)}
    [capped] = _plan(listing(backups), everything, fraction=0.5).groups
    assert (capped.guard, capped.blocked_deletions) == ("max_delete_fraction", 8)


def test_the_run_cap_counts_only_the_confirmed_deletions() -> None:
    backups = [*daily(4, 1), *daily(4, 2, first_id=10)]
    confirmed = {("backups", 3): NOW - WINDOW, ("backups", 4): NOW - WINDOW}
    plan = _plan(listing(backups), confirmed, cap=2)
    assert [d.backup.id for d in plan.deletions] == [3, 4]
    assert all(group.guard is None for group in plan.groups)


def test_the_summary_counts_the_pending_deletions_among_the_kept() -> None:
    summary = summarize(_plan(listing(daily(4)), {("backups", 4): NOW - WINDOW}))
    assert (summary.kept, summary.pending, summary.deleted) == (3, 1, 1)
    assert summary.as_json()["pending"] == 1


def test_planned_deletion_is_what_the_policy_would_delete_whatever_held_it_back() -> None:
    [item] = daily(1)
    for reasons, action, planned in [
        ((NOT_SELECTED,), "delete", True),
        ((pending(NOW), NOT_SELECTED), "keep", True),
        ((skipped("locked"),), "keep", True),
        ((skipped("stale"),), "keep", True),
        ((skipped("max_delete_fraction"),), "keep", True),
        ((skipped("max_deletions_per_run"),), "keep", True),
        ((skipped("incomplete"),), "keep", False),  # nothing could be decided
        ((Reason("keep_last", "1"),), "keep", False),
        ((Reason("orphan"),), "keep", False),
    ]:
        decision = Decision(item, action, reasons)  # type: ignore[arg-type]
        assert planned_deletion(decision) is planned, reasons


def test_a_locked_servers_deletions_stay_skipped_not_pending() -> None:
    servers = [Server(2478, hostname="ubuntu-2gb", status="active", locked=True)]
    plan = _plan(listing(daily(4), servers), {})
    assert [texts(d.reasons) for d in plan.decisions][2:] == [["skipped:locked"]] * 2


@given(
    ages=st.lists(st.integers(min_value=-48, max_value=48), min_size=8, max_size=8),
    keep=st.integers(min_value=0, max_value=8),
)
def test_two_phase_only_ever_deletes_a_subset_of_the_plain_plan_and_only_confirmed(
    ages: list[int], keep: int
) -> None:
    backups = daily(8)
    seen = {("backups", b.id): NOW - timedelta(hours=h) for b, h in zip(backups, ages, strict=True)}
    plain = {d.backup.id for d in _plan(listing(backups), None, keep=keep).deletions}
    held = _plan(listing(backups), seen, keep=keep)
    deleted = {d.backup.id for d in held.deletions}
    assert deleted <= plain
    assert deleted == {
        b.id for b in backups if b.id in plain and NOW - seen[b.resource, b.id] >= WINDOW
    }
    waiting = {d.backup.id for d in held.decisions if d.pending}
    assert waiting == plain - deleted
    assert all(planned_deletion(d) == (d.backup.id in plain) for d in held.decisions)


def test_first_seen_may_be_given_with_any_offset() -> None:
    sofia = timezone(timedelta(hours=2))
    seen = {("backups", 3): (NOW - WINDOW).astimezone(sofia)}
    assert [d.backup.id for d in _plan(listing(daily(3)), seen).deletions] == [3]
    assert TwoPhase(WINDOW, seen).first_seen_of(backup(3), NOW) == NOW.astimezone(UTC) - WINDOW
