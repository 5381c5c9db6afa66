"""`pruner apply`'s log events: what became of the reviewed plan, beside the pass's own.

- `apply.review` (info): the plan file, when it was made, and its deletions: reviewed, being
  deleted (or, in a dry run, that would be), skipped, and out of scope (a scoped apply left
  them alone: neither deleted nor judged);
- `apply.skipped` (warning): one per reviewed deletion not carried out, with its `kind`
  (`vanished`, `changed`, `kept`, `guarded`) and why;
- `apply.refused` (error): why the plan was refused; nothing is deleted then.
"""

from __future__ import annotations

from structlog.typing import FilteringBoundLogger

from pruner.engine.review import ReviewedPlan, ReviewOutcome

__all__ = ["log_review"]


def log_review(outcome: ReviewOutcome, plan: ReviewedPlan, log: FilteringBoundLogger) -> None:
    log.info(
        "apply.review",
        plan=plan.source,
        generated_at=plan.generated_at.isoformat(),
        reviewed=outcome.reviewed,
        deleting=outcome.deleting,
        skipped=len(outcome.skipped),
        out_of_scope=len(outcome.out_of_scope),
    )
    for entry in outcome.skipped:
        backup = entry.backup
        log.warning(
            "apply.skipped",
            kind=entry.kind,
            resource=backup.resource,
            backup_id=backup.id,
            server_id=backup.server_id,
            message=entry.why,
        )
    for refusal in outcome.refusals:
        log.error("apply.refused", plan=plan.source, message=refusal)
