"""`python -m pruner.sim`: serve a generated fleet until Ctrl-C, for trying the client by hand."""

from __future__ import annotations

import argparse
import signal
import threading
from collections.abc import Sequence
from datetime import UTC, datetime

from pruner.sim.fleet import generate_fleet
from pruner.sim.server import READ_TOKEN, WRITE_TOKEN, Simulator


def main(argv: Sequence[str] | None = None) -> int:
    """Serve a generated fleet until Ctrl-C, for trying the client by hand."""
    parser = argparse.ArgumentParser(
        prog="python -m pruner.sim",
        description="Serve a simulated VPSBG API with a generated fleet on 127.0.0.1.",
    )
    parser.add_argument("--port", type=int, default=0, help="port to bind (default: a free one)")
    parser.add_argument("--servers", type=int, default=30, help="servers in the fleet")
    parser.add_argument("--days", type=int, default=120, help="days of backup history")
    parser.add_argument("--seed", type=int, default=0, help="seed for the fleet and the faults")
    args = parser.parse_args(argv)
    fleet = generate_fleet(
        now=datetime.now(UTC), servers=args.servers, days=args.days, seed=args.seed
    )
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    with Simulator(fleet, seed=args.seed, port=args.port) as simulator:
        print(
            f"VPSBG API simulator at {simulator.base_url}\n"
            f"  {len(fleet.servers)} servers, {len(fleet.backups)} backups, "
            f"{len(fleet.snapshots)} snapshots\n"
            f"  write token: {WRITE_TOKEN}\n"
            f"  read token:  {READ_TOKEN}\n"
            "Ctrl-C to stop.",
            flush=True,
        )
        # A timed wait: a signal may land in a server thread, and only the main thread runs
        # Python signal handlers, which an untimed wait would never let it do.
        while not stopping.wait(0.2):
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
