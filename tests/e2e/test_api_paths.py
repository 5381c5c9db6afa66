"""`api.paths` against a simulated API whose DELETE endpoints moved: with the new paths in the
config a pass deletes its plan there; with the old ones it deletes nothing and fails visibly;
a path without `{id}` is refused before any request."""

from __future__ import annotations

import json
from typing import Any

import pytest

from .conftest import E2E

pytestmark = pytest.mark.usefixtures("no_token_leaks")

MOVED = {"backups": "/backups/{id}/delete", "snapshots": "/snapshot-trash/{id}"}


def _deletions(e2e: E2E) -> set[tuple[str, int]]:
    document: dict[str, Any] = json.loads((e2e.state_dir / "last-plan.json").read_text("utf-8"))
    return {(d["resource"], d["id"]) for d in document["decisions"] if d["action"] == "delete"}


def _move_deletes(e2e: E2E) -> None:
    for resource, template in MOVED.items():
        e2e.simulator.move_delete_path(resource, template)  # type: ignore[arg-type]


def test_run_deletes_at_the_configured_paths(e2e: E2E) -> None:
    _move_deletes(e2e)
    config = e2e.config(api={"paths": MOVED})

    result = e2e.cli("--config", config, "run")

    assert result.returncode == 0, result.stderr
    planned = _deletions(e2e)
    assert {resource for resource, _ in planned} == {"backups", "snapshots"}
    assert set(e2e.simulator.deleted) == planned
    sent = {r.path for r in e2e.simulator.requests if r.method == "DELETE"}
    assert sent == {"/v1" + MOVED[resource].replace("{id}", str(id)) for resource, id in planned}


def test_run_with_the_old_paths_deletes_nothing_and_fails(e2e: E2E) -> None:
    _move_deletes(e2e)
    config = e2e.config()

    result = e2e.cli("--config", config, "run")

    assert result.returncode == 1
    assert e2e.simulator.deleted == []
    assert e2e.simulator.request_count("DELETE") > 0
    assert "HTTP 405" in result.stdout + result.stderr


def test_check_config_refuses_a_path_without_its_id(e2e: E2E) -> None:
    config = e2e.config(api={"paths": {"backups": "/backups/delete"}})

    result = e2e.cli("--config", config, "check-config")

    assert result.returncode == 2
    assert f"{config}:" in result.stderr
    assert "api.paths.backups: must be a path starting with / and holding {id} once" in (
        result.stderr
    )
    assert e2e.simulator.requests == []
