"""`pruner check-config [--online]`: validate the config, check what a pass needs before its
first request, and print the resolved policies.

Exit 2, with every problem and its fix at once, when the config is invalid, no token can be
read, or state_dir cannot be created or written. The check creates nothing: run as another user
(root, say), it must not leave behind a state_dir that the service's user cannot write. With
--online it also lists what a pass lists and prints a table of findings (pruner.actions.
online_check): exit 1 when the API does not answer, refuses the token, or cannot be listed.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

from pruner.actions.common import leave_to_report_on_terminal, load_and_warn
from pruner.config.schema import (
    Config,
    MetricsSettings,
    NotifySettings,
    ScheduleSettings,
    span_text,
)
from pruner.engine.models import COUNT_RULES, WITHIN_RULES, Policy
from pruner.errors import EXIT_OK, PassFailed, UserError
from pruner.passes.audit import AUDIT_FILE
from pruner.passes.lock import LOCK_FILE, StateDirError
from pruner.vpsbg.errors import TokenMissing
from pruner.vpsbg.token import Secret, load_token

__all__ = ["describe_config", "main"]

_REWRITTEN_IN_PLACE = (LOCK_FILE, AUDIT_FILE)  # other state files are replaced, not rewritten


def main(args: argparse.Namespace) -> int:
    leave_to_report_on_terminal(frozenset({"config.warning"}))  # listed under `warnings:`
    config = load_and_warn(args)
    token, state, problems = _preflight(config)
    print(describe_config(config, token.source if token is not None else None))  # on stdout
    if token is None or state is None:
        raise UserError(*problems)
    print(f"preflight: token found in {token.source}; state_dir {config.state_dir} {state}")
    if args.online:
        # Only the online check needs the client (requests): the offline one starts without it.
        from pruner.actions.online_check import check_online, render_findings  # noqa: PLC0415

        findings = check_online(config, token, now=datetime.now(UTC))
        print(f"online check of {config.api.base_url} (GET requests only, no DELETE):")
        print(render_findings(findings), flush=True)
        failures = [finding.detail for finding in findings if finding.level == "fail"]
        if failures:
            raise PassFailed(*failures)
    return EXIT_OK


def _preflight(config: Config) -> tuple[Secret | None, str | None, list[str]]:
    """The token, how state_dir stands, and why either is unusable (all problems, not the
    first): what `run` checks before its first request."""
    problems: list[str] = []
    token = state = None
    try:
        token = load_token(config.api, os.environ)
    except TokenMissing as error:
        problems.append(error.message)
    try:
        state = _check_state_dir(config.state_dir)
    except StateDirError as error:
        problems.extend(error.lines)
    return token, state, problems


def _check_state_dir(state_dir: Path) -> str:
    """How a pass would find state_dir: "is writable" or "can be created". Raises StateDirError
    when a pass run as this check's user could not create or write it."""
    try:
        existing = state_dir
        while not existing.exists():
            existing = existing.parent
        if existing != state_dir:
            if not existing.is_dir():
                raise _unusable(state_dir, f"cannot be created: {existing} is not a directory")
            if not os.access(existing, os.W_OK | os.X_OK):
                what = f"cannot be created: {existing} is not writable{_by_uid()}"
                raise _unusable(state_dir, what)
            return "can be created"
        if not state_dir.is_dir():
            raise _unusable(state_dir, "is not a directory")
        fd, probe = tempfile.mkstemp(dir=state_dir, prefix=".check-config.", suffix=".tmp")
        os.close(fd)
        os.unlink(probe)
        for name in _REWRITTEN_IN_PLACE:
            path = state_dir / name
            if path.exists() and not os.access(path, os.R_OK | os.W_OK):
                raise _unusable(state_dir, f"{path} cannot be written{_by_uid()}")
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise _unusable(state_dir, f"cannot be written{_by_uid()} ({reason})") from None
    return "is writable"


def _by_uid() -> str:
    return f" by uid {os.getuid()}"  # the check's user: the service's may be another


def _unusable(state_dir: Path, what: str) -> StateDirError:
    return StateDirError(
        f"state_dir {state_dir}: {what}: make it a directory that the user "
        "pruner runs as can write (StateDirectory= under systemd, a writable volume in a "
        "container), or set state_dir in the config"
    )


# --- the config in words --------------------------------------------------------------------


def describe_config(config: Config, token_source: str | None = None) -> str:
    """The resolved config in words, for `pruner check-config`: settings, then each policy.
    `token_source`: where the token was found, when known (else where it is configured)."""
    api, safety = config.api, config.safety
    token = f"file {api.token_file}" if api.token_file else f"${api.token_env}"
    token = token_source or token
    lines = [
        f"config: {config.source}",
        f"api: {api.base_url}, token from {token}, timeout {_span(api.timeout)}, "
        f"{api.retries} retries (backoff {_span(api.backoff)}), concurrency {api.concurrency}, "
        f"max_pages {api.max_pages}",
        "dry_run: "
        + ("true (nothing is deleted)" if config.dry_run else "false (deletions are real)"),
        f"timezone: {config.timezone or 'null (each backup time in its own UTC offset)'}",
        f"state_dir: {config.state_dir}",
        f"schedule: {_describe_schedule(config.schedule)}",
        f"safety: min_keep {safety.min_keep}, max_deletions_per_run "
        f"{safety.max_deletions_per_run or 'none (no cap)'}, max_delete_fraction "
        f"{safety.max_delete_fraction}, stale_after {safety.stale_after or 'null (off)'}, "
        f"max_pass_duration {_span(safety.max_pass_duration)}, max_consecutive_failures "
        f"{safety.max_consecutive_failures}",
        f"metrics: {_describe_metrics(config.metrics)}",
        f"notify: {_describe_notify(config.notify)}",
        "policies (in order; for each server and resource the first match wins):",
    ]
    for number, policy in enumerate(config.policies, start=1):
        lines.extend(_describe_policy(number, policy))
    if config.warnings:
        lines.append("warnings:")
        lines.extend(f"  - {warning}" for warning in config.warnings)
    return "\n".join(lines)


def _describe_schedule(schedule: ScheduleSettings | None) -> str:
    if schedule is None:
        return "none (only `pruner daemon` needs one)"
    when = f'cron "{schedule.cron}"' if schedule.cron else f"every {_span(schedule.interval)}"
    extra = f", jitter up to {_span(schedule.jitter)}" if schedule.jitter else ""
    start = ", and a pass at start" if schedule.run_on_start else ""
    return f"{when} in {schedule.timezone}{extra}{start}"


def _describe_metrics(metrics: MetricsSettings) -> str:
    if metrics.listen is None:
        endpoint = "no HTTP endpoint"
    else:
        host, port = metrics.listen
        shown = f"[{host}]" if ":" in host else host
        where = f"{shown}:{port}" if port else f"{shown}, any free port"
        endpoint = f"the daemon serves /metrics on {where}"
    textfile = f"`pruner run` writes {metrics.textfile}" if metrics.textfile else "no textfile"
    per_server = "with" if metrics.per_server else "without"
    return f"{endpoint}; {textfile}; {per_server} per-server series"


def _describe_notify(notify: NotifySettings) -> str:
    if not notify.urls:
        return "no pings"
    # Ping URLs are credentials of a sort (anyone holding one can ping): show only the hosts.
    hosts = ", ".join(urlsplit(url).hostname or "?" for url in notify.urls)
    dry = ", also for dry runs" if notify.on_dry_run else ""
    return f"{len(notify.urls)} ping URL(s) at {hosts}, timeout {_span(notify.timeout)} each{dry}"


def _describe_policy(number: int, policy: Policy) -> list[str]:
    conditions = []
    if policy.hostnames is not None:
        conditions.append("hostname " + " or ".join(policy.hostnames))
    if policy.server_ids is not None:
        conditions.append("server id " + " or ".join(str(i) for i in sorted(policy.server_ids)))
    keep = [
        f"{rule} {getattr(policy, rule)}"
        for rule in (*COUNT_RULES, *WITHIN_RULES)
        if getattr(policy, rule) is not None
    ]
    limits = [
        f"{name} {value}"
        for name, value in (("max_age", policy.max_age), ("max_total_size", policy.max_total_size))
        if value is not None
    ]
    protect = [f"id {i}" for i in sorted(policy.protect_ids)]
    protect += [f"name {glob}" for glob in policy.protect_names]
    lines = [
        f"  {number}. {policy.name} ({policy.resource})",
        "     match: " + (" and ".join(conditions) if conditions else "every server"),
        "     keep: " + (", ".join(keep) if keep else "everything (no keep rule)"),
    ]
    if limits:
        lines.append("     limits: " + ", ".join(limits))
    if protect:
        lines.append("     protect: " + ", ".join(protect))
    lines.append(
        f"     guards: min_keep {policy.min_keep}, max_delete_fraction "
        f"{policy.max_delete_fraction}, stale_after {policy.stale_after or 'null (off)'}"
    )
    lines.append(f"     orphans: {policy.orphans}")
    return lines


def _span(span: timedelta | None) -> str:
    return "none" if span is None else span_text(span)
