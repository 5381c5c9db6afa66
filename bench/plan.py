"""Benchmark `pruner plan --listing` on a large fleet against a bare `json.load` of the same file.

Generates a deterministic saved listing (GET /backups pages plus GET /servers) and a config with a
realistic policy in a temporary directory, then measures, each in a fresh subprocess and three
times (the median counts):

- `json.load(FILE)`: the floor, what reading the file at all costs;
- `pruner plan --listing FILE --format json > /dev/null`: the whole command, and its peak memory;

and in this process the engine alone (`retention.decide` over every group), and where the
command's time goes (listing, planner, plan JSON).

    .venv/bin/python bench/plan.py                             # 1,000,000 backups, 10,000 servers
    .venv/bin/python bench/plan.py --backups 100000 --servers 1000

Targets at full size: the command within 1.5x json.load, peak memory within 600 MB.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import TypeVar

from pruner.config.load import load_config
from pruner.engine.models import Backup
from pruner.engine.planner import build_plan
from pruner.engine.retention import decide
from pruner.report.plan_json import write_plan_json
from pruner.vpsbg.listing import load_listing

NOW = datetime(2026, 11, 27, 3, 30, tzinfo=UTC)
SOFIA = timezone(timedelta(hours=3))
PAGE_SIZE = 50
RUNS = 3
FULL_SIZE = 1_000_000
TARGET_RATIO = 1.5
TARGET_RSS_MB = 600

CONFIG = """\
dry_run: true
timezone: null
safety:
  min_keep: 1
  max_deletions_per_run: null   # a benchmark wants the deletions in the plan, not held back
  max_delete_fraction: 1.0
  stale_after: 14d
policies:
  - name: fleet
    keep_last: 3
    keep_daily: 7
    keep_weekly: 4
    keep_monthly: 6
    max_age: 400d
    protect:
      names: ["*pre-upgrade*"]
"""

T = TypeVar("T")


@dataclass(frozen=True)
class Run:
    """One subprocess: wall and CPU seconds, peak resident memory in MB."""

    wall: float
    cpu: float
    rss_mb: float


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--backups", type=int, default=FULL_SIZE)
    parser.add_argument("--servers", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=20261127)
    parser.add_argument("--keep", action="store_true", help="keep the generated files")
    args = parser.parse_args()
    directory = Path(tempfile.mkdtemp(prefix="pruner-bench-"))
    try:
        return _bench(directory, args.backups, args.servers, args.seed)
    finally:
        if not args.keep:
            shutil.rmtree(directory)


def _bench(directory: Path, backups: int, servers: int, seed: int) -> int:
    listing = directory / "listing.json"
    config = directory / "config.yaml"
    config.write_text(CONFIG, encoding="utf-8")
    started = time.perf_counter()
    _write_listing(listing, backups, servers, random.Random(seed))
    print(
        f"generated {backups:,} backups over {servers:,} servers: "
        f"{listing.stat().st_size / 1e6:.0f} MB in {time.perf_counter() - started:.1f} s "
        f"({directory})"
    )
    floor = _median_run([sys.executable, "-c", _JSON_LOAD, str(listing)])
    plan = _median_run(_plan_command(config, listing))
    ratio = plan.wall / floor.wall
    print(f"{'':<26}{'wall s':>8}{'cpu s':>8}{'peak MB':>9}")
    _line("json.load (the floor)", floor)
    _line("pruner plan --listing", plan, f"{ratio:.2f}x json.load; target <= {TARGET_RATIO}x")
    print(f"(medians of {RUNS} runs, each in a fresh process)")
    _stages(config, listing)
    if backups < FULL_SIZE:
        return 0
    return 0 if ratio <= TARGET_RATIO and plan.rss_mb <= TARGET_RSS_MB else 1


_JSON_LOAD = "import json, sys\nwith open(sys.argv[1], 'rb') as f: json.load(f)"


def _plan_command(config: Path, listing: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "pruner",
        "--config",
        str(config),
        "--log-level",
        "error",
        "plan",
        "--listing",
        str(listing),
        "--format",
        "json",
        "--now",
        NOW.isoformat(),
    ]


def _median_run(command: list[str]) -> Run:
    runs = [_run(command) for _ in range(RUNS)]
    return Run(
        statistics.median(run.wall for run in runs),
        statistics.median(run.cpu for run in runs),
        statistics.median(run.rss_mb for run in runs),
    )


def _run(command: list[str]) -> Run:
    """The command with its output to /dev/null; its own resource usage, not its siblings'."""
    started = time.perf_counter()
    with open(os.devnull, "wb") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        stderr = process.stderr.read().decode() if process.stderr else ""
        process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode not in (0, 1):  # 1: an incomplete plan, still a whole run
        sys.exit(f"{command[2]} failed ({process.returncode}):\n{stderr}")
    return Run(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024)


def _line(what: str, run: Run, note: str = "") -> None:
    print(f"{what:<26}{run.wall:8.2f}{run.cpu:8.2f}{run.rss_mb:9.0f}  {note}")


def _timed(what: str, action: Callable[[], T], note: Callable[[T], str]) -> T:
    wall, cpu = time.perf_counter(), time.process_time()
    result = action()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"  {what:<24}{wall:8.2f}{cpu:8.2f}  {note(result)}")
    return result


def _stages(config_path: Path, listing_path: Path) -> None:
    """Where the command's time goes, stage by stage in this process; the collector is paused,
    as the command pauses it."""
    print("in this process:")
    gc.disable()
    config = load_config(config_path)
    listing = _timed(
        "listing", lambda: load_listing(listing_path), lambda x: f"{len(x.backups):,} backups"
    )
    groups: dict[int, list[Backup]] = {}
    for backup in listing.backups:
        groups.setdefault(backup.server_id, []).append(backup)
    policy = config.policies[0]
    _timed(
        "engine alone",
        lambda: sum(len(decide(group, policy, NOW, config.timezone)) for group in groups.values()),
        lambda decisions: f"{decisions:,} decisions in {len(groups):,} groups",
    )
    groups.clear()
    plan = _timed(
        "planner (with the engine)",
        lambda: build_plan(
            listing,
            config.policies,
            now=NOW,
            generated_at=NOW,
            zone=config.timezone,
            max_deletions_per_run=config.safety.max_deletions_per_run,
            dry_run=config.dry_run,
        ),
        lambda plan: f"{sum(group.deleted for group in plan.groups):,} deletions",
    )
    with open(os.devnull, "w", encoding="utf-8") as sink:
        _timed("plan JSON", lambda: write_plan_json(plan, sink), lambda _: "")


def _write_listing(path: Path, backups: int, servers: int, rng: random.Random) -> None:
    """{"servers": [...], "backups": [pages of 50]}: what a saved live listing looks like."""
    per_server = [backups // servers + (1 if n < backups % servers else 0) for n in range(servers)]
    fleet = [_server(n, rng) for n in range(servers)]
    pages = (backups + PAGE_SIZE - 1) // PAGE_SIZE
    with path.open("w", encoding="utf-8") as stream:
        stream.write('{"servers": ' + json.dumps(fleet) + ', "backups": [\n')
        items = _backup_items(fleet, per_server, rng)
        for page in range(1, pages + 1):
            chunk = [next(items) for _ in range(min(PAGE_SIZE, backups - (page - 1) * PAGE_SIZE))]
            meta = {
                "current_page": page,
                "last_page": pages,
                "per_page": PAGE_SIZE,
                "total": backups,
            }
            separator = ",\n" if page > 1 else ""
            stream.write(f'{separator}{{"data": [{",".join(chunk)}], "meta": {json.dumps(meta)}}}')
        stream.write("\n]}\n")


def _server(index: int, rng: random.Random) -> dict[str, object]:
    kind = ("db", "web", "app", "cache")[index % 4]
    roll = rng.random()
    status = "terminated" if roll < 0.01 else "active"
    return {
        "id": 1000 + index,
        "hostname": f"{kind}-{index:05d}",
        "status": status,
        "locked": 0.01 <= roll < 0.015,
        "created_at": "2024-08-29T14:21:54.000000Z",
    }


def _backup_items(
    fleet: list[dict[str, object]], per_server: list[int], rng: random.Random
) -> Iterator[str]:
    """Daily-ish backups over about 100 days per server, newest a few hours ago (+03:00)."""
    backup_id = 1
    for server, count in zip(fleet, per_server, strict=True):
        hostname = server["hostname"]
        size = rng.choice((20, 40, 50, 80, 160))
        stopped = rng.random() < 0.005  # a few servers whose backups stopped a month ago
        newest = NOW - timedelta(days=30 if stopped else 0, hours=rng.uniform(1, 20))
        step = timedelta(days=100 / max(count, 1))
        for n in range(count):
            moment = (newest - n * step - timedelta(minutes=rng.uniform(0, 90))).astimezone(SOFIA)
            stamp = moment.isoformat(timespec="seconds")
            label = "pre-upgrade" if rng.random() < 0.002 else "daily"
            name = f"{backup_id}_{hostname}_{moment:%Y_%m_%d-%H_%M_%S}_{label}.qcow2.gz"
            yield (
                f'{{"id": {backup_id}, "server_id": {server["id"]}, '
                f'"server_hostname": "{hostname}", "server_ip": "87.120.37.{backup_id % 256}", '
                f'"name": "{name}", "created_at": "{stamp}", "size": {size}}}'
            )
            backup_id += 1


if __name__ == "__main__":
    sys.exit(main())
