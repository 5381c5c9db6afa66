"""Logs to stderr: JSON lines for machines, key=value for a terminal, secrets never.

structlog's own loggers and the standard library's (requests, urllib3, APScheduler) share one
handler and one processor chain, so every line has the same shape, carries the context bound
with structlog.contextvars (a pass's `run_id`) and passes through the same redaction.

Redaction (pruner.vpsbg.redaction) is the last step before a line is rendered.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Collection
from typing import Literal, TextIO

import structlog
from structlog.typing import Processor

from pruner.vpsbg.redaction import redact_secrets

__all__ = ["LOG_LEVELS", "LogFormat", "configure_logging", "leave_to_report"]

LogFormat = Literal["auto", "json", "console"]
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
_HANDLER_NAME = "pruner"


def configure_logging(fmt: LogFormat, level: str, stream: TextIO | None = None) -> None:
    """Route structlog and stdlib logging to `stream` (stderr by default) at `level`.

    `auto` writes JSON lines unless the stream is a terminal. Calling it again replaces the
    previous set-up (tests and the CLI call it once per invocation).
    """
    target = sys.stderr if stream is None else stream
    numeric_level = logging.getLevelNamesMapping().get(level.upper())
    if numeric_level is None:
        raise ValueError(f"unknown log level {level!r}: use one of {', '.join(LOG_LEVELS)}")
    as_json = fmt == "json" or (fmt == "auto" and not _is_terminal(target))
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Processor = (
        structlog.processors.JSONRenderer()
        if as_json
        else structlog.dev.ConsoleRenderer(colors=_is_terminal(target))
    )
    handler = _Handler(target, for_people=not as_json)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                redact_secrets,  # last before rendering: tracebacks and stdlib messages too
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric_level)
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )


class _Handler(logging.StreamHandler[TextIO]):
    """The one handler, and whom it writes for: people (key=value) or machines (JSON)."""

    def __init__(self, stream: TextIO, *, for_people: bool) -> None:
        super().__init__(stream)
        self.for_people = for_people


def leave_to_report(events: Collection[str]) -> None:
    """Leave `events` (a name, or a prefix such as `guard.*`) to the report a command prints on
    stdout: a log read by a person leaves them out, so that each message shows once; at
    --log-level debug it shows them all. A JSON log, read by machines, keeps every event."""
    root = logging.getLogger()
    for handler in root.handlers:
        if isinstance(handler, _Handler) and handler.for_people:
            handler.addFilter(_LeftToReport(frozenset(events), root))


class _LeftToReport(logging.Filter):
    def __init__(self, events: frozenset[str], root: logging.Logger) -> None:
        super().__init__()
        self._names = {event for event in events if not event.endswith("*")}
        self._prefixes = tuple(event.removesuffix("*") for event in events if event.endswith("*"))
        self._root = root

    def filter(self, record: logging.LogRecord) -> bool:
        event = record.msg.get("event") if isinstance(record.msg, dict) else None
        if not isinstance(event, str):
            return True
        reported = event in self._names or event.startswith(self._prefixes)
        return not reported or self._root.isEnabledFor(logging.DEBUG)


def _is_terminal(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())
