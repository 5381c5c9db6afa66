"""Prometheus metrics of the passes: a pass hook (pruner.passes.hooks) that fills a registry.

The registry is the caller's (one per process, never prometheus_client's global one): the
daemon serves it over HTTP (`MetricsServer`), `pruner run` writes it to a textfile for
node_exporter (`write_textfile`).

Three kinds of series:
- counters over the passes of this process (`pruner_runs_total`, `pruner_deleted_total`, ...);
  a one-shot `pruner run` starts them at zero, so its textfile shows that one pass;
- gauges of the last pass (`pruner_backups`, `pruner_pending_deletions`,
  `pruner_run_duration_seconds`, timestamps);
- ages (`pruner_oldest_newest_backup_age_seconds`, `pruner_stale_servers`, per server with
  `metrics.per_server`), computed when scraped from the newest backups the last pass listed, so
  that they keep growing between passes when backups stop, like the problem they report.

The daemon adds `ReloadMetrics`: how its config reloads (SIGHUP) went.

Labels never hold backup ids: a series per backup would grow without bound.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, tzinfo
from pathlib import Path
from typing import TextIO
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import start_http_server
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from pruner import __version__
from pruner.config.schema import Config
from pruner.engine.models import Group, Resource
from pruner.engine.planner import is_stale, newest_unprotected_before
from pruner.engine.results import DONE, PassResult
from pruner.engine.units import Duration
from pruner.errors import EXIT_CAPPED, EXIT_OK, EXIT_REFUSED
from pruner.passes.state import write_json_atomically

__all__ = [
    "BACKUP_STATES",
    "RELOAD_RESULTS",
    "RUN_RESULTS",
    "MetricsServer",
    "PassMetrics",
    "ReloadMetrics",
    "new_registry",
    "previous_success",
    "run_result",
    "write_textfile",
]

RUN_RESULTS = ("ok", "capped", "refused", "incomplete", "interrupted", "failed", "skipped")
RELOAD_RESULTS = ("ok", "failed")
BACKUP_STATES = ("kept", "protected", "unmanaged", "orphan", "deleted", "failed", "would_delete")
_RESOURCES: tuple[Resource, ...] = ("backups", "snapshots")
_NO_ANSWER = "none"  # the `code` of an API attempt that got no HTTP answer


def new_registry() -> CollectorRegistry:
    """A registry of its own for this process's metrics."""
    return CollectorRegistry()


def run_result(result: PassResult) -> str:
    """The `result` label of pruner_runs_total for a pass that ended with `result`."""
    if result.key_refused:
        return "failed"
    if result.interrupted and not result.deadline_reached:
        return "interrupted"
    if result.exit_code == EXIT_OK:
        return "ok"
    if result.exit_code == EXIT_CAPPED:
        return "capped"
    if result.exit_code == EXIT_REFUSED:
        return "refused"
    return "incomplete"


@dataclass(frozen=True, slots=True)
class _Newest:
    """When a managed server's unprotected backups (of one resource) still there after the last
    pass were made: the newest made before that pass, and every one dated after it. Staleness
    is judged, as the planner judges it, by the newest made before the scrape."""

    resource: Resource
    server_id: int
    hostname: str | None
    candidates: tuple[datetime, ...]  # newest first
    stale_after: Duration | None

    def newest_before(self, now: datetime) -> datetime | None:
        return next((moment for moment in self.candidates if moment < now), None)


class PassMetrics:
    """A pass hook: registers pruner's metrics in `registry` and updates them on each pass.

    `clock` is the wall clock (aware): the time a pass ended, and "now" for the ages.
    Thread-safe: API answers arrive from the executor's threads, scrapes from the server's.
    """

    def __init__(
        self,
        config: Config,
        registry: CollectorRegistry,
        *,
        clock: Callable[[], datetime],
        version: str = __version__,
    ) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._follow(config)
        self._newest: tuple[_Newest, ...] = ()
        self._listed = False  # the ages are only known after a pass listed something
        self._observed = False
        self._define(registry, version)
        self._ages = _AgeCollector(self, per_server=config.metrics.per_server)
        registry.register(self._ages)

    def _define(self, registry: CollectorRegistry, version: str) -> None:
        def gauge(name: str, doc: str, labels: Iterable[str] = ()) -> Gauge:
            return Gauge(name, doc, labelnames=tuple(labels), registry=registry)

        def counter(name: str, doc: str, labels: Iterable[str] = ()) -> Counter:
            return Counter(name, doc, labelnames=tuple(labels), registry=registry)

        gauge("pruner_build_info", "pruner's version; always 1", ["version"]).labels(version).set(1)
        self.last_run = gauge(
            "pruner_last_run_timestamp_seconds", "When the last pass ended (Unix time)"
        )
        self.last_success = gauge(
            "pruner_last_success_timestamp_seconds",
            "When the last pass that ended with result ok ended (Unix time)",
        )
        self.running_since = gauge(
            "pruner_running_pass_start_timestamp_seconds",
            "When the pass in progress started (Unix time); 0 while none runs",
        )
        self.duration = gauge("pruner_run_duration_seconds", "How long the last pass took")
        self.dry_run = gauge("pruner_dry_run", "1 when the last pass was a dry run, else 0")
        self.runs = counter("pruner_runs_total", "Passes by how they ended", ["result"])
        self.backups = gauge(
            "pruner_backups",
            "Backups and snapshots listed by the last pass, by what became of them",
            ["resource", "state"],
        )
        self.pending = gauge(
            "pruner_pending_deletions",
            "Deletions the last pass held back to wait for their confirmation (confirm_after)",
            ["resource"],
        )
        self.deleted = counter(
            "pruner_deleted_total", "Backups and snapshots deleted (DELETE answered)", ["resource"]
        )
        self.deletion_failures = counter(
            "pruner_deletion_failures_total",
            "Deletions attempted that did not succeed (locked, or failed after retries)",
            ["resource"],
        )
        self.size_freed = counter(
            "pruner_size_freed_gigabytes_total",
            "Sum of the `size` (GB of the server's disk when taken) of what was deleted",
        )
        self.guard_trips = counter(
            "pruner_guard_trips_total", "Groups a guard kept from being pruned", ["guard"]
        )
        self.api_requests = counter(
            "pruner_api_requests_total",
            "API attempts (retries included) by method and HTTP status (none: no answer)",
            ["method", "code"],
        )
        for result in RUN_RESULTS:  # every series exists from the start, so rate() sees the 1st
            self.runs.labels(result)
        self._label_resources()

    def _label_resources(self) -> None:
        for resource in self._resources:
            self.deleted.labels(resource)
            self.deletion_failures.labels(resource)

    # --- PassHooks ------------------------------------------------------------------------

    def pass_started(self, run_id: str, *, dry_run: bool) -> None:
        self._observed = True
        self.running_since.set(self._clock().timestamp())
        self.dry_run.set(1 if dry_run else 0)

    def api_response(self, method: str, status: int | None) -> None:
        self.api_requests.labels(method, _NO_ANSWER if status is None else str(status)).inc()

    def pass_finished(self, result: PassResult) -> None:
        outcome = run_result(result)
        self._ended(outcome, result.duration)
        self.dry_run.set(1 if result.dry_run else 0)
        for group in result.plan.groups:
            if group.guard is not None:
                self.guard_trips.labels(group.guard).inc()
        for deletion in result.outcomes:
            if deletion.result == "deleted":
                self.deleted.labels(deletion.resource).inc()
            elif not deletion.done:
                self.deletion_failures.labels(deletion.resource).inc()
        if result.execution is not None:
            self.size_freed.inc(result.execution.size_freed)
        self._count_states(result)
        self._count_pending(result)
        if result.plan.groups or result.exit_code == EXIT_OK:  # else nothing was listed
            self._remember_newest(result)

    def pass_failed(self, run_id: str, error: BaseException) -> None:
        self._ended("failed", None)

    def pass_skipped(self) -> None:
        """A tick found another pass holding the lock (the daemon's `skipped`)."""
        self.runs.labels("skipped").inc()

    # --- the daemon's reloads (pruner.ops.daemon.ReloadWatcher) ----------------------------

    def config_reloaded(self, config: Config) -> None:
        """Follow the config now in use: its policies (their stale_after), calendar, resources
        and metrics.per_server. The counters go on."""
        with self._lock:
            self._follow(config)
        self._ages.per_server = config.metrics.per_server
        self._label_resources()

    def _follow(self, config: Config) -> None:
        """What these metrics read of the config: its calendar, policies and resources."""
        self._zone = config.timezone
        self._policies = {policy.name: policy for policy in config.policies}
        self._resources = tuple(dict.fromkeys(policy.resource for policy in config.policies))

    def config_reload_failed(self) -> None:
        """The config in use stays, and so does what these metrics follow."""

    @property
    def observed(self) -> bool:
        """A pass started (got its lock and client) since these metrics were made."""
        return self._observed

    def remember_success(self, timestamp: float) -> None:
        """Carry the last success of an earlier process over (a one-shot run's textfile)."""
        self.last_success.set(timestamp)

    # --- the last pass --------------------------------------------------------------------

    def _ended(self, outcome: str, duration: float | None) -> None:
        ended = self._clock().timestamp()
        self.runs.labels(outcome).inc()
        self.running_since.set(0)
        self.last_run.set(ended)
        if outcome == "ok":
            self.last_success.set(ended)
        if duration is not None:
            self.duration.set(duration)

    def _count_states(self, result: PassResult) -> None:
        """pruner_backups of this pass, also when it listed nothing (all 0 then)."""
        counts = {(r, s): 0 for r in self._resources for s in BACKUP_STATES}
        for group in result.plan.groups:
            for state in _states(result, group):
                counts[(group.resource, state)] = counts.get((group.resource, state), 0) + 1
        self.backups.clear()
        for (resource, state), count in counts.items():
            self.backups.labels(resource, state).set(count)

    def _count_pending(self, result: PassResult) -> None:
        """pruner_pending_deletions of this pass: 0 for each resource without two-phase."""
        counts = dict.fromkeys(self._resources, 0)
        for decision in result.plan.decisions:
            if decision.pending:
                resource = decision.backup.resource
                counts[resource] = counts.get(resource, 0) + 1
        self.pending.clear()
        for resource, count in counts.items():
            self.pending.labels(resource).set(count)

    def _remember_newest(self, result: PassResult) -> None:
        """The newest backups the ages are computed from, kept until a pass lists again."""
        newest = [
            found
            for group in result.plan.groups
            if (found := self._newest_of(result, group)) is not None
        ]
        with self._lock:
            self._newest = tuple(newest)
            self._listed = True

    def _newest_of(self, result: PassResult, group: Group) -> _Newest | None:
        """The newest unprotected backups still there, of a server a policy manages."""
        policy = self._policies.get(group.policy or "")
        if policy is None or group.status in ("unmanaged", "orphan"):
            return None
        execution = result.execution
        now = result.plan.now
        remaining = [
            decision
            for decision in group.decisions
            if execution is None or execution.outcome_of(decision.backup) not in DONE
        ]
        # Those dated after the pass count once the clock passes them; until then, the newest
        # made before it, as the stale guard judges.
        later = [
            d.backup.created_at for d in remaining if d.backup.created_at >= now and not d.protected
        ]
        newest = newest_unprotected_before(remaining, now)
        candidates = later if newest is None else [*later, newest.created_at]
        if not candidates:
            return None
        return _Newest(
            group.resource, group.server_id, group.server_hostname,
            tuple(candidates), policy.stale_after,
        )  # fmt: skip

    # --- read at scrape time --------------------------------------------------------------

    def ages(self) -> tuple[datetime, tuple[_Newest, ...], bool]:
        with self._lock:
            return self._clock(), self._newest, self._listed

    @property
    def resources(self) -> tuple[Resource, ...]:
        return self._resources

    @property
    def zone(self) -> tzinfo | None:
        return self._zone


def _states(result: PassResult, group: Group) -> Iterator[str]:
    """What became of each backup of `group` in the pass, one of BACKUP_STATES."""
    execution = result.execution
    for decision in group.decisions:
        if group.status == "unmanaged":
            yield "unmanaged"
        elif group.status == "orphan":
            yield "orphan"
        elif decision.action == "keep":
            yield "protected" if decision.protected else "kept"
        elif execution is None:
            yield "would_delete"
        else:
            yield "deleted" if execution.outcome_of(decision.backup) in DONE else "failed"


class _AgeCollector(Collector):
    """The ages of the newest backups, as of the scrape."""

    def __init__(self, metrics: PassMetrics, *, per_server: bool) -> None:
        self._metrics = metrics
        self.per_server = per_server  # a reload may change it

    def describe(self) -> Iterable[Metric]:
        oldest, stale, per_server = self._families(per_server=self.per_server)
        return [oldest, stale, *per_server]

    def collect(self) -> Iterable[Metric]:
        now, newest, listed = self._metrics.ages()
        oldest, stale, per_server = self._families(per_server=self.per_server)
        if not listed:
            yield from (oldest, stale, *per_server)
            return
        worst: dict[Resource, float] = {}
        stale_count = dict.fromkeys(self._metrics.resources, 0)
        for entry in newest:
            made = entry.newest_before(now)
            if made is None:  # only backups dated in the future: no age to tell
                continue
            age = (now - made).total_seconds()
            worst[entry.resource] = max(worst.get(entry.resource, age), age)
            if is_stale(made, entry.stale_after, now, self._metrics.zone):
                stale_count[entry.resource] = stale_count.get(entry.resource, 0) + 1
            for family in per_server:
                family.add_metric([entry.resource, str(entry.server_id), entry.hostname or ""], age)
        for resource, age in worst.items():
            oldest.add_metric([resource], age)
        for resource, count in stale_count.items():
            stale.add_metric([resource], count)
        yield from (oldest, stale, *per_server)

    @staticmethod
    def _families(
        *, per_server: bool
    ) -> tuple[GaugeMetricFamily, GaugeMetricFamily, tuple[GaugeMetricFamily, ...]]:
        oldest = GaugeMetricFamily(
            "pruner_oldest_newest_backup_age_seconds",
            "Age of the newest backup of the managed server whose newest backup is oldest",
            labels=["resource"],
        )
        stale = GaugeMetricFamily(
            "pruner_stale_servers",
            "Managed servers whose newest backup is older than their policy's stale_after",
            labels=["resource"],
        )
        servers = GaugeMetricFamily(
            "pruner_newest_backup_age_seconds",
            "Age of each managed server's newest unprotected backup",
            labels=["resource", "server", "hostname"],
        )
        return oldest, stale, (servers,) if per_server else ()


# --- the daemon's reloads ---------------------------------------------------------------------


class ReloadMetrics:
    """How the daemon's config reloads went (a pruner.ops.daemon.ReloadWatcher). The config
    read at start counts as the first success: `clock` (aware) says when."""

    def __init__(self, registry: CollectorRegistry, *, clock: Callable[[], datetime]) -> None:
        self._clock = clock
        self.reloads = Counter(
            "pruner_config_reloads_total",
            "Config reloads (SIGHUP) by result: ok, or failed (the config in use stays)",
            labelnames=("result",),
            registry=registry,
        )
        self.successful = Gauge(
            "pruner_config_last_reload_successful",
            "1 when the last reload (or the start) took the config; 0 when it failed",
            registry=registry,
        )
        self.last_success = Gauge(
            "pruner_config_last_reload_success_timestamp_seconds",
            "When the config in use was read: the start or the last successful reload",
            registry=registry,
        )
        for result in RELOAD_RESULTS:
            self.reloads.labels(result)
        self.successful.set(1)
        self.last_success.set(clock().timestamp())

    def config_reloaded(self, config: Config) -> None:
        self.reloads.labels("ok").inc()
        self.successful.set(1)
        self.last_success.set(self._clock().timestamp())

    def config_reload_failed(self) -> None:
        self.reloads.labels("failed").inc()
        self.successful.set(0)


# --- exposition -----------------------------------------------------------------------------


def write_textfile(registry: CollectorRegistry, path: Path) -> None:
    """Replace `path` with the registry's metrics, atomically (node_exporter never reads half).

    World-readable: node_exporter usually runs as another user. Raises OSError.
    """

    def write(stream: TextIO) -> None:
        os.fchmod(stream.fileno(), 0o644)
        stream.write(generate_latest(registry).decode("utf-8"))

    write_json_atomically(path, write)


def previous_success(path: Path) -> float | None:
    """pruner_last_success_timestamp_seconds in an earlier textfile, if it has a real one: a
    one-shot run that fails must not make the last success look like 1970."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    try:
        for family in text_string_to_metric_families(text):
            if family.name == "pruner_last_success_timestamp_seconds":
                value = family.samples[0].value if family.samples else 0.0
                return float(value) if value > 0 else None
    except ValueError:  # not the exposition format: start afresh
        return None
    return None


class MetricsServer:
    """prometheus_client's HTTP server for `registry`, on `host:port` (port 0: any free port)."""

    def __init__(self, registry: CollectorRegistry, host: str, port: int) -> None:
        server, thread = start_http_server(port, addr=host, registry=registry)
        self._server: WSGIServer = server
        self._thread = thread

    @property
    def address(self) -> tuple[str, int]:
        """The bound host and port."""
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    @property
    def url(self) -> str:
        host, port = self.address
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{port}/metrics"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
