"""The metrics of passes run in process against the simulator, read back in the exposition
format (as Prometheus and node_exporter read them)."""

from __future__ import annotations

import json
import re
import stat
import threading
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from pruner.config.load import parse_config
from pruner.config.schema import Config
from pruner.engine.models import Plan
from pruner.engine.results import PassResult
from pruner.ops.daemon import Daemon
from pruner.ops.metrics import (
    BACKUP_STATES,
    MetricsServer,
    PassMetrics,
    ReloadMetrics,
    new_registry,
    previous_success,
    run_result,
    write_textfile,
)
from pruner.passes.one_pass import run_pass
from pruner.sim import WRITE_TOKEN, Fleet, ScriptedResponse, Simulator, generate_fleet
from pruner.vpsbg.client import ApiClient, build_session
from pruner.vpsbg.token import Secret

NOW = datetime(2026, 11, 27, 3, 30, tzinfo=UTC)
ALLOWED_LABELS = {"resource", "state", "result", "guard", "method", "code", "version"}
ALLOWED_LABELS |= {"server", "hostname"}

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


class Clock:
    """The wall clock the metrics read; tests move it."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(scope="module")
def fleet() -> Fleet:
    return generate_fleet(now=NOW, servers=8, days=40, seed=1)


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


def make_config(sim: Simulator, tmp_path: Path, **overrides: Any) -> Config:
    settings: dict[str, Any] = {
        "api": {"base_url": sim.base_url, "retries": 0, "backoff": "0.001s", "timeout": "5s"},
        "dry_run": False,
        "state_dir": str(tmp_path / "state"),
        "safety": {"max_delete_fraction": 1.0, "max_deletions_per_run": None},
        "policies": [
            {"name": "all", "keep_daily": 7},
            {"name": "snapshots", "resource": "snapshots", "keep_last": 1},
        ],
    }
    settings.update(overrides)
    return parse_config(json.dumps(settings), source="test.yaml")


Run = Callable[..., tuple[PassResult, CollectorRegistry, PassMetrics]]


@pytest.fixture
def run(sim: Simulator, clock: Clock, tmp_path: Path) -> Iterator[Run]:
    """A pass over the simulator with a PassMetrics hook, its client reporting to the hook."""
    sessions = []

    def run_it(config: Config | None = None, **options: Any) -> Any:
        config = config if config is not None else make_config(sim, tmp_path)
        registry = new_registry()
        metrics = PassMetrics(config, registry, clock=clock, version="1.2.3")
        session = build_session(config.api.concurrency)
        session.trust_env = False
        sessions.append(session)
        stop = threading.Event()
        client = ApiClient.from_settings(
            config.api,
            Secret(WRITE_TOKEN),
            session=session,
            stop=stop,
            on_response=metrics.api_response,
        )
        options.setdefault("dry_run", False)
        result = run_pass(
            config,
            client=client,
            token=Secret(WRITE_TOKEN),
            clock=lambda: NOW,
            stop=stop,
            hooks=[metrics],
            **options,
        )
        return result, registry, metrics

    yield run_it
    for session in sessions:
        session.close()


def samples(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def scrape(registry: CollectorRegistry) -> Samples:
    return samples(generate_latest(registry).decode("utf-8"))


def _labels(labels: frozenset[tuple[str, str]], *names: str) -> tuple[str, ...]:
    found = dict(labels)
    return tuple(found[name] for name in names)


def value(found: Samples, name: str, **labels: str) -> float:
    return found[(name, frozenset(labels.items()))]


def series(found: Samples, name: str) -> dict[frozenset[tuple[str, str]], float]:
    return {labels: number for (metric, labels), number in found.items() if metric == name}


# --- after a pass -------------------------------------------------------------------------------


def test_pass_metrics_count_what_a_real_pass_did(sim: Simulator, run: Run) -> None:
    sizes = {("backups", b["id"]): b.get("size") or 0 for b in sim.backups("backups")}
    sizes |= {("snapshots", b["id"]): b.get("size") or 0 for b in sim.backups("snapshots")}

    result, registry, _ = run()
    found = scrape(registry)

    assert result.exit_code == 0
    deleted = {r: sum(1 for kind, _ in sim.deleted if kind == r) for r in ("backups", "snapshots")}
    assert deleted["backups"] > 0
    assert deleted["snapshots"] > 0
    for resource, count in deleted.items():
        assert value(found, "pruner_deleted_total", resource=resource) == count
        assert value(found, "pruner_backups", resource=resource, state="deleted") == count
        assert value(found, "pruner_deletion_failures_total", resource=resource) == 0
    freed = sum(sizes[item] for item in sim.deleted)
    assert value(found, "pruner_size_freed_gigabytes_total") == freed
    assert value(found, "pruner_runs_total", result="ok") == 1
    assert value(found, "pruner_runs_total", result="incomplete") == 0
    assert value(found, "pruner_last_run_timestamp_seconds") == NOW.timestamp()
    assert value(found, "pruner_last_success_timestamp_seconds") == NOW.timestamp()
    assert value(found, "pruner_run_duration_seconds") == result.duration
    assert value(found, "pruner_dry_run") == 0
    assert value(found, "pruner_build_info", version="1.2.3") == 1
    assert value(found, "pruner_guard_trips_total", guard="stale") == 1
    assert value(found, "pruner_guard_trips_total", guard="locked") == 1
    requests = series(found, "pruner_api_requests_total")
    assert value(found, "pruner_api_requests_total", method="DELETE", code="204") == len(
        sim.deleted
    )
    assert value(found, "pruner_api_requests_total", method="GET", code="200") == (
        sim.request_count("GET")
    )
    assert sum(requests.values()) == len(sim.requests)


def test_pass_metrics_backups_by_state_add_up_to_the_listing(sim: Simulator, run: Run) -> None:
    listed = {"backups": len(sim.backups("backups")), "snapshots": len(sim.backups("snapshots"))}

    result, registry, _ = run()
    found = scrape(registry)

    for resource, count in listed.items():
        states = {
            state: value(found, "pruner_backups", resource=resource, state=state)
            for state in BACKUP_STATES
        }
        assert sum(states.values()) == count
    kept = sum(g.kept for g in result.plan.groups if g.status not in ("orphan", "unmanaged"))
    kept_states = ("kept", "protected")
    assert sum(
        value(found, "pruner_backups", resource=r, state=s)
        for r in listed
        for s in kept_states
    ) == kept  # fmt: skip
    orphans = sum(g.kept for g in result.plan.groups if g.status == "orphan")
    assert orphans > 0
    assert value(found, "pruner_backups", resource="backups", state="orphan") == orphans


def test_pass_metrics_of_a_dry_run_show_what_would_be_deleted(sim: Simulator, run: Run) -> None:
    result, registry, _ = run(dry_run=True)
    found = scrape(registry)

    assert sim.request_count("DELETE") == 0
    would = sum(
        value(found, "pruner_backups", resource=r, state="would_delete")
        for r in ("backups", "snapshots")
    )
    assert would == result.would_delete > 0
    assert value(found, "pruner_deleted_total", resource="backups") == 0
    assert value(found, "pruner_backups", resource="backups", state="deleted") == 0
    assert value(found, "pruner_dry_run") == 1
    assert value(found, "pruner_runs_total", result="ok") == 1


def test_pass_metrics_count_the_deletions_waiting_for_their_confirmation(
    sim: Simulator, run: Run, tmp_path: Path
) -> None:
    two_phase = make_config(
        sim,
        tmp_path,
        safety={"max_delete_fraction": 1.0, "max_deletions_per_run": None, "confirm_after": "12h"},
    )

    result, registry, _ = run(two_phase)  # the first pass: every deletion waits
    found = scrape(registry)
    deletes = sim.request_count("DELETE")
    _, without, _ = run()

    assert deletes == 0
    for resource in ("backups", "snapshots"):
        waiting = sum(d.pending for d in result.plan.decisions if d.backup.resource == resource)
        assert waiting > 0
        assert value(found, "pruner_pending_deletions", resource=resource) == waiting
        assert value(scrape(without), "pruner_pending_deletions", resource=resource) == 0


def test_pass_metrics_count_failed_deletions_and_no_success(
    sim: Simulator, run: Run, tmp_path: Path
) -> None:
    sim.faults.locked_delete_rate = 1.0  # every DELETE: 423, and no retries in this config
    safety = {"max_delete_fraction": 1.0, "max_deletions_per_run": None}
    # Every deletion attempted: the circuit breaker would stop after ten failures in a row.
    config = make_config(sim, tmp_path, safety=safety | {"max_consecutive_failures": 10_000})

    result, registry, _ = run(config)
    found = scrape(registry)

    assert result.exit_code == 1
    attempted = {r: sum(1 for o in result.outcomes if o.resource == r) for r in ("backups",)}
    assert attempted["backups"] > 0
    assert (
        value(found, "pruner_deletion_failures_total", resource="backups") == (attempted["backups"])
    )
    assert (
        value(found, "pruner_backups", resource="backups", state="failed") == (attempted["backups"])
    )
    assert value(found, "pruner_deleted_total", resource="backups") == 0
    assert value(found, "pruner_runs_total", result="incomplete") == 1
    assert value(found, "pruner_runs_total", result="ok") == 0
    assert value(found, "pruner_last_run_timestamp_seconds") == NOW.timestamp()
    assert value(found, "pruner_last_success_timestamp_seconds") == 0
    assert value(found, "pruner_api_requests_total", method="DELETE", code="423") == sum(
        attempted.values()
    ) + sum(1 for o in result.outcomes if o.resource == "snapshots")


def test_pass_metrics_a_pass_refused_while_listing_is_the_last_pass(
    sim: Simulator, run: Run, clock: Clock
) -> None:
    _, registry, metrics = run()  # a good pass first: its gauges must not outlive the next
    sim.script("GET", "/v1/servers", ScriptedResponse(401))
    refused, _, _ = run()
    clock.now = NOW + timedelta(hours=1)

    metrics.pass_started(refused.run_id, dry_run=False)
    metrics.pass_finished(replace(refused, duration=42.0))
    found = scrape(registry)

    assert value(found, "pruner_runs_total", result="failed") == 1
    assert value(found, "pruner_last_run_timestamp_seconds") == clock.now.timestamp()
    assert value(found, "pruner_last_success_timestamp_seconds") == NOW.timestamp()
    assert value(found, "pruner_run_duration_seconds") == 42.0
    assert set(series(found, "pruner_backups").values()) == {0}  # it listed nothing
    # The ages still come from the last listing: an outage must not hide stopped backups.
    assert series(found, "pruner_oldest_newest_backup_age_seconds")


def test_pass_metrics_count_a_pass_that_raised_as_failed_and_a_skipped_tick() -> None:
    config = parse_config("policies:\n  - name: d\n    keep_daily: 1\n")
    registry = new_registry()
    metrics = PassMetrics(config, registry, clock=lambda: NOW)

    metrics.pass_started("abc", dry_run=False)
    metrics.pass_failed("abc", RuntimeError("a bug"))
    metrics.pass_skipped()
    found = scrape(registry)

    assert value(found, "pruner_runs_total", result="failed") == 1
    assert value(found, "pruner_runs_total", result="skipped") == 1
    assert value(found, "pruner_last_run_timestamp_seconds") == NOW.timestamp()
    assert value(found, "pruner_last_success_timestamp_seconds") == 0
    assert series(found, "pruner_oldest_newest_backup_age_seconds") == {}


def test_pass_metrics_show_when_the_pass_in_progress_started(clock: Clock) -> None:
    config = parse_config("policies:\n  - name: d\n    keep_daily: 1\n")
    registry = new_registry()
    metrics = PassMetrics(config, registry, clock=clock)
    before = value(scrape(registry), "pruner_running_pass_start_timestamp_seconds")

    metrics.pass_started("abc", dry_run=False)
    clock.now = NOW + timedelta(minutes=5)
    during = value(scrape(registry), "pruner_running_pass_start_timestamp_seconds")
    metrics.pass_failed("abc", RuntimeError("a bug"))
    after = value(scrape(registry), "pruner_running_pass_start_timestamp_seconds")

    assert (before, during, after) == (0, NOW.timestamp(), 0)


def test_run_result_of_a_pass_its_deadline_stopped_is_incomplete_not_interrupted() -> None:
    plan = Plan(generated_at=NOW, now=NOW, dry_run=False, groups=())
    stopped = PassResult("abc", plan, (), exit_code=1, interrupted=True, duration=3600.0)

    assert run_result(stopped) == "interrupted"  # a signal
    assert run_result(replace(stopped, deadline_reached=True)) == "incomplete"


def test_run_result_of_a_refused_apply_is_refused() -> None:
    plan = Plan(generated_at=NOW, now=NOW, dry_run=False, groups=())
    refused = PassResult("abc", plan, (), exit_code=4, interrupted=False, duration=0.1)

    assert run_result(refused) == "refused"


def test_pass_metrics_api_attempts_without_an_answer_have_code_none() -> None:
    config = parse_config("policies:\n  - name: d\n    keep_daily: 1\n")
    registry = new_registry()
    metrics = PassMetrics(config, registry, clock=lambda: NOW)

    metrics.api_response("GET", None)
    metrics.api_response("GET", 429)

    found = scrape(registry)
    assert value(found, "pruner_api_requests_total", method="GET", code="none") == 1
    assert value(found, "pruner_api_requests_total", method="GET", code="429") == 1


# --- ages and staleness -------------------------------------------------------------------------


def test_pass_metrics_oldest_newest_age_is_the_worst_managed_server(
    sim: Simulator, run: Run
) -> None:
    result, registry, _ = run()
    found = scrape(registry)

    newest = {}
    for group in result.plan.groups:
        if group.resource == "backups" and group.status not in ("orphan", "unmanaged"):
            times = [d.backup.created_at for d in group.decisions if d.action == "keep"]
            newest[group.server_id] = max(times)
    worst = max((NOW - moment).total_seconds() for moment in newest.values())
    assert value(found, "pruner_oldest_newest_backup_age_seconds", resource="backups") == worst
    assert worst > timedelta(days=14).total_seconds()  # the fleet's stale server
    assert value(found, "pruner_stale_servers", resource="backups") == 1
    assert value(found, "pruner_stale_servers", resource="snapshots") == 0  # stale_after: null


def test_pass_metrics_ages_grow_with_the_clock_between_passes(
    sim: Simulator, run: Run, clock: Clock
) -> None:
    _, registry, _ = run()
    before = scrape(registry)

    clock.now = NOW + timedelta(days=30)
    after = scrape(registry)

    name = "pruner_oldest_newest_backup_age_seconds"
    grown = value(after, name, resource="backups") - value(before, name, resource="backups")
    assert grown == timedelta(days=30).total_seconds()
    assert value(before, "pruner_stale_servers", resource="backups") == 1
    assert value(after, "pruner_stale_servers", resource="backups") > 1  # stale_after 14d


def test_pass_metrics_judge_staleness_as_the_planner_does_despite_a_future_backup(
    sim: Simulator, run: Run, tmp_path: Path, clock: Clock
) -> None:
    # A backup dated in the future says nothing about whether backups still happen: the
    # planner skips the stale server all the same, and the metrics must agree.
    [stale] = [s["id"] for s in sim.servers() if s["hostname"] == "app-03"]
    sim.add_backup(stale, created_at=NOW + timedelta(days=1))
    result, registry, _ = run(make_config(sim, tmp_path, metrics={"per_server": True}))

    [group] = [g for g in result.plan.groups if g.server_id == stale and g.resource == "backups"]
    assert group.guard == "stale"
    found = scrape(registry)
    assert value(found, "pruner_stale_servers", resource="backups") == 1
    ages = _backup_ages(found)
    assert ages[stale] > timedelta(days=14).total_seconds()
    assert all(age >= 0 for age in ages.values())

    clock.now = NOW + timedelta(days=2)  # the future backup is the newest now: not stale
    assert _backup_ages(scrape(registry))[stale] == timedelta(days=1).total_seconds()


def _backup_ages(found: Samples) -> dict[int, float]:
    """pruner_newest_backup_age_seconds of backups, by server id."""
    return {
        int(dict(labels)["server"]): age
        for labels, age in series(found, "pruner_newest_backup_age_seconds").items()
        if dict(labels)["resource"] == "backups"
    }


def test_pass_metrics_per_server_series_only_when_asked(
    sim: Simulator, run: Run, tmp_path: Path
) -> None:
    _, off, _ = run()
    config = make_config(sim, tmp_path, metrics={"per_server": True})
    result, on, _ = run(config)

    assert series(scrape(off), "pruner_newest_backup_age_seconds") == {}
    per_server = series(scrape(on), "pruner_newest_backup_age_seconds")
    managed = {
        (g.resource, str(g.server_id), g.server_hostname or "")
        for g in result.plan.groups
        if g.status not in ("orphan", "unmanaged")
    }
    shown = {_labels(labels, "resource", "server", "hostname") for labels in per_server}
    assert shown == managed
    assert all(age >= 0 for age in per_server.values())


def test_pass_metrics_labels_never_hold_backup_ids(
    sim: Simulator, run: Run, tmp_path: Path
) -> None:
    backup_ids = {str(b["id"]) for r in ("backups", "snapshots") for b in sim.backups(r)}
    server_ids = {str(s["id"]) for s in sim.servers()}
    sim.faults.locked_delete_rate = 0.5
    config = make_config(sim, tmp_path, metrics={"per_server": True})

    _, registry, _ = run(config)
    found = scrape(registry)

    for _, labels in found:
        names = {name for name, _ in labels}
        assert names <= ALLOWED_LABELS
        for name, label in labels:
            if name == "server":
                assert label in server_ids
            elif name not in ("code", "version"):
                assert label not in backup_ids


# --- exposition -----------------------------------------------------------------------------------


def test_write_textfile_writes_the_values_readably_and_atomically(run: Run, tmp_path: Path) -> None:
    _, registry, _ = run()
    path = tmp_path / "pruner.prom"
    path.write_text("old\n", encoding="utf-8")

    write_textfile(registry, path)

    text = path.read_text(encoding="utf-8")
    assert samples(text) == scrape(registry)  # the values node_exporter will read
    assert value(samples(text), "pruner_runs_total", result="ok") == 1
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # node_exporter runs as another user
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_previous_success_reads_an_earlier_textfile(run: Run, tmp_path: Path) -> None:
    _, registry, _ = run()
    path = tmp_path / "pruner.prom"
    write_textfile(registry, path)

    assert previous_success(path) == NOW.timestamp()
    assert previous_success(tmp_path / "missing.prom") is None
    (tmp_path / "junk.prom").write_text("{{{ not metrics\n", encoding="utf-8")
    assert previous_success(tmp_path / "junk.prom") is None


def test_pass_metrics_remember_success_carries_an_earlier_success() -> None:
    config = parse_config("policies:\n  - name: d\n    keep_daily: 1\n")
    registry = new_registry()
    metrics = PassMetrics(config, registry, clock=lambda: NOW)

    metrics.remember_success(1234.5)
    metrics.pass_failed("abc", RuntimeError("boom"))

    assert value(scrape(registry), "pruner_last_success_timestamp_seconds") == 1234.5


def test_metrics_server_serves_the_registry_on_a_free_port() -> None:
    config = parse_config("policies:\n  - name: d\n    keep_daily: 1\n")
    registry = new_registry()
    PassMetrics(config, registry, clock=lambda: NOW, version="9.9")
    server = MetricsServer(registry, "127.0.0.1", 0)
    try:
        host, port = server.address
        assert (host, port > 0) == ("127.0.0.1", True)
        assert server.url == f"http://127.0.0.1:{port}/metrics"
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(server.url, timeout=5) as response:
            text = response.read().decode("utf-8")
    finally:
        server.stop()

    assert value(samples(text), "pruner_build_info", version="9.9") == 1


# --- the alert rules docs/operating.md offers ---------------------------------------------------

ALERTS = Path(__file__).resolve().parents[2] / "docs" / "operating.md"
_SELECTOR = re.compile(r"\b(pruner_[a-z_]+)(?:\{([^}]*)\})?")


def readme_alert_rules() -> dict[str, str]:
    """alert name -> expr, from the Prometheus rules in docs/operating.md."""
    [block] = re.findall(r"```yaml\n(groups:\n.*?)```", ALERTS.read_text(encoding="utf-8"), re.S)
    rules = yaml.safe_load(block)["groups"][0]["rules"]
    return {rule["alert"]: rule["expr"] for rule in rules}


def firing(rules: dict[str, str], found: Samples, now: datetime) -> set[str]:
    """The rules whose expr selects anything, for series without job labels: each selector
    becomes its value (an absent series NaN, which no comparison selects), `and`/`or` their
    Python namesakes (same precedence), `time()` the given time."""

    def sample(match: re.Match[str]) -> str:
        labels = dict(re.findall(r'(\w+)="([^"]*)"', match.group(2) or ""))
        return repr(found.get((match.group(1), frozenset(labels.items())), float("nan")))

    def fires(expr: str) -> bool:
        python = _SELECTOR.sub(sample, expr.replace("time()", repr(now.timestamp())))
        return bool(eval(python, {"__builtins__": {}, "nan": float("nan")}))

    return {name for name, expr in rules.items() if fires(expr)}


def test_readme_alert_rules_fire_for_a_daemon_whose_first_pass_hangs(
    tmp_path: Path, clock: Clock
) -> None:
    config = parse_config(
        f"state_dir: {tmp_path}\nschedule:\n  interval: 6h\n"
        "policies:\n  - name: d\n    keep_daily: 1\n"
    )
    registry = new_registry()
    metrics = PassMetrics(config, registry, clock=clock)
    started, release = threading.Event(), threading.Event()

    def hanging(_config: Config, **options: Any) -> PassResult:
        for hook in options["hooks"]:  # as run_pass tells them, once it has its lock
            hook.pass_started("run-1", dry_run=False)
        started.set()
        assert release.wait(5), "the test never let the pass end"
        plan = Plan(generated_at=NOW, now=NOW, dry_run=False, groups=())
        return PassResult("run-1", plan, (), exit_code=1, interrupted=True, duration=0.0)

    daemon = Daemon(config, dry_run=False, clock=clock, run_pass=hanging, hooks=[metrics])
    rules = readme_alert_rules()
    worker = threading.Thread(target=daemon.tick)
    worker.start()
    try:
        assert started.wait(5)
        clock.now = NOW + timedelta(minutes=10)
        early = firing(rules, scrape(registry), clock.now)
        clock.now = NOW + timedelta(hours=3)
        hung = scrape(registry)
        late = firing(rules, hung, clock.now)
    finally:
        release.set()
        worker.join(5)

    assert value(hung, "pruner_last_run_timestamp_seconds") == 0  # no pass has ended
    assert early == set()  # a first pass may take a while
    assert late == {"PrunerPassStuck"}


# --- reloads ------------------------------------------------------------------------------------


def test_reload_metrics_count_reloads_and_say_whether_the_last_one_took(clock: Clock) -> None:
    config = parse_config("policies:\n  - name: d\n    keep_daily: 1\n")
    registry = new_registry()
    started = clock.now
    reloads = ReloadMetrics(registry, clock=clock)
    at_start = scrape(registry)

    clock.now = started + timedelta(hours=1)
    reloads.config_reload_failed()
    failed = scrape(registry)
    clock.now = started + timedelta(hours=2)
    reloads.config_reloaded(config)
    fixed = scrape(registry)

    assert series(at_start, "pruner_config_reloads_total") == {
        frozenset({("result", "ok")}): 0,
        frozenset({("result", "failed")}): 0,
    }
    assert value(at_start, "pruner_config_last_reload_successful") == 1  # the config at start
    success = "pruner_config_last_reload_success_timestamp_seconds"
    assert value(at_start, success) == started.timestamp()
    assert value(failed, "pruner_config_reloads_total", result="failed") == 1
    assert value(failed, "pruner_config_last_reload_successful") == 0
    assert value(failed, success) == started.timestamp()
    assert value(fixed, "pruner_config_reloads_total", result="ok") == 1
    assert value(fixed, "pruner_config_last_reload_successful") == 1
    assert value(fixed, success) == clock.now.timestamp()


def test_pass_metrics_follow_a_reloaded_config(sim: Simulator, run: Run, tmp_path: Path) -> None:
    only_backups = make_config(sim, tmp_path, policies=[{"name": "all", "keep_daily": 7}])
    _, registry, metrics = run(only_backups)
    before = scrape(registry)

    metrics.config_reloaded(make_config(sim, tmp_path, metrics={"per_server": True}))
    metrics.config_reload_failed()  # the config in use stays: nothing changes
    after = scrape(registry)

    assert series(before, "pruner_newest_backup_age_seconds") == {}
    assert series(after, "pruner_newest_backup_age_seconds")
    assert ("pruner_deleted_total", frozenset({("resource", "snapshots")})) not in before
    assert value(after, "pruner_deleted_total", resource="snapshots") == 0
    assert value(after, "pruner_runs_total", result="ok") == 1  # the counts go on


def test_readme_alert_rules_fire_while_the_last_reload_failed(clock: Clock) -> None:
    registry = new_registry()
    reloads = ReloadMetrics(registry, clock=clock)
    rules = readme_alert_rules()

    reloads.config_reload_failed()
    failed = firing(rules, scrape(registry), clock.now)
    reloads.config_reloaded(parse_config("policies:\n  - name: d\n    keep_daily: 1\n"))
    fixed = firing(rules, scrape(registry), clock.now)

    assert failed == {"PrunerConfigReloadFailed"}
    assert fixed == set()
