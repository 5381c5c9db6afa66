"""The verdicts of `.ci/engines_sim.py`, which the real-engine checks rest on: a comparison or a
leak check that always passed would let those checks pass whatever the engine did."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
HELPER = ROOT / ".ci" / "engines_sim.py"
TOKEN = "vpsbg-Zq7Xw2Lm9Pr4Tk8Vn3Bc6Hd1Jf5"


def helper(*args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(HELPER), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def decision(item_id: int, action: str, **extra: Any) -> dict[str, Any]:
    return {"resource": "backups", "id": item_id, "action": action, **extra}


def write(path: Path, document: object) -> Path:
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def plan(tmp_path: Path) -> Path:
    decisions = [decision(1, "delete"), decision(2, "keep"), decision(3, "delete")]
    return write(tmp_path / "plan.json", {"decisions": decisions})


def test_compare_passes_when_the_api_deleted_exactly_the_plan(tmp_path: Path) -> None:
    deleted = write(tmp_path / "deleted.json", ["backups:1", "backups:3"])
    result = helper("compare", plan(tmp_path), deleted)
    assert result.returncode == 0, result.stdout
    assert result.stdout == "2 deletions (2 backups), exactly the plan's\n"


def test_compare_fails_on_a_missing_or_an_extra_deletion(tmp_path: Path) -> None:
    deleted = write(tmp_path / "deleted.json", ["backups:1", "backups:2"])
    result = helper("compare", plan(tmp_path), deleted)
    assert result.returncode == 1
    assert "lacks 1 of the plan's deletions: backups:3" in result.stdout
    assert "1 deletions not in the plan: backups:2" in result.stdout


def test_compare_fails_when_the_pass_did_not_record_a_deletion_as_done(tmp_path: Path) -> None:
    deleted = write(tmp_path / "deleted.json", ["backups:1", "backups:3"])
    recorded = [decision(1, "delete", outcome="deleted"), decision(3, "delete", outcome="failed")]
    last_plan = write(tmp_path / "last-plan.json", {"decisions": recorded})
    result = helper("compare", plan(tmp_path), deleted, last_plan)
    assert result.returncode == 1
    assert "the pass's last-plan.json lacks 1 of the plan's deletions: backups:3" in result.stdout


def test_compare_fails_when_the_plan_deletes_nothing(tmp_path: Path) -> None:
    empty = write(tmp_path / "plan.json", {"decisions": [decision(1, "keep")]})
    result = helper("compare", empty, write(tmp_path / "deleted.json", []))
    assert result.returncode == 1
    assert "the plan deletes nothing" in result.stdout


def test_leaks_finds_a_recognisable_part_of_the_token(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text(TOKEN + "\n", encoding="utf-8")
    clean = tmp_path / "clean.log"
    clean.write_text("Authorization: Bearer ****\n", encoding="utf-8")
    leaky = tmp_path / "leaky.log"
    leaky.write_text(f"token={TOKEN[5:17]}\n", encoding="utf-8")
    assert helper("leaks", token, clean).returncode == 0
    result = helper("leaks", token, clean, leaky)
    assert result.returncode == 1
    assert str(leaky) in result.stdout
