"""Benchmark what pruner costs when it is not pruning: start-up, and the daemon at rest.

1. Start-up: `pruner --version`, `--help`, `health` (a fresh heartbeat: healthy) and
   `plan --help`, each run --runs times as a subprocess; the median wall and CPU time.
2. The daemon after start: `pruner daemon` (the real CLI) with an hourly schedule, its resident
   memory once it has started, and its CPU time over --idle seconds in which it waits.
3. 50 passes in a row: the daemon's own tick (`Daemon.tick`, what the scheduler calls) with the
   real pass, in this process, against the simulator in a process of its own. Between two
   passes the daemon's clock moves a day and every active server makes a backup, so each pass
   after the first deletes what aged out of keep_daily, as a daemon running daily does.
   Resident memory and the interpreter's allocated blocks after the first pass and after the
   last say whether anything grows from pass to pass.

Run from the repository root:

    .venv/bin/python bench/idle.py
    .venv/bin/python bench/idle.py --passes 10 --idle 5      # a quick look

It exits 1 when a goal is missed: `--version` over 0.2 s, memory growing by more than 10% from
the first pass to the last, or the idle daemon using over 0.05 s of CPU in 30 s.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from _support import SimulatorProcess, installed_environment

from pruner.sim import WRITE_TOKEN

GOAL_VERSION_S = 0.2
GOAL_IDLE_CPU_PER_30_S = 0.05
GOAL_GROWTH = 0.10
SERVERS, DAYS = 15, 120  # the fleet of bench/pass.py
PAGE = os.sysconf("SC_PAGE_SIZE")
TICKS = os.sysconf("SC_CLK_TCK")

POLICIES = [
    {"name": "backups", "keep_daily": 7, "keep_weekly": 4},
    {"name": "snapshots", "resource": "snapshots", "keep_last": 2},
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=10, help="runs of each start-up command")
    parser.add_argument("--idle", type=float, default=30.0, help="seconds the daemon idles")
    parser.add_argument("--passes", type=int, default=50, help="passes in a row")
    args = parser.parse_args()
    environment = installed_environment()
    missed: list[str] = []
    with tempfile.TemporaryDirectory(prefix="pruner-bench-") as name:
        directory = Path(name)
        missed += _start_up(directory, environment, args.runs)
        missed += _idle_daemon(directory, environment, args.idle)
        missed += _passes(directory, args.passes)
    for goal in missed:
        print(f"missed: {goal}")
    return 1 if missed else 0


# --- start-up ---------------------------------------------------------------------------------


def _start_up(directory: Path, environment: dict[str, str], runs: int) -> list[str]:
    config = _write_config(directory / "health", "http://127.0.0.1:9/v1")
    _fresh_heartbeat(directory / "health" / "state")
    pruner = Path(sys.executable).with_name("pruner")
    command = [str(pruner)] if pruner.exists() else [sys.executable, "-m", "pruner"]
    print(f"start-up: {' '.join(Path(part).name for part in command)} …, median of {runs} runs")
    print(f"{'command':<16}{'wall s':>8}{'CPU s':>8}")
    missed = []
    for args in (
        ["--version"],
        ["--help"],
        ["--config", str(config), "health"],
        ["plan", "--help"],
    ):
        walls, cpus = [], []
        for _ in range(runs):
            wall, cpu = _timed_run([*command, *args], environment)
            walls.append(wall)
            cpus.append(cpu)
        shown = " ".join(arg for arg in args if not arg.startswith(("/", "--config")))
        wall = statistics.median(walls)
        print(f"{shown:<16}{wall:8.3f}{statistics.median(cpus):8.3f}")
        if args == ["--version"] and wall > GOAL_VERSION_S:
            missed.append(f"--version takes {wall:.3f} s (goal: {GOAL_VERSION_S})")
    print()
    return missed


def _timed_run(command: list[str], environment: dict[str, str]) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    result = subprocess.run(command, env=environment, capture_output=True, check=False)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        sys.exit(f"{command} exited {result.returncode}: {result.stderr.decode()[-2000:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _fresh_heartbeat(state_dir: Path) -> None:
    from pruner.ops.heartbeat import Heartbeat  # noqa: PLC0415

    state_dir.mkdir(parents=True, exist_ok=True)
    Heartbeat(state_dir).beat(datetime.now(UTC))


# --- the daemon at rest -----------------------------------------------------------------------


def _idle_daemon(directory: Path, environment: dict[str, str], seconds: float) -> list[str]:
    config = _write_config(directory / "daemon", "http://127.0.0.1:9/v1")
    command = [sys.executable, "-m", "pruner", "--config", str(config), "daemon"]
    environment = {**environment, "VPSBG_API_TOKEN": WRITE_TOKEN}
    log = directory / "daemon" / "daemon.log"
    with log.open("w", encoding="utf-8") as stderr:
        daemon = subprocess.Popen(command, env=environment, stdout=stderr, stderr=stderr)
        try:
            _wait_for(lambda: "daemon.start" in log.read_text(encoding="utf-8"), daemon)
            rss_start, cpu_start = _process_usage(daemon.pid)
            time.sleep(seconds)
            rss_idle, cpu_idle = _process_usage(daemon.pid)
        finally:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(timeout=30)
    per_30_s = (cpu_idle - cpu_start) * 30 / seconds
    print(f"daemon: {command[-1]} with an hourly schedule, waiting")
    print(f"  resident memory after start      {rss_start / 2**20:7.1f} MB")
    print(f"  resident memory after {seconds:g} s idle {rss_idle / 2**20:7.1f} MB")
    step = 1 / TICKS
    print(
        f"  CPU time while idle              {per_30_s:7.3f} s per 30 s "
        f"({seconds:g} s measured, in steps of {step:g} s)"
    )
    print(f"  CPU time to start                {cpu_start:7.3f} s")
    print()
    if per_30_s > GOAL_IDLE_CPU_PER_30_S:
        return [f"the idle daemon uses {per_30_s:.3f} s CPU per 30 s"]
    return []


def _wait_for(ready: Callable[[], bool], process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while not ready():
        if process.poll() is not None or time.monotonic() > deadline:
            sys.exit(f"the daemon did not start (exit {process.poll()})")
        time.sleep(0.05)


def _process_usage(pid: int) -> tuple[int, float]:
    """Resident bytes and CPU seconds (user + system) of a running process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime
    rss = int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
    return rss, cpu


# --- 50 passes in a row -----------------------------------------------------------------------


def _passes(directory: Path, passes: int) -> list[str]:
    from pruner.config.load import load_config  # noqa: PLC0415
    from pruner.ops.daemon import Daemon  # noqa: PLC0415
    from pruner.ops.logging import configure_logging  # noqa: PLC0415
    from pruner.vpsbg.token import Secret  # noqa: PLC0415

    with SimulatorProcess(SERVERS, DAYS, 0.0) as simulator:
        config = load_config(_write_config(directory / "passes", simulator.base_url))
        clock = _DailyClock(datetime.now(UTC))
        log = (directory / "passes" / "passes.log").open("w", encoding="utf-8")
        configure_logging("json", "info", log)
        daemon = Daemon(
            config,
            dry_run=False,
            clock=clock,
            token=Secret(WRITE_TOKEN, "the benchmark"),
            scheduler_factory=lambda _zone: _NoScheduler(),
        )
        print(f"{passes} passes in a row: Daemon.tick with the real pass, a day apart")
        print(f"{'after pass':>10}{'RSS MB':>9}{'blocks':>10}{'deleted':>9}{'s':>7}")
        rows = []
        with _cpu_time() as cpu:
            for number in range(1, passes + 1):
                started = time.perf_counter()
                daemon.tick()
                clock.next_day()
                simulator.back_up_every_server(clock())
                gc.collect()
                rss, blocks = _own_usage()
                rows.append((rss, blocks))
                if number in (1, 2, 5, 10, 20, passes) or number % 50 == 0:
                    deleted = _last_pass_deleted(directory)
                    print(
                        f"{number:10d}{rss / 2**20:9.1f}{blocks:10,d}{deleted:9,d}"
                        f"{time.perf_counter() - started:7.2f}"
                    )
        log.close()
        counts = simulator.counts()
    print(f"  {counts.requests:,} requests, {counts.deleted:,} deleted, {cpu():.2f} s CPU")
    (first_rss, first_blocks), (last_rss, last_blocks) = rows[0], rows[-1]
    missed = []
    if last_rss > first_rss * (1 + GOAL_GROWTH):
        missed.append(
            f"resident memory grew from {first_rss / 2**20:.1f} to {last_rss / 2**20:.1f} MB"
        )
    if last_blocks > first_blocks * (1 + GOAL_GROWTH):
        missed.append(f"allocated blocks grew from {first_blocks:,} to {last_blocks:,}")
    return missed


def _last_pass_deleted(directory: Path) -> int:
    """Deletions the last pass reported (its pass.summary line)."""
    log = directory / "passes" / "passes.log"
    for line in reversed(log.read_text(encoding="utf-8").splitlines()):
        if '"pass.summary"' in line:
            return int(json.loads(line).get("deleted", 0))
    return 0


class _DailyClock:
    """The daemon's wall clock, a day later after each pass."""

    def __init__(self, start: datetime) -> None:
        self._offset = timedelta()
        self._start_real = datetime.now(UTC)
        self._start = start

    def __call__(self) -> datetime:
        return self._start + self._offset + (datetime.now(UTC) - self._start_real)

    def next_day(self) -> None:
        self._offset += timedelta(days=1)


class _NoScheduler:
    """The daemon's scheduler, never started: the benchmark calls the tick itself."""

    def add_job(self, func: Callable[[], None], **options: Any) -> None:
        pass

    def add_listener(self, callback: Callable[[Any], None], mask: int) -> None:
        pass

    def get_job(self, job_id: str) -> None:
        return None

    def reschedule_job(self, job_id: str, **options: Any) -> None:
        pass

    def start(self) -> None:
        pass

    def shutdown(self, wait: bool = True) -> None:
        pass


@contextmanager
def _cpu_time() -> Iterator[Callable[[], float]]:
    started = time.process_time()
    ended: list[float] = []
    yield lambda: (ended[0] if ended else time.process_time()) - started
    ended.append(time.process_time())


def _own_usage() -> tuple[int, int]:
    rss = int(Path("/proc/self/statm").read_text().split()[1]) * PAGE
    return rss, sys.getallocatedblocks()


# --- configs ----------------------------------------------------------------------------------


def _write_config(directory: Path, base_url: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    settings = {
        "api": {"base_url": base_url, "timeout": "30s", "backoff": "0.01s", "concurrency": 4},
        "dry_run": False,
        "state_dir": str(directory / "state"),
        "schedule": {"interval": "1h"},
        "metrics": {"listen": None},
        "safety": {
            "max_deletions_per_run": None,
            "max_delete_fraction": 1.0,
            "stale_after": None,  # the clock runs ahead of the fleet's newest backups
        },
        "policies": POLICIES,
    }
    path = directory / "config.yaml"
    path.write_text(yaml.safe_dump(settings), encoding="utf-8")
    return path


if __name__ == "__main__":
    threading.current_thread().name = "bench"
    raise SystemExit(main())
