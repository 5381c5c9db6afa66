"""`pruner simulate` against the simulated API: a Read key is enough, nothing is deleted, and a
saved listing of the same account gives the same backtest as the live one."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from datetime import timedelta

import pytest

from .conftest import E2E

pytestmark = pytest.mark.usefixtures("no_token_leaks")


def test_simulate_live_with_a_read_key_backtests_every_governed_server(
    e2e: E2E, read_token: str
) -> None:
    config = e2e.config()
    picture = e2e.tmp_path / "backtest.svg"
    now = e2e.now + timedelta(hours=1)

    options = ("--now", now.isoformat(), "--days", "30", "--format", "json", "--svg", picture)

    result = e2e.cli("--config", config, "simulate", *options, env={"VPSBG_API_TOKEN": read_token})

    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)  # clean: nothing but the backtest on stdout
    assert document["schema"] == "pruner.simulation/v1"
    governed = {
        (g.resource, g.server_id, g.policy)
        for g in e2e.plan(config, now).groups
        if g.policy is not None and g.status != "incomplete"
    }
    simulated = {(s["resource"], s["server_id"], s["policy"]) for s in document["servers"]}
    assert simulated == governed
    assert all(len(s["timeline"]) == 31 for s in document["servers"])
    rows = [
        g
        for g in ET.parse(picture).getroot().iter("{http://www.w3.org/2000/svg}g")
        if g.get("class") == "server"
    ]
    assert len(rows) == len(document["servers"])
    assert e2e.simulator.request_count("DELETE") == 0
    assert not e2e.state_dir.exists()


def test_simulate_on_a_saved_listing_matches_the_live_backtest(e2e: E2E) -> None:
    config = e2e.config()
    now = (e2e.now + timedelta(hours=1)).isoformat()
    statuses = {"active", "suspended", "terminated"}  # what GET /servers?filter[status]=all lists
    saved = e2e.tmp_path / "listing.json"
    saved.write_text(
        json.dumps(
            {
                "backups": e2e.simulator.backups("backups"),
                "snapshots": e2e.simulator.backups("snapshots"),
                "servers": [s for s in e2e.simulator.servers() if s.get("status") in statuses],
            }
        ),
        encoding="utf-8",
    )
    args = ("--config", config, "simulate", "--now", now, "--days", "20", "--format", "json")

    offline = e2e.cli(*args, "--listing", saved)
    live = e2e.cli(*args)

    assert offline.returncode == live.returncode == 0, offline.stderr + live.stderr
    assert json.loads(offline.stdout) == json.loads(live.stdout)
    assert json.loads(offline.stdout)["servers"]


def test_simulate_table_names_every_simulated_server(e2e: E2E) -> None:
    config = e2e.config()

    result = e2e.cli("--config", config, "simulate", "--days", "10")

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Backtest from ")
    for server in e2e.simulator.servers():
        if server.get("status") != "deleted":
            assert f" {server['hostname']} " in result.stdout
