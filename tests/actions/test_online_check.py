"""What `pruner check-config --online` finds in a listing: which servers each policy governs,
and whether what exists gives each rule the history it needs; and the table it prints."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pruner.actions.online_check import Finding, policy_findings, render_findings
from pruner.engine.models import Backup, Listing, Policy, Resource, Server
from pruner.engine.units import parse_duration

NOW = datetime(2026, 11, 27, 3, 30, tzinfo=UTC)

SERVERS = (
    Server(1, "db-01", "active"),
    Server(2, "db-02", "active"),
    Server(3, "web-01", "active"),
    Server(4, "old-01", "terminated"),
)


def daily(server_id: int, days: int, resource: Resource = "backups") -> list[Backup]:
    """A backup a day for `days` days, the newest an hour ago."""
    return [
        Backup(
            resource,
            server_id * 1000 + day,
            server_id,
            NOW - timedelta(hours=1, days=day),
            name=f"{server_id}-{day}",
        )
        for day in range(days)
    ]


def listing(*backups: Backup, resources: tuple[Resource, ...] = ("backups",)) -> Listing:
    return Listing(backups=backups, servers=SERVERS, resources=frozenset(resources))


def found(policies: list[Policy], of: Listing) -> list[Finding]:
    return policy_findings(policies, of, now=NOW, zone=None)


def about(findings: list[Finding], name: str) -> list[Finding]:
    return [finding for finding in findings if finding.subject == f"policy {name}"]


def test_policy_findings_name_a_policy_that_matches_no_server() -> None:
    policies = [Policy("databases", hostnames=("pg-*",), keep_daily=7)]

    [matching] = about(found(policies, listing(*daily(1, 10))), "databases")

    assert matching.level == "warn"
    assert matching.detail.startswith("matches none of the 3 live servers")
    assert "match.hostnames" in matching.detail


def test_policy_findings_a_terminated_server_is_no_match() -> None:
    policies = [Policy("old", hostnames=("old-*",), keep_daily=7)]

    [matching] = about(found(policies, listing(*daily(4, 10))), "old")

    assert matching.level == "warn"
    assert matching.detail.startswith("matches none of the 3 live servers")


def test_policy_findings_say_when_earlier_policies_take_every_server_it_matches() -> None:
    policies = [
        Policy("databases", hostnames=("db-*",), keep_daily=7),
        Policy("db-01 too", server_ids=frozenset({1}), keep_daily=30),
        Policy("rest", keep_daily=3),
    ]

    [matching] = about(found(policies, listing(*daily(1, 10))), "db-01 too")

    assert matching.level == "warn"
    assert matching.detail == (
        "matches 1 server (db-01), but policies before it take them all: it decides nothing"
    )


def test_policy_findings_count_the_servers_a_policy_governs() -> None:
    policies = [Policy("databases", hostnames=("db-*",), keep_daily=1), Policy("rest", keep_last=1)]

    findings = found(policies, listing(*daily(1, 3), *daily(2, 3), *daily(3, 3)))

    assert about(findings, "databases")[0] == Finding(
        "ok", "policy databases", "governs 2 servers: db-01, db-02"
    )
    assert about(findings, "rest")[0].detail == "governs 1 server: web-01"


def test_policy_findings_a_snapshots_policy_matches_among_snapshot_policies() -> None:
    policies = [
        Policy("everything", keep_daily=1),
        Policy("snapshots", resource="snapshots", keep_last=2),
    ]

    findings = found(policies, listing(*daily(1, 3), resources=("backups", "snapshots")))

    assert about(findings, "snapshots")[0].detail == "governs 3 servers: db-01, db-02, web-01"


def test_policy_findings_history_shorter_than_a_rule_needs_is_a_warning() -> None:
    policies = [Policy("all", keep_daily=7, keep_monthly=12)]

    [_, history] = found(policies, listing(*daily(1, 21), *daily(2, 10)))

    assert history.level == "warn"
    assert history.detail.startswith(
        "its oldest backup is 20 days old: keep_monthly 12 needs 11 months of history"
    )
    assert "keeps fewer than it asks for until the history grows" in history.detail
    assert "VPSBG deletes its automatic backups after 3 weeks" in history.detail
    assert "keep_daily" not in history.detail


def test_policy_findings_history_long_enough_for_every_rule_is_ok() -> None:
    policies = [Policy("all", keep_last=3, keep_daily=7, keep_weekly=2)]

    [_, history] = found(policies, listing(*daily(1, 15)))

    assert history == Finding(
        "ok",
        "policy all",
        "its oldest backup is 14 days old: enough for keep_last 3, keep_daily 7, keep_weekly 2",
    )


def test_policy_findings_keep_last_needs_that_many_backups_of_one_server() -> None:
    policies = [Policy("all", keep_last=10)]

    [_, history] = found(policies, listing(*daily(1, 4), *daily(2, 6)))

    assert history.level == "warn"
    assert history.detail.startswith(
        "its oldest backup is 5 days old: keep_last 10 needs 10 backups of a server, and the "
        "most any of its servers has is 6"
    )
    assert "automatic backups" not in history.detail  # a count, not a span


def test_policy_findings_keep_within_needs_its_span() -> None:
    policies = [Policy("all", keep_within=parse_duration("30d"))]

    [_, history] = found(policies, listing(*daily(1, 10)))

    assert history.level == "warn"
    assert history.detail.startswith("its oldest backup is 9 days old: keep_within 30d needs 30d")


def test_policy_findings_protected_backups_are_no_history() -> None:
    old = Backup("backups", 99, 1, NOW - timedelta(days=400), name="pre-upgrade")
    policies = [Policy("all", keep_monthly=6, protect_names=("pre-upgrade",))]

    [_, history] = found(policies, listing(old, *daily(1, 10)))

    assert history.level == "warn"
    assert history.detail.startswith("its oldest backup is 9 days old")


def test_policy_findings_unlimited_and_zero_counts_need_no_history() -> None:
    policies = [Policy("all", keep_last=-1, keep_daily=0, keep_weekly=1)]

    [_, history] = found(policies, listing(*daily(1, 2)))

    assert history.level == "ok"
    assert history.detail == "its oldest backup is 1 day old: enough for keep_weekly 1"


def test_policy_findings_servers_without_backups_yet() -> None:
    policies = [Policy("snapshots", resource="snapshots", keep_last=2)]

    [_, history] = found(policies, listing(resources=("snapshots",)))

    assert history == Finding(
        "warn", "policy snapshots", "none of its 3 servers has snapshots yet: nothing to keep"
    )


def test_render_findings_is_a_table_with_a_tally() -> None:
    text = render_findings(
        [
            Finding("ok", "API", "https://api.example/v1 answered"),
            Finding("warn", "policy databases", "matches none of the 3 live servers"),
            Finding("fail", "listing", "the backups listing is incomplete"),
        ]
    )

    assert text.splitlines() == [
        "LEVEL  SUBJECT           DETAIL",
        "ok     API               https://api.example/v1 answered",
        "warn   policy databases  matches none of the 3 live servers",
        "fail   listing           the backups listing is incomplete",
        "1 warning, 1 failure",
    ]
