"""Liveness: the daemon's heartbeat in state_dir, and the check `pruner health` makes of it.

The daemon's scheduler writes the time to state_dir/heartbeat every 30 s, so a scheduler that
stopped or hangs leaves an old time behind, and the check fails once it is older than two
minutes. A pass that fails does not stop the heartbeat: restarting the daemon would not cure an
API outage; pass results go to logs and metrics.

This module is imported by `pruner health`, which must answer a probe quickly: it imports
only the standard library (and pruner.state, which does the same).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import NamedTuple

from pruner.state import write_json_atomically

__all__ = ["DEFAULT_STATE_DIR", "HEARTBEAT", "MAX_AGE", "Health", "Heartbeat", "check"]

HEARTBEAT = "heartbeat"
MAX_AGE = timedelta(minutes=2)  # four missed beats at the daemon's 30 s
DEFAULT_STATE_DIR = Path("/var/lib/pruner")  # the default of `state_dir` (SPEC §3)


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """The heartbeat file of one state_dir; the daemon calls `beat(now)` from its scheduler."""

    state_dir: Path

    @property
    def path(self) -> Path:
        return self.state_dir / HEARTBEAT

    def beat(self, now: datetime) -> None:
        """Replace the heartbeat with `now` (aware), atomically: a probe never reads half a time.

        Raises OSError when state_dir cannot be written.
        """
        if now.tzinfo is None:
            raise ValueError("a heartbeat needs an aware time")
        stamp = now.astimezone(UTC).isoformat()
        write_json_atomically(self.path, lambda stream: stream.write(stamp + "\n"))


class Health(NamedTuple):
    """The check's verdict, and one line saying why."""

    ok: bool
    reason: str


def check(state_dir: Path, now: datetime, max_age: timedelta = MAX_AGE) -> Health:
    """Is the heartbeat in `state_dir` at most `max_age` from `now` (aware)?

    A heartbeat that far in the future is not healthy either: the clock was set back, and the
    daemon's schedule, anchored to the old time, may not beat again for as long.
    """
    path = state_dir / HEARTBEAT
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Health(
            False,
            f"no heartbeat at {path}: `pruner daemon` is not running or not yet started, or "
            "it uses another state_dir (the heartbeat is the daemon's; `pruner run` writes none)",
        )
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) else "not UTF-8 text"
        return Health(False, f"cannot read the heartbeat {path}: {reason}")
    beat = _parse_time(text)
    if beat is None:
        return Health(
            False,
            f"the heartbeat {path} holds no time ({text.strip()[:40]!r}): the daemon "
            "rewrites it every 30 s; if it stays so, restart the daemon",
        )
    age = now - beat
    limit = _seconds(max_age)
    if age > max_age:
        return Health(
            False,
            f"the heartbeat {path} is {_seconds(age)} s old (limit {limit} s): the daemon's "
            "scheduler has stopped or hangs",
        )
    if -age > max_age:
        return Health(
            False,
            f"the heartbeat {path} is {_seconds(-age)} s in the future (limit {limit} s): the "
            "clock was set back; restarting the daemon anchors its schedule to the new time",
        )
    return Health(True, f"heartbeat {max(_seconds(age), 0)} s old")


def _parse_time(text: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def _seconds(span: timedelta) -> int:
    return round(span.total_seconds())
