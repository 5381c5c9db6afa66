from __future__ import annotations

import contextvars
import io
import json
import logging
import re
from concurrent.futures import ThreadPoolExecutor

import pytest
import structlog
from hypothesis import given
from hypothesis import strategies as st

from pruner.ops.logging import configure_logging, leave_to_report
from pruner.vpsbg.redaction import REDACTED, mask_secrets, redact_secrets

pytestmark = pytest.mark.usefixtures("restore_logging")


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


def test_configure_logging_writes_pruners_events_without_the_standard_library(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A line per deletion: through logging's records, formatter and caller lookup, each cost
    # twice as much. The standard library's own records still reach the same stream.
    stream = io.StringIO()
    configure_logging("json", "info", stream)
    records: list[logging.LogRecord] = []
    make_record = logging.getLogRecordFactory()

    def counting(*args: object, **kwargs: object) -> logging.LogRecord:
        record = make_record(*args, **kwargs)
        records.append(record)
        return record

    monkeypatch.setattr(logging, "_logRecordFactory", counting)
    structlog.get_logger("pruner").info("backup.deleted", backup_id=7)
    logging.getLogger("urllib3").warning("pool is full")

    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [(e["event"], e["logger"]) for e in lines] == [
        ("backup.deleted", "pruner"),
        ("pool is full", "urllib3"),
    ]
    assert records
    assert {record.name for record in records} == {"urllib3"}  # and the formatter copies it


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


def test_configure_logging_masks_bearer_credentials_in_any_value() -> None:
    stream = io.StringIO()
    configure_logging("json", "info", stream)
    structlog.get_logger("pruner").info("sent", header="Bearer abc123", nested=[{"h": "Bearer x"}])
    logging.getLogger("urllib3").warning("headers: Authorization: Bearer abc123 sent")
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["header"] == f"Bearer {REDACTED}"
    assert first["nested"] == [{"h": f"Bearer {REDACTED}"}]
    assert second["event"] == f"headers: Authorization: Bearer {REDACTED} sent"
    assert "abc123" not in stream.getvalue()


def test_mask_secrets_masks_the_live_token_wherever_it_appears() -> None:
    stream = io.StringIO()
    configure_logging("json", "info", stream)
    log = structlog.get_logger("pruner")
    with mask_secrets("s3cret-value"):
        log.info("api.retry", problem="echoed s3cret-value back", error=ValueError("s3cret-value"))
        logging.getLogger("requests").warning("url ?key=%s", "s3cret-value")
        try:
            raise RuntimeError("boom with s3cret-value")
        except RuntimeError:
            log.exception("pass.failed")
    log.info("after", value="s3cret-value")  # outside the pass: no longer registered
    lines = stream.getvalue().splitlines()
    assert "s3cret-value" not in "".join(lines[:-1])
    assert json.loads(lines[0])["problem"] == f"echoed {REDACTED} back"
    assert json.loads(lines[0])["error"] == REDACTED
    assert json.loads(lines[1])["event"] == f"url ?key={REDACTED}"
    assert "boom with [redacted]" in json.loads(lines[2])["exception"]
    assert json.loads(lines[-1])["value"] == "s3cret-value"


def test_mask_secrets_follows_the_context_into_worker_threads() -> None:
    stream = io.StringIO()
    configure_logging("json", "info", stream)
    log = structlog.get_logger("pruner")
    with (
        mask_secrets("s3cret-value"),
        structlog.contextvars.bound_contextvars(run_id="abc123def456"),
        ThreadPoolExecutor(1) as pool,
    ):
        pool.submit(contextvars.copy_context().run, log.info, "work", v="s3cret-value").result()
        pool.submit(
            contextvars.copy_context().run, logging.getLogger("urllib3").info, "stdlib line"
        ).result()
    events = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [e["run_id"] for e in events] == ["abc123def456"] * 2
    assert events[0]["v"] == REDACTED


def test_mask_secrets_ignores_values_too_short_to_be_a_token() -> None:
    stream = io.StringIO()
    configure_logging("json", "info", stream)
    with mask_secrets("a", ""):
        structlog.get_logger("pruner").info("plan.summary", status="ok", dry_run="a")
    event = json.loads(stream.getvalue())
    assert (event["status"], event["dry_run"]) == ("ok", "a")


# --- redaction against a plain reference: every line passes through it, so it is tuned ------

_WORDS = ("token", "authorization", "password", "secret", "api_key", "apikey", "cookie")


def _reference_value(value: object, secrets: frozenset[str]) -> object:
    """The masking rules written plainly, value by value."""
    if isinstance(value, str):
        text = re.sub(r"Bearer \S+", f"Bearer {REDACTED}", value)
        for secret in secrets:
            text = text.replace(secret, REDACTED)
        return text
    if isinstance(value, int | float | bool | type(None)):
        return value
    if isinstance(value, dict):
        return {
            key: REDACTED
            if any(word in str(key).lower() for word in _WORDS)
            else _reference_value(item, secrets)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [_reference_value(item, secrets) for item in value]
    text = str(value)
    masked = _reference_value(text, secrets)
    return value if masked == text else masked


_KEYS = st.sampled_from(["event", "server_id", "Token", "x-API_KEY", "name", "cookies", "h"])
_TEXT = st.sampled_from(["", "plain", "Bearer abc", "has s3cret-value in it", "s3cret-value"])
_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | _TEXT,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.tuples(inner, inner)
        | st.dictionaries(_KEYS, inner, max_size=3)
    ),
    max_leaves=12,
)


@given(
    event=st.dictionaries(_KEYS, _VALUES, max_size=6),
    secrets=st.sets(st.sampled_from(["s3cret-value", "abc"])),
)
def test_redact_secrets_masks_exactly_what_the_plain_rules_mask(
    event: dict[str, object], secrets: set[str]
) -> None:
    expected = _reference_value(dict(event), frozenset(secrets))
    with mask_secrets(*secrets):
        assert redact_secrets(None, "info", dict(event)) == expected


def _logged(fmt: str, level: str = "info") -> str:
    stream = _Terminal()
    configure_logging(fmt, level, stream)  # type: ignore[arg-type]
    leave_to_report({"plan.problem", "guard.*"})
    log = structlog.get_logger("pruner")
    log.warning("plan.problem", message="server 7: stale")
    log.warning("guard.locked", message="server 8: locked")
    log.warning("config.warning", message="not in the report")
    return stream.getvalue()


def test_leave_to_report_keeps_the_report_s_events_out_of_a_console_log() -> None:
    logged = _logged("auto")

    assert "config.warning" in logged
    assert "plan.problem" not in logged
    assert "guard.locked" not in logged


def test_leave_to_report_still_shows_everything_at_debug() -> None:
    logged = _logged("console", "debug")

    assert "plan.problem" in logged
    assert "guard.locked" in logged


def test_leave_to_report_keeps_every_event_of_a_json_log() -> None:
    events = [json.loads(line)["event"] for line in _logged("json").splitlines()]

    assert events == ["plan.problem", "guard.locked", "config.warning"]
