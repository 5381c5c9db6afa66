"""The config file's schema: every key, its default and its check, declared once.

The pydantic models below are both what validates the file and what the rest of pruner reads
at run time (frozen): `ApiSettings` is `config.api`. A policy is the one exception: the
engine's `Policy` (standard library only) is resolved from a `PolicySpec` by `load`.

Each value type's validator raises ValueError with the message the user sees; `load` adds the
file, line and key path. This module does not read YAML.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, TypeVar
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    WithJsonSchema,
    model_validator,
)
from pydantic.json_schema import GenerateJsonSchema

from pruner.config.crontab import parse_crontab
from pruner.config.defaults import DEFAULT_STATE_DIR
from pruner.engine.models import COUNT_RULES, WITHIN_RULES, Orphans, Policy, Resource
from pruner.engine.units import Duration, Size, UnitError, parse_duration, parse_size

__all__ = [
    "ACKNOWLEDGEABLE",
    "ApiSettings",
    "Config",
    "ConfigFile",
    "MatchSpec",
    "MetricsSettings",
    "NotifySettings",
    "PolicySpec",
    "ProtectSpec",
    "SafetySettings",
    "ScheduleSettings",
    "Settings",
    "config_json_schema",
    "shown",
    "span_text",
]

_Item = TypeVar("_Item")


def shown(value: object) -> str:
    """A value as the YAML author wrote it, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'the text "{value}"'
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return str(value)


# --- value types: each validator raises ValueError with the message the user sees ----------


def _integer(value: object, low: int, high: int | None, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"must be {what}, not {shown(value)}")
    if high is not None and value > high:
        raise ValueError(f"must be {what}, not {value}")
    return value


def _count(value: object) -> int:
    return _integer(value, -1, None, "an integer >= -1 (a count; -1 = unlimited)")


def _min_keep(value: object) -> int:
    return _integer(value, 0, None, "an integer >= 0")


def _retries(value: object) -> int:
    return _integer(value, 0, None, "an integer >= 0")


def _concurrency(value: object) -> int:
    return _integer(value, 1, 32, "an integer from 1 to 32")


def _max_pages(value: object) -> int:
    return _integer(value, 1, None, "an integer >= 1 (pages of 50 items)")


def _consecutive_failures(value: object) -> int:
    return _integer(value, 1, None, "an integer >= 1")


def _max_deletions(value: object) -> int:
    return _integer(value, 1, None, "an integer >= 1, or null for no cap")


def _server_id(value: object) -> int:
    return _integer(value, 1, None, "a server id (an integer >= 1)")


def _backup_id(value: object) -> int:
    return _integer(value, 1, None, "a backup id (an integer >= 1)")


def _flag(value: object) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"must be true or false, not {shown(value)}")
    return value


def _text(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"must be non-empty text, not {shown(value)}")
    return value


def _fraction(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1:
        raise ValueError(
            f"must be a number above 0 and at most 1 (1.0: no cap), not {shown(value)}"
        )
    return float(value)


def _duration(value: object, *, calendar: bool) -> Duration:
    example = "14d, 36h or 6mo" if calendar else "30s, 10min or 6h"
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise ValueError(
            f"must be a duration with a unit, such as {example}, not the number {value}"
        )
    if not isinstance(value, str):
        raise ValueError(f"must be a duration such as {example}, not {shown(value)}")
    try:
        return parse_duration(value, calendar_allowed=calendar)
    except UnitError as error:
        raise ValueError(str(error)) from None


def _calendar_duration(value: object) -> Duration:
    return _duration(value, calendar=True)


def _exact_duration(shortest: timedelta, what: str) -> Callable[[object], timedelta]:
    def check(value: object) -> timedelta:
        duration = _duration(value, calendar=False)
        try:
            span = duration.as_timedelta()
        except OverflowError:
            raise ValueError(f"{duration}: too long") from None
        if span < shortest:
            raise ValueError(f"must be {what}, not {duration}")
        return span

    return check


def _size(value: object) -> Size:
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise ValueError(f"must be a size such as 500GB or 2TB, not {shown(value)}")
    try:
        return parse_size(value)
    except UnitError as error:
        raise ValueError(str(error)) from None


def _zone(value: object) -> ZoneInfo:
    if not isinstance(value, str) or not value:
        raise ValueError(f"must be an IANA time zone name such as Europe/Sofia, not {shown(value)}")
    try:
        return ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        close = difflib.get_close_matches(value, sorted(available_timezones()), n=1)
        guess = f" (did you mean {close[0]}?)" if close else ""
        raise ValueError(
            f"unknown time zone {value!r}{guess}: use an IANA name such as UTC or Europe/Sofia"
        ) from None


def _base_url(value: object) -> str:
    text = _text(value)
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"must be an http(s) URL such as https://api.vpsbg.eu/v1, not {text!r}")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise ValueError(
            "must be a plain URL without credentials, ?query or #fragment "
            "(the token goes in api.token_env or api.token_file)"
        )
    return text.rstrip("/")


_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _env_name(value: object) -> str:
    if not isinstance(value, str) or not _ENV_NAME.fullmatch(value):
        raise ValueError(
            "must be the name of an environment variable such as VPSBG_API_TOKEN, "
            f"not {shown(value)}"
        )
    return value


def _path(value: object) -> Path:
    return Path(_text(value))


_LISTEN = re.compile(r"(?:\[(?P<ipv6>[0-9A-Fa-f:.%\w-]+)\]|(?P<host>[^:\[\]\s]+)):(?P<port>[0-9]+)")


def _listen(value: object) -> tuple[str, int]:
    """host:port ([::1]:9814 for IPv6); port 0 means any free port."""
    hint = "such as 127.0.0.1:9814, 0.0.0.0:9814 or [::1]:9814 (quote IPv6 forms), or null for off"
    if not isinstance(value, str):
        raise ValueError(f"must be host:port {hint}, not {shown(value)}")
    found = _LISTEN.fullmatch(value)
    if found is None:
        raise ValueError(f"must be host:port {hint}, not {value!r}")
    port = int(found["port"])
    if port > 65535:
        raise ValueError(f"port {port} is out of range: use 1 to 65535, or 0 for any free port")
    return (found["ipv6"] or found["host"], port)


def _ping_url(value: object) -> str:
    text = _text(value)
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(
            f"must be an http(s) URL such as https://hc-ping.com/<uuid>, not {shown(value)}"
        )
    if parts.query or parts.fragment:
        raise ValueError(
            "must be a URL without ?query or #fragment: /start and /fail are appended to it"
        )
    return text.rstrip("/")


def _webhook_url(value: object) -> str:
    text = _text(value)
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"must be an http(s) URL that accepts a JSON POST, not {shown(value)}")
    return text


def _delete_path(value: object) -> str:
    text = _text(value)
    if not text.startswith("/") or text.count("{id}") != 1:
        raise ValueError(
            f"must be a path starting with / and holding {{id}} once, such as /backups/{{id}}, "
            f"not {shown(value)}"
        )
    rest = text.replace("{id}", "")
    if "{" in rest or "}" in rest or "?" in text or "#" in text or "//" in text:
        raise ValueError(
            f"must be a plain path with {{id}} as its only placeholder and no ?query or "
            f"#fragment, not {shown(value)}"
        )
    return text


def _resource(value: object) -> Resource:
    if value in ("backups", "snapshots"):
        return value
    raise ValueError(f"must be backups or snapshots, not {shown(value)}")


def _orphans(value: object) -> Orphans:
    if value in ("keep", "apply"):
        return value
    raise ValueError(f"must be keep or apply, not {shown(value)}")


# The warnings a policy can acknowledge (`acknowledge: [...]`), silencing them for that policy.
ACKNOWLEDGEABLE = ("automatic_backup_history", "min_keep_zero", "keep_rules_select_nothing")


def _warning_id(value: object) -> str:
    if value in ACKNOWLEDGEABLE:
        return str(value)
    what = repr(value) if isinstance(value, str) else shown(value)
    raise ValueError(
        f"{what} is no warning pruner gives; a policy can acknowledge {', '.join(ACKNOWLEDGEABLE)}"
    )


def _cron(value: object) -> str:
    text = _text(value)
    parse_crontab(text)  # its ValueError says what is wrong with the expression
    return text


def _not_empty(items: list[_Item]) -> list[_Item]:
    if not items:
        raise ValueError("an empty list matches nothing: list at least one item or remove the key")
    return items


def _some_policies(items: list[Any]) -> list[Any]:
    if not items:
        raise ValueError("list at least one policy")
    return items


def _given(value: object) -> object:
    """`key:` with nothing under it is null; for these keys that is a mistake, not a default."""
    if value is None:
        raise ValueError("is empty: fill it in or remove the key")
    return value


def _mapping_or_defaults(value: object) -> object:
    return {} if value is None else value


def _list_as_tuple(value: object) -> object:
    """A YAML list as the tuple a frozen setting holds (anything else fails as not a list)."""
    return tuple(value) if isinstance(value, list) else value


# --- the value types, each with the JSON Schema that editors check the file against ----------

_CALENDAR_DURATION = r"^\s*(?:[0-9]+(?:\.[0-9]+)?(?:y|mo|w|d|h|min|s))+\s*$"
_EXACT_DURATION = r"^\s*(?:[0-9]+(?:\.[0-9]+)?(?:w|d|h|min|s))+\s*$"
_DURATION_UNITS = "number+unit parts: s, min, h, d, w"


def _json(**schema: Any) -> WithJsonSchema:
    return WithJsonSchema(schema)


def _integer_json(minimum: int, maximum: int | None = None) -> WithJsonSchema:
    bounds = {"minimum": minimum} | ({} if maximum is None else {"maximum": maximum})
    return _json(type="integer", **bounds)


def _calendar_json() -> WithJsonSchema:
    return _json(
        type="string",
        pattern=_CALENDAR_DURATION,
        description=f"a duration, {_DURATION_UNITS}, mo, y (e.g. 14d, 36h, 1y6mo)",
    )


def _exact_json(what: str) -> WithJsonSchema:
    return _json(
        type="string",
        pattern=_EXACT_DURATION,
        description=f"a duration, {_DURATION_UNITS} (e.g. 30s, 10min, 6h), {what}",
    )


_SIZE_JSON = _json(
    anyOf=[
        {"type": "number", "minimum": 0},
        {"type": "string", "pattern": r"^\s*[0-9]+(?:\.[0-9]+)?\s*(?:[GgTt][Bb])?\s*$"},
    ],
    description="a number of GB (the API's unit), or text such as 500GB or 2TB",
)
_FRACTION_JSON = _json(type="number", exclusiveMinimum=0, maximum=1)

# Exact durations (no months or years), as timedeltas, by their shortest.
PositiveSpan = Annotated[
    timedelta,
    PlainValidator(_exact_duration(timedelta(microseconds=1), "longer than 0s")),
    _exact_json("longer than 0s"),
]
AnySpan = Annotated[
    timedelta,
    PlainValidator(_exact_duration(timedelta(0), "0s or longer")),
    _exact_json("0s or longer"),
]
SecondsSpan = Annotated[
    timedelta,
    PlainValidator(_exact_duration(timedelta(seconds=1), "at least 1s")),
    _exact_json("at least 1s"),
]
MinutesSpan = Annotated[
    timedelta,
    PlainValidator(_exact_duration(timedelta(minutes=1), "at least 1min")),
    _exact_json("at least 1min"),
]
Retries = Annotated[int, PlainValidator(_retries), _integer_json(0)]
Concurrency = Annotated[int, PlainValidator(_concurrency), _integer_json(1, 32)]
MaxPages = Annotated[int, PlainValidator(_max_pages), _integer_json(1)]
MinKeep = Annotated[int, PlainValidator(_min_keep), _integer_json(0)]
MaxDeletions = Annotated[int, PlainValidator(_max_deletions), _integer_json(1)]
ConsecutiveFailures = Annotated[int, PlainValidator(_consecutive_failures), _integer_json(1)]

# Policy keys: absent is None (unset, or inherited from safety); a written null is an error.
Count = Annotated[int | None, PlainValidator(_count), _integer_json(-1)]
CalendarDurationKey = Annotated[
    Duration | None, PlainValidator(_calendar_duration), _calendar_json()
]
Flag = Annotated[bool, PlainValidator(_flag), _json(type="boolean")]
Text = Annotated[str, PlainValidator(_text), _json(type="string", minLength=1)]
Fraction = Annotated[float, PlainValidator(_fraction), _FRACTION_JSON]
CalendarDuration = Annotated[Duration, PlainValidator(_calendar_duration), _calendar_json()]
Zone = Annotated[
    ZoneInfo,
    PlainValidator(_zone),
    _json(type="string", minLength=1, description="an IANA time zone name, e.g. Europe/Sofia"),
]
PathValue = Annotated[Path, PlainValidator(_path), _json(type="string", minLength=1)]
Globs = Annotated[
    list[Text],
    AfterValidator(_not_empty),
    _json(type="array", items={"type": "string", "minLength": 1}, minItems=1),
]
WarningIds = Annotated[
    list[Annotated[str, PlainValidator(_warning_id)]],
    _json(type="array", items={"enum": list(ACKNOWLEDGEABLE)}),
]
ServerIds = Annotated[
    list[Annotated[int, PlainValidator(_server_id)]],
    AfterValidator(_not_empty),
    _json(type="array", items={"type": "integer", "minimum": 1}, minItems=1),
]
BackupIds = Annotated[
    list[Annotated[int, PlainValidator(_backup_id)]],
    AfterValidator(_not_empty),
    _json(type="array", items={"type": "integer", "minimum": 1}, minItems=1),
]


def _section(model: type[BaseModel], description: str) -> Any:
    """A section's field: `section:` with nothing under it (null) means its defaults."""
    return Field(default_factory=model, description=description)


# --- the sections -----------------------------------------------------------------------------


class _Section(BaseModel):
    """A mapping of the config file: unknown keys are errors, values are never coerced (YAML's
    `"5"` is not 5), and what was read never changes."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


_PATH = Annotated[
    str,
    PlainValidator(_delete_path),
    _json(type="string", pattern=r"^/[^?#{}]*\{id\}[^?#{}]*$"),
]


class DeletePaths(_Section):
    """`api.paths`: where a backup or snapshot is deleted, `{id}` standing for its id."""

    backups: _PATH = Field("/backups/{id}", description="DELETE path of a backup")
    snapshots: _PATH = Field("/snapshots/{id}", description="DELETE path of a snapshot")


class ApiSettings(_Section):
    """`api`: where the VPSBG API is, where its token is, and how to talk to it."""

    base_url: Annotated[
        str,
        PlainValidator(_base_url),
        _json(type="string", pattern=r"^https?://[^?#@\s]+$"),
    ] = Field("https://api.vpsbg.eu/v1", description="the API's base URL, ending in /v1")
    token_env: Annotated[
        str, PlainValidator(_env_name), _json(type="string", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    ] = Field("VPSBG_API_TOKEN", description="the environment variable that holds the API token")
    token_file: PathValue | None = Field(
        None,
        description="or a file holding the token; $CREDENTIALS_DIRECTORY/vpsbg-token is read "
        "when present",
    )
    timeout: PositiveSpan = Field(
        timedelta(seconds=30), description="the whole of one request, its body included"
    )
    retries: Retries = Field(
        5, description="per request, for 423, 429, 5xx, malformed bodies and connection errors"
    )
    backoff: AnySpan = Field(
        timedelta(seconds=1),
        description="the first retry's delay (doubles, jittered, capped at 60s); Retry-After wins",
    )
    concurrency: Concurrency = Field(4, description="requests in flight at most")
    max_pages: MaxPages = Field(
        20_000, description="a listing claiming more pages (of 50) than this fails closed"
    )
    paths: Annotated[
        DeletePaths,
        BeforeValidator(_mapping_or_defaults, json_schema_input_type=DeletePaths | None),
    ] = _section(DeletePaths, "the DELETE paths, for when VPSBG's API changes them")


_CRON = Annotated[
    str,
    PlainValidator(_cron),
    _json(
        type="string",
        minLength=1,
        description="a crontab expression (minute hour day-of-month month day-of-week, Sunday "
        "0 or 7) or a macro such as @daily",
    ),
]


class ScheduleSettings(_Section):
    """`schedule`: when `pruner daemon` runs a pass: exactly one of `cron` and `interval`."""

    cron: _CRON | None = Field(None, description="when to run a pass, read in `timezone`")
    # A pass lists every backup; cron cannot go below a minute either.
    interval: MinutesSpan | None = Field(None, description="or a pass every this long")
    timezone: Zone = Field(ZoneInfo("UTC"), description="the zone the cron fields are read in")
    jitter: AnySpan = Field(
        timedelta(0), description="a random delay of up to this much before each pass"
    )
    run_on_start: Flag = Field(False, description="also a pass as soon as the daemon starts")

    @model_validator(mode="after")
    def _one_trigger(self) -> ScheduleSettings:
        if (self.cron is None) == (self.interval is None):
            given = "both" if self.cron is not None else "neither"
            raise ValueError(
                f"{given} of cron and interval given: set exactly one "
                '(e.g. cron: "30 3 * * *" or interval: 6h)'
            )
        return self


class SafetySettings(_Section):
    """`safety`: the guards and caps, and the defaults of a policy's own guards."""

    min_keep: MinKeep = Field(
        1, description="the newest this-many unprotected backups of a server are always kept"
    )
    max_deletions_per_run: MaxDeletions | None = Field(
        100, description="across all servers in one pass; null: no cap"
    )
    max_delete_fraction: Fraction = Field(
        0.5, description="of one server's unprotected backups in one pass; 1.0: no cap"
    )
    stale_after: CalendarDuration | None = Field(
        parse_duration("14d"),
        description="a server whose newest backup is older is not pruned; null: off "
        "(snapshot policies default to off)",
    )
    max_pass_duration: SecondsSpan = Field(
        timedelta(hours=1), description="a pass running longer stops as if signalled"
    )
    max_consecutive_failures: ConsecutiveFailures = Field(
        10, description="failed deletions in a row that stop a pass's deleting"
    )
    confirm_after: SecondsSpan | None = Field(
        None,
        description="two-phase deletion: delete only what a pass at least this long before also "
        "planned to delete; null: off",
    )


class MatchSpec(_Section):
    """A policy's `match`: which servers it applies to (every condition given must hold)."""

    hostnames: Globs | None = Field(None, description="shell globs on the server's hostname")
    server_ids: ServerIds | None = Field(None, description="the server's id is one of these")

    @model_validator(mode="after")
    def _some_condition(self) -> MatchSpec:
        if self.hostnames is None and self.server_ids is None:
            raise ValueError("give hostnames and/or server_ids; to match every server remove match")
        return self


class ProtectSpec(_Section):
    """A policy's `protect`: backups it never deletes, and that count for nothing."""

    ids: BackupIds | None = Field(None, description="backup ids")
    names: Globs | None = Field(None, description="shell globs on the backup's name")

    @model_validator(mode="after")
    def _something(self) -> ProtectSpec:
        if self.ids is None and self.names is None:
            raise ValueError("give ids and/or names, or remove protect")
        return self


def _unset(description: str) -> Any:
    """A policy key that is None when absent: unset, or safety's. Null is no value for it, so
    the schema shows no default."""
    return Field(None, description=description, json_schema_extra=_without_default)


def _without_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


def _keep(what: str) -> Any:
    return _unset(f"{what} (a count; -1: unlimited)")


def _within(what: str) -> Any:
    return _unset(f"{what}, within this of the newest backup")


class PolicySpec(_Section):
    """One of `policies`, as written; `load` resolves it into the engine's Policy."""

    name: Text = Field(description="the policy's name, unique")
    resource: Annotated[
        Resource, PlainValidator(_resource), _json(enum=["backups", "snapshots"])
    ] = Field("backups", description="which resource it prunes")
    match: Annotated[
        MatchSpec | None, BeforeValidator(_given, json_schema_input_type=MatchSpec)
    ] = _unset("which servers; no match block: every server")
    keep_last: Count = _keep("the newest this-many")
    keep_hourly: Count = _keep("the newest of each of the last this-many hours that have one")
    keep_daily: Count = _keep("the newest of each of the last this-many days that have one")
    keep_weekly: Count = _keep("the newest of each of the last this-many ISO weeks")
    keep_monthly: Count = _keep("the newest of each of the last this-many months")
    keep_yearly: Count = _keep("the newest of each of the last this-many years")
    keep_within: CalendarDurationKey = _within("every backup")
    keep_within_hourly: CalendarDurationKey = _within("the newest of each hour")
    keep_within_daily: CalendarDurationKey = _within("the newest of each day")
    keep_within_weekly: CalendarDurationKey = _within("the newest of each week")
    keep_within_monthly: CalendarDurationKey = _within("the newest of each month")
    keep_within_yearly: CalendarDurationKey = _within("the newest of each year")
    max_age: CalendarDurationKey = _unset("a limit: delete anything older, whatever the rules say")
    max_total_size: Annotated[Size | None, PlainValidator(_size), _SIZE_JSON] = _unset(
        "a limit: newest first, delete from where the sizes pass it"
    )
    min_keep: Annotated[int | None, PlainValidator(_min_keep), _integer_json(0)] = _unset(
        "overrides safety.min_keep"
    )
    max_delete_fraction: Annotated[float | None, PlainValidator(_fraction), _FRACTION_JSON] = (
        _unset("overrides safety.max_delete_fraction")
    )
    # Absent: safety's for backups, off for snapshots (made by hand: a pause is no sign).
    stale_after: CalendarDuration | None = _unset("overrides safety.stale_after; null: off")
    protect: Annotated[
        ProtectSpec | None, BeforeValidator(_given, json_schema_input_type=ProtectSpec)
    ] = _unset("backups never deleted, that count for nothing")
    orphans: Annotated[Orphans, PlainValidator(_orphans), _json(enum=["keep", "apply"])] = Field(
        "keep", description="backups of servers that no longer exist: keep, or apply the rules"
    )
    acknowledge: WarningIds = Field(
        default_factory=list,
        description="config warnings about this policy that are understood, and stay silent",
    )

    @model_validator(mode="after")
    def _has_a_rule(self) -> PolicySpec:
        rules = (*COUNT_RULES, *WITHIN_RULES, "max_age", "max_total_size")
        if all(getattr(self, rule) is None for rule in rules):
            raise ValueError(
                f"policy {self.name!r} has no keep rule or limit: add one "
                "(keep_last, keep_daily, keep_within, ..., max_age or max_total_size)"
            )
        return self


def _textfile(value: object) -> Path:
    path = _path(value)
    if path.suffix != ".prom":
        raise ValueError(
            f"{path}: node_exporter's textfile collector reads only files ending in .prom: "
            "name it e.g. /var/lib/node_exporter/textfile/pruner.prom"
        )
    return path


class MetricsSettings(_Section):
    """`metrics`: the daemon's Prometheus endpoint and the one-shot runs' textfile."""

    listen: (
        Annotated[
            tuple[str, int],
            PlainValidator(_listen),
            _json(type="string", pattern=r"^(?:\[[0-9A-Fa-f:.%\w-]+\]|[^:\[\]\s]+):[0-9]+$"),
        ]
        | None
    ) = Field(
        ("127.0.0.1", 9814),
        description="host:port where `pruner daemon` serves /metrics ([::1]:9814 for IPv6; "
        "port 0: any free port); null: off",
        json_schema_extra={"default": "127.0.0.1:9814"},
    )
    textfile: (
        Annotated[Path, PlainValidator(_textfile), _json(type="string", pattern=r"\.prom$")] | None
    ) = Field(None, description="`pruner run` writes its metrics here, for node_exporter")
    per_server: Flag = Field(False, description="also one series per server")


class NotifySettings(_Section):
    """`notify`: health pings in the style of healthchecks.io (`<url>/start`, `<url>`,
    `<url>/fail`)."""

    urls: Annotated[
        tuple[Annotated[str, PlainValidator(_ping_url)], ...],
        BeforeValidator(_list_as_tuple),
        _json(type="array", items={"type": "string", "pattern": r"^https?://[^?#]+$"}),
    ] = Field((), description="ping URLs; the pass summary is the body")
    on_dry_run: Flag = Field(False, description="also ping for dry runs")
    timeout: PositiveSpan = Field(
        timedelta(seconds=10), description="per ping, and per try of a webhook (three at most)"
    )
    webhooks: Annotated[
        tuple[Annotated[str, PlainValidator(_webhook_url)], ...],
        BeforeValidator(_list_as_tuple),
        _json(type="array", items={"type": "string", "pattern": r"^https?://"}),
    ] = Field((), description="URLs that get a JSON POST of each pass's summary and problems")


class Settings(_Section):
    """Every key of the config file but `policies`: what a pass, the daemon and its watchers
    read, as they read it."""

    api: Annotated[
        ApiSettings,
        BeforeValidator(_mapping_or_defaults, json_schema_input_type=ApiSettings | None),
    ] = _section(ApiSettings, "the VPSBG API")
    dry_run: Flag = Field(True, description="nothing is deleted until this is false")
    timezone: Zone | None = Field(
        None,
        description="the calendar of the buckets (days, weeks, months); null: each backup's own "
        "UTC offset",
    )
    state_dir: PathValue = Field(
        DEFAULT_STATE_DIR, description="the lock, the heartbeat, the last plan, the audit trail"
    )
    schedule: ScheduleSettings | None = Field(
        None, description="when `pruner daemon` runs a pass; only the daemon needs it"
    )
    safety: Annotated[
        SafetySettings,
        BeforeValidator(_mapping_or_defaults, json_schema_input_type=SafetySettings | None),
    ] = _section(SafetySettings, "the guards and caps")
    metrics: Annotated[
        MetricsSettings,
        BeforeValidator(_mapping_or_defaults, json_schema_input_type=MetricsSettings | None),
    ] = _section(MetricsSettings, "Prometheus metrics")
    notify: Annotated[
        NotifySettings,
        BeforeValidator(_mapping_or_defaults, json_schema_input_type=NotifySettings | None),
    ] = _section(NotifySettings, "health pings")


class ConfigFile(Settings):
    """The config file: every key, its default and its check, declared once."""

    policies: Annotated[list[PolicySpec], AfterValidator(_some_policies)] = Field(
        description="in order: for each server and resource the first match wins",
        json_schema_extra={"minItems": 1},  # checked by _some_policies, in its own words
    )


class Config(Settings):
    """A config file as pruner runs it: its settings as validated, its policies resolved into
    the engine's (safety's defaults applied, in file order: the first match wins), and the
    warnings about them. Made by `pruner.config.load`, never validated again."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    source: str
    policies: tuple[Policy, ...]
    warnings: tuple[str, ...] = ()


# --- the JSON Schema --------------------------------------------------------------------------


class _AsWritten(GenerateJsonSchema):
    """Defaults as a config file writes them: `30s`, not `PT30S`."""

    def encode_default(self, dft: Any) -> Any:
        return super().encode_default(_written(dft))


def _written(value: object) -> object:
    if isinstance(value, timedelta):
        return span_text(value)
    if isinstance(value, Duration | Size):
        return value.text
    if isinstance(value, ZoneInfo | Path):
        return str(value)
    return value


def span_text(span: timedelta) -> str:
    """A timedelta in the config's own units: 90 s -> 1min30s, 2 days -> 2d."""
    seconds, parts = span.total_seconds(), []
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        whole, seconds = divmod(seconds, size)
        if whole:
            parts.append(f"{whole:.0f}{unit}")
    if seconds or not parts:
        parts.append(f"{seconds:g}s")
    return "".join(parts)


def config_json_schema() -> dict[str, Any]:
    """The JSON Schema of the config file (docs/config.schema.json), for editors."""
    schema = ConfigFile.model_json_schema(schema_generator=_AsWritten)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        **schema,
        "title": "pruner configuration",
    }
