"""Logs to stderr: JSON lines for machines, key=value for a terminal, secrets never.

structlog's own loggers and the standard library's (requests, urllib3, APScheduler) share one
stream, one lock and the same processors, so every line has the same shape, carries the context
bound with structlog.contextvars (a pass's `run_id`) and passes through the same redaction.

pruner's own events (a line per deletion) are rendered by structlog and written straight to the
handler's stream under the handler's lock: through the standard library, each cost twice as
much (two LogRecords, a stack walk for the caller, a formatter). The standard library's records
go through the handler and its ProcessorFormatter.

Redaction (pruner.vpsbg.redaction) is the last step before a line is rendered.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Callable, Collection
from typing import Literal, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from pruner.vpsbg.redaction import redact_secrets

__all__ = ["LOG_LEVELS", "LogFormat", "configure_logging", "is_terminal", "leave_to_report"]

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
    as_json = fmt == "json" or (fmt == "auto" and not is_terminal(target))
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Processor = (
        structlog.processors.JSONRenderer()
        if as_json
        else structlog.dev.ConsoleRenderer(colors=is_terminal(target))
    )
    handler = _Handler(target, for_people=not as_json, level=numeric_level)
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
            handler.drop_left_to_report,
            *shared,
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            redact_secrets,
            renderer,
        ],
        logger_factory=_HandlerLines.factory(handler),
        wrapper_class=structlog.make_filtering_bound_logger(numeric_level),
        cache_logger_on_first_use=False,
    )


class _Handler(logging.StreamHandler[TextIO]):
    """The one handler, whom it writes for (people: key=value; machines: JSON), and which of
    pruner's events a command's report already shows (`leave_to_report`)."""

    def __init__(self, stream: TextIO, *, for_people: bool, level: int) -> None:
        super().__init__(stream)
        self.for_people = for_people
        self._debug = level <= logging.DEBUG
        self._left: frozenset[str] = frozenset()
        self._left_prefixes: tuple[str, ...] = ()

    def leave(self, events: Collection[str]) -> None:
        self._left = frozenset(event for event in events if not event.endswith("*"))
        self._left_prefixes = tuple(e.removesuffix("*") for e in events if e.endswith("*"))

    def drop_left_to_report(
        self, _logger: WrappedLogger, _method: str, event_dict: EventDict
    ) -> EventDict:
        """A structlog processor: an event the report shows is not logged for people too."""
        event = event_dict.get("event")
        if (
            not self._debug
            and isinstance(event, str)
            and (event in self._left or event.startswith(self._left_prefixes))
        ):
            raise structlog.DropEvent
        return event_dict


def leave_to_report(events: Collection[str]) -> None:
    """Leave `events` (a name, or a prefix such as `guard.*`) to the report a command prints on
    stdout: a log read by a person leaves them out, so that each message shows once; at
    --log-level debug it shows them all. A JSON log, read by machines, keeps every event."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, _Handler) and handler.for_people:
            handler.leave(events)


class _HandlerLines:
    """structlog's output: a rendered line, written to `handler`'s stream under its lock, so
    that it never interleaves with a line of the standard library's. A line that cannot be
    written is lost, as the standard library loses it: logging never fails a pass."""

    def __init__(self, name: str, handler: logging.StreamHandler[TextIO]) -> None:
        self.name = name  # structlog.stdlib.add_logger_name reads it
        self._handler = handler

    @classmethod
    def factory(cls, handler: logging.StreamHandler[TextIO]) -> Callable[..., _HandlerLines]:
        def logger(name: str = "", *_: object) -> _HandlerLines:
            return cls(name, handler)

        return logger

    def msg(self, line: str) -> None:
        handler = self._handler
        with handler.lock or contextlib.nullcontext():
            try:
                handler.stream.write(line + handler.terminator)
                handler.stream.flush()
            except (OSError, ValueError):  # a closed or broken stream
                pass

    debug = info = warning = error = critical = exception = fatal = msg


def is_terminal(stream: TextIO) -> bool:
    """A stream that reaches a terminal (one without isatty does not)."""
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())
