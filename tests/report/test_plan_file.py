"""Reading a plan back for `pruner apply`: what `plan --format json` and last-plan.json write
reads as written; anything else is refused as bad input (exit 2), naming the file and the field."""

from __future__ import annotations

import io
import json
from datetime import timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from pruner.engine.models import Plan
from pruner.engine.planner import build_plan
from pruner.engine.review import Reviewed
from pruner.errors import EXIT_USAGE
from pruner.report.plan_file import PlanFileError, read_plan_file
from pruner.report.plan_json import PlanOrigin, plan_to_json, write_plan_json
from tests._factories import NOW, backup, daily, listing, policy

ORIGIN = PlanOrigin(config_sha256="ab" * 32, api_base_url="https://api.vpsbg.eu/v1")


def _plan() -> Plan:
    backups = [
        *daily(5),
        backup(50, 7, NOW - timedelta(days=3), resource="snapshots", size=None, name=None),
        backup(51, 7, NOW - timedelta(days=4), resource="snapshots"),
    ]
    policies = [
        policy("all", keep_last=2),
        policy("snaps", resource="snapshots", keep_last=0, min_keep=0),
    ]
    return build_plan(
        listing(backups),
        policies,
        now=NOW,
        generated_at=NOW,
        zone=None,
        max_deletions_per_run=None,
        dry_run=True,
        allow_large_deletions=True,
    )


def _write(tmp_path: Path, document: Any) -> Path:
    path = tmp_path / "plan.json"
    text = document if isinstance(document, str) else json.dumps(document)
    path.write_text(text, encoding="utf-8")
    return path


def _refusal(path: Path) -> str:
    with pytest.raises(PlanFileError) as raised:
        read_plan_file(path)
    assert raised.value.exit_code == EXIT_USAGE
    [line] = raised.value.lines
    assert line.startswith(f"{path}: ")
    return line


def test_read_plan_file_reads_what_plan_json_writes(tmp_path: Path) -> None:
    plan = _plan()
    stream = io.StringIO()
    write_plan_json(plan, stream, origin=ORIGIN)

    read = read_plan_file(_write(tmp_path, stream.getvalue()))

    assert read.source == str(tmp_path / "plan.json")
    assert read.generated_at == NOW
    assert (read.config_sha256, read.api_base_url) == (ORIGIN.config_sha256, ORIGIN.api_base_url)
    expected = [
        Reviewed(b.resource, b.id, b.server_id, b.name, b.created_at, b.size)
        for b in (d.backup for d in plan.deletions)
    ]
    assert list(read.deletions) == expected
    assert {d.resource for d in read.deletions} == {"backups", "snapshots"}


def test_read_plan_file_keeps_created_at_with_its_offset(tmp_path: Path) -> None:
    document = plan_to_json(_plan(), origin=ORIGIN)
    document["decisions"][-1]["created_at"] = "2026-11-20T05:30:00+02:00"
    document["decisions"][-1]["action"] = "delete"

    read = read_plan_file(_write(tmp_path, document))

    assert read.deletions[-1].created_at.utcoffset() == timezone(timedelta(hours=2)).utcoffset(None)


def test_read_plan_file_reads_the_last_plan_of_a_pass_and_a_plan_without_origin(
    tmp_path: Path,
) -> None:
    document = plan_to_json(_plan())
    document["run_id"] = "0123456789ab"
    document["execution"] = {"deleted": 0}
    for decision in document["decisions"]:
        if decision["action"] == "delete":
            decision["outcome"] = "not_attempted"

    read = read_plan_file(_write(tmp_path, document))

    assert (read.config_sha256, read.api_base_url) == (None, None)
    assert len(read.deletions) == len(_plan().deletions)


def test_read_plan_file_refuses_a_missing_file(tmp_path: Path) -> None:
    line = _refusal(tmp_path / "plan.json")

    assert "no such file" in line


def test_read_plan_file_refuses_a_truncated_plan(tmp_path: Path) -> None:
    stream = io.StringIO()
    write_plan_json(_plan(), stream, origin=ORIGIN)
    text = stream.getvalue()

    line = _refusal(_write(tmp_path, text[: len(text) // 2]))

    assert "not valid JSON" in line
    assert "pruner plan --format json" in line


@pytest.mark.parametrize(
    ("document", "says"),
    [
        ([1, 2], "not a pruner plan"),
        ({"backups": []}, "not a pruner plan"),
        ({"schema": "pruner.simulation/v1"}, "'pruner.simulation/v1'"),
    ],
)
def test_read_plan_file_refuses_what_is_not_a_plan(
    tmp_path: Path, document: object, says: str
) -> None:
    line = _refusal(_write(tmp_path, document))

    assert says in line
    assert "pruner plan --format json" in line


def _broken(change: dict[str, Any], index: int | None = None) -> dict[str, Any]:
    document = plan_to_json(_plan(), origin=ORIGIN)
    if index is None:
        document.update(change)
    else:
        document["decisions"][index].update(change)
    return document


def _first_deletion() -> int:
    actions = [d.action for d in _plan().decisions]
    return actions.index("delete")


@pytest.mark.parametrize(
    ("change", "on_a_deletion", "says"),
    [
        ({"generated_at": "2026-11-27T03:30:00"}, False, "generated_at: "),
        ({"generated_at": None}, False, "generated_at: "),
        ({"decisions": {"a": 1}}, False, "decisions: "),
        ({"config_sha256": "abc"}, False, "config_sha256: "),
        ({"api_base_url": 5}, False, "api_base_url: "),
        ({"action": "remove"}, True, "action: "),
        ({"created_at": "yesterday"}, True, "created_at: "),
        ({"created_at": "2026-11-27T03:30:00"}, True, "created_at: "),
        ({"id": "7"}, True, "id: "),
        ({"id": True}, True, "id: "),
        ({"server_id": None}, True, "server_id: "),
        ({"size": 1.5}, True, "size: "),
        ({"name": 3}, True, "name: "),
        ({"resource": "volumes"}, True, "resource: "),
    ],
)
def test_read_plan_file_names_the_field_that_is_wrong(
    tmp_path: Path, change: dict[str, Any], on_a_deletion: bool, says: str
) -> None:
    index = _first_deletion() if on_a_deletion else None

    line = _refusal(_write(tmp_path, _broken(change, index)))

    where = f"decisions[{index}].{says}" if on_a_deletion else says
    assert where in line


def test_read_plan_file_refuses_a_plan_that_deletes_a_backup_twice(tmp_path: Path) -> None:
    document = plan_to_json(_plan(), origin=ORIGIN)
    first = document["decisions"][_first_deletion()]
    document["decisions"].append(dict(first))

    line = _refusal(_write(tmp_path, document))

    assert f"backups id {first['id']}" in line
    assert "twice" in line
