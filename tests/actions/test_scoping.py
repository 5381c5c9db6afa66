"""`--server` and `--policy`: parsed once into a Scope, refused before any request when wrong."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from pruner.actions.scoping import scope_of
from pruner.cli import main
from pruner.config.load import parse_config
from pruner.engine.scope import Scope
from pruner.errors import EXIT_USAGE, UserError
from tests._factories import item

pytestmark = pytest.mark.usefixtures("restore_logging")

CONFIG = """\
safety:
  stale_after: null
policies:
  - name: databases
    match: {hostnames: ["db-*"]}
    keep_last: 1
  - name: snapshots
    resource: snapshots
    keep_last: 1
  - name: default
    keep_last: 2
"""


def _args(servers: list[str] | None = None, policy: str | None = None) -> argparse.Namespace:
    return argparse.Namespace(servers=servers, policy=policy)


def test_scope_of_no_option_is_an_unscoped_pass() -> None:
    assert scope_of(_args(), parse_config(CONFIG)) is None


def test_scope_of_the_options_is_their_scope() -> None:
    scope = scope_of(_args(["2478", "db-*"], "databases"), parse_config(CONFIG))
    assert scope == Scope(("2478", "db-*"), "databases")


def test_scope_of_an_unknown_policy_is_a_usage_error_naming_the_policies() -> None:
    with pytest.raises(UserError) as raised:
        scope_of(_args(policy="databse"), parse_config(CONFIG))
    assert raised.value.exit_code == EXIT_USAGE
    assert raised.value.lines == (
        "--policy databse: the config has no such policy; its policies are: databases, "
        "snapshots, default",
    )


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    config = tmp_path / "config.yaml"
    config.write_text(f"state_dir: {tmp_path / 'state'}\n{CONFIG}", encoding="utf-8")
    listing = tmp_path / "listing.json"
    items = [
        item(n, server_id, server_hostname=hostname, created_at=f"2026-11-2{n}T03:00:00+03:00")
        for server_id, hostname in ((1, "db-01"), (2, "web-01"), (3, "web-02"))
        for n in range(1, 4)
    ]
    for number, entry in enumerate(items):
        entry["id"] = number + 1
    listing.write_text(json.dumps(items), encoding="utf-8")
    return config, listing


@pytest.mark.parametrize(
    ("options", "servers"),
    [
        (["--server", "2"], [2]),
        (["--server", "web-*"], [2, 3]),
        (["--server", "1", "--server", "web-02"], [1, 3]),
        (["--policy", "default"], [2, 3]),
        (["--server", "web-01", "--policy", "default"], [2]),
    ],
)
def test_plan_decides_the_servers_in_scope_alone(
    files: tuple[Path, Path],
    capsys: pytest.CaptureFixture[str],
    options: list[str],
    servers: list[int],
) -> None:
    config, listing = files
    argv = ["--config", str(config), "plan", "--listing", str(listing), "--format", "json"]

    assert main([*argv, *options]) == 0

    plan = json.loads(capsys.readouterr().out)
    assert [g["server_id"] for g in plan["groups"]] == servers
    assert plan["scope"] is not None


def test_plan_with_a_server_no_listed_server_answers_to_says_so(
    files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    config, listing = files

    assert (
        main(["--config", str(config), "plan", "--listing", str(listing), "--server", "wbe-*"]) == 0
    )

    out = capsys.readouterr().out
    assert "Scoped to servers wbe-*: no other server was planned" in out
    assert "--server wbe-* matches no listed server" in out


def test_plan_with_an_unknown_policy_exits_2_before_reading_the_listing(
    files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    config, _ = files

    code = main(["--config", str(config), "plan", "--listing", "/nonexistent", "--policy", "x"])

    assert code == 2
    assert "pruner: --policy x: the config has no such policy" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["run", "plan"])
def test_an_empty_server_is_a_usage_error(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([command, "--server", ""]) == 2
    assert "--server: give a server id or a hostname glob" in capsys.readouterr().err
