"""Progress bars: drawn by rich on a terminal's stderr, and nowhere else."""

from __future__ import annotations

import argparse
import io
import re

import pytest
from rich.console import Console

from pruner.actions.progress import RichProgress, terminal_progress
from pruner.vpsbg.progress import NO_PROGRESS


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_rich_progress_shows_the_count_of_each_task() -> None:
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=100, color_system=None)

    with RichProgress.on(console) as progress:
        progress.start("listing backups", 40)
        progress.advance("listing backups", 12)
        progress.advance("deleting")  # a task never started is no error
        progress.finish("deleting")

    drawn = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen.getvalue())
    assert "listing backups" in drawn
    assert "12/40" in drawn


@pytest.mark.parametrize(
    ("log_format", "stderr"),
    [("json", _Terminal()), ("auto", io.StringIO()), ("console", io.StringIO())],
)
def test_no_progress_unless_a_person_watches_stderr(
    monkeypatch: pytest.MonkeyPatch, log_format: str, stderr: io.StringIO
) -> None:
    monkeypatch.setattr("sys.stderr", stderr)

    with terminal_progress(argparse.Namespace(log_format=log_format)) as progress:
        assert progress is NO_PROGRESS
    assert stderr.getvalue() == ""


def test_progress_on_a_terminal_s_stderr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stderr", _Terminal())

    with terminal_progress(argparse.Namespace(log_format="auto")) as progress:
        assert isinstance(progress, RichProgress)
