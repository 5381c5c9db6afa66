from __future__ import annotations

import json
from pathlib import Path
from typing import TextIO

import pytest

from pruner.state import LAST_PLAN, remove_temp_files, write_json_atomically


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


# --- what a kill -9 left behind ----------------------------------------------


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
