from __future__ import annotations

import errno
import json
import os
import stat
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

import pytest
import structlog
from structlog.testing import capture_logs

from pruner.passes.state import (
    AUDIT_FILE,
    LAST_PLAN,
    PENDING_FILE,
    CutLine,
    recover_state_dir,
    remove_temp_files,
    set_aside_cut_line,
    write_json_atomically,
)


def test_write_json_atomically_replaces_the_file(tmp_path: Path) -> None:
    path = tmp_path / "last-plan.json"
    path.write_text("old", encoding="utf-8")

    write_json_atomically(path, {"schema": "pruner.plan/v1", "decisions": []})

    assert json.loads(path.read_text(encoding="utf-8")) == {
        "schema": "pruner.plan/v1",
        "decisions": [],
    }
    assert [p.name for p in tmp_path.iterdir()] == ["last-plan.json"]  # no temp file left


def test_write_json_atomically_takes_a_writer(tmp_path: Path) -> None:
    path = tmp_path / "plan.json"

    def writer(stream: TextIO) -> None:
        stream.write('{"streamed": true}\n')

    write_json_atomically(path, writer)

    assert json.loads(path.read_text(encoding="utf-8")) == {"streamed": True}


def test_write_json_atomically_keeps_the_old_file_when_writing_fails(tmp_path: Path) -> None:
    path = tmp_path / "last-plan.json"
    path.write_text('{"old": true}', encoding="utf-8")

    def broken(stream: TextIO) -> None:
        stream.write('{"half": ')
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        write_json_atomically(path, broken)

    assert path.read_text(encoding="utf-8") == '{"old": true}'
    assert [p.name for p in tmp_path.iterdir()] == ["last-plan.json"]


def test_write_json_atomically_raises_when_the_directory_is_missing(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        write_json_atomically(tmp_path / "absent" / "last-plan.json", {})


# --- what a kill -9 or a full disk left behind ----------------------------------------------

NOW = datetime(2026, 11, 27, 3, 30, tzinfo=UTC)
CUT = '{"event": "intent", "run_id": "r1", "id": 40'


def _full_disk(fd: int, data: bytes) -> int:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_remove_temp_files_removes_only_the_leftovers_of_that_file(tmp_path: Path) -> None:
    for name, size in [(".last-plan.json.k2j4_x9a.tmp", 475), (".last-plan.json.0q1w2e3r.tmp", 0)]:
        (tmp_path / name).write_bytes(b"{" * size)
    others = ["last-plan.json", ".heartbeat.a1b2c3d4.tmp", ".last-plan.json.bak", "x.tmp"]
    for name in others:
        (tmp_path / name).write_text("{}", encoding="utf-8")

    removed = remove_temp_files(tmp_path / LAST_PLAN)

    assert removed == [
        (tmp_path / ".last-plan.json.0q1w2e3r.tmp", 0),
        (tmp_path / ".last-plan.json.k2j4_x9a.tmp", 475),
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(others)


def test_set_aside_cut_line_moves_the_cut_bytes_out_and_keeps_every_whole_line(
    tmp_path: Path,
) -> None:
    path = tmp_path / AUDIT_FILE
    path.write_text('{"a": 1}\n{"b": 2}\n' + CUT, encoding="utf-8")

    cut = set_aside_cut_line(path, NOW)

    kept_as = tmp_path / "audit.jsonl.cut-20261127T033000Z"
    assert cut == CutLine(path=path, kept_as=kept_as, size=len(CUT), text=CUT)
    assert path.read_text(encoding="utf-8") == '{"a": 1}\n{"b": 2}\n'
    assert kept_as.read_text(encoding="utf-8") == CUT
    assert stat.S_IMODE(kept_as.stat().st_mode) == 0o600


def test_set_aside_cut_line_never_overwrites_one_set_aside_before(tmp_path: Path) -> None:
    path = tmp_path / AUDIT_FILE
    path.write_text("first cut", encoding="utf-8")
    set_aside_cut_line(path, NOW)
    path.write_text("{}\nsecond cut", encoding="utf-8")

    cut = set_aside_cut_line(path, NOW)

    assert cut is not None
    assert cut.kept_as.name == "audit.jsonl.cut-20261127T033000Z.1"
    assert cut.kept_as.read_text(encoding="utf-8") == "second cut"
    assert path.read_text(encoding="utf-8") == "{}\n"


@pytest.mark.parametrize("content", [None, "", '{"a": 1}\n'])
def test_set_aside_cut_line_leaves_a_whole_file_alone(tmp_path: Path, content: str | None) -> None:
    path = tmp_path / AUDIT_FILE
    if content is not None:
        path.write_text(content, encoding="utf-8")

    assert set_aside_cut_line(path, NOW) is None

    assert [p.name for p in tmp_path.iterdir()] == ([] if content is None else [AUDIT_FILE])


def test_set_aside_cut_line_leaves_the_file_as_it_was_when_the_bytes_cannot_be_kept(
    tmp_path: Path,
) -> None:
    path = tmp_path / AUDIT_FILE
    path.write_text('{"a": 1}\n' + CUT, encoding="utf-8")

    with pytest.raises(OSError, match="No space left on device"):
        set_aside_cut_line(path, NOW, write=_full_disk)

    assert path.read_text(encoding="utf-8") == '{"a": 1}\n' + CUT
    assert [p.name for p in tmp_path.iterdir()] == [AUDIT_FILE]


def test_recover_state_dir_clears_what_a_crash_left_and_says_what_it_did(tmp_path: Path) -> None:
    (tmp_path / ".last-plan.json.k2j4_x9a.tmp").write_text('{"sch', encoding="utf-8")
    (tmp_path / AUDIT_FILE).write_text('{"a": 1}\n' + CUT, encoding="utf-8")

    with capture_logs() as events:
        recover_state_dir(tmp_path, now=NOW, log=structlog.get_logger("test"))

    assert sorted(p.name for p in tmp_path.iterdir()) == [
        AUDIT_FILE,
        "audit.jsonl.cut-20261127T033000Z",
    ]
    removed, cut = events
    assert (removed["event"], removed["path"], removed["size"]) == (
        "state.temp_removed",
        str(tmp_path / ".last-plan.json.k2j4_x9a.tmp"),
        5,
    )
    assert (cut["event"], cut["log_level"], cut["size"], cut["text"]) == (
        "audit.cut_line",
        "warning",
        len(CUT),
        CUT,
    )
    assert str(tmp_path / "audit.jsonl.cut-20261127T033000Z") in cut["message"]


def test_recover_state_dir_removes_what_a_crash_left_of_pending_json_too(tmp_path: Path) -> None:
    (tmp_path / PENDING_FILE).write_text("{}", encoding="utf-8")
    (tmp_path / ".pending.json.a1b2c3.tmp").write_text('{"sch', encoding="utf-8")

    with capture_logs() as events:
        recover_state_dir(tmp_path, now=NOW, log=structlog.get_logger("test"))

    assert [p.name for p in tmp_path.iterdir()] == [PENDING_FILE]
    assert [(e["event"], e["path"]) for e in events] == [
        ("state.temp_removed", str(tmp_path / ".pending.json.a1b2c3.tmp"))
    ]


def test_recover_state_dir_that_cannot_set_a_cut_line_aside_says_so_and_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / AUDIT_FILE
    path.write_text('{"a": 1}\n' + CUT, encoding="utf-8")

    def fsync(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", fsync)
    with capture_logs() as events:
        recover_state_dir(tmp_path, now=NOW, log=structlog.get_logger("test"))

    [event] = events
    assert (event["event"], event["log_level"]) == ("audit.cut_line", "error")
    assert event["message"] == (
        f"the last line of {path} was cut short and cannot be moved aside (No space left on "
        "device): no deletion is made until it is; free space in state_dir"
    )
    assert path.read_text(encoding="utf-8") == '{"a": 1}\n' + CUT
    assert [p.name for p in tmp_path.iterdir()] == [AUDIT_FILE]
