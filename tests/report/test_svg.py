"""The backtest's picture: a self-contained SVG, one row per server, each backup a line."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

from pruner.engine.models import Backup, Policy
from pruner.engine.planner import build_plan
from pruner.engine.simulate import Simulation, simulate
from pruner.report.svg import render_svg
from tests._factories import backup, listing, policy

NOW = datetime(2026, 1, 5, 3, 30, tzinfo=UTC)
DAY = timedelta(days=1)
SVG = "{http://www.w3.org/2000/svg}"


def _daily(server_id: int, count: int, hostname: str, step: timedelta = DAY) -> list[Backup]:
    newest = NOW - timedelta(hours=2)
    return [
        backup(server_id * 1000 + n, server_id, newest - n * step, hostname=hostname)
        for n in range(count)
    ]


def _simulate(backups: list[Backup], policies: list[Policy], days: int = 365) -> Simulation:
    plan = build_plan(
        listing(backups),
        policies,
        now=NOW,
        generated_at=NOW,
        zone=None,
        max_deletions_per_run=None,
        dry_run=True,
    )
    return simulate(plan, policies, days=days)


def _rows(document: ET.Element) -> list[ET.Element]:
    return [g for g in document.iter(f"{SVG}g") if g.get("class") == "server"]


def _text(row: ET.Element, tag: str) -> str:
    """The text of the row's first `tag` element."""
    found = row.find(f"{SVG}{tag}")
    assert found is not None
    return "".join(found.itertext())


def _lines(row: ET.Element, kind: str) -> list[ET.Element]:
    return [
        line
        for group in row.iter(f"{SVG}g")
        if group.get("class") == kind
        for line in group.iter(f"{SVG}line")
    ]


def test_the_svg_is_well_formed_xml_with_one_row_per_server() -> None:
    simulation = _simulate(
        [*_daily(1, 30, "db-1"), *_daily(2, 3, "web-1", 7 * DAY), *_daily(3, 1, "mail-1")],
        [policy(keep_daily=7, keep_weekly=4, keep_monthly=6)],
    )

    document = ET.fromstring(render_svg(simulation))

    assert document.tag == f"{SVG}svg"
    rows = _rows(document)
    assert [(row.get("data-server-id"), row.get("data-resource")) for row in rows] == [
        ("1", "backups"),
        ("2", "backups"),
        ("3", "backups"),
    ]
    labels = [_text(row, "text") for row in rows]
    assert [label.split(" ")[0] for label in labels] == ["db-1", "web-1", "mail-1"]
    assert _lines(rows[2], "simulated") == []  # a lone backup: no cadence, nothing made
    assert len(_lines(rows[2], "listed")) == 1
    assert _lines(rows[0], "simulated")


def test_the_svg_is_self_contained() -> None:
    simulation = _simulate(_daily(1, 10, "db-1"), [policy(keep_daily=7)], days=30)

    text = render_svg(simulation)
    document = ET.fromstring(text)

    assert not [e for e in document.iter() if e.tag in {f"{SVG}script", f"{SVG}image"}]
    assert not [e for e in document.iter() for name in e.attrib if "href" in name]
    assert "<script" not in text.lower()


def test_names_with_markup_are_escaped() -> None:
    simulation = _simulate(_daily(1, 3, 'db-<1>&"x"'), [policy(keep_last=2)], days=3)

    document = ET.fromstring(render_svg(simulation))

    [row] = _rows(document)
    assert 'db-<1>&"x"' in _text(row, "text")


def test_a_month_tick_marks_each_month_start_on_the_axis() -> None:
    # From 2026-01-05 over 365 days: Feb 1, 2026 to Jan 1, 2027, twelve month starts.
    simulation = _simulate(_daily(1, 3, "db-1"), [policy(keep_last=2)])

    document = ET.fromstring(render_svg(simulation))

    [axis] = [g for g in document.iter(f"{SVG}g") if g.get("class") == "axis"]
    labels = ["".join(text.itertext()) for text in axis.iter(f"{SVG}text")]
    assert labels == [
        "Feb",
        "Mar",
        "Apr",
        "May",
        "Jun",
        "Jul",
        "Aug",
        "Sep",
        "Oct",
        "Nov",
        "Dec",
        "2027",
    ]


def test_each_backup_is_a_line_over_the_days_it_exists() -> None:
    # keep_last 3 of daily backups, over days 0 to 9: the strip has a column per day, ten. A
    # backup made during day k - 1 exists from tick k and is deleted three ticks later.
    simulation = _simulate(_daily(1, 3, "db-1"), [policy(keep_last=3)], days=9)
    document = ET.fromstring(render_svg(simulation))
    [row] = _rows(document)
    strip = row.find(f"{SVG}rect")
    assert strip is not None
    left, width = float(strip.get("x", "")), float(strip.get("width", ""))

    def day(x: str | None) -> float:
        return round((float(x or "nan") - left) / width * 10, 2)

    def spans(kind: str) -> list[tuple[float, float]]:
        return sorted((day(line.get("x1")), day(line.get("x2"))) for line in _lines(row, kind))

    # The listed ones go on days 1, 2 and 3, as one is made each day from then on.
    assert spans("listed") == [(0.0, 1.0), (0.0, 2.0), (0.0, 3.0)]
    # A made one takes the lane its predecessor leaves on the same day: each lane's made
    # backups join into one line, to the end of the strip.
    assert spans("simulated") == [(1.0, 10.0), (2.0, 10.0), (3.0, 10.0)]


def test_a_long_label_is_clipped_to_its_column_and_whole_in_the_title() -> None:
    hostname = "a-very-long-hostname-of-a-server-in-a-big-fleet.example.com"
    simulation = _simulate(_daily(1, 3, hostname), [policy(keep_last=2)], days=3)

    [row] = _rows(ET.fromstring(render_svg(simulation)))

    label = _text(row, "text")
    assert len(label) == 40
    assert label.endswith("…")
    assert hostname in _text(row, "title")
