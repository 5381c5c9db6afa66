"""`pruner demo`: plan and prune a simulated VPSBG account, with nothing to set up.

The built-in simulator serves a generated fleet on 127.0.0.1. The policies are config.example.yaml's
(shipped inside the package), changed only where a simulator needs it, and every change is printed
with its reason. Then the plan, and a real pass (the one `pruner run` makes) against the simulator.
What the pass writes goes to a temporary state_dir, removed at the end.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import TextIO

from pruner.actions.run import stop_on_signals
from pruner.config.load import parse_config
from pruner.config.schema import Config
from pruner.engine.models import Backup, Decision, Group, Plan, Resource
from pruner.engine.reasons import Reason
from pruner.engine.results import PassResult
from pruner.errors import EXIT_INCOMPLETE, UserError
from pruner.ops.logging import configure_logging
from pruner.passes.one_pass import run_pass
from pruner.report.pass_summary import PassSummary
from pruner.report.problems import problem_line
from pruner.report.terminal import decision_lines
from pruner.report.text import WIDTH, wrapped
from pruner.sim import WRITE_TOKEN, Fleet, Simulator, generate_fleet
from pruner.vpsbg.token import Secret

__all__ = ["EXAMPLE_CONFIG", "Change", "example_config_path", "for_simulator", "main"]

EXAMPLE_CONFIG = "config.example.yaml"
# A few dozen servers with three months of never-pruned history: every kind of group shows up
# (kept by each rule, locked, stale, orphan), and a pass stays well under ten seconds.
_SERVERS = 30
_DAYS = 90
_SEED = 0
_BACKOFF = timedelta(milliseconds=10)
_EXAMPLE_ROWS = 12  # decision rows shown of one server's plan
_SHOWN_FAILURES = 5

# The rule of a reason as one letter, for the kept lists.
_RULE_LETTERS = {
    "keep_last": "L",
    "keep_hourly": "H",
    "keep_daily": "D",
    "keep_weekly": "W",
    "keep_monthly": "M",
    "keep_yearly": "Y",
    "keep_within": "w",
    "keep_within_hourly": "w",
    "keep_within_daily": "w",
    "keep_within_weekly": "w",
    "keep_within_monthly": "w",
    "keep_within_yearly": "w",
    "protected": "P",
    "min_keep": "F",
    "keep_all": "A",
}
_LEGEND = {
    "L": "keep_last",
    "H": "hourly",
    "D": "daily",
    "W": "weekly",
    "M": "monthly",
    "Y": "yearly",
    "w": "keep_within*",
    "P": "protected",
    "F": "the min_keep floor",
    "A": "no keep rule (limits only)",
    "?": "another reason",
}


def main(args: argparse.Namespace) -> int:
    started = time.monotonic()
    if args.log_level == "info":  # the CLI's default: here the story is on stdout
        configure_logging(args.log_format, "error")
    example = example_config_path()
    config = parse_config(example.read_text(encoding="utf-8"), source=str(example))
    fleet = generate_fleet(now=datetime.now(UTC), servers=_SERVERS, days=_DAYS, seed=_SEED)
    token = Secret(WRITE_TOKEN, "the simulator's write token")
    out, stop = sys.stdout, threading.Event()
    with (
        stop_on_signals(stop),
        tempfile.TemporaryDirectory(prefix="pruner-demo-") as folder,
        Simulator(fleet, seed=_SEED) as simulator,
    ):
        state_dir = Path(folder)
        demo, changes = for_simulator(config, simulator.base_url, state_dir)
        intro = _intro(fleet, simulator.base_url, changes)
        _write(out, [*intro, *_loosened(config.safety.confirm_after, str(example))])
        planned = run_pass(demo, dry_run=False, execute=False, token=token, stop=stop)
        if planned.interrupted or stop.is_set():
            _write(out, ["", "Stopped by a signal before the pass: nothing was deleted."])
            return EXIT_INCOMPLETE
        _write(out, _plan_section(planned.plan))
        _write(out, ["", "2. The pass: what `pruner run` does (list again, decide again, delete)"])
        result = run_pass(demo, dry_run=False, token=token, stop=stop)
        _write(out, _pass_section(result))
        _write(out, _outcome_section(result))
        _write(out, _guard_section(result.plan))
    _write(out, _closing(result, state_dir, time.monotonic() - started, str(example)))
    return result.exit_code


def example_config_path() -> Traversable:
    """config.example.yaml: the copy inside the installed package (a wheel ships it), else the
    one at the root of the source tree (an editable install runs from there)."""
    packaged = resources.files("pruner") / EXAMPLE_CONFIG
    if packaged.is_file():
        return packaged
    in_source_tree = Path(__file__).resolve().parents[2] / EXAMPLE_CONFIG
    if in_source_tree.is_file():
        return in_source_tree
    raise UserError(
        f"demo: {EXAMPLE_CONFIG} is missing from this installation (looked in {packaged} and "
        f"{in_source_tree}): reinstall pruner, e.g. `pip install --force-reinstall pruner`"
    )


# --- the config, changed for the simulator ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class Change:
    """One setting the demo changes from config.example.yaml, and why."""

    setting: str
    was: str
    now: str
    why: str


def for_simulator(config: Config, base_url: str, state_dir: Path) -> tuple[Config, list[Change]]:
    """The config with what a simulator needs changed, and the changes in words."""
    api, safety = config.api, config.safety
    demo = config.model_copy(
        update={
            "source": f"{config.source} (changed for pruner demo)",
            "api": api.model_copy(update={"base_url": base_url, "backoff": _BACKOFF}),
            "dry_run": False,
            "state_dir": state_dir,
            "safety": safety.model_copy(
                update={
                    "max_delete_fraction": 1.0,
                    "max_deletions_per_run": None,
                    "confirm_after": None,
                }
            ),
            "policies": tuple(replace(p, max_delete_fraction=1.0) for p in config.policies),
        }
    )
    token = f"file {api.token_file}" if api.token_file else f"${api.token_env}"
    own_fractions = [
        f"policy {policy.name}'s {policy.max_delete_fraction:g}"
        for policy in config.policies
        if policy.max_delete_fraction not in (safety.max_delete_fraction, 1.0)
    ]
    also = f"; also {', '.join(own_fractions)}" if own_fractions else ""
    changes = [
        Change("api.base_url", api.base_url, base_url, ""),
        Change("API token", token, "the simulator's write token", "given directly"),
        Change(
            "api.backoff",
            _seconds(api.backoff),
            _seconds(_BACKOFF),
            "the simulator answers at once",
        ),
        Change("dry_run", _flag(config.dry_run), "false", "simulated backups: delete for real"),
        Change("state_dir", str(config.state_dir), str(state_dir), "removed at the end"),
        Change(
            "safety.max_delete_fraction",
            f"{safety.max_delete_fraction:g}",
            "1.0",
            f"caps loosened, see below{also}",
        ),
        Change(
            "safety.max_deletions_per_run",
            _optional(safety.max_deletions_per_run),
            "null",
            "caps loosened, see below",
        ),
        Change(
            "safety.confirm_after",
            _hours(safety.confirm_after),
            "null",
            "two-phase deletion off: one pass deletes, see below",
        ),
    ]
    return demo, changes


def _intro(fleet: Fleet, base_url: str, changes: Sequence[Change]) -> Iterator[str]:
    yield "pruner demo: a simulated VPSBG account, planned and pruned for real on 127.0.0.1"
    yield ""
    yield (
        f"Simulator: {base_url}, {len(fleet.servers)} servers, {len(fleet.backups):,} backups, "
        f"{len(fleet.snapshots):,} snapshots ({_DAYS} days of history)"
    )
    yield f"Policies:  {EXAMPLE_CONFIG}, changed for the simulator:"
    width = max(len(change.setting) for change in changes)
    for change in changes:
        why = f"  ({change.why})" if change.why else ""
        yield from _wrapped(
            f"{change.setting:<{width}}  {change.was} -> {change.now}{why}",
            "  ",
            " " * (width + 4),
        )


def _loosened(confirm_after: timedelta | None, example: str) -> Iterator[str]:
    """Why the caps (and two-phase deletion) are off here, and what a real account meets."""
    if confirm_after is None:
        said = "Caps loosened:"
        first = ""
    else:
        said = "Caps loosened and two-phase deletion off:"
        first = (
            "the first passes delete nothing: each deletion waits safety.confirm_after "
            f"({_hours(confirm_after)}) until a later pass confirms it (`pruner plan` shows it "
            "pending meanwhile); then "
        )
    yield from _wrapped(
        f"{said} this account has {_DAYS} days of history that was never pruned, so one pass "
        f"deletes most of it. On a real account with this config, {first}the caps stop it: the "
        "pass deletes nothing and exits 3. There, review `pruner plan`, then run "
        "`pruner run --allow-large-deletions` once, or prune it a few servers at a time with "
        "`pruner run --server`, the caps counting those alone.",
        "",
        "  ",
    )
    yield from _wrapped(f"The policies themselves are unchanged, as in {example}", "", "  ")


# --- 1. the plan -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _ServerView:
    """One server's groups (at most one per resource)."""

    server_id: int
    hostname: str
    groups: Mapping[Resource, Group] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.hostname} ({self.server_id})"


def _by_server(plan: Plan) -> list[_ServerView]:
    groups: dict[int, dict[Resource, Group]] = {}
    hostnames: dict[int, str] = {}
    for group in plan.groups:
        groups.setdefault(group.server_id, {})[group.resource] = group
        if group.server_hostname and group.server_id not in hostnames:
            hostnames[group.server_id] = group.server_hostname
    views = [
        _ServerView(server_id, hostnames.get(server_id, "?"), by_resource)
        for server_id, by_resource in groups.items()
    ]
    return sorted(views, key=lambda view: (view.hostname, view.server_id))


def _plan_section(plan: Plan) -> Iterator[str]:
    views = _by_server(plan)
    yield ""
    yield "1. The plan: what `pruner plan` decides for each server (nothing is deleted yet)"
    yield ""
    yield f"  {'':16}  {'':6}  {'':16}  {'backups':>13}   {'snapshots':>13}"
    yield (
        f"  {'hostname':<16}  {'server':>6}  {'policy':<16}  {'keep':>5}  {'delete':>6}"
        f"   {'keep':>5}  {'delete':>6}  guard"
    )
    for view in views:
        backups, snapshots = view.groups.get("backups"), view.groups.get("snapshots")
        policy = (backups.policy if backups else None) or "-"
        yield (
            f"  {view.hostname[:16]:<16}  {view.server_id:>6}  {policy[:16]:<16}  "
            f"{_counts(backups)}   {_counts(snapshots)}  {_guards(view)}"
        ).rstrip()
    kept = sum(group.kept for group in plan.groups)
    deleted = sum(group.deleted for group in plan.groups)
    yield ""
    yield f"  In all: keep {kept:,}, delete {deleted:,}. A guard (last column) keeps a whole group."
    example = _example_group(plan)
    if example is not None:
        yield from _example_rows(plan, example)


def _counts(group: Group | None) -> str:
    if group is None:
        return f"{'-':>5}  {'-':>6}"
    return f"{group.kept:>5}  {group.deleted:>6}"


def _guards(view: _ServerView) -> str:
    labels = {group.guard or group.status for group in view.groups.values() if group.status != "ok"}
    return ", ".join(sorted(labels))


def _rules(group: Group) -> set[str]:
    return {reason.rule for decision in group.decisions for reason in decision.reasons}


def _example_group(plan: Plan) -> Group | None:
    """The backups group that shows the most rules at work (the first, on a tie)."""
    candidates = [g for g in plan.groups if g.resource == "backups" and g.status == "ok"]
    return max(candidates, key=lambda group: len(_rules(group)), default=None)


def _example_rows(plan: Plan, group: Group) -> Iterator[str]:
    """The first rows of `group` as `pruner plan --details` draws them on a 100-column terminal."""
    rows = min(len(group.decisions), _EXAMPLE_ROWS)
    yield ""
    yield (
        f"  The newest backups of {group.server_hostname}, as `pruner plan --details` shows "
        "every decision:"
    )
    yield ""
    yield from decision_lines(group, width=WIDTH, zone=None, rows=rows)
    more = len(group.decisions) - min(rows, _EXAMPLE_ROWS)
    yield from _wrapped(
        (f"… and {more} more rows of {group.server_hostname}. " if more else "")
        + "`pruner plan` prints a line per server, `pruner plan --details` every row of every "
        f"server ({len(plan.decisions):,} here), `pruner plan --format json` the same for "
        "scripts. To plan this fleet yourself: "
        f"`python -m pruner.sim --days {_DAYS}` serves it; point api.base_url at the URL "
        "it prints and set VPSBG_API_TOKEN=sim-read-token.",
        "  ",
        "  ",
    )


# --- 2. the pass -------------------------------------------------------------------------------


def _pass_section(result: PassResult) -> Iterator[str]:
    done = Counter(outcome.resource for outcome in result.outcomes if outcome.done)
    failed = [outcome for outcome in result.outcomes if not outcome.done]
    yield ""
    yield (
        f"  Deleted {done['backups']:,} backups and {done['snapshots']:,} snapshots in "
        f"{result.duration:.1f} s (pass {result.run_id}, exit code {result.exit_code})."
    )
    summary = PassSummary.of(result)
    yield from _wrapped(f"Summary: {summary.sentence()}", "  ", "    ")
    for failure in summary.failures():
        yield from _wrapped(failure, "  ", "    ")
    for outcome in failed[:_SHOWN_FAILURES]:
        yield from _wrapped(f"{outcome.resource} {outcome.id}: {outcome.message}", "    ", "      ")


# --- 3. what each server kept ------------------------------------------------------------------


def _outcome_section(result: PassResult) -> Iterator[str]:
    deleted = {(o.resource, o.id) for o in result.outcomes if o.done}
    year = result.plan.now.year
    yield ""
    yield "3. What each server kept: the date of each kept backup, and the rules that kept it"
    letters = {
        _letter(reason)
        for group in result.plan.groups
        if group.status in ("ok", "failed")
        for decision in group.decisions
        if decision.action == "keep"
        for reason in decision.reasons
    }
    legend = [f"{letter} {meaning}" for letter, meaning in _LEGEND.items() if letter in letters]
    yield from _packed(legend, "   Rules: ", "          ", separator=", ")
    yield ""
    for view in _by_server(result.plan):
        backups, snapshots = view.groups.get("backups"), view.groups.get("snapshots")
        if backups is not None:
            yield from _group_outcome(view.label, backups, deleted, year, "")
        if snapshots is not None:
            if backups is None:
                yield view.label
            yield from _group_outcome("snapshots", snapshots, deleted, year, "    ")


def _group_outcome(
    lead: str, group: Group, deleted: set[tuple[Resource, int]], year: int, indent: str
) -> Iterator[str]:
    policy = f"policy {group.policy}" if group.policy else "no policy"
    head = f"{indent}{lead} · {policy}"
    kept = [decision for decision in group.decisions if decision.action == "keep"]
    gone = [d.backup for d in group.decisions if (d.backup.resource, d.backup.id) in deleted]
    left = sum(1 for d in group.decisions if d.action == "delete") - len(gone)
    if group.status in ("skipped", "orphan", "unmanaged", "incomplete"):
        why = group.guard or group.status
        yield f"{head} · {why}: all {len(kept)} kept, untouched"
        return
    counts = f"kept {len(kept)}, deleted {len(gone)}{_span_of(gone, year)}"
    if left:
        counts += f", {left} left (failed or stopped)"
    tokens = _kept_tokens(kept, year)
    if group.resource == "snapshots":  # a few at most: on the same line
        yield from _packed(tokens, f"{head} · {counts}: ", indent + "    ")
        return
    yield from _wrapped(f"{head} · {counts}", "", "    ")
    yield from _packed(tokens, "    ", "    ")


def _kept_tokens(kept: Sequence[Decision], year: int) -> list[str]:
    """`Nov 27 LDWM` for each kept backup; the time too where a day has several."""
    days = Counter(decision.backup.created_at.date() for decision in kept)
    tokens = []
    for decision in kept:
        moment = decision.backup.created_at
        when = _day(moment, year)
        if days[moment.date()] > 1:
            when += f" {moment:%H:%M}"
        letters = dict.fromkeys(_letter(reason) for reason in decision.reasons)
        tokens.append(f"{when} {''.join(letters)}")
    return tokens


def _letter(reason: Reason) -> str:
    return _RULE_LETTERS.get(reason.rule, "?")


def _span_of(backups: Sequence[Backup], year: int) -> str:
    if not backups:
        return ""
    oldest = _day(min(backups, key=Backup.sort_key).created_at, year)
    newest = _day(max(backups, key=Backup.sort_key).created_at, year)
    return f" ({oldest})" if oldest == newest else f" ({oldest} to {newest})"


def _day(moment: datetime, year: int) -> str:
    return f"{moment:%b %d}" if moment.year == year else f"{moment:%b %d %Y}"


def _guard_section(plan: Plan) -> Iterator[str]:
    guarded = [g for g in plan.groups if g.guard or g.status in ("orphan", "unmanaged")]
    if not guarded:
        return
    yield ""
    yield "Guards that tripped: each kept a whole group, and a pass still succeeds (exit 0)"
    for group in guarded:
        label = group.guard or group.status
        where = f"{group.server_hostname or '?'} ({group.server_id}), {group.resource}"
        detail = group.messages[0] if group.messages else ""
        yield from _wrapped(f"{label}: {where}: {detail}", "  ", "    ")
    errors = [problem for problem in plan.problems if problem.level == "error"]
    for problem in errors:
        yield from _wrapped(problem_line(problem), "  ", "    ")


# --- the end -----------------------------------------------------------------------------------


def _closing(result: PassResult, state_dir: Path, elapsed: float, example: str) -> Iterator[str]:
    yield ""
    verdict = "succeeded" if result.exit_code == 0 else f"ended with exit code {result.exit_code}"
    yield from _wrapped(
        f"The pass {verdict}. Done in {elapsed:.1f} s; the simulator is stopped and {state_dir} "
        "(the lock and last-plan.json of the pass) is removed.",
        "",
        "",
    )
    yield ""
    yield "Next steps, on your own account:"
    yield from _wrapped(
        f"1. Write a config like {EXAMPLE_CONFIG} (every key is explained in it; this "
        f"installation's copy is {example}) as /etc/pruner/config.yaml, or point --config or "
        "$PRUNER_CONFIG at yours. Keep dry_run: true for now.",
        "  ",
        "     ",
    )
    yield "  2. pruner check-config      validate it and see the resolved policies"
    yield "  3. export VPSBG_API_TOKEN=…  an API key (Read-only is enough to plan)"
    yield "  4. pruner plan              what a pass would keep and delete, and why"
    yield "  5. pruner run               a pass: deletes once you set dry_run: false (Write key)"


# --- helpers -----------------------------------------------------------------------------------


def _write(stream: TextIO, lines: Iterable[str]) -> None:
    stream.writelines(f"{line}\n" for line in lines)
    stream.flush()


def _packed(items: Sequence[str], first: str, rest: str, separator: str = " · ") -> Iterator[str]:
    """`items` joined by `separator`, never broken inside one; a full line ends with it."""
    if not items:
        yield first.rstrip(" :")
        return
    line = first + items[0]
    for item in items[1:]:
        # room for the item, and for the separator that ends a full line
        if len(line) + len(separator) + len(item) + len(separator.rstrip()) <= WIDTH:
            line += separator + item
        else:
            yield line + separator.rstrip()
            line = rest + item
    yield line


def _seconds(span: timedelta) -> str:
    return f"{span.total_seconds():g}s"


def _flag(value: bool) -> str:
    return "true" if value else "false"


def _hours(value: timedelta | None) -> str:
    return "null" if value is None else f"{value.total_seconds() / 3600:g}h"


def _optional(value: int | None) -> str:
    return "null" if value is None else str(value)


def _wrapped(text: str, first: str, rest: str) -> list[str]:
    return wrapped(text, first, rest, end="")  # the demo's lines are joined as they are printed
