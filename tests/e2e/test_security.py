"""What must never happen, end to end: a token shown in any output, a Read key deleting, and a
bad config or a missing token contacting the API at all (exit 2 before any request)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pruner.sim import Faults, ScriptedResponse

from .conftest import E2E, leaked_fragment

pytestmark = pytest.mark.usefixtures("no_token_leaks")

REJECTED_TOKEN = "vpsbgX-9aB8cD7eF6gH5iJ4kL3mN2oP1qR0sT9uV8w"  # the simulator accepts no such key


def _shows(text: str, token: str) -> bool:
    return leaked_fragment(token, text) is not None


# --- keys -----------------------------------------------------------------------------------


def test_run_with_a_read_key_exits_1_and_deletes_nothing(e2e: E2E, read_token: str) -> None:
    config = e2e.config()

    result = e2e.cli("--config", config, "run", env={"VPSBG_API_TOKEN": read_token})

    assert result.returncode == 1, result.stderr
    assert e2e.simulator.deleted == []
    assert re.search(r"Read permission only|Write key", result.stderr), result.stderr


def test_run_with_a_rejected_token_exits_1_without_showing_it(e2e: E2E) -> None:
    config = e2e.config()

    result = e2e.cli(
        "--log-level", "debug", "--config", config, "run", env={"VPSBG_API_TOKEN": REJECTED_TOKEN}
    )

    assert result.returncode == 1, result.stderr  # the API was contacted: not a usage error
    assert e2e.simulator.request_count("DELETE") == 0
    assert "token" in result.stderr.lower()
    assert not _shows(result.stdout + result.stderr, REJECTED_TOKEN)


# --- the token never shows --------------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [["plan", "--format", "json"], ["run"]],
)
def test_commands_never_show_the_token_even_in_debug_logs(
    e2e: E2E, write_token: str, command: list[str]
) -> None:
    config = e2e.config()
    e2e.simulator.faults = Faults(
        error_rate=0.1, rate_limit_every=9, retry_after=0.01, garbage_rate=0.1
    )

    result = e2e.cli("--log-level", "debug", "--config", config, *command)

    assert result.returncode in (0, 1), result.stderr
    assert result.stderr  # there were logs to look at
    assert not _shows(result.stdout + result.stderr, write_token)


@pytest.mark.parametrize(("status", "path"), [(500, "/v1/servers"), (401, "/v1/backups")])
def test_an_api_answer_that_echoes_the_token_is_not_repeated(
    e2e: E2E, write_token: str, status: int, path: str
) -> None:
    config = e2e.config()
    echo = ScriptedResponse(status, {"message": f"bad request from Bearer {write_token}"})
    e2e.simulator.script("GET", path, *[echo] * 100)

    result = e2e.cli("--log-level", "debug", "--config", config, "run")

    assert result.returncode == 1, result.stderr
    assert e2e.simulator.request_count("DELETE") == 0
    assert not _shows(result.stdout + result.stderr, write_token)


def test_state_files_never_hold_the_token(e2e: E2E, write_token: str) -> None:
    config = e2e.config()

    result = e2e.cli("--config", config, "run")

    assert result.returncode == 0, result.stderr
    files = [path for path in e2e.state_dir.rglob("*") if path.is_file()]
    assert files
    for path in files:
        assert not _shows(path.read_bytes().decode(errors="replace"), write_token), path


# --- nothing is contacted before the config and the token are right (exit 2) ----------------

_VALID = """\
api:
  base_url: {base_url}
  retries: 3
  backoff: 0.01s
dry_run: false
state_dir: {state_dir}
safety:
  max_delete_fraction: 1.0
  max_deletions_per_run: null
policies:
  - name: all
    keep_daily: 7
"""

BAD_CONFIGS = {
    # case: (text replaced, replacement, what the message names)
    "unknown key": ("  max_delete_fraction: 1.0", "  max_delete_fractoin: 1.0", "fractoin"),
    "duplicate key": ("dry_run: false", "dry_run: false\ndry_run: true", "dry_run"),
    "octal-looking number": ("keep_daily: 7", "keep_daily: 010", "keep_daily"),
    "yaml 1.1 boolean": ("dry_run: false", "dry_run: on", "dry_run"),
    "bare m": ("keep_daily: 7", "keep_daily: 7\n    keep_within: 5m", "keep_within"),
    "bad cron": ("dry_run: false", 'dry_run: false\nschedule:\n  cron: "61 3 * * *"', "cron"),
    "yaml syntax": ("policies:", "policies: [", "config.yaml"),
}


def _bad_config(e2e: E2E, case: str) -> Path:
    old, new, _ = BAD_CONFIGS[case]
    text = _VALID.format(base_url=e2e.simulator.base_url, state_dir=e2e.state_dir)
    assert old in text
    path = e2e.tmp_path / "config.yaml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


def test_the_valid_base_of_the_bad_configs_works(e2e: E2E) -> None:
    path = e2e.tmp_path / "config.yaml"
    text = _VALID.format(base_url=e2e.simulator.base_url, state_dir=e2e.state_dir)
    path.write_text(text, encoding="utf-8")

    result = e2e.cli("--config", path, "run", "--dry-run")

    assert result.returncode == 0, result.stderr
    assert e2e.simulator.request_count() > 0


@pytest.mark.parametrize("case", BAD_CONFIGS)
def test_run_with_a_bad_config_exits_2_before_any_request(e2e: E2E, case: str) -> None:
    config = _bad_config(e2e, case)

    result = e2e.cli("--config", config, "run")

    assert result.returncode == 2, result.stderr
    assert e2e.simulator.request_count() == 0
    assert BAD_CONFIGS[case][2] in result.stderr
    if case != "yaml syntax":
        assert re.search(r"config\.yaml:\d+: ", result.stderr), result.stderr  # file:line


def test_plan_with_a_bad_config_exits_2_before_any_request(e2e: E2E) -> None:
    config = _bad_config(e2e, "duplicate key")

    result = e2e.cli("--config", config, "plan", "--format", "json")

    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert e2e.simulator.request_count() == 0


def test_run_with_a_missing_config_file_exits_2(e2e: E2E) -> None:
    result = e2e.cli("--config", e2e.tmp_path / "nowhere.yaml", "run")

    assert result.returncode == 2, result.stderr
    assert "nowhere.yaml" in result.stderr
    assert e2e.simulator.request_count() == 0


@pytest.mark.parametrize("command", [["run"], ["plan"]])
def test_a_missing_token_exits_2_before_any_request(e2e: E2E, command: list[str]) -> None:
    config = e2e.config()

    result = e2e.cli("--config", config, *command, env={"VPSBG_API_TOKEN": None})

    assert result.returncode == 2, result.stderr
    assert "VPSBG_API_TOKEN" in result.stderr
    assert e2e.simulator.request_count() == 0


def test_a_missing_token_file_exits_2_before_any_request(e2e: E2E) -> None:
    config = e2e.config(api={"token_file": str(e2e.tmp_path / "no-token")})

    result = e2e.cli("--config", config, "run")

    assert result.returncode == 2, result.stderr
    assert "no-token" in result.stderr
    assert e2e.simulator.request_count() == 0


def test_an_unusable_state_dir_exits_2_before_any_request(e2e: E2E) -> None:
    blocker = e2e.tmp_path / "a-file"
    blocker.write_text("not a directory\n", encoding="utf-8")
    config = e2e.config(state_dir=str(blocker / "state"))

    result = e2e.cli("--config", config, "run")

    assert result.returncode == 2, result.stderr
    assert "state" in result.stderr
    assert e2e.simulator.request_count() == 0
