"""`pruner daemon` against the simulated API: it passes on its schedule, a failing pass leaves
the schedule running, SIGTERM/SIGINT mid-DELETE lets that DELETE finish and exits 0, and a bad
config exits 2 before any request. Tests synchronise on the daemon's JSON log lines and the
simulator's events, never on sleeps."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from pruner.sim import ScriptedResponse

from .conftest import E2E, CliOutputs, _clean_environment

pytestmark = pytest.mark.usefixtures("no_token_leaks")

WAIT = 30.0  # seconds: a bound on every wait, never reached when all is well
Item = tuple[str, int]

# The config refuses intervals under 1min, and rightly (every pass lists every backup). To see
# a second tick without waiting a minute, this runs the real CLI with the loaded config's
# interval shortened; everything else (the config file, signals, the API) is as in production.
_SHORT_INTERVAL_CLI = """\
import sys
from dataclasses import replace
from datetime import timedelta

import pruner.actions.daemon as action
from pruner.cli import main

load_and_warn = action.load_and_warn
interval = timedelta(seconds=float(sys.argv[1]))


def shortened(args):
    config = load_and_warn(args)
    assert config.schedule is not None
    schedule = config.schedule.model_copy(update={"interval": interval})
    return config.model_copy(update={"schedule": schedule})


action.load_and_warn = shortened
sys.exit(main(sys.argv[2:]))
"""


class DaemonProcess:
    """`pruner daemon` in a subprocess, its stderr (JSON log lines) read as they come."""

    def __init__(
        self, command: list[str], env: dict[str, str], cwd: Path, outputs: CliOutputs
    ) -> None:
        self.command = command
        self.popen = subprocess.Popen(
            command,
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._outputs = outputs
        self._lines: list[str] = []
        self._ended = False
        self._recorded = False
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.popen.stderr is not None
        for line in self.popen.stderr:
            with self._changed:
                self._lines.append(line)
                self._changed.notify_all()
        with self._changed:
            self._ended = True
            self._changed.notify_all()

    @property
    def stderr(self) -> str:
        with self._changed:
            return "".join(self._lines)

    def events(self, name: str) -> list[dict[str, Any]]:
        with self._changed:
            lines = list(self._lines)
        entries = [json.loads(line) for line in lines if line.startswith("{")]
        return [entry for entry in entries if entry.get("event") == name]

    def wait_for(self, name: str, count: int = 1) -> dict[str, Any]:
        """The `count`-th log line with this event, once it has been written."""
        with self._changed:
            self._changed.wait_for(
                lambda: self._ended or len(self.events(name)) >= count, timeout=WAIT
            )
        found = self.events(name)
        assert len(found) >= count, f"no {name} (#{count}) in the daemon's log:\n{self.stderr}"
        return found[count - 1]

    def send(self, signum: signal.Signals) -> None:
        self.popen.send_signal(signum)

    def finish(self) -> int:
        """Wait for the process to exit (it must, by itself); its exit code."""
        try:
            code = self.popen.wait(timeout=WAIT)
        finally:
            self.kill()
        return code

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait()
        self._reader.join(timeout=WAIT)
        if self._recorded:
            return
        self._recorded = True
        assert self.popen.stdout is not None
        assert self.popen.stderr is not None
        self._outputs.record(self.command, self.popen.stdout.read(), self.stderr)
        self.popen.stdout.close()
        self.popen.stderr.close()


StartDaemon = Callable[..., DaemonProcess]


@pytest.fixture
def start_daemon(e2e: E2E, cli_outputs: CliOutputs) -> Iterator[StartDaemon]:
    started: list[DaemonProcess] = []

    def start(
        config: Path,
        *args: str,
        interval: float | None = None,
        env: Mapping[str, str | None] | None = None,
    ) -> DaemonProcess:
        arguments = ["--log-format", "json", "--config", str(config), "daemon", *args]
        if interval is None:
            command = [sys.executable, "-m", "pruner", *arguments]
        else:
            command = [sys.executable, "-c", _SHORT_INTERVAL_CLI, str(interval), *arguments]
        process = DaemonProcess(command, _clean_environment(env), e2e.tmp_path, cli_outputs)
        started.append(process)
        return process

    yield start
    for process in started:  # before the simulator stops
        process.kill()


def _planned(e2e: E2E, config: Path) -> set[Item]:
    return {(d.backup.resource, d.backup.id) for d in e2e.plan(config, datetime.now(UTC)).deletions}


def _deleted_by_requests(e2e: E2E) -> list[Item]:
    requests = [r for r in e2e.simulator.requests if r.method == "DELETE"]
    return [(r.path.split("/")[2], int(r.path.split("/")[3])) for r in requests]


def test_daemon_passes_at_start_then_waits_for_its_schedule(
    e2e: E2E, start_daemon: StartDaemon
) -> None:
    config = e2e.config(schedule={"interval": "1h", "run_on_start": True})
    planned = _planned(e2e, config)

    daemon = start_daemon(config)
    start = daemon.wait_for("daemon.start")
    passed = daemon.wait_for("daemon.pass")
    daemon.send(signal.SIGTERM)
    code = daemon.finish()

    assert code == 0, daemon.stderr
    assert (start["interval"], start["run_on_start"], start["dry_run"]) == (3600, True, False)
    assert (passed["outcome"], passed["exit_code"]) == ("ok", 0)
    next_run = datetime.fromisoformat(passed["next_run"])
    assert timedelta(minutes=59) < next_run - datetime.now(UTC) <= timedelta(hours=1)
    assert planned
    assert set(e2e.simulator.deleted) == planned
    assert (e2e.state_dir / "last-plan.json").is_file()
    stop = daemon.wait_for("daemon.stop")
    assert (stop["passes"], stop["failed"], stop["last_outcome"]) == (1, 0, "ok")


def test_daemon_dry_run_flag_sends_no_delete(e2e: E2E, start_daemon: StartDaemon) -> None:
    config = e2e.config(schedule={"cron": "30 3 * * *", "run_on_start": True})

    daemon = start_daemon(config, "--dry-run")
    passed = daemon.wait_for("daemon.pass")
    daemon.send(signal.SIGINT)

    assert daemon.finish() == 0, daemon.stderr
    assert (passed["outcome"], passed["dry_run"]) == ("ok", True)
    assert e2e.simulator.request_count("DELETE") == 0


def test_daemon_survives_a_failing_pass_and_the_next_pass_works(
    e2e: E2E, start_daemon: StartDaemon
) -> None:
    config = e2e.config(schedule={"interval": "1h", "run_on_start": True})
    planned = _planned(e2e, config)
    # Page 1 of GET /backups answers 500 to its first try and its 3 retries: that listing is
    # incomplete, so the first pass deletes no backup (fail closed) and exits 1.
    e2e.simulator.script("GET", "/v1/backups", *[ScriptedResponse(500)] * 4)

    daemon = start_daemon(config, interval=0.2)
    failed = daemon.wait_for("daemon.pass_failed")
    passed = daemon.wait_for("daemon.pass")
    daemon.send(signal.SIGTERM)
    code = daemon.finish()

    assert code == 0, daemon.stderr
    assert (failed["outcome"], failed["exit_code"]) == ("incomplete", 1)
    assert "incomplete" in failed["error"] or "listing" in failed["error"], failed["error"]
    [first] = [s for s in daemon.events("pass.summary") if s["run_id"] == failed["run_id"]]
    assert first["deleted"] == len({item for item in planned if item[0] == "snapshots"})
    assert passed["outcome"] == "ok"
    assert passed["run_id"] != failed["run_id"]
    assert set(e2e.simulator.deleted) == planned  # the next pass did what the first could not
    stop = daemon.wait_for("daemon.stop")
    assert stop["failed"] == 1
    assert stop["passes"] >= 2


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_daemon_signal_mid_delete_lets_it_finish_and_exits_0(
    e2e: E2E, start_daemon: StartDaemon, signum: signal.Signals
) -> None:
    config = e2e.config(schedule={"interval": "1h", "run_on_start": True})
    planned = _planned(e2e, config)
    simulator = e2e.simulator
    simulator.delete_gate.clear()  # every DELETE waits in the simulator until the gate opens

    daemon = start_daemon(config)
    assert simulator.delete_started.wait(WAIT), daemon.stderr
    daemon.send(signum)
    stopping = daemon.wait_for("daemon.stopping")  # stop is set: nothing new may start now
    simulator.delete_gate.set()
    code = daemon.finish()

    assert code == 0, daemon.stderr
    assert (stopping["signal"], stopping["pass_running"]) == (signum.name, True)
    in_flight = _deleted_by_requests(e2e)
    assert in_flight  # the DELETEs on the wire when the signal came ...
    assert sorted(simulator.deleted) == sorted(in_flight)  # ... finished, and no other started
    assert len(in_flight) <= 4 < len(planned)  # api.concurrency 4: the pass was cut short
    stop = daemon.wait_for("daemon.stop")
    assert (stop["passes"], stop["last_outcome"]) == (1, "interrupted")


@pytest.mark.parametrize(
    ("schedule", "env", "said"),
    [
        (None, None, "schedule"),
        ({"interval": "30s"}, None, "interval"),
        ({"cron": "61 3 * * *"}, None, "minute"),
        ({"cron": "30 3 * * *"}, {"VPSBG_API_TOKEN": None}, "$VPSBG_API_TOKEN"),
    ],
    ids=["no-schedule", "short-interval", "bad-cron", "no-token"],
)
def test_daemon_bad_config_exits_2_before_any_request(
    e2e: E2E,
    schedule: dict[str, str] | None,
    env: dict[str, str | None] | None,
    said: str,
) -> None:
    config = e2e.config(**({"schedule": schedule} if schedule else {}))

    result = e2e.cli("--config", config, "daemon", env=env, timeout=WAIT)

    assert result.returncode == 2, result.stderr
    assert said in result.stderr
    assert e2e.simulator.request_count() == 0
    assert not e2e.state_dir.exists()
