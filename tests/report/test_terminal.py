"""The plan on a terminal (rich): it fits the width, colour only where the terminal has it, and
the demo fleet's default view fits about a screen per ten servers."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from rich.console import Console

from pruner.actions.demo import example_config_path, for_simulator
from pruner.config.load import parse_config
from pruner.engine.models import Listing, Plan
from pruner.engine.planner import build_plan
from pruner.report.table import render_table
from pruner.report.terminal import print_plan
from pruner.sim import generate_fleet
from pruner.vpsbg.listing import parse_backups, parse_servers

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
NOW = datetime(2026, 11, 27, 3, 30, tzinfo=UTC)


@pytest.fixture(scope="module")
def demo_plan() -> Plan:
    """The demo's fleet (30 servers, 90 days), planned with the example config's policies."""
    example = example_config_path()
    config = parse_config(example.read_text(encoding="utf-8"), source=str(example))
    config, _ = for_simulator(config, "http://127.0.0.1:1/v1", config.state_dir)
    fleet = generate_fleet(now=NOW, servers=30, days=90, seed=0)
    backups, _ = parse_backups(fleet.backups, "backups")
    snapshots, _ = parse_backups(fleet.snapshots, "snapshots")
    servers, _ = parse_servers(fleet.servers)
    listing = Listing(
        backups=(*backups, *snapshots),
        servers=tuple(servers),
        resources=frozenset({"backups", "snapshots"}),
    )
    return build_plan(
        listing,
        config.policies,
        now=NOW,
        generated_at=NOW,
        zone=config.timezone,
        max_deletions_per_run=None,
        dry_run=True,
    )


def _printed(plan: Plan, width: int, *, details: bool = False, **console: Any) -> str:
    stream = io.StringIO()
    options: dict[str, Any] = {"force_terminal": True, "color_system": "standard", **console}
    print_plan(plan, Console(file=stream, width=width, **options), details=details)
    return stream.getvalue()


@pytest.mark.parametrize("width", [80, 100, 160])
def test_the_plan_fits_the_terminal_width(demo_plan: Plan, width: int) -> None:
    for details in (False, True):
        text = _ANSI.sub("", _printed(demo_plan, width, details=details))
        assert max(len(line) for line in text.splitlines()) <= width


def test_the_default_view_is_a_line_per_server_and_fits_a_screen_per_ten(
    demo_plan: Plan,
) -> None:
    text = _ANSI.sub("", _printed(demo_plan, 100))
    lines = text.splitlines()

    assert len(lines) <= 24 * 3  # 30 servers: three screens of 24 lines at most
    assert sum(1 for line in lines if re.match(r"\S+\s+\d{4} ", line)) == 30
    assert "stale" in lines[5]  # what needs attention comes first


def test_details_show_full_names_that_tell_snapshots_apart(demo_plan: Plan) -> None:
    text = _ANSI.sub("", _printed(demo_plan, 200, details=True))
    names = [d.backup.name for d in demo_plan.decisions if d.backup.name]

    assert all(name in text for name in names[:50])
    assert "…" not in text


def test_colour_only_where_the_terminal_has_it(demo_plan: Plan) -> None:
    assert _ANSI.search(_printed(demo_plan, 100))
    assert not _ANSI.search(_printed(demo_plan, 100, no_color=True, color_system=None))


def test_the_terminal_and_the_plain_text_say_the_same_totals(demo_plan: Plan) -> None:
    plain = render_table(demo_plan).splitlines()
    rich = " ".join(_ANSI.sub("", _printed(demo_plan, 300)).split())
    totals = next(line for line in plain if line.startswith("Totals: "))

    assert totals in rich
