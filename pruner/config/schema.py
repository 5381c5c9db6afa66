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
    PlainValidator,
    model_validator,
)

from pruner.config.crontab import parse_crontab
from pruner.config.defaults import DEFAULT_STATE_DIR
from pruner.engine.models import COUNT_RULES, WITHIN_RULES, Orphans, Policy, Resource
from pruner.engine.units import Duration, Size, UnitError, parse_duration, parse_size

__all__ = [
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
    "shown",
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


def _resource(value: object) -> Resource:
    if value in ("backups", "snapshots"):
        return value
    raise ValueError(f"must be backups or snapshots, not {shown(value)}")


def _orphans(value: object) -> Orphans:
    if value in ("keep", "apply"):
        return value
    raise ValueError(f"must be keep or apply, not {shown(value)}")


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


# Policy keys: absent is None (unset, or inherited from safety); a written null is an error.
Count = Annotated[int | None, PlainValidator(_count)]
CalendarDurationKey = Annotated[Duration | None, PlainValidator(_calendar_duration)]
MinKeep = Annotated[int, PlainValidator(_min_keep)]
Flag = Annotated[bool, PlainValidator(_flag)]
Text = Annotated[str, PlainValidator(_text)]
Fraction = Annotated[float, PlainValidator(_fraction)]
CalendarDuration = Annotated[Duration, PlainValidator(_calendar_duration)]
SizeValue = Annotated[Size, PlainValidator(_size)]
Zone = Annotated[ZoneInfo, PlainValidator(_zone)]
Globs = Annotated[list[Text], AfterValidator(_not_empty)]
ServerIds = Annotated[list[Annotated[int, PlainValidator(_server_id)]], AfterValidator(_not_empty)]
BackupIds = Annotated[list[Annotated[int, PlainValidator(_backup_id)]], AfterValidator(_not_empty)]


# --- the sections -----------------------------------------------------------------------------


class _Section(BaseModel):
    """A mapping of the config file: unknown keys are errors, values are never coerced (YAML's
    `"5"` is not 5), and what was read never changes."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class ApiSettings(_Section):
    """`api`: where the VPSBG API is, where its token is, and how to talk to it."""

    base_url: Annotated[str, PlainValidator(_base_url)] = "https://api.vpsbg.eu/v1"
    token_env: Annotated[str, PlainValidator(_env_name)] = "VPSBG_API_TOKEN"
    token_file: Annotated[Path, PlainValidator(_path)] | None = None
    timeout: Annotated[
        timedelta, PlainValidator(_exact_duration(timedelta(microseconds=1), "longer than 0s"))
    ] = timedelta(seconds=30)
    retries: Annotated[int, PlainValidator(_retries)] = 5
    backoff: Annotated[timedelta, PlainValidator(_exact_duration(timedelta(0), "0s or longer"))] = (
        timedelta(seconds=1)
    )
    concurrency: Annotated[int, PlainValidator(_concurrency)] = 4
    max_pages: Annotated[int, PlainValidator(_max_pages)] = 20_000


class ScheduleSettings(_Section):
    """`schedule`: when `pruner daemon` runs a pass: exactly one of `cron` and `interval`."""

    cron: Annotated[str, PlainValidator(_cron)] | None = None
    # A pass lists every backup; cron cannot go below a minute either.
    interval: (
        Annotated[timedelta, PlainValidator(_exact_duration(timedelta(minutes=1), "at least 1min"))]
        | None
    ) = None
    timezone: Zone = ZoneInfo("UTC")
    jitter: Annotated[timedelta, PlainValidator(_exact_duration(timedelta(0), "0s or longer"))] = (
        timedelta(0)
    )
    run_on_start: Flag = False

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

    min_keep: MinKeep = 1
    max_deletions_per_run: Annotated[int, PlainValidator(_max_deletions)] | None = 100
    max_delete_fraction: Fraction = 0.5
    stale_after: CalendarDuration | None = parse_duration("14d")
    max_pass_duration: Annotated[
        timedelta, PlainValidator(_exact_duration(timedelta(seconds=1), "at least 1s"))
    ] = timedelta(hours=1)
    max_consecutive_failures: Annotated[int, PlainValidator(_consecutive_failures)] = 10


class MatchSpec(_Section):
    """A policy's `match`: which servers it applies to (every condition given must hold)."""

    hostnames: Globs | None = None
    server_ids: ServerIds | None = None

    @model_validator(mode="after")
    def _some_condition(self) -> MatchSpec:
        if self.hostnames is None and self.server_ids is None:
            raise ValueError("give hostnames and/or server_ids; to match every server remove match")
        return self


class ProtectSpec(_Section):
    """A policy's `protect`: backups it never deletes, and that count for nothing."""

    ids: BackupIds | None = None
    names: Globs | None = None

    @model_validator(mode="after")
    def _something(self) -> ProtectSpec:
        if self.ids is None and self.names is None:
            raise ValueError("give ids and/or names, or remove protect")
        return self


class PolicySpec(_Section):
    """One of `policies`, as written; `load` resolves it into the engine's Policy."""

    name: Text
    resource: Annotated[Resource, PlainValidator(_resource)] = "backups"
    match: Annotated[MatchSpec | None, BeforeValidator(_given)] = None
    keep_last: Count = None
    keep_hourly: Count = None
    keep_daily: Count = None
    keep_weekly: Count = None
    keep_monthly: Count = None
    keep_yearly: Count = None
    keep_within: CalendarDurationKey = None
    keep_within_hourly: CalendarDurationKey = None
    keep_within_daily: CalendarDurationKey = None
    keep_within_weekly: CalendarDurationKey = None
    keep_within_monthly: CalendarDurationKey = None
    keep_within_yearly: CalendarDurationKey = None
    max_age: CalendarDurationKey = None
    max_total_size: Annotated[Size | None, PlainValidator(_size)] = None
    min_keep: Annotated[int | None, PlainValidator(_min_keep)] = None
    max_delete_fraction: Annotated[float | None, PlainValidator(_fraction)] = None
    stale_after: CalendarDuration | None = None  # null: off; absent: from safety (backups)
    protect: Annotated[ProtectSpec | None, BeforeValidator(_given)] = None
    orphans: Annotated[Orphans, PlainValidator(_orphans)] = "keep"

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

    listen: Annotated[tuple[str, int], PlainValidator(_listen)] | None = ("127.0.0.1", 9814)
    textfile: Annotated[Path, PlainValidator(_textfile)] | None = None
    per_server: Flag = False


class NotifySettings(_Section):
    """`notify`: health pings in the style of healthchecks.io (`<url>/start`, `<url>`,
    `<url>/fail`)."""

    urls: Annotated[
        tuple[Annotated[str, PlainValidator(_ping_url)], ...], BeforeValidator(_list_as_tuple)
    ] = ()
    on_dry_run: Flag = False
    timeout: Annotated[
        timedelta, PlainValidator(_exact_duration(timedelta(microseconds=1), "longer than 0s"))
    ] = timedelta(seconds=10)


class Settings(_Section):
    """Every key of the config file but `policies`: what a pass, the daemon and its watchers
    read, as they read it."""

    api: Annotated[ApiSettings, BeforeValidator(_mapping_or_defaults)] = ApiSettings()
    dry_run: Flag = True
    timezone: Zone | None = None  # None: each timestamp's own UTC offset
    state_dir: Annotated[Path, PlainValidator(_path)] = DEFAULT_STATE_DIR
    schedule: ScheduleSettings | None = None  # None: only `pruner daemon` needs one
    safety: Annotated[SafetySettings, BeforeValidator(_mapping_or_defaults)] = SafetySettings()
    metrics: Annotated[MetricsSettings, BeforeValidator(_mapping_or_defaults)] = MetricsSettings()
    notify: Annotated[NotifySettings, BeforeValidator(_mapping_or_defaults)] = NotifySettings()


class ConfigFile(Settings):
    """The config file: every key, its default and its check, declared once."""

    policies: Annotated[list[PolicySpec], AfterValidator(_some_policies)]


class Config(Settings):
    """A config file as pruner runs it: its settings as validated, its policies resolved into
    the engine's (safety's defaults applied, in file order: the first match wins), and the
    warnings about them. Made by `pruner.config.load`, never validated again."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    source: str
    policies: tuple[Policy, ...]
    warnings: tuple[str, ...] = ()
