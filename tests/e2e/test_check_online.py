"""`pruner check-config --online` against the simulated API: a table of findings on stdout; exit
0 with warnings, 1 when the API cannot be reached or refuses the key; never a DELETE."""

from __future__ import annotations

import re
import socket
import subprocess
from typing import Any

import pytest

from pruner.sim import ScriptedResponse

from .conftest import E2E

pytestmark = pytest.mark.usefixtures("no_token_leaks")

READ_OR_WRITE = (
    "a Read key cannot be told from a Write key without sending a DELETE; this check sends none"
)


def check(e2e: E2E, env: dict[str, str | None] | None = None, **overrides: Any) -> Any:
    config = e2e.config(**overrides)
    return e2e.cli("--config", config, "check-config", "--online", env=env)


def findings(stdout: str) -> dict[str, list[tuple[str, str]]]:
    """The table's rows by subject: (level, detail), in order."""
    table = stdout[stdout.index("LEVEL ") :].splitlines()[1:-1]
    rows: dict[str, list[tuple[str, str]]] = {}
    for row in table:
        found = re.fullmatch(r"(ok|warn|fail) +(.+?)  +(.*)", row)
        assert found, f"not a row of the table: {row!r}"
        rows.setdefault(found.group(2), []).append((found.group(1), found.group(3)))
    return rows


def no_delete(e2e: E2E, result: subprocess.CompletedProcess[str]) -> None:
    assert e2e.simulator.request_count("DELETE") == 0
    assert "Traceback" not in result.stderr


def test_check_online_with_a_write_key_lists_as_a_pass_and_finds_each_policy(e2e: E2E) -> None:
    result = check(e2e)

    assert result.returncode == 0, result.stderr
    rows = findings(result.stdout)
    assert rows["API"] == [("ok", f"{e2e.simulator.base_url} answered")]
    [(level, detail)] = rows["token"]
    assert (level, detail.split(" (")[0]) == ("ok", "accepted: $VPSBG_API_TOKEN")
    [(level, detail)] = rows["write access"]
    assert level == "warn"  # dry_run is false: passes delete, and only a DELETE would tell
    assert detail.endswith(READ_OR_WRITE)
    [(level, listed)] = rows["listing"]
    assert level == "ok"
    assert listed.startswith("8 servers, ")
    assert listed.endswith(" listed completely")
    assert [level for level, _ in rows["policy databases"]] == ["ok", "ok"]
    assert rows["policy databases"][0][1] == "governs 2 servers: db-01, db-02"
    # keep_weekly 8 needs 7 weeks, and the fleet holds 40 days
    [matching, history] = rows["policy web"]
    assert matching[0] == "ok"
    assert history[0] == "warn"
    assert "keep_weekly 8 needs 7 weeks of history" in history[1]
    assert "VPSBG deletes its automatic backups after 3 weeks" in history[1]
    assert result.stdout.splitlines()[-1].endswith(" warnings, 0 failures")
    no_delete(e2e, result)


def test_check_online_with_a_read_key_passes_and_says_it_cannot_tell(
    e2e: E2E, read_token: str
) -> None:
    result = check(e2e, env={"VPSBG_API_TOKEN": read_token}, dry_run=True)

    assert result.returncode == 0, result.stderr
    rows = findings(result.stdout)
    assert rows["token"][0][0] == "ok"
    [(level, detail)] = rows["write access"]
    assert level == "ok"  # a dry run needs no more than a Read key
    assert detail == f"not needed while dry_run is true (a Read key is enough); {READ_OR_WRITE}"
    assert [r.method for r in e2e.simulator.requests] == ["GET"] * len(e2e.simulator.requests)
    no_delete(e2e, result)


def test_check_online_a_refused_key_exits_1_saying_where_the_token_came_from(e2e: E2E) -> None:
    unknown = "vpsbgW-Zq8mR2nX5tL0pK7vB4cJ9hD1fG6sYaE3wQ"
    result = check(e2e, env={"VPSBG_API_TOKEN": unknown})

    assert result.returncode == 1
    rows = findings(result.stdout)
    assert rows["API"] == [("ok", f"{e2e.simulator.base_url} answered")]
    [(level, detail)] = rows["token"]
    assert level == "fail"
    assert detail.startswith("$VPSBG_API_TOKEN: ")
    assert "HTTP 401" in detail
    assert "listing" not in rows
    assert "HTTP 401" in result.stderr
    assert unknown[:12] not in result.stdout + result.stderr
    no_delete(e2e, result)


def test_check_online_a_key_without_access_exits_1(e2e: E2E) -> None:
    forbidden = ScriptedResponse(403, {"message": "This action is unauthorized."})
    e2e.simulator.script("GET", "/v1/servers", forbidden)

    result = check(e2e)

    assert result.returncode == 1
    [(level, detail)] = findings(result.stdout)["token"]
    assert level == "fail"
    assert "HTTP 403" in detail
    no_delete(e2e, result)


def test_check_online_an_api_that_does_not_answer_exits_1(e2e: E2E) -> None:
    with socket.socket() as sock:  # a port nobody listens on once it is closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]

    result = check(e2e, api={"base_url": f"http://127.0.0.1:{port}/v1"})

    assert result.returncode == 1
    [(level, detail)] = findings(result.stdout)["API"]
    assert level == "fail"
    assert "check api.base_url and the network" in detail
    assert "check api.base_url and the network" in result.stderr


def test_check_online_names_a_policy_that_matches_no_server(e2e: E2E) -> None:
    nothing = {"name": "staging", "match": {"hostnames": ["staging-*"]}, "keep_daily": 3}
    policies = [nothing, {"name": "everything-else", "keep_daily": 7}]

    result = check(e2e, policies=policies)

    assert result.returncode == 0, result.stderr
    [(level, detail)] = findings(result.stdout)["policy staging"]
    assert level == "warn"
    assert detail.startswith("matches none of the ")
    assert "check match.hostnames (staging-*)" in detail
    no_delete(e2e, result)


def test_check_online_a_listing_that_fails_is_a_failure(e2e: E2E) -> None:
    e2e.simulator.script("GET", "/v1/backups", *[ScriptedResponse(500)] * 2)

    result = check(e2e)

    assert result.returncode == 1
    rows = findings(result.stdout)
    assert rows["token"][0][0] == "ok"
    assert [level for level, _ in rows["listing"]] == ["fail"]
    assert "the backups listing is incomplete" in rows["listing"][0][1]
    no_delete(e2e, result)
