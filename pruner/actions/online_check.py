"""`pruner check-config --online`: the config against what the API holds, as findings.

It makes the requests a pass (or `pruner plan`) makes before deciding anything, and no other:
one GET /servers to see that the API answers and takes the token, then the complete listings a
pass reads. It never sends a DELETE, so it cannot tell a Read key from a Write key, and says so.

From the listing it finds, for each policy, the servers it governs (the first match wins, as in
a pass) and whether what exists gives each keep rule the history it asks for: `keep_monthly 12`
keeps twelve months only once a server has backups eleven months old.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from decimal import Decimal
from typing import Literal

from pruner.config.load import beyond_automatic_history
from pruner.config.schema import Config
from pruner.engine.models import COUNT_RULES, WITHIN_RULES, Backup, Listing, Plan, Policy, Server
from pruner.engine.planner import build_plan
from pruner.engine.units import Duration, subtract
from pruner.vpsbg.client import ApiClient
from pruner.vpsbg.errors import ApiAuthError, ApiError, ApiPermissionError
from pruner.vpsbg.fetch import fetch_listing
from pruner.vpsbg.redaction import mask_secrets
from pruner.vpsbg.token import Secret

__all__ = ["Finding", "Level", "check_online", "policy_findings", "render_findings"]

Level = Literal["ok", "warn", "fail"]

READ_OR_WRITE = (
    "a Read key cannot be told from a Write key without sending a DELETE; this check sends none"
)
_SHOWN = 5  # servers named, problems listed
# The bucket each count rule keeps one backup of: N buckets span N - 1 of them.
_BUCKETS: dict[str, tuple[str, int, Decimal]] = {
    "keep_hourly": ("hour", 0, Decimal(3600)),
    "keep_daily": ("day", 0, Decimal(86400)),
    "keep_weekly": ("week", 0, Decimal(7 * 86400)),
    "keep_monthly": ("month", 1, Decimal(0)),
    "keep_yearly": ("year", 12, Decimal(0)),
}


@dataclass(frozen=True, slots=True)
class Finding:
    """One line of the check: how it stands (ok, warn, fail), about what, and why."""

    level: Level
    subject: str
    detail: str


# --- talking to the API -------------------------------------------------------------------


def check_online(config: Config, token: Secret, *, now: datetime) -> list[Finding]:
    """What the API says of this config and token. A `fail` finding means a pass could not
    work: the API does not answer, refuses the token, or cannot be listed completely."""
    api = config.api
    resources = tuple(dict.fromkeys(policy.resource for policy in config.policies))
    with (
        mask_secrets(token.reveal()),
        # A check should answer quickly, not back off for long.
        ApiClient.from_settings(
            api.model_copy(update={"retries": min(api.retries, 1)}), token
        ) as client,
    ):
        try:
            visible = client.check()
            findings = [
                Finding("ok", "API", f"{api.base_url} answered"),
                Finding("ok", "token", f"accepted: {token.source} ({visible} servers)"),
                _write_access(config),
            ]
            listing = fetch_listing(client, resources)
        except (ApiAuthError, ApiPermissionError) as error:
            return [
                Finding("ok", "API", f"{api.base_url} answered"),
                Finding("fail", "token", f"{token.source}: {error.message}"),
            ]
        except ApiError as error:
            return [Finding("fail", "API", error.message)]
    findings.extend(_listing_findings(listing))
    if listing.servers is not None and listing.servers_complete:
        findings.extend(policy_findings(config.policies, listing, now=now, zone=config.timezone))
    return findings


def _write_access(config: Config) -> Finding:
    if config.dry_run:
        return Finding(
            "ok",
            "write access",
            f"not needed while dry_run is true (a Read key is enough); {READ_OR_WRITE}",
        )
    return Finding(
        "warn",
        "write access",
        f"dry_run is false, so passes delete, which takes a Write key (a Read key's DELETEs "
        f"fail with 403); {READ_OR_WRITE}",
    )


def _listing_findings(listing: Listing) -> Iterator[Finding]:
    errors = [problem.message for problem in listing.problems if problem.level == "error"]
    warnings = [problem.message for problem in listing.problems if problem.level == "warning"]
    if not errors:
        counts = [f"{len(listing.servers or ())} servers"]
        for resource in sorted(listing.resources):
            counts.append(f"{sum(b.resource == resource for b in listing.backups)} {resource}")
        yield Finding("ok", "listing", f"{', '.join(counts)}, listed completely")
    yield from _listed("fail", errors)
    yield from _listed("warn", warnings)


def _listed(level: Level, messages: list[str]) -> Iterator[Finding]:
    for message in messages[:_SHOWN]:
        yield Finding(level, "listing", message)
    if len(messages) > _SHOWN:
        yield Finding(level, "listing", f"and {len(messages) - _SHOWN} more like these")


# --- the policies against the listing -------------------------------------------------------


def policy_findings(
    policies: Sequence[Policy], listing: Listing, *, now: datetime, zone: tzinfo | None
) -> list[Finding]:
    """For each policy: the servers it governs, then whether their backups (or snapshots) are
    old enough for each of its keep rules. `listing` must hold a complete servers listing."""
    servers = [server for server in listing.servers or () if not server.is_terminated]
    plan = build_plan(
        listing,
        policies,
        now=now,
        generated_at=now,
        zone=zone,
        max_deletions_per_run=None,
        dry_run=True,
    )
    findings: list[Finding] = []
    for policy in policies:
        governed = _governed(policy, policies, servers)
        findings.append(_matching(policy, policies, servers, governed))
        if governed:
            findings.append(_history(policy, plan, len(governed), now, zone))
    return findings


def _governed(policy: Policy, policies: Sequence[Policy], servers: list[Server]) -> list[Server]:
    """The servers whose first matching policy (of its resource) is `policy`."""
    rivals = [other for other in policies if other.resource == policy.resource]
    return [
        server
        for server in servers
        if next((p for p in rivals if p.matches(server.id, server.hostname)), None) is policy
    ]


def _matching(
    policy: Policy, policies: Sequence[Policy], servers: list[Server], governed: list[Server]
) -> Finding:
    subject = f"policy {policy.name}"
    if governed:
        return Finding("ok", subject, f"governs {_servers(governed)}: {_names(governed)}")
    matched = [server for server in servers if policy.matches(server.id, server.hostname)]
    if matched:
        return Finding(
            "warn",
            subject,
            f"matches {_servers(matched)} ({_names(matched)}), but policies before it take "
            "them all: it decides nothing",
        )
    conditions = []
    if policy.hostnames is not None:
        conditions.append(f"match.hostnames ({', '.join(policy.hostnames)})")
    if policy.server_ids is not None:
        conditions.append(f"match.server_ids ({', '.join(map(str, sorted(policy.server_ids)))})")
    return Finding(
        "warn",
        subject,
        f"matches none of the {len(servers)} live servers: check {' and '.join(conditions)}",
    )


def _history(
    policy: Policy, plan: Plan, governed: int, now: datetime, zone: tzinfo | None
) -> Finding:
    """Whether the servers `policy` governs have the history its keep rules ask for. Protected
    backups count for nothing, as in a pass."""
    subject = f"policy {policy.name}"
    per_server = [
        [decision.backup for decision in group.decisions if not decision.protected]
        for group in plan.groups
        if group.policy == policy.name
        and group.resource == policy.resource
        and group.status not in ("orphan", "unmanaged")
    ]
    backups = [backup for server in per_server for backup in server]
    if not backups:
        return Finding(
            "warn",
            subject,
            f"none of its {_servers(governed)} has {policy.resource} yet: nothing to keep",
        )
    oldest = min(backups, key=Backup.sort_key)
    most = max(len(server) for server in per_server)
    met, unmet, beyond_automatic = [], [], False
    for rule, need in _needs(policy):
        shown = f"{rule} {getattr(policy, rule)}"
        if isinstance(need, int):
            if most >= need:
                met.append(shown)
            else:
                unmet.append(
                    f"{shown} needs {need} {policy.resource} of a server, and the most any of "
                    f"its servers has is {most}"
                )
            continue
        cutoff = subtract(now, need, zone)
        if cutoff is not None and oldest.created_at <= cutoff:
            met.append(shown)
        else:
            unmet.append(f"{shown} needs {need.text} of history")
            beyond_automatic |= beyond_automatic_history(need)
    age = f"its oldest {policy.resource.removesuffix('s')} is {_age(now - oldest.created_at)} old"
    if not unmet:
        rules = f"enough for {', '.join(met)}" if met else "no keep rule asks for history"
        return Finding("ok", subject, f"{age}: {rules}")
    detail = f"{age}: {'; '.join(unmet)}: it keeps fewer than it asks for until the history grows"
    if policy.resource == "backups" and beyond_automatic:
        detail += "; VPSBG deletes its automatic backups after 3 weeks, so for those it never will"
    return Finding("warn", subject, detail)


def _needs(policy: Policy) -> Iterator[tuple[str, int | Duration]]:
    """What each keep rule of `policy` needs: a count of backups (keep_last), or a span of
    history; rules that keep nothing (0) or everything (-1) need nothing."""
    for rule in COUNT_RULES:
        count: int | None = getattr(policy, rule)
        if count is None or count <= 0:
            continue
        if rule == "keep_last":
            yield rule, count
            continue
        unit, months, seconds = _BUCKETS[rule]
        spans = count - 1
        text = f"{spans} {unit}" + ("s" if spans != 1 else "")
        yield rule, Duration(months * spans, seconds * spans, text)
    for rule in WITHIN_RULES:
        duration: Duration | None = getattr(policy, rule)
        if duration is not None:
            yield rule, duration


def _servers(servers: Sequence[Server] | int) -> str:
    count = servers if isinstance(servers, int) else len(servers)
    return f"{count} server" + ("s" if count != 1 else "")


def _names(servers: Sequence[Server]) -> str:
    """The first few by hostname (or id, for a server without one)."""
    ordered = sorted(servers, key=lambda server: (server.hostname or "~", server.id))
    names = [server.hostname or f"server {server.id}" for server in ordered[:_SHOWN]]
    more = f" and {len(servers) - _SHOWN} more" if len(servers) > _SHOWN else ""
    return ", ".join(names) + more


def _age(age: timedelta) -> str:
    if age >= timedelta(days=1):
        return f"{age.days} day" + ("s" if age.days != 1 else "")
    hours = int(age.total_seconds() // 3600)
    return f"{hours} hour" + ("s" if hours != 1 else "")


# --- the table ------------------------------------------------------------------------------


def render_findings(findings: Sequence[Finding]) -> str:
    """The findings as a plain-text table, then how many warnings and failures."""
    width = max([len("SUBJECT"), *(len(finding.subject) for finding in findings)])
    lines = [f"{'LEVEL':<6} {'SUBJECT':<{width}}  DETAIL"]
    lines += [f"{f.level:<6} {f.subject:<{width}}  {f.detail}" for f in findings]
    warnings = sum(finding.level == "warn" for finding in findings)
    failures = sum(finding.level == "fail" for finding in findings)
    lines.append(
        f"{warnings} warning{'s' if warnings != 1 else ''}, "
        f"{failures} failure{'s' if failures != 1 else ''}"
    )
    return "\n".join(lines)
