"""`pruner plan --format html` against the simulated API with a Read key: the audit page shows
every backup of the account once, with the action the engine decides, problems first."""

from __future__ import annotations

import pytest

from tests._html import marks, parse

from .conftest import E2E

pytestmark = pytest.mark.usefixtures("no_token_leaks")


def test_plan_html_with_a_read_key_shows_every_backup_as_the_engine_decides(
    e2e: E2E, read_token: str
) -> None:
    config = e2e.config()
    now = e2e.now.isoformat()

    result = e2e.cli(
        "--config",
        config,
        "plan",
        "--format",
        "html",
        "--now",
        now,
        env={"VPSBG_API_TOKEN": read_token},
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("<!DOCTYPE html>")  # clean: the logs went to stderr
    page = parse(result.stdout)
    expected = e2e.plan(config, e2e.now)
    decisions = {(f"{d.backup.resource}:{d.backup.id}", d.action) for d in expected.decisions}
    assert marks(page) == dict.fromkeys(decisions, 1)
    statuses = [e.attrs["data-status"] for e in page.tags("section") if "data-status" in e.attrs]
    assert sorted(statuses) == sorted(group.status for group in expected.groups)
    assert statuses == sorted(statuses, key=lambda status: status != "skipped")  # locked, stale
    assert {"skipped", "ok", "orphan"} <= set(statuses)
    assert e2e.simulator.request_count("DELETE") == 0
