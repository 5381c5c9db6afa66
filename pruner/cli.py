"""Command line: argument parsing and exit codes only (docs/exit-codes.md).

Each command lives in `pruner.actions.<name>` and is imported only when it runs, so a probe like
`pruner health` stays cheap. Every mistake a user can fix ends here as a UserError (or an error
`_as_user_error` translates): its lines go to stderr and its exit code is returned, never a
traceback. Reports go to stdout, logs to stderr.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pruner
from pruner.actions.common import DEFAULT_CONFIG
from pruner.errors import EXIT_OK, EXIT_USAGE, PassFailed, UserError

if TYPE_CHECKING:
    from pruner.engine.units import Duration

__all__ = ["main"]

_Handler = Callable[[argparse.Namespace], int]
EXIT_INTERRUPTED = 128 + 2  # SIGINT, as shells report it

# pruner.ops.logging.LOG_LEVELS, spelled out: importing pruner.ops.logging loads structlog,
# and a probe (`pruner health`) must not pay for that. test_cli checks the two agree.
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
_MAX_DAYS = 36500  # simulate --days: a century is more than any retention needs
_SHELLS = ("bash", "zsh", "fish")
_FILE_METAVARS = frozenset({"PATH", "FILE", "PLAN.json"})  # arguments that name a file


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:  # --help, --version and usage errors
        return stop.code if isinstance(stop.code, int) else EXIT_USAGE
    if args.logs:
        from pruner.ops.logging import configure_logging  # noqa: PLC0415 (structlog: not for probes)

        configure_logging(args.log_format, args.log_level)
    handler: _Handler = args.handler
    try:
        return handler(args)
    except BrokenPipeError:  # `pruner plan | head`: the reader left, as Unix tools take it
        _discard_stdout()
        return EXIT_OK
    except KeyboardInterrupt:  # Ctrl-C where no pass catches it (`run` and `daemon` do)
        print("pruner: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as error:
        user_error = _as_user_error(error)
        if user_error is None:
            raise
        for line in user_error.lines:
            print(f"pruner: {line}", file=sys.stderr)
        return user_error.exit_code


def _discard_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # not a real file (tests capture it)
        pass


def _as_user_error(error: Exception) -> UserError | None:
    """The one place that maps the errors a user can fix to messages and exit codes.

    UserError subclasses carry their own code (LockHeld: 75). A missing token is configuration
    (2: nothing was contacted); any other API error that ends a command fails it (1).
    """
    # Imported here, not at the top: `pruner health` must not pay for loading requests.
    from pruner.config.load import ConfigError  # noqa: PLC0415
    from pruner.vpsbg.errors import ApiError, TokenMissing  # noqa: PLC0415
    from pruner.vpsbg.listing import ListingError  # noqa: PLC0415

    if isinstance(error, UserError):
        return error
    if isinstance(error, ConfigError):
        return UserError(*error.problems)
    if isinstance(error, ListingError):
        return UserError(str(error))  # a saved listing is input, like the config: exit 2
    if isinstance(error, TokenMissing):
        return UserError(error.message)
    if isinstance(error, ApiError):
        return PassFailed(error.message)
    return None


# --- commands -------------------------------------------------------------------------------


def _action(module: str) -> _Handler:
    """The `main(args)` of pruner.actions.<module>, imported when the command runs."""

    def handler(args: argparse.Namespace) -> int:
        action: _Handler = importlib.import_module(f"pruner.actions.{module}").main
        return action(args)

    return handler


# --- parsing --------------------------------------------------------------------------------


def _moment(text: str) -> datetime:
    """--now: RFC 3339, so the offset is required (Z or ±hh:mm)."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        moment = None
    if moment is None or ("T" not in text.upper() and " " not in text):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an RFC 3339 time; write e.g. 2026-11-27T03:30:00Z"
        )
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(
            f"{text!r} has no UTC offset; add Z or one such as +02:00 (2026-11-27T03:30:00Z)"
        )
    return moment


def _max_age(text: str) -> Duration:
    """--max-age: an exact duration (no mo or y), more than 0."""
    return _positive_duration(text, "the age", "such as 24h or 3d")


def _cadence(text: str) -> timedelta:
    """--cadence: an exact duration (no months or years), longer than zero."""
    return _positive_duration(text, "a cadence", "such as 1d or 6h").as_timedelta()


def _positive_duration(text: str, what: str, example: str) -> Duration:
    from pruner.engine.units import UnitError, parse_duration  # noqa: PLC0415 (keep probes light)

    try:
        duration = parse_duration(text, calendar_allowed=False)
    except UnitError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    if duration.seconds <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: {what} must be longer than zero, {example}")
    return duration


def _days(text: str) -> int:
    """--days: a whole number of days, 0 or more."""
    if not text.isdigit() or int(text) > _MAX_DAYS:
        raise argparse.ArgumentTypeError(
            f"{text!r} must be a whole number of days from 0 to {_MAX_DAYS}, such as 365"
        )
    return int(text)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pruner",
        description="Keep the backups and snapshots of VPSBG cloud servers within retention "
        "policies. Reports go to stdout, logs to stderr.",
        epilog="exit codes: 0 success, 1 failed or incomplete pass, 2 usage or configuration "
        "error, 3 a cap blocked deletions, 4 apply refused the plan, 75 another pass holds the "
        "lock",
    )
    parser.add_argument("--version", action=_Version, help="show the version and exit")
    _add_global_options(parser, defaults=True)
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)

    def command(
        name: str, handler: _Handler, help_text: str, *, logs: bool = True
    ) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        _add_global_options(sub, defaults=False)
        sub.set_defaults(handler=handler, logs=logs)
        return sub

    run = command(
        "run",
        _action("run"),
        "one pass now: list, decide, delete (only report with --dry-run or dry_run: true)",
    )
    _add_dry_run(run)
    run.add_argument(
        "--allow-large-deletions",
        action="store_true",
        help="lift max_delete_fraction and max_deletions_per_run for this pass only",
    )
    _add_scope(run)
    daemon = command(
        "daemon",
        _action("daemon"),
        "long-running: a pass on every schedule tick until SIGTERM/SIGINT",
    )
    _add_dry_run(daemon)
    plan = command(
        "plan",
        _action("plan"),
        "decide and report; never sends a DELETE (a Read-only API key is enough)",
    )
    plan.add_argument(
        "--format",
        choices=("table", "json", "html"),
        default="table",
        help="report format; html is one self-contained page for auditors",
    )
    plan.add_argument(
        "--listing",
        type=Path,
        metavar="FILE",
        help="decide on a saved listing instead of the API: a GET /backups response, a list of "
        "pages, a list of backups, or {backups, snapshots, servers}; makes no API call",
    )
    plan.add_argument(
        "--now",
        type=_moment,
        metavar="TIME",
        help="fix the clock (RFC 3339, e.g. 2026-11-27T03:30:00Z) for reproducible audits",
    )
    plan.add_argument(
        "--details",
        "-v",
        action="store_true",
        help="also every backup of every server: its full name, date (in the configured "
        "timezone) and reasons",
    )
    _add_scope(plan)
    apply = command(
        "apply",
        _action("apply"),
        "delete exactly the delete decisions of a reviewed plan, re-checked against a fresh "
        "listing and the current policy",
    )
    apply.add_argument(
        "plan_file", metavar="PLAN.json", help="a plan written by plan --format json"
    )
    _add_dry_run(apply)
    apply.add_argument(
        "--max-age",
        type=_max_age,
        default="24h",  # a string default goes through `type` too, only when apply runs
        metavar="DURATION",
        help="refuse a plan made longer ago than this (default: 24h)",
    )
    apply.add_argument(
        "--force",
        action="store_true",
        help="also delete what the plan deletes and the keep rules keep now (never protected "
        "backups, the min_keep floor, deletions still waiting for their confirmation, or "
        "stale, orphaned and unmanaged servers' backups)",
    )
    apply.add_argument(
        "--ignore-config-change",
        action="store_true",
        help="take a plan made under another config or for another api.base_url",
    )
    _add_scope(apply)
    simulate = command(
        "simulate",
        _action("simulate"),
        "backtest the policies forward in time: where each server's backups settle; never "
        "sends a DELETE (a Read-only API key is enough)",
    )
    simulate.add_argument(
        "--listing",
        type=Path,
        metavar="FILE",
        help="start from a saved listing instead of the API (the forms plan --listing takes)",
    )
    simulate.add_argument(
        "--now", type=_moment, metavar="TIME", help="start at this time (RFC 3339), not now"
    )
    simulate.add_argument(
        "--days", type=_days, default=365, metavar="N", help="days to simulate (default: 365)"
    )
    simulate.add_argument(
        "--cadence",
        type=_cadence,
        metavar="DURATION",
        help="every server makes a backup this often (e.g. 1d, 6h), instead of the median gap "
        "between its newest ten",
    )
    simulate.add_argument(
        "--format", choices=("table", "json"), default="table", help="report format"
    )
    simulate.add_argument(
        "--svg", type=Path, metavar="FILE", help="also draw the backtest as an SVG picture"
    )
    check = command(
        "check-config",
        _action("check_config"),
        "validate the config and print the resolved policies",
    )
    check.add_argument(
        "--online",
        action="store_true",
        help="also check against the API, with GET requests only: it answers and accepts the "
        "token, and each policy matches servers whose backups give its rules the history they "
        "need (exit 1 when the API cannot be reached or refuses the token)",
    )
    command(
        "health",
        _action("health"),
        "for container probes: exit 0 while the daemon's heartbeat is fresh and no pass runs "
        "past its deadline (safety.max_pass_duration), 1 otherwise",
        logs=False,
    )
    command(
        "demo",
        _action("demo"),
        "run the built-in VPSBG API simulator with a realistic fleet, plan and prune it",
    )
    completion = command(
        "completion",
        _completion,
        "print a completion script for your shell, written from these very options",
        logs=False,
    )
    completion.add_argument("shell", choices=_SHELLS, help="one of %(choices)s")
    return parser


def _completion(args: argparse.Namespace) -> int:
    """`pruner completion SHELL`: shtab writes the script from the parser itself, so nothing
    needs editing when a command or an option changes. Arguments that take a path complete
    file names."""
    import shtab  # noqa: PLC0415 (only this command needs it)

    parser = _parser()
    for action in _actions(parser):
        if action.metavar in _FILE_METAVARS:
            action.complete = shtab.FILE  # type: ignore[attr-defined]
    sys.stdout.write(shtab.complete(parser, args.shell))
    return EXIT_OK


def _actions(parser: argparse.ArgumentParser) -> Iterator[argparse.Action]:
    """Every argument of the parser and of its commands."""
    for action in parser._actions:
        yield action
        if isinstance(action, argparse._SubParsersAction):
            for command in action.choices.values():
                yield from _actions(command)


class _Version(argparse.Action):
    """--version: reads the installed version only when asked (importlib.metadata is slow)."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: object) -> None:
        super().__init__(
            option_strings, dest, nargs=0, default=argparse.SUPPRESS, help=str(kwargs["help"])
        )

    def __call__(self, parser: argparse.ArgumentParser, *_args: object) -> None:
        print(f"pruner {pruner.__version__}")
        parser.exit()


def _add_global_options(parser: argparse.ArgumentParser, *, defaults: bool) -> None:
    """The global options, accepted before the command and (without defaults) after it."""

    def default(value: object) -> object:
        return value if defaults else argparse.SUPPRESS

    parser.add_argument(
        "--config",
        metavar="PATH",
        default=default(None),
        help=f"config file (default: $PRUNER_CONFIG, else {DEFAULT_CONFIG})",
    )
    parser.add_argument(
        "--log-format",
        choices=("auto", "json", "console"),
        default=default("auto"),
        help="logs on stderr: JSON lines, or key=value for a terminal (default: auto)",
    )
    parser.add_argument(
        "--log-level",
        type=str.lower,
        choices=LOG_LEVELS,
        default=default("info"),
        metavar="LEVEL",
        help=f"one of {', '.join(LOG_LEVELS)} (default: info)",
    )


def _add_dry_run(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dry-run", action="store_true", help="send no DELETE, whatever the config says"
    )


def _server(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("give a server id or a hostname glob, e.g. 2478 or 'db-*'")
    return text


def _add_scope(parser: argparse.ArgumentParser) -> None:
    """--server and --policy: pruner.actions.scoping.scope_of turns them into the pass's scope."""
    parser.add_argument(
        "--server",
        dest="servers",
        action="append",
        type=_server,
        metavar="ID|GLOB",
        help="only this server: its id, or a shell glob on its hostname (quote it); repeat for "
        "more. The caps count the scoped servers alone",
    )
    parser.add_argument(
        "--policy", metavar="NAME", help="only the servers this policy matches (by its name)"
    )
