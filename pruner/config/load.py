"""The configuration: YAML text -> a validated, typed, frozen Config (SPEC §3).

A small pipeline: read the text strictly (`_yaml`), validate its shape and values with pydantic
models that mirror the file (`_Raw*`), check what spans keys (catch-all order, unique names),
then resolve into the values the rest of pruner uses: frozen dataclasses and `models.Policy`.
Every problem is collected and reported as `file:line: key.path: message`.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, TypeVar, get_args
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    PlainValidator,
    ValidationError,
    model_validator,
)

from pruner.config import _yaml
from pruner.config.crontab import parse_crontab
from pruner.engine.models import COUNT_RULES, WITHIN_RULES, Orphans, Policy, Resource
from pruner.engine.units import Duration, Size, UnitError, parse_duration, parse_size

__all__ = [
    "ApiSettings",
    "Config",
    "ConfigError",
    "MetricsSettings",
    "NotifySettings",
    "SafetySettings",
    "ScheduleSettings",
    "describe_config",
    "load_config",
    "parse_config",
]

_Model = TypeVar("_Model", bound=BaseModel)
_Item = TypeVar("_Item")

# VPSBG's automatic-backups addon makes one backup a week and deletes it after three weeks.
_AUTOMATIC_BACKUPS_KEPT = 3
_AUTOMATIC_BACKUPS_HISTORY = timedelta(weeks=3)


class ConfigError(Exception):
    """The config cannot be used; `.problems` has one line per problem, `file:line: path: what`."""

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(self.problems))


@dataclass(frozen=True, slots=True)
class ApiSettings:
    base_url: str
    token_env: str
    token_file: Path | None
    timeout: timedelta
    retries: int
    backoff: timedelta
    concurrency: int
    max_pages: int = 20_000  # a listing claiming more pages than this fails closed


@dataclass(frozen=True, slots=True)
class ScheduleSettings:
    """When `pruner daemon` runs a pass: exactly one of `cron` and `interval` is set."""

    cron: str | None
    interval: timedelta | None
    timezone: ZoneInfo
    jitter: timedelta
    run_on_start: bool


@dataclass(frozen=True, slots=True)
class SafetySettings:
    min_keep: int
    max_deletions_per_run: int | None  # None: no cap
    max_delete_fraction: float
    stale_after: Duration | None  # None: the stale guard is off
    max_pass_duration: timedelta = timedelta(hours=1)  # past it a pass stops as if signalled
    max_consecutive_failures: int = 10  # failed deletions in a row that stop the deleting


@dataclass(frozen=True, slots=True)
class MetricsSettings:
    """Prometheus metrics: the daemon's HTTP endpoint and the one-shot runs' textfile."""

    listen: tuple[str, int] | None  # (host, port), IPv6 host without brackets; None: no endpoint
    textfile: Path | None  # None: `pruner run` writes no metrics
    per_server: bool  # also one series per server (newest backup age)


@dataclass(frozen=True, slots=True)
class NotifySettings:
    """Health pings in the style of healthchecks.io: `<url>/start`, `<url>`, `<url>/fail`."""

    urls: tuple[str, ...]
    on_dry_run: bool
    timeout: timedelta


_DEFAULT_LISTEN = ("127.0.0.1", 9814)
DEFAULT_METRICS = MetricsSettings(listen=_DEFAULT_LISTEN, textfile=None, per_server=False)
DEFAULT_NOTIFY = NotifySettings(urls=(), on_dry_run=False, timeout=timedelta(seconds=10))


@dataclass(frozen=True, slots=True)
class Config:
    source: str
    api: ApiSettings
    dry_run: bool
    timezone: ZoneInfo | None  # None: each timestamp's own UTC offset
    state_dir: Path
    schedule: ScheduleSettings | None  # None: no schedule (only `pruner daemon` needs one)
    safety: SafetySettings
    policies: tuple[Policy, ...]  # resolved, in file order: the first match wins
    warnings: tuple[str, ...]
    metrics: MetricsSettings = DEFAULT_METRICS
    notify: NotifySettings = DEFAULT_NOTIFY


def load_config(path: Path) -> Config:
    """Read and validate the config file at `path`. Raises ConfigError."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            [
                f"{path}: no such config file: create it (config.example.yaml is a commented "
                "start) or point --config or $PRUNER_CONFIG at yours"
            ]
        ) from None
    except IsADirectoryError:
        raise ConfigError([f"{path}: is a directory: give the path of the YAML file"]) from None
    except PermissionError:
        raise ConfigError(
            [f"{path}: permission denied: make the file readable by the user pruner runs as"]
        ) from None
    except UnicodeDecodeError as error:
        raise ConfigError(
            [f"{path}: not UTF-8 text (byte {error.start}): save the file as UTF-8"]
        ) from None
    except OSError as error:
        raise ConfigError([f"{path}: cannot read the config file: {error.strerror}"]) from None
    return parse_config(text, source=str(path))


def parse_config(text: str, source: str = "config.yaml") -> Config:
    """Validate config text (`source` names it in messages). Raises ConfigError: every problem."""
    document, refused = _read(text, source)
    problems: list[tuple[_yaml.KeyPath, str]] = []
    settings = _validate(_RawSettings, document.data, (), problems)
    # Policies are checked one by one, whatever else is wrong, so that every problem shows at once.
    items = document.data.get("policies")
    policies: list[tuple[int, _RawPolicy]] = []
    for index, item in enumerate(items if isinstance(items, list) else []):
        policy = _validate(_RawPolicy, item, ("policies", index), problems)
        if policy is not None:
            policies.append((index, policy))
    problems.extend(_cross_check(policies))
    if problems or refused or settings is None:
        # A value the YAML reader refused fails validation too: say it once, the reader's way.
        found = [(p.line or 0, p.path, p.message) for p in refused]
        found += [
            (document.line_of(path), path, message)
            for path, message in problems
            if not any(path[: len(p.path)] == p.path for p in refused)
        ]
        found.sort(key=lambda problem: problem[0])
        raise ConfigError(_format(source, line, path, message) for line, path, message in found)
    return _resolve(source, settings, [policy for _, policy in policies])


def describe_config(config: Config, token_source: str | None = None) -> str:
    """The resolved config in words, for `pruner check-config`: settings, then each policy.
    `token_source`: where the token was found, when known (else where it is configured)."""
    api, safety = config.api, config.safety
    token = f"file {api.token_file}" if api.token_file else f"${api.token_env}"
    token = token_source or token
    lines = [
        f"config: {config.source}",
        f"api: {api.base_url}, token from {token}, timeout {_span(api.timeout)}, "
        f"{api.retries} retries (backoff {_span(api.backoff)}), concurrency {api.concurrency}, "
        f"max_pages {api.max_pages}",
        "dry_run: "
        + ("true (nothing is deleted)" if config.dry_run else "false (deletions are real)"),
        f"timezone: {config.timezone or 'null (each backup time in its own UTC offset)'}",
        f"state_dir: {config.state_dir}",
        f"schedule: {_describe_schedule(config.schedule)}",
        f"safety: min_keep {safety.min_keep}, max_deletions_per_run "
        f"{safety.max_deletions_per_run or 'none (no cap)'}, max_delete_fraction "
        f"{safety.max_delete_fraction}, stale_after {safety.stale_after or 'null (off)'}, "
        f"max_pass_duration {_span(safety.max_pass_duration)}, max_consecutive_failures "
        f"{safety.max_consecutive_failures}",
        f"metrics: {_describe_metrics(config.metrics)}",
        f"notify: {_describe_notify(config.notify)}",
        "policies (in order; for each server and resource the first match wins):",
    ]
    for number, policy in enumerate(config.policies, start=1):
        lines.extend(_describe_policy(number, policy))
    if config.warnings:
        lines.append("warnings:")
        lines.extend(f"  - {warning}" for warning in config.warnings)
    return "\n".join(lines)


# --- validation ---------------------------------------------------------------------------


def _read(text: str, source: str) -> tuple[_yaml.Document, tuple[_yaml.YamlProblem, ...]]:
    """The document, and the values the YAML reader refused (reported with the other problems)."""
    try:
        return _yaml.load(text), ()
    except _yaml.YamlError as error:
        if error.document is None:  # nothing else can be checked
            raise ConfigError(
                _format(source, p.line, p.path, p.message) for p in error.problems
            ) from None
        return error.document, error.problems


def _format(source: str, line: int | None, path: _yaml.KeyPath, message: str) -> str:
    where = f"{source}:{line}" if line else source
    return f"{where}: {_yaml.format_path(path)}: {message}" if path else f"{where}: {message}"


def _validate(
    model: type[_Model],
    data: object,
    prefix: _yaml.KeyPath,
    problems: list[tuple[_yaml.KeyPath, str]],
) -> _Model | None:
    try:
        return model.model_validate(data)
    except ValidationError as error:
        for detail in error.errors():
            loc = tuple(detail["loc"])
            problems.append(((*prefix, *loc), _message(model, loc, detail)))
        return None


def _message(model: type[BaseModel], loc: tuple[str | int, ...], detail: Any) -> str:
    """One pydantic error in words a user can act on."""
    kind, given = detail["type"], detail.get("input")
    if kind == "value_error":
        return str(detail["ctx"]["error"])
    if kind == "missing":
        return "required key is missing"
    if kind == "extra_forbidden":
        return _unknown_key(_model_at(model, loc[:-1]), str(loc[-1]))
    if kind in ("model_type", "dict_type"):
        return f"must be a mapping (indented `key: value` lines), not {_shown(given)}"
    if kind == "list_type":
        return f"must be a list, such as [a, b], not {_shown(given)}"
    return str(detail["msg"])


def _unknown_key(model: type[BaseModel] | None, key: str) -> str:
    if model is None:
        return "unknown key"
    known = list(model.model_fields)
    close = difflib.get_close_matches(key, known, n=1)
    if close:
        return f"unknown key: did you mean {close[0]}?"
    return f"unknown key; the keys here are {', '.join(known)}"


def _model_at(model: type[BaseModel], loc: tuple[str | int, ...]) -> type[BaseModel] | None:
    """The model that validates the mapping at `loc` below `model`, to list its keys."""
    current: type[BaseModel] | None = model
    for part in loc:
        if current is None:
            return None
        if isinstance(part, str):
            field = current.model_fields.get(part)
            current = _model_in(field.annotation) if field else None
    return current


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for argument in get_args(annotation):
        found = _model_in(argument)
        if found is not None:
            return found
    return None


def _shown(value: object) -> str:
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
        raise ValueError(f"must be {what}, not {_shown(value)}")
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
        raise ValueError(f"must be true or false, not {_shown(value)}")
    return value


def _text(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"must be non-empty text, not {_shown(value)}")
    return value


def _fraction(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1:
        raise ValueError(
            f"must be a number above 0 and at most 1 (1.0: no cap), not {_shown(value)}"
        )
    return float(value)


def _duration(value: object, *, calendar: bool) -> Duration:
    example = "14d, 36h or 6mo" if calendar else "30s, 10min or 6h"
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise ValueError(
            f"must be a duration with a unit, such as {example}, not the number {value}"
        )
    if not isinstance(value, str):
        raise ValueError(f"must be a duration such as {example}, not {_shown(value)}")
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
        raise ValueError(f"must be a size such as 500GB or 2TB, not {_shown(value)}")
    try:
        return parse_size(value)
    except UnitError as error:
        raise ValueError(str(error)) from None


def _zone(value: object) -> ZoneInfo:
    if not isinstance(value, str) or not value:
        raise ValueError(
            f"must be an IANA time zone name such as Europe/Sofia, not {_shown(value)}"
        )
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
            f"not {_shown(value)}"
        )
    return value


def _path(value: object) -> Path:
    return Path(_text(value))


_LISTEN = re.compile(r"(?:\[(?P<ipv6>[0-9A-Fa-f:.%\w-]+)\]|(?P<host>[^:\[\]\s]+)):(?P<port>[0-9]+)")


def _listen(value: object) -> tuple[str, int]:
    """host:port ([::1]:9814 for IPv6); port 0 means any free port."""
    hint = "such as 127.0.0.1:9814, 0.0.0.0:9814 or [::1]:9814 (quote IPv6 forms), or null for off"
    if not isinstance(value, str):
        raise ValueError(f"must be host:port {hint}, not {_shown(value)}")
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
            f"must be an http(s) URL such as https://hc-ping.com/<uuid>, not {_shown(value)}"
        )
    if parts.query or parts.fragment:
        raise ValueError(
            "must be a URL without ?query or #fragment: /start and /fail are appended to it"
        )
    return text.rstrip("/")


def _resource(value: object) -> Resource:
    if value in ("backups", "snapshots"):
        return value
    raise ValueError(f"must be backups or snapshots, not {_shown(value)}")


def _orphans(value: object) -> Orphans:
    if value in ("keep", "apply"):
        return value
    raise ValueError(f"must be keep or apply, not {_shown(value)}")


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


class _Raw(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class _RawApi(_Raw):
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


class _RawSchedule(_Raw):
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
    def _one_trigger(self) -> _RawSchedule:
        if (self.cron is None) == (self.interval is None):
            given = "both" if self.cron is not None else "neither"
            raise ValueError(
                f"{given} of cron and interval given: set exactly one "
                '(e.g. cron: "30 3 * * *" or interval: 6h)'
            )
        return self


class _RawSafety(_Raw):
    min_keep: MinKeep = 1
    max_deletions_per_run: Annotated[int, PlainValidator(_max_deletions)] | None = 100
    max_delete_fraction: Fraction = 0.5
    stale_after: CalendarDuration | None = parse_duration("14d")
    max_pass_duration: Annotated[
        timedelta, PlainValidator(_exact_duration(timedelta(seconds=1), "at least 1s"))
    ] = timedelta(hours=1)
    max_consecutive_failures: Annotated[int, PlainValidator(_consecutive_failures)] = 10


class _RawMatch(_Raw):
    hostnames: Globs | None = None
    server_ids: ServerIds | None = None

    @model_validator(mode="after")
    def _some_condition(self) -> _RawMatch:
        if self.hostnames is None and self.server_ids is None:
            raise ValueError("give hostnames and/or server_ids; to match every server remove match")
        return self


class _RawProtect(_Raw):
    ids: BackupIds | None = None
    names: Globs | None = None

    @model_validator(mode="after")
    def _something(self) -> _RawProtect:
        if self.ids is None and self.names is None:
            raise ValueError("give ids and/or names, or remove protect")
        return self


class _RawPolicy(_Raw):
    name: Text
    resource: Annotated[Resource, PlainValidator(_resource)] = "backups"
    match: Annotated[_RawMatch | None, BeforeValidator(_given)] = None
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
    protect: Annotated[_RawProtect | None, BeforeValidator(_given)] = None
    orphans: Annotated[Orphans, PlainValidator(_orphans)] = "keep"

    @model_validator(mode="after")
    def _has_a_rule(self) -> _RawPolicy:
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


class _RawMetrics(_Raw):
    listen: Annotated[tuple[str, int], PlainValidator(_listen)] | None = _DEFAULT_LISTEN
    textfile: Annotated[Path, PlainValidator(_textfile)] | None = None
    per_server: Flag = False


class _RawNotify(_Raw):
    urls: list[Annotated[str, PlainValidator(_ping_url)]] = []
    on_dry_run: Flag = False
    timeout: Annotated[
        timedelta, PlainValidator(_exact_duration(timedelta(microseconds=1), "longer than 0s"))
    ] = timedelta(seconds=10)


class _RawSettings(_Raw):
    api: Annotated[_RawApi, BeforeValidator(_mapping_or_defaults)] = _RawApi()
    dry_run: Flag = True
    timezone: Zone | None = None
    state_dir: Annotated[Path, PlainValidator(_path)] = Path("/var/lib/pruner")
    schedule: _RawSchedule | None = None
    safety: Annotated[_RawSafety, BeforeValidator(_mapping_or_defaults)] = _RawSafety()
    metrics: Annotated[_RawMetrics, BeforeValidator(_mapping_or_defaults)] = _RawMetrics()
    notify: Annotated[_RawNotify, BeforeValidator(_mapping_or_defaults)] = _RawNotify()
    policies: Annotated[list[Any], AfterValidator(_some_policies)]  # items: _RawPolicy


def _cross_check(policies: list[tuple[int, _RawPolicy]]) -> list[tuple[_yaml.KeyPath, str]]:
    """What no single policy shows: duplicate names, and policies a catch-all hides."""
    problems: list[tuple[_yaml.KeyPath, str]] = []
    first_named: dict[str, int] = {}
    catch_all: dict[Resource, tuple[int, _RawPolicy]] = {}
    for index, policy in policies:
        path: _yaml.KeyPath = ("policies", index)
        if policy.name in first_named:
            problems.append(
                (
                    (*path, "name"),
                    f"the name {policy.name!r} is taken by policies[{first_named[policy.name]}]: "
                    "give each policy its own name",
                )
            )
        first_named.setdefault(policy.name, index)
        earlier = catch_all.get(policy.resource)
        if earlier is not None:
            problems.append(
                (
                    path,
                    f"policy {policy.name!r} can never match: policies[{earlier[0]}] "
                    f"({earlier[1].name!r}) before it has no match block and takes the "
                    f"{policy.resource} of every server; move {policy.name!r} up or remove it",
                )
            )
        elif policy.match is None:
            catch_all[policy.resource] = (index, policy)
    return problems


# --- resolution -----------------------------------------------------------------------------


def _resolve(source: str, raw: _RawSettings, raw_policies: list[_RawPolicy]) -> Config:
    safety = SafetySettings(
        min_keep=raw.safety.min_keep,
        max_deletions_per_run=raw.safety.max_deletions_per_run,
        max_delete_fraction=raw.safety.max_delete_fraction,
        stale_after=raw.safety.stale_after,
        max_pass_duration=raw.safety.max_pass_duration,
        max_consecutive_failures=raw.safety.max_consecutive_failures,
    )
    policies = tuple(_resolve_policy(policy, safety) for policy in raw_policies)
    return Config(
        source=source,
        api=ApiSettings(
            base_url=raw.api.base_url,
            token_env=raw.api.token_env,
            token_file=raw.api.token_file,
            timeout=raw.api.timeout,
            retries=raw.api.retries,
            backoff=raw.api.backoff,
            concurrency=raw.api.concurrency,
            max_pages=raw.api.max_pages,
        ),
        dry_run=raw.dry_run,
        timezone=raw.timezone,
        state_dir=raw.state_dir,
        schedule=_resolve_schedule(raw.schedule) if raw.schedule else None,
        safety=safety,
        policies=policies,
        warnings=tuple(_warnings(policies)),
        metrics=MetricsSettings(
            listen=raw.metrics.listen,
            textfile=raw.metrics.textfile,
            per_server=raw.metrics.per_server,
        ),
        notify=NotifySettings(
            urls=tuple(raw.notify.urls),
            on_dry_run=raw.notify.on_dry_run,
            timeout=raw.notify.timeout,
        ),
    )


def _resolve_schedule(raw: _RawSchedule) -> ScheduleSettings:
    return ScheduleSettings(
        cron=raw.cron,
        interval=raw.interval,
        timezone=raw.timezone,
        jitter=raw.jitter,
        run_on_start=raw.run_on_start,
    )


def _resolve_policy(raw: _RawPolicy, safety: SafetySettings) -> Policy:
    if "stale_after" in raw.model_fields_set:
        stale_after = raw.stale_after
    else:  # snapshots are made by hand: a pause in them is not a sign of trouble (SPEC §3)
        stale_after = safety.stale_after if raw.resource == "backups" else None
    rules = {rule: getattr(raw, rule) for rule in (*COUNT_RULES, *WITHIN_RULES)}
    return Policy(
        name=raw.name,
        resource=raw.resource,
        hostnames=tuple(raw.match.hostnames) if raw.match and raw.match.hostnames else None,
        server_ids=frozenset(raw.match.server_ids) if raw.match and raw.match.server_ids else None,
        **rules,
        max_age=raw.max_age,
        max_total_size=raw.max_total_size,
        min_keep=safety.min_keep if raw.min_keep is None else raw.min_keep,
        max_delete_fraction=(
            safety.max_delete_fraction
            if raw.max_delete_fraction is None
            else raw.max_delete_fraction
        ),
        stale_after=stale_after,
        protect_ids=frozenset(raw.protect.ids or ()) if raw.protect else frozenset(),
        protect_names=tuple(raw.protect.names or ()) if raw.protect else (),
        orphans=raw.orphans,
    )


def _warnings(policies: Iterable[Policy]) -> list[str]:
    warnings = []
    for policy in policies:
        keep = {rule: getattr(policy, rule) for rule in COUNT_RULES + WITHIN_RULES}
        keep = {rule: value for rule, value in keep.items() if value is not None}
        if keep and all(value == 0 for value in keep.values()):
            shown = ", ".join(f"{rule} {value}" for rule, value in keep.items())
            warnings.append(_keeps_only_the_floor(policy, shown))
        elif policy.min_keep == 0:
            warnings.append(
                f"policy {policy.name!r}: min_keep is 0, so its rules and limits may delete every "
                "unprotected backup of a server, even the newest"
            )
        unmet = _beyond_automatic_backups(policy)
        if unmet:
            warnings.append(
                f"policy {policy.name!r}: {', '.join(unmet)} ask for more history than VPSBG's "
                "automatic backups have (one a week, deleted by VPSBG after 3 weeks): for those "
                "backups this cannot be met"
            )
    return warnings


def _keeps_only_the_floor(policy: Policy, rules: str) -> str:
    """The warning for a policy whose keep rules are all counts of 0 (`keep_last: 0` alone):
    valid, and restic's meaning, but it keeps nothing beyond min_keep."""
    label = policy.resource.removesuffix("s")
    if policy.min_keep == 0:
        return (
            f"policy {policy.name!r}: its keep rules select nothing ({rules}) and min_keep is 0, "
            f"so it deletes every unprotected {label} of every server it matches"
        )
    floor = f"{policy.min_keep} {policy.resource}" if policy.min_keep > 1 else label
    return (
        f"policy {policy.name!r}: its keep rules select nothing ({rules}), so it keeps only "
        f"the newest {floor} of each server (and protected ones) and deletes the rest: if that "
        "is not meant, give it a keep rule that selects something"
    )


def _beyond_automatic_backups(policy: Policy) -> list[str]:
    """The keep rules of a backups policy that ask for more than 3 weeks of weekly backups."""
    if policy.resource != "backups":
        return []
    unmet = []
    for rule in COUNT_RULES:
        count = getattr(policy, rule)
        # One automatic backup a week: N of any bucket size means N weeks, except that two
        # months (or years) are always more than three weeks apart.
        longest = 1 if rule in ("keep_monthly", "keep_yearly") else _AUTOMATIC_BACKUPS_KEPT
        if count is not None and (count == -1 or count > longest):
            unmet.append(f"{rule} {count}")
    for rule in WITHIN_RULES:
        duration: Duration | None = getattr(policy, rule)
        if duration is not None and (
            duration.months or duration.seconds > _AUTOMATIC_BACKUPS_HISTORY.total_seconds()
        ):
            unmet.append(f"{rule} {duration}")
    return unmet


# --- description ----------------------------------------------------------------------------


def _describe_schedule(schedule: ScheduleSettings | None) -> str:
    if schedule is None:
        return "none (only `pruner daemon` needs one)"
    when = f'cron "{schedule.cron}"' if schedule.cron else f"every {_span(schedule.interval)}"
    extra = f", jitter up to {_span(schedule.jitter)}" if schedule.jitter else ""
    start = ", and a pass at start" if schedule.run_on_start else ""
    return f"{when} in {schedule.timezone}{extra}{start}"


def _describe_metrics(metrics: MetricsSettings) -> str:
    if metrics.listen is None:
        endpoint = "no HTTP endpoint"
    else:
        host, port = metrics.listen
        shown = f"[{host}]" if ":" in host else host
        where = f"{shown}:{port}" if port else f"{shown}, any free port"
        endpoint = f"the daemon serves /metrics on {where}"
    textfile = f"`pruner run` writes {metrics.textfile}" if metrics.textfile else "no textfile"
    per_server = "with" if metrics.per_server else "without"
    return f"{endpoint}; {textfile}; {per_server} per-server series"


def _describe_notify(notify: NotifySettings) -> str:
    if not notify.urls:
        return "no pings"
    # Ping URLs are credentials of a sort (anyone holding one can ping): show only the hosts.
    hosts = ", ".join(urlsplit(url).hostname or "?" for url in notify.urls)
    dry = ", also for dry runs" if notify.on_dry_run else ""
    return f"{len(notify.urls)} ping URL(s) at {hosts}, timeout {_span(notify.timeout)} each{dry}"


def _describe_policy(number: int, policy: Policy) -> list[str]:
    conditions = []
    if policy.hostnames is not None:
        conditions.append("hostname " + " or ".join(policy.hostnames))
    if policy.server_ids is not None:
        conditions.append("server id " + " or ".join(str(i) for i in sorted(policy.server_ids)))
    keep = [
        f"{rule} {getattr(policy, rule)}"
        for rule in (*COUNT_RULES, *WITHIN_RULES)
        if getattr(policy, rule) is not None
    ]
    limits = [
        f"{name} {value}"
        for name, value in (("max_age", policy.max_age), ("max_total_size", policy.max_total_size))
        if value is not None
    ]
    protect = [f"id {i}" for i in sorted(policy.protect_ids)]
    protect += [f"name {glob}" for glob in policy.protect_names]
    lines = [
        f"  {number}. {policy.name} ({policy.resource})",
        "     match: " + (" and ".join(conditions) if conditions else "every server"),
        "     keep: " + (", ".join(keep) if keep else "everything (no keep rule)"),
    ]
    if limits:
        lines.append("     limits: " + ", ".join(limits))
    if protect:
        lines.append("     protect: " + ", ".join(protect))
    lines.append(
        f"     guards: min_keep {policy.min_keep}, max_delete_fraction "
        f"{policy.max_delete_fraction}, stale_after {policy.stale_after or 'null (off)'}"
    )
    lines.append(f"     orphans: {policy.orphans}")
    return lines


def _span(span: timedelta | None) -> str:
    """A timedelta in the config's units: 90 s -> 1min30s."""
    if span is None:
        return "none"
    seconds, parts = span.total_seconds(), []
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        whole, seconds = divmod(seconds, size)
        if whole:
            parts.append(f"{whole:.0f}{unit}")
    if seconds or not parts:
        parts.append(f"{seconds:g}s")
    return "".join(parts)
