"""Metrics from the real CLI against the simulated API: scraped over HTTP from a running
`pruner daemon`, and read from the textfile a one-shot `pruner run` writes. Values, not names.
Synchronised on the daemon's JSON log lines, never on sleeps."""

from __future__ import annotations

import signal
import sys
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from .conftest import E2E, CliOutputs, _clean_environment
from .test_daemon import DaemonProcess

pytestmark = pytest.mark.usefixtures("no_token_leaks")

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


StartDaemon = Callable[[Path], DaemonProcess]


@pytest.fixture
def start_daemon(e2e: E2E, cli_outputs: CliOutputs) -> Iterator[StartDaemon]:
    """`pruner daemon` with this config in a subprocess, its JSON log lines read as they come."""
    started: list[DaemonProcess] = []

    def start(config: Path) -> DaemonProcess:
        command = [sys.executable, "-m", "pruner", "--log-format", "json"]
        command += ["--config", str(config), "daemon"]
        process = DaemonProcess(command, _clean_environment(None), e2e.tmp_path, cli_outputs)
        started.append(process)
        return process

    yield start
    for process in started:  # before the simulator stops
        process.kill()


def samples(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(found: Samples, name: str, **labels: str) -> float:
    return found[(name, frozenset(labels.items()))]


def scrape(url: str) -> Samples:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=10) as response:
        assert response.status == 200
        return samples(response.read().decode("utf-8"))


def deleted(e2e: E2E, resource: str) -> int:
    return sum(1 for kind, _ in e2e.simulator.deleted if kind == resource)


def test_daemon_serves_metrics_of_its_pass_over_http(e2e: E2E, start_daemon: StartDaemon) -> None:
    config = e2e.config(
        schedule={"interval": "1h", "run_on_start": True},
        metrics={"listen": "127.0.0.1:0"},
    )
    before = datetime.now(UTC)

    daemon = start_daemon(config)
    listening = daemon.wait_for("metrics.listen")
    passed = daemon.wait_for("daemon.pass")
    found = scrape(listening["url"])
    daemon.send(signal.SIGTERM)
    code = daemon.finish()

    assert code == 0, daemon.stderr
    assert listening["host"] == "127.0.0.1"
    assert listening["port"] > 0
    assert listening["url"] == f"http://127.0.0.1:{listening['port']}/metrics"
    assert passed["outcome"] == "ok"
    assert deleted(e2e, "backups") > 0
    for resource in ("backups", "snapshots"):
        assert value(found, "pruner_deleted_total", resource=resource) == deleted(e2e, resource)
        assert value(found, "pruner_backups", resource=resource, state="deleted") == deleted(
            e2e, resource
        )
    assert value(found, "pruner_runs_total", result="ok") == 1
    assert value(found, "pruner_runs_total", result="incomplete") == 0
    requests = e2e.simulator.request_count()
    counted = sum(n for (name, _), n in found.items() if name == "pruner_api_requests_total")
    assert counted == requests
    assert value(found, "pruner_api_requests_total", method="DELETE", code="204") == len(
        e2e.simulator.deleted
    )
    last_success = value(found, "pruner_last_success_timestamp_seconds")
    assert before.timestamp() <= last_success <= datetime.now(UTC).timestamp()
    assert value(found, "pruner_run_duration_seconds") == passed["duration"]
    assert value(found, "pruner_stale_servers", resource="backups") == 1  # the fleet's stale one
    assert value(found, "pruner_guard_trips_total", guard="stale") == 1
    assert any(name == "process_resident_memory_bytes" for name, _ in found)


def test_daemon_exits_2_when_the_metrics_port_is_taken(e2e: E2E, start_daemon: StartDaemon) -> None:
    first = start_daemon(e2e.config(schedule={"interval": "1h"}, metrics={"listen": "127.0.0.1:0"}))
    port = first.wait_for("metrics.listen")["port"]
    taken = e2e.config(
        schedule={"interval": "1h"},
        metrics={"listen": f"127.0.0.1:{port}"},
        state_dir=str(e2e.tmp_path / "other-state"),
    )

    result = e2e.cli("--config", taken, "daemon")
    first.send(signal.SIGTERM)

    assert first.finish() == 0
    assert result.returncode == 2, result.stderr
    assert f"metrics.listen: cannot listen on 127.0.0.1:{port}" in result.stderr
    assert e2e.simulator.request_count() == 0


def test_run_writes_the_textfile_after_its_pass(e2e: E2E) -> None:
    textfile = e2e.tmp_path / "textfile" / "pruner.prom"
    textfile.parent.mkdir()
    config = e2e.config(metrics={"textfile": str(textfile), "per_server": True})
    before = datetime.now(UTC)

    result = e2e.cli("--config", config, "run")

    assert result.returncode == 0, result.stderr
    found = samples(textfile.read_text(encoding="utf-8"))
    for resource in ("backups", "snapshots"):
        assert value(found, "pruner_deleted_total", resource=resource) == deleted(e2e, resource)
    assert value(found, "pruner_runs_total", result="ok") == 1
    last_run = value(found, "pruner_last_run_timestamp_seconds")
    assert before.timestamp() <= last_run <= datetime.now(UTC).timestamp()
    assert value(found, "pruner_last_success_timestamp_seconds") == last_run
    assert sum(n for (name, _), n in found.items() if name == "pruner_api_requests_total") == (
        e2e.simulator.request_count()
    )
    stale = e2e.server(hostname=_stale_hostname(found))
    age = value(
        found,
        "pruner_newest_backup_age_seconds",
        resource="backups",
        server=str(stale["id"]),
        hostname=stale["hostname"],
    )
    assert age > timedelta(days=14).total_seconds()


def test_run_keeps_the_last_success_in_the_textfile_when_a_pass_fails(e2e: E2E) -> None:
    textfile = e2e.tmp_path / "pruner.prom"
    config = e2e.config(metrics={"textfile": str(textfile)})
    assert e2e.cli("--config", config, "run").returncode == 0
    succeeded = value(
        samples(textfile.read_text(encoding="utf-8")), "pruner_last_success_timestamp_seconds"
    )
    e2e.simulator.faults.locked_delete_rate = 1.0  # every DELETE: 423
    failing = e2e.config(
        metrics={"textfile": str(textfile)},
        api={"retries": 0},
        policies=[{"name": "all", "keep_last": 1}],
    )

    result = e2e.cli("--config", failing, "run")

    assert result.returncode == 1, result.stderr
    found = samples(textfile.read_text(encoding="utf-8"))
    assert value(found, "pruner_runs_total", result="incomplete") == 1
    assert value(found, "pruner_deletion_failures_total", resource="backups") > 0
    assert value(found, "pruner_last_success_timestamp_seconds") == succeeded
    assert value(found, "pruner_last_run_timestamp_seconds") > succeeded


def _stale_hostname(found: Samples) -> str:
    """The server whose newest backup is the oldest: the fleet's stale one."""
    ages = {
        dict(labels)["hostname"]: age
        for (name, labels), age in found.items()
        if name == "pruner_newest_backup_age_seconds" and ("resource", "backups") in labels
    }
    return max(ages, key=lambda hostname: ages[hostname])
