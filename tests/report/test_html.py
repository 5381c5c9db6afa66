"""The audit page (`pruner plan --format html`): read back with html.parser, as a browser would.

Every decision of the plan is on the page exactly once, as a timeline mark that names its backup
and action; servers with problems come first; nothing from the API can inject markup; nothing is
fetched from anywhere.
"""

from __future__ import annotations

import io
import re
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta, timezone

import grimp
import pytest

from pruner.engine.models import Backup, Decision, Plan, Problem, Server
from pruner.engine.planner import build_plan
from pruner.report.html import render_html, write_html
from pruner.report.plan_json import PlanOrigin
from pruner.report.summary import summarize
from tests._factories import NOW, backup, daily, listing, policy
from tests._html import Element, Page, marks, parse

STDLIB = sys.stdlib_module_names | {"__future__"}


def _plan(
    backups: list[Backup],
    servers: list[Server] | None = None,
    problems: tuple[Problem, ...] = (),
    *,
    dry_run: bool = True,
) -> Plan:
    return build_plan(
        listing(backups, servers, problems=problems),
        [
            policy(
                "databases",
                hostnames=["db-*"],
                keep_last=2,
                max_delete_fraction=1.0,
                protect_names=("*pre-upgrade*",),
            ),
            policy("web", hostnames=["web-*"], keep_daily=3, stale_after="14d"),
            policy("rest", keep_last=1, max_delete_fraction=1.0),
        ],
        now=NOW,
        generated_at=NOW,
        zone=None,
        max_deletions_per_run=None,
        dry_run=dry_run,
    )


def _fleet() -> Plan:
    """One group of each kind: ok with deletions and a protected backup, stale, locked,
    orphaned, incomplete."""
    database = daily(6, 10, first_id=100, hostname="db-1")
    upgrade = backup(
        199, 10, NOW - timedelta(days=30), name="199_db-1-pre-upgrade.qcow2.gz", hostname="db-1"
    )
    stale = daily(5, 20, first_id=200, hostname="web-1", newest=NOW - timedelta(days=40))
    locked = daily(5, 30, first_id=300, hostname="web-2")
    orphaned = daily(3, 40, first_id=400, hostname="app-9")
    broken = daily(4, 50, first_id=500, hostname="db-2")
    servers = [
        Server(10, "db-1"),
        Server(20, "web-1"),
        Server(30, "web-2", locked=True),
        Server(50, "db-2"),
    ]
    error = Problem("error", "backups item 3 has no created_at", "backups", server_id=50)
    backups = [*database, upgrade, *stale, *locked, *orphaned, *broken]
    return _plan(backups, servers, (error,))


def test_every_decision_is_on_the_page_exactly_once_with_its_action() -> None:
    plan = _fleet()
    assert {group.status for group in plan.groups} == {"ok", "skipped", "orphan", "incomplete"}

    page = parse(render_html(plan))

    expected = Counter((f"{d.backup.resource}:{d.backup.id}", d.action) for d in plan.decisions)
    assert marks(page) == expected
    assert set(expected.values()) == {1}
    assert {action for _, action in expected} == {"keep", "delete"}


def test_each_mark_names_its_backup_date_action_and_reasons_on_hover() -> None:
    plan = _fleet()
    decisions = {f"{d.backup.resource}:{d.backup.id}": d for d in plan.decisions}

    page = parse(render_html(plan))

    for mark in page.having("data-backup"):
        decision = decisions[mark.attrs["data-backup"]]
        title = mark.attrs["title"].splitlines()
        assert title[0] == f"backups {decision.backup.id}: {decision.backup.name}"
        assert title[1] == decision.backup.created_at.isoformat(timespec="minutes")
        assert title[2] == _action_words(decision)
        assert title[3] == ", ".join(str(reason) for reason in decision.reasons)


def _action_words(decision: Decision) -> str:
    if decision.protected:
        return "keep (protected)"
    if decision.reasons[0].rule == "skipped":
        return "keep (held by a guard)"
    return decision.action


def _lanes(page: Page, section: Element) -> dict[str, list[str]]:
    """The backups in each lane of a server's timeline: {"keep": ["backups:1", ...], ...}."""
    return {
        lane.attrs["class"].split()[1]: [
            m.attrs["data-backup"] for m in page.within(lane, "span") if "data-backup" in m.attrs
        ]
        for lane in page.within(section, "div")
        if lane.attrs.get("class", "").startswith("lane ")
    }


def test_protected_and_held_backups_have_lanes_of_their_own() -> None:
    plan = _fleet()
    groups = {f"{g.resource}:{g.server_id}": g for g in plan.groups}

    page = parse(render_html(plan))

    sections = {e.attrs["data-group"]: e for e in page.tags("section")}
    database = _lanes(page, sections["backups:10"])
    assert database["protected"] == ["backups:199"]
    assert len(database["delete"]) == groups["backups:10"].deleted > 0
    assert set(database) == {"keep", "delete", "protected"}  # no held lane: nothing held
    for key in ("backups:20", "backups:30"):  # stale, locked
        lanes = _lanes(page, sections[key])
        assert len(lanes["held"]) == groups[key].blocked_deletions > 0
        assert lanes["delete"] == []
    assert set(_lanes(page, sections["backups:50"])) == {"keep", "held", "delete"}


def test_servers_with_problems_come_first_then_the_rest_by_id() -> None:
    plan = _fleet()

    page = parse(render_html(plan))

    sections = [e for e in page.tags("section") if "data-group" in e.attrs]
    order = [(e.attrs["data-group"], e.attrs["data-status"]) for e in sections]
    assert order == [
        ("backups:50", "incomplete"),
        ("backups:20", "skipped"),
        ("backups:30", "skipped"),
        ("backups:10", "ok"),
        ("backups:40", "orphan"),
    ]
    rows = [e.attrs["data-group"] for e in page.tags("tr") if "data-group" in e.attrs]
    assert rows == [group for group, _ in order]  # the servers table, in the same order


def test_the_totals_are_the_plans() -> None:
    plan = _fleet()
    summary = summarize(plan)

    page = parse(render_html(plan, summary))

    totals = {e.attrs["data-total"]: e.text for e in page.having("data-total")}
    number = {key: int(text.split()[0]) for key, text in totals.items()}
    assert number["kept"] == summary.kept
    assert number["deleted"] == summary.deleted > 0
    assert number["size_freed"] == summary.size_freed
    assert number["protected"] == 1
    assert number["held"] == sum(group.blocked_deletions for group in plan.groups) > 0
    assert number["groups"] == len(plan.groups)
    assert number["attention"] == 3  # incomplete, stale, locked
    assert "Incomplete" in "".join(e.text for e in page.tags("p"))  # exit 1: said at the top


def test_each_server_shows_its_status_guard_and_messages() -> None:
    page = parse(render_html(_fleet()))

    sections = {e.attrs["data-group"]: e.text for e in page.tags("section")}
    assert "skipped (locked)" in sections["backups:30"]
    assert "skipped (stale)" in sections["backups:20"]
    assert "backups item 3 has no created_at" in sections["backups:50"]
    assert "web-2 · server 30 · backups" in sections["backups:30"]


def test_marks_lie_along_the_axis_in_date_order() -> None:
    plan = _plan(daily(10, 10, hostname="db-1"))

    page = parse(render_html(plan))

    by_date = sorted(
        page.having("data-backup"), key=lambda mark: mark.attrs["title"].splitlines()[1]
    )
    lefts = [float(mark.attrs["style"].removeprefix("left:").removesuffix("%")) for mark in by_date]
    assert lefts == sorted(lefts)
    assert 0 <= lefts[0] < lefts[-1] <= 100


@pytest.mark.parametrize(
    ("span", "label"),
    [
        (timedelta(days=5), r"\d{4}-\d\d-\d\d"),  # a tick a day
        (timedelta(days=40), r"\d{4}-\d\d-\d\d"),  # a tick a week (Mondays)
        (timedelta(days=50), r"\d{4}-\d\d-\d\d"),  # the last Monday near the end
        (timedelta(days=200), r"\d{4}-\d\d"),  # months
        (timedelta(days=365 * 12), r"\d{4}"),  # years
    ],
)
def test_the_axis_has_a_few_round_dates_whatever_the_span(span: timedelta, label: str) -> None:
    oldest = backup(2, 10, NOW - span, hostname="db-1")
    plan = _plan([backup(1, 10, NOW - timedelta(hours=1), hostname="db-1"), oldest])

    page = parse(render_html(plan))

    axis = next(e for e in page.tags("div") if e.attrs.get("class") == "axis")
    spans = page.within(axis, "span")
    labels = [span.text for span in spans]
    assert 2 <= len(labels) <= 8
    assert all(re.fullmatch(label, text) for text in labels), labels
    lefts = [float(e.attrs["style"].removeprefix("left:").removesuffix("%")) for e in spans]
    assert all(0 <= left <= 100 for left in lefts), lefts
    if span >= timedelta(days=40) and len(labels[0]) == 10:
        assert {datetime.fromisoformat(text).weekday() for text in labels} == {0}


def test_hostile_names_are_text_never_markup() -> None:
    hostile = '"><script>alert(1)</script><img src=x onerror=alert(2)>'
    backups = [
        backup(1, 10, name=f"1{hostile}.qcow2.gz", hostname=f"db-{hostile}"),
        backup(2, 10, name=f"2{hostile}", hostname=f"db-{hostile}"),
    ]
    problem = Problem("warning", f"server 10 ({hostile}): odd", "backups", server_id=10)
    plan = _plan(backups, problems=(problem,))

    text = render_html(plan)
    page = parse(text)

    assert page.tags("script") == []
    assert page.tags("img") == []
    assert not any(name.startswith("on") for e in page.elements for name in e.attrs)
    titles = [mark.attrs["title"] for mark in page.having("data-backup")]
    assert any(hostile in title for title in titles)  # shown as it is, as text
    assert f"db-{hostile}" in "".join(e.text for e in page.tags("h3"))
    assert "<script>" not in text


def test_the_page_is_self_contained() -> None:
    text = render_html(_fleet(), origin=PlanOrigin("ab" * 32, "https://api.vpsbg.eu/v1"))
    page = parse(text)

    assert [e.tag for e in page.elements if e.tag in {"script", "link", "img", "iframe"}] == []
    assert not re.search(r"url\(|@import|src=", text)
    urls = re.findall(r"https?://[^\s<\"]+", text)
    assert urls == ["https://api.vpsbg.eu/v1"]  # only where the backups were listed from
    assert "ab" * 32 in text
    assert text.startswith("<!DOCTYPE html>")


def test_write_html_streams_the_page_a_server_at_a_time() -> None:
    plan = _fleet()

    class Recording(io.StringIO):
        writes = 0

        def write(self, text: str) -> int:
            self.writes += 1
            return super().write(text)

    stream = Recording()
    write_html(plan, stream)

    assert stream.getvalue() == render_html(plan)
    assert stream.writes > len(plan.groups)


def test_an_empty_plan_still_makes_a_page() -> None:
    plan = Plan(generated_at=NOW, now=NOW, dry_run=True, groups=())

    page = parse(render_html(plan))

    assert page.having("data-backup") == []
    assert page.tags("h1")[0].text.startswith("Backup retention plan")


def test_a_real_pass_says_deleted_and_a_dry_run_to_delete() -> None:
    backups = daily(3, 10, hostname="app-1")

    dry = parse(render_html(_plan(backups, dry_run=True)))
    real = parse(render_html(_plan(backups, dry_run=False)))

    assert "to delete" in next(
        e.text for e in dry.having("data-total") if "deleted" in str(e.attrs)
    )
    assert "dry run" in dry.tags("h1")[0].text
    assert "dry run" not in real.tags("h1")[0].text


def test_the_renderer_needs_only_the_standard_library_and_the_engine() -> None:
    graph = grimp.build_graph("pruner", include_external_packages=True)

    imported = graph.find_modules_directly_imported_by("pruner.report.html")

    outside = {name for name in imported if not name.startswith("pruner.")}
    assert sorted(outside - STDLIB) == []
    assert all(name.startswith(("pruner.engine", "pruner.report")) for name in imported - outside)


def test_times_keep_their_offsets() -> None:
    sofia = datetime(2026, 11, 20, 5, 0, tzinfo=UTC).astimezone(timezone(timedelta(hours=2)))
    page = parse(render_html(_plan([backup(1, 10, sofia, hostname="db-1")])))

    mark = page.having("data-backup")[0]
    assert mark.attrs["title"].splitlines()[1] == "2026-11-20T07:00+02:00"
