"""`pruner plan --format html` in-process: the audit page on stdout, the exit codes of any plan."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from pruner.cli import main
from pruner.config.digest import config_sha256
from pruner.config.load import load_config
from pruner.engine.planner import build_plan
from pruner.engine.reasons import texts
from pruner.vpsbg.listing import load_listing
from tests._factories import item
from tests._html import marks, parse

NOW = "2026-11-27T03:30:00Z"
CONFIG = """\
safety:
  stale_after: null
policies:
  - name: default
    keep_last: 2
    max_delete_fraction: 1.0
"""

pytestmark = pytest.mark.usefixtures("restore_logging")


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    return path


def _listing(tmp_path: Path, items: list[dict[str, Any]]) -> Path:
    path = tmp_path / "listing.json"
    path.write_text(json.dumps(items), encoding="utf-8")
    return path


def _items() -> list[dict[str, Any]]:
    return [item(n, created_at=f"2026-11-{10 + n:02d}T03:00:00+02:00") for n in range(1, 7)]


def test_plan_html_writes_the_page_with_every_decision_of_the_plan(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    listing = _listing(tmp_path, _items())
    argv = ["--config", str(config), "plan", "--listing", str(listing), "--now", NOW]

    assert main([*argv, "--format", "html"]) == 0

    page = parse(capsys.readouterr().out)
    plan = build_plan(
        load_listing(listing),
        load_config(config).policies,
        now=datetime(2026, 11, 27, 3, 30, tzinfo=UTC),
        generated_at=datetime.now(UTC),
        zone=None,
        max_deletions_per_run=None,
        dry_run=True,
    )
    expected = {(f"backups:{d.backup.id}", d.action) for d in plan.decisions}
    assert marks(page) == dict.fromkeys(expected, 1)
    assert {action for _, action in expected} == {"keep", "delete"}
    reasons = {
        m.attrs["data-backup"]: m.attrs["title"].splitlines()[3] for m in page.having("title")
    }
    assert reasons["backups:6"] == ", ".join(texts(plan.decisions[0].reasons))


def test_plan_html_names_the_config_and_the_api_it_was_made_with(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    listing = _listing(tmp_path, _items())

    assert (
        main(["--config", str(config), "plan", "--listing", str(listing), "--format", "html"]) == 0
    )

    text = capsys.readouterr().out
    assert config_sha256(load_config(config)) in text
    assert "https://api.vpsbg.eu/v1" in text


def test_plan_html_of_an_incomplete_listing_exits_1_and_says_so_on_the_page(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    listing = _listing(tmp_path, [*_items(), item(9, created_at="whenever")])
    argv = ["--config", str(config), "plan", "--listing", str(listing), "--format", "html"]

    assert main(argv) == 1

    page = parse(capsys.readouterr().out)
    sections = [e for e in page.tags("section") if "data-status" in e.attrs]
    assert [e.attrs["data-status"] for e in sections] == ["incomplete"]
    assert {action for _, action in marks(page)} == {"keep"}
    assert any(e.text.startswith("Incomplete") for e in page.tags("p"))
