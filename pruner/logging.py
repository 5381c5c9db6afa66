"""Logs to stderr: JSON lines for machines, key=value for a terminal, secrets never (SPEC §2).

structlog's own loggers and the standard library's (requests, urllib3, APScheduler) share one
handler and one processor chain, so every line has the same shape, carries the context bound
with structlog.contextvars (a pass's `run_id`) and passes through the same redaction.

Redaction masks the value of every key that names a secret, every `Bearer …` credential, and
the values registered with `mask_secrets` (the live API token) wherever they appear. Those
values live in a ContextVar, not in module state: they are masked in the context of the pass
that registered them, and in the worker threads it starts with `contextvars.copy_context()`.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Literal, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

__all__ = [
    "LOG_LEVELS",
    "REDACTED",
    "LogFormat",
    "configure_logging",
    "mask_secrets",
    "redact_secrets",
]

LogFormat = Literal["auto", "json", "console"]
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
REDACTED = "[redacted]"
_SECRET_WORDS = ("token", "authorization", "password", "secret", "api_key", "apikey", "cookie")
_BEARER = re.compile(r"Bearer \S+")
_MIN_SECRET = 4  # shorter values would mask ordinary words and are no real secret anyway
_HANDLER_NAME = "pruner"
_PLAIN = (int, float, bool, type(None))

_secrets: ContextVar[frozenset[str]] = ContextVar("pruner_log_secrets", default=frozenset())


@contextmanager
def mask_secrets(*values: str) -> Iterator[None]:
    """Mask `values` wherever they appear in log lines written in this context."""
    wanted = frozenset(value for value in values if len(value) >= _MIN_SECRET)
    reset = _secrets.set(_secrets.get() | wanted)
    try:
        yield
    finally:
        _secrets.reset(reset)


def redact_secrets(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """Mask secret-named keys, `Bearer …` credentials and registered secrets, nested too."""
    return _redacted(event_dict, _secrets.get())


def _redacted(
    mapping: MutableMapping[str, Any], secrets: frozenset[str]
) -> MutableMapping[str, Any]:
    for key, value in mapping.items():
        mapping[key] = REDACTED if _is_secret(key) else _redacted_value(value, secrets)
    return mapping


def _redacted_value(value: object, secrets: frozenset[str]) -> object:
    if isinstance(value, str):
        return _masked(value, secrets)
    if isinstance(value, _PLAIN):
        return value
    if isinstance(value, Mapping):
        return _redacted(dict(value), secrets)
    if isinstance(value, list | tuple):
        return [_redacted_value(item, secrets) for item in value]
    text = str(value)  # what the renderer would show: an exception, a URL, a path
    masked = _masked(text, secrets)
    return value if masked == text else masked


def _masked(text: str, secrets: frozenset[str]) -> str:
    if "Bearer " in text:
        text = _BEARER.sub(f"Bearer {REDACTED}", text)
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


def _is_secret(key: object) -> bool:
    lowered = str(key).lower()
    return any(word in lowered for word in _SECRET_WORDS)


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
    handler = logging.StreamHandler(target)
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


def _is_terminal(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())
