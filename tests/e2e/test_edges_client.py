"""The API client at its edges, through the real CLI: answers that trickle in a byte at a time,
an API that dies in the middle of the deletions, and a Read key. A pass never hangs on the API
(api.timeout bounds each request, a stop does not wait on a page), stops deleting once the API
is clearly failing, and sends as few DELETEs as it takes to learn that the key may not delete.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pruner.sim import Simulator

from .conftest import E2E

pytestmark = pytest.mark.usefixtures("no_token_leaks")

RAW_CHAINS = ("Traceback", "Max retries exceeded", "Caused by", "object at 0x", "Retrying (")


def _log_lines(stderr: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]


def _execution_counts(state_dir: Path) -> dict[str, Any]:
    document = json.loads((state_dir / "last-plan.json").read_text("utf-8"))
    counts: dict[str, Any] = document["execution"]
    return counts


def _at_first_delete(simulator: Simulator, change: Callable[[], None]) -> None:
    """Call `change()` once, when the first DELETE arrives (before it is answered)."""
    lock = threading.Lock()
    done: list[bool] = []

    def callback(method: str, _path: str) -> None:
        with lock:
            if method == "DELETE" and not done:
                done.append(True)
                change()

    simulator.on_request(callback)


def test_run_against_a_trickling_api_ends_within_its_timeouts(e2e: E2E) -> None:
    e2e.simulator.faults.trickle = 0.02  # each page would take half a minute or more
    config = e2e.config(api={"timeout": "0.3s", "retries": 0})

    started = time.monotonic()
    result = e2e.cli("--config", config, "run", timeout=30)

    assert result.returncode == 1, result.stderr
    assert time.monotonic() - started < 20
    assert "no complete answer within 0.3s" in result.stderr
    assert e2e.simulator.request_count("DELETE") == 0


def test_sigterm_ends_a_run_waiting_on_a_trickling_answer(e2e: E2E) -> None:
    e2e.simulator.faults.trickle = 0.05
    arrived = threading.Event()
    e2e.simulator.on_request(lambda _method, _path: arrived.set())
    config = e2e.config(api={"timeout": "60s"})
    process = e2e.start("--config", config, "run")
    assert arrived.wait(30), "the run never asked the API anything"

    process.popen.send_signal(signal.SIGTERM)
    result = process.finish(timeout=10)

    assert result.returncode == 1, result.stderr
    assert "stopped" in result.stderr
    assert "Traceback" not in result.stderr
    assert e2e.simulator.request_count("DELETE") == 0


def test_an_api_failing_every_delete_costs_max_consecutive_failures_deletions(e2e: E2E) -> None:
    config = e2e.config(api={"retries": 1}, safety={"max_consecutive_failures": 3})
    planned = len(e2e.plan(config, e2e.now).deletions)
    _at_first_delete(e2e.simulator, lambda: setattr(e2e.simulator.faults, "error_rate", 1.0))

    result = e2e.cli("--config", config, "run")

    assert result.returncode == 1, result.stderr
    # One at a time, since none was done: three deletions, two attempts each, then no more.
    assert e2e.simulator.request_count("DELETE") == 3 * 2
    assert e2e.simulator.deleted == []
    counts = _execution_counts(e2e.state_dir)
    assert (counts["failed"], counts["not_attempted"]) == (3, planned - 3)
    assert "stopped deleting after 3 deletions in a row failed" in result.stderr
    failed = [e for e in _log_lines(result.stderr) if e["event"] == "backup.delete_failed"]
    assert [e["message"] for e in failed] == ["HTTP 500: Server Error (2 attempts)"] * 3


def test_an_api_that_dies_mid_pass_is_told_plainly_and_stops_the_deleting(e2e: E2E) -> None:
    config = e2e.config(api={"retries": 1}, safety={"max_consecutive_failures": 3})
    planned = len(e2e.plan(config, e2e.now).deletions)
    # The first DELETE is answered; then nothing listens on the API's port any more.
    _at_first_delete(e2e.simulator, threading.Thread(target=e2e.simulator.stop).start)

    result = e2e.cli("--config", config, "run")

    assert result.returncode == 1, result.stderr
    counts = _execution_counts(e2e.state_dir)
    # What reached the API before it was gone was deleted; then three failed in a row, and any
    # already under way; the rest were never tried.
    assert counts["deleted"] >= 1
    assert counts["failed"] >= 3
    assert counts["not_attempted"] > 0
    assert counts["deleted"] + counts["failed"] + counts["not_attempted"] == planned
    lines = _log_lines(result.stderr)
    assert not [e for e in lines if str(e.get("logger", "")).startswith("urllib3")]
    assert not [chain for chain in RAW_CHAINS if chain in result.stderr]
    failed = [e["message"] for e in lines if e["event"] == "backup.delete_failed"]
    assert "no answer (could not connect: Connection refused) (2 attempts)" in failed
    assert all(m.startswith("no answer (") and m.endswith(" (2 attempts)") for m in failed)
    retries = [e for e in lines if e["event"] == "api.retry" and e["method"] == "DELETE"]
    assert {e["attempt"] for e in retries} == {1}


def test_run_with_a_read_key_sends_a_single_delete(e2e: E2E, read_token: str) -> None:
    config = e2e.config(api={"concurrency": 4})
    # The refusal takes a moment to come: time enough for other workers to send theirs.
    _at_first_delete(e2e.simulator, lambda: setattr(e2e.simulator.faults, "latency", 0.2))

    result = e2e.cli("--config", config, "run", env={"VPSBG_API_TOKEN": read_token})

    assert result.returncode == 1, result.stderr
    assert e2e.simulator.request_count("DELETE") == 1
    assert e2e.simulator.deleted == []
    assert "this API key has Read permission only" in result.stderr
