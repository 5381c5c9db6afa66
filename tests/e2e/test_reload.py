"""`pruner daemon` reloads on SIGHUP, against the simulated API: a valid config is used from the
next pass on, an invalid one (or a token that can no longer be read) leaves the daemon running
with what it had and says why, with file, line and key path. Passes come every 0.2 s (the
loaded interval is shortened, as in test_daemon); tests synchronise on the JSON log lines."""

from __future__ import annotations

import json
import re
import signal
import sys
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import E2E, E2E_READ_TOKEN, E2E_WRITE_TOKEN, CliOutputs, _clean_environment
from .test_daemon import _SHORT_INTERVAL_CLI, DaemonProcess

pytestmark = pytest.mark.usefixtures("no_token_leaks")

StartDaemon = Callable[[Path], DaemonProcess]


@pytest.fixture
def start_daemon(e2e: E2E, cli_outputs: CliOutputs) -> Iterator[StartDaemon]:
    """`pruner daemon` with passes every 0.2 s, its log lines as JSON."""
    started: list[DaemonProcess] = []

    def start(config: Path) -> DaemonProcess:
        arguments = ["--log-format", "json", "--config", str(config), "daemon"]
        command = [sys.executable, "-c", _SHORT_INTERVAL_CLI, "0.2", *arguments]
        process = DaemonProcess(command, _clean_environment(None), e2e.tmp_path, cli_outputs)
        started.append(process)
        return process

    yield start
    for process in started:  # before the simulator stops
        process.kill()


def configured(e2e: E2E, **overrides: Any) -> Path:
    """A dry-run config with metrics on a free port and a daily schedule (shortened)."""
    settings: dict[str, Any] = {
        "dry_run": True,
        "schedule": {"interval": "1d", "run_on_start": True},
        "metrics": {"listen": "127.0.0.1:0"},
    }
    return e2e.config(**(settings | overrides))


def rewrite(path: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    """Edit the config file in place, as an operator would before `systemctl reload`."""
    settings = yaml.safe_load(path.read_text(encoding="utf-8"))
    edit(settings)
    path.write_text(yaml.safe_dump(settings, sort_keys=False), encoding="utf-8")


def passes_between(
    daemon: DaemonProcess, event: str, until: str | None = None
) -> list[dict[str, Any]]:
    """The pass.start lines logged after the first `event` line (and before `until`)."""
    logged = [json.loads(line) for line in daemon.stderr.splitlines() if line.startswith("{")]
    names = [entry["event"] for entry in logged]
    start = names.index(event)
    end = names.index(until, start) if until is not None else len(logged)
    return [entry for entry in logged[start:end] if entry["event"] == "pass.start"]


def reload(daemon: DaemonProcess, outcome: str, count: int = 1) -> dict[str, Any]:
    """SIGHUP, as `systemctl reload` sends it, and the `count`-th `outcome` line it brings."""
    daemon.send(signal.SIGHUP)
    return daemon.wait_for(outcome, count)


def metric(daemon: DaemonProcess, name: str, **labels: str) -> float:
    url = daemon.wait_for("metrics.listen")["url"]
    text = urllib.request.urlopen(url, timeout=5).read().decode()
    shown = ",".join(f'{key}="{value}"' for key, value in labels.items())
    pattern = rf"^{name}{{{shown}}} (\S+)$" if labels else rf"^{name} (\S+)$"
    found = re.search(pattern, text, re.M)
    assert found, f"{name} {labels} not in:\n{text}"
    return float(found.group(1))


def test_reload_a_valid_config_is_used_from_the_next_pass_on(
    e2e: E2E, start_daemon: StartDaemon
) -> None:
    config = configured(e2e)
    daemon = start_daemon(config)
    daemon.wait_for("daemon.pass")
    assert e2e.simulator.request_count("DELETE") == 0

    rewrite(config, lambda settings: settings.update(dry_run=False))
    reloaded = reload(daemon, "config.reloaded")
    daemon.wait_for("pass.summary", len(daemon.events("pass.summary")) + 2)
    daemon.send(signal.SIGTERM)

    assert daemon.finish() == 0, daemon.stderr
    assert reloaded["changed"] == ["dry_run"]
    assert (reloaded["signal"], reloaded["credential_changed"], reloaded["dry_run"]) == (
        "SIGHUP",
        False,
        False,
    )
    after = passes_between(daemon, "config.reloaded")
    assert after
    assert all(entry["dry_run"] is False for entry in after)
    assert e2e.simulator.deleted  # the next pass deleted what the dry runs only planned
    assert daemon.events("daemon.stop")[0]["passes"] >= 2


def test_reload_an_invalid_config_keeps_the_daemon_and_its_config_and_says_where(
    e2e: E2E, start_daemon: StartDaemon
) -> None:
    config = configured(e2e)
    daemon = start_daemon(config)
    daemon.wait_for("daemon.pass")

    def typo(settings: dict[str, Any]) -> None:
        settings["dry_run"] = False  # would delete, if the rest were valid
        settings["policies"][1]["keep_daily"] = "fourteen"

    rewrite(config, typo)
    failed = reload(daemon, "config.reload_failed")
    passes = len(daemon.events("daemon.pass"))
    daemon.wait_for("daemon.pass", passes + 2)  # the daemon goes on passing, dry as before
    deletes_meanwhile = e2e.simulator.request_count("DELETE")
    failures = metric(daemon, "pruner_config_reloads_total", result="failed")
    took = metric(daemon, "pruner_config_last_reload_successful")
    rewrite(config, lambda settings: settings["policies"][1].update(keep_daily=14))
    fixed = reload(daemon, "config.reloaded")
    took_after = metric(daemon, "pruner_config_last_reload_successful")
    daemon.send(signal.SIGTERM)

    assert daemon.finish() == 0, daemon.stderr
    lines = config.read_text(encoding="utf-8").splitlines()
    [line] = [number for number, text in enumerate(lines, 1) if "keep_daily: 14" in text]
    assert failed["level"] == "error"
    assert failed["errors"] == [
        f"{config}:{line}: policies[1].keep_daily: must be an integer >= -1 (a count; -1 = "
        'unlimited), not the text "fourteen"'
    ]
    assert deletes_meanwhile == 0  # the invalid config never ran
    assert (failures, took, took_after) == (1, 0, 1)
    assert fixed["changed"] == ["dry_run"]
    meanwhile = passes_between(daemon, "config.reload_failed", "config.reloaded")
    assert meanwhile
    assert all(entry["dry_run"] is True for entry in meanwhile)


def test_reload_reads_the_token_again_and_keeps_the_old_one_when_it_cannot(
    e2e: E2E, start_daemon: StartDaemon
) -> None:
    token_file = e2e.tmp_path / "token"
    token_file.write_text(E2E_WRITE_TOKEN + "\n", encoding="utf-8")
    config = configured(e2e, api={"token_file": str(token_file)})
    daemon = start_daemon(config)
    daemon.wait_for("daemon.pass")

    token_file.write_text("", encoding="utf-8")
    emptied = reload(daemon, "config.reload_failed")
    token_file.write_text(E2E_READ_TOKEN + "\n", encoding="utf-8")
    rotated = reload(daemon, "config.reloaded")
    passes = len(daemon.events("daemon.pass"))
    after = daemon.wait_for("daemon.pass", passes + 2)  # a Read key lists: a dry run needs no more
    daemon.send(signal.SIGTERM)

    assert daemon.finish() == 0, daemon.stderr
    assert emptied["errors"] == [f"api.token_file {token_file} is empty: put the API token in it"]
    assert (rotated["changed"], rotated["credential_changed"]) == ([], True)
    assert after["outcome"] == "ok"
    assert [r for r in e2e.simulator.requests if r.method != "GET"] == []


def test_reload_a_changed_metrics_listen_waits_for_a_restart(
    e2e: E2E, start_daemon: StartDaemon
) -> None:
    config = configured(e2e)
    daemon = start_daemon(config)
    daemon.wait_for("daemon.start")  # SIGHUP is handled from here on
    url = daemon.wait_for("metrics.listen")["url"]

    rewrite(config, lambda settings: settings["metrics"].update(listen="127.0.0.1:1"))
    warned = reload(daemon, "config.restart_needed")
    reloaded = daemon.wait_for("config.reloaded")
    still = urllib.request.urlopen(url, timeout=5).status
    daemon.send(signal.SIGTERM)

    assert daemon.finish() == 0, daemon.stderr
    assert (warned["key"], warned["level"]) == ("metrics.listen", "warning")
    assert reloaded["changed"] == []
    assert still == 200


def test_reload_before_the_config_changes_is_harmless(e2e: E2E, start_daemon: StartDaemon) -> None:
    daemon = start_daemon(configured(e2e))
    daemon.wait_for("daemon.start")

    first = reload(daemon, "config.reloaded")
    second = reload(daemon, "config.reloaded", 2)
    daemon.send(signal.SIGTERM)

    assert daemon.finish() == 0, daemon.stderr
    assert first["changed"] == second["changed"] == []
