from __future__ import annotations

from datetime import timedelta

import pytest

from pruner.engine.models import Decision
from pruner.engine.planner import newest_unprotected_before
from pruner.engine.reasons import (
    KEEP_ALL,
    NOT_SELECTED,
    ORPHAN,
    PROTECTED,
    SKIPPED_INCOMPLETE,
    UNMANAGED,
    Reason,
    skipped,
    texts,
)
from tests._factories import NOW, daily


@pytest.mark.parametrize(
    ("reason", "text"),
    [
        (KEEP_ALL, "keep_all"),
        (NOT_SELECTED, "not_selected"),
        (UNMANAGED, "unmanaged"),
        (ORPHAN, "orphan"),
        (SKIPPED_INCOMPLETE, "skipped:incomplete"),
        (skipped("max_delete_fraction"), "skipped:max_delete_fraction"),
        (Reason("keep_last", "3"), "keep_last:3"),
        (Reason("keep_hourly", "2026-11-26T14"), "keep_hourly:2026-11-26T14"),
        (Reason("keep_weekly", "2026-W48"), "keep_weekly:2026-W48"),
        (Reason("keep_yearly", "2014", oldest=True), "keep_yearly:2014:oldest"),
        (Reason("keep_within", "2d"), "keep_within:2d"),
        (Reason(PROTECTED, "id"), "protected:id"),
        (Reason(PROTECTED, "*pre-upgrade*"), "protected:*pre-upgrade*"),
        (Reason("min_keep", "1"), "min_keep:1"),
        (Reason("max_age", "400d"), "max_age:400d"),
    ],
)
def test_str_of_a_reason_is_its_documented_text(reason: Reason, text: str) -> None:
    assert str(reason) == text
    assert texts([reason, reason]) == [text, text]


def test_a_reason_is_a_value() -> None:
    assert Reason("keep_daily", "2026-11-26") == Reason("keep_daily", "2026-11-26")
    assert Reason("keep_daily", "2026-11-26") != Reason("keep_daily", "2026-11-26", oldest=True)
    assert len({NOT_SELECTED, Reason("not_selected"), KEEP_ALL}) == 2


def test_a_decision_is_protected_by_its_first_reason_alone() -> None:
    [backup] = daily(1)
    assert Decision(backup, "keep", (Reason(PROTECTED, "id"),)).protected
    assert not Decision(backup, "keep", (Reason("keep_last", "1"),)).protected
    assert not Decision(backup, "keep", (Reason("protected_x"),)).protected


def test_newest_unprotected_before_skips_protected_and_later_backups() -> None:
    later, protected, newest, older = daily(4, newest=NOW + timedelta(hours=12))
    decisions = [
        Decision(later, "keep", (Reason("keep_last", "1"),)),
        Decision(protected, "keep", (Reason(PROTECTED, "id"),)),
        Decision(newest, "keep", (Reason("keep_last", "2"),)),
        Decision(older, "delete", (NOT_SELECTED,)),
    ]
    assert newest_unprotected_before(decisions, NOW) == newest
    assert newest_unprotected_before(decisions[3:], NOW) == older
    assert newest_unprotected_before(decisions[:2], NOW) is None
