"""Liveness: the daemon's heartbeat in state_dir, and the check `pruner health` makes of it.

The daemon's scheduler writes the time to state_dir/heartbeat every 30 s, so a scheduler that
stopped or hangs leaves an old time behind, and the check fails once it is older than two
minutes. A pass that fails does not stop the heartbeat: restarting the daemon would not cure an
API outage; pass results go to logs and metrics.

A pass that hangs does not stop it either: the scheduler beats on while its worker waits. So
while a pass runs, the heartbeat also holds when it started and its deadline
(`safety.max_pass_duration`, when the pass is told to stop), and the check fails once that
deadline is past and the pass still runs. The file is the time on its first line, then
`key value` lines:

    2026-11-27T03:40:00+00:00
    pass_started 2026-11-27T03:30:00+00:00
    pass_deadline 2026-11-27T04:30:00+00:00

This module is imported by `pruner health`, which must answer a probe quickly: it imports
only the standard library (and pruner.passes.state, which does the same).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import NamedTuple

from pruner.passes.state import write_json_atomically

__all__ = [
    "HEARTBEAT",
    "MAX_AGE",
    "Health",
    "Heartbeat",
    "RunningPass",
    "check",
]

HEARTBEAT = "heartbeat"
MAX_AGE = timedelta(minutes=2)  # four missed beats at the daemon's 30 s


@dataclass(frozen=True, slots=True)
class RunningPass:
    """The daemon's pass in progress: when it started, and when it is told to stop (aware)."""

    started: datetime
    deadline: datetime


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """The heartbeat file of one state_dir; the daemon calls `beat(now, running)` from its
    scheduler, and when a pass starts and ends."""

    state_dir: Path

    @property
    def path(self) -> Path:
        return self.state_dir / HEARTBEAT

    def beat(self, now: datetime, running: RunningPass | None = None) -> None:
        """Replace the heartbeat with `now` and the pass `running`, if any (aware times),
        atomically: a probe never reads half of it.

        Raises OSError when state_dir cannot be written.
        """
        lines = [_stamp(now)]
        if running is not None:
            lines.append(f"pass_started {_stamp(running.started)}")
            lines.append(f"pass_deadline {_stamp(running.deadline)}")
        text = "".join(line + "\n" for line in lines)
        write_json_atomically(self.path, lambda stream: stream.write(text))


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
    parsed = _parse(text)
    if parsed is None:
        return Health(
            False,
            f"the heartbeat {path} holds no time ({text.strip()[:40]!r}): the daemon "
            "rewrites it every 30 s; if it stays so, restart the daemon",
        )
    beat, running = parsed
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
    fresh = f"heartbeat {max(_seconds(age), 0)} s old"
    return Health(True, fresh) if running is None else _pass_health(running, now, fresh)


def _pass_health(running: RunningPass, now: datetime, fresh: str) -> Health:
    """A live scheduler, but is its pass in progress past its deadline (it hangs)?"""
    ran = _seconds(now - running.started)
    if now > running.deadline:
        return Health(
            False,
            f"a pass has run for {ran} s, past its deadline {running.deadline.isoformat()} "
            f"(safety.max_pass_duration, since {running.started.isoformat()}): it was told to "
            "stop then and has not ended; see the daemon's log (pass.deadline), and restart "
            "the daemon",
        )
    left = _seconds(running.deadline - now)
    return Health(True, f"{fresh}; a pass has run for {ran} s (its deadline in {left} s)")


def _parse(text: str) -> tuple[datetime, RunningPass | None] | None:
    """The heartbeat's time and the pass in progress it names, if any; None when a time in it
    cannot be read."""
    first, *rest = text.splitlines() or [""]
    beat = _parse_time(first)
    fields = {key: value for key, _, value in (line.partition(" ") for line in rest)}
    if beat is None or "pass_deadline" not in fields:
        return None if beat is None else (beat, None)
    started = _parse_time(fields.get("pass_started", ""))
    deadline = _parse_time(fields["pass_deadline"])
    if started is None or deadline is None:
        return None
    return beat, RunningPass(started, deadline)


def _stamp(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("a heartbeat needs an aware time")
    return moment.astimezone(UTC).isoformat()


def _parse_time(text: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def _seconds(span: timedelta) -> int:
    return round(span.total_seconds())
