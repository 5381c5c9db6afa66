from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pruner.engine.models import Backup, Group, Listing, Plan, Policy, Problem, Server
from pruner.engine.planner import build_plan
from pruner.engine.reasons import texts
from pruner.engine.scope import Scope
from pruner.report.summary import summarize
from tests._factories import NOW, backup, daily, listing, policy


def _plan(
    given: Listing,
    policies: Sequence[Policy],
    *,
    cap: int | None = None,
    allow: bool = False,
) -> Plan:
    return build_plan(
        given,
        policies,
        now=NOW,
        generated_at=NOW,
        zone=None,
        max_deletions_per_run=cap,
        dry_run=True,
        allow_large_deletions=allow,
    )


def _only_group(plan: Plan) -> Group:
    [group] = plan.groups
    return group


def _actions(group: Group) -> list[tuple[int, str, tuple[str, ...]]]:
    return [(d.backup.id, d.action, tuple(texts(d.reasons))) for d in group.decisions]


def _reasons(group: Group) -> list[tuple[str, ...]]:
    """Each decision's reasons, as the documented texts."""
    return [tuple(texts(d.reasons)) for d in group.decisions]


def _warnings(plan: Plan) -> list[str]:
    return [p.message for p in plan.problems if p.level == "warning"]


KEEP_2 = policy("default", keep_last=2)


# --- grouping, matching, order --------------------------------------------------------------


def test_build_plan_decides_a_matched_group_newest_first() -> None:
    backups = daily(4)
    group = _only_group(_plan(listing(reversed(backups)), [KEEP_2]))
    assert (group.status, group.policy, group.server_hostname, group.guard) == (
        "ok",
        "default",
        "ubuntu-2gb",
        None,
    )
    assert _actions(group) == [
        (1, "keep", ("keep_last:1",)),
        (2, "keep", ("keep_last:2",)),
        (3, "delete", ("not_selected",)),
        (4, "delete", ("not_selected",)),
    ]
    assert (group.kept, group.deleted, group.size_freed, group.blocked_deletions) == (2, 2, 100, 0)


def test_build_plan_orders_groups_by_resource_then_server() -> None:
    backups = [
        *daily(1, 30, first_id=1, resource="snapshots"),
        *daily(1, 20, first_id=2),
        *daily(1, 10, first_id=3, resource="snapshots"),
        *daily(1, 5, first_id=4),
    ]
    plan = _plan(listing(backups), [KEEP_2, policy("snaps", resource="snapshots", keep_last=1)])
    assert [(g.resource, g.server_id) for g in plan.groups] == [
        ("backups", 5),
        ("backups", 20),
        ("snapshots", 10),
        ("snapshots", 30),
    ]


def test_build_plan_takes_the_first_matching_policy_of_the_groups_resource() -> None:
    policies = [
        policy("snaps", resource="snapshots", keep_last=1),
        policy("databases", hostnames=["db-*"], keep_last=3),
        policy("rest", keep_last=1),
    ]
    backups = [*daily(1, 1, hostname="db-1"), *daily(1, 2, first_id=2, hostname="web-1")]
    plan = _plan(listing(backups), policies)
    assert [g.policy for g in plan.groups] == ["databases", "rest"]


def test_build_plan_matches_snapshot_groups_by_server_id() -> None:
    policies = [policy("snaps", resource="snapshots", server_ids=[7], keep_last=1)]
    snapshots = [
        *daily(2, 7, resource="snapshots"),
        *daily(2, 8, first_id=3, resource="snapshots"),
    ]
    plan = _plan(listing(snapshots), policies)
    seven, eight = plan.groups
    assert (seven.status, seven.policy, seven.deleted) == ("ok", "snaps", 1)
    assert seven.server_hostname is None  # snapshots carry none and no servers were listed
    assert (eight.status, eight.policy) == ("unmanaged", None)


def test_build_plan_matches_hostnames_from_the_servers_listing_first() -> None:
    servers = [Server(2478, hostname="db-1", status="active")]
    backups = daily(3, hostname="old-name")
    plan = _plan(listing(backups, servers), [policy("db", hostnames=["db-*"], keep_last=3)])
    group = _only_group(plan)
    assert (group.policy, group.server_hostname) == ("db", "db-1")


def test_build_plan_falls_back_to_the_newest_backups_hostname() -> None:
    backups = [
        backup(1, created_at=NOW - timedelta(days=1), hostname="new-name"),
        backup(2, created_at=NOW - timedelta(days=2), hostname="old-name"),
    ]
    group = _only_group(_plan(listing(backups), [KEEP_2]))
    assert group.server_hostname == "new-name"


# A server whose hostname is unknown: null or absent in the servers listing and its backups.
NAMELESS = [Server(1, hostname=None, status="active")]
DB_FIRST = [
    policy("db", hostnames=["db-*"], keep_last=10),
    policy("everything", keep_last=6),
]


def test_build_plan_does_not_let_an_unknown_hostname_fall_through_to_a_later_policy() -> None:
    plan = _plan(listing(daily(8, 1, hostname=None), NAMELESS), DB_FIRST)
    group = _incomplete_group_of(plan)
    assert group.policy is None
    assert [p.message for p in plan.problems if p.level == "error"] == [
        "server 1, backups: its hostname is unknown (null or absent in the servers listing and "
        "in its backups) and policy 'db' matches by hostname (db-*) before any policy that "
        "matches it without one: which policy applies cannot be told, so it is not pruned; "
        "give the server a hostname, or match it by server_ids in a policy before 'db'"
    ]
    assert not summarize(plan).complete


def test_build_plan_fails_closed_on_an_unknown_hostname_with_only_hostname_policies() -> None:
    plan = _plan(listing(daily(8, 1, hostname=None), NAMELESS), DB_FIRST[:1])
    assert _incomplete_group_of(plan).policy is None


def test_build_plan_decides_by_a_hostname_free_match_that_comes_first() -> None:
    policies = [policy("one", server_ids=[1], keep_last=4), *DB_FIRST]
    group = _only_group(_plan(listing(daily(8, 1, hostname=None), NAMELESS), policies))
    assert (group.status, group.policy, group.kept) == ("ok", "one", 4)


def test_build_plan_ignores_an_unknown_hostname_for_a_policy_of_other_server_ids() -> None:
    policies = [policy("db", server_ids=[2], hostnames=["db-*"], keep_last=10), DB_FIRST[1]]
    group = _only_group(_plan(listing(daily(8, 1, hostname=None), NAMELESS), policies))
    assert (group.status, group.policy, group.kept) == ("ok", "everything", 6)


def test_build_plan_keeps_a_nameless_orphan_as_an_orphan_when_every_candidate_keeps_orphans() -> (
    None
):
    # A deleted server's snapshots carry no hostname: whichever policy applies keeps them.
    plan = _plan(listing(daily(8, 1, hostname=None), []), DB_FIRST)
    group = _only_group(plan)
    assert (group.status, group.policy, group.deleted) == ("orphan", None, 0)
    assert "every policy that could apply has orphans: keep" in group.messages[0]
    assert not [p for p in plan.problems if p.level == "error"]


@pytest.mark.parametrize("applies", ["db", "everything"])
def test_build_plan_fails_closed_on_a_nameless_orphan_a_candidate_would_prune(applies: str) -> None:
    policies = [replace(p, orphans="apply") if p.name == applies else p for p in DB_FIRST]
    plan = _plan(listing(daily(8, 1, hostname=None), []), policies)
    assert _incomplete_group_of(plan).deleted == 0


def test_build_plan_judges_a_nameless_orphan_by_the_candidates_only() -> None:
    # A policy after the first hostname-free match can never apply: its orphans: apply is moot.
    policies = [*DB_FIRST, policy("late", server_ids=[1], keep_last=1, orphans="apply")]
    group = _only_group(_plan(listing(daily(8, 1, hostname=None), []), policies))
    assert group.status == "orphan"


def test_build_plan_ignores_hostname_policies_of_the_other_resource() -> None:
    policies = [policy("db", resource="snapshots", hostnames=["db-*"], keep_last=1), DB_FIRST[1]]
    group = _only_group(_plan(listing(daily(8, 1, hostname=None), NAMELESS), policies))
    assert (group.status, group.policy) == ("ok", "everything")


def test_build_plan_matches_a_nameless_server_by_its_backups_hostname() -> None:
    group = _only_group(_plan(listing(daily(8, 1, hostname="db-1"), NAMELESS), DB_FIRST))
    assert (group.status, group.policy, group.server_hostname) == ("ok", "db", "db-1")


_CONDITIONS = st.tuples(
    st.none() | st.sampled_from([("db-*",), ("web-*", "db-?"), ("*",)]),
    st.none() | st.sampled_from([frozenset({1}), frozenset({2}), frozenset({1, 2})]),
)


@given(
    conditions=st.lists(_CONDITIONS, min_size=1, max_size=4),
    keep=st.lists(st.integers(0, 6), min_size=4, max_size=4),
)
def test_an_unknown_hostname_deletes_what_every_hostname_would_or_nothing(
    conditions: list[tuple[tuple[str, ...] | None, frozenset[int] | None]], keep: list[int]
) -> None:
    policies = [
        Policy(f"p{n}", hostnames=names, server_ids=ids, keep_last=last, max_delete_fraction=1)
        for n, ((names, ids), last) in enumerate(zip(conditions, keep, strict=False))
    ]

    def decided(hostname: str | None) -> Group:
        servers = [Server(1, hostname=hostname, status="active")]
        group = _only_group(_plan(listing(daily(8, 1, hostname=None), servers), policies))
        return replace(group, server_hostname=None)

    admits = [p.server_ids is None or 1 in p.server_ids for p in policies]
    first_free = next(
        (n for n, p in enumerate(policies) if admits[n] and p.hostnames is None), len(policies)
    )
    hostname_first = any(policies[n].hostnames is not None for n in range(first_free) if admits[n])
    unknown = decided(None)
    if hostname_first:
        assert (unknown.status, unknown.policy, unknown.deleted) == ("incomplete", None, 0)
    else:
        assert all(decided(name) == unknown for name in ("db-1", "web-1", "other"))


def _incomplete_group_of(plan: Plan) -> Group:
    group = _only_group(plan)
    assert (group.status, group.deleted) == ("incomplete", 0)
    assert set(_reasons(group)) == {("skipped:incomplete",)}
    return group


def test_build_plan_keeps_unmanaged_servers_and_warns() -> None:
    plan = _plan(listing(daily(3)), [policy("db", hostnames=["db-*"], keep_last=1)])
    group = _only_group(plan)
    assert (group.status, group.policy, group.deleted) == ("unmanaged", None, 0)
    assert set(_reasons(group)) == {("unmanaged",)}
    assert [d.backup.id for d in group.decisions] == [1, 2, 3]
    assert _warnings(plan) == [
        "server 2478 (ubuntu-2gb), backups: no policy matches it: its 3 backups are kept"
    ]


def test_build_plan_includes_the_listings_problems() -> None:
    warning = Problem("warning", "the saved listing is not whole", resource="backups")
    plan = _plan(listing(daily(2), problems=(warning,)), [KEEP_2])
    assert plan.problems[0] == warning
    assert summarize(plan).complete


def test_build_plan_warns_that_an_empty_listing_holds_nothing_to_prune() -> None:
    plan = _plan(listing([], [Server(1, "db-1")]), [KEEP_2])
    assert plan.groups == ()
    assert _warnings(plan) == [
        "the listing holds no backups or snapshots at all (1 server listed): nothing to prune; "
        "if the account has some, check that the API key belongs to it"
    ]
    assert summarize(plan).complete


def test_build_plan_says_nothing_of_an_empty_listing_that_failed() -> None:
    failed = Listing((), (), frozenset({"backups"}), incomplete_resources=frozenset({"backups"}))
    assert _warnings(_plan(failed, [KEEP_2])) == []


# --- fail closed ----------------------------------------------------------------------------


def _incomplete_group(given: Listing, policies: Sequence[Policy] = (KEEP_2,)) -> Group:
    group = _only_group(_plan(given, policies))
    assert group.status == "incomplete"
    assert group.deleted == 0
    assert set(_reasons(group)) == {("skipped:incomplete",)}
    return group


def test_build_plan_fails_closed_on_an_incomplete_resource_listing() -> None:
    group = _incomplete_group(listing(daily(4), incomplete_resources=frozenset({"backups"})))
    assert group.messages == ("the backups listing could not be read completely",)


def test_build_plan_fails_closed_everywhere_on_an_incomplete_servers_listing() -> None:
    given = listing(daily(4), [Server(2478)], servers_complete=False)
    group = _incomplete_group(given)
    assert "nothing is deleted this pass" in group.messages[0]


def test_build_plan_fails_closed_on_an_item_that_names_no_server() -> None:
    error = Problem("error", "backups item 9 has no server_id", resource="backups")
    group = _incomplete_group(listing(daily(4), problems=(error,)))
    assert "cannot be attributed to a server" in group.messages[0]


def test_build_plan_leaves_the_other_resource_alone_when_one_names_no_server() -> None:
    error = Problem("error", "snapshots item 9 has no server_id", resource="snapshots")
    plan = _plan(listing(daily(4), problems=(error,)), [KEEP_2])
    assert _only_group(plan).status == "ok"
    assert not summarize(plan).complete  # the error still makes the plan incomplete (exit 1)


def test_build_plan_fails_closed_on_an_error_for_the_server() -> None:
    error = Problem("error", "backups item 3 has no created_at", "backups", server_id=2478)
    other = daily(3, 99, first_id=10)
    plan = _plan(listing([*daily(4), *other], problems=(error,)), [KEEP_2])
    fine, broken = plan.groups  # server 99, then 2478
    assert broken.status == "incomplete"
    assert broken.messages == ("backups item 3 has no created_at",)
    assert fine.status == "ok"


@pytest.mark.parametrize(
    ("fields", "status"),
    [
        ({"keep_last": 2}, "ok"),
        ({"keep_last": 2, "max_total_size": "1TB"}, "incomplete"),
    ],
)
def test_build_plan_blocks_on_a_bad_field_only_if_the_policy_needs_it(
    fields: dict[str, Any], status: str
) -> None:
    error = Problem("error", "bad size", "backups", server_id=2478, backup_id=3, field="size")
    plan = _plan(listing(daily(4), problems=(error,)), [policy("p", **fields)])
    assert _only_group(plan).status == status


def test_build_plan_fails_closed_when_a_backup_lacks_a_field_the_policy_needs() -> None:
    backups = [*daily(3), backup(9, size=None)]
    needs_size = policy("sized", keep_last=2, max_total_size="1TB")
    plan = _plan(listing(backups), [needs_size])
    group = _incomplete_group(listing(backups), [needs_size])
    expected = "1 backup lacks size (ids 9), which policy 'sized' needs for max_total_size"
    assert group.messages == (expected,)
    [problem] = plan.problems
    assert problem.level == "error"
    assert problem.message == f"server 2478 (ubuntu-2gb), backups: {expected}: not pruned"
    assert not summarize(plan).complete


def test_build_plan_needs_names_only_for_protect_names() -> None:
    backups = [Backup("backups", 1, 2478, NOW - timedelta(hours=1), name=None, size=5)]
    plain = _plan(listing(backups), [KEEP_2])
    assert _only_group(plain).status == "ok"
    protecting = policy("p", keep_last=2, protect_names=("*keep*",))
    assert _only_group(_plan(listing(backups), [protecting])).status == "incomplete"


# --- locked, orphans ------------------------------------------------------------------------


def test_build_plan_skips_a_locked_server_keeping_what_it_would_delete() -> None:
    servers = [Server(2478, hostname="ubuntu-2gb", status="active", locked=True)]
    plan = _plan(listing(daily(4), servers), [KEEP_2])
    group = _only_group(plan)
    assert (group.status, group.guard, group.blocked_deletions) == ("skipped", "locked", 2)
    assert _actions(group) == [
        (1, "keep", ("keep_last:1",)),
        (2, "keep", ("keep_last:2",)),
        (3, "keep", ("skipped:locked",)),
        (4, "keep", ("skipped:locked",)),
    ]
    assert "locked" in _warnings(plan)[0]


@pytest.mark.parametrize(
    "servers",
    [[Server(1, hostname="other")], [Server(2478, hostname="ubuntu-2gb", status="terminated")]],
)
def test_build_plan_keeps_orphans(servers: list[Server]) -> None:
    plan = _plan(listing(daily(4), servers), [KEEP_2])
    group = _only_group(plan)
    assert (group.status, group.policy, group.deleted) == ("orphan", "default", 0)
    assert set(_reasons(group)) == {("orphan",)}
    assert "are kept (policy 'default' has orphans: keep)" in _warnings(plan)[0]


def test_build_plan_decides_orphans_normally_when_the_policy_says_apply() -> None:
    apply = policy("default", keep_last=2, orphans="apply")
    group = _only_group(_plan(listing(daily(4), [Server(1)]), [apply]))
    assert (group.status, group.deleted) == ("ok", 2)
    assert "not in the servers listing" in group.messages[0]


def test_build_plan_finds_no_orphans_without_a_servers_listing() -> None:
    assert _only_group(_plan(listing(daily(4)), [KEEP_2])).status == "ok"


# --- stale ----------------------------------------------------------------------------------


def test_build_plan_skips_a_stale_server_even_if_it_would_delete_nothing() -> None:
    backups = daily(3, newest=NOW - timedelta(days=20))
    stale = policy("default", keep_last=5, stale_after="14d")
    plan = _plan(listing(backups), [stale])
    group = _only_group(plan)
    assert (group.status, group.guard, group.blocked_deletions) == ("skipped", "stale", 0)
    [warning] = _warnings(plan)
    assert warning.startswith("server 2478 (ubuntu-2gb), backups: its newest backup (id 1, ")
    assert "older than stale_after 14d (policy 'default' or safety.stale_after)" in warning
    assert "its backups have stopped; keeping its history" in warning


def test_build_plan_turns_a_stale_servers_deletions_into_keeps() -> None:
    backups = daily(4, newest=NOW - timedelta(days=20))
    group = _only_group(_plan(listing(backups), [policy("d", keep_last=2, stale_after="14d")]))
    assert _reasons(group)[2:] == [("skipped:stale",)] * 2
    assert group.blocked_deletions == 2


def test_build_plan_does_not_call_a_fresh_server_stale() -> None:
    backups = daily(3, newest=NOW - timedelta(days=13))
    group = _only_group(_plan(listing(backups), [policy("d", keep_last=5, stale_after="14d")]))
    assert group.status == "ok"


def test_build_plan_judges_staleness_by_backups_before_now() -> None:
    future = backup(100, created_at=NOW + timedelta(days=2))
    old = daily(3, newest=NOW - timedelta(days=20))
    stale = policy("d", keep_last=5, stale_after="14d")
    assert _only_group(_plan(listing([future, *old]), [stale])).guard == "stale"
    assert _only_group(_plan(listing([future]), [stale])).status == "ok"


def test_build_plan_warns_of_backups_dated_after_now_naming_them() -> None:
    future = [
        backup(n, created_at=NOW + timedelta(hours=n - 99), hostname="db-1")
        for n in range(100, 107)
    ]
    keep_2 = policy("p", keep_last=2, max_delete_fraction=1.0)
    plan = _plan(listing([*future, *daily(3, hostname="db-1")]), [keep_2])
    assert _only_group(plan).status == "ok"
    assert _warnings(plan) == [
        "server 2478 (db-1), backups: 7 backups are dated after now (2026-11-27T03:30:00+00:00), "
        "the latest 2026-11-27T10:30:00+00:00 (ids 106, 105, 104, 103, 102 and 2 more): they "
        "count as the newest for keep_last and min_keep, as in restic, so older backups may be "
        "deleted sooner than expected; check the clock of whatever dates them"
    ]


def test_build_plan_warns_of_a_future_backup_of_a_skipped_group_but_not_of_an_orphan() -> None:
    future = backup(100, created_at=NOW + timedelta(days=2))
    old = daily(3, newest=NOW - timedelta(days=20))
    plan = _plan(listing([future, *old]), [policy("d", keep_last=5, stale_after="14d")])
    assert [w for w in _warnings(plan) if "dated after now" in w] == [
        "server 2478 (ubuntu-2gb), backups: 1 backup is dated after now "
        "(2026-11-27T03:30:00+00:00), 2026-11-29T03:30:00+00:00 (id 100): it counts as the "
        "newest for keep_last and min_keep, as in restic, so older backups may be deleted "
        "sooner than expected; check the clock of whatever dates them"
    ]
    orphaned = _plan(listing([future, *old], servers=[]), [KEEP_2])
    assert not [w for w in _warnings(orphaned) if "dated after now" in w]


def test_build_plan_judges_staleness_by_unprotected_backups() -> None:
    fresh_protected = backup(100, created_at=NOW - timedelta(hours=1), name="pre-upgrade")
    old = daily(3, newest=NOW - timedelta(days=20))
    stale = policy("d", keep_last=5, stale_after="14d", protect_names=("pre-*",))
    assert _only_group(_plan(listing([fresh_protected, *old]), [stale])).guard == "stale"
    assert _only_group(_plan(listing([fresh_protected]), [stale])).status == "ok"


# --- caps -----------------------------------------------------------------------------------


def test_build_plan_skips_a_group_that_would_delete_too_large_a_fraction() -> None:
    databases = policy("databases", keep_last=2)
    plan = _plan(listing(daily(10)), [databases])
    group = _only_group(plan)
    assert (group.status, group.guard, group.blocked_deletions, group.deleted) == (
        "skipped",
        "max_delete_fraction",
        8,
        0,
    )
    assert _reasons(group)[2:] == [("skipped:max_delete_fraction",)] * 8
    assert _warnings(plan) == [
        "server 2478 (ubuntu-2gb), backups: the plan would delete 8 of 10 unprotected backups "
        "(80%), more than max_delete_fraction 0.5 (policy 'databases' or "
        "safety.max_delete_fraction): not pruned; run with --allow-large-deletions for one pass "
        "if this is intended"
    ]


def test_build_plan_allows_exactly_the_fraction() -> None:
    group = _only_group(_plan(listing(daily(10)), [policy("p", keep_last=5)]))
    assert (group.status, group.deleted) == ("ok", 5)
    tight = policy("p", keep_last=71, max_delete_fraction=0.29)  # 0.29 * 100 is 29 exactly
    assert _only_group(_plan(listing(daily(100)), [tight])).status == "ok"


def test_build_plan_counts_the_fraction_over_unprotected_backups_only() -> None:
    backups = [*daily(4), *(backup(10 + n, name=f"keep-{n}") for n in range(6))]
    protecting = policy("p", keep_last=1, protect_names=("keep-*",))
    group = _only_group(_plan(listing(backups), [protecting]))
    assert (group.guard, group.blocked_deletions) == ("max_delete_fraction", 3)


def test_build_plan_lifts_the_caps_when_large_deletions_are_allowed() -> None:
    plan = _plan(listing(daily(10)), [KEEP_2], cap=1, allow=True)
    group = _only_group(plan)
    assert (group.status, group.deleted) == ("ok", 8)
    assert plan.problems == ()


def test_build_plan_holds_back_every_group_when_the_run_cap_is_exceeded() -> None:
    backups = [*daily(4, 1), *daily(4, 2, first_id=10), *daily(2, 3, first_id=20)]
    plan = _plan(listing(backups), [KEEP_2], cap=3)
    first, second, third = plan.groups
    for group in (first, second):
        assert (group.status, group.guard, group.blocked_deletions) == (
            "skipped",
            "max_deletions_per_run",
            2,
        )
        assert _reasons(group)[2:] == [("skipped:max_deletions_per_run",)] * 2
    assert (third.status, third.guard) == ("ok", None)  # it had nothing to delete
    [warning] = _warnings(plan)
    assert "would delete 4 backups and snapshots across all servers" in warning
    assert "more than max_deletions_per_run 3 (safety.max_deletions_per_run)" in warning


def test_build_plan_names_the_guard_of_each_guard_warning_and_of_no_other() -> None:
    locked = [Server(2478, hostname="ubuntu-2gb", status="active", locked=True)]
    plans = {
        "locked": _plan(listing(daily(4), locked), [KEEP_2]),
        "stale": _plan(
            listing(daily(3, newest=NOW - timedelta(days=20))),
            [policy("default", keep_last=5, stale_after="14d")],
        ),
        "max_delete_fraction": _plan(listing(daily(10)), [KEEP_2]),
        "max_deletions_per_run": _plan(
            listing([*daily(4, 1), *daily(4, 2, first_id=10)]), [KEEP_2], cap=3
        ),
    }
    for guard, plan in plans.items():
        assert [(p.level, p.guard) for p in plan.problems] == [("warning", guard)]
    orphan = _plan(listing(daily(4), [Server(1)]), [KEEP_2])
    unmanaged = _plan(listing(daily(4)), [policy("other", keep_last=1, hostnames=("x",))])
    assert [p.guard for p in (*orphan.problems, *unmanaged.problems)] == [None, None]


def test_build_plan_counts_the_run_cap_after_the_other_guards() -> None:
    backups = [*daily(4, 1), *daily(10, 2, first_id=10)]  # server 2 trips the fraction cap
    plan = _plan(listing(backups), [KEEP_2], cap=2)
    ok, fraction = plan.groups
    assert (ok.status, ok.deleted) == ("ok", 2)
    assert fraction.guard == "max_delete_fraction"


def test_build_plan_has_no_run_cap_when_it_is_none() -> None:
    backups = [b for n in range(1, 6) for b in daily(4, n, first_id=10 * n)]
    plan = _plan(listing(backups), [KEEP_2], cap=None)
    assert sum(g.deleted for g in plan.groups) == 10


def test_build_plan_shows_servers_of_a_failed_listing_as_incomplete() -> None:
    servers = (Server(1, "db-01"), Server(2, "web-01"))
    listing = Listing(
        backups=(),
        servers=servers,
        resources=frozenset({"backups"}),
        incomplete_resources=frozenset({"backups"}),
    )
    policies = [Policy(name="db", hostnames=("db-*",), keep_last=1)]
    plan = build_plan(
        listing,
        policies,
        now=datetime(2026, 11, 27, tzinfo=UTC),
        generated_at=datetime(2026, 11, 27, tzinfo=UTC),
        zone=None,
        max_deletions_per_run=None,
        dry_run=False,
    )
    assert [(g.server_id, g.status, g.decisions) for g in plan.groups] == [(1, "incomplete", ())]
    assert "could not be read completely" in plan.groups[0].messages[0]


# --- scope ----------------------------------------------------------------------------------

DB = policy("databases", keep_last=2, hostnames=("db-*",))
WEB = policy("web", keep_last=3, hostnames=("web-*",))
FLEET = [
    *daily(4, 1, hostname="db-01"),
    *daily(4, 2, first_id=10, hostname="db-02"),
    *daily(4, 3, first_id=20, hostname="web-01"),
    *daily(4, 4, first_id=30, hostname="other"),
]


def _scoped(scope: Scope | None, given: Listing | None = None, cap: int | None = None) -> Plan:
    return build_plan(
        given or listing(FLEET),
        [DB, WEB],
        now=NOW,
        generated_at=NOW,
        zone=None,
        max_deletions_per_run=cap,
        dry_run=True,
        scope=scope,
    )


def _servers(plan: Plan) -> list[int]:
    return [group.server_id for group in plan.groups]


def test_build_plan_scoped_by_id_decides_that_server_alone() -> None:
    plan = _scoped(Scope(("2",)))
    assert _servers(plan) == [2]
    assert plan.scope == Scope(("2",))
    assert plan.problems == ()  # not even the warning for the unmanaged server


def test_build_plan_scoped_by_glob_decides_the_servers_whose_hostname_matches() -> None:
    assert _servers(_scoped(Scope(("db-*", "web-01")))) == [1, 2, 3]


def test_build_plan_scoped_by_policy_decides_that_policys_groups_alone() -> None:
    assert _servers(_scoped(Scope((), "web"))) == [3]
    assert _servers(_scoped(Scope(("db-01", "web-01"), "databases"))) == [1]


def test_build_plan_scoped_leaves_the_rest_unplanned() -> None:
    assert _scoped(None).scope is None
    assert _servers(_scoped(None)) == [1, 2, 3, 4]


def test_build_plan_scoped_counts_the_run_cap_over_the_scope_alone() -> None:
    assert _scoped(None, cap=3).groups[0].guard == "max_deletions_per_run"  # 2 + 2 + 1 > 3
    assert [g.deleted for g in _scoped(Scope(("db-*",)), cap=4).groups] == [2, 2]


def test_build_plan_scoped_by_policy_keeps_a_server_it_cannot_tell_in_scope() -> None:
    nameless = daily(3, 9, first_id=50, hostname=None)
    plan = _scoped(Scope((), "web"), listing([*FLEET, *nameless]))
    assert [(g.server_id, g.status) for g in plan.groups] == [(3, "ok"), (9, "incomplete")]


def test_build_plan_scoped_keeps_the_listing_problems_of_its_servers_and_of_none() -> None:
    problems = (
        Problem("error", "bad backup of server 1", resource="backups", server_id=1),
        Problem("error", "bad backup of server 3", resource="backups", server_id=3),
        Problem("warning", "of the whole listing"),
    )
    plan = _scoped(Scope(("db-*",)), listing(FLEET, problems=problems))
    assert [p.message for p in plan.problems] == ["bad backup of server 1", "of the whole listing"]
    assert [g.status for g in plan.groups] == ["incomplete", "ok"]


def test_build_plan_warns_of_a_server_given_that_no_listed_server_answers_to() -> None:
    servers = [Server(5, hostname="db-05")]  # listed, no backups: it answers to db-*
    plan = _scoped(Scope(("db-*", "dv-01", "99")), listing(FLEET, servers))
    assert [w for w in _warnings(plan) if w.startswith("--server")] == [
        "--server dv-01 matches no listed server (by id or hostname): nothing of it was planned; "
        "check the id or the hostname glob",
        "--server 99 matches no listed server (by id or hostname): nothing of it was planned; "
        "check the id or the hostname glob",
    ]


def test_build_plan_warns_of_a_policy_no_server_in_scope_has() -> None:
    plan = _scoped(Scope(("db-01",), "web"))
    assert plan.groups == ()
    assert _warnings(plan) == [
        "--policy web matches none of the servers in scope (servers db-01): nothing was planned"
    ]
