"""Secrets never in the logs: the processor that masks them, and the context that names them.

The processor masks the value of every key that names a secret, every `Bearer …` credential,
and the values registered with `mask_secrets` (the live API token) wherever they appear. Those
values live in a ContextVar, not in module state: they are masked in the context of the pass
that registered them, and in the worker threads it starts with `contextvars.copy_context()`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from structlog.typing import EventDict, WrappedLogger

__all__ = ["REDACTED", "mask_secrets", "redact_secrets"]

REDACTED = "[redacted]"
_SECRET_WORDS = ("token", "authorization", "password", "secret", "api_key", "apikey", "cookie")
_BEARER = re.compile(r"Bearer \S+")
_MIN_SECRET = 4  # shorter values would mask ordinary words and are no real secret anyway
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
