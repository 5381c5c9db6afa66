"""Pass hooks: told when a pass starts, of each API answer and how it ended; never its undoing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from pruner.config.load import parse_config
from pruner.config.schema import Config
from pruner.engine.results import PassResult
from pruner.passes.lock import LockHeld, PassLock
from pruner.passes.one_pass import run_pass
from pruner.sim import WRITE_TOKEN, Fleet, ScriptedResponse, Simulator, generate_fleet
from pruner.vpsbg.errors import TokenMissing
from pruner.vpsbg.token import Secret

NOW = datetime(2026, 11, 27, 3, 30, tzinfo=UTC)


class Recorder:
    """Every call, in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def pass_started(self, run_id: str, *, dry_run: bool) -> None:
        self.calls.append(("started", run_id, dry_run))

    def api_response(self, method: str, status: int | None) -> None:
        self.calls.append(("api", method, status))

    def pass_finished(self, result: PassResult) -> None:
        self.calls.append(("finished", result.run_id, result.exit_code))

    def pass_failed(self, run_id: str, error: BaseException) -> None:
        self.calls.append(("failed", run_id, type(error).__name__))

    def kinds(self) -> list[str]:
        return [call[0] for call in self.calls if call[0] != "api"]


class Broken(Recorder):
    """Records, then raises: monitoring that is down."""

    def pass_started(self, run_id: str, *, dry_run: bool) -> None:
        super().pass_started(run_id, dry_run=dry_run)
        raise ConnectionError("monitoring is down")

    def api_response(self, method: str, status: int | None) -> None:
        super().api_response(method, status)
        raise ValueError("broken")

    def pass_finished(self, result: PassResult) -> None:
        super().pass_finished(result)
        raise RuntimeError("broken")


@pytest.fixture(scope="module")
def fleet() -> Fleet:
    return generate_fleet(now=NOW, servers=3, days=8)


@pytest.fixture
def sim(fleet: Fleet, monkeypatch: pytest.MonkeyPatch) -> Iterator[Simulator]:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")  # run_pass builds its own client here
    with Simulator(fleet) as simulator:
        yield simulator
    assert simulator.errors == []


@pytest.fixture
def config(sim: Simulator, tmp_path: Path) -> Config:
    settings: dict[str, Any] = {
        "api": {"base_url": sim.base_url, "retries": 1, "backoff": "0.001s", "timeout": "5s"},
        "dry_run": False,
        "state_dir": str(tmp_path),
        "safety": {"max_delete_fraction": 1.0, "max_deletions_per_run": None},
        "policies": [{"name": "all", "keep_daily": 3}],
    }
    return parse_config(json.dumps(settings), source="test.yaml")


def _run(config: Config, *hooks: Recorder, **options: Any) -> PassResult:
    options.setdefault("dry_run", False)
    options.setdefault("token", Secret(WRITE_TOKEN))
    return run_pass(config, clock=lambda: NOW, hooks=hooks, **options)


def test_run_pass_tells_hooks_of_start_every_api_answer_and_the_end(
    sim: Simulator, config: Config
) -> None:
    recorder = Recorder()
    doomed = sim.backups()[0]["id"]
    sim.script("DELETE", f"/v1/backups/{doomed}", ScriptedResponse(503))  # retried once

    result = _run(config, recorder)

    assert recorder.calls[0] == ("started", result.run_id, False)
    assert recorder.calls[-1] == ("finished", result.run_id, 0)
    answers = [call[1:] for call in recorder.calls if call[0] == "api"]
    assert len(answers) == len(sim.requests)
    assert answers.count(("DELETE", 503)) == 1
    assert answers.count(("DELETE", 204)) + answers.count(("DELETE", 200)) == len(result.outcomes)
    assert {method for method, _ in answers} == {"GET", "DELETE"}


def test_run_pass_goes_on_when_a_hook_raises(sim: Simulator, config: Config) -> None:
    broken, after = Broken(), Recorder()

    with capture_logs() as logs:
        result = _run(config, broken, after)

    assert result.exit_code == 0
    assert sim.deleted  # the pass pruned
    assert broken.kinds() == after.kinds() == ["started", "finished"]
    assert len(after.calls) == len(broken.calls)  # each hook is told, whatever the one before did
    failed = [e for e in logs if e["event"] == "hook.failed"]
    assert {e["log_level"] for e in failed} == {"warning"}
    assert {e["hook"] for e in failed} == {"Broken"}
    assert {e["method"] for e in failed} == {"pass_started", "api_response", "pass_finished"}
    assert failed[0]["message"].startswith("ConnectionError: monitoring is down")


def test_run_pass_tells_hooks_a_refused_key_ended_it(sim: Simulator, config: Config) -> None:
    recorder = Recorder()

    result = _run(config, recorder, token=Secret("not-a-key"))

    assert recorder.kinds() == ["started", "finished"]
    assert recorder.calls[-1] == ("finished", result.run_id, 1)


class _BrokenClient:
    """An API client that raises `error` when asked to list: a bug, or Ctrl-C (`pruner plan`)."""

    base_url = "http://127.0.0.1:9/v1"

    def __init__(self, error: BaseException) -> None:
        self.error = error

    def list_items(self, resource: str, _progress: object = None) -> list[Any]:
        raise self.error


@pytest.mark.parametrize(
    ("error", "interrupted", "failure"),
    [
        (KeyError("servers"), False, "the pass failed unexpectedly: KeyError: 'servers'"),
        (KeyboardInterrupt(), True, "stopped by a signal before it finished (KeyboardInterrupt)"),
    ],
    ids=["bug", "ctrl-c"],
)
def test_run_pass_tells_hooks_of_an_error_that_ends_it_and_logs_its_summary(
    sim: Simulator, config: Config, error: BaseException, interrupted: bool, failure: str
) -> None:
    recorder = Recorder()

    with capture_logs() as logs, pytest.raises(type(error)):
        _run(config, recorder, client=_BrokenClient(error))

    run_id = recorder.calls[0][1]
    assert recorder.kinds() == ["started", "failed"]
    assert recorder.calls[-1] == ("failed", run_id, type(error).__name__)
    [summary] = [entry for entry in logs if entry["event"] == "pass.summary"]
    assert (summary["exit_code"], summary["log_level"]) == (1, "error")
    assert (summary["interrupted"], summary["failures"]) == (interrupted, [failure])


def test_run_pass_tells_hooks_of_a_dry_run(sim: Simulator, config: Config) -> None:
    recorder = Recorder()

    _run(config, recorder, dry_run=True)

    assert recorder.calls[0][2] is True
    assert sim.request_count("DELETE") == 0


def test_run_pass_calls_no_hook_when_no_pass_could_start(
    sim: Simulator, config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorder = Recorder()
    monkeypatch.delenv("VPSBG_API_TOKEN", raising=False)

    with pytest.raises(TokenMissing):
        _run(config, recorder, token=None)
    with PassLock(config.state_dir), pytest.raises(LockHeld):
        _run(config, recorder)

    assert recorder.calls == []
