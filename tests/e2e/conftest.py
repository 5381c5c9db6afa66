"""End-to-end fixtures: the simulated VPSBG API on 127.0.0.1, and the real CLI in a subprocess.

Every test gets a fresh simulator with a small deterministic fleet (8 servers, 40 days: a locked
server, a stale one, a terminated one with backups, two db servers with a pre-upgrade backup)
and talks to it through `python -m pruner`, exactly as an operator would. Nothing sleeps: tests
synchronise on the simulator's events (`delete_started`, `delete_gate`) and callbacks.

Fixtures (shared with the daemon and demo tests):
- `simulator_now`: the moment the fleet was generated for (wall clock, UTC, whole seconds).
- `simulator`: the started Simulator; `simulator.base_url` is the API base. Stopped after the test,
  which then fails if the simulator itself raised (its own bugs, in `simulator.errors`).
- `write_config(tmp_path, base_url, **overrides) -> Path`: a config for that fleet (see
  `BASE_CONFIG`), with `overrides` deep-merged (a dict merges, anything else replaces).
- `run_cli(*args, env=None, timeout=60) -> CompletedProcess[str]`: `python -m pruner ARGS`;
  `env` entries are added to a clean environment (a None value unsets a variable).
- `start_cli(*args, env=None) -> CliProcess`: the same, without waiting; `.finish()` waits.
- `engine_plan(config, now, *, listing=None, allow_large_deletions=False) -> Plan`: what the
  engine decides, in-process, for `listing` (default: the simulator's state now): the reference
  the CLI's passes are compared with.
- `write_token`, `read_token`: the API keys `run_cli` uses by default and a Read-only one.
- `e2e`: all of the above in one object (`E2E`), for tests that need several of them.
- `no_token_leaks`: use it (`pytestmark = pytest.mark.usefixtures("no_token_leaks")`) to fail a
  test when any CLI output of that test shows an API token, or a recognisable part of one.
"""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import pytest
import yaml

from pruner.config.load import load_config
from pruner.engine.models import Backup, Listing, Plan, Resource
from pruner.engine.planner import build_plan
from pruner.sim import READ_TOKEN, WRITE_TOKEN, Simulator, generate_fleet
from pruner.vpsbg.listing import parse_backups, parse_servers

# Distinctive, random-looking keys: a leak of any recognisable part of them is easy to spot. The
# simulator also accepts its standard WRITE_TOKEN and READ_TOKEN.
E2E_WRITE_TOKEN = "vpsbgW-7qK2xR9mZ4tL8pN3vB6cJ1hD5fG0sYaE2wQ"
E2E_READ_TOKEN = "vpsbgR-3nT8wQ1yU6iO4pA9sD2fG7hJ5kL0zXcV4bM"
_TOKENS: dict[str, Literal["read", "write"]] = {
    E2E_WRITE_TOKEN: "write",
    E2E_READ_TOKEN: "read",
    WRITE_TOKEN: "write",
    READ_TOKEN: "read",
}
_LEAK_FRAGMENT = 12  # characters: any run of this many from a token counts as a leak

FLEET_SERVERS = 8
FLEET_DAYS = 40
FLEET_SEED = 1
CLI_TIMEOUT = 60.0

# Policies for the generated fleet: every kind of group shows up (ok, skipped:locked,
# skipped:stale, orphan), and each has something to delete.
POLICIES: list[dict[str, Any]] = [
    {
        "name": "databases",
        "match": {"hostnames": ["db-*"]},
        "keep_last": 3,
        "keep_daily": 7,
        "keep_weekly": 4,
        "protect": {"names": ["*pre-upgrade*"]},
    },
    {"name": "web", "match": {"hostnames": ["web-*"]}, "keep_daily": 14, "keep_weekly": 8},
    {"name": "snapshots", "resource": "snapshots", "keep_last": 2},
    {"name": "everything-else", "keep_daily": 7, "keep_weekly": 4},
]

# Fast, and with the caps loosened (the guard tests tighten them): real deletions unless a
# test says dry_run. stale_after keeps its default (14d), so the stale server is skipped.
BASE_CONFIG: dict[str, Any] = {
    "api": {"timeout": "5s", "retries": 3, "backoff": "0.01s", "concurrency": 4},
    "dry_run": False,
    "safety": {"max_deletions_per_run": None, "max_delete_fraction": 1.0},
    "policies": POLICIES,
}


def _merged(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    result = copy.deepcopy(dict(base))
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(result.get(key), Mapping):
            result[key] = _merged(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def _clean_environment(overrides: Mapping[str, str | None] | None) -> dict[str, str]:
    environment = {
        key: value
        for key, value in os.environ.items()
        if key.upper() not in {"HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"}
        and key not in {"PRUNER_CONFIG", "VPSBG_API_TOKEN", "CREDENTIALS_DIRECTORY"}
    }
    environment.update(
        {
            "VPSBG_API_TOKEN": E2E_WRITE_TOKEN,
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
            "PYTHONUNBUFFERED": "1",
        }
    )
    for key, value in (overrides or {}).items():
        if value is None:
            environment.pop(key, None)
        else:
            environment[key] = value
    return environment


def _command(args: tuple[object, ...]) -> list[str]:
    return [sys.executable, "-m", "pruner", *(str(arg) for arg in args)]


@dataclass
class CliOutputs:
    """Everything the CLI printed during one test, for the leak check."""

    runs: list[tuple[list[str], str, str]] = field(default_factory=list)

    def record(self, command: list[str], stdout: str | None, stderr: str | None) -> None:
        self.runs.append((command, stdout or "", stderr or ""))


class CliProcess:
    """A CLI started in the background; `finish` waits for it (with a timeout) and records it."""

    def __init__(
        self, command: list[str], popen: subprocess.Popen[str], outputs: CliOutputs
    ) -> None:
        self.command = command
        self.popen = popen
        self._outputs = outputs
        self.result: subprocess.CompletedProcess[str] | None = None

    def finish(self, timeout: float = CLI_TIMEOUT) -> subprocess.CompletedProcess[str]:
        if self.result is None:
            try:
                stdout, stderr = self.popen.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                stdout, stderr = self.popen.communicate()
                self._outputs.record(self.command, stdout, stderr)
                raise
            self._outputs.record(self.command, stdout, stderr)
            code = self.popen.returncode
            self.result = subprocess.CompletedProcess(self.command, code, stdout, stderr)
        return self.result


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture
def write_token() -> str:
    return E2E_WRITE_TOKEN


@pytest.fixture
def read_token() -> str:
    return E2E_READ_TOKEN


@pytest.fixture
def simulator_now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def simulator(simulator_now: datetime) -> Iterator[Simulator]:
    fleet = generate_fleet(
        now=simulator_now, servers=FLEET_SERVERS, days=FLEET_DAYS, seed=FLEET_SEED
    )
    with Simulator(fleet, tokens=_TOKENS, seed=FLEET_SEED) as running:
        yield running
    assert not running.errors, f"the simulator itself failed: {running.errors!r}"


@pytest.fixture
def write_config() -> Callable[..., Path]:
    written: dict[Path, int] = {}

    def write(tmp_path: Path, base_url: str, **overrides: Any) -> Path:
        settings = _merged(BASE_CONFIG, {"api": {"base_url": base_url}})
        settings["state_dir"] = str(tmp_path / "state")
        settings = _merged(settings, overrides)
        count = written[tmp_path] = written.get(tmp_path, 0) + 1
        path = tmp_path / ("config.yaml" if count == 1 else f"config-{count}.yaml")
        path.write_text(yaml.safe_dump(settings, sort_keys=False), encoding="utf-8")
        return path

    return write


@pytest.fixture
def cli_outputs() -> CliOutputs:
    return CliOutputs()


@pytest.fixture
def run_cli(
    tmp_path: Path, cli_outputs: CliOutputs
) -> Callable[..., subprocess.CompletedProcess[str]]:
    def run(
        *args: object,
        env: Mapping[str, str | None] | None = None,
        timeout: float = CLI_TIMEOUT,
    ) -> subprocess.CompletedProcess[str]:
        command = _command(args)
        try:
            result = subprocess.run(
                command,
                env=_clean_environment(env),
                cwd=tmp_path,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as expired:
            cli_outputs.record(command, _text(expired.stdout), _text(expired.stderr))
            raise
        cli_outputs.record(command, result.stdout, result.stderr)
        return result

    return run


@pytest.fixture
def start_cli(tmp_path: Path, cli_outputs: CliOutputs) -> Iterator[Callable[..., CliProcess]]:
    started: list[CliProcess] = []

    def start(*args: object, env: Mapping[str, str | None] | None = None) -> CliProcess:
        command = _command(args)
        popen = subprocess.Popen(
            command,
            env=_clean_environment(env),
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        process = CliProcess(command, popen, cli_outputs)
        started.append(process)
        return process

    yield start
    for process in started:
        if process.popen.poll() is None:
            process.popen.kill()
        process.popen.communicate()


@pytest.fixture
def no_token_leaks(cli_outputs: CliOutputs) -> Iterator[None]:
    yield
    for command, stdout, stderr in cli_outputs.runs:
        for token in _TOKENS:
            for stream, text in (("stdout", stdout), ("stderr", stderr)):
                leaked = leaked_fragment(token, text)
                assert leaked is None, (
                    f"{' '.join(command[2:])}: an API token shows on {stream} ({leaked!r})"
                )


@pytest.fixture
def engine_plan(simulator: Simulator) -> Callable[..., Plan]:
    def plan(
        config: Path,
        now: datetime,
        *,
        listing: Listing | None = None,
        allow_large_deletions: bool = False,
    ) -> Plan:
        settings = load_config(config)
        if listing is None:  # a pass lists only the resources its policies cover
            resources = {policy.resource for policy in settings.policies}
            listing = simulator_listing(simulator, resources)
        return build_plan(
            listing,
            settings.policies,
            now=now,
            generated_at=now,
            zone=settings.timezone,
            max_deletions_per_run=settings.safety.max_deletions_per_run,
            dry_run=settings.dry_run,
            allow_large_deletions=allow_large_deletions,
        )

    return plan


@dataclass
class E2E:
    """One test's simulator and CLI, bound together: `e2e.config(...)`, `e2e.cli(...)`."""

    simulator: Simulator
    now: datetime  # the fleet's
    tmp_path: Path
    _write_config: Callable[..., Path]
    _run_cli: Callable[..., subprocess.CompletedProcess[str]]
    _start_cli: Callable[..., CliProcess]
    _engine_plan: Callable[..., Plan]

    def config(self, **overrides: Any) -> Path:
        return self._write_config(self.tmp_path, self.simulator.base_url, **overrides)

    def cli(
        self,
        *args: object,
        env: Mapping[str, str | None] | None = None,
        timeout: float = CLI_TIMEOUT,
    ) -> subprocess.CompletedProcess[str]:
        return self._run_cli(*args, env=env, timeout=timeout)

    def start(self, *args: object, env: Mapping[str, str | None] | None = None) -> CliProcess:
        return self._start_cli(*args, env=env)

    def plan(
        self,
        config: Path,
        now: datetime,
        *,
        listing: Listing | None = None,
        allow_large_deletions: bool = False,
    ) -> Plan:
        """The engine's plan for `listing` (default: the simulator's state now)."""
        return self._engine_plan(
            config, now, listing=listing, allow_large_deletions=allow_large_deletions
        )

    def listing(self, resources: Iterable[Resource] = ("backups", "snapshots")) -> Listing:
        """The simulator's state now, as a complete listing of `resources` would read it."""
        return simulator_listing(self.simulator, tuple(resources))

    @property
    def state_dir(self) -> Path:
        return self.tmp_path / "state"

    def server(self, **wanted: object) -> dict[str, Any]:
        """The one server of the fleet with these fields, e.g. `server(locked=True)`."""
        found = [
            s for s in self.simulator.servers() if all(s.get(k) == v for k, v in wanted.items())
        ]
        assert len(found) == 1, f"the fleet has {len(found)} servers with {wanted}"
        return found[0]


@pytest.fixture
def e2e(
    *,
    simulator: Simulator,
    simulator_now: datetime,
    tmp_path: Path,
    write_config: Callable[..., Path],
    run_cli: Callable[..., subprocess.CompletedProcess[str]],
    start_cli: Callable[..., CliProcess],
    engine_plan: Callable[..., Plan],
) -> E2E:
    return E2E(simulator, simulator_now, tmp_path, write_config, run_cli, start_cli, engine_plan)


# --- helpers ----------------------------------------------------------------------------------


def simulator_listing(
    simulator: Simulator, resources: Iterable[Resource] = ("backups", "snapshots")
) -> Listing:
    """The simulator's current state as a complete live listing of `resources` would read it."""
    wanted = tuple(resources)
    # GET /servers?filter[status]=all lists these statuses; a "deleted" server is not listed.
    statuses = {"active", "suspended", "terminated"}
    listed = [s for s in simulator.servers() if s.get("status") in statuses]
    servers, server_problems = parse_servers(listed)
    backups: list[Backup] = []
    problems = list(server_problems)
    for resource in wanted:
        parsed, item_problems = parse_backups(simulator.backups(resource), resource)
        backups.extend(parsed)
        problems.extend(item_problems)
    return Listing(
        backups=tuple(backups),
        servers=tuple(servers),
        resources=frozenset(wanted),
        problems=tuple(problems),
    )


def leaked_fragment(token: str, text: str) -> str | None:
    """The first run of `_LEAK_FRAGMENT` characters of `token` that `text` shows, if any."""
    if len(token) <= _LEAK_FRAGMENT:
        return token if token in text else None
    for start in range(len(token) - _LEAK_FRAGMENT + 1):
        fragment = token[start : start + _LEAK_FRAGMENT]
        if fragment in text:
            return fragment
    return None


def _text(value: str | bytes | None) -> str:
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return value or ""
