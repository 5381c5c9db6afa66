"""Edges, end to end: odd but legal API data (a server without a hostname, backups dated in
the future) and the preflight (what `check-config`, `run` and `daemon` say before their first
request), as the CLI decides, says and exits with them.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from pruner.sim import Fleet, Simulator, generate_fleet

from .conftest import (
    CLI_TIMEOUT,
    E2E,
    E2E_WRITE_TOKEN,
    FLEET_DAYS,
    FLEET_SEED,
    FLEET_SERVERS,
    CliOutputs,
    _clean_environment,
)

pytestmark = pytest.mark.usefixtures("no_token_leaks")

RunCli = Callable[..., subprocess.CompletedProcess[str]]

# The fleet's own policies, in the order that matters here: a hostname policy, then a catch-all.
DB_THEN_EVERYTHING: list[dict[str, Any]] = [
    {"name": "db", "match": {"hostnames": ["db-*"]}, "keep_last": 10},
    {"name": "everything", "keep_last": 6},
]


def _deleted_servers(simulator: Simulator, before: dict[int, int]) -> set[int]:
    """Servers that lost backups since `before` (server id → backup count)."""
    after = _backup_counts(simulator)
    return {server for server, count in before.items() if after.get(server, 0) < count}


def _backup_counts(simulator: Simulator) -> dict[int, int]:
    counts: dict[int, int] = {}
    for item in simulator.backups():
        counts[item["server_id"]] = counts.get(item["server_id"], 0) + 1
    return counts


# --- a server without a hostname ------------------------------------------------------------


def _without_hostname(fleet: Fleet, server_id: int) -> Fleet:
    """The fleet with `server_id`'s hostname null and its backups carrying none (both optional
    in VPSBG's docs)."""
    servers = [
        {**server, "hostname": None} if server["id"] == server_id else server
        for server in fleet.servers
    ]
    backups = [
        {key: value for key, value in item.items() if key != "server_hostname"}
        if item["server_id"] == server_id
        else item
        for item in fleet.backups
    ]
    return dataclasses.replace(fleet, servers=servers, backups=backups)


@pytest.fixture
def nameless_db(simulator_now: datetime) -> Iterator[tuple[Simulator, int]]:
    """A simulator whose first db server has no hostname anywhere, and that server's id."""
    fleet = generate_fleet(
        now=simulator_now, servers=FLEET_SERVERS, days=FLEET_DAYS, seed=FLEET_SEED
    )
    server_id = min(
        s["id"] for s in fleet.servers if s["hostname"].startswith("db-") and not s["locked"]
    )
    tokens = {E2E_WRITE_TOKEN: "write"}
    with Simulator(_without_hostname(fleet, server_id), tokens=tokens) as running:
        yield running, server_id
    assert not running.errors, f"the simulator itself failed: {running.errors!r}"


def test_run_keeps_a_nameless_server_a_hostname_policy_comes_first_for_and_exits_1(
    nameless_db: tuple[Simulator, int],
    tmp_path: Path,
    write_config: Callable[..., Path],
    run_cli: RunCli,
) -> None:
    simulator, server_id = nameless_db
    config = write_config(
        tmp_path, simulator.base_url, policies=DB_THEN_EVERYTHING, safety={"stale_after": None}
    )
    before = _backup_counts(simulator)

    result = run_cli("--config", config, "run")

    assert result.returncode == 1, result.stderr
    assert server_id not in _deleted_servers(simulator, before)
    assert _deleted_servers(simulator, before)  # the other servers were pruned
    assert f"server {server_id}, backups: its hostname is unknown" in result.stderr
    last_plan = json.loads((tmp_path / "state" / "last-plan.json").read_text(encoding="utf-8"))
    [group] = [g for g in last_plan["groups"] if g["server_id"] == server_id]
    assert (group["status"], group["policy"], group["deleted"]) == ("incomplete", None, 0)


def test_plan_listing_of_a_nameless_server_exits_1_and_deletes_nothing(e2e: E2E) -> None:
    # The offline repro: a saved listing whose only server has hostname null.
    items = [
        {"id": n, "server_id": 1, "created_at": f"2026-11-{26 - n:02d}T03:00:00+00:00"}
        for n in range(1, 13)
    ]
    listing = e2e.tmp_path / "listing.json"
    listing.write_text(
        json.dumps({"servers": [{"id": 1, "hostname": None}], "backups": items}),
        encoding="utf-8",
    )
    config = e2e.config(policies=DB_THEN_EVERYTHING, safety={"stale_after": None})

    result = e2e.cli(
        "--config", config, "plan", "--listing", listing, "--format", "json",
        "--now", "2026-11-27T03:30:00Z",
    )  # fmt: skip

    assert result.returncode == 1, result.stderr
    document = json.loads(result.stdout)
    assert {d["action"] for d in document["decisions"]} == {"keep"}
    assert [(g["status"], g["policy"]) for g in document["groups"]] == [("incomplete", None)]
    assert "server 1, backups: its hostname is unknown" in result.stderr
    assert "policy 'db'" in result.stderr


# --- backups dated in the future ------------------------------------------------------------


def test_run_with_a_future_backup_warns_and_its_metrics_agree_on_staleness(e2e: E2E) -> None:
    stale = e2e.server(hostname="app-03")["id"]
    future = e2e.simulator.add_backup(stale, created_at=e2e.now + timedelta(days=3))
    textfile = e2e.tmp_path / "pruner.prom"
    config = e2e.config(metrics={"textfile": str(textfile), "per_server": True})

    result = e2e.cli("--config", config, "--log-format", "json", "run")

    assert result.returncode == 0, result.stderr
    warnings = [
        event["message"]
        for event in map(json.loads, result.stderr.splitlines())
        if event["event"] == "plan.problem" and "dated after now" in event["message"]
    ]
    assert len(warnings) == 1
    assert f"(id {future['id']})" in warnings[0]
    assert any(
        event["event"] == "backup.stale" and event["server_id"] == stale
        for event in map(json.loads, result.stderr.splitlines())
    )
    metrics = {
        (sample.name, sample.labels.get("resource"), sample.labels.get("server")): sample.value
        for family in text_string_to_metric_families(textfile.read_text(encoding="utf-8"))
        for sample in family.samples
    }
    assert metrics[("pruner_stale_servers", "backups", None)] == 1
    age = metrics[("pruner_newest_backup_age_seconds", "backups", str(stale))]
    assert age > timedelta(days=14).total_seconds()


# --- warnings that change nothing but should surprise no one ---------------------------------


def _events(stderr: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stderr.splitlines()]


def test_plan_listing_warns_once_with_a_count_of_naive_timestamps(e2e: E2E) -> None:
    items = [
        {
            "id": n,
            "server_id": 1,
            "server_hostname": "app-01",
            "created_at": f"2026-11-{26 - n:02d}T03:00:00",
        }
        for n in range(1, 9)
    ]
    listing = e2e.tmp_path / "naive.json"
    listing.write_text(json.dumps({"backups": items}), encoding="utf-8")
    config = e2e.config(safety={"stale_after": None})

    result = e2e.cli(
        "--config", config, "--log-format", "json", "plan", "--listing", listing,
        "--now", "2026-11-27T03:30:00Z",
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    naive = [
        event
        for event in _events(result.stderr)
        if event["event"] == "plan.problem" and "without a UTC offset" in event["message"]
    ]
    assert len(naive) == 1
    assert naive[0]["message"].startswith("8 backups have created_at without a UTC offset")
    assert naive[0]["level"] == "warning"


def test_run_against_an_empty_account_warns_and_exits_0(
    simulator_now: datetime,
    tmp_path: Path,
    write_config: Callable[..., Path],
    run_cli: RunCli,
) -> None:
    empty = Fleet(servers=[], backups=[], snapshots=[], now=simulator_now)
    with Simulator(empty, tokens={E2E_WRITE_TOKEN: "write"}) as running:
        config = write_config(tmp_path, running.base_url)
        result = run_cli("--config", config, "--log-format", "json", "run")
    assert not running.errors

    assert result.returncode == 0, result.stderr
    [warning] = [e for e in _events(result.stderr) if e["event"] == "plan.problem"]
    assert warning["message"] == (
        "the listing holds no backups or snapshots at all (0 servers listed): nothing to prune; "
        "if the account has some, check that the API key belongs to it"
    )


def test_check_config_warns_about_a_policy_that_keeps_only_the_floor(e2e: E2E) -> None:
    config = e2e.config(policies=[{"name": "floor-only", "keep_last": 0}])

    result = e2e.cli("--config", config, "--log-format", "json", "check-config")

    assert result.returncode == 0, result.stderr
    expected = (
        "policy 'floor-only': its keep rules select nothing (keep_last 0), so it keeps only the "
        "newest backup of each server"
    )
    assert f"  - {expected}" in result.stdout
    [warning] = [e for e in _events(result.stderr) if e["event"] == "config.warning"]
    assert warning["message"].startswith(expected)


# --- the preflight: what a pass needs before its first request -------------------------------


@pytest.fixture
def run_bound_by_modes(tmp_path: Path, cli_outputs: CliOutputs) -> RunCli:
    """`python -m pruner ARGS` that file modes bind: as root, without the capabilities that let
    root read and write any file (what a service's own user meets)."""
    prefix: list[str] = []
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("as root, this needs setpriv (util-linux) to drop CAP_DAC_OVERRIDE")
        prefix = [setpriv, "--bounding-set", "-dac_override,-dac_read_search"]

    def run(*args: object, env: dict[str, str | None] | None = None) -> Any:
        command = [*prefix, sys.executable, "-m", "pruner", *(str(arg) for arg in args)]
        result = subprocess.run(
            command,
            env=_clean_environment(env),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=CLI_TIMEOUT,
            check=False,
        )
        cli_outputs.record(command, result.stdout, result.stderr)
        return result

    return run


@pytest.mark.parametrize("command", ["check-config", "run", "daemon"])
def test_an_unreadable_credential_exits_2_naming_it_before_any_request(
    command: str, e2e: E2E, run_bound_by_modes: RunCli
) -> None:
    credentials = e2e.tmp_path / "credentials"
    credentials.mkdir()
    token = credentials / "vpsbg-token"
    token.write_text(E2E_WRITE_TOKEN + "\n", encoding="utf-8")
    token.chmod(0o000)  # e.g. LoadCredential= missing, or a secret mounted for another uid
    config = e2e.config(schedule={"interval": "1h"})

    result = run_bound_by_modes(
        "--config", config, command,
        env={"CREDENTIALS_DIRECTORY": str(credentials), "VPSBG_API_TOKEN": None},
    )  # fmt: skip

    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert (
        f"pruner: $CREDENTIALS_DIRECTORY/vpsbg-token ({token}) cannot be read (permission "
        "denied): the user pruner runs as"
    ) in result.stderr
    assert "LoadCredential=" in result.stderr
    assert e2e.simulator.request_count() == 0


def test_check_config_exits_2_for_a_state_dir_that_run_cannot_write(
    e2e: E2E, run_bound_by_modes: RunCli
) -> None:
    e2e.state_dir.mkdir(mode=0o555)
    config = e2e.config()

    checked = run_bound_by_modes("--config", config, "check-config")
    ran = run_bound_by_modes("--config", config, "run")

    assert checked.returncode == ran.returncode == 2, checked.stderr + ran.stderr
    assert f"pruner: state_dir {e2e.state_dir}: cannot be written by uid" in checked.stderr
    assert f"pruner: state_dir {e2e.state_dir}: " in ran.stderr
    assert e2e.simulator.request_count() == 0


def test_check_config_passes_when_run_can_start(e2e: E2E, run_bound_by_modes: RunCli) -> None:
    config = e2e.config()

    checked = run_bound_by_modes("--config", config, "check-config")

    assert checked.returncode == 0, checked.stderr
    assert (
        f"preflight: token found in $VPSBG_API_TOKEN; state_dir {e2e.state_dir} can be created"
    ) in checked.stdout
    assert not e2e.state_dir.exists()
    assert run_bound_by_modes("--config", config, "run").returncode == 0
