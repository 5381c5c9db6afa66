"""What each command imports before it does anything: a probe or `--help` pays for no library it
does not use (a container probe has seconds, on a CPU-limited pod), and a pass only for those it
needs. Behaviour, not timing: the modules each command loads, seen by `python -X importtime`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("pydantic", "requests", "urllib3", "structlog", "yaml", "prometheus_client", "apscheduler")


def _imported(*args: str) -> set[str]:
    """The top-level packages that `python -X importtime ARGS` imported."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    assert result.returncode == 0, result.stderr[-500:]
    return {
        line.rsplit("|", 1)[-1].strip().split(".")[0]
        for line in result.stderr.splitlines()
        if line.startswith("import time:")
    }


@pytest.mark.parametrize(
    "command",
    [("--version",), ("--help",), ("plan", "--help"), ("run", "--help"), ("daemon", "--help")],
    ids=" ".join,
)
def test_version_and_help_import_no_library(command: tuple[str, ...]) -> None:
    imported = _imported("-m", "pruner", *command)

    assert "pruner" in imported
    assert sorted(imported.intersection(HEAVY)) == []


def test_a_pass_without_metrics_textfile_does_not_load_prometheus_client() -> None:
    # `pruner run` and `pruner apply` write metrics only to metrics.textfile, when it is set.
    imported = _imported("-c", "import pruner.actions.run, pruner.actions.apply")

    assert "requests" in imported  # the pass itself is loaded
    assert "prometheus_client" not in imported


@pytest.mark.parametrize(
    "command",
    [
        ("plan", "--listing", "{listing}", "--format", "json"),
        ("simulate", "--listing", "{listing}"),
        ("check-config",),
    ],
    ids=lambda command: command[0],
)
def test_commands_that_make_no_api_call_load_no_http_client(
    command: tuple[str, ...], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Planning or backtesting a saved listing, or checking a config offline, makes no API
    # call: they pay neither for requests nor for urllib3.
    config = tmp_path / "config.yaml"
    config.write_text(
        f"state_dir: {tmp_path}\npolicies:\n  - name: all\n    keep_last: 1\n", encoding="utf-8"
    )
    listing = tmp_path / "listing.json"
    listing.write_text('{"servers": [], "backups": []}', encoding="utf-8")
    monkeypatch.setenv("VPSBG_API_TOKEN", "a-token-for-the-preflight")
    arguments = [part.format(listing=listing) for part in command]

    imported = _imported("-m", "pruner", "--config", str(config), *arguments)

    assert "pydantic" in imported  # the config is read
    assert sorted(imported.intersection({"requests", "urllib3"})) == []
