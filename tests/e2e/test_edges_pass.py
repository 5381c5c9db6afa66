"""How a `pruner run` ends at its edges, against the simulated API: however it ends, the pass
records what it did (last-plan.json, the audit trail's outcomes), logs one `pass.summary` and
exits with a code of the contract, never with a traceback. Tests synchronise on the simulator's
events and the CLI's JSON log lines, never on sleeps."""

from __future__ import annotations

import json
import signal
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from pruner.sim import ScriptedResponse

from .conftest import E2E, CliOutputs, _clean_environment
from .test_daemon import WAIT, DaemonProcess

pytestmark = pytest.mark.usefixtures("no_token_leaks")


def _start_run(e2e: E2E, outputs: CliOutputs, config: Path) -> DaemonProcess:
    """`pruner run` in a subprocess, its JSON log lines read as they come."""
    command = [sys.executable, "-m", "pruner", "--log-format", "json", "--config", str(config)]
    return DaemonProcess([*command, "run"], _clean_environment(None), e2e.tmp_path, outputs)


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _audit_events(state_dir: Path) -> Counter[str]:
    lines = (state_dir / "audit.jsonl").read_text(encoding="utf-8").splitlines()
    return Counter(json.loads(line)["event"] for line in lines)


def test_run_ctrl_c_twice_during_deletions_still_records_the_pass(
    e2e: E2E, cli_outputs: CliOutputs
) -> None:
    config = e2e.config()
    simulator = e2e.simulator
    simulator.delete_gate.clear()  # the first DELETEs stay on the wire until the gate opens

    run = _start_run(e2e, cli_outputs, config)
    try:
        assert simulator.delete_started.wait(WAIT), run.stderr
        run.send(signal.SIGINT)
        run.wait_for("run.stopping")
        run.send(signal.SIGINT)  # the impatient second Ctrl-C
        still = run.wait_for("run.still_stopping")
        simulator.delete_gate.set()
        code = run.finish()
    finally:
        run.kill()

    assert code == 1, run.stderr
    assert "Traceback" not in run.stderr
    assert "KeyboardInterrupt" not in run.stderr
    assert still["signal"] == "SIGINT"
    summary = run.wait_for("pass.summary")
    assert (summary["exit_code"], summary["interrupted"]) == (1, True)
    assert summary["deleted"] == len(simulator.deleted) > 0
    assert summary["not_attempted"] > 0
    document = _read_json(e2e.state_dir / "last-plan.json")
    assert document["run_id"] == summary["run_id"]
    execution = document["execution"]
    assert execution["interrupted"] is True
    assert execution["deleted"] == len(simulator.deleted)
    assert execution["not_attempted"] == summary["not_attempted"]
    audit = _audit_events(e2e.state_dir)
    assert audit["intent"] == audit["outcome"] > 0  # no DELETE left without its outcome


def test_run_refused_while_listing_still_records_the_pass(
    e2e: E2E, cli_outputs: CliOutputs
) -> None:
    textfile = e2e.tmp_path / "pruner.prom"
    config = e2e.config(metrics={"textfile": str(textfile)})
    e2e.simulator.script(
        "GET", "/v1/servers", ScriptedResponse(401, {"message": "Unauthenticated."})
    )

    result = e2e.cli("--log-format", "json", "--config", config, "run")

    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert "FAILED: the API token was rejected (HTTP 401)" in result.stdout
    entries = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    [summary] = [entry for entry in entries if entry["event"] == "pass.summary"]
    assert summary["exit_code"] == 1
    document = _read_json(e2e.state_dir / "last-plan.json")
    assert document["run_id"] == summary["run_id"]
    assert "HTTP 401" in document["problems"][0]["message"]
    assert 'pruner_runs_total{result="failed"} 1.0' in textfile.read_text(encoding="utf-8")
