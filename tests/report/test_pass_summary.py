"""One wording of a pass: the log event, `pruner run`'s summary line, the ping body and the demo
all read it from PassSummary."""

from __future__ import annotations

import io
import re

from pruner.actions.run import write_pass_report
from pruner.engine.models import Decision, Group, Plan, Problem
from pruner.engine.reasons import NOT_SELECTED, SKIPPED_INCOMPLETE, Reason, skipped
from pruner.engine.results import DeleteOutcome, Execution, PassResult
from pruner.ops.notify import summary_text
from pruner.report.alert import Alert, alert_of
from pruner.report.pass_summary import PassSummary
from tests._factories import NOW, daily


def _result(*, executed: bool) -> PassResult:
    newest, older, oldest = daily(3)
    ok = Group(
        "backups",
        2478,
        "ubuntu-2gb",
        "default",
        "ok",
        (
            Decision(newest, "keep", (Reason("keep_last", "1"),)),
            Decision(older, "delete", (NOT_SELECTED,)),
        ),
    )
    capped = Group(
        "backups",
        7,
        "db-01",
        "default",
        "skipped",
        (Decision(oldest, "keep", (skipped("max_delete_fraction"),)),),
        guard="max_delete_fraction",
        blocked_deletions=1,
    )
    plan = Plan(NOW, NOW, not executed, (ok, capped))
    outcome = DeleteOutcome("backups", older.id, "deleted", 204, "deleted (HTTP 204)")
    execution = Execution(plan, (outcome,), (), None, False, {("backups", older.id): "deleted"})
    return PassResult(
        run_id="run1",
        plan=plan,
        outcomes=(outcome,) if executed else (),
        exit_code=3,
        interrupted=False,
        duration=1.25,
        dry_run=not executed,
        executed=executed,
        execution=execution if executed else None,
        failures=("one", "two"),
        listed=3,
        servers=2,
    )


def test_a_pass_is_summed_up_in_one_sentence() -> None:
    done = PassSummary.of(_result(executed=True))
    dry = PassSummary.of(_result(executed=False))

    assert done.sentence() == (
        "deleted 1 of 3 backups (2 kept); disk size of the deleted backups: 50 GB; "
        "skipped groups 1, stale servers 0 (1.2s)"
    )
    assert dry.sentence() == (
        "would delete 1 of 3 backups (2 kept); disk size of the backups it would delete: 50 GB; "
        "skipped groups 1, stale servers 0 (1.2s)"
    )
    assert done.caps() == (
        "Caps held back 1 deletion(s) (max_delete_fraction): "
        "run with --allow-large-deletions for one pass if this is intended"
    )
    assert list(done.failures(shown=1)) == ["FAILED: one", "and 1 more failures"]


def test_run_report_and_ping_body_word_a_pass_alike() -> None:
    for executed in (True, False):
        result = _result(executed=executed)
        summary = PassSummary.of(result)
        report = io.StringIO()
        write_pass_report(result, report)
        body = summary_text(result)

        for text in (report.getvalue(), body):
            words = " ".join(text.split())  # `pruner run` wraps at 100 columns
            assert summary.sentence() in words
            assert str(summary.caps()) in words
            assert "FAILED: one\n" in text


def test_the_summary_event_counts_what_the_pass_did() -> None:
    fields = PassSummary.of(_result(executed=True)).log_fields(would=False)

    assert {key: fields[key] for key in ("listed", "servers", "kept", "deleted")} == {
        "listed": 3,
        "servers": 2,
        "kept": 2,
        "deleted": 1,
    }
    assert (fields["blocked_by_caps"], fields["skipped_groups"]) == (1, 1)
    assert fields["failures"] == ["one", "two"]
    assert "would_delete" not in fields
    assert PassSummary.of(_result(executed=False)).log_fields(would=True)["would_delete"] == 1


def test_a_pass_counts_the_deletions_that_wait_for_their_confirmation() -> None:
    newest, waiting = daily(2)
    group = Group(
        "backups",
        2478,
        "ubuntu-2gb",
        "default",
        "ok",
        (
            Decision(newest, "keep", (Reason("keep_last", "1"),)),
            Decision(waiting, "keep", (Reason("pending", NOW.isoformat()), NOT_SELECTED)),
        ),
    )
    plan = Plan(NOW, NOW, False, (group,))
    summary = PassSummary.of(PassResult("run1", plan, (), 0, False, 0.5))

    assert summary.log_fields(would=False)["pending"] == 1
    assert summary.sentence().startswith("deleted 0 of 2 backups (2 kept, 1 of them pending);")


def test_a_pass_whose_listing_failed_decided_nothing_and_says_so() -> None:
    failure = "the backups listing could not be read completely: page 3 could not be read"
    plan = Plan(NOW, NOW, True, (), (Problem("error", failure),))
    result = PassResult("run1", plan, (), 1, False, 0.5, dry_run=True, failures=(failure,))
    summary = PassSummary.of(result)
    report = io.StringIO()
    write_pass_report(result, report)

    assert summary.sentence() == (
        "not decided: the listing was incomplete; skipped groups 0, stale servers 0 (0.5s)"
    )
    assert "DRY RUN: nothing was deleted; not decided: the listing was incomplete\n" in (
        report.getvalue()
    )
    assert not re.search(r"delete[ds]? 0|would delete", report.getvalue())


def test_a_pass_whose_every_group_is_incomplete_decided_nothing() -> None:
    newest, older = daily(2)
    group = Group(
        "backups",
        2478,
        "ubuntu-2gb",
        "default",
        "incomplete",
        (
            Decision(newest, "keep", (SKIPPED_INCOMPLETE,)),
            Decision(older, "keep", (SKIPPED_INCOMPLETE,)),
        ),
    )
    problem = Problem("error", "the backups listing could not be read completely")
    plan = Plan(NOW, NOW, False, (group,), (problem,))
    result = PassResult("run1", plan, (), 1, False, 0.5, failures=("incomplete",))

    assert PassSummary.of(result).sentence().startswith("not decided: the listing was incomplete;")
    assert alert_of(result, host="backup-01") == Alert(
        "fail",
        "pruner on backup-01: pass run1 not decided: the listing was incomplete (exit 1): "
        "incomplete.",
    )


def test_a_server_with_failed_deletions_says_how_many_of_all_its_backups_went() -> None:
    backups = daily(5)
    group = Group(
        "backups",
        2478,
        "ubuntu-2gb",
        "default",
        "ok",
        (
            Decision(backups[0], "keep", (Reason("keep_last", "1"),)),
            *(Decision(b, "delete", (NOT_SELECTED,)) for b in backups[1:]),
        ),
    )
    plan = Plan(NOW, NOW, False, (group,))
    outcomes = (
        DeleteOutcome("backups", backups[1].id, "deleted", 204, "deleted (HTTP 204)"),
        DeleteOutcome("backups", backups[2].id, "already_gone", 404, "gone (HTTP 404)"),
        DeleteOutcome("backups", backups[3].id, "failed", 500, "HTTP 500"),
    )
    results = {("backups", o.id): o.result for o in outcomes}
    results["backups", backups[4].id] = "not_attempted"
    execution = Execution(plan, outcomes, (group.decisions[4],), None, True, results)
    result = PassResult(
        "run1", plan, outcomes, 1, True, 0.5, executed=True, execution=execution, failures=("x",)
    )
    report = io.StringIO()
    write_pass_report(result, report)
    words = " ".join(report.getvalue().split())

    assert (
        "server 2478 (ubuntu-2gb) · backups · policy default: deleted 2 of 5 backups "
        "(1 kept, 2 left); disk size of the deleted backups: 100 GB"
    ) in words
    assert (
        "Summary: deleted 2 of 5 backups (1 kept, 2 left: 1 failed, 1 not attempted); "
        "disk size of the deleted backups: 100 GB;"
    ) in words
