"""One wording of a pass: the log event, `pruner run`'s summary line, the ping body and the demo
all read it from PassSummary."""

from __future__ import annotations

import io

from pruner.actions.run import write_pass_report
from pruner.engine.models import Decision, Group, Plan
from pruner.engine.reasons import NOT_SELECTED, Reason, skipped
from pruner.engine.results import DeleteOutcome, Execution, PassResult
from pruner.ops.notify import summary_text
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
        "kept 2, deleted 1, failed 0, not attempted 0, freed 50 GB; "
        "skipped groups 1, stale servers 0 (1.2s)"
    )
    assert dry.sentence() == (
        "kept 2, would delete 1 (50 GB); skipped groups 1, stale servers 0 (1.2s)"
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
    assert summary.sentence().startswith("kept 2 (1 pending), deleted 0;")
