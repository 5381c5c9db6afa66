"""Two-phase deletion (`safety.confirm_after`): a backup is deleted only when a pass at least
`confirm_after` earlier also planned to delete it, and no pass in between planned to keep it.

The planner holds back every deletion that is not confirmed yet: it becomes a keep whose first
reason is `pending:<first seen>`, followed by the reasons it would be deleted for. It does so
before the caps, so the caps count only what a pass really deletes. When each deletion was
first planned is kept by the layer above (state_dir/pending.json); here it is only read.

Only the policy's deletions wait. A `forced` one (`pruner apply --force`) is a person's, on a
reviewed plan, of a backup the keep rules keep: no pass ever plans it, so none could confirm it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from pruner.engine.models import Backup, Decision, Resource
from pruner.engine.reasons import FORCED, PENDING, SKIPPED, SKIPPED_INCOMPLETE, pending

__all__ = ["Key", "TwoPhase", "planned_deletion"]

Key = tuple[Resource, int]  # a backup's resource and id


@dataclass(frozen=True, slots=True)
class TwoPhase:
    """The confirmation window, and when a pass first planned each deletion still in the running
    (a deletion absent from `first_seen` is planned for the first time now)."""

    confirm_after: timedelta
    first_seen: Mapping[Key, datetime] = field(default_factory=dict)

    def first_seen_of(self, backup: Backup, now: datetime) -> datetime:
        return self.first_seen.get((backup.resource, backup.id), now)

    def hold(self, decisions: Iterable[Decision], now: datetime) -> tuple[Decision, ...]:
        """Each deletion not confirmed by `now` turned into a keep that says since when it waits."""
        return tuple(self._held(decision, now) for decision in decisions)

    def _held(self, decision: Decision, now: datetime) -> Decision:
        if decision.action != "delete" or decision.reasons[0] == FORCED:
            return decision
        first_seen = self.first_seen_of(decision.backup, now)
        if first_seen <= now - self.confirm_after:
            return decision
        return Decision(decision.backup, "keep", (pending(first_seen), *decision.reasons))


def planned_deletion(decision: Decision) -> bool:
    """Whether the pass's policy planned to delete this backup, whatever held it back: deleted,
    pending, or kept by a guard that holds a whole group back for this pass (locked, stale, a
    cap). A group that could not be decided (`skipped:incomplete`) planned nothing."""
    if decision.action == "delete":
        return True
    first = decision.reasons[0]
    return first.rule == PENDING or (first.rule == SKIPPED and first != SKIPPED_INCOMPLETE)
