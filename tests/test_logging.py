from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from pruner.logging import REDACTED, configure_logging, redact_secrets


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    yield
    root = logging.getLogger()
    for handler in [h for h in root.handlers if h.get_name() == "pruner"]:
        root.removeHandler(handler)
    structlog.reset_defaults()


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_configure_logging_writes_json_lines_when_not_a_terminal() -> None:
    stream = io.StringIO()
    configure_logging("auto", "info", stream)
    structlog.get_logger("pruner").info("plan.summary", kept=3)
    [event] = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert (event["event"], event["kept"], event["level"]) == ("plan.summary", 3, "info")
    assert event["timestamp"].endswith("Z")


def test_configure_logging_writes_key_value_on_a_terminal() -> None:
    stream = _Terminal()
    configure_logging("auto", "info", stream)
    structlog.get_logger("pruner").warning("plan.problem", server_id=2478)
    line = stream.getvalue()
    assert "plan.problem" in line
    assert "server_id" in line
    assert not line.startswith("{")


def test_configure_logging_routes_stdlib_logging_through_the_same_renderer() -> None:
    stream = io.StringIO()
    configure_logging("json", "info", stream)
    logging.getLogger("urllib3").warning("retrying %s", "GET /backups")
    event = json.loads(stream.getvalue())
    assert (event["event"], event["logger"]) == ("retrying GET /backups", "urllib3")


def test_configure_logging_filters_below_the_level() -> None:
    stream = io.StringIO()
    configure_logging("json", "warning", stream)
    structlog.get_logger("pruner").info("hidden")
    logging.getLogger("other").info("hidden too")
    assert stream.getvalue() == ""


def test_configure_logging_rejects_an_unknown_level() -> None:
    with pytest.raises(ValueError, match="unknown log level 'loud'"):
        configure_logging("json", "loud", io.StringIO())


def test_configure_logging_masks_secrets() -> None:
    stream = io.StringIO()
    configure_logging("json", "info", stream)
    structlog.get_logger("pruner").info(
        "request", token="abc", headers={"Authorization": "Bearer abc"}, server_id=5
    )
    event = json.loads(stream.getvalue())
    assert event["token"] == REDACTED
    assert event["headers"] == {"Authorization": REDACTED}
    assert event["server_id"] == 5
    assert "abc" not in stream.getvalue()


def test_redact_secrets_leaves_other_keys_alone() -> None:
    event = redact_secrets(None, "info", {"event": "x", "password": "p", "api_key": "k", "n": 1})
    assert event == {"event": "x", "password": REDACTED, "api_key": REDACTED, "n": 1}
