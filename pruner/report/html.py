"""A Plan for auditors: one self-contained HTML page (`pruner plan --format html`).

Totals, the per-server table, then for each server a timeline of its backups by date: one mark a
backup in a lane and colour of its kind (keep, held by a guard, delete, protected), with its
name, date, action and reasons in the mark's tooltip (its `title`); servers with problems first.
A table of each server's backups with the same words sits under its timeline, folded
(`<details>`), for readers who cannot hover.

Self-contained: inline CSS, no script, no font, stylesheet or image to fetch, so it reads the same
offline and attached to a ticket. Every text from the API or the config goes through
`html.escape`. Written to the stream piece by piece: one walk over the decisions finds the time
axis, one more draws them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from html import escape
from typing import TextIO

from pruner.engine.models import Decision, Group, Plan
from pruner.engine.reasons import SKIPPED, Reason, texts
from pruner.report.plan_json import PlanOrigin
from pruner.report.problems import problem_line
from pruner.report.summary import Summary, Tally, summarize

__all__ = ["render_html", "write_html"]

# Groups that need a reader's attention come first, worst first; then the rest by server id.
_ATTENTION = {"failed": 0, "incomplete": 1, "skipped": 2}
# A decision's kind, its lane and colour, and its action in words. `held`: kept only because a
# guard stopped the group (`skipped:<guard>`), shown apart so that a skipped server's timeline
# does not read as a policy that keeps everything.
_KINDS = {
    "keep": "keep",
    "held": "keep (held by a guard)",
    "delete": "delete",
    "protected": "keep (protected)",
}
_ALWAYS_SHOWN = ("keep", "delete")
_MAX_TICKS = 8
_DAY_STEPS = (1, 2, 7, 14)  # days; weekly ticks fall on Mondays
_MONTH_STEPS = (1, 2, 3, 6, 12, 24, 60, 120)
_DAY = timedelta(days=1)

# Okabe-Ito colours, told apart with colour blindness; each lane is labelled in words too.
_STYLE = """\
:root { --keep: #0072b2; --delete: #d55e00; --protected: #009e73;
  --held: #cc79a7; --line: #d0d4d9;
  --muted: #59606b; --warn: #8a5a00; --bad: #b00020; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial,
  sans-serif; color: #1d2127; background: #fff; margin: 0 auto; padding: 24px 32px;
  max-width: 1400px; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 17px; margin: 28px 0 8px; }
h3 { font-size: 15px; margin: 0; }
code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
  font-size: 12.5px; }
.meta { color: var(--muted); margin: 0; }
.badge { display: inline-block; padding: 0 7px; border-radius: 10px; font-size: 12px;
  border: 1px solid currentColor; white-space: nowrap; }
.totals { display: flex; flex-wrap: wrap; gap: 10px; margin: 16px 0 4px; padding: 0;
  list-style: none; }
.totals li { border: 1px solid var(--line); border-radius: 6px; padding: 6px 14px;
  min-width: 110px; }
.totals .n { display: block; font-size: 20px; font-weight: 600; }
.totals .delete .n { color: var(--delete); }
.totals .attention .n { color: var(--bad); }
.notice { border-left: 4px solid var(--bad); background: #fdf0f1; padding: 6px 12px;
  margin: 10px 0; }
.problems { margin: 4px 0; padding-left: 20px; }
.problems .error { color: var(--bad); }
.problems .warning { color: var(--warn); }
table { border-collapse: collapse; }
th, td { text-align: left; padding: 3px 10px 3px 0; vertical-align: top; }
th { font-weight: 600; border-bottom: 1px solid var(--line); }
td.n, th.n { text-align: right; }
.servers tr + tr td { border-top: 1px solid #eef0f2; }
.status-ok { color: #1e6b3a; } .status-skipped { color: var(--warn); }
.status-incomplete, .status-failed { color: var(--bad); }
.status-orphan, .status-unmanaged { color: var(--muted); }
.legend { display: flex; flex-wrap: wrap; gap: 18px; margin: 8px 0 0; color: var(--muted); }
.swatch { display: inline-block; width: 12px; height: 12px; border-radius: 2px;
  vertical-align: -1px; margin-right: 5px; }
.group { border: 1px solid var(--line); border-radius: 8px; padding: 12px 16px;
  margin: 14px 0; }
.group.attention { border-left: 5px solid var(--warn); }
.group[data-status="incomplete"], .group[data-status="failed"] { border-left-color: var(--bad); }
.group .meta { margin: 2px 0 8px; }
.messages { margin: 0 0 8px; padding-left: 20px; color: var(--warn); }
.timeline { position: relative; }
.lane { display: flex; align-items: center; height: 22px; }
.lane-name { width: 92px; flex: none; font-size: 12px; color: var(--muted); }
.track { position: relative; flex: 1; height: 18px; background: #f3f5f7; border-radius: 3px; }
.grid, .axis { position: absolute; top: 0; bottom: 0; left: 96px; right: 4px; }
.grid { bottom: 18px; z-index: 1; pointer-events: none; }
.grid i { position: absolute; top: 0; bottom: 0; width: 1px; background: var(--line); }
.scale { position: absolute; top: 2px; bottom: 2px; left: 4px; right: 4px; }
.mark { position: absolute; top: 0; bottom: 0; width: 3px; margin-left: -1.5px;
  border-radius: 1px; z-index: 2; }
.mark:hover { outline: 2px solid #1d2127; z-index: 3; }
.keep .mark, .swatch.keep { background: var(--keep); }
.delete .mark, .swatch.delete { background: var(--delete); }
.protected .mark, .swatch.protected { background: var(--protected); }
.held .mark, .swatch.held { background: var(--held); }
.axis-row { position: relative; height: 18px; }
.axis span { position: absolute; top: 1px; transform: translateX(-50%); font-size: 11px;
  color: var(--muted); white-space: nowrap; }
details { margin-top: 8px; }
summary { cursor: pointer; color: var(--muted); }
.backups td { font-size: 12.5px; }
.backups .delete td:first-child { color: var(--delete); font-weight: 600; }
.backups .protected td:first-child { color: var(--protected); font-weight: 600; }
.backups .held td:first-child { color: #9a3d73; font-weight: 600; }
.empty { color: var(--muted); font-style: italic; }
@media print { body { padding: 0; } .group { break-inside: avoid; } }
"""


def render_html(
    plan: Plan, summary: Summary | None = None, *, origin: PlanOrigin | None = None
) -> str:
    """The page as one string (`write_html` writes the same, piece by piece)."""
    return "".join(_page(plan, summary or summarize(plan), origin))


def write_html(
    plan: Plan,
    stream: TextIO,
    summary: Summary | None = None,
    *,
    origin: PlanOrigin | None = None,
) -> None:
    """Write the page to `stream`, one server at a time."""
    for piece in _page(plan, summary or summarize(plan), origin):
        stream.write(piece)


def _page(plan: Plan, summary: Summary, origin: PlanOrigin | None) -> Iterator[str]:
    groups = sorted(zip(plan.groups, summary.tallies, strict=True), key=_attention_first)
    axis = _Axis.of(plan)
    yield _head(plan)
    yield _header(plan, origin)
    yield _totals(plan, summary)
    yield _problems(plan)
    yield _servers_table(groups)
    yield "<h2>Timelines</h2>\n"
    yield _legend(plan)
    reasons: dict[tuple[Reason, ...], str] = {}  # the same reasons recur across servers
    for group, tally in groups:
        yield _group_section(group, tally, axis, reasons)
    yield "</main>\n</body>\n</html>\n"


def _attention_first(pair: tuple[Group, Tally]) -> tuple[int, int, str]:
    group = pair[0]
    return (_ATTENTION.get(group.status, len(_ATTENTION)), group.server_id, group.resource)


# --- the time axis --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Axis:
    """Dates along a track: the oldest backup of the plan on the left, now (or the newest
    backup, if one is dated later) on the right; the same for every server, so they compare."""

    start: datetime
    end: datetime

    @classmethod
    def of(cls, plan: Plan) -> _Axis | None:
        oldest = newest = None
        for group in plan.groups:
            for decision in group.decisions:
                created = decision.backup.created_at
                if oldest is None or created < oldest:
                    oldest = created
                if newest is None or created > newest:
                    newest = created
        if oldest is None or newest is None:
            return None
        end = max(plan.now, newest)
        return cls(min(oldest, end - _DAY), end)

    def left(self, moment: datetime) -> str:
        """Where `moment` lies along the track, as a CSS percentage."""
        return f"{(moment - self.start) / (self.end - self.start) * 100:.2f}%"

    def ticks(self) -> list[tuple[datetime, str]]:
        """At most _MAX_TICKS round dates within the axis (on the end's offset), and labels."""
        start = self.start.astimezone(self.end.tzinfo)
        midnight = start.replace(hour=0, minute=0, second=0, microsecond=0) + _DAY
        days = (self.end - midnight) / _DAY
        step = next((s for s in _DAY_STEPS if days / s < _MAX_TICKS), None)
        if step is not None:
            if step >= 7:
                midnight += _DAY * (-midnight.weekday() % 7)
            count = max(0, math.floor((self.end - midnight) / _DAY / step) + 1)
            moments = [midnight + _DAY * (step * n) for n in range(count)]
            return [(moment, moment.strftime("%Y-%m-%d")) for moment in moments]
        return _month_ticks(start, midnight, self.end)


def _month_ticks(start: datetime, midnight: datetime, end: datetime) -> list[tuple[datetime, str]]:
    """Firsts of months (or years) a round number of months apart."""
    months = (end.year - start.year) * 12 + end.month - start.month
    step = next(
        (s for s in _MONTH_STEPS if months / s < _MAX_TICKS),
        12 * math.ceil(months / 12 / _MAX_TICKS),
    )
    index = start.year * 12 + start.month  # the month after start's: months from year 0
    index += -index % step
    label = "%Y-%m" if step < 12 else "%Y"
    ticks = []
    while index <= end.year * 12 + end.month - 1:
        moment = midnight.replace(year=index // 12, month=index % 12 + 1, day=1)
        if moment <= end:
            ticks.append((moment, moment.strftime(label)))
        index += step
    return ticks


# --- the page's parts -----------------------------------------------------------------------


def _head(plan: Plan) -> str:
    title = f"pruner plan at {plan.now.isoformat(timespec='minutes')}"
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{escape(title)}</title>\n<style>\n{_STYLE}</style>\n</head>\n<body>\n<main>\n"
    )


def _header(plan: Plan, origin: PlanOrigin | None) -> str:
    mode = ' <span class="badge">dry run</span>' if plan.dry_run else ""
    lines = [
        f"<h1>Backup retention plan{mode}</h1>",
        f'<p class="meta">What a pass at <time>{_when(plan.now)}</time> keeps and deletes, '
        f"and why; made <time>{_when(plan.generated_at)}</time>.</p>",
    ]
    if origin is not None:
        lines.append(
            f'<p class="meta">Listed from <code>{escape(origin.api_base_url)}</code> under the '
            f"config with sha256 <code>{escape(origin.config_sha256)}</code>.</p>"
        )
    return "<header>\n" + "\n".join(lines) + "\n</header>\n"


def _totals(plan: Plan, summary: Summary) -> str:
    protected = sum(d.protected for group in plan.groups for d in group.decisions)
    held = sum(group.blocked_deletions for group in plan.groups)
    attention = sum(1 for group in plan.groups if group.status in _ATTENTION)
    items = [
        ("backups", summary.kept + summary.deleted, "backups and snapshots", ""),
        ("kept", summary.kept, "kept", ""),
        ("deleted", summary.deleted, "deleted" if not plan.dry_run else "to delete", "delete"),
        ("protected", protected, "protected (kept)", ""),
        ("held", held, "held back by a guard (kept)", ""),
        ("size_freed", summary.size_freed, "GB, disk size of the deleted backups", ""),
        ("groups", summary.groups, "groups (a server's backups or snapshots)", ""),
        ("attention", attention, "need attention", "attention" if attention else ""),
        ("problems", summary.errors + summary.warnings, _problem_words(summary), ""),
    ]
    cells = "\n".join(
        f'<li class="{css}" data-total="{key}"><span class="n">{value}</span> {words}</li>'
        for key, value, words, css in items
    )
    notice = ""
    if not summary.complete:
        notice = (
            '<p class="notice">Incomplete: a listing could not be read completely or a backup '
            "could not be judged. Nothing it covers is deleted; see the problems below.</p>\n"
        )
    return f'<ul class="totals">\n{cells}\n</ul>\n{notice}'


def _problem_words(summary: Summary) -> str:
    return f"problems ({summary.errors} errors, {summary.warnings} warnings)"


def _problems(plan: Plan) -> str:
    if not plan.problems:
        return ""
    ordered = sorted(plan.problems, key=lambda problem: problem.level != "error")
    items = "\n".join(
        f'<li class="{problem.level}">{escape(problem_line(problem))}</li>' for problem in ordered
    )
    return f'<h2>Problems</h2>\n<ul class="problems">\n{items}\n</ul>\n'


def _servers_table(groups: list[tuple[Group, Tally]]) -> str:
    head = (
        "<tr><th>server</th><th>hostname</th><th>resource</th><th>policy</th><th>status</th>"
        '<th class="n">kept</th><th class="n">delete</th><th class="n">GB deleted</th></tr>'
    )
    rows = "\n".join(
        f'<tr data-group="{group.resource}:{group.server_id}">'
        f'<td><a href="#{_anchor(group)}">{group.server_id}</a></td>'
        f"<td>{_text(group.server_hostname)}</td><td>{group.resource}</td>"
        f"<td>{_text(group.policy)}</td><td>{_status(group)}</td>"
        f'<td class="n">{tally.kept}</td><td class="n">{tally.deleted}</td>'
        f'<td class="n">{tally.size_freed}</td></tr>'
        for group, tally in groups
    )
    return (
        "<h2>Servers</h2>\n"
        '<table class="servers">\n'
        f"<thead>{head}</thead>\n<tbody>\n{rows}\n</tbody>\n</table>\n"
    )


def _legend(plan: Plan) -> str:
    deleted = "to delete" if plan.dry_run else "deleted"
    items = (
        ("keep", "kept"),
        ("delete", deleted),
        ("held", "held: kept only because a guard stopped the server (skipped)"),
        ("protected", "protected: always kept, counted by no rule"),
    )
    spans = "".join(f'<span><i class="swatch {lane}"></i>{words}</span>' for lane, words in items)
    return (
        f'<p class="legend">{spans}<span>one mark a backup, by date; hover a mark for its '
        "reasons</span></p>\n"
    )


def _group_section(
    group: Group, tally: Tally, axis: _Axis | None, reasons: dict[tuple[Reason, ...], str]
) -> str:
    lanes: dict[str, list[str]] = {kind: [] for kind in _KINDS}
    rows: list[str] = []
    for decision in group.decisions:
        kind = _kind(decision)
        why = reasons.get(decision.reasons)
        if why is None:
            why = reasons[decision.reasons] = escape(", ".join(texts(decision.reasons)))
        if axis is not None:
            lanes[kind].append(_mark(decision, kind, why, axis))
        rows.append(_row(decision, kind, why))
    attention = " attention" if group.status in _ATTENTION else ""
    hostname = escape(group.server_hostname) if group.server_hostname else "server"
    held = ""
    if group.blocked_deletions:
        held = f" · {_count(group.blocked_deletions, 'deletion')} held back by the guard"
    parts = [
        f'<section class="group{attention}" id="{_anchor(group)}" '
        f'data-group="{group.resource}:{group.server_id}" data-status="{group.status}">',
        f"<h3>{hostname} · server {group.server_id} · {group.resource}</h3>",
        f'<p class="meta">policy {_text(group.policy)} · {_status(group)} · kept {tally.kept}, '
        f"delete {tally.deleted}, {tally.size_freed} GB{held}</p>",
    ]
    if group.messages:
        items = "".join(f"<li>{escape(message)}</li>" for message in group.messages)
        parts.append(f'<ul class="messages">{items}</ul>')
    if axis is None or not group.decisions:
        parts.append('<p class="empty">no backups listed</p>')
    else:
        parts.append(_timeline(lanes, axis, group))
        parts.append(_backups_table(rows, len(group.decisions), group.resource))
    parts.append("</section>\n")
    return "\n".join(parts)


def _timeline(lanes: dict[str, list[str]], axis: _Axis, group: Group) -> str:
    ticks = axis.ticks()
    grid = "".join(f'<i style="left:{axis.left(moment)}"></i>' for moment, _ in ticks)
    labels = "".join(f'<span style="left:{axis.left(m)}">{label}</span>' for m, label in ticks)
    shown = [kind for kind in _KINDS if lanes[kind] or kind in _ALWAYS_SHOWN]
    rows = "".join(
        f'<div class="lane {lane}"><span class="lane-name">{lane} '
        f"({len(lanes[lane])})</span>"
        f'<div class="track"><div class="scale">{"".join(lanes[lane])}</div></div></div>\n'
        for lane in shown
    )
    what = f"{group.resource} of server {group.server_id} by date"
    return (
        f'<div class="timeline" role="group" aria-label="{what}">\n'
        f'<div class="grid">{grid}</div>\n{rows}'
        f'<div class="axis-row"><div class="axis">{labels}</div></div>\n</div>'
    )


def _mark(decision: Decision, kind: str, why: str, axis: _Axis) -> str:
    backup = decision.backup
    title = "\n".join(
        (
            f"{backup.resource} {backup.id}: {escape(backup.name or '(no name)')}",
            _when(backup.created_at),
            _KINDS[kind],
            why,
        )
    )
    return (
        f'<span class="mark" style="left:{axis.left(backup.created_at)}" '
        f'data-backup="{backup.resource}:{backup.id}" data-action="{decision.action}" '
        f'title="{title}"></span>'
    )


def _backups_table(rows: Iterable[str], count: int, resource: str) -> str:
    head = (
        '<tr><th>action</th><th class="n">id</th><th>created_at</th><th class="n">GB</th>'
        "<th>name</th><th>reasons</th></tr>"
    )
    body = "\n".join(rows)
    return (
        f"<details><summary>the {_count(count, resource[:-1])}, newest first</summary>\n"
        f'<table class="backups"><thead>{head}</thead>\n<tbody>\n{body}\n</tbody></table>\n'
        "</details>"
    )


def _row(decision: Decision, kind: str, why: str) -> str:
    backup = decision.backup
    action = _KINDS[kind]
    size = "-" if backup.size is None else str(backup.size)
    return (
        f'<tr class="{kind}"><td>{action}</td><td class="n">{backup.id}</td>'
        f'<td class="mono">{backup.created_at.isoformat(timespec="seconds")}</td>'
        f'<td class="n">{size}</td><td class="mono">{_text(backup.name)}</td>'
        f'<td class="mono">{why}</td></tr>'
    )


def _kind(decision: Decision) -> str:
    if decision.protected:
        return "protected"
    if decision.action == "keep" and decision.reasons[0].rule == SKIPPED:
        return "held"
    return decision.action


def _status(group: Group) -> str:
    words = group.status if group.guard is None else f"{group.status} ({group.guard})"
    return f'<span class="badge status-{group.status}">{words}</span>'


def _anchor(group: Group) -> str:
    return f"{group.resource}-{group.server_id}"


def _count(count: int, thing: str) -> str:
    return f"{count} {thing}" if count == 1 else f"{count} {thing}s"


def _text(value: str | None) -> str:
    return "-" if value is None else escape(value)


def _when(moment: datetime) -> str:
    return moment.isoformat(timespec="minutes")
