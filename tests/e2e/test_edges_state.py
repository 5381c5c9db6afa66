"""state_dir after a kill -9 or on a full disk, through the real CLI: what a killed pass left is
cleared at the next pass start, the audit trail stays valid JSON lines with an outcome for every
intent, no DELETE goes out unrecorded, and the lock is never leaked.

A full disk is a file size limit (RLIMIT_FSIZE) on the CLI process: a write past it is cut
short, then fails with EFBIG, as writes on a full disk are cut short and fail with ENOSPC.
No root, no tmpfs.
"""

from __future__ import annotations

import json
import os
import resource
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .conftest import CLI_TIMEOUT, E2E, E2E_WRITE_TOKEN, leaked_fragment


def _run_on_a_full_disk(
    e2e: E2E, config: Path, max_file_size: int
) -> subprocess.CompletedProcess[str]:
    """`pruner run`, unable to grow any file past `max_file_size` bytes."""
    environment = {
        key: value
        for key, value in os.environ.items()
        if key.upper() not in {"HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"}
        and key not in {"PRUNER_CONFIG", "CREDENTIALS_DIRECTORY"}
    }
    environment |= {"VPSBG_API_TOKEN": E2E_WRITE_TOKEN, "NO_PROXY": "127.0.0.1,localhost"}
    limit = (max_file_size, max_file_size)
    result = subprocess.run(
        [sys.executable, "-m", "pruner", "--config", str(config), "run"],
        env=environment,
        cwd=e2e.tmp_path,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
        check=False,
        preexec_fn=_limit_file_size(limit),  # only setrlimit runs in the child
    )
    assert leaked_fragment(E2E_WRITE_TOKEN, result.stdout + result.stderr) is None
    return result


def _limit_file_size(limit: tuple[int, int]) -> Callable[[], None]:
    return lambda: resource.setrlimit(resource.RLIMIT_FSIZE, limit)


def test_run_that_cannot_write_the_lock_says_what_to_do(e2e: E2E) -> None:
    config = e2e.config()

    full = _run_on_a_full_disk(e2e, config, max_file_size=0)

    assert full.returncode == 2, full.stderr
    assert "Traceback" not in full.stderr
    lock = e2e.state_dir / "pruner.lock"
    assert f"pruner: state_dir {e2e.state_dir}: cannot write the lock file {lock}" in full.stderr
    assert "free space" in full.stderr
    assert e2e.simulator.request_count() == 0


def _events(stderr: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]


def _audit(state_dir: Path) -> list[dict[str, Any]]:
    text = (state_dir / "audit.jsonl").read_text(encoding="utf-8")
    assert text == "" or text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]  # every line is whole JSON


def _unanswered(entries: list[dict[str, Any]]) -> list[int]:
    """Ids of the intents that have no outcome."""
    answered = {(e["resource"], e["id"]) for e in entries if e["event"] == "outcome"}
    return [
        e["id"]
        for e in entries
        if e["event"] == "intent" and (e["resource"], e["id"]) not in answered
    ]


def test_run_on_a_full_disk_sends_nothing_unrecorded_and_the_next_pass_keeps_valid_json(
    e2e: E2E,
) -> None:
    config = e2e.config()

    full = _run_on_a_full_disk(e2e, config, max_file_size=1500)  # a few intents, then a cut

    assert full.returncode == 1, full.stderr
    assert e2e.simulator.request_count("DELETE") == 0
    assert _unanswered(_audit(e2e.state_dir)) == []
    [failed] = [e for e in _events(full.stderr) if e["event"] == "audit.write_failed"]
    assert "File too large" in failed["message"]

    again = e2e.cli("--config", config, "run")  # room again

    assert again.returncode == 0, again.stderr
    entries = _audit(e2e.state_dir)
    assert _unanswered(entries) == []
    deleted = {(e["resource"], e["id"]) for e in entries if e.get("outcome") == "deleted"}
    assert deleted == set(e2e.simulator.deleted)
    assert deleted
    assert stat.S_IMODE((e2e.state_dir / "audit.jsonl").stat().st_mode) == 0o600


def test_run_sets_a_cut_audit_line_aside_before_it_writes_and_says_so(e2e: E2E) -> None:
    config = e2e.config()
    e2e.state_dir.mkdir()
    earlier = {"run_id": "r0", "time": e2e.now.isoformat(), "resource": "backups", "id": 1}
    whole = json.dumps({"event": "outcome", **earlier}) + "\n"
    cut = '{"event": "intent", "run_id": "r1", "time": "2026-'
    (e2e.state_dir / "audit.jsonl").write_text(whole + cut, encoding="utf-8")

    result = e2e.cli("--config", config, "run")

    assert result.returncode == 0, result.stderr
    [event] = [e for e in _events(result.stderr) if e["event"] == "audit.cut_line"]
    kept_as = Path(event["kept_as"])
    assert kept_as.parent == e2e.state_dir
    assert kept_as.read_text(encoding="utf-8") == cut
    assert event["level"] == "warning"
    entries = _audit(e2e.state_dir)
    assert entries[0]["run_id"] == "r0"
    assert _unanswered(entries) == []
    assert len(entries) == 1 + 2 * len(e2e.simulator.deleted)


def test_run_removes_the_temp_files_of_a_pass_killed_while_writing_its_plan(e2e: E2E) -> None:
    config = e2e.config()
    e2e.state_dir.mkdir()
    leftovers = [e2e.state_dir / f".last-plan.json.{name}.tmp" for name in ("k2j4_x9a", "0q1w")]
    for leftover in leftovers:
        leftover.write_text('{"schema": "pruner.plan/v1", "decis', encoding="utf-8")
    others = [e2e.state_dir / name for name in (".heartbeat.a1b2c3d4.tmp", "notes.tmp")]
    for other in others:
        other.write_text("", encoding="utf-8")

    result = e2e.cli("--config", config, "run", "--dry-run")

    assert result.returncode == 0, result.stderr
    removed = [e["path"] for e in _events(result.stderr) if e["event"] == "state.temp_removed"]
    assert sorted(removed) == sorted(str(path) for path in leftovers)
    assert not any(path.exists() for path in leftovers)
    assert all(path.exists() for path in others)
