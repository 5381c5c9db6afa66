from __future__ import annotations

import os
import re
import signal
import socket
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_SCHEDULER_STARTED
from apscheduler.schedulers.base import STATE_STOPPED
from structlog.testing import capture_logs

from pruner.cli import main as cli_main
from pruner.config.load import ConfigError, parse_config
from pruner.config.schema import Config, ScheduleSettings
from pruner.engine.models import Plan
from pruner.engine.results import PassResult
from pruner.errors import UserError
from pruner.ops.daemon import (
    HEARTBEAT_JOB_ID,
    PASS_JOB_ID,
    Daemon,
    Scheduler,
    Setup,
    build_trigger,
    default_scheduler,
    heartbeat_job,
    pass_job,
)
from pruner.ops.heartbeat import Heartbeat, RunningPass, check
from pruner.ops.sdnotify import Notifier
from pruner.ops.signals import stop_on_signals
from pruner.passes.lock import LockHeld
from pruner.vpsbg.errors import ApiAuthError, PassInterrupted, TokenMissing
from pruner.vpsbg.token import Secret

SOFIA = ZoneInfo("Europe/Sofia")
# A Friday.
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
WAIT = 5.0  # seconds: a bound on waits for other threads, never reached when all is well

CONFIG = """\
dry_run: false
schedule:
  cron: "30 3 * * *"
  timezone: Europe/Sofia
state_dir: {state_dir}
policies:
  - name: default
    keep_daily: 7
"""


def schedule(**fields: Any) -> ScheduleSettings:
    settings: dict[str, Any] = {
        "cron": None,
        "interval": None,
        "timezone": SOFIA,
        "jitter": timedelta(0),
        "run_on_start": False,
    }
    settings.update(fields)
    return ScheduleSettings.model_construct(**settings)


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return parse_config(CONFIG.format(state_dir=tmp_path / "state"))


def with_schedule(config: Config, **fields: Any) -> Config:
    """A config with this schedule. Tests may use intervals the config file would refuse."""
    return config.model_copy(update={"schedule": schedule(**fields)})


def fast(config: Config) -> Config:
    """Ticks every 10 ms, the first at once: a real scheduler that needs no waiting."""
    return with_schedule(config, interval=timedelta(milliseconds=10), run_on_start=True)


def result(
    exit_code: int = 0,
    *,
    interrupted: bool = False,
    failures: tuple[str, ...] = (),
    run_id: str = "run-1",
) -> PassResult:
    return PassResult(
        run_id=run_id,
        plan=Plan(generated_at=NOW, now=NOW, dry_run=False, groups=()),
        outcomes=(),
        exit_code=exit_code,
        interrupted=interrupted,
        duration=0.25,
        failures=failures,
    )


def clock() -> datetime:
    return NOW


def wall_clock() -> datetime:
    return datetime.now(UTC)


class FakeScheduler:
    """Records jobs; start() returns at once, as if stopped right after starting."""

    def __init__(self) -> None:
        self.jobs: dict[str, dict[str, Any]] = {}
        self.functions: dict[str, Callable[[], None]] = {}
        self.listeners: list[tuple[Callable[[Any], None], int]] = []
        self.started = False
        self.shutdowns = 0
        self.rescheduled: list[tuple[str, Any]] = []

    def add_job(self, func: Callable[[], None], **options: Any) -> None:
        self.jobs[options["id"]] = options
        self.functions[options["id"]] = func

    def add_listener(self, callback: Callable[[Any], None], mask: int) -> None:
        self.listeners.append((callback, mask))

    def get_job(self, job_id: str) -> None:
        return None

    def reschedule_job(self, job_id: str, **options: Any) -> None:
        self.rescheduled.append((job_id, options["trigger"]))

    def start(self) -> None:
        self.started = True
        for callback, mask in self.listeners:
            if mask & EVENT_SCHEDULER_STARTED:
                callback(None)

    def shutdown(self, wait: bool = True) -> None:
        self.shutdowns += 1


class Passes:
    """A fake run_pass: each call takes the next step (a result, an exception, or a function of
    the call's keyword arguments returning either)."""

    def __init__(self, *steps: object) -> None:
        self.steps = list(steps)
        self.calls: list[dict[str, Any]] = []
        self.configs: list[Config] = []

    def __call__(self, config: Config, **options: Any) -> PassResult:
        self.calls.append(options)
        self.configs.append(config)
        step = self.steps.pop(0) if self.steps else result()
        if callable(step) and not isinstance(step, PassResult):
            step = step(options)
        if isinstance(step, BaseException):
            raise step
        assert isinstance(step, PassResult)
        return step


def events(logs: Sequence[Mapping[str, Any]]) -> list[str]:
    """The daemon's own events, but for ticks skipped while a pass ran (a slow machine's)."""
    return [
        entry["event"]
        for entry in logs
        if entry["event"].startswith("daemon.") and entry["event"] != "daemon.tick_skipped"
    ]


def only(logs: Sequence[Mapping[str, Any]], event: str) -> Mapping[str, Any]:
    matching = [entry for entry in logs if entry["event"] == event]
    assert len(matching) == 1, f"{event}: {matching}"
    return matching[0]


# --- the wiring ---------------------------------------------------------------------------------


@pytest.mark.parametrize("sunday", ["0", "7", "sun"])
def test_build_trigger_reads_cron_in_the_schedule_zone_with_sunday_as_0_or_7(sunday: str) -> None:
    trigger = build_trigger(schedule(cron=f"30 3 * * {sunday}"), NOW)

    fire = trigger.get_next_fire_time(None, NOW)

    assert fire == datetime(2026, 11, 29, 3, 30, tzinfo=SOFIA)  # the Sunday after, Sofia time
    assert fire.utcoffset() == timedelta(hours=2)
    assert fire.astimezone(UTC) == datetime(2026, 11, 29, 1, 30, tzinfo=UTC)


def test_build_trigger_interval_fires_every_interval_from_now() -> None:
    trigger = build_trigger(schedule(interval=timedelta(hours=6)), NOW)

    first = trigger.get_next_fire_time(None, NOW)
    second = trigger.get_next_fire_time(first, first)

    assert first == NOW + timedelta(hours=6)
    assert second == NOW + timedelta(hours=12)


def test_build_trigger_interval_jitter_delays_each_fire_by_at_most_jitter() -> None:
    trigger = build_trigger(
        schedule(interval=timedelta(hours=6), jitter=timedelta(minutes=10)), NOW
    )

    fires = {trigger.get_next_fire_time(None, NOW) for _ in range(50)}

    due = NOW + timedelta(hours=6)
    assert all(due <= fire <= due + timedelta(minutes=10) for fire in fires)
    assert len(fires) > 1


def test_build_trigger_cron_jitter_delays_each_fire_by_at_most_jitter() -> None:
    trigger = build_trigger(schedule(cron="30 3 * * *", jitter=timedelta(minutes=10)), NOW)

    fires = {trigger.get_next_fire_time(None, NOW) for _ in range(50)}

    due = datetime(2026, 11, 28, 3, 30, tzinfo=SOFIA)
    assert all(due <= fire <= due + timedelta(minutes=10) for fire in fires)
    assert len(fires) > 1


def test_pass_job_allows_one_pass_at_a_time_and_runs_a_late_tick_once() -> None:
    job = pass_job(schedule(cron="30 3 * * *"), NOW)

    options = job.options()

    assert options["id"] == PASS_JOB_ID
    assert options["max_instances"] == 1
    assert options["coalesce"] is True
    assert options["misfire_grace_time"] is None  # however late, a missed tick still runs
    assert "next_run_time" not in options  # the trigger's first fire time
    assert options["trigger"].get_next_fire_time(None, NOW) == datetime(
        2026, 11, 28, 3, 30, tzinfo=SOFIA
    )


def test_pass_job_with_run_on_start_runs_first_at_once() -> None:
    job = pass_job(schedule(interval=timedelta(hours=6), run_on_start=True), NOW)

    assert job.options()["next_run_time"] == NOW
    assert job.trigger.get_next_fire_time(NOW, NOW) == NOW + timedelta(hours=6)


def test_heartbeat_job_beats_at_once_and_every_interval() -> None:
    job = heartbeat_job(timedelta(seconds=30), SOFIA, NOW)

    options = job.options()

    assert options["id"] == HEARTBEAT_JOB_ID
    assert options["next_run_time"] == NOW
    assert options["max_instances"] == 1
    assert options["coalesce"] is True
    assert job.trigger.get_next_fire_time(NOW, NOW) == NOW + timedelta(seconds=30)


def test_run_schedules_the_pass_job_in_the_schedule_zone(config: Config) -> None:
    made: list[tuple[object, FakeScheduler]] = []

    def factory(zone: Any) -> Scheduler:
        made.append((zone, FakeScheduler()))
        return made[-1][1]

    daemon = Daemon(
        config, dry_run=False, clock=clock, run_pass=Passes(), scheduler_factory=factory
    )

    assert daemon.run() == 0

    [(zone, scheduler)] = made
    assert zone == SOFIA
    assert scheduler.started
    assert set(scheduler.jobs) == {PASS_JOB_ID}  # no heartbeat asked for
    options = scheduler.jobs[PASS_JOB_ID]
    assert (options["max_instances"], options["coalesce"], options["misfire_grace_time"]) == (
        1,
        True,
        None,
    )


# --- what a tick does ---------------------------------------------------------------------------


def make_daemon(config: Config, passes: Passes, **options: Any) -> Daemon:
    return Daemon(
        config,
        dry_run=False,
        clock=clock,
        run_pass=passes,
        scheduler_factory=lambda _zone: FakeScheduler(),
        **options,
    )


def test_tick_runs_a_pass_with_a_stop_of_its_own_and_the_daemons_clock_and_token(
    config: Config,
) -> None:
    passes = Passes(result(), result())
    token = Secret("t0ken-value")
    daemon = make_daemon(config, passes, token=token)

    with capture_logs() as logs:
        daemon.tick()
    daemon.tick()

    call, again = passes.calls
    # Its deadline sets the pass's stop: that must not stop the daemon, nor the next pass.
    assert call["stop"] is not daemon.stop
    assert call["stop"] is not again["stop"]
    assert call["clock"] is clock
    assert call["token"] is token
    assert call["dry_run"] is False
    entry = only(logs, "daemon.pass")
    assert (entry["outcome"], entry["run_id"], entry["exit_code"]) == ("ok", "run-1", 0)


def test_tick_a_pass_stopped_by_its_deadline_failed_and_the_daemon_goes_on(
    config: Config,
) -> None:
    def past_its_deadline(options: dict[str, Any]) -> PassResult:
        options["stop"].set()  # as the pass's own deadline sets it
        stopped = result(1, interrupted=True, failures=("reached its deadline (...)",))
        return replace(stopped, deadline_reached=True)

    passes = Passes(past_its_deadline, result())
    daemon = make_daemon(config, passes)

    with capture_logs() as logs:
        daemon.tick()
        daemon.tick()

    assert len(passes.calls) == 2
    assert not daemon.stop.is_set()
    failed = only(logs, "daemon.pass_failed")
    assert (failed["outcome"], failed["error"]) == ("incomplete", "reached its deadline (...)")
    assert (daemon.tally.failed, daemon.tally.last_outcome) == (1, "ok")


def test_tick_dry_run_from_the_flag_or_the_config(config: Config) -> None:
    passes = Passes()
    make_daemon(config, passes).tick()
    Daemon(
        config,
        dry_run=True,
        clock=clock,
        run_pass=passes,
        scheduler_factory=lambda _: FakeScheduler(),
    ).tick()
    make_daemon(config.model_copy(update={"dry_run": True}), passes).tick()

    assert [call["dry_run"] for call in passes.calls] == [False, True, True]


def test_tick_a_failing_pass_is_logged_and_the_next_tick_still_runs(config: Config) -> None:
    passes = Passes(RuntimeError("boom"), result())
    daemon = make_daemon(config, passes)

    with capture_logs() as logs:
        daemon.tick()
        daemon.tick()

    assert events(logs) == ["daemon.pass_failed", "daemon.pass"]
    failed = only(logs, "daemon.pass_failed")
    assert failed["log_level"] == "error"
    assert failed["error"] == "RuntimeError: boom"
    assert failed["exc_info"] is True  # a bug: the traceback goes to the log
    assert len(passes.calls) == 2
    assert (daemon.tally.passes, daemon.tally.failed, daemon.tally.last_outcome) == (2, 1, "ok")


def test_tick_an_api_error_is_logged_without_a_traceback(config: Config) -> None:
    daemon = make_daemon(config, Passes(ApiAuthError("the API refused the token (401)")))

    with capture_logs() as logs:
        daemon.tick()

    failed = only(logs, "daemon.pass_failed")
    assert failed["error"] == "the API refused the token (401)"
    assert failed["exc_info"] is False


def test_tick_a_pass_that_ended_with_the_key_refused_is_an_error(config: Config) -> None:
    refused = replace(
        result(1, failures=("the API token was rejected (HTTP 401)",)), key_refused=True
    )
    daemon = make_daemon(config, Passes(refused))

    with capture_logs() as logs:
        daemon.tick()

    failed = only(logs, "daemon.pass_failed")
    assert (failed["outcome"], failed["run_id"]) == ("error", "run-1")
    assert failed["error"] == "the API token was rejected (HTTP 401)"
    assert daemon.tally.last_outcome == "error"


@pytest.mark.parametrize(
    ("exit_code", "failures", "outcome"),
    [(1, ("2 deletion(s) failed",), "incomplete"), (3, (), "capped")],
)
def test_tick_a_pass_exiting_1_or_3_is_a_failed_pass(
    config: Config, exit_code: int, failures: tuple[str, ...], outcome: str
) -> None:
    daemon = make_daemon(config, Passes(result(exit_code, failures=failures)))

    with capture_logs() as logs:
        daemon.tick()

    failed = only(logs, "daemon.pass_failed")
    assert (failed["outcome"], failed["exit_code"], failed["run_id"]) == (
        outcome,
        exit_code,
        "run-1",
    )
    assert failed["error"]
    if failures:
        assert failures[0] in failed["error"]
    assert daemon.tally.failed == 1


def test_tick_skips_with_a_warning_when_another_pass_holds_the_lock(config: Config) -> None:
    daemon = make_daemon(config, Passes(LockHeld("another pruner pass holds the lock")))

    with capture_logs() as logs:
        daemon.tick()

    skipped = only(logs, "daemon.pass_skipped")
    assert skipped["log_level"] == "warning"
    assert skipped["reason"] == "lock_held"
    assert "holds the lock" in skipped["error"]
    assert (daemon.tally.passes, daemon.tally.skipped, daemon.tally.failed) == (0, 1, 0)


def test_tick_a_skip_watcher_that_raises_is_a_warning_and_the_tick_ends(config: Config) -> None:
    class Broken:
        def pass_skipped(self) -> None:
            raise RuntimeError("watcher bug")

    daemon = make_daemon(config, Passes(LockHeld("held")), on_skipped=[Broken()])

    with capture_logs() as logs:
        daemon.tick()

    failed = only(logs, "hook.failed")
    assert (failed["hook"], failed["method"]) == ("Broken", "pass_skipped")
    assert daemon.tally.skipped == 1


@pytest.mark.parametrize("step", [PassInterrupted("stopped"), result(1, interrupted=True)])
def test_tick_an_interrupted_pass_is_not_a_failure(config: Config, step: object) -> None:
    daemon = make_daemon(config, Passes(step))

    with capture_logs() as logs:
        daemon.tick()

    assert only(logs, "daemon.pass")["outcome"] == "interrupted"
    assert daemon.tally.failed == 0


def test_tick_after_a_stop_starts_no_pass(config: Config) -> None:
    passes = Passes()
    daemon = make_daemon(config, passes)
    daemon.request_stop()

    daemon.tick()

    assert passes.calls == []


# --- running and stopping -----------------------------------------------------------------------


def test_run_keeps_its_schedule_through_failing_passes(config: Config) -> None:
    """A real scheduler ticking every 10 ms: the pass fails twice, then works and stops it."""
    daemon: Daemon

    def third(_options: dict[str, Any]) -> PassResult:
        daemon.request_stop()
        return result(run_id="run-3")

    passes = Passes(RuntimeError("boom"), result(1, failures=("listing incomplete",)), third)
    daemon = Daemon(fast(config), dry_run=False, clock=wall_clock, run_pass=passes)

    with capture_logs() as logs:
        code = daemon.run()

    assert code == 0
    assert len(passes.calls) == 3
    assert events(logs) == [
        "daemon.start",
        "daemon.pass_failed",
        "daemon.pass_failed",
        "daemon.stopping",
        "daemon.pass",
        "daemon.stop",
    ]
    stop = only(logs, "daemon.stop")
    assert (stop["passes"], stop["failed"], stop["last_outcome"], stop["last_run_id"]) == (
        3,
        2,
        "ok",
        "run-3",
    )


def test_run_stop_lets_the_pass_in_progress_finish_then_returns_0(config: Config) -> None:
    order: list[str] = []
    schedulers: list[Any] = []
    daemon: Daemon

    def slow_pass(options: dict[str, Any]) -> PassResult:
        order.append("pass started")
        daemon.request_stop()  # as a signal would, from another thread, while the pass runs
        daemon.request_stop()  # and a second one, impatient
        assert options["stop"].is_set()  # the pass sees it: nothing new starts, waits end
        order.append("pass ended")
        return result(1, interrupted=True)

    def factory(zone: Any) -> Scheduler:
        schedulers.append(default_scheduler(zone))
        return schedulers[-1]  # type: ignore[no-any-return]

    passes = Passes(slow_pass)
    daemon = Daemon(
        fast(config), dry_run=False, clock=wall_clock, run_pass=passes, scheduler_factory=factory
    )

    with capture_logs() as logs:
        code = daemon.run()
    order.append("run returned")

    assert code == 0
    assert order == ["pass started", "pass ended", "run returned"]
    assert len(passes.calls) == 1  # no tick after the stop, though they come every 10 ms
    assert schedulers[0].state == STATE_STOPPED
    assert only(logs, "daemon.stopping")["pass_running"] is True
    assert only(logs, "daemon.still_stopping")["signal"] == "request"
    assert only(logs, "daemon.stop")["last_outcome"] == "interrupted"


def test_run_a_tick_while_the_pass_runs_is_skipped_with_a_warning(config: Config) -> None:
    skipped = threading.Event()
    daemon: Daemon

    def factory(zone: Any) -> Scheduler:
        scheduler = default_scheduler(zone)
        scheduler.add_listener(lambda _event: skipped.set(), EVENT_JOB_MAX_INSTANCES)
        return scheduler

    def long_pass(_options: dict[str, Any]) -> PassResult:
        assert skipped.wait(WAIT), "no tick came while the pass ran"
        daemon.request_stop()
        return result()

    passes = Passes(long_pass)
    daemon = Daemon(
        fast(config), dry_run=False, clock=wall_clock, run_pass=passes, scheduler_factory=factory
    )

    with capture_logs() as logs:
        assert daemon.run() == 0

    assert len(passes.calls) == 1
    warnings = [entry for entry in logs if entry["event"] == "daemon.tick_skipped"]
    assert warnings
    assert warnings[0]["log_level"] == "warning"


def test_run_stopped_before_it_starts_returns_0_without_a_pass(config: Config) -> None:
    passes = Passes()
    daemon = Daemon(fast(config), dry_run=False, clock=wall_clock, run_pass=passes)
    daemon.request_stop()

    assert daemon.run() == 0
    assert passes.calls == []


def test_run_start_logs_the_schedule_and_the_next_run(config: Config) -> None:
    daemon: Daemon
    beats: list[datetime] = []

    def beat(moment: datetime, _running: RunningPass | None) -> None:
        beats.append(moment)
        daemon.request_stop()

    daemon = Daemon(config, dry_run=True, clock=wall_clock, run_pass=Passes(), heartbeat=beat)

    with capture_logs() as logs:
        daemon.run()

    start = only(logs, "daemon.start")
    assert (start["cron"], start["timezone"], start["dry_run"]) == (
        "30 3 * * *",
        "Europe/Sofia",
        True,
    )
    next_run = datetime.fromisoformat(start["next_run"])
    assert next_run.astimezone(SOFIA).strftime("%H:%M") == "03:30"
    assert len(beats) == 1  # the heartbeat runs at once, from the scheduler


def test_beat_a_failing_heartbeat_is_a_warning(config: Config) -> None:
    def broken(_moment: datetime, _running: RunningPass | None) -> None:
        raise OSError("disk full")

    daemon = make_daemon(config, Passes(), heartbeat=broken)

    with capture_logs() as logs:
        daemon.beat()

    assert only(logs, "daemon.heartbeat_failed")["error"] == "disk full"


# --- reloading ----------------------------------------------------------------------------------


def edited(config: Config, old: str, new: str) -> Config:
    """`config` as its file would load with `old` replaced by `new`."""
    text = CONFIG.format(state_dir=config.state_dir)
    assert old in text, old
    return parse_config(text.replace(old, new))


class Reloads:
    """A reload watcher that records what it is told."""

    def __init__(self) -> None:
        self.told: list[object] = []

    def config_reloaded(self, config: Config) -> None:
        self.told.append(config)

    def config_reload_failed(self) -> None:
        self.told.append("failed")


def test_request_reload_the_next_pass_runs_with_the_new_config_and_token(config: Config) -> None:
    fresh = edited(config, "keep_daily: 7", "keep_daily: 14")
    old_token, new_token = Secret("old-t0ken"), Secret("new-t0ken")
    passes = Passes()
    daemon = make_daemon(
        config, passes, token=old_token, reload=lambda: Setup(fresh, token=new_token)
    )

    daemon.tick()
    with capture_logs() as logs:
        daemon.request_reload(signal.SIGHUP)
    daemon.tick()

    assert passes.configs == [config, fresh]
    assert [call["token"] for call in passes.calls] == [old_token, new_token]
    reloaded = only(logs, "config.reloaded")
    assert reloaded["log_level"] == "info"
    assert reloaded["signal"] == "SIGHUP"
    assert reloaded["changed"] == ["policies[0].keep_daily"]
    assert reloaded["credential_changed"] is True
    assert "new-t0ken" not in str(logs)


def test_request_reload_mid_pass_the_pass_ends_with_the_config_it_started_with(
    config: Config,
) -> None:
    fresh = edited(config, "dry_run: false", "dry_run: true")
    old_hooks, new_hooks = (Reloads(),), (Reloads(),)
    daemon: Daemon
    seen: list[Config] = []

    def reloading_midway(_options: dict[str, Any]) -> PassResult:
        daemon.request_reload()
        seen.append(daemon.config)
        return result()

    passes = Passes(reloading_midway, result())
    daemon = make_daemon(
        config,
        passes,
        hooks=old_hooks,
        reload=lambda: Setup(fresh, hooks=new_hooks),
    )

    daemon.tick()
    daemon.tick()

    assert seen == [fresh]  # the daemon's config changed during the first pass
    assert passes.configs == [config, fresh]  # but that pass ran on with the one it started with
    assert [call["hooks"] for call in passes.calls] == [old_hooks, new_hooks]
    assert [call["dry_run"] for call in passes.calls] == [False, True]


@pytest.mark.parametrize(
    ("error", "shown"),
    [
        (
            ConfigError(["/etc/pruner/config.yaml:9: policies[0].keep_daily: must be an integer"]),
            "/etc/pruner/config.yaml:9: policies[0].keep_daily: must be an integer",
        ),
        (
            TokenMissing("api.token_file /etc/pruner/token is empty: put the API token in it"),
            "api.token_file /etc/pruner/token is empty: put the API token in it",
        ),
        (
            UserError("state_dir /nope: cannot be created", "schedule: needed"),
            "state_dir /nope: cannot be created",
        ),
    ],
)
def test_request_reload_an_invalid_config_keeps_the_one_in_use_and_says_why(
    config: Config, error: Exception, shown: str
) -> None:
    def broken() -> Setup:
        raise error

    passes = Passes()
    watcher = Reloads()
    daemon = make_daemon(config, passes, reload=broken, on_reload=[watcher])

    with capture_logs() as logs:
        daemon.request_reload(signal.SIGHUP)
    daemon.tick()

    assert passes.configs == [config]
    failed = only(logs, "config.reload_failed")
    assert failed["log_level"] == "error"
    assert failed["errors"][0] == shown
    assert failed["config"] == config.source
    assert "config.reloaded" not in [entry["event"] for entry in logs]
    assert watcher.told == ["failed"]
    assert not daemon.stop.is_set()


def test_request_reload_a_bug_in_the_reload_keeps_the_config_and_the_daemon(
    config: Config,
) -> None:
    def buggy() -> Setup:
        raise KeyError("oops")

    passes = Passes()
    daemon = make_daemon(config, passes, reload=buggy)

    with capture_logs() as logs:
        daemon.request_reload()
    daemon.tick()

    failed = only(logs, "config.reload_failed")
    assert failed["errors"] == ["KeyError: 'oops'"]
    assert failed["exc_info"] is True
    assert passes.configs == [config]


def test_request_reload_tells_its_watchers_the_new_config(config: Config) -> None:
    fresh = edited(config, "keep_daily: 7", "keep_daily: 8")

    class Broken:
        def config_reloaded(self, config: Config) -> None:
            raise RuntimeError("watcher bug")

        def config_reload_failed(self) -> None:
            raise RuntimeError("watcher bug")

    watcher = Reloads()
    daemon = make_daemon(
        config, Passes(), reload=lambda: Setup(fresh), on_reload=[Broken(), watcher]
    )

    with capture_logs() as logs:
        daemon.request_reload()

    assert watcher.told == [fresh]
    assert only(logs, "hook.failed")["method"] == "config_reloaded"
    assert daemon.config is fresh


def test_request_reload_of_a_new_schedule_reschedules_the_pass_job(config: Config) -> None:
    fresh = edited(config, "30 3 * * *", "0 4 * * 1")
    scheduler = FakeScheduler()
    daemon = Daemon(
        config,
        dry_run=False,
        clock=clock,
        run_pass=Passes(),
        scheduler_factory=lambda _zone: scheduler,
        reload=lambda: Setup(fresh),
    )

    with capture_logs() as logs:
        daemon.request_reload()

    [(job_id, trigger)] = scheduler.rescheduled
    assert job_id == PASS_JOB_ID
    assert trigger.get_next_fire_time(None, NOW) == datetime(2026, 11, 30, 4, 0, tzinfo=SOFIA)
    assert only(logs, "config.reloaded")["changed"] == ["schedule.cron"]


def test_request_reload_that_cannot_reschedule_keeps_the_config_in_use(config: Config) -> None:
    fresh = edited(config, "30 3 * * *", "0 4 * * 1")

    class Refusing(FakeScheduler):
        def reschedule_job(self, job_id: str, **options: Any) -> None:
            raise LookupError(f"no job {job_id}")

    passes = Passes()
    daemon = Daemon(
        config,
        dry_run=False,
        clock=clock,
        run_pass=passes,
        scheduler_factory=lambda _zone: Refusing(),
        reload=lambda: Setup(fresh),
    )

    with capture_logs() as logs:
        daemon.request_reload()
    daemon.tick()

    assert only(logs, "config.reload_failed")["errors"] == ["LookupError: no job pass"]
    assert passes.configs == [config]


def test_request_reload_of_policies_alone_keeps_the_schedule(config: Config) -> None:
    fresh = edited(config, "keep_daily: 7", "keep_daily: 9")
    scheduler = FakeScheduler()
    daemon = Daemon(
        config,
        dry_run=False,
        clock=clock,
        run_pass=Passes(),
        scheduler_factory=lambda _zone: scheduler,
        reload=lambda: Setup(fresh),
    )

    daemon.request_reload()

    assert scheduler.rescheduled == []


def test_run_a_reload_moves_the_next_pass_to_the_new_schedule(config: Config) -> None:
    """A real scheduler ticking every 10 ms; a reload mid-pass moves it to 04:00 Sofia time."""
    fresh = edited(config, "30 3 * * *", "0 4 * * *")
    daemon: Daemon

    def reloading(_options: dict[str, Any]) -> PassResult:
        daemon.request_reload()
        daemon.request_stop()
        return result()

    daemon = Daemon(
        fast(config),
        dry_run=False,
        clock=wall_clock,
        run_pass=Passes(reloading),
        reload=lambda: Setup(fresh),
    )

    with capture_logs() as logs:
        assert daemon.run() == 0

    next_run = datetime.fromisoformat(only(logs, "config.reloaded")["next_run"])
    assert next_run.astimezone(SOFIA).strftime("%H:%M") == "04:00"
    assert next_run - wall_clock() <= timedelta(days=1)


def test_request_reload_keeps_metrics_listen_until_a_restart(config: Config) -> None:
    fresh = edited(config, "keep_daily: 7", "keep_daily: 7\nmetrics: {listen: '0.0.0.0:9999'}")
    passes = Passes()
    daemon = make_daemon(config, passes, reload=lambda: Setup(fresh))

    with capture_logs() as logs:
        daemon.request_reload()
        daemon.request_reload()  # still not applied: said again
    daemon.tick()

    assert passes.configs[0].metrics.listen == ("127.0.0.1", 9814)
    warnings = [entry for entry in logs if entry["event"] == "config.restart_needed"]
    assert [entry["key"] for entry in warnings] == ["metrics.listen", "metrics.listen"]
    assert warnings[0]["log_level"] == "warning"
    assert "restart" in warnings[0]["message"]
    assert [entry["changed"] for entry in logs if entry["event"] == "config.reloaded"] == [[], []]


def test_request_reload_while_stopping_changes_nothing(config: Config) -> None:
    loads: list[int] = []

    def load() -> Setup:
        loads.append(1)
        return Setup(config)

    daemon = make_daemon(config, Passes(), reload=load)
    daemon.request_stop()

    daemon.request_reload()

    assert loads == []


def test_request_reload_tells_systemd_it_reloads_then_is_ready(
    config: Config, notify_socket: socket.socket
) -> None:
    fresh = edited(config, "keep_daily: 7", "keep_daily: 8")
    daemon = make_daemon(
        config,
        Passes(),
        reload=lambda: Setup(fresh),
        notifier=Notifier(notify_socket.getsockname()),
    )

    daemon.request_reload()

    reloading, ready = received(notify_socket, 2)
    assert re.fullmatch(r"RELOADING=1\nMONOTONIC_USEC=[0-9]+", reloading)
    assert ready.startswith("READY=1\nSTATUS=config reloaded; next pass: ")


def test_stop_on_signals_sighup_reloads_the_daemon(config: Config) -> None:
    fresh = fast(edited(config, "keep_daily: 7", "keep_daily: 8"))
    daemon: Daemon
    reloaded = threading.Event()

    def load() -> Setup:
        reloaded.set()
        return Setup(fresh)

    def signalled_pass(_options: dict[str, Any]) -> PassResult:
        os.kill(os.getpid(), signal.SIGHUP)
        assert reloaded.wait(WAIT), "SIGHUP did not reload"
        return result()

    def second_pass(_options: dict[str, Any]) -> PassResult:
        daemon.request_stop()
        return result()

    passes = Passes(signalled_pass, second_pass)
    daemon = Daemon(fast(config), dry_run=False, clock=wall_clock, run_pass=passes, reload=load)

    with stop_on_signals(daemon.request_stop, on_reload=daemon.request_reload):
        assert daemon.run() == 0

    assert passes.configs == [fast(config), fresh]


# --- signals ------------------------------------------------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_stop_on_signals_a_signal_mid_pass_stops_the_daemon_with_0(
    config: Config, signum: signal.Signals
) -> None:
    def signalled_pass(options: dict[str, Any]) -> PassResult:
        os.kill(os.getpid(), signum)  # lands in any thread; the main one waits in the scheduler
        assert options["stop"].wait(WAIT), "the signal did not set stop"
        return result()

    passes = Passes(signalled_pass)
    daemon = Daemon(fast(config), dry_run=False, clock=wall_clock, run_pass=passes)

    with capture_logs() as logs, stop_on_signals(daemon.request_stop):
        code = daemon.run()

    assert code == 0
    assert len(passes.calls) == 1
    assert only(logs, "daemon.stopping")["signal"] == signum.name


# --- the command --------------------------------------------------------------------------------


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.usefixtures("restore_logging")
def test_main_a_config_without_schedule_exits_2_naming_schedule(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VPSBG_API_TOKEN", "a-token")
    text = CONFIG.format(state_dir=tmp_path / "state").replace('  cron: "30 3 * * *"\n', "")
    path = write(tmp_path, text.replace("schedule:\n  timezone: Europe/Sofia\n", ""))

    code = cli_main(["--config", str(path), "daemon"])

    assert code == 2
    assert "schedule" in capsys.readouterr().err
    assert not (tmp_path / "state").exists()


@pytest.mark.usefixtures("restore_logging")
def test_main_a_missing_token_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("VPSBG_API_TOKEN", raising=False)
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    path = write(tmp_path, CONFIG.format(state_dir=tmp_path / "state"))

    code = cli_main(["--config", str(path), "daemon"])

    assert code == 2
    assert "$VPSBG_API_TOKEN" in capsys.readouterr().err


@pytest.mark.usefixtures("restore_logging")
def test_main_an_unusable_state_dir_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VPSBG_API_TOKEN", "a-token")
    blocker = tmp_path / "file"
    blocker.write_text("not a directory", encoding="utf-8")
    path = write(tmp_path, CONFIG.format(state_dir=blocker / "state"))

    code = cli_main(["--config", str(path), "daemon"])

    assert code == 2
    assert "state_dir" in capsys.readouterr().err


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[socket.socket]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(tmp_path / "notify"))
        sock.settimeout(WAIT)
        yield sock


def received(sock: socket.socket, count: int) -> list[str]:
    return [sock.recv(4096).decode() for _ in range(count)]


def test_run_notifies_ready_after_start_and_watchdog_with_each_beat(
    config: Config, notify_socket: socket.socket
) -> None:
    daemon: Daemon

    def beat(_moment: datetime, _running: RunningPass | None) -> None:
        daemon.request_stop()

    daemon = Daemon(
        config,
        dry_run=True,
        clock=wall_clock,
        run_pass=Passes(),
        heartbeat=beat,
        notifier=Notifier(notify_socket.getsockname()),
    )
    daemon.run()

    ready, watchdog, stopping = received(notify_socket, 3)
    assert ready.startswith("READY=1\nSTATUS=scheduler started; next pass: ")
    assert watchdog == "WATCHDOG=1"
    assert stopping == "STOPPING=1\nSTATUS=stopping"


def test_tick_notifies_the_outcome_as_status(config: Config, notify_socket: socket.socket) -> None:
    daemon = make_daemon(config, Passes(result(3)), notifier=Notifier(notify_socket.getsockname()))

    daemon.tick()

    assert received(notify_socket, 1) == ["STATUS=last pass: capped; next: none"]


def test_beat_notifies_the_watchdog_even_when_the_heartbeat_fails(
    config: Config, notify_socket: socket.socket
) -> None:
    def broken(_moment: datetime, _running: RunningPass | None) -> None:
        raise OSError("disk full")

    daemon = make_daemon(
        config, Passes(), heartbeat=broken, notifier=Notifier(notify_socket.getsockname())
    )

    daemon.beat()

    assert received(notify_socket, 1) == ["WATCHDOG=1"]


# --- a pass that hangs --------------------------------------------------------------------------


class Clock:
    """The daemon's wall clock; the test moves it."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def test_a_hanging_first_pass_fails_health_and_withholds_the_watchdog_past_its_deadline(
    config: Config, notify_socket: socket.socket
) -> None:
    config.state_dir.mkdir()
    moment = Clock(NOW)
    started, release = threading.Event(), threading.Event()

    def hanging(_options: dict[str, Any]) -> PassResult:
        started.set()
        assert release.wait(WAIT), "the test never let the pass end"
        return result()

    daemon = Daemon(
        config,
        dry_run=False,
        clock=moment,
        run_pass=Passes(hanging),
        scheduler_factory=lambda _zone: FakeScheduler(),
        heartbeat=Heartbeat(config.state_dir).beat,
        notifier=Notifier(notify_socket.getsockname()),
    )
    worker = threading.Thread(target=daemon.tick)
    worker.start()
    try:
        assert started.wait(WAIT)
        moment.now = NOW + timedelta(minutes=59)
        daemon.beat()
        within = check(config.state_dir, moment.now)
        moment.now = NOW + timedelta(hours=1, seconds=30)  # max_pass_duration is 1h
        with capture_logs() as logs:
            daemon.beat()
        past = check(config.state_dir, moment.now)
    finally:
        release.set()
        worker.join(WAIT)
    after = check(config.state_dir, moment.now)

    assert within.ok, within.reason
    assert within.reason.endswith("a pass has run for 3540 s (its deadline in 60 s)")
    assert not past.ok
    assert past.reason.startswith("a pass has run for 3630 s, past its deadline ")
    overdue = only(logs, "daemon.pass_overdue")
    assert overdue["log_level"] == "warning"
    assert overdue["started"] == NOW.isoformat()
    assert after.ok, after.reason  # the pass ended: its lines are gone from the heartbeat
    assert received(notify_socket, 2) == ["WATCHDOG=1", "STATUS=last pass: ok; next: none"]


def test_request_stop_sets_the_stop_of_the_pass_in_progress(config: Config) -> None:
    daemon: Daemon
    seen: list[bool] = []

    def stopped_midway(options: dict[str, Any]) -> PassResult:
        daemon.request_stop()
        seen.append(options["stop"].is_set())
        return result(1, interrupted=True)

    daemon = make_daemon(config, Passes(stopped_midway))

    daemon.tick()

    assert seen == [True]
