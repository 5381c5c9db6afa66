"""Two-phase deletion's memory: when a pass first planned each deletion (state_dir/pending.json).

With `safety.confirm_after`, a backup is deleted only when a pass at least that long earlier also
planned to delete it and no pass in between planned to keep it. Every pass that decides with the
real config (`pruner run`, each daemon pass, dry runs included) rewrites the file from its plan:

- a backup the plan deletes, or would delete but for a guard or the wait, keeps the time it was
  first planned (or gets this pass's time);
- a backup the plan keeps for any other reason is forgotten, so its wait starts again: a policy
  that changes its mind resets the count. A group the pass could not decide (an incomplete
  listing) is forgotten too: a strange listing must never count as a confirmation.
- a scoped pass (`--server`, `--policy`) touches only the groups it decided.

`pruner plan` and `pruner apply` only read the file (apply carries out a reviewed plan, not the
policy's: the next pass updates the record, and what apply deleted drops out of it). A file
that cannot be read or makes no sense confirms nothing (fail closed): the pass deletes nothing,
says so, and rewrites it from its own plan.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, get_args

from structlog.typing import FilteringBoundLogger

from pruner.engine.models import Plan, Resource
from pruner.engine.two_phase import Key, TwoPhase, planned_deletion
from pruner.passes.state import PENDING_FILE, write_json_atomically

__all__ = [
    "PENDING_SCHEMA",
    "PendingDeletions",
    "PendingEntry",
    "forget_pending",
    "load_pending",
    "read_pending",
    "record_pending",
    "write_pending",
]

PENDING_SCHEMA = "pruner.pending/v1"
_RESOURCES: tuple[Resource, ...] = get_args(Resource)


@dataclass(frozen=True, slots=True)
class PendingEntry:
    """A backup some pass planned to delete, and when a pass first did (in UTC)."""

    resource: Resource
    id: int
    server_id: int
    first_seen: datetime

    @property
    def key(self) -> Key:
        return (self.resource, self.id)

    def as_json(self) -> dict[str, Any]:
        return {
            "resource": self.resource,
            "id": self.id,
            "server_id": self.server_id,
            "first_seen": self.first_seen.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class PendingDeletions:
    """Every deletion in the running, by resource and id."""

    entries: Mapping[Key, PendingEntry]

    @classmethod
    def of(cls, entries: Iterable[PendingEntry]) -> PendingDeletions:
        in_utc = (replace(e, first_seen=e.first_seen.astimezone(UTC)) for e in entries)
        return cls({entry.key: entry for entry in in_utc})

    def two_phase(self, confirm_after: timedelta) -> TwoPhase:
        """What the planner needs: the window, and when each deletion was first planned."""
        return TwoPhase(confirm_after, {key: e.first_seen for key, e in self.entries.items()})

    def after(self, plan: Plan) -> PendingDeletions:
        """What is in the running once `plan` was made: what it planned to delete, since when.
        A scoped plan leaves the entries of groups it did not decide as they were."""
        decided = {(group.resource, group.server_id) for group in plan.groups}
        recorded = [
            entry
            for entry in self.entries.values()
            if plan.scope is not None and (entry.resource, entry.server_id) not in decided
        ]
        for group in plan.groups:
            for decision in group.decisions:
                if not planned_deletion(decision):
                    continue
                backup = decision.backup
                earlier = self.entries.get((backup.resource, backup.id))
                first_seen = earlier.first_seen if earlier is not None else plan.now
                recorded.append(
                    PendingEntry(backup.resource, backup.id, backup.server_id, first_seen)
                )
        return PendingDeletions.of(recorded)

    def as_json(self) -> dict[str, Any]:
        ordered = sorted(self.entries.values(), key=lambda entry: entry.key)
        return {"schema": PENDING_SCHEMA, "entries": [entry.as_json() for entry in ordered]}


def read_pending(path: Path) -> PendingDeletions | None:
    """The pending deletions `path` holds; None when it does not exist. Raises OSError when it
    cannot be read and ValueError, naming what is wrong, when it makes no sense."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        document = json.loads(text)
    except ValueError as error:
        raise ValueError(f"not JSON ({error})") from None
    if not isinstance(document, dict) or document.get("schema") != PENDING_SCHEMA:
        raise ValueError(f"not a {PENDING_SCHEMA} document")
    items = document.get("entries")
    if not isinstance(items, list):
        raise ValueError("entries: must be a list")
    entries: dict[Key, PendingEntry] = {}
    for index, item in enumerate(items):
        entry = _entry(item, f"entries[{index}]")
        if entry.key in entries:
            raise ValueError(f"entries[{index}]: {entry.resource} {entry.id} is listed twice")
        entries[entry.key] = entry
    return PendingDeletions.of(entries.values())


def _entry(item: object, where: str) -> PendingEntry:
    if not isinstance(item, dict):
        raise ValueError(f"{where}: must be an object")
    resource = item.get("resource")
    if resource not in _RESOURCES:
        raise ValueError(f"{where}.resource: must be backups or snapshots")
    for key in ("id", "server_id"):
        value = item.get(key)
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError(f"{where}.{key}: must be an integer")
    first_seen = _time(item.get("first_seen"))
    if first_seen is None:
        raise ValueError(f"{where}.first_seen: must be an RFC 3339 time with a UTC offset")
    return PendingEntry(resource, item["id"], item["server_id"], first_seen)


def _time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def write_pending(path: Path, pending: PendingDeletions) -> None:
    """Replace `path` atomically (a private file, 0600). Raises OSError."""
    write_json_atomically(path, pending.as_json())


# --- in a pass ----------------------------------------------------------------------------------


def load_pending(state_dir: Path, log: FilteringBoundLogger) -> PendingDeletions:
    """What earlier passes planned to delete; nothing when the file is missing, and nothing
    (with an error that says what to do) when it cannot be read or makes no sense."""
    path = state_dir / PENDING_FILE
    try:
        pending = read_pending(path)
    except (OSError, ValueError) as error:
        why = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        log.error(
            "pending.unreadable",
            path=str(path),
            message=f"{path}: {why}: nothing is confirmed this pass, so nothing is deleted. A "
            "pruner run or daemon pass rewrites the file from its plan, and every pending "
            "deletion then waits safety.confirm_after again; to keep their confirmations, "
            "restore the file from a backup first",
        )
        return PendingDeletions.of(())
    if pending is None:
        log.info(
            "pending.none",
            path=str(path),
            message=f"no pending deletions recorded yet ({path} does not exist): every deletion "
            "this pass plans waits safety.confirm_after",
        )
        return PendingDeletions.of(())
    return pending


def record_pending(
    state_dir: Path, pending: PendingDeletions, plan: Plan, log: FilteringBoundLogger
) -> bool:
    """Write what `plan` leaves in the running; whether it was written. Unwritten, the pass must
    delete nothing: a later pass would take this one's resets for confirmations."""
    path = state_dir / PENDING_FILE
    after = pending.after(plan)
    try:
        write_pending(path, after)
    except OSError as error:
        log.error(
            "pending.write_failed",
            path=str(path),
            message=f"{path}: {error.strerror or error}: nothing is deleted this pass; check "
            "that state_dir is writable",
        )
        return False
    log.debug("pending.recorded", path=str(path), pending=len(after.entries))
    return True


def forget_pending(state_dir: Path, log: FilteringBoundLogger) -> None:
    """With two-phase deletion off, passes keep no record: remove an old one, which a later
    return to two-phase deletion would otherwise take for the truth."""
    path = state_dir / PENDING_FILE
    try:
        path.unlink()
    except FileNotFoundError:
        return
    except OSError as error:
        log.error(
            "pending.not_removed",
            path=str(path),
            message=f"{path}: {error.strerror or error}: safety.confirm_after is off, so this "
            "record of pending deletions is out of date: remove it by hand",
        )
        return
    log.info(
        "pending.removed",
        path=str(path),
        message=f"safety.confirm_after is off: removed {path}, which passes no longer keep",
    )
