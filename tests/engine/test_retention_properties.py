"""Properties of the retention engine over generated groups and policies
(docs/retention.md).

The strongest one compares the engine with a literal transcription of restic 0.19.1's
`ApplyPolicy` loop (plus pruner's protection, limits and floor), written for clarity, not speed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from fnmatch import fnmatchcase
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from pruner.engine.models import COUNT_RULES, WITHIN_RULES, Backup, Decision, Policy
from pruner.engine.reasons import KEEP_ALL, texts
from pruner.engine.retention import decide
from pruner.engine.units import Duration, parse_duration, parse_size, subtract

SOFIA = ZoneInfo("Europe/Sofia")
ZONES: list[tzinfo | None] = [None, ZoneInfo("UTC"), SOFIA, ZoneInfo("America/New_York")]
OFFSETS: list[tzinfo] = [
    UTC,
    timezone(timedelta(hours=2)),
    timezone(timedelta(hours=3)),
    timezone(timedelta(hours=-5)),
    timezone(timedelta(hours=5, minutes=30)),
    SOFIA,  # a ZoneInfo-aware created_at, as a caller might build one
]
# Around year ends (ISO week 53), month ends and Sofia's clock changes.
BASES = [
    datetime(2020, 12, 24, 22, 30, tzinfo=UTC),
    datetime(2014, 12, 27, 12, 0, tzinfo=UTC),
    datetime(2026, 3, 28, 21, 0, tzinfo=UTC),
    datetime(2026, 10, 24, 22, 0, tzinfo=UTC),
    datetime(2026, 10, 25, 0, 0, tzinfo=UTC),  # with 17 min steps: both passes of 03:xx
    datetime(2024, 2, 27, 23, 45, tzinfo=UTC),
]
STEPS = [
    timedelta(minutes=17),
    timedelta(hours=3),
    timedelta(hours=31),
    timedelta(days=9),
    timedelta(days=40),
]
SIZES = [None, 0, 20, 40, 80, 160]  # GB of disk: sums often meet a limit exactly
NAMES = ["a_daily.qcow2.gz", "b_pre-upgrade.qcow2.gz", "c_PRE-UPGRADE", "x1", None]
GLOBS = ["*pre-upgrade*", "x?", "*.gz"]
DURATIONS = ["30min", "5h", "1d", "3d", "2w", "1mo", "1y", "1y6mo", "9999y"]
LIMIT_REASONS = ("not_selected", "max_age", "max_total_size")
REASON_ORDER = ("keep_all", *COUNT_RULES, *WITHIN_RULES, "min_keep")


class Scenario(NamedTuple):
    backups: list[Backup]
    policy: Policy
    now: datetime
    zone: tzinfo | None

    def decide(self, policy: Policy | None = None) -> tuple[Decision, ...]:
        return decide(self.backups, policy or self.policy, self.now, self.zone)


# Strategies built once: building them inside a composite on every draw is slow.
_COUNTS = st.one_of(st.none(), st.integers(-1, 6))
_DURATION_KINDS = st.sampled_from(["none", "text", "steps"])
_AGE_KINDS = st.sampled_from(["none", "text", "steps", "on_a_backup"])
_DETAILS = st.tuples(st.sampled_from(OFFSETS), st.sampled_from(NAMES), st.sampled_from(SIZES))
_GLOB_LISTS = st.lists(st.sampled_from(GLOBS), max_size=2, unique=True)
_LIMITS = st.one_of(st.none(), st.integers(0, 40).map(lambda n: parse_size(n * 20)))


@st.composite
def scenarios(
    draw: st.DrawFn, *, rules: bool = True, limits: bool = True, protect: bool = True
) -> Scenario:
    """A server's backups on one time scale (so buckets collide), a policy, `now` and a zone.

    Durations are often whole multiples of the scale, so window and age boundaries are hit exactly.
    """
    base, step = draw(st.sampled_from(BASES)), draw(st.sampled_from(STEPS))
    positions = draw(st.lists(st.integers(-3, 30), max_size=24))
    ids = draw(
        st.lists(st.integers(1, 999), min_size=len(positions), max_size=len(positions), unique=True)
    )
    backups = []
    for id, position in zip(ids, positions, strict=True):
        offset, name, size = draw(_DETAILS)
        created_at = (base + step * position).astimezone(offset)
        backups.append(Backup("backups", id, 2478, created_at, name=name, size=size))
    now_position = draw(st.integers(-5, 35))
    now = (base + step * now_position).astimezone(draw(st.sampled_from(OFFSETS)))

    def duration(kinds: st.SearchStrategy[str]) -> Duration | None:
        kind = draw(kinds)
        if kind == "none":
            return None
        if kind == "text":
            return parse_duration(draw(st.sampled_from(DURATIONS)))
        if kind == "steps":  # counted from the newest backup, it may end on an older one
            count = draw(st.integers(1, 8))
        else:  # counted from now, it ends on a backup
            count = (
                now_position - positions[draw(st.integers(0, len(positions) - 1))]
                if positions
                else 1
            )
        return parse_duration(f"{int((step * max(count, 1)).total_seconds())}s")

    fields: dict[str, Any] = {}
    if rules:
        fields.update({rule: draw(_COUNTS) for rule in COUNT_RULES})
        fields.update({rule: duration(_DURATION_KINDS) for rule in WITHIN_RULES})
    if limits:
        fields["max_age"] = duration(_AGE_KINDS)
        fields["max_total_size"] = draw(_LIMITS)  # sizes are multiples of 20: sums meet it exactly
    if protect and ids:
        fields["protect_ids"] = frozenset(draw(st.lists(st.sampled_from(ids), max_size=3)))
        fields["protect_names"] = tuple(draw(_GLOB_LISTS))
    policy = Policy(name="generated", min_keep=draw(st.integers(0, 3)), **fields)
    return Scenario(backups, policy, now, draw(st.sampled_from(ZONES)))


def _protected(backup: Backup, policy: Policy) -> bool:
    name = backup.name
    globs = policy.protect_names
    return backup.id in policy.protect_ids or (
        name is not None and any(fnmatchcase(name, g) for g in globs)
    )


def _utc(moment: datetime) -> datetime:
    # Two datetimes sharing one ZoneInfo compare on the wall clock, ignoring the fold.
    return moment.astimezone(UTC)


def _newest_first(backups: Sequence[Backup]) -> list[Backup]:
    return sorted(backups, key=lambda b: (_utc(b.created_at), b.id), reverse=True)


def _bucket(rule: str, wall: datetime) -> tuple[object, str]:
    """restic's bucket value for one rule, and its label (docs/reasons.md)."""
    period = rule.rsplit("_", 1)[-1]
    if period == "hourly":
        return (wall.year, wall.month, wall.day, wall.hour), wall.strftime("%Y-%m-%dT%H")
    if period == "daily":
        return (wall.year, wall.month, wall.day), wall.strftime("%Y-%m-%d")
    if period == "weekly":
        year, week, _ = wall.isocalendar()
        return (year, week), f"{year}-W{week:02d}"
    if period == "monthly":
        return (wall.year, wall.month), wall.strftime("%Y-%m")
    return wall.year, str(wall.year)


class _Restic:
    """restic's ApplyPolicy loop: per backup, newest first, every rule with its own state."""

    def __init__(self, walk: list[Backup], policy: Policy, now: datetime, zone: tzinfo | None):
        self.walk, self.policy, self.zone = walk, policy, zone
        self.latest = next((b.created_at for b in walk if _utc(b.created_at) < _utc(now)), None)
        self.budget = {rule: getattr(policy, rule) for rule in COUNT_RULES}
        self.last: dict[str, object] = {}

    def reasons(self) -> dict[int, list[str]]:
        reasons: dict[int, list[str]] = {}
        for nr, backup in enumerate(self.walk):
            wall = (
                backup.created_at if self.zone is None else backup.created_at.astimezone(self.zone)
            )
            kept = [*self._counted(nr, wall), *self._within(nr, backup, wall)]
            if not _has_keep_rule(self.policy):
                kept.append("keep_all")
            if kept:
                reasons[backup.id] = kept
        return reasons

    def _counted(self, nr: int, wall: datetime) -> list[str]:
        kept = []
        for rule in COUNT_RULES:
            count = self.budget[rule]
            if count is None or not (count > 0 or count == -1):
                continue
            value, label = (nr, str(nr + 1)) if rule == "keep_last" else _bucket(rule, wall)
            if kept_as := self._bucket_kept(rule, nr, value, label):
                kept.append(kept_as)
                if count > 0:
                    self.budget[rule] = count - 1
        return kept

    def _within(self, nr: int, backup: Backup, wall: datetime) -> list[str]:
        kept = []
        for rule in WITHIN_RULES:
            within = getattr(self.policy, rule)
            if within is None:
                continue
            start = None if self.latest is None else subtract(self.latest, within, self.zone)
            if start is not None and not _utc(backup.created_at) > start:
                continue
            if rule == "keep_within":
                kept.append(f"keep_within:{within.text}")
            elif kept_as := self._bucket_kept(rule, nr, *_bucket(rule, wall)):
                kept.append(kept_as)
        return kept

    def _bucket_kept(self, rule: str, nr: int, value: object, label: str) -> str | None:
        """restic: `if val != b.Last || nr == len(list)-1 { keep; b.Last = val }`."""
        if value != self.last.get(rule):
            self.last[rule] = value
            return f"{rule}:{label}"
        if nr == len(self.walk) - 1:
            return f"{rule}:{label}:oldest"
        return None


def _limited(
    walk: list[Backup],
    reasons: dict[int, list[str]],
    policy: Policy,
    now: datetime,
    zone: tzinfo | None,
) -> dict[int, str]:
    """The limits: the selected backups each limit removes, with its reason."""
    removed: dict[int, str] = {}
    cutoff = None if policy.max_age is None else subtract(now, policy.max_age, zone)
    for backup in walk:
        if backup.id in reasons and cutoff is not None and _utc(backup.created_at) < cutoff:
            removed[backup.id] = f"max_age:{policy.max_age.text}"  # type: ignore[union-attr]
    if policy.max_total_size is not None:
        total, over = 0, False
        for backup in walk:
            if backup.id in reasons and backup.id not in removed:
                total += backup.size or 0
                over = over or total > policy.max_total_size.gigabytes
                if over:
                    removed[backup.id] = f"max_total_size:{policy.max_total_size.text}"
    return removed


def restic(
    backups: Sequence[Backup], policy: Policy, now: datetime, zone: tzinfo | None
) -> list[tuple[Backup, str, tuple[str, ...]]]:
    """restic's ApplyPolicy loop, then pruner's limits and floor, one backup at a time."""
    ordered = _newest_first(backups)
    walk = [b for b in ordered if not _protected(b, policy)]
    reasons = _Restic(walk, policy, now, zone).reasons()
    removed = _limited(walk, reasons, policy, now, zone)
    floor = {b.id for b in walk[: policy.min_keep]}
    decisions = []
    for backup in ordered:
        selected, limit = reasons.get(backup.id, []), removed.get(backup.id)
        if _protected(backup, policy):
            decisions.append((backup, "keep", _protection(backup, policy)))
        elif backup.id in floor and (not selected or limit):
            decisions.append((backup, "keep", (*selected, f"min_keep:{policy.min_keep}")))
        elif limit:
            decisions.append((backup, "delete", (limit,)))
        elif selected:
            decisions.append((backup, "keep", tuple(selected)))
        else:
            decisions.append((backup, "delete", ("not_selected",)))
    return decisions


def _has_keep_rule(policy: Policy) -> bool:
    return any(getattr(policy, rule) is not None for rule in COUNT_RULES + WITHIN_RULES)


def _protection(backup: Backup, policy: Policy) -> tuple[str, ...]:
    name = backup.name
    by_id = ["protected:id"] if backup.id in policy.protect_ids else []
    if name is None:
        return tuple(by_id)
    return (*by_id, *(f"protected:{g}" for g in policy.protect_names if fnmatchcase(name, g)))


@settings(max_examples=400)  # the strongest check: worth more examples than the profile's
@given(scenarios())
def test_decide_matches_restic_loop_with_limits_and_floor(case: Scenario) -> None:
    decided = [(d.backup, d.action, tuple(texts(d.reasons))) for d in case.decide()]
    assert decided == restic(case.backups, case.policy, case.now, case.zone)


@given(scenarios(), st.randoms(use_true_random=False))
def test_decide_is_deterministic_and_independent_of_input_order(case: Scenario, rng: Any) -> None:
    shuffled = list(case.backups)
    rng.shuffle(shuffled)

    assert decide(shuffled, case.policy, case.now, case.zone) == case.decide()


@given(scenarios())
def test_decide_gives_one_decision_per_backup_newest_first(case: Scenario) -> None:
    decisions = case.decide()

    assert [d.backup for d in decisions] == _newest_first(case.backups)


@given(scenarios())
def test_decide_never_deletes_protected_or_the_floor(case: Scenario) -> None:
    policy = case.policy
    unprotected = [b for b in _newest_first(case.backups) if not _protected(b, policy)]
    must_keep = {b.id for b in unprotected[: policy.min_keep]}
    must_keep |= {b.id for b in case.backups if _protected(b, policy)}

    decisions = case.decide()

    assert {d.backup.id for d in decisions if d.action == "keep"} >= must_keep


@given(scenarios())
def test_decide_gives_reasons_of_the_right_shape(case: Scenario) -> None:
    for decision in case.decide():
        rules = [reason.rule for reason in decision.reasons]
        if decision.action == "delete":
            assert len(rules) == 1
            assert rules[0] in LIMIT_REASONS
        elif rules[0] == "protected":
            assert set(rules) == {"protected"}
        else:
            order = [REASON_ORDER.index(rule) for rule in rules]
            assert order == sorted(order)


@given(scenarios(rules=False, limits=False))
def test_decide_without_keep_rules_or_limits_deletes_nothing(case: Scenario) -> None:
    decisions = case.decide()

    assert all(d.action == "keep" for d in decisions)
    assert all(d.reasons == (KEEP_ALL,) for d in decisions if not _protected(d.backup, case.policy))


@given(scenarios())
def test_decide_on_its_own_kept_backups_deletes_nothing_more(case: Scenario) -> None:
    kept = [d.backup for d in case.decide() if d.action == "keep"]

    again = decide(kept, case.policy, case.now, case.zone)

    assert [d.backup.id for d in again if d.action == "delete"] == []


@given(scenarios(limits=False), st.sampled_from([*COUNT_RULES, *WITHIN_RULES]))
def test_decide_keeps_more_with_a_larger_rule_when_nothing_limits(
    case: Scenario, rule: str
) -> None:
    current = getattr(case.policy, rule)
    larger: Any
    if rule in COUNT_RULES:
        larger = -1 if current is None or current == -1 else current + 1
    else:
        longer = (
            Duration(current.months, current.seconds + 1, f"{current.text}+1s") if current else None
        )
        larger = longer or parse_duration("9999y")
    bigger = dataclasses.replace(case.policy, **{rule: larger})

    def kept(policy: Policy) -> set[int]:
        return {d.backup.id for d in case.decide(policy) if d.action == "keep"}

    if _has_keep_rule(case.policy):  # adding the first rule turns keep_all off
        assert kept(bigger) >= kept(case.policy)
