"""`pruner plan`, in process: what it reads and what it never writes."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from pruner.cli import main
from tests._factories import item

pytestmark = pytest.mark.usefixtures("restore_logging")

NOW = datetime.fromisoformat("2026-11-27T03:30:00+00:00")


def _config(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(
        f"state_dir: {tmp_path / 'state'}\n"
        "safety:\n  stale_after: null\n  confirm_after: 12h\n"
        f"policies:\n  - name: default\n    keep_last: 2\n{extra}",
        encoding="utf-8",
    )
    return path


def _listing(tmp_path: Path) -> Path:
    path = tmp_path / "listing.json"
    items = [item(n, created_at=f"2026-11-{20 + n:02d}T03:00:00+03:00") for n in range(1, 5)]
    path.write_text(json.dumps(items), encoding="utf-8")
    return path


def test_plan_of_a_listing_shows_what_waits_for_confirmation_and_writes_no_state(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "state"
    state.mkdir()
    confirmed = (NOW - timedelta(hours=12)).isoformat()
    pending = {
        "schema": "pruner.pending/v1",
        "entries": [{"resource": "backups", "id": 1, "server_id": 2478, "first_seen": confirmed}],
    }
    (state / "pending.json").write_text(json.dumps(pending), encoding="utf-8")
    before = sorted(p.name for p in state.iterdir())
    argv = ["--config", str(_config(tmp_path)), "plan", "--listing", str(_listing(tmp_path))]

    assert main([*argv, "--format", "json", "--now", NOW.isoformat()]) == 0

    plan = json.loads(capsys.readouterr().out)
    decisions = {d["id"]: (d["action"], d["reasons"]) for d in plan["decisions"]}
    assert decisions[1] == ("delete", ["not_selected"])
    assert decisions[2] == ("keep", [f"pending:{NOW.isoformat()}", "not_selected"])
    assert plan["summary"]["pending"] == 1
    assert sorted(p.name for p in state.iterdir()) == before
    assert json.loads((state / "pending.json").read_text(encoding="utf-8")) == pending
