"""A backtest as a picture: one row per server, one line per backup over the days it exists.

Self-contained SVG (no script, no font or image to fetch), built with xml.etree so every name is
escaped. Each tick is a day-wide column of a row's strip, so the lines crossing a column are the
backups kept at that tick. Lines share lanes: a backup takes the lowest lane free on its first
day, and the lines of one lane and kind that meet are drawn as one.
"""

from __future__ import annotations

import heapq
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from pruner.engine.simulate import Backtest, Life, Simulation

__all__ = ["render_svg"]

_DAY = timedelta(days=1)
_LABEL_WIDTH = 250
_LABEL_CHARS = 40  # of 11 px sans-serif in that width
_STRIP_WIDTH = 732  # two pixels a day over a year
_MARGIN = 12
_TOP = 58  # the title and the axis
_ROW_MIN = 30  # room for the label's two lines
_ROW_GAP = 8
_LANE = 3.0  # pixels a lane, until a row would pass _ROW_MAX; a line fills 70% of its lane
_ROW_MAX = 90
_LEGEND = 40
_COLOURS = {"listed": "#4c78a8", "simulated": "#f58518"}
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def render_svg(simulation: Simulation) -> str:
    """The picture as an SVG document."""
    scale = _Scale(simulation.now, simulation.days)
    rows = [_Row.of(run, simulation.now, simulation.days) for run in simulation.backtests]
    height = _TOP + sum(row.height + _ROW_GAP for row in rows) + _LEGEND
    width = _LABEL_WIDTH + _STRIP_WIDTH + 2 * _MARGIN
    svg = ET.Element(
        "svg",
        {
            "xmlns": "http://www.w3.org/2000/svg",
            "width": str(width),
            "height": _number(height),
            "viewBox": f"0 0 {width} {_number(height)}",
            "font-family": "sans-serif",
            "font-size": "11",
        },
    )
    _title(svg, simulation)
    top: float = _TOP
    for row in rows:
        _row(svg, row, scale, top)
        top += row.height + _ROW_GAP
    _axis(svg, scale, height - _LEGEND)  # over the rows: the month lines cross them
    _legend(svg, height - _LEGEND + 16)
    ET.indent(svg, space="")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(svg, "unicode") + "\n"


@dataclass(frozen=True, slots=True)
class _Scale:
    now: datetime
    days: int

    def x(self, day: float) -> float:
        """Day d's column starts here; the strip holds days 0 to `days`, a column each."""
        return _MARGIN + _LABEL_WIDTH + day / (self.days + 1) * _STRIP_WIDTH

    def month_starts(self) -> Iterator[tuple[float, str]]:
        """Each first of a month within the strip (on now's own offset): its day, its label
        (the month, or the year in January)."""
        wall = self.now
        year, month = wall.year, wall.month
        while True:
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
            start = wall.replace(
                year=year, month=month, day=1, hour=0, minute=0, second=0, microsecond=0
            )
            day = (start - self.now) / _DAY
            if day > self.days + 1:
                return
            yield day, str(year) if month == 1 else _MONTHS[month - 1]


@dataclass(frozen=True, slots=True)
class _Segment:
    lane: int
    start: int  # the first day it exists
    end: int  # the day after its last
    kind: str


@dataclass(frozen=True, slots=True)
class _Row:
    run: Backtest
    segments: tuple[_Segment, ...]
    lanes: int

    @classmethod
    def of(cls, run: Backtest, now: datetime, days: int) -> _Row:
        spans = sorted(_span(life, now, days) for life in run.lives)
        segments = tuple(_joined(_in_lanes(spans)))
        return cls(run, segments, max((s.lane + 1 for s in segments), default=0))

    @property
    def lane_height(self) -> float:
        return min(_LANE, _ROW_MAX / self.lanes) if self.lanes else _LANE

    @property
    def height(self) -> float:
        return max(_ROW_MIN, self.lanes * self.lane_height)


def _span(life: Life, now: datetime, days: int) -> tuple[int, int, str]:
    """The days a backup exists: from the first tick at or after it was made (day 0 for what
    was listed) to the tick that deleted it (or past the last one)."""
    start = max(0, -((now - life.created_at) // _DAY))
    end = days + 1 if life.deleted_at is None else (life.deleted_at - now) // _DAY
    return start, end, "simulated" if life.simulated else "listed"


def _in_lanes(spans: Iterable[tuple[int, int, str]]) -> Iterator[_Segment]:
    """Each span in the lowest lane free on its first day (spans sorted by start)."""
    busy: list[tuple[int, int]] = []  # (end, lane)
    free: list[int] = []
    lanes = 0
    for start, end, kind in spans:
        while busy and busy[0][0] <= start:
            heapq.heappush(free, heapq.heappop(busy)[1])
        if free:
            lane = heapq.heappop(free)
        else:
            lane, lanes = lanes, lanes + 1
        heapq.heappush(busy, (end, lane))
        yield _Segment(lane, start, end, kind)


def _joined(segments: Iterable[_Segment]) -> Iterator[_Segment]:
    """Segments of one lane and kind that meet, as one."""
    last: dict[tuple[int, str], _Segment] = {}
    for segment in sorted(segments, key=lambda s: (s.lane, s.kind, s.start)):
        key = (segment.lane, segment.kind)
        previous = last.get(key)
        if previous is not None and previous.end == segment.start:
            last[key] = _Segment(segment.lane, previous.start, segment.end, segment.kind)
            continue
        if previous is not None:
            yield previous
        last[key] = segment
    yield from last.values()


def _title(svg: ET.Element, simulation: Simulation) -> None:
    text = ET.SubElement(svg, "text", {"x": str(_MARGIN), "y": "18", "font-size": "13"})
    text.text = (
        f"Backtest from {simulation.now.isoformat(timespec='minutes')} over "
        f"{simulation.days} days: the backups each server keeps, day by day"
    )


def _axis(svg: ET.Element, scale: _Scale, bottom: float) -> None:
    axis = ET.SubElement(svg, "g", {"class": "axis", "stroke": "#ffffff", "stroke-width": "0.6"})
    for day, label in scale.month_starts():
        x = _number(scale.x(day))
        ET.SubElement(axis, "line", {"x1": x, "y1": str(_TOP - 14), "x2": x, "y2": _number(bottom)})
        text = ET.SubElement(
            axis,
            "text",
            {"x": x, "y": str(_TOP - 18), "text-anchor": "middle", "stroke": "none"},
        )
        text.text = label


def _row(svg: ET.Element, row: _Row, scale: _Scale, top: float) -> None:
    run = row.run
    group = ET.SubElement(
        svg,
        "g",
        {
            "class": "server",
            "data-server-id": str(run.server_id),
            "data-resource": run.resource,
            "transform": f"translate(0,{_number(top)})",
        },
    )
    low, high = run.settled
    band = str(low) if low == high else f"{low}-{high}"
    title = ET.SubElement(group, "title")
    title.text = (
        f"{run.hostname or 'server'} ({run.server_id}), {run.resource}, policy {run.policy}: "
        f"settles at {band} kept"
    )
    label = ET.SubElement(group, "text", {"x": str(_MARGIN), "y": "12"})
    label.text = _clipped(f"{run.hostname or '-'} · {run.server_id}")
    detail = ET.SubElement(group, "text", {"x": str(_MARGIN), "y": "25", "fill": "#666666"})
    detail.text = _clipped(f"{run.resource} · {run.policy} · settles at {band}")
    left = scale.x(0)
    ET.SubElement(
        group,
        "rect",
        {
            "x": _number(left),
            "y": "0",
            "width": _number(scale.x(scale.days + 1) - left),
            "height": _number(row.height),
            "fill": "#f4f4f4",
        },
    )
    for kind, colour in _COLOURS.items():
        lines = ET.SubElement(
            group,
            "g",
            {"class": kind, "stroke": colour, "stroke-width": _number(row.lane_height * 0.7)},
        )
        for segment in row.segments:
            if segment.kind == kind:
                y = _number((segment.lane + 0.5) * row.lane_height)
                x1, x2 = _number(scale.x(segment.start)), _number(scale.x(segment.end))
                ET.SubElement(lines, "line", {"x1": x1, "y1": y, "x2": x2, "y2": y})


def _legend(svg: ET.Element, y: float) -> None:
    legend = ET.SubElement(svg, "g", {"class": "legend"})
    x = _MARGIN
    for kind, words in (("listed", "listed now"), ("simulated", "made by the cadence")):
        ET.SubElement(
            legend,
            "rect",
            {
                "x": str(x),
                "y": _number(y - 8),
                "width": "14",
                "height": "8",
                "fill": _COLOURS[kind],
            },
        )
        text = ET.SubElement(legend, "text", {"x": str(x + 20), "y": _number(y)})
        text.text = words
        x += 170
    note = ET.SubElement(legend, "text", {"x": str(x), "y": _number(y), "fill": "#666666"})
    note.text = "one line per backup, over the days it exists; one column per day"


def _clipped(text: str) -> str:
    """A label that fits its column (the row's title has it whole)."""
    return text if len(text) <= _LABEL_CHARS else text[: _LABEL_CHARS - 1] + "…"


def _number(value: float) -> str:
    """Fixed, short and the same on every platform: at most one decimal."""
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text
