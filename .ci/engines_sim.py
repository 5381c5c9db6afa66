"""The simulated VPSBG API and the comparisons that `.ci/engines.sh` needs around a real engine.

    engines_sim.py serve DIR TOKEN_FILE   serve a fresh fleet on 127.0.0.1 that accepts only that
                                          token; DIR/url holds the API's base URL once it answers;
                                          on SIGTERM (or after 15 minutes, if nothing stops
                                          it), DIR/deleted.json lists what was deleted
    engines_sim.py compare PLAN DELETED [LAST_PLAN]
                                          the deletions are exactly PLAN's `delete` decisions (and
                                          a pass's LAST_PLAN deleted each of them, no other)
    engines_sim.py leaks TOKEN_FILE FILE...
                                          no FILE shows the token or a recognisable part of it

Only the simulator is imported from pruner, from where it lives before and after the package
moves it into a subpackage; everything else the engine checks do goes through the CLI.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

try:
    from pruner.sim import (  # type: ignore[import-not-found,import-untyped,unused-ignore]
        Simulator,
        generate_fleet,
    )
except ModuleNotFoundError:
    from pruner.simulator import Simulator, generate_fleet

# A small fleet with every kind of group (ok, locked, stale, orphan), as the end-to-end tests use.
FLEET_SERVERS = 8
FLEET_DAYS = 40
FLEET_SEED = 1
LEAK_FRAGMENT = 12  # characters: any run of this many from the token counts as a leak
LIFETIME = 15 * 60.0  # seconds: a simulator whose script was killed stops by itself

Deletion = tuple[str, int]  # (resource, id)


def serve(directory: Path, token_file: Path) -> int:
    token = token_file.read_text(encoding="utf-8").strip()
    now = datetime.now(UTC).replace(microsecond=0)
    fleet = generate_fleet(now=now, servers=FLEET_SERVERS, days=FLEET_DAYS, seed=FLEET_SEED)
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    with Simulator(fleet, tokens={token: "write"}, seed=FLEET_SEED) as simulator:
        _write_atomically(directory / "url", simulator.base_url + "\n")
        # A timed wait: only the main thread runs signal handlers, and an untimed wait would
        # never give it the chance.
        deadline = time.monotonic() + LIFETIME
        while not stopping.wait(0.2) and time.monotonic() < deadline:
            pass
    deleted = sorted(f"{resource}:{item_id}" for resource, item_id in simulator.deleted)
    _write_atomically(directory / "deleted.json", json.dumps(deleted) + "\n")
    if simulator.errors:
        print(f"the simulator itself failed: {simulator.errors!r}", file=sys.stderr)
        return 1
    return 0


def compare(plan: Path, deleted: Path, last_plan: Path | None) -> int:
    planned = _planned_deletions(_load(plan))
    done = {_deletion(text) for text in _load(deleted)}
    problems = list(_differences("the plan", planned, "the API", done))
    if last_plan is not None:
        document = _load(last_plan)
        recorded = _planned_deletions(document, outcome="deleted")
        problems += _differences("the plan", planned, "the pass's last-plan.json", recorded)
    if not planned:
        problems.append("the plan deletes nothing, so the check would prove nothing")
    if problems:
        print("; ".join(problems))
        return 1
    print(f"{len(done)} deletions ({_by_resource(done)}), exactly the plan's")
    return 0


def leaks(token_file: Path, files: Sequence[Path]) -> int:
    token = token_file.read_text(encoding="utf-8").strip()
    fragments = {token[i : i + LEAK_FRAGMENT] for i in range(len(token) - LEAK_FRAGMENT + 1)}
    found = [
        f"{path} shows {fragment!r}"
        for path in files
        for fragment in sorted(fragments)
        if fragment in path.read_text(encoding="utf-8", errors="replace")
    ]
    if found:
        print("; ".join(found[:3]))
        return 1
    print(f"no part of the token in {len(files)} file(s)")
    return 0


def _planned_deletions(document: Any, outcome: str | None = None) -> set[Deletion]:
    return {
        (str(entry["resource"]), int(entry["id"]))
        for entry in document["decisions"]
        if entry["action"] == "delete" and (outcome is None or entry.get("outcome") == outcome)
    }


def _differences(
    expected_name: str, expected: set[Deletion], actual_name: str, actual: set[Deletion]
) -> Iterable[str]:
    if missing := expected - actual:
        yield f"{actual_name} lacks {len(missing)} of {expected_name}'s deletions: {_ids(missing)}"
    if extra := actual - expected:
        yield f"{actual_name} has {len(extra)} deletions not in {expected_name}: {_ids(extra)}"


def _ids(deletions: set[Deletion], shown: int = 10) -> str:
    texts = [f"{resource}:{item_id}" for resource, item_id in sorted(deletions)]
    return ", ".join(texts[:shown]) + (" …" if len(texts) > shown else "")


def _by_resource(deletions: set[Deletion]) -> str:
    counts = Counter(resource for resource, _ in deletions)
    return ", ".join(f"{count} {resource}" for resource, count in sorted(counts.items()))


def _deletion(text: str) -> Deletion:
    resource, _, item_id = text.partition(":")
    return resource, int(item_id)


def _load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _write_atomically(path: Path, text: str) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)


def main(argv: Sequence[str]) -> int:
    match argv:
        case ["serve", directory, token_file]:
            return serve(Path(directory), Path(token_file))
        case ["compare", plan, deleted]:
            return compare(Path(plan), Path(deleted), None)
        case ["compare", plan, deleted, last_plan]:
            return compare(Path(plan), Path(deleted), Path(last_plan))
        case ["leaks", token_file, *files] if files:
            return leaks(Path(token_file), [Path(file) for file in files])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
