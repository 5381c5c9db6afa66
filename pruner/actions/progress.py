"""Progress bars on stderr for the long work of a command run by a person: listing pages and
deletions, with the count, the rate and the time left. Never in logs, pipes, the daemon or CI:
only when stderr is a terminal and the log is for a person, and gone once the work is done.
"""

from __future__ import annotations

import argparse
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from pruner.vpsbg.progress import NO_PROGRESS, Progress

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress as Bars
    from rich.progress import TaskID

__all__ = ["RichProgress", "terminal_progress"]


@contextmanager
def terminal_progress(args: argparse.Namespace) -> Iterator[Progress]:
    """Bars on stderr while inside when a person watches it (stderr a terminal, the log not
    JSON); NO_PROGRESS otherwise."""
    if args.log_format == "json" or not sys.stderr.isatty():
        yield NO_PROGRESS
        return
    from rich.console import Console as Terminal  # noqa: PLC0415 (only a terminal needs rich)

    with RichProgress.on(Terminal(stderr=True)) as progress:
        yield progress


class RichProgress:
    """A Progress drawn by rich: one bar per task, `pages 12/40 · 31/s · 0:00:01 left`."""

    def __init__(self, bars: Bars) -> None:
        self._bars = bars
        self._tasks: dict[str, TaskID] = {}
        self._lock = threading.Lock()

    @classmethod
    @contextmanager
    def on(cls, console: Console) -> Iterator[RichProgress]:
        """Bars on `console` while inside, removed at the end (transient)."""
        from rich.progress import (  # noqa: PLC0415
            BarColumn,
            MofNCompleteColumn,
            TextColumn,
            TimeRemainingColumn,
        )
        from rich.progress import Progress as Bars  # noqa: PLC0415

        bars = Bars(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeRemainingColumn(),
            console=console,
            transient=True,
            redirect_stdout=False,  # the report comes after: nothing to lift above the bars
            redirect_stderr=False,
        )
        with bars:
            yield cls(bars)

    def start(self, task: str, total: int) -> None:
        with self._lock:
            known = self._tasks.get(task)
            if known is None:
                self._tasks[task] = self._bars.add_task(task, total=total, rate="")
            else:  # a listing that begins again
                self._bars.reset(known, total=total, visible=True)

    def advance(self, task: str, steps: int = 1) -> None:
        with self._lock:
            known = self._tasks.get(task)
            if known is None:
                return
            self._bars.advance(known, steps)
            speed = next(t.speed for t in self._bars.tasks if t.id == known)
            rate = f"{speed:.0f}/s" if speed else ""
            self._bars.update(known, rate=rate)

    def finish(self, task: str) -> None:
        with self._lock:
            known = self._tasks.get(task)
            if known is not None:
                self._bars.update(known, visible=False)
