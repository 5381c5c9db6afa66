"""A reviewed plan against the backups as they are now: what `pruner apply` may delete.

A person reviewed the `delete` decisions of a plan. `apply` lists again and decides again, with
the current policies and the current time, and deletes what the reviewed plan deletes, never
anything else:

- `Review.refusals`: before anything is listed, a plan that is too old, or was made under
  another config or for another API, is refused (the last two unless `--ignore-config-change`).
- `Review.revise` stands between each group's policy decisions and the guards (build_plan's
  `revise`). A deletion the reviewed plan does not have, or has for a backup that has changed
  since (another server, name, created_at instant or size), becomes a keep, `unreviewed`. With
  `--force`, a backup the plan deletes and the keep rules now keep is deleted, `forced`; never a
  protected one nor one of the newest `min_keep`. The guards then judge what is left: a stale or
  locked server, two-phase deletion (a deletion not confirmed yet is `pending`), the caps on
  what apply itself deletes.
- `Review.outcome`: what became of each reviewed deletion, and whether the plan is refused: it
  is when the current decision keeps one of them (the rules, the floor, protection, a stale,
  orphaned or unmanaged server, a deletion that waits for its confirmation), unless `--force`.
  `--force` never lifts the floor, protection, those servers' keeps or a pending deletion. A
  locked server, an incomplete listing and a cap only hold their backups back, as in any pass.
  Of a scoped apply (`--server`, `--policy`: the plan's `scope`), the deletions of servers out
  of scope are set aside: neither deleted nor judged, so they never refuse the plan.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import islice
from typing import Literal

from pruner.engine.models import Backup, Decision, Group, Listing, Plan, Policy, Problem, Resource
from pruner.engine.reasons import (
    FORCED,
    ORPHAN,
    PENDING,
    PROTECTED,
    SKIPPED,
    UNMANAGED,
    UNREVIEWED,
    texts,
)
from pruner.engine.scope import Scope
from pruner.engine.units import Duration

__all__ = ["CAP_HINT", "NotDeleted", "Review", "ReviewOutcome", "Reviewed", "ReviewedPlan"]

# What to do when what apply deletes trips a cap (apply has no --allow-large-deletions).
CAP_HINT = (
    "apply the plan in parts (turn some of its deletions into keep, apply, then the rest), or "
    "raise the cap in the config and apply with --ignore-config-change"
)

_Key = tuple[Resource, int]
_SHOWN = 5  # backups named in a refusal
# The guards that hold a group back this pass without judging the plan: apply skips their
# backups (a failure, exit 1, for an incomplete listing; exit 3 for a cap), it does not refuse.
_PASSING_GUARDS = frozenset(
    {"incomplete", "locked", "max_delete_fraction", "max_deletions_per_run"}
)
_FORCE_LIMITS = (
    "--force never deletes a protected backup, one of the newest min_keep of a server, a "
    "deletion that waits for its confirmation (pending, safety.confirm_after), or the backups "
    "of a stale, orphaned or unmanaged server"
)


@dataclass(frozen=True, slots=True)
class Reviewed:
    """One `delete` decision of a reviewed plan: the backup as the plan saw it."""

    resource: Resource
    id: int
    server_id: int
    name: str | None
    created_at: datetime
    size: int | None

    @property
    def key(self) -> _Key:
        return (self.resource, self.id)

    def changes(self, backup: Backup) -> tuple[str, ...]:
        """How `backup`, listed now under the same id, differs from what the plan saw:
        `size 50 → 40`; () when it is the same backup. created_at compares as an instant."""
        found = []
        if backup.server_id != self.server_id:
            found.append(f"server_id {self.server_id} → {backup.server_id}")
        if backup.name != self.name:
            found.append(f"name {self.name!r} → {backup.name!r}")
        if backup.created_at != self.created_at:
            found.append(
                f"created_at {self.created_at.isoformat()} → {backup.created_at.isoformat()}"
            )
        if backup.size != self.size:
            found.append(f"size {self.size} → {backup.size}")
        return tuple(found)

    def __str__(self) -> str:
        return f"{self.resource} id {self.id} (server {self.server_id})"


@dataclass(frozen=True, slots=True)
class ReviewedPlan:
    """What `apply` needs of a plan file: when and under what it was made, what it deletes."""

    source: str  # the file, as messages name it
    generated_at: datetime
    config_sha256: str | None  # None: a plan of an older pruner, which did not record it
    api_base_url: str | None
    deletions: tuple[Reviewed, ...]


Kind = Literal["vanished", "changed", "kept", "guarded"]


@dataclass(frozen=True, slots=True)
class NotDeleted:
    """A reviewed deletion apply does not carry out.

    `kind`: `vanished` (no longer listed), `changed` (listed otherwise than the plan saw it),
    `kept` (the current decision keeps it: the plan is refused unless --force, and what --force
    does not lift stays kept), `guarded` (a locked server, an incomplete listing or a cap holds
    it back this pass)."""

    backup: Reviewed
    kind: Kind
    why: str


@dataclass(frozen=True, slots=True)
class ReviewOutcome:
    """What became of a reviewed plan's deletions in one `apply`."""

    reviewed: int  # the plan's delete decisions
    deleting: int  # of them, `delete` in apply's plan
    skipped: tuple[NotDeleted, ...]  # those in scope not deleted, in the plan's order
    refusals: tuple[str, ...]  # why apply refuses the plan; () when it does not
    problems: tuple[Problem, ...]  # for the plan and the log: one per backup, and the refusals
    out_of_scope: tuple[Reviewed, ...] = ()  # a scoped apply left these alone, unjudged

    @property
    def refused(self) -> bool:
        return bool(self.refusals)

    @classmethod
    def refused_unlisted(cls, plan: ReviewedPlan, refusals: tuple[str, ...]) -> ReviewOutcome:
        """The outcome of a plan `Review.refusals` refused before anything was listed."""
        return cls(
            reviewed=len(plan.deletions),
            deleting=0,
            skipped=(),
            refusals=refusals,
            problems=tuple(Problem("warning", refusal) for refusal in refusals),
        )


@dataclass(frozen=True, slots=True)
class Review:
    """A reviewed plan, and how `apply` was asked to take it."""

    plan: ReviewedPlan
    max_age: Duration  # exact (no months): how old the plan may be
    force: bool = False
    ignore_config_change: bool = False
    _by_key: Mapping[_Key, Reviewed] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_key", {r.key: r for r in self.plan.deletions})

    def refusals(self, *, now: datetime, config_sha256: str, api_base_url: str) -> tuple[str, ...]:
        """Why the plan is refused before anything is listed: too old, or (unless
        ignore_config_change) made under another config or for another API."""
        found = []
        age = now - self.plan.generated_at
        if age > self.max_age.as_timedelta():
            found.append(
                f"it was made at {self.plan.generated_at.isoformat()}, {_elapsed(age)} ago, "
                f"longer ago than --max-age {self.max_age}: make a new plan, review it and apply "
                "that, or give a longer --max-age"
            )
        if not self.ignore_config_change:
            found.extend(self._origin_changes(config_sha256, api_base_url))
        return tuple(self._refusal(reason) for reason in found)

    def revise(self, decisions: tuple[Decision, ...], policy: Policy) -> tuple[Decision, ...]:
        """The policy's decisions for one group, as apply carries them out (see the module doc).
        For build_plan's `revise`."""
        floor = _floor(decisions, policy.min_keep) if self.force else frozenset()
        return tuple(self._revised(decision, floor) for decision in decisions)

    def outcome(self, listing: Listing, plan: Plan) -> ReviewOutcome:
        """What became of each reviewed deletion in `plan`, apply's plan of `listing`."""
        listed = {(b.resource, b.id): b for b in listing.backups}
        decided = {
            (d.backup.resource, d.backup.id): (group, d)
            for group in plan.groups
            for d in group.decisions
        }
        groups = {(group.resource, group.server_id) for group in plan.groups}
        deleting = 0
        skipped: list[NotDeleted] = []
        out_of_scope: list[Reviewed] = []
        for reviewed in self.plan.deletions:
            backup = listed.get(reviewed.key)
            found = decided.get(reviewed.key)
            if found is None and _out_of_scope(reviewed, backup, plan.scope, groups, listing):
                out_of_scope.append(reviewed)
            elif backup is None or found is None:
                skipped.append(self._unlisted(reviewed, listing))
            elif changes := reviewed.changes(backup):
                why = f"changed since the plan ({', '.join(changes)}): not the backup reviewed"
                skipped.append(NotDeleted(reviewed, "changed", why))
            elif found[1].action == "delete":
                deleting += 1
            else:
                skipped.append(self._kept(reviewed, *found))
        kept = [s for s in skipped if s.kind == "kept"]
        refusals = () if self.force or not kept else (self._refusal(_kept_now(kept)),)
        return ReviewOutcome(
            reviewed=len(self.plan.deletions),
            deleting=deleting,
            skipped=tuple(skipped),
            refusals=refusals,
            problems=(*self._problems(skipped), *(Problem("warning", r) for r in refusals)),
            out_of_scope=tuple(out_of_scope),
        )

    # -- helpers --------------------------------------------------------------------------

    def _origin_changes(self, config_sha256: str, api_base_url: str) -> Iterator[str]:
        plan, hint = self.plan, "or apply --ignore-config-change to take it as it is"
        if plan.config_sha256 is None:
            yield (
                "it does not say which config it was made under (no config_sha256: a plan of an "
                f"older pruner): make a new plan and review it, {hint}"
            )
        elif plan.config_sha256 != config_sha256:
            yield (
                f"it was made under another config (config_sha256 {plan.config_sha256[:12]}…, "
                f"the current config's is {config_sha256[:12]}…): make a new plan with this "
                f"config and review it, {hint} (each deletion is still checked against the "
                "current policy)"
            )
        if plan.api_base_url is None:
            yield (
                "it does not say which API it was made for (no api_base_url): make a new plan "
                f"and review it, {hint}"
            )
        elif plan.api_base_url != api_base_url:
            yield (
                f"it was made for the API at {plan.api_base_url}, not {api_base_url} "
                "(api.base_url): its ids may name other backups here; make a new plan against "
                f"this API, {hint}"
            )

    def _refusal(self, reason: str) -> str:
        return f"apply refused {self.plan.source}: {reason}; nothing was deleted"

    def _revised(self, decision: Decision, floor: frozenset[int]) -> Decision:
        backup = decision.backup
        reviewed = self._by_key.get((backup.resource, backup.id))
        if reviewed is None or reviewed.changes(backup):
            if decision.action == "delete":
                return Decision(backup, "keep", (UNREVIEWED,))
            return decision
        forced = self.force and not decision.protected and backup.id not in floor
        if decision.action == "keep" and forced:
            return Decision(backup, "delete", (FORCED,))
        return decision

    def _unlisted(self, reviewed: Reviewed, listing: Listing) -> NotDeleted:
        resource = reviewed.resource
        if resource not in listing.resources:
            why = f"no policy of the current config prunes {resource}, so none were listed"
            return NotDeleted(reviewed, "kept", self._kept_why(why))
        if resource in listing.incomplete_resources or not listing.servers_complete:
            why = "not found in a listing that could not be read completely: not deleted"
            return NotDeleted(reviewed, "guarded", why)
        errors = any(
            p.level == "error" and p.resource == resource and p.backup_id == reviewed.id
            for p in listing.problems
        )
        if errors:
            return NotDeleted(reviewed, "guarded", "its listing entry has errors: not deleted")
        why = "no longer listed: something deleted it since the plan was made"
        return NotDeleted(reviewed, "vanished", why)

    def _kept(self, reviewed: Reviewed, group: Group, decision: Decision) -> NotDeleted:
        first = decision.reasons[0]
        shown = ", ".join(texts(decision.reasons))
        if first.rule == SKIPPED and first.detail in _PASSING_GUARDS:
            why = f"server {group.server_id}'s {group.resource} are held back ({shown})"
            if group.messages:
                why += f": {group.messages[-1]}"
            return NotDeleted(reviewed, "guarded", why)
        if first.rule == PROTECTED:
            why = f"it is protected ({shown})"
        elif first.rule == SKIPPED:
            why = f"its server is not pruned now ({shown})"
        elif first == UNMANAGED:
            why = "no policy matches its server now (unmanaged)"
        elif first == ORPHAN:
            why = "its server is gone, and its policy keeps the backups of such servers (orphan)"
        elif first.rule == PENDING:
            why = (
                f"it waits for its confirmation ({shown}): with safety.confirm_after, a deletion "
                "goes only once a pass that long after the first to plan it plans it again; "
                "apply a new plan after that"
            )
        elif self.force:
            why = f"it is one of the newest min_keep of its server ({shown})"
        else:
            why = f"the current policy keeps it ({shown})"
        return NotDeleted(reviewed, "kept", self._kept_why(why))

    def _kept_why(self, why: str) -> str:
        return f"{why}: kept although --force; {_FORCE_LIMITS}" if self.force else why

    def _problems(self, skipped: list[NotDeleted]) -> Iterator[Problem]:
        """One warning per backup apply skips for its own reasons; a guard's are the group's."""
        for entry in skipped:
            if entry.kind != "guarded":
                yield Problem(
                    level="warning",
                    message=f"{self.plan.source}: {entry.backup}: {entry.why}",
                    resource=entry.backup.resource,
                    server_id=entry.backup.server_id,
                    backup_id=entry.backup.id,
                )


def _out_of_scope(
    reviewed: Reviewed,
    backup: Backup | None,
    scope: Scope | None,
    groups: set[tuple[Resource, int]],
    listing: Listing,
) -> bool:
    """A reviewed deletion the scoped plan did not decide is out of scope when it is listed now
    (a scoped plan decides every listed backup in scope), or when its group was not decided and
    the scope may not select it (only the planner knows which policy a vanished group had)."""
    if scope is None:
        return False
    if backup is not None:
        return True
    if (reviewed.resource, reviewed.server_id) in groups:
        return False
    if scope.policy is not None:
        return True
    hostname = next((s.hostname for s in listing.servers or () if s.id == reviewed.server_id), None)
    return not scope.selects_server(reviewed.server_id, hostname)


def _floor(decisions: tuple[Decision, ...], min_keep: int) -> frozenset[int]:
    """The ids of the newest `min_keep` unprotected backups (decisions come newest first)."""
    unprotected = (d.backup.id for d in decisions if not d.protected)
    return frozenset(islice(unprotected, max(min_keep, 0)))


def _kept_now(kept: list[NotDeleted]) -> str:
    shown = "; ".join(f"{entry.backup}: {entry.why}" for entry in kept[:_SHOWN])
    more = f"; and {len(kept) - _SHOWN} more" if len(kept) > _SHOWN else ""
    count = f"{len(kept)} backup{'s' if len(kept) != 1 else ''}"
    return (
        f"{count} the plan deletes would be kept now ({shown}{more}): make a new plan and "
        f"review it, or apply --force to delete those the keep rules keep now ({_FORCE_LIMITS})"
    )


def _elapsed(span: timedelta) -> str:
    """`2d 3h`, `25h 10min`, `40min`: how long ago, to the minute."""
    minutes = int(span.total_seconds() // 60)
    hours, minutes = divmod(minutes, 60)
    if hours >= 48:
        days, hours = divmod(hours, 24)
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}min"
    return f"{minutes}min"
