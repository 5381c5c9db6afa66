"""Two-phase deletion (`safety.confirm_after`) through the real CLI against the simulated API.

A pass runs on the wall clock, so time passing is played by moving the first-seen times in
state_dir/pending.json back (`_age`): the file is the documented record of when a pass first
planned each deletion, and that is all the next pass reads of the past.
"""

from __future__ import annotations

import copy
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from .conftest import E2E, POLICIES

pytestmark = pytest.mark.usefixtures("no_token_leaks")

Item = tuple[str, int]
WINDOW = timedelta(hours=12)


def _config(e2e: E2E, *, web_keep_daily: int = 14) -> Path:
    """The e2e fleet's policies with two-phase deletion; `web` keeps `web_keep_daily` days."""
    policies = copy.deepcopy(POLICIES)
    [web] = [p for p in policies if p["name"] == "web"]
    web["keep_daily"] = web_keep_daily
    return e2e.config(safety={"confirm_after": "12h"}, policies=policies)


def _pending(e2e: E2E) -> dict[Item, datetime]:
    """pending.json: what some pass planned to delete, and when a pass first did."""
    document = json.loads((e2e.state_dir / "pending.json").read_text(encoding="utf-8"))
    assert document["schema"] == "pruner.pending/v1"
    return {
        (e["resource"], e["id"]): datetime.fromisoformat(e["first_seen"])
        for e in document["entries"]
    }


def _age(e2e: E2E, by: timedelta) -> None:
    """Let `by` pass for pending.json: every first-seen time moves that far back."""
    path = e2e.state_dir / "pending.json"
    document = json.loads(path.read_text(encoding="utf-8"))
    for entry in document["entries"]:
        entry["first_seen"] = (datetime.fromisoformat(entry["first_seen"]) - by).isoformat()
    path.write_text(json.dumps(document), encoding="utf-8")


def _last_plan(e2e: E2E) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(
        (e2e.state_dir / "last-plan.json").read_text(encoding="utf-8")
    )
    return document


def _waiting(document: dict[str, Any]) -> dict[Item, str]:
    """Decisions that wait for their confirmation, and their `pending:` reason."""
    return {
        (d["resource"], d["id"]): d["reasons"][0]
        for d in document["decisions"]
        if d["reasons"][0].startswith("pending:")
    }


def _deletions(document: dict[str, Any]) -> set[Item]:
    return {(d["resource"], d["id"]) for d in document["decisions"] if d["action"] == "delete"}


def _events(stderr: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]


def _run(e2e: E2E, config: Path) -> dict[str, Any]:
    result = e2e.cli("--config", config, "run")
    assert result.returncode == 0, result.stderr
    return _last_plan(e2e)


def test_the_first_pass_deletes_nothing_and_records_what_it_planned(e2e: E2E) -> None:
    config = _config(e2e)
    would = e2e.plan(e2e.config(), e2e.now).deletions  # the same policies, deleting at once

    result = e2e.cli("--config", config, "run")

    assert result.returncode == 0, result.stderr
    assert e2e.simulator.request_count("DELETE") == 0
    last = _last_plan(e2e)
    assert _deletions(last) == set()
    waiting = _waiting(last)
    assert set(waiting) == {(d.backup.resource, d.backup.id) for d in would}
    assert last["summary"]["pending"] == len(waiting) > 0
    assert "pending" in result.stdout  # the report counts them: kept N (M pending)
    recorded = _pending(e2e)
    assert set(waiting) <= set(recorded)
    assert all(
        reason == f"pending:{recorded[item].isoformat(timespec='seconds')}"
        for item, reason in waiting.items()
    )
    assert oct((e2e.state_dir / "pending.json").stat().st_mode & 0o777) == "0o600"
    shown = e2e.cli("--config", config, "plan", "--format", "json")  # an audit sees the same
    assert shown.returncode == 0, shown.stderr
    assert _waiting(json.loads(shown.stdout)) == waiting


def test_a_pass_inside_the_window_deletes_nothing(e2e: E2E) -> None:
    config = _config(e2e)
    _run(e2e, config)
    first = _pending(e2e)
    _age(e2e, WINDOW - timedelta(minutes=5))

    second = _run(e2e, config)

    assert e2e.simulator.request_count("DELETE") == 0
    assert _deletions(second) == set()
    assert set(_pending(e2e)) == set(first)


def test_a_pass_after_the_window_deletes_exactly_what_both_passes_planned(e2e: E2E) -> None:
    _run(e2e, _config(e2e, web_keep_daily=20))
    first = set(_pending(e2e))
    _age(e2e, WINDOW)
    stricter = _config(e2e)  # web keeps 14 days: more to delete than the first pass planned

    second = _run(e2e, stricter)

    both = first & set(_pending(e2e))
    assert set(e2e.simulator.deleted) == _deletions(second)
    assert _deletions(second) == {item for item in both if item not in _guarded(second)}
    newly = set(_waiting(second))
    assert newly
    assert not newly & first  # planned by the second pass only: they wait
    assert second["summary"]["deleted"] == len(e2e.simulator.deleted) > 0


def test_a_backup_that_left_the_plan_in_between_is_never_deleted(e2e: E2E) -> None:
    strict = _config(e2e)
    _run(e2e, strict)
    first = set(_pending(e2e))
    _run(e2e, _config(e2e, web_keep_daily=20))  # a pass in between keeps some of them
    left = first - set(_pending(e2e))
    assert left
    _age(e2e, 2 * WINDOW)

    third = _run(e2e, strict)

    assert not left & set(e2e.simulator.deleted)
    assert left - _guarded(third) <= set(_waiting(third))  # their wait started again
    assert set(e2e.simulator.deleted) == _deletions(third) > set()


def test_a_corrupt_pending_file_deletes_nothing_and_is_rebuilt(e2e: E2E) -> None:
    config = _config(e2e)
    _run(e2e, config)
    planned = set(_pending(e2e))
    (e2e.state_dir / "pending.json").write_text('{"schema": "pruner.pending/v1", "entr', "utf-8")

    result = e2e.cli("--config", config, "run")

    assert result.returncode == 0, result.stderr
    assert e2e.simulator.request_count("DELETE") == 0
    [error] = [e for e in _events(result.stderr) if e["event"] == "pending.unreadable"]
    assert error["level"] == "error"
    assert str(e2e.state_dir / "pending.json") in error["message"]
    assert "nothing is deleted" in error["message"]
    assert set(_pending(e2e)) == planned  # rebuilt from this pass's plan: the wait restarts
    assert min(_pending(e2e).values()) >= datetime.fromisoformat(_last_plan(e2e)["now"])


def _guarded(document: dict[str, Any]) -> set[Item]:
    """What a guard held back this pass (a locked or stale server): planned, not deleted."""
    return {
        (d["resource"], d["id"])
        for d in document["decisions"]
        if d["reasons"][0].startswith("skipped:")
    }
