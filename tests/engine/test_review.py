"""A reviewed plan against the backups as they are now: apply deletes what the plan deletes and
nothing else, skips what changed or vanished, and refuses what the current policy keeps."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pruner.engine.models import Backup, Listing, Plan, Policy, Server
from pruner.engine.planner import build_plan
from pruner.engine.reasons import texts
from pruner.engine.review import Review, Reviewed, ReviewedPlan, ReviewOutcome
from pruner.engine.scope import Scope
from pruner.engine.two_phase import TwoPhase
from pruner.engine.units import parse_duration
from tests._factories import NOW, backup, daily, listing, policy

KEEP_3 = policy("default", keep_last=3)
SHA = "ab" * 32
API = "https://api.vpsbg.eu/v1"
DAY = parse_duration("24h")


def reviewed(item: Backup) -> Reviewed:
    return Reviewed(
        resource=item.resource,
        id=item.id,
        server_id=item.server_id,
        name=item.name,
        created_at=item.created_at,
        size=item.size,
    )


def review(
    *deleted: Backup | Reviewed,
    force: bool = False,
    ignore_config_change: bool = False,
    generated_at_ago: timedelta = timedelta(hours=1),
    config_sha256: str | None = SHA,
    api_base_url: str | None = API,
) -> Review:
    plan = ReviewedPlan(
        source="plan.json",
        generated_at=NOW - generated_at_ago,
        config_sha256=config_sha256,
        api_base_url=api_base_url,
        deletions=tuple(d if isinstance(d, Reviewed) else reviewed(d) for d in deleted),
    )
    return Review(plan, max_age=DAY, force=force, ignore_config_change=ignore_config_change)


def apply(
    given: Listing,
    policies: Sequence[Policy],
    the_review: Review,
    *,
    cap: int | None = None,
    scope: Scope | None = None,
    two_phase: TwoPhase | None = None,
) -> tuple[Plan, ReviewOutcome]:
    plan = build_plan(
        given,
        policies,
        now=NOW,
        generated_at=NOW,
        zone=None,
        max_deletions_per_run=cap,
        dry_run=False,
        revise=the_review.revise,
        scope=scope,
        two_phase=two_phase,
    )
    return plan, the_review.outcome(given, plan)


def deleted_ids(plan: Plan) -> list[int]:
    return sorted(d.backup.id for d in plan.deletions)


def reasons_of(plan: Plan, backup_id: int) -> list[str]:
    [decision] = [d for d in plan.decisions if d.backup.id == backup_id]
    return texts(decision.reasons)


# --- what apply deletes -------------------------------------------------------------------------


def test_apply_deletes_exactly_the_reviewed_deletions() -> None:
    backups = daily(10)  # keep_last 3 deletes ids 4 to 10

    plan, outcome = apply(listing(backups), [KEEP_3], review(backups[4], backups[6]))

    assert deleted_ids(plan) == [5, 7]
    assert reasons_of(plan, 5) == ["not_selected"]
    assert reasons_of(plan, 4) == ["unreviewed"]  # the policy deletes it; the plan did not
    assert reasons_of(plan, 1) == ["keep_last:1"]
    assert (outcome.reviewed, outcome.deleting, outcome.skipped, outcome.refused) == (
        2,
        2,
        (),
        False,
    )
    assert plan.problems == ()


def test_apply_skips_a_backup_that_vanished_since_the_plan() -> None:
    backups = daily(10)
    gone = backup(99, created_at=NOW - timedelta(days=30))

    plan, outcome = apply(listing(backups), [KEEP_3], review(backups[5], gone))

    assert deleted_ids(plan) == [6]
    [skipped] = outcome.skipped
    assert (skipped.backup.id, skipped.kind) == (99, "vanished")
    assert not outcome.refused
    [problem] = outcome.problems
    assert (problem.level, problem.backup_id, problem.server_id) == ("warning", 99, 2478)
    assert "backups id 99" in problem.message
    assert "no longer listed" in problem.message


@pytest.mark.parametrize(
    ("field", "value", "shown"),
    [
        ("size", 40, "size 50 → 40"),
        ("name", "other.qcow2.gz", "name '6_backup.qcow2.gz' → 'other.qcow2.gz'"),
        ("server_id", 7, "server_id 2478 → 7"),
        ("created_at", NOW - timedelta(days=3), "created_at"),
    ],
)
def test_apply_skips_a_backup_that_changed_since_the_plan(
    field: str, value: Any, shown: str
) -> None:
    backups = daily(10)
    now_listed = replace(backups[5], **{field: value})
    given = listing([*backups[:5], now_listed, *backups[6:]])

    plan, outcome = apply(given, [KEEP_3], review(backups[5], backups[6]))

    assert 6 not in deleted_ids(plan)
    [skipped] = outcome.skipped
    assert (skipped.backup.id, skipped.kind) == (6, "changed")
    assert shown in skipped.why
    assert not outcome.refused


def test_apply_compares_created_at_as_instants() -> None:
    backups = daily(10)
    sofia = backups[5].created_at.astimezone(timezone(timedelta(hours=2)))
    as_planned = replace(reviewed(backups[5]), created_at=sofia)

    plan, outcome = apply(listing(backups), [KEEP_3], review(as_planned))

    assert deleted_ids(plan) == [6]
    assert outcome.skipped == ()


# --- what apply refuses -------------------------------------------------------------------------


def test_apply_refuses_a_plan_that_deletes_what_the_current_policy_keeps() -> None:
    backups = daily(10)

    plan, outcome = apply(listing(backups), [KEEP_3], review(backups[1], backups[6]))

    assert outcome.refused
    assert deleted_ids(plan) == [7]  # what apply would delete, had it not refused
    [kept] = outcome.skipped
    assert (kept.backup.id, kept.kind) == (2, "kept")
    assert "keep_last:2" in kept.why
    [refusal] = outcome.refusals
    assert "plan.json" in refusal
    assert "backups id 2" in refusal
    assert "--force" in refusal


def test_apply_force_deletes_what_the_keep_rules_keep_now() -> None:
    backups = daily(10)

    plan, outcome = apply(listing(backups), [KEEP_3], review(backups[1], backups[6], force=True))

    assert not outcome.refused
    assert deleted_ids(plan) == [2, 7]
    assert reasons_of(plan, 2) == ["forced"]


def test_apply_force_never_deletes_the_min_keep_floor() -> None:
    backups = daily(5)
    floor = policy("floor", keep_last=1, min_keep=2)

    plan, outcome = apply(listing(backups), [floor], review(*backups[:3], force=True))

    assert deleted_ids(plan) == [3]
    assert {(s.backup.id, s.kind) for s in outcome.skipped} == {(1, "kept"), (2, "kept")}
    assert all("--force" in s.why for s in outcome.skipped)
    assert not outcome.refused


def test_apply_never_deletes_a_protected_backup_even_with_force() -> None:
    backups = daily(10)
    guarded = policy("default", keep_last=3, protect_ids=frozenset({7}))

    refused_plan, refused = apply(listing(backups), [guarded], review(backups[6]))
    forced_plan, forced = apply(listing(backups), [guarded], review(backups[6], force=True))

    assert refused.refused
    assert "protected" in refused.skipped[0].why
    assert not forced.refused
    assert deleted_ids(forced_plan) == deleted_ids(refused_plan) == []
    assert forced.skipped[0].kind == "kept"


def test_apply_refuses_deletions_on_a_server_that_went_stale_and_force_keeps_them() -> None:
    backups = daily(10, newest=NOW - timedelta(days=20))
    stale = policy("default", keep_last=3, stale_after="14d")

    plan, outcome = apply(listing(backups), [stale], review(backups[6]))
    forced_plan, forced = apply(listing(backups), [stale], review(backups[6], force=True))

    assert outcome.refused
    assert "stale" in outcome.skipped[0].why
    assert not forced.refused
    assert deleted_ids(plan) == deleted_ids(forced_plan) == []


@pytest.mark.parametrize(
    ("servers", "policies", "why"),
    [
        ([Server(2478, status="terminated")], [KEEP_3], "orphan"),
        ([Server(2478)], [policy("db", hostnames=["db-*"], keep_last=3)], "no policy"),
    ],
)
def test_apply_refuses_deletions_the_current_policies_no_longer_prune(
    servers: list[Server], policies: list[Policy], why: str
) -> None:
    backups = daily(10)

    plan, outcome = apply(listing(backups, servers), policies, review(backups[6]))

    assert outcome.refused
    assert why in outcome.skipped[0].why
    assert deleted_ids(plan) == []


def test_apply_refuses_deletions_of_a_resource_no_policy_prunes_now() -> None:
    snapshots = daily(5, resource="snapshots")
    backups = daily(10, first_id=10)
    given = listing(backups, resources=frozenset({"backups"}))

    _, outcome = apply(given, [KEEP_3], review(snapshots[3], backups[6]))

    assert outcome.refused
    [kept] = outcome.skipped
    assert (kept.backup.resource, kept.kind) == ("snapshots", "kept")
    assert "snapshots" in kept.why


# --- the guards judge what apply deletes ----------------------------------------------------------


def test_apply_skips_a_locked_server_without_refusing() -> None:
    backups = daily(10)

    plan, outcome = apply(
        listing(backups, [Server(2478, locked=True)]), [KEEP_3], review(backups[6])
    )

    assert deleted_ids(plan) == []
    assert not outcome.refused
    [skipped] = outcome.skipped
    assert (skipped.kind, skipped.backup.id) == ("guarded", 7)
    assert "locked" in skipped.why


def test_apply_judges_the_fraction_cap_by_what_it_deletes() -> None:
    backups = daily(10)  # keep_last 3 deletes 7 of 10: more than half
    capped = policy("default", keep_last=3, max_delete_fraction=0.5)

    few, few_outcome = apply(listing(backups), [capped], review(*backups[5:8]))
    many, many_outcome = apply(listing(backups), [capped], review(*backups[3:9]))

    assert deleted_ids(few) == [6, 7, 8]
    assert few_outcome.skipped == ()
    assert deleted_ids(many) == []
    assert many.groups[0].guard == "max_delete_fraction"
    assert many.groups[0].blocked_deletions == 6
    assert {s.kind for s in many_outcome.skipped} == {"guarded"}
    assert not many_outcome.refused


def test_apply_judges_the_run_cap_by_what_it_deletes() -> None:
    backups = daily(10)

    within, _ = apply(listing(backups), [KEEP_3], review(*backups[5:7]), cap=2)
    over, outcome = apply(listing(backups), [KEEP_3], review(*backups[5:8]), cap=2)

    assert deleted_ids(within) == [6, 7]
    assert deleted_ids(over) == []
    assert over.groups[0].guard == "max_deletions_per_run"
    assert not outcome.refused


def test_apply_deletes_nothing_of_an_incomplete_listing() -> None:
    backups = daily(10)
    given = listing(backups, incomplete_resources=frozenset({"backups"}))

    plan, outcome = apply(given, [KEEP_3], review(backups[6], backup(99)))

    assert deleted_ids(plan) == []
    assert {(s.backup.id, s.kind) for s in outcome.skipped} == {(7, "guarded"), (99, "guarded")}
    assert not outcome.refused


# --- refusals before anything is listed ---------------------------------------------------------


def test_refusals_accept_a_fresh_plan_made_under_this_config() -> None:
    assert review().refusals(now=NOW, config_sha256=SHA, api_base_url=API) == ()


def test_refusals_refuse_a_plan_older_than_max_age_whatever_the_options() -> None:
    old = review(generated_at_ago=timedelta(hours=25), ignore_config_change=True, force=True)

    [refusal] = old.refusals(now=NOW, config_sha256=SHA, api_base_url=API)

    assert "25h" in refusal
    assert "--max-age 24h" in refusal


@pytest.mark.parametrize(
    ("planned", "current", "says"),
    [
        ({"config_sha256": "cd" * 32}, {}, "another config"),
        ({"config_sha256": None}, {}, "config_sha256"),
        ({"api_base_url": "https://other.example/v1"}, {}, "https://other.example/v1"),
        ({"api_base_url": None}, {}, "api_base_url"),
        ({}, {"config_sha256": "cd" * 32}, "another config"),
    ],
)
def test_refusals_refuse_a_plan_made_under_another_config_unless_told_to_ignore_it(
    planned: dict[str, str | None], current: dict[str, str], says: str
) -> None:
    now = {"config_sha256": SHA, "api_base_url": API, **current}

    [refusal] = review(**planned).refusals(now=NOW, **now)  # type: ignore[arg-type]
    ignored = review(**planned, ignore_config_change=True).refusals(now=NOW, **now)  # type: ignore[arg-type]

    assert says in refusal
    assert "--ignore-config-change" in refusal
    assert ignored == ()


# --- invariants ---------------------------------------------------------------------------------


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[Listing, Policy, Review]:
    count = draw(st.integers(1, 12))
    backups = [
        backup(n, created_at=NOW - timedelta(hours=draw(st.integers(0, 24 * 60))))
        for n in range(1, count + 1)
    ]
    chosen = draw(st.lists(st.sampled_from(backups), unique_by=lambda b: b.id))
    deletions: list[Backup | Reviewed] = []
    for item in chosen:
        if draw(st.booleans()):
            deletions.append(item)
        else:  # the plan saw it otherwise (or it vanished: an id nothing lists)
            changed = draw(st.sampled_from(["size", "id"]))
            seen = reviewed(item)
            deletions.append(
                replace(seen, size=1) if changed == "size" else replace(seen, id=item.id + 100)
            )
    rules = draw(
        st.fixed_dictionaries(
            {},
            optional={
                "keep_last": st.integers(0, 4),
                "keep_daily": st.integers(0, 4),
                "protect_ids": st.frozensets(st.integers(1, count), max_size=2),
            },
        )
    )
    the_policy = policy("p", min_keep=draw(st.integers(0, 2)), keep_within="1d", **rules)
    return listing(backups), the_policy, review(*deletions, force=draw(st.booleans()))


@given(scenarios())
def test_apply_never_deletes_what_the_plan_does_not_delete_as_it_saw_it(
    scenario: tuple[Listing, Policy, Review],
) -> None:
    given_listing, the_policy, the_review = scenario

    plan, outcome = apply(given_listing, [the_policy], the_review)

    as_reviewed = {(r.resource, r.id, r.size) for r in the_review.plan.deletions}
    for decision in plan.deletions:
        item = decision.backup
        assert (item.resource, item.id, item.size) in as_reviewed
        assert not decision.protected
        assert item.id not in the_policy.protect_ids
    assert outcome.deleting + len(outcome.skipped) == outcome.reviewed


@given(scenarios())
def test_apply_without_force_deletes_only_what_the_current_policy_deletes(
    scenario: tuple[Listing, Policy, Review],
) -> None:
    given_listing, the_policy, the_review = scenario
    unforced = replace(the_review, force=False)
    current = build_plan(
        given_listing,
        [the_policy],
        now=NOW,
        generated_at=NOW,
        zone=None,
        max_deletions_per_run=None,
        dry_run=False,
        allow_large_deletions=True,
    )

    plan, _ = apply(given_listing, [the_policy], unforced)

    assert {d.backup.id for d in plan.deletions} <= {d.backup.id for d in current.deletions}


@given(scenarios())
def test_apply_with_force_keeps_the_newest_min_keep(
    scenario: tuple[Listing, Policy, Review],
) -> None:
    given_listing, the_policy, the_review = scenario

    plan, _ = apply(given_listing, [the_policy], replace(the_review, force=True))

    unprotected = [d for d in plan.decisions if not d.protected]
    assert all(d.action == "keep" for d in unprotected[: the_policy.min_keep])


# --- scoped -------------------------------------------------------------------------------------


def test_a_scoped_apply_sets_aside_the_deletions_of_servers_out_of_scope_unjudged() -> None:
    ours, theirs = daily(10, server_id=1), daily(10, server_id=2, first_id=11)
    kept_there = theirs[0]  # keep_last keeps it: unscoped, the plan would be refused

    plan, outcome = apply(
        listing([*ours, *theirs]),
        [KEEP_3],
        review(ours[5], theirs[5], kept_there),
        scope=Scope(("1",)),
    )

    assert deleted_ids(plan) == [6]
    assert (outcome.deleting, outcome.skipped, outcome.refused) == (1, (), False)
    assert [r.id for r in outcome.out_of_scope] == [16, 11]
    assert plan.problems == ()


def test_a_scoped_apply_tells_a_vanished_backup_in_scope_from_one_out_of_scope() -> None:
    ours = daily(10, server_id=1)
    gone_here = backup(98, server_id=1, created_at=NOW - timedelta(days=30))
    gone_there = backup(99, server_id=2, created_at=NOW - timedelta(days=30))
    gone_with_its_group = backup(97, server_id=3, created_at=NOW - timedelta(days=30))

    _, outcome = apply(
        listing(ours),
        [KEEP_3],
        review(gone_here, gone_there, gone_with_its_group),
        scope=Scope(("1", "3")),
    )

    assert [(s.backup.id, s.kind) for s in outcome.skipped] == [(98, "vanished"), (97, "vanished")]
    assert [r.id for r in outcome.out_of_scope] == [99]


# --- two-phase deletion -------------------------------------------------------------------------

HALF_DAY = timedelta(hours=12)


def confirmed(*items: Backup) -> TwoPhase:
    """Two-phase deletion where a pass a day ago first planned to delete `items`."""
    return TwoPhase(HALF_DAY, {(b.resource, b.id): NOW - timedelta(days=1) for b in items})


def test_apply_deletes_a_reviewed_deletion_two_phase_deletion_confirmed() -> None:
    backups = daily(10)

    plan, outcome = apply(
        listing(backups), [KEEP_3], review(backups[5]), two_phase=confirmed(backups[5])
    )

    assert deleted_ids(plan) == [6]
    assert not outcome.refused


def test_apply_refuses_a_reviewed_deletion_that_waits_for_its_confirmation() -> None:
    backups = daily(10)
    waiting = TwoPhase(HALF_DAY, {("backups", 7): NOW - timedelta(hours=1)})

    plan, outcome = apply(
        listing(backups), [KEEP_3], review(backups[5], backups[6]), two_phase=waiting
    )

    assert outcome.refused
    assert deleted_ids(plan) == []  # id 6 was never planned before: it waits too
    assert reasons_of(plan, 7)[0] == f"pending:{(NOW - timedelta(hours=1)).isoformat()}"
    assert {(s.backup.id, s.kind) for s in outcome.skipped} == {(6, "kept"), (7, "kept")}
    assert all("waits for its confirmation" in s.why for s in outcome.skipped)
    [refusal] = outcome.refusals
    assert "safety.confirm_after" in refusal


def test_apply_force_never_deletes_a_deletion_that_waits_for_its_confirmation() -> None:
    backups = daily(10)

    plan, outcome = apply(
        listing(backups),
        [KEEP_3],
        review(backups[5], backups[6], force=True),
        two_phase=confirmed(backups[5]),
    )

    assert not outcome.refused
    assert deleted_ids(plan) == [6]
    [kept] = outcome.skipped
    assert (kept.backup.id, kept.kind) == (7, "kept")
    assert "kept although --force" in kept.why
    assert "waits for its confirmation" in kept.why


def test_apply_force_deletes_what_the_keep_rules_keep_without_waiting() -> None:
    backups = daily(10)  # no pass ever plans what the rules keep, so none could confirm it

    plan, outcome = apply(
        listing(backups), [KEEP_3], review(backups[1], force=True), two_phase=confirmed()
    )

    assert deleted_ids(plan) == [2]
    assert reasons_of(plan, 2) == ["forced"]
    assert not outcome.refused
