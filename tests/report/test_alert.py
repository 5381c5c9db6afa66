"""The alert paragraph: built from a pass's values, most serious first, limited in length."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from pruner.engine.models import Decision, Group, Plan
from pruner.engine.reasons import NOT_SELECTED, PROTECTED, Reason, skipped
from pruner.engine.results import DeleteOutcome, Execution, PassResult
from pruner.report.alert import Alert, alert_of
from tests._factories import NOW, backup, daily

KEEP = (Reason("keep_last", "1"),)


def _group(server_id: int, hostname: str | None, **fields: Any) -> Group:
    backups = daily(4, server_id, first_id=server_id * 100, hostname=hostname)
    decisions = tuple(Decision(b, "keep", KEEP) for b in backups)
    fields.setdefault("status", "ok")
    return Group("backups", server_id, hostname, "default", decisions=decisions, **fields)


def _skipped(server_id: int, hostname: str | None, guard: Any, blocked: int) -> Group:
    group = _group(server_id, hostname, status="skipped", guard=guard, blocked_deletions=blocked)
    kept = group.decisions[:-blocked] if blocked else group.decisions
    held = tuple(Decision(d.backup, "keep", (skipped(guard),)) for d in group.decisions[-blocked:])
    return Group(
        "backups",
        server_id,
        hostname,
        "default",
        "skipped",
        kept + (held if blocked else ()),
        guard=guard,
        blocked_deletions=blocked,
    )


def _stale(server_id: int, hostname: str, days: int) -> Group:
    old = backup(server_id * 100, server_id, NOW - timedelta(days=days, hours=2))
    decisions = (Decision(old, "keep", (skipped("stale"),)),)
    return Group("backups", server_id, hostname, "default", "skipped", decisions, guard="stale")


def _result(*groups: Group, exit_code: int = 0, **fields: Any) -> PassResult:
    plan = Plan(NOW, NOW, fields.pop("dry_run", False), groups)
    return PassResult(
        run_id="01run",
        plan=plan,
        outcomes=(),
        exit_code=exit_code,
        interrupted=False,
        duration=1.0,
        dry_run=plan.dry_run,
        **fields,
    )


def _alert(result: PassResult, **options: Any) -> Alert:
    alert = alert_of(result, host="backup-01", **options)
    assert alert is not None
    return alert


def test_alert_of_a_tripped_run_cap_says_which_cap_the_numbers_and_what_to_do() -> None:
    result = _result(
        _skipped(7, "db-1", "max_deletions_per_run", 3),
        _skipped(9, None, "max_deletions_per_run", 2),
        _stale(12, "web-1", 19),
        exit_code=3,
    )

    alert = _alert(result, max_deletions_per_run=4)

    assert alert.level == "fail"
    assert alert.paragraph == (
        "pruner on backup-01: pass 01run deleted 0 of 9 backups (9 kept) (exit 3): the run cap "
        "safety.max_deletions_per_run (4) would have been exceeded (5 deletions planned across 2 "
        "servers), so none was made. Run `pruner run --allow-large-deletions` once if this is "
        "intended, or raise safety.max_deletions_per_run. Also: server 12 (web-1) backups: no "
        "new backup for 19 days (stale), so none of its backups is deleted; check that they are "
        "still made."
    )


def test_alert_of_a_fraction_cap_names_each_server_with_its_share() -> None:
    protected = backup(1, 7, NOW, hostname="db-1")
    group = _skipped(7, "db-1", "max_delete_fraction", 3)
    group = Group(
        "backups",
        7,
        "db-1",
        "default",
        "skipped",
        (Decision(protected, "keep", (Reason(PROTECTED, "id"),)), *group.decisions),
        guard="max_delete_fraction",
        blocked_deletions=3,
    )

    alert = _alert(_result(group, exit_code=3, dry_run=True))

    assert alert.paragraph.startswith(
        "pruner on backup-01: pass 01run (dry run) would delete 0 of 5 backups (5 kept) (exit 3): "
        "the cap "
        "max_delete_fraction kept these from losing too many at once, so they were not pruned: "
        "server 7 (db-1) backups (3 of 4, 75%). Run `pruner run --allow-large-deletions` once "
        "if this is intended, or raise max_delete_fraction (in the policy or under safety)."
    )


def test_alert_of_failed_deletions_names_them_and_their_servers() -> None:
    keep, doomed = daily(2, 7, hostname="db-1")
    group = Group(
        "backups",
        7,
        "db-1",
        "default",
        "failed",
        (Decision(keep, "keep", KEEP), Decision(doomed, "delete", (NOT_SELECTED,))),
    )
    plan = Plan(NOW, NOW, False, (group,))
    outcome = DeleteOutcome("backups", doomed.id, "failed", 500, "HTTP 500: Server Error")
    execution = Execution(plan, (outcome,), (), None, False, {("backups", doomed.id): "failed"})
    result = _result(
        group,
        exit_code=1,
        executed=True,
        execution=execution,
        failures=("1 deletion(s) failed (see the failed groups)",),
    )

    alert = _alert(result)

    assert alert.level == "fail"
    assert alert.paragraph == (
        "pruner on backup-01: pass 01run deleted 0 of 2 backups (1 kept, 1 left: 1 failed) "
        "(exit 1): 1 deletion(s) failed (see the "
        f"failed groups). Also: deletions that failed: backup {doomed.id} on server 7 (db-1) "
        "(HTTP 500); the backups are still there and the next pass tries again."
    )


def test_alert_of_a_refused_key_says_the_pass_failed_and_why() -> None:
    why = "the API token was rejected (HTTP 401): check the token in $VPSBG_API_TOKEN"

    alert = _alert(_result(exit_code=1, failures=(why,), key_refused=True))

    assert alert.paragraph == f"pruner on backup-01: pass 01run failed (exit 1): {why}."


def test_alert_of_a_good_pass_with_a_stale_server_is_a_warning() -> None:
    alert = _alert(_result(_group(3, "ok-1"), _stale(12, "web-1", 19)))

    assert alert.level == "warning"
    assert alert.paragraph.startswith(
        "pruner on backup-01: pass 01run deleted 0 of 5 backups (5 kept) (exit 0): "
        "server 12 (web-1) backups: "
        "no new backup for 19 days (stale)"
    )


@pytest.mark.parametrize("blocked", [0, 2])
def test_alert_of_a_locked_server_only_when_it_held_deletions_back(blocked: int) -> None:
    alert = alert_of(_result(_skipped(4, "db-2", "locked", blocked)), host="h")

    if blocked:
        assert alert is not None
        assert alert.level == "warning"
        assert alert.paragraph.endswith(
            "servers locked by an operation on VPSBG's side keep their deletions for the next "
            "pass: server 4 (db-2) backups (2 deletions)."
        )
    else:
        assert alert is None


def test_alert_of_a_quiet_pass_is_none() -> None:
    assert alert_of(_result(_group(3, "ok-1")), host="h") is None


def test_alert_of_many_stale_servers_names_a_few_and_counts_the_rest() -> None:
    result = _result(*(_stale(server_id, f"web-{server_id}", 20) for server_id in range(1, 41)))

    paragraph = _alert(result).paragraph

    assert paragraph.endswith(
        "40 servers are stale (nothing new for too long), so none of theirs is deleted; check "
        "that backups are still made: server 1 (web-1) backups (20 days), server 2 (web-2) "
        "backups (20 days), server 3 (web-3) backups (20 days) and 37 more."
    )


def test_alert_of_many_problems_stays_within_its_limit_and_says_how_many_more() -> None:
    failures = tuple(f"failure number {n} of the pass, worded at some length" for n in range(30))
    result = _result(_stale(12, "web-1", 19), exit_code=1, failures=failures)

    paragraph = _alert(result, limit=600).paragraph

    assert len(paragraph) <= 600
    shown = paragraph.count("worded at some length")
    assert 1 < shown < 30
    assert paragraph.endswith(f" And {31 - shown} more in the log.")  # the stale one too
    assert "\n" not in paragraph


def test_alert_of_one_long_item_is_cut_to_the_limit() -> None:
    result = _result(exit_code=1, failures=("x" * 2000,), key_refused=True)

    paragraph = _alert(result, limit=300).paragraph

    assert len(paragraph) == 300
    assert paragraph.endswith("x…")
