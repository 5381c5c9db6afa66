"""`pruner apply` against the simulated API, as an operator runs it: plan, review (edit the file),
apply. It deletes exactly the reviewed deletions, skips what vanished or changed, refuses with 4
a plan too old, made under another config or deleting what the policy keeps now, exits 2 on a
file that is not a plan and 75 while another pass runs, and sends no DELETE in a dry run."""

from __future__ import annotations

import json
import urllib.request
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from pruner.passes.lock import PassLock
from pruner.sim import WRITE_TOKEN

from .conftest import E2E

pytestmark = pytest.mark.usefixtures("no_token_leaks")

Item = tuple[str, int]
Document = dict[str, Any]

SCHEMA = json.loads(
    (Path(__file__).resolve().parents[2] / "docs" / "plan.schema.json").read_text("utf-8")
)


def _plan(e2e: E2E, config: Path, *args: object) -> Document:
    shown = e2e.cli("--config", config, "plan", "--format", "json", *args)
    assert shown.returncode == 0, shown.stderr
    document: Document = json.loads(shown.stdout)
    return document


def _save(e2e: E2E, document: Document | str, name: str = "plan.json") -> Path:
    path = e2e.tmp_path / name
    path.write_text(document if isinstance(document, str) else json.dumps(document), "utf-8")
    return path


def _deletions(document: Document) -> list[Document]:
    return [d for d in document["decisions"] if d["action"] == "delete"]


def _items(decisions: list[Document]) -> set[Item]:
    return {(d["resource"], d["id"]) for d in decisions}


def _last_plan(e2e: E2E) -> Document:
    document: Document = json.loads((e2e.state_dir / "last-plan.json").read_text("utf-8"))
    return document


def test_apply_deletes_exactly_the_reviewed_plan_and_nothing_the_second_time(e2e: E2E) -> None:
    config = e2e.config()
    document = _plan(e2e, config)
    for struck in _deletions(document)[1::3]:  # the reviewer keeps every third
        struck["action"] = "keep"
    reviewed = _items(_deletions(document))
    plan = _save(e2e, document)

    first = e2e.cli("--config", config, "apply", plan)
    deletes = e2e.simulator.request_count("DELETE")
    second = e2e.cli("--config", config, "apply", plan)

    assert first.returncode == 0, first.stderr
    assert set(e2e.simulator.deleted) == reviewed
    assert len(e2e.simulator.deleted) == deletes == len(reviewed)
    last = _last_plan(e2e)  # of the second apply: every reviewed backup has vanished
    jsonschema.validate(last, SCHEMA, cls=jsonschema.Draft202012Validator)
    assert second.returncode == 0, second.stderr
    assert e2e.simulator.request_count("DELETE") == deletes
    assert _deletions(last) == []
    assert f"{len(reviewed)} deletions; 0 carried out, {len(reviewed)} skipped" in second.stdout


def test_apply_of_a_plan_made_on_a_saved_listing(e2e: E2E) -> None:
    config = e2e.config()
    simulator = e2e.simulator
    saved = {
        "backups": simulator.backups(),
        "snapshots": simulator.backups("snapshots"),
        "servers": [s for s in simulator.servers() if s["status"] != "deleted"],
    }
    listing = e2e.tmp_path / "listing.json"
    listing.write_text(json.dumps(saved), "utf-8")
    document = _plan(e2e, config, "--listing", listing)
    assert simulator.request_count() == 0

    applied = e2e.cli("--config", config, "apply", _save(e2e, document))

    assert applied.returncode == 0, applied.stderr
    assert set(simulator.deleted) == _items(_deletions(document))


def test_apply_skips_what_vanished_or_changed_since_the_plan(e2e: E2E) -> None:
    config = e2e.config()
    document = _plan(e2e, config)
    vanished, changed, *rest = _deletions(document)
    request = urllib.request.Request(  # someone deletes one in the meantime
        f"{e2e.simulator.base_url}/{vanished['resource']}/{vanished['id']}",
        method="DELETE",
        headers={"Authorization": f"Bearer {WRITE_TOKEN}", "Accept": "application/json"},
    )
    urllib.request.urlopen(request, timeout=5).close()
    changed["created_at"] = "2001-01-01T00:00:00+00:00"  # the plan saw another backup

    result = e2e.cli("--config", config, "apply", _save(e2e, document))

    assert result.returncode == 0, result.stderr
    assert set(e2e.simulator.deleted) == {(vanished["resource"], vanished["id"])} | _items(rest)
    assert f"vanished: {vanished['resource']} id {vanished['id']}" in result.stdout
    assert f"changed: {changed['resource']} id {changed['id']}" in result.stdout


def test_apply_refuses_a_stale_plan_and_one_of_another_config_with_exit_4(e2e: E2E) -> None:
    config = e2e.config()
    document = _plan(e2e, config)
    made = datetime.fromisoformat(document["generated_at"])
    old = dict(document, generated_at=(made - timedelta(days=2)).isoformat())
    other = e2e.config(safety={"min_keep": 2})
    requests = e2e.simulator.request_count()

    too_old = e2e.cli("--config", config, "apply", _save(e2e, old, "old.json"))
    changed = e2e.cli("--config", other, "apply", _save(e2e, document))

    assert (too_old.returncode, changed.returncode) == (4, 4)
    assert "--max-age 24h" in too_old.stdout
    assert "another config" in changed.stdout
    assert e2e.simulator.request_count() == requests  # both refused before listing
    assert _last_plan(e2e)["problems"][0]["message"].startswith("apply refused")


def test_apply_refuses_what_the_policy_keeps_and_force_never_deletes_protected(
    e2e: E2E,
) -> None:
    config = e2e.config()
    document = _plan(e2e, config)
    protected = next(d for d in document["decisions"] if d["reasons"][0].startswith("protected"))
    protected["action"] = "delete"  # a reviewer's slip
    plan = _save(e2e, document)

    refused = e2e.cli("--config", config, "apply", plan)
    forced = e2e.cli("--config", config, "apply", plan, "--force")

    assert refused.returncode == 4
    assert f"id {protected['id']}" in refused.stdout
    assert forced.returncode == 0, forced.stderr
    assert (protected["resource"], protected["id"]) not in set(e2e.simulator.deleted)
    assert set(e2e.simulator.deleted) == _items(_deletions(document)) - {
        (protected["resource"], protected["id"])
    }
    assert "protected" in forced.stdout


@pytest.mark.parametrize("text", ['{"schema": "pruner.plan/v1", "deci', '{"schema": "other/v1"}'])
def test_apply_exits_2_on_a_file_that_is_not_a_plan(e2e: E2E, text: str) -> None:
    result = e2e.cli("--config", e2e.config(), "apply", _save(e2e, text))

    assert result.returncode == 2
    assert e2e.simulator.request_count() == 0
    assert "plan.json" in result.stderr
    assert "Traceback" not in result.stderr


def test_apply_dry_run_sends_no_delete(e2e: E2E) -> None:
    config = e2e.config()
    document = _plan(e2e, config)

    result = e2e.cli("--config", config, "apply", _save(e2e, document), "--dry-run")

    assert result.returncode == 0, result.stderr
    assert e2e.simulator.request_count("DELETE") == 0
    assert "DRY RUN" in result.stdout
    count = len(_deletions(document))
    assert f"{count} deletions; {count} would be deleted" in result.stdout


def test_apply_exits_75_while_another_pass_holds_the_lock(e2e: E2E) -> None:
    config = e2e.config()
    plan = _save(e2e, _plan(e2e, config))
    requests = e2e.simulator.request_count()

    with PassLock(e2e.state_dir):
        result = e2e.cli("--config", config, "apply", plan)

    assert result.returncode == 75
    assert e2e.simulator.request_count() == requests
    assert "holds the lock" in result.stderr


def test_apply_scoped_by_glob_deletes_the_reviewed_deletions_of_those_servers_alone(
    e2e: E2E,
) -> None:
    config = e2e.config()
    document = _plan(e2e, config)
    databases = {s["id"] for s in e2e.simulator.servers() if s["hostname"].startswith("db-")}
    ours = _items([d for d in _deletions(document) if d["server_id"] in databases])
    theirs = _items(_deletions(document)) - ours
    assert ours
    assert theirs

    result = e2e.cli("--config", config, "apply", _save(e2e, document), "--server", "db-*")

    assert result.returncode == 0, result.stderr
    assert set(e2e.simulator.deleted) == ours
    assert f"{len(theirs)} out of scope" in result.stdout
    last = _last_plan(e2e)
    jsonschema.validate(last, SCHEMA, cls=jsonschema.Draft202012Validator)
    assert last["scope"] == {"servers": ["db-*"], "policy": None}
    assert {group["server_id"] for group in last["groups"]} == databases
