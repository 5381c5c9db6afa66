from __future__ import annotations

import argparse
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pruner.actions.health import EXIT_UNHEALTHY, main
from pruner.config.defaults import DEFAULT_STATE_DIR
from pruner.config.load import load_config, parse_config
from pruner.ops.heartbeat import (
    HEARTBEAT,
    MAX_AGE,
    Heartbeat,
    RunningPass,
    check,
)

NOW = datetime(2026, 11, 27, 3, 30, tzinfo=UTC)
POLICIES = "policies:\n  - name: all\n    keep_daily: 7\n"


# --- Heartbeat and check --------------------------------------------------------------------


def test_beat_writes_the_time_that_check_reads(tmp_path: Path) -> None:
    Heartbeat(tmp_path).beat(NOW)
    assert check(tmp_path, NOW + timedelta(seconds=30)) == (True, "heartbeat 30 s old")


def test_beat_replaces_the_previous_heartbeat_and_leaves_no_temp_file(tmp_path: Path) -> None:
    heartbeat = Heartbeat(tmp_path)
    heartbeat.beat(NOW - timedelta(hours=1))
    heartbeat.beat(NOW)
    assert check(tmp_path, NOW).ok
    assert [p.name for p in tmp_path.iterdir()] == [HEARTBEAT]


def test_beat_writes_utc_whatever_the_offset_of_now(tmp_path: Path) -> None:
    sofia = NOW.astimezone(datetime.fromisoformat("2026-11-27T05:30:00+02:00").tzinfo)
    Heartbeat(tmp_path).beat(sofia)
    assert Heartbeat(tmp_path).path.read_text() == "2026-11-27T03:30:00+00:00\n"


def test_beat_refuses_a_naive_time(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="aware"):
        Heartbeat(tmp_path).beat(NOW.replace(tzinfo=None))


def test_beat_into_a_missing_state_dir_raises_oserror(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        Heartbeat(tmp_path / "missing").beat(NOW)


def test_check_is_healthy_up_to_max_age(tmp_path: Path) -> None:
    Heartbeat(tmp_path).beat(NOW)
    assert check(tmp_path, NOW + MAX_AGE).ok


def test_check_is_unhealthy_past_max_age(tmp_path: Path) -> None:
    Heartbeat(tmp_path).beat(NOW)
    ok, reason = check(tmp_path, NOW + MAX_AGE + timedelta(seconds=1))
    assert not ok
    assert reason == (
        f"the heartbeat {tmp_path / HEARTBEAT} is 121 s old (limit 120 s): the daemon's "
        "scheduler has stopped or hangs"
    )


def test_check_takes_max_age(tmp_path: Path) -> None:
    Heartbeat(tmp_path).beat(NOW)
    assert not check(tmp_path, NOW + timedelta(seconds=11), max_age=timedelta(seconds=10)).ok


def test_check_is_unhealthy_without_a_heartbeat(tmp_path: Path) -> None:
    ok, reason = check(tmp_path, NOW)
    assert not ok
    assert reason.startswith(f"no heartbeat at {tmp_path / HEARTBEAT}: `pruner daemon` is not")


def test_check_is_unhealthy_when_state_dir_is_missing(tmp_path: Path) -> None:
    ok, reason = check(tmp_path / "missing", NOW)
    assert not ok
    assert reason.startswith("no heartbeat at")


def test_check_allows_a_heartbeat_slightly_in_the_future(tmp_path: Path) -> None:
    Heartbeat(tmp_path).beat(NOW + timedelta(seconds=1))
    assert check(tmp_path, NOW) == (True, "heartbeat 0 s old")


def test_check_is_unhealthy_when_the_clock_was_set_back(tmp_path: Path) -> None:
    Heartbeat(tmp_path).beat(NOW + timedelta(hours=1))
    ok, reason = check(tmp_path, NOW)
    assert not ok
    assert "is 3600 s in the future (limit 120 s): the clock was set back" in reason


@pytest.mark.parametrize("content", ["", "yesterday\n", "2026-11-27T03:30:00\n"])
def test_check_is_unhealthy_when_the_heartbeat_holds_no_aware_time(
    tmp_path: Path, content: str
) -> None:
    (tmp_path / HEARTBEAT).write_text(content)
    ok, reason = check(tmp_path, NOW)
    assert not ok
    assert f"the heartbeat {tmp_path / HEARTBEAT} holds no time" in reason


def test_check_is_unhealthy_when_the_heartbeat_is_not_text(tmp_path: Path) -> None:
    (tmp_path / HEARTBEAT).write_bytes(b"\xff\xfe")
    assert check(tmp_path, NOW) == (
        False,
        f"cannot read the heartbeat {tmp_path / HEARTBEAT}: not UTF-8 text",
    )


def test_check_is_unhealthy_when_the_heartbeat_is_a_directory(tmp_path: Path) -> None:
    (tmp_path / HEARTBEAT).mkdir()
    ok, reason = check(tmp_path, NOW)
    assert not ok
    assert reason.startswith(f"cannot read the heartbeat {tmp_path / HEARTBEAT}: ")


# --- a pass in progress ------------------------------------------------------------------------

RUNNING = RunningPass(started=NOW, deadline=NOW + timedelta(hours=1))


def test_beat_with_a_pass_in_progress_records_its_start_and_deadline(tmp_path: Path) -> None:
    Heartbeat(tmp_path).beat(NOW + timedelta(minutes=10), RUNNING)

    assert Heartbeat(tmp_path).path.read_text() == (
        "2026-11-27T03:40:00+00:00\n"
        "pass_started 2026-11-27T03:30:00+00:00\n"
        "pass_deadline 2026-11-27T04:30:00+00:00\n"
    )


def test_check_is_healthy_while_the_pass_in_progress_is_within_its_deadline(
    tmp_path: Path,
) -> None:
    later = NOW + timedelta(minutes=10)
    Heartbeat(tmp_path).beat(later, RUNNING)

    assert check(tmp_path, later + timedelta(seconds=5)) == (
        True,
        "heartbeat 5 s old; a pass has run for 605 s (its deadline in 2995 s)",
    )


def test_check_is_unhealthy_once_the_pass_in_progress_is_past_its_deadline(
    tmp_path: Path,
) -> None:
    # The first pass hangs: the scheduler still beats, the pass never ends.
    later = RUNNING.deadline + timedelta(seconds=30)
    Heartbeat(tmp_path).beat(later, RUNNING)

    ok, reason = check(tmp_path, later)

    assert not ok
    assert reason == (
        "a pass has run for 3630 s, past its deadline 2026-11-27T04:30:00+00:00 "
        "(safety.max_pass_duration, since 2026-11-27T03:30:00+00:00): it was told to stop then "
        "and has not ended; see the daemon's log (pass.deadline), and restart the daemon"
    )


def test_check_after_the_pass_ended_is_healthy_again(tmp_path: Path) -> None:
    heartbeat = Heartbeat(tmp_path)
    heartbeat.beat(RUNNING.deadline, RUNNING)
    later = RUNNING.deadline + timedelta(minutes=5)
    heartbeat.beat(later)  # the pass ended: no pass lines

    assert check(tmp_path, later) == (True, "heartbeat 0 s old")


def test_check_is_unhealthy_when_the_pass_deadline_holds_no_time(tmp_path: Path) -> None:
    (tmp_path / HEARTBEAT).write_text(
        "2026-11-27T03:30:00+00:00\npass_started 2026-11-27T03:00:00+00:00\npass_deadline soon\n"
    )
    ok, reason = check(tmp_path, NOW)
    assert not ok
    assert f"the heartbeat {tmp_path / HEARTBEAT} holds no time" in reason


def test_default_state_dir_is_the_configs_default() -> None:
    assert parse_config(POLICIES).state_dir == DEFAULT_STATE_DIR


# --- `pruner health` ------------------------------------------------------------------------


def _config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _args(config: Path | None) -> argparse.Namespace:
    return argparse.Namespace(config=None if config is None else str(config))


def _wall_clock() -> datetime:
    return datetime.now(UTC)


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    path = tmp_path / "state"
    path.mkdir()
    return path


@pytest.fixture
def config(tmp_path: Path, state_dir: Path) -> Path:
    return _config(tmp_path, f"state_dir: {state_dir}\n{POLICIES}")


def test_main_is_healthy_with_a_fresh_heartbeat(
    config: Path, state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    Heartbeat(state_dir).beat(_wall_clock())
    assert main(_args(config)) == 0
    out, err = capsys.readouterr()
    assert out.startswith("healthy: heartbeat ")
    assert err == ""


def test_main_is_unhealthy_with_a_stale_heartbeat(
    config: Path, state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    Heartbeat(state_dir).beat(_wall_clock() - timedelta(minutes=5))
    assert main(_args(config)) == EXIT_UNHEALTHY
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith(f"pruner: unhealthy: the heartbeat {state_dir / HEARTBEAT} is 300 s")
    assert err.count("\n") == 1


def test_main_is_unhealthy_without_a_heartbeat(
    config: Path, state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(_args(config)) == EXIT_UNHEALTHY
    err = capsys.readouterr().err
    assert err.startswith(f"pruner: unhealthy: no heartbeat at {state_dir / HEARTBEAT}: ")
    assert err.count("\n") == 1


def test_main_exits_1_never_2_when_the_config_is_missing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Docker reads 1 as unhealthy and reserves 2.
    assert main(_args(tmp_path / "missing.yaml")) == EXIT_UNHEALTHY
    assert capsys.readouterr().err == (
        f"pruner: unhealthy: cannot read the config {tmp_path / 'missing.yaml'} (No such file "
        "or directory) to find state_dir: point --config or $PRUNER_CONFIG at the daemon's "
        "config\n"
    )


def test_main_reads_pruner_config_when_no_config_option(
    config: Path, state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PRUNER_CONFIG", str(config))
    Heartbeat(state_dir).beat(_wall_clock())
    assert main(_args(None)) == 0


@pytest.mark.parametrize(
    "state_dir_line",
    ["state_dir: state", "state_dir: ./state/", 'state_dir: "state"', "state_dir: 'state'"],
)
def test_main_looks_where_the_daemon_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, state_dir_line: str
) -> None:
    monkeypatch.chdir(tmp_path)
    config = _config(tmp_path, f"{state_dir_line}\n{POLICIES}")
    daemon_state_dir = load_config(config).state_dir
    daemon_state_dir.mkdir(exist_ok=True)
    Heartbeat(daemon_state_dir).beat(_wall_clock())
    assert main(_args(config)) == 0


def test_main_finds_state_dir_despite_problems_elsewhere_in_the_config(
    tmp_path: Path, state_dir: Path
) -> None:
    # The daemon validated its config at start; an edit since must not fail the probe.
    config = _config(tmp_path, f"state_dir: {state_dir}\ndry_run: on\nretries: 010\n{POLICIES}")
    Heartbeat(state_dir).beat(_wall_clock())
    assert main(_args(config)) == 0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("state_dir: [a, b]\n", ":1: state_dir: must be a directory path"),
        ("state_dir: ''\n", ":1: state_dir: must be a directory path"),
        ("state_dir: /a\nstate_dir: /b\n", ":2: state_dir: "),
        ("state_dir: /a\n  bad: [\n", ":2: "),
    ],
)
def test_main_is_unhealthy_when_state_dir_cannot_be_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, message: str
) -> None:
    config = _config(tmp_path, text)
    assert main(_args(config)) == EXIT_UNHEALTHY
    err = capsys.readouterr().err
    assert err.startswith(f"pruner: unhealthy: {config}{message}")
    assert err.count("\n") == 1


# --- the probe, as a container runs it --------------------------------------------------------

# What `pruner health` must not load: a probe has 5 s, on a CPU-limited pod.
HEAVY_MODULES = ("pydantic", "structlog", "requests", "apscheduler", "prometheus_client")


def test_pruner_health_in_a_subprocess_is_healthy_and_imports_nothing_heavy(
    config: Path, state_dir: Path
) -> None:
    Heartbeat(state_dir).beat(_wall_clock())
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "pruner", "--config", str(config), "health"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    imported = {
        line.rsplit("|", 1)[-1].strip().split(".")[0]
        for line in result.stderr.splitlines()
        if line.startswith("import time:")
    }
    code, out, err = result.returncode, result.stdout, result.stderr
    assert code == 0, err[-500:]
    assert out.startswith("healthy: heartbeat ")
    assert sorted(imported.intersection(HEAVY_MODULES)) == []
