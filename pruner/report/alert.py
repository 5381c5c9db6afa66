"""A pass as an alert: what a person must know about it, in one paragraph, most serious first.

The health pings' `/fail` and `/log` bodies and the webhooks' `text` carry it, so that an
operator learns of a tripped cap, a failed deletion or a server whose backups stopped without
reading logs. It is built from the result's values (its failures, each group's guard and
counts, the outcome of each deletion), never from the text of a message.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pruner.engine.models import Backup, Group
from pruner.engine.planner import newest_unprotected_before
from pruner.engine.results import DeleteOutcome, PassResult
from pruner.errors import EXIT_OK
from pruner.report.pass_summary import PassSummary

__all__ = ["PARAGRAPH_LIMIT", "Alert", "alert_of"]

PARAGRAPH_LIMIT = 1200  # characters: a ping body or a chat message, not a report
_SHOWN = 3  # servers or deletions named in one sentence
_MORE = " And 999 more in the log."  # the room kept for the sentence that says what was left out


@dataclass(frozen=True, slots=True)
class Alert:
    """`fail`: the pass did not succeed (exit 1 or 3). `warning`: it succeeded, but a person
    should look (a server whose backups stopped, a locked server that kept its deletions)."""

    level: Literal["fail", "warning"]
    paragraph: str


def alert_of(
    result: PassResult,
    *,
    host: str,
    max_deletions_per_run: int | None = None,
    limit: int = PARAGRAPH_LIMIT,
) -> Alert | None:
    """The alert for a pass; None when it succeeded and nothing needs a person.

    `max_deletions_per_run`: the configured run cap, named in its sentence when it tripped.
    """
    items = [
        *_failures(result),
        *_caps(result.plan.groups, max_deletions_per_run),
        *_stale(result),
        *_locked(result.plan.groups),
    ]
    if result.exit_code == EXIT_OK and not items:
        return None
    level: Literal["fail", "warning"] = "warning" if result.exit_code == EXIT_OK else "fail"
    return Alert(level, _paragraph(_opening(result, host), items, limit))


def _opening(result: PassResult, host: str) -> str:
    mode = " (dry run)" if result.dry_run else ""
    if result.key_refused or (result.failures and not result.plan.groups):
        did = "failed"
    else:  # the words of `pruner run`'s summary: `deleted 11 of 177 backups (166 kept)`
        did = PassSummary.of(result).acted()
    return f"pruner on {host}: pass {result.run_id}{mode} {did} (exit {result.exit_code})"


def _paragraph(opening: str, items: Sequence[str], limit: int) -> str:
    """The opening and the first item, then `Also:` the rest, as many as fit in `limit`."""
    if not items:
        return _fit(opening + ".", limit)
    text = f"{opening}: {items[0]}."
    shown = 1
    for item in items[1:]:
        joined = f"{text} Also: {item}." if shown == 1 else f"{text} {_capitalised(item)}."
        if len(joined) + len(_MORE) > limit:
            break
        text, shown = joined, shown + 1
    if shown < len(items):
        text += f" And {len(items) - shown} more in the log."
    return _fit(text, limit)


def _failures(result: PassResult) -> Iterator[str]:
    """Why the pass failed (exit 1), as the pass said it, then which deletions failed."""
    yield from (failure.rstrip(".") for failure in result.failures)
    if result.execution is not None and result.execution.failed:
        yield _failed_deletions(result.execution.failed, result.plan.groups)


def _failed_deletions(failed: Sequence[DeleteOutcome], groups: Sequence[Group]) -> str:
    groups_of = {
        (d.backup.resource, d.backup.id): group
        for group in groups
        for d in group.decisions
        if d.action == "delete"
    }
    named = []
    for outcome in failed[:_SHOWN]:
        answer = "no answer" if outcome.status is None else f"HTTP {outcome.status}"
        found = groups_of.get((outcome.resource, outcome.id))
        on = f" on {_server(found, resource=False)}" if found is not None else ""
        named.append(f"{_singular(outcome.resource)} {outcome.id}{on} ({answer})")
    more = f" and {len(failed) - _SHOWN} more" if len(failed) > _SHOWN else ""
    return (
        f"deletions that failed: {', '.join(named)}{more}; the backups are still there and the "
        "next pass tries again"
    )


def _caps(groups: Sequence[Group], max_deletions_per_run: int | None) -> Iterator[str]:
    """The caps that held deletions back (exit 3), with the numbers and what to do: one item."""
    per_run = [g for g in groups if g.guard == "max_deletions_per_run" and g.blocked_deletions]
    per_server = [g for g in groups if g.guard == "max_delete_fraction" and g.blocked_deletions]
    tripped, keys = [], []
    if per_run:
        cap = "" if max_deletions_per_run is None else f" ({max_deletions_per_run})"
        planned = sum(g.blocked_deletions for g in per_run)
        servers = len({g.server_id for g in per_run})
        tripped.append(
            f"the run cap safety.max_deletions_per_run{cap} would have been exceeded ({planned} "
            f"deletions planned across {servers} server{'s' if servers != 1 else ''}), so none "
            "was made"
        )
        keys.append("safety.max_deletions_per_run")
    if per_server:
        named = _named(per_server, _fraction)
        tripped.append(
            "the cap max_delete_fraction kept these from losing too many at once, so they were "
            f"not pruned: {named}"
        )
        keys.append("max_delete_fraction (in the policy or under safety)")
    if tripped:
        yield (
            f"{'; '.join(tripped)}. Run `pruner run --allow-large-deletions` once if this is "
            f"intended, or raise {' or '.join(keys)}"
        )


def _fraction(group: Group) -> str:
    unprotected = sum(1 for decision in group.decisions if not decision.protected)
    share = f", {group.blocked_deletions / unprotected:.0%}" if unprotected else ""
    return f"{_server(group)} ({group.blocked_deletions} of {unprotected}{share})"


def _stale(result: PassResult) -> Iterator[str]:
    """Servers whose backups have stopped: kept whole, and someone should find out why."""
    now = result.plan.now
    stale = [group for group in result.plan.groups if group.guard == "stale"]
    if len(stale) == 1:
        group = stale[0]
        days = _days_quiet(group, now)
        quiet = "" if days is None else f" for {days} days"
        yield (
            f"{_server(group)}: no new {_singular(group.resource)}{quiet} (stale), so none of "
            f"its {group.resource} is deleted; check that they are still made"
        )
    elif stale:
        named = _named(stale, lambda group: f"{_server(group)} ({_days_quiet(group, now)} days)")
        servers = len({group.server_id for group in stale})
        yield (
            f"{servers} servers are stale (nothing new for too long), so none of theirs is "
            f"deleted; check that backups are still made: {named}"
        )


def _days_quiet(group: Group, now: datetime) -> int | None:
    """Days since the group's newest backup (as the stale guard judged it); None without one."""
    newest: Backup | None = newest_unprotected_before(group.decisions, now)
    return None if newest is None else (now - newest.created_at).days


def _locked(groups: Sequence[Group]) -> Iterator[str]:
    locked = [g for g in groups if g.guard == "locked" and g.blocked_deletions]
    if locked:
        named = _named(
            locked, lambda group: f"{_server(group)} ({group.blocked_deletions} deletions)"
        )
        yield (
            "servers locked by an operation on VPSBG's side keep their deletions for the next "
            f"pass: {named}"
        )


def _named(groups: Sequence[Group], name: Callable[[Group], str]) -> str:
    """`a, b, c and 4 more`."""
    more = f" and {len(groups) - _SHOWN} more" if len(groups) > _SHOWN else ""
    return ", ".join(map(name, groups[:_SHOWN])) + more


def _server(group: Group, *, resource: bool = True) -> str:
    """`server 7 (db-1) backups`, or without the resource `server 7 (db-1)`."""
    hostname = f" ({group.server_hostname})" if group.server_hostname else ""
    return f"server {group.server_id}{hostname}" + (f" {group.resource}" if resource else "")


def _singular(resource: str) -> str:
    return resource.removesuffix("s")


def _capitalised(text: str) -> str:
    return text[:1].upper() + text[1:]


def _fit(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
