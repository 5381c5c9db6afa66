"""`pruner daemon`: a pass on every schedule tick until SIGTERM or SIGINT; SIGHUP reloads the
config (docs/operating.md).

APScheduler 3's BlockingScheduler runs the schedule in the main thread and each pass in a worker.
The wiring is in small pure functions (`build_trigger`, `pass_job`, `heartbeat_job`) that tests
check without waiting; `Daemon` adds what a tick does with a pass's outcome, and the stop.

Signals reach `request_stop` through `pruner.ops.signals.stop_on_signals`, from a watcher thread:
a handler in the main thread would run only once that thread wakes from the scheduler's wait
(hours away), and could interrupt it inside one of the scheduler's non-reentrant locks.

Stopping: the shared `stop` Event is set (the pass in progress lets requests on the wire finish,
cuts backoff waits short and starts nothing new), the scheduler is shut down so no tick starts,
and once the pass in progress has ended the daemon logs a summary and exits 0.

Reloading (`request_reload`, from the same watcher thread): what a pass runs with (the config,
the token, the hooks, the heartbeat) is one `Setup`, which a valid reload replaces whole between
passes; a pass keeps the Setup it started with. A new schedule reschedules the pass job. An
invalid config, or a token that can no longer be read, leaves the Setup in use as it was.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, tzinfo
from typing import Any, Literal, Protocol

import structlog
from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_SCHEDULER_STARTED
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers import SchedulerNotRunningError
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.interval import IntervalTrigger

from pruner.config.crontab import crontab_trigger
from pruner.config.diff import changed_keys
from pruner.config.load import ConfigError
from pruner.config.schema import Config, ScheduleSettings
from pruner.engine.results import PassResult
from pruner.errors import EXIT_CAPPED, EXIT_OK, UserError
from pruner.ops.heartbeat import RunningPass
from pruner.ops.sdnotify import Notifier
from pruner.passes.hooks import PassHooks, guarded
from pruner.passes.lock import LockHeld
from pruner.passes.one_pass import run_pass
from pruner.vpsbg.errors import ApiError, PassInterrupted
from pruner.vpsbg.token import Secret

__all__ = [
    "HEARTBEAT_INTERVAL",
    "HEARTBEAT_JOB_ID",
    "PASS_JOB_ID",
    "Daemon",
    "JobSpec",
    "PassRunner",
    "ReloadWatcher",
    "Reloader",
    "Scheduler",
    "Setup",
    "SkipWatcher",
    "Tally",
    "build_trigger",
    "default_scheduler",
    "heartbeat_job",
    "pass_job",
]

PASS_JOB_ID = "pass"
HEARTBEAT_JOB_ID = "heartbeat"
HEARTBEAT_INTERVAL = timedelta(seconds=30)

PassOutcome = Literal["ok", "capped", "incomplete", "interrupted", "error", "skipped"]
Heartbeat = Callable[[datetime, RunningPass | None], None]

_log = structlog.get_logger("pruner.daemon")


class PassRunner(Protocol):
    """`pruner.passes.run_pass`, as far as the daemon uses it."""

    def __call__(
        self,
        config: Config,
        *,
        dry_run: bool,
        token: Secret | None = None,
        clock: Callable[[], datetime] = ...,
        stop: threading.Event | None = None,
        hooks: Sequence[PassHooks] = (),
    ) -> PassResult: ...


class SkipWatcher(Protocol):
    """Told of each tick skipped because another pass held the lock (e.g. the metrics)."""

    def pass_skipped(self) -> None: ...


class ReloadWatcher(Protocol):
    """Told of each reload: the config now in use, or that the old one stays (the metrics)."""

    def config_reloaded(self, config: Config) -> None: ...
    def config_reload_failed(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Setup:
    """What a pass runs with. A reload replaces it whole; a pass keeps the one it started with."""

    config: Config
    token: Secret | None = None
    hooks: tuple[PassHooks, ...] = ()
    heartbeat: Heartbeat | None = None  # follows state_dir


# Reads the config and the token afresh. An invalid config raises ConfigError; a token that
# cannot be read, or a config the daemon cannot use, UserError or TokenMissing.
Reloader = Callable[[], Setup]


class Scheduler(Protocol):
    """The part of an APScheduler 3 scheduler the daemon uses; `start` blocks until shutdown."""

    def add_job(self, func: Callable[[], None], **options: Any) -> Any: ...
    def add_listener(self, callback: Callable[[Any], None], mask: int) -> None: ...
    def get_job(self, job_id: str) -> Any: ...
    def reschedule_job(self, job_id: str, **options: Any) -> Any: ...
    def start(self) -> None: ...
    def shutdown(self, wait: bool = True) -> None: ...


def default_scheduler(zone: tzinfo) -> Scheduler:
    """A BlockingScheduler in `zone`, with a worker for the pass and one for the heartbeat."""
    scheduler: Scheduler = BlockingScheduler(
        timezone=zone, executors={"default": ThreadPoolExecutor(max_workers=2)}
    )
    return scheduler


# --- the wiring ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class JobSpec:
    """One scheduler job's options; `next_run_time` None: the trigger's first fire time."""

    id: str
    name: str
    trigger: BaseTrigger
    next_run_time: datetime | None
    max_instances: int = 1  # a tick while the pass still runs is skipped, not queued
    coalesce: bool = True  # ticks missed meanwhile (a suspended host) make one run, not many
    # None: a late tick always runs, however late (once, by coalesce). A pass is as safe late as
    # on time, and a grace period would turn a host asleep at 03:30 into a day without pruning.
    misfire_grace_time: int | None = None

    def options(self) -> dict[str, Any]:
        """Keyword arguments for `scheduler.add_job`."""
        options: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "trigger": self.trigger,
            "max_instances": self.max_instances,
            "coalesce": self.coalesce,
            "misfire_grace_time": self.misfire_grace_time,
        }
        if self.next_run_time is not None:
            options["next_run_time"] = self.next_run_time
        return options


def build_trigger(schedule: ScheduleSettings, now: datetime) -> BaseTrigger:
    """When passes run: crontab fields read in schedule.timezone, or every `interval` from `now`,
    each fire time delayed by up to `jitter`. `now` must be aware."""
    jitter = schedule.jitter if schedule.jitter > timedelta(0) else None
    if schedule.cron is not None:
        return crontab_trigger(schedule.cron, schedule.timezone, jitter)
    if schedule.interval is None:
        raise ValueError("a schedule needs cron or interval")
    return IntervalTrigger(
        seconds=schedule.interval.total_seconds(),
        start_date=now + schedule.interval,
        timezone=schedule.timezone,
        jitter=jitter.total_seconds() if jitter else None,
    )


def pass_job(schedule: ScheduleSettings, now: datetime) -> JobSpec:
    """The pass job: on the schedule, and at once when `run_on_start`."""
    return JobSpec(
        id=PASS_JOB_ID,
        name="pruner pass",
        trigger=build_trigger(schedule, now),
        next_run_time=now if schedule.run_on_start else None,
    )


def heartbeat_job(interval: timedelta, zone: tzinfo, now: datetime) -> JobSpec:
    """A heartbeat at once and every `interval`, from the scheduler: it stops if the scheduler
    does, which is what a liveness probe wants to know."""
    return JobSpec(
        id=HEARTBEAT_JOB_ID,
        name="pruner heartbeat",
        trigger=IntervalTrigger(
            seconds=interval.total_seconds(), start_date=now + interval, timezone=zone
        ),
        next_run_time=now,
    )


# --- the daemon ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _CurrentPass:
    running: RunningPass
    setup: Setup  # what it started with: a reload meanwhile changes the next pass
    stop: threading.Event  # this pass's: a signal or its deadline sets it
    overdue: threading.Event = field(default_factory=threading.Event)  # past its deadline: said


@dataclass(frozen=True, slots=True)
class Tally:
    """What the passes so far came to, for the stop summary."""

    passes: int = 0  # ticks that started a pass, whatever came of it
    failed: int = 0
    skipped: int = 0  # ticks skipped: another pass held the lock
    last_outcome: PassOutcome | None = None
    last_run_id: str | None = None
    last_exit_code: int | None = None

    def after(self, outcome: PassOutcome, run_id: str | None, exit_code: int | None) -> Tally:
        return Tally(
            passes=self.passes + (outcome != "skipped"),
            failed=self.failed + (outcome in ("capped", "incomplete", "error")),
            skipped=self.skipped + (outcome == "skipped"),
            last_outcome=outcome,
            last_run_id=run_id if run_id is not None else self.last_run_id,
            last_exit_code=exit_code,
        )


class Daemon:
    """Runs `run_pass` on the config's schedule until `request_stop`; `run` returns the exit code.

    `clock` is the wall clock (aware); `heartbeat`, when given, is called with it and the pass
    in progress (None when none runs) at start, every `heartbeat_interval` from the scheduler's
    thread pool, and when a pass starts and ends. `hooks` watch every pass (pruner.passes.hooks);
    `on_skipped` are told of ticks skipped because another pass held the lock.

    Each pass gets a stop event of its own, which `request_stop` sets as well as the daemon's:
    the pass's deadline (`safety.max_pass_duration`) sets it too, and that ends the pass, not
    the daemon. A pass still running past its deadline hangs: the heartbeat says so (`pruner
    health` fails) and the systemd watchdog is no longer told the daemon is alive.

    `reload` reads the config and token afresh for `request_reload`; `on_reload` are told how
    each reload went.
    """

    def __init__(
        self,
        config: Config,
        *,
        dry_run: bool,
        clock: Callable[[], datetime],
        token: Secret | None = None,
        run_pass: PassRunner = run_pass,
        scheduler_factory: Callable[[tzinfo], Scheduler] = default_scheduler,
        stop: threading.Event | None = None,
        heartbeat: Heartbeat | None = None,
        heartbeat_interval: timedelta = HEARTBEAT_INTERVAL,
        notifier: Notifier | None = None,
        hooks: Sequence[PassHooks] = (),
        on_skipped: Sequence[SkipWatcher] = (),
        reload: Reloader | None = None,
        on_reload: Sequence[ReloadWatcher] = (),
    ) -> None:
        if config.schedule is None:
            raise ValueError("the daemon needs a config with a schedule")
        self._setup = Setup(config, token, tuple(hooks), heartbeat)
        self._dry_run = dry_run
        self.stop = stop if stop is not None else threading.Event()
        self._clock = clock
        self._run_pass = run_pass
        self._heartbeat_interval = heartbeat_interval
        self._notifier = notifier if notifier is not None else Notifier(None)
        self._on_skipped = tuple(on_skipped)
        self._reload = reload
        self._on_reload = tuple(on_reload)
        self._reloading = threading.Lock()  # one reload at a time
        self._scheduler = scheduler_factory(config.schedule.timezone)
        self._lock = threading.Condition()
        self._running = 0  # passes in progress (at most one: max_instances)
        self._current: _CurrentPass | None = None
        self._tally = Tally()
        self._heartbeat_lock = threading.Lock()  # the last heartbeat written is the latest state

    @property
    def tally(self) -> Tally:
        with self._lock:
            return self._tally

    @property
    def setup(self) -> Setup:
        """What the next pass runs with."""
        with self._lock:
            return self._setup

    @property
    def config(self) -> Config:
        return self.setup.config

    @property
    def schedule(self) -> ScheduleSettings:
        schedule = self.config.schedule
        assert schedule is not None  # checked at start and at each reload
        return schedule

    @property
    def dry_run(self) -> bool:
        return self._dry_run or self.config.dry_run  # as the pass reads it: either means dry

    def run(self) -> int:
        """Schedule passes and block until stopped and the pass in progress has ended."""
        now = self._clock()
        self._scheduler.add_listener(self._on_started, EVENT_SCHEDULER_STARTED)
        self._scheduler.add_listener(self._on_tick_skipped, EVENT_JOB_MAX_INSTANCES)
        self._scheduler.add_job(self.tick, **pass_job(self.schedule, now).options())
        if self.setup.heartbeat is not None or self._notifier.address is not None:
            job = heartbeat_job(self._heartbeat_interval, self.schedule.timezone, now)
            self._scheduler.add_job(self.beat, **job.options())
        if not self.stop.is_set():
            self._scheduler.start()  # returns once request_stop has shut it down
        with self._lock:
            self._lock.wait_for(lambda: self._running == 0)
            tally = self._tally
        _log.info(
            "daemon.stop",
            passes=tally.passes,
            failed=tally.failed,
            skipped=tally.skipped,
            last_outcome=tally.last_outcome,
            last_run_id=tally.last_run_id,
            last_exit_code=tally.last_exit_code,
        )
        return EXIT_OK

    def request_stop(self, signum: int | None = None) -> None:
        """Stop: no new pass, the one in progress winds down (thread-safe; not from a handler)."""
        with self._lock:
            first = not self.stop.is_set()
            self.stop.set()
            if self._current is not None:
                self._current.stop.set()
            running = self._running > 0
        by = signal.Signals(signum).name if signum is not None else "request"
        if first:
            _log.info("daemon.stopping", signal=by, pass_running=running)
            self._notifier.stopping(
                "stopping: the pass in progress winds down" if running else "stopping"
            )
        elif running:  # a second Ctrl-C: say what it waits for rather than go quiet
            _log.info(
                "daemon.still_stopping",
                signal=by,
                message="waiting for the requests on the wire to finish (at most api.timeout)",
            )
        self._shutdown()

    def tick(self) -> None:
        """One scheduled pass, in a scheduler worker: whatever happens, the schedule goes on."""
        current = self._begin_pass()
        if current is None:
            return  # a tick that raced with the stop: nothing new starts
        outcome: PassOutcome = "error"
        run_id: str | None = None
        exit_code: int | None = None
        try:
            outcome, run_id, exit_code = self._pass(current)
        finally:  # the tally first: run() reads it once no pass is running
            with self._lock:
                self._tally = self._tally.after(outcome, run_id, exit_code)
                self._current = None
            self._write_heartbeat()  # before run() may return: the pass is no longer running
            with self._lock:
                self._running -= 1
                self._lock.notify_all()
            self._notifier.status(f"last pass: {outcome}; next: {self._next_run() or 'none'}")

    def _begin_pass(self) -> _CurrentPass | None:
        """The pass about to start, recorded (and in the heartbeat); None once stopping."""
        with self._lock:
            if self.stop.is_set():
                return None
            self._running += 1
            setup = self._setup
            started = self._clock()
            deadline = started + setup.config.safety.max_pass_duration
            self._current = _CurrentPass(RunningPass(started, deadline), setup, threading.Event())
            current = self._current
        self._write_heartbeat()
        return current

    def beat(self) -> None:
        """The heartbeat job: a failure to write it is logged, never fatal. The watchdog is
        told first (a restart would not cure an unwritable state_dir), unless the pass in
        progress is past its deadline: a restart is what cures a pass that hangs."""
        now = self._clock()
        with self._lock:
            current = self._current
        if current is None or now <= current.running.deadline:
            self._notifier.watchdog()
        elif not current.overdue.is_set():
            current.overdue.set()
            _log.warning(
                "daemon.pass_overdue",
                started=current.running.started.isoformat(),
                deadline=current.running.deadline.isoformat(),
                message="the pass in progress is past safety.max_pass_duration and was told "
                "to stop; until it ends, `pruner health` fails and the systemd watchdog is not "
                "told the daemon is alive",
            )
        self._write_heartbeat()

    def _write_heartbeat(self) -> None:
        with self._heartbeat_lock:
            with self._lock:
                current = self._current
                heartbeat = self._setup.heartbeat
            if heartbeat is None:
                return
            try:
                heartbeat(self._clock(), current.running if current else None)
            except Exception as error:
                _log.warning("daemon.heartbeat_failed", error=str(error))

    # --- a pass and its outcome -------------------------------------------------------------

    def _pass(self, current: _CurrentPass) -> tuple[PassOutcome, str | None, int | None]:
        setup = current.setup
        try:
            result = self._run_pass(
                setup.config,
                dry_run=self._dry_run or setup.config.dry_run,
                token=setup.token,
                clock=self._clock,
                stop=current.stop,
                hooks=setup.hooks,
            )
        except LockHeld as error:
            self._skipped()
            _log.warning(
                "daemon.pass_skipped",
                reason="lock_held",
                error=str(error),
                next_run=self._next_run(),
            )
            return "skipped", None, error.exit_code
        except PassInterrupted:
            _log.info("daemon.pass", outcome="interrupted")
            return "interrupted", None, None
        except ApiError as error:  # what the API said, e.g. a rejected token: no traceback
            self._log_failed("error", str(error))
            return "error", None, None
        except UserError as error:  # e.g. state_dir became unwritable: the message says what to do
            self._log_failed("error", " ".join(error.lines))
            return "error", None, None
        except Exception as error:  # a bug: the traceback helps, the schedule still goes on
            self._log_failed("error", f"{type(error).__name__}: {error}", exc_info=True)
            return "error", None, None
        return self._judge(result), result.run_id, result.exit_code

    def _judge(self, result: PassResult) -> PassOutcome:
        fields: dict[str, object] = {
            "run_id": result.run_id,
            "exit_code": result.exit_code,
            "duration": round(result.duration, 3),
            "dry_run": result.dry_run,
        }
        if result.key_refused:  # as if it had raised: the pass could do nothing at all
            self._log_failed("error", "; ".join(result.failures), fields)
            return "error"
        if result.interrupted and not result.deadline_reached:  # a signal: not a failure
            _log.info("daemon.pass", outcome="interrupted", **fields)
            return "interrupted"
        if result.exit_code == EXIT_OK:
            _log.info("daemon.pass", outcome="ok", **fields, next_run=self._next_run())
            return "ok"
        if result.exit_code == EXIT_CAPPED:
            self._log_failed(
                "capped",
                "a cap (max_delete_fraction or max_deletions_per_run) blocked deletions: review "
                "with `pruner plan`, then raise the cap or run `pruner run "
                "--allow-large-deletions` once",
                fields,
            )
            return "capped"
        self._log_failed(
            "incomplete",
            "; ".join(result.failures) or "the pass failed or is incomplete",
            fields,
        )
        return "incomplete"

    def _log_failed(
        self,
        outcome: PassOutcome,
        error: str,
        fields: Mapping[str, object] | None = None,
        *,
        exc_info: bool = False,
    ) -> None:
        _log.error(
            "daemon.pass_failed",
            outcome=outcome,
            error=error,
            next_run=self._next_run(),
            exc_info=exc_info,
            **(fields or {}),
        )

    # --- reloading --------------------------------------------------------------------------

    def request_reload(self, signum: int | None = None) -> None:
        """Read the config and token afresh (thread-safe; not from a handler). Valid: the next
        pass runs with them and the schedule follows; invalid: the ones in use stay. Never
        raises: a reload must not end the daemon, nor the thread that watches signals."""
        by = signal.Signals(signum).name if signum is not None else "request"
        if self._reload is None:
            _log.warning(
                "config.reload_unavailable",
                signal=by,
                message="this daemon cannot reload: restart it to apply a config change",
            )
            return
        with self._reloading:
            if self.stop.is_set():
                _log.info("config.reload_ignored", signal=by, reason="the daemon is stopping")
                return
            self._notifier.reloading(time.monotonic_ns() // 1000)
            status = "config reloaded" if self._reload_now(by) else "reload failed"
            self._notifier.ready(f"{status}; next pass: {self._next_run() or 'none'}")

    def _reload_now(self, by: str) -> bool:
        """One reload; whether the new config is now in use."""
        old = self.setup
        try:
            fresh, kept = _keep_restart_only(old, self._load())
            if _trigger_of(old.config) != _trigger_of(fresh.config):
                self._reschedule(fresh.config)
        except (ConfigError, UserError, ApiError) as error:
            self._reload_failed(by, old, _problems(error))
            return False
        except Exception as error:  # a bug: the traceback helps, the daemon goes on
            self._reload_failed(by, old, [f"{type(error).__name__}: {error}"], exc_info=True)
            return False
        with self._lock:
            self._setup = fresh
        for key in kept:
            _log.warning(
                "config.restart_needed",
                key=key,
                message=f"{key} changed, but only a restart applies it: the daemon goes on "
                "with the value it started with; restart it to apply",
            )
        # Watchers first: once the log says it, the metrics agree.
        self._tell_reload("config_reloaded", lambda watcher: watcher.config_reloaded(fresh.config))
        _log.info(
            "config.reloaded",
            signal=by,
            config=fresh.config.source,
            changed=list(changed_keys(old.config, fresh.config)),
            # Not token_changed: the log masks the value of any key that names a token.
            credential_changed=_credential_changed(old.token, fresh.token),
            dry_run=self.dry_run,
            next_run=self._next_run(),
        )
        return True

    def _load(self) -> Setup:
        assert self._reload is not None
        fresh = self._reload()
        if fresh.config.schedule is None:
            raise UserError(
                f"{fresh.config.source}: schedule: the daemon needs a schedule and the config "
                "has none now: add one back"
            )
        return fresh

    def _reschedule(self, config: Config) -> None:
        assert config.schedule is not None  # _load checked
        trigger = build_trigger(config.schedule, self._clock())
        self._scheduler.reschedule_job(PASS_JOB_ID, trigger=trigger)

    def _reload_failed(
        self, by: str, old: Setup, problems: list[str], *, exc_info: bool = False
    ) -> None:
        self._tell_reload("config_reload_failed", lambda watcher: watcher.config_reload_failed())
        _log.error(
            "config.reload_failed",
            signal=by,
            config=old.config.source,
            errors=problems,
            message="the daemon goes on with the config and token it had; fix the problems and "
            "reload again",
            exc_info=exc_info,
        )

    def _tell_reload(self, method: str, tell: Callable[[ReloadWatcher], None]) -> None:
        for watcher in self._on_reload:
            guarded(watcher, method, tell, log=_log, goes_on="the daemon")

    # --- the scheduler ----------------------------------------------------------------------

    def _on_started(self, _event: object) -> None:
        if self.stop.is_set():  # a stop that came before start() could shut anything down
            self._shutdown()
            return
        schedule = self.schedule
        _log.info(
            "daemon.start",
            config=self.config.source,
            cron=schedule.cron,
            interval=schedule.interval.total_seconds() if schedule.interval else None,
            timezone=str(schedule.timezone),
            jitter=schedule.jitter.total_seconds(),
            run_on_start=schedule.run_on_start,
            dry_run=self.dry_run,
            next_run=self._next_run(),
            pid=os.getpid(),
        )
        self._notifier.ready(f"scheduler started; next pass: {self._next_run()}")

    def _skipped(self) -> None:
        for watcher in self._on_skipped:
            guarded(
                watcher, "pass_skipped", lambda w: w.pass_skipped(), log=_log, goes_on="the daemon"
            )

    def _on_tick_skipped(self, event: Any) -> None:
        if event.job_id == PASS_JOB_ID:
            _log.warning(
                "daemon.tick_skipped",
                reason="the previous pass is still running",
                scheduled=[moment.isoformat() for moment in event.scheduled_run_times],
            )

    def _shutdown(self) -> None:
        # Not started yet (run() then does not start it), or already shut down: nothing to do.
        with contextlib.suppress(SchedulerNotRunningError):
            self._scheduler.shutdown(wait=False)

    def _next_run(self) -> str | None:
        if self.stop.is_set():
            return None
        job = self._scheduler.get_job(PASS_JOB_ID)
        moment = getattr(job, "next_run_time", None)
        return moment.isoformat() if isinstance(moment, datetime) else None


# --- reloading, the pure parts --------------------------------------------------------------


def _problems(error: Exception) -> list[str]:
    """What a failed reload says: the config's problems (file:line: key.path: what), or why the
    token or state_dir cannot be used."""
    if isinstance(error, ConfigError):
        return list(error.problems)
    if isinstance(error, UserError):
        return list(error.lines)
    return [str(error)]


def _keep_restart_only(old: Setup, fresh: Setup) -> tuple[Setup, tuple[str, ...]]:
    """`fresh`, with the keys that only a restart applies as `old` has them, and those that
    differed. metrics.listen: the endpoint is bound once, before the scheduler starts."""
    listen = old.config.metrics.listen
    if fresh.config.metrics.listen == listen:
        return fresh, ()
    metrics = fresh.config.metrics.model_copy(update={"listen": listen})
    config = fresh.config.model_copy(update={"metrics": metrics})
    return replace(fresh, config=config), ("metrics.listen",)


def _trigger_of(config: Config) -> tuple[object, ...]:
    """What the pass job's trigger is built from (run_on_start only matters at start)."""
    schedule = config.schedule
    if schedule is None:
        return ()
    return (schedule.cron, schedule.interval, schedule.timezone, schedule.jitter)


def _credential_changed(old: Secret | None, new: Secret | None) -> bool:
    if old is None or new is None:
        return old is not new
    return old.reveal() != new.reveal()
