"""What the benchmarks share: the environment of the commands they time, and the simulator they
run against, in a process of its own so that the CPU time measured is pruner's alone."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from pruner.sim import Faults, Simulator, generate_fleet

SEED = 0
PAGE_SIZE = 50
LISTED = ("/v1/servers", "/v1/backups", "/v1/snapshots")
ROOT = Path(__file__).resolve().parent.parent


def installed_environment() -> dict[str, str]:
    """The environment of the measured commands, with pruner's bytecode compiled ahead as an
    installed pruner has it (pip compiles a wheel's modules; run from a source tree with
    PYTHONDONTWRITEBYTECODE set, every start would compile them anew)."""
    environment = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(ROOT / "pruner")],
        env=environment,
        check=True,
    )
    return environment


@dataclass(frozen=True)
class Counts:
    """What the simulator answered: pages read of each listing, the fewest pages they could
    take, DELETEs sent, items deleted, and all requests."""

    pages: dict[str, int]
    minimum_pages: int
    deletes: int
    deleted: int
    requests: int


class SimulatorProcess:
    """`python bench/_support.py SERVERS DAYS LATENCY_MS`: a simulator with a generated fleet,
    in a process of its own. `base_url` once started; `counts()` what it answered, and ends it."""

    def __init__(self, servers: int, days: int, latency_ms: float) -> None:
        command = [sys.executable, __file__, str(servers), str(days), str(latency_ms)]
        self._process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self._process.stdout is not None
        self.base_url = self._process.stdout.readline().strip()
        if not self.base_url:
            self.close()
            sys.exit("the simulator did not start")

    def back_up_every_server(self, moment: datetime) -> None:
        """Each active server makes a backup at `moment`, as it would every day."""
        assert self._process.stdin is not None
        assert self._process.stdout is not None
        self._process.stdin.write(f"backup {moment.isoformat()}\n")
        self._process.stdin.flush()
        self._process.stdout.readline()

    def counts(self) -> Counts:
        """The requests it answered; the simulator then exits."""
        assert self._process.stdin is not None
        assert self._process.stdout is not None
        self._process.stdin.write("counts\n")
        self._process.stdin.flush()
        return Counts(**json.loads(self._process.stdout.readline()))

    def close(self) -> None:
        self._process.kill()
        self._process.wait()

    def __enter__(self) -> SimulatorProcess:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _serve(servers: int, days: int, latency_ms: float) -> int:
    """Print the base URL, then follow the lines on stdin: `backup TIME` makes a backup of each
    active server at TIME (and says "ok"); `counts` prints the Counts as one JSON line and
    exits."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    now = datetime.now(UTC).replace(microsecond=0)
    fleet = generate_fleet(now=now, servers=servers, days=days, seed=SEED)
    listed = (fleet.servers, fleet.backups, fleet.snapshots)
    with Simulator(fleet, faults=Faults(latency=latency_ms / 1000), seed=SEED) as simulator:
        print(simulator.base_url, flush=True)
        while (line := sys.stdin.readline()).startswith("backup "):
            moment = datetime.fromisoformat(line.split()[1])
            for server in simulator.servers():
                if server.get("status") == "active":
                    simulator.add_backup(int(server["id"]), created_at=moment)
            print("ok", flush=True)
        gets = Counter(r.path for r in simulator.requests if r.method == "GET")
        counts = Counts(
            pages={path: gets[path] for path in LISTED if gets[path]},
            minimum_pages=sum(max(1, math.ceil(len(items) / PAGE_SIZE)) for items in listed),
            deletes=simulator.request_count("DELETE"),
            deleted=len(simulator.deleted),
            requests=len(simulator.requests),
        )
        print(json.dumps(asdict(counts)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(_serve(int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])))
