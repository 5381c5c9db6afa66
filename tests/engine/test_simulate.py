"""The backtest: a policy applied day after day to a server's backups, those listed and those its
cadence will make. Bands and fill days are worked out by hand, against the calendar."""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pruner.engine.models import Backup, Plan, Policy, Server
from pruner.engine.planner import build_plan
from pruner.engine.simulate import Backtest, Life, cadence_of, simulate
from tests._factories import backup, listing, policy

# A Monday. Backups are made at 01:00 UTC, so every tick (03:30) sees that day's backup.
NOW = datetime(2026, 1, 5, 3, 30, tzinfo=UTC)
HOUR, DAY, WEEK = timedelta(hours=1), timedelta(days=1), timedelta(days=7)


def every(step: timedelta, count: int, *, newest: datetime, server_id: int = 2478) -> list[Backup]:
    """`count` backups `step` apart, the newest at `newest`; ids grow with time."""
    return [
        backup(count - n, server_id, newest - n * step, hostname=f"host-{server_id}")
        for n in range(count)
    ]


def plan_of(
    backups: Sequence[Backup], *policies: Policy, servers: list[Server] | None = None
) -> Plan:
    return build_plan(
        listing(backups, servers),
        policies,
        now=NOW,
        generated_at=NOW,
        zone=None,
        max_deletions_per_run=None,
        dry_run=True,
    )


def backtest(
    backups: Sequence[Backup],
    given_policy: Policy,
    *,
    days: int = 365,
    cadence: timedelta | None = None,
) -> Backtest:
    [only] = simulate(
        plan_of(backups, given_policy), [given_policy], days=days, cadence=cadence
    ).backtests
    return only


def kept(run: Backtest) -> list[int]:
    return [tick.kept for tick in run.timeline]


# --- the three servers of the issue -------------------------------------------------------------


def test_a_daily_server_under_daily_weekly_monthly_settles_into_13_to_15() -> None:
    # 30 days of history, Sun 2025-12-07 to Mon 2026-01-05. Once the monthly buckets are full, a
    # tick on day t (weekday w, Monday = 0; day of month m) keeps:
    #   daily 7:   t-6 … t
    #   weekly 4:  this week's newest is t (daily); last week's is its Sunday t-(w+1), daily too
    #              unless t is a Sunday; then two more Sundays (Mon to Sat: +2), or three (Sun: +3)
    #   monthly 6: this month's newest is t (daily); the last day of the five months before: +5,
    #              or +4 when m <= 6 (last month's end t-m is among the daily ones)
    # Last month's end can also be one of the weekly Sundays (-1); no other overlap: the weekly
    # ones reach back 21 days at most, the month ends before it 28 days at least.
    # Fewest: 13, on a weekday with m <= 6 (Mon 2026-08-03: 7 + 2 + 4), or when last month's end
    # is one of the weekly Sundays (7 + 2 + 5 - 1). Most: 15, on a Sunday with m >= 7 and no
    # overlap (Sun 2026-07-12: 7 + 3 + 5). Both occur in the later half (days 183 to 365).
    history = every(DAY, 30, newest=NOW - timedelta(hours=2, minutes=30))
    rules = policy(keep_daily=7, keep_weekly=4, keep_monthly=6)

    run = backtest(history, rules)

    assert run.settled == (13, 15)
    assert run.cadence == DAY
    by_day = {tick.at.date().isoformat(): tick.kept for tick in run.timeline}
    assert by_day["2026-08-03"] == 13
    assert by_day["2026-07-12"] == 15
    assert by_day["2026-07-13"] == 14  # a Monday, m = 13: 7 + 2 + 5
    # Daily and weekly are full from the start; the sixth monthly bucket (Dec, Jan … May) opens
    # on 2026-05-01, day 116.
    assert run.filled == (("keep_daily", 0), ("keep_weekly", 0), ("keep_monthly", 116))


def test_a_six_hourly_server_under_hourly_rules_fills_its_24_hours_in_four_days() -> None:
    # Eight backups, 6 h apart, the newest an hour ago: each is alone in its hour, so keep_hourly
    # keeps them all until there are 24. Four more a day (at 02:30, 08:30, 14:30, 20:30 UTC):
    # 8, 12, 16, 20, 24 and then 24 for good.
    history = every(6 * HOUR, 8, newest=NOW - HOUR)

    run = backtest(history, policy(keep_hourly=24))

    assert run.cadence == 6 * HOUR
    assert kept(run)[:6] == [8, 12, 16, 20, 24, 24]
    assert run.settled == (24, 24)
    assert run.filled == (("keep_hourly", 4),)
    assert run.timeline[-1].size == 24 * 50


@pytest.mark.parametrize(("within", "band"), [("30d", 5), ("28d", 4)])
def test_a_weekly_server_under_keep_within_keeps_what_falls_in_the_window(
    within: str, band: int
) -> None:
    # keep_within D keeps what is strictly newer than the newest backup before the tick, minus D.
    # Weekly backups: the newest and those 7, 14, 21 and 28 days before it; 28 is inside 30d but
    # not strictly inside 28d. (Made at 02:30, so none is made at a tick: one made at the tick
    # would not be "before" it, and the window would reach back from the one before.)
    history = every(WEEK, 3, newest=NOW - DAY - HOUR)

    run = backtest(history, policy(keep_within=within))

    assert run.cadence == WEEK
    assert run.settled == (band, band)


# --- cadence ------------------------------------------------------------------------------------


def test_cadence_is_the_median_gap_of_the_newest_ten() -> None:
    # The newest ten make nine gaps: five of 1d, three of 2d and one of 30d; the median is 1d.
    # The 50-day gap further back is not among them.
    times = [NOW - timedelta(days=d) for d in (0, 1, 2, 3, 4, 5, 7, 9, 11, 41, 91)]
    backups = [backup(n, created_at=moment) for n, moment in enumerate(times, 1)]
    random.Random(0).shuffle(backups)

    assert cadence_of(backups) == DAY


def test_cadence_of_an_even_count_of_gaps_is_the_mean_of_the_middle_two() -> None:
    times = [NOW, NOW - DAY, NOW - 3 * DAY]  # gaps 1d and 2d

    assert cadence_of([backup(n, created_at=t) for n, t in enumerate(times, 1)]) == 36 * HOUR


def test_cadence_is_none_below_two_backups_or_at_a_zero_median() -> None:
    assert cadence_of([backup(1, created_at=NOW)]) is None
    assert cadence_of([backup(n, created_at=NOW) for n in (1, 2, 3)]) is None


def test_a_server_without_cadence_keeps_only_its_own_backups() -> None:
    run = backtest([backup(1, created_at=NOW - DAY)], policy(keep_daily=7), days=30)

    assert run.cadence is None
    assert kept(run) == [1] * 31
    assert [life.simulated for life in run.lives] == [False]


def test_the_cadence_option_overrides_the_listing_and_gives_one_to_a_lone_backup() -> None:
    run = backtest(
        [backup(1, created_at=NOW - HOUR)], policy(keep_last=100), days=2, cadence=12 * HOUR
    )

    assert run.cadence == 12 * HOUR
    assert kept(run) == [1, 3, 5]


# --- ticks and the timeline -------------------------------------------------------------------


def test_day_zero_keeps_what_a_pass_would_keep_now() -> None:
    upgrade = backup(99, created_at=NOW - 20 * DAY, name="99_pre-upgrade.qcow2.gz")
    history = [*every(DAY, 60, newest=NOW - HOUR), upgrade]
    rules = policy(
        keep_last=3,
        keep_daily=7,
        keep_weekly=4,
        protect_names=("*pre-upgrade*",),
        max_delete_fraction=1.0,
    )
    [group] = plan_of(history, rules).groups

    run = backtest(history, rules)

    # On a Monday: the 7 daily (the 3 last among them), the Sundays 8 and 15 days back, the
    # protected one.
    assert kept(run)[0] == group.kept == 7 + 2 + 1


def test_a_stale_server_resumes_after_now_and_is_not_given_a_past_it_never_had() -> None:
    history = every(DAY, 10, newest=NOW - 30 * DAY)

    run = backtest(history, policy(keep_last=100), days=3)

    simulated = [life.created_at for life in run.lives if life.simulated]
    assert simulated == [NOW - 30 * DAY + n * DAY for n in (31, 32, 33)]
    assert kept(run) == [10, 11, 12, 13]


def test_backups_dated_after_now_appear_at_their_tick() -> None:
    history = [backup(1, created_at=NOW - HOUR), backup(2, created_at=NOW + 36 * HOUR)]

    run = backtest(history, policy(keep_last=10), days=3)

    assert kept(run) == [1, 1, 2, 2]


def test_what_a_tick_deletes_is_gone_and_its_life_ends_there() -> None:
    history = every(DAY, 3, newest=NOW - HOUR)

    run = backtest(history, policy(keep_last=3), days=5)

    assert kept(run) == [3] * 6
    newest_listed = next(life for life in run.lives if life.created_at == NOW - HOUR)
    assert newest_listed.deleted_at == NOW + 3 * DAY  # three newer ones by then
    assert sum(life.deleted_at is None for life in run.lives) == 3
    assert {tick.at for tick in run.timeline} == {NOW + d * DAY for d in range(6)}


def test_settled_is_the_band_of_the_later_half_of_the_timeline() -> None:
    # Days 0..3: entries from index (3 + 1) // 2 = 2 on, so days 2 and 3 only.
    history = every(DAY, 1, newest=NOW - HOUR)

    run = backtest(history, policy(keep_last=100), days=3, cadence=DAY)

    assert kept(run) == [1, 2, 3, 4]
    assert run.settled == (3, 4)


def test_a_rule_that_never_fills_within_the_horizon_says_so() -> None:
    history = every(DAY, 5, newest=NOW - HOUR)

    run = backtest(history, policy(keep_last=2, keep_monthly=6, keep_yearly=-1), days=30)

    assert run.filled == (("keep_last", 0), ("keep_monthly", None))  # -1 never fills: not shown


def test_a_buckets_oldest_reason_does_not_count_as_a_filled_bucket() -> None:
    # Two backups of one day: one bucket. Had the oldest rule's reason counted, they would read
    # as the two buckets keep_daily 2 asks for.
    history = [backup(1, created_at=NOW - 2 * HOUR), backup(2, created_at=NOW - HOUR)]

    run = backtest(history, policy(keep_daily=2), days=0, cadence=None)

    assert kept(run) == [2]  # the newest opens today's bucket, the other is kept as the oldest
    assert run.filled == (("keep_daily", None),)


# --- the whole simulation ---------------------------------------------------------------------


def test_totals_sum_every_server_per_tick() -> None:
    backups = every(DAY, 3, newest=NOW - HOUR) + every(WEEK, 2, newest=NOW - HOUR, server_id=7)

    simulation = simulate(plan_of(backups, policy(keep_last=5)), [policy(keep_last=5)], days=14)

    assert len(simulation.totals) == 15
    for index, total in enumerate(simulation.totals):
        assert total.at == NOW + index * DAY
        assert total.kept == sum(run.timeline[index].kept for run in simulation.backtests)
        assert total.size == sum(run.timeline[index].size for run in simulation.backtests)
    assert [run.server_id for run in simulation.backtests] == [7, 2478]


def test_servers_without_a_policy_or_with_an_incomplete_group_are_not_simulated() -> None:
    backups = [
        *every(DAY, 3, newest=NOW - HOUR),
        backup(50, 7, NOW - HOUR, size=None, hostname="web-1"),
        backup(60, 8, NOW - HOUR, hostname="mail-1"),
    ]
    rules = [
        policy("web", hostnames=["web-*"], keep_last=1, max_total_size="100GB"),
        policy("hosts", hostnames=["host-*"], keep_last=1),
    ]

    simulation = simulate(plan_of(backups, *rules), rules, days=1)

    assert [run.server_id for run in simulation.backtests] == [2478]
    assert [(n.server_id, n.policy) for n in simulation.not_simulated] == [(7, "web"), (8, None)]
    assert "lacks size" in simulation.not_simulated[0].why
    assert simulation.not_simulated[1].why == "no policy matches it"


def test_snapshots_are_a_group_of_their_own() -> None:
    snapshot = backup(9, created_at=NOW - 40 * DAY, resource="snapshots")
    backups = [*every(DAY, 3, newest=NOW - HOUR), snapshot]
    rules = [policy(keep_last=2), policy("snaps", resource="snapshots", keep_last=5)]

    simulation = simulate(plan_of(backups, *rules), rules, days=2)

    assert [(run.resource, run.policy, run.cadence) for run in simulation.backtests] == [
        ("backups", "default", DAY),
        ("snapshots", "snaps", None),
    ]


def test_the_same_listing_in_any_order_gives_the_same_simulation() -> None:
    backups = every(DAY, 20, newest=NOW - HOUR) + every(6 * HOUR, 9, newest=NOW, server_id=5)
    rules = [policy(keep_daily=3, keep_weekly=2)]
    shuffled = list(reversed(backups))

    first = simulate(plan_of(backups, *rules), rules, days=20)
    second = simulate(plan_of(shuffled, *rules), rules, days=20)

    assert first == second


def test_a_negative_horizon_is_refused() -> None:
    with pytest.raises(ValueError, match="days"):
        simulate(plan_of([], policy(keep_last=1)), [policy(keep_last=1)], days=-1)


# --- invariants ---------------------------------------------------------------------------------

_STEPS = st.sampled_from([3 * HOUR, 6 * HOUR, DAY, 2 * DAY, WEEK])
_COUNTS = st.one_of(st.none(), st.integers(-1, 5))


@st.composite
def _cases(draw: st.DrawFn) -> tuple[list[Backup], Policy]:
    step = draw(_STEPS)
    count = draw(st.integers(1, 12))
    backups = every(step, count, newest=NOW - draw(st.sampled_from([HOUR, 5 * DAY])))
    protected = draw(st.sets(st.sampled_from([b.id for b in backups]), max_size=2))
    rules = policy(
        keep_last=draw(_COUNTS),
        keep_daily=draw(_COUNTS),
        keep_weekly=draw(_COUNTS),
        keep_within=draw(st.sampled_from([None, "2d", "10d"])),
        max_age=draw(st.sampled_from([None, "3d", "20d"])),
        min_keep=draw(st.integers(0, 2)),
        protect_ids=frozenset(protected),
    )
    return backups, rules


@given(_cases())
def test_protected_backups_live_to_the_horizon_and_the_floor_holds(
    case: tuple[list[Backup], Policy],
) -> None:
    backups, rules = case

    run = backtest(backups, rules, days=20)

    protected_lives = [life for life in run.lives if not life.simulated and life.deleted_at is None]
    assert len(protected_lives) >= len(rules.protect_ids)
    floor = len(rules.protect_ids) + min(rules.min_keep, len(backups) - len(rules.protect_ids))
    assert all(tick.kept >= floor for tick in run.timeline)
    low, high = run.settled
    assert low <= high
    assert {low, high} <= set(kept(run))
    for tick in run.timeline:  # the lives tell the same story as the timeline
        alive = [life for life in run.lives if _alive(life, tick.at)]
        assert len(alive) == tick.kept


def _alive(life: Life, at: datetime) -> bool:
    return life.created_at <= at and (life.deleted_at is None or life.deleted_at > at)


def test_an_empty_plan_still_has_a_total_per_tick() -> None:
    simulation = simulate(plan_of([], policy(keep_last=1)), [policy(keep_last=1)], days=2)

    assert simulation.backtests == ()
    assert [(total.at, total.kept) for total in simulation.totals] == [
        (NOW, 0),
        (NOW + DAY, 0),
        (NOW + 2 * DAY, 0),
    ]
