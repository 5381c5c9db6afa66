"""`pruner run` against the simulated API: a dry run sends no DELETE; a real pass deletes exactly
what its plan says (the one it writes to state_dir/last-plan.json, and the one `plan` showed just
before), and the pass after it has nothing left to delete."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from .conftest import E2E

pytestmark = pytest.mark.usefixtures("no_token_leaks")

Item = tuple[str, int]


def _deletions(document: dict[str, Any]) -> set[Item]:
    return {(d["resource"], d["id"]) for d in document["decisions"] if d["action"] == "delete"}


def _last_plan(state_dir: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((state_dir / "last-plan.json").read_text("utf-8"))
    return document


def _fleet(e2e: E2E) -> set[Item]:
    simulator = e2e.simulator
    return {("backups", b["id"]) for b in simulator.backups()} | {
        ("snapshots", s["id"]) for s in simulator.backups("snapshots")
    }


def _says_it_would_delete(output: str, count: int) -> bool:
    """Some line mentions a dry run or deleting, with the count as a whole number."""
    number = re.compile(rf"(?<![\d.:-]){count}(?![\d.:-])")
    return any(
        number.search(line) and re.search(r"delet", line, re.IGNORECASE)
        for line in output.splitlines()
    )


@pytest.mark.parametrize("how", ["flag", "config"])
def test_run_dry_run_sends_no_delete_and_says_what_it_would_do(e2e: E2E, how: str) -> None:
    config = e2e.config(dry_run=how == "config")
    fleet = _fleet(e2e)
    would_delete = len(e2e.plan(config, datetime.now(UTC)).deletions)

    result = e2e.cli("--config", config, "run", *(["--dry-run"] if how == "flag" else []))

    assert result.returncode == 0, result.stderr
    assert e2e.simulator.request_count("DELETE") == 0
    assert _fleet(e2e) == fleet
    output = result.stdout + result.stderr
    assert re.search(r"dry[ _-]?run", output, re.IGNORECASE), output
    assert would_delete > 0
    assert _says_it_would_delete(output, would_delete), output
    last = _last_plan(e2e.state_dir)  # what it would delete, as `delete` decisions
    assert last["dry_run"] is True
    assert len(_deletions(last)) == would_delete


def test_run_deletes_exactly_the_plan_shown_just_before(e2e: E2E) -> None:
    config = e2e.config()
    fleet = _fleet(e2e)
    shown = e2e.cli("--config", config, "plan", "--format", "json")
    assert shown.returncode == 0, shown.stderr
    planned = _deletions(json.loads(shown.stdout))

    result = e2e.cli("--config", config, "run")

    assert result.returncode == 0, result.stderr
    deleted = set(e2e.simulator.deleted)
    assert len(e2e.simulator.deleted) == len(deleted)
    assert deleted == planned
    assert _fleet(e2e) == fleet - planned
    assert e2e.simulator.request_count("DELETE") == len(planned)  # no fault: one request each


def test_run_deletes_what_its_last_plan_says_and_a_second_pass_nothing(e2e: E2E) -> None:
    config = e2e.config()
    listed = e2e.listing()

    result = e2e.cli("--config", config, "run")

    assert result.returncode == 0, result.stderr
    last = _last_plan(e2e.state_dir)
    assert last["schema"] == "pruner.plan/v1"
    assert last["dry_run"] is False
    assert set(e2e.simulator.deleted) == _deletions(last)
    assert last["summary"]["deleted"] == len(e2e.simulator.deleted) > 0
    assert all(g["status"] != "failed" for g in last["groups"])
    # the engine, on the state the pass listed, with the pass's own clock
    expected = e2e.plan(config, datetime.fromisoformat(last["now"]), listing=listed)
    assert _deletions(last) == {(d.backup.resource, d.backup.id) for d in expected.deletions}
    deletes = e2e.simulator.request_count("DELETE")

    second = e2e.cli("--config", config, "run")  # nothing is left to delete

    assert second.returncode == 0, second.stderr
    assert e2e.simulator.request_count("DELETE") == deletes
    assert _deletions(_last_plan(e2e.state_dir)) == set()
