"""Reading a config file: YAML text -> a validated, resolved, frozen Config.

A small pipeline: read the text strictly (`_yaml`), validate it with the schema (`schema`),
check what spans keys (catch-all order, unique names), then resolve the policies into the
engine's, with safety's defaults applied. Every problem is collected and reported as
`file:line: key.path: message`, and the config keys, defaults and checks are the schema's.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sized
from contextlib import suppress
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar, get_args

from pydantic import BaseModel, ValidationError

from pruner.config import _yaml
from pruner.config.schema import (
    Config,
    ConfigFile,
    PolicySpec,
    SafetySettings,
    Settings,
    shown,
)
from pruner.engine.models import COUNT_RULES, WITHIN_RULES, Policy, Resource
from pruner.engine.units import Duration

__all__ = ["ConfigError", "beyond_automatic_history", "load_config", "parse_config"]

_Model = TypeVar("_Model", bound=BaseModel)

# VPSBG's automatic-backups addon makes one backup a week and deletes it after three weeks.
_AUTOMATIC_BACKUPS_KEPT = 3
_AUTOMATIC_BACKUPS_HISTORY = timedelta(weeks=3)


class ConfigError(Exception):
    """The config cannot be used; `.problems` has one line per problem, `file:line: path: what`."""

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(self.problems))


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
    file = _validate(ConfigFile, document.data, (), problems)
    # Duplicate names and hidden policies are checked whatever else is wrong, among the
    # policies that are valid, so that every problem shows at once.
    problems.extend(_cross_check(_valid_policies(document.data.get("policies"), file)))
    if problems or refused or file is None:
        # A value the YAML reader refused fails validation too: say it once, the reader's way.
        found = [(p.line or 0, p.path, p.message) for p in refused]
        found += [
            (document.line_of(path), path, message)
            for path, message in problems
            if not any(path[: len(p.path)] == p.path for p in refused)
        ]
        found.sort(key=lambda problem: problem[0])
        raise ConfigError(_format(source, line, path, message) for line, path, message in found)
    return _resolve(source, file)


def _valid_policies(items: object, file: ConfigFile | None) -> list[tuple[int, PolicySpec]]:
    """The policies that are valid, with their positions in the file."""
    if file is not None:
        return list(enumerate(file.policies))
    valid = []
    for index, item in enumerate(items if isinstance(items, list) else []):
        with suppress(ValidationError):  # its problems are among the file's
            valid.append((index, PolicySpec.model_validate(item)))
    return valid


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
        return f"must be a mapping (indented `key: value` lines), not {shown(given)}"
    if kind in ("list_type", "tuple_type"):
        return f"must be a list, such as [a, b], not {shown(given)}"
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


def _cross_check(policies: list[tuple[int, PolicySpec]]) -> list[tuple[_yaml.KeyPath, str]]:
    """What no single policy shows: duplicate names, and policies a catch-all hides."""
    problems: list[tuple[_yaml.KeyPath, str]] = []
    first_named: dict[str, int] = {}
    catch_all: dict[Resource, tuple[int, PolicySpec]] = {}
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

# Keys a policy has as written: the rest (the guards) fall back on safety's.
_AS_WRITTEN = (
    "name",
    "resource",
    *COUNT_RULES,
    *WITHIN_RULES,
    "max_age",
    "max_total_size",
    "orphans",
)


def _resolve(source: str, file: ConfigFile) -> Config:
    policies = tuple(_resolve_policy(policy, file.safety) for policy in file.policies)
    settings = {key: getattr(file, key) for key in Settings.model_fields}
    acknowledged = {spec.name: frozenset(spec.acknowledge) for spec in file.policies}
    warnings = tuple(_warnings(policies, acknowledged))
    return Config.model_construct(**settings, source=source, policies=policies, warnings=warnings)


def _resolve_policy(spec: PolicySpec, safety: SafetySettings) -> Policy:
    if "stale_after" in spec.model_fields_set:
        stale_after = spec.stale_after
    else:  # snapshots are made by hand: a pause in them is not a sign of trouble
        stale_after = safety.stale_after if spec.resource == "backups" else None
    match, protect = spec.match, spec.protect
    return Policy(
        **{key: getattr(spec, key) for key in _AS_WRITTEN},
        hostnames=tuple(match.hostnames) if match and match.hostnames else None,
        server_ids=frozenset(match.server_ids) if match and match.server_ids else None,
        min_keep=safety.min_keep if spec.min_keep is None else spec.min_keep,
        max_delete_fraction=(
            safety.max_delete_fraction
            if spec.max_delete_fraction is None
            else spec.max_delete_fraction
        ),
        stale_after=stale_after,
        protect_ids=frozenset(protect.ids or ()) if protect else frozenset(),
        protect_names=tuple(protect.names or ()) if protect else (),
    )


def _warnings(policies: Iterable[Policy], acknowledged: Mapping[str, frozenset[str]]) -> list[str]:
    """What is valid but probably not meant, each kind said once (naming every policy it
    concerns), leaving out what a policy acknowledged."""
    per_policy: list[str] = []
    floorless: list[str] = []
    unmet: list[tuple[str, list[str]]] = []  # (policy, the rules it cannot meet)
    for policy in policies:
        silent = acknowledged.get(policy.name, frozenset())
        keep = {rule: getattr(policy, rule) for rule in COUNT_RULES + WITHIN_RULES}
        keep = {rule: value for rule, value in keep.items() if value is not None}
        if keep and all(value == 0 for value in keep.values()):
            if "keep_rules_select_nothing" not in silent:
                shown = ", ".join(f"{rule} {value}" for rule, value in keep.items())
                per_policy.append(_keeps_only_the_floor(policy, shown))
        elif policy.min_keep == 0 and "min_keep_zero" not in silent:
            floorless.append(repr(policy.name))
        beyond = _beyond_automatic_backups(policy)
        if beyond and "automatic_backup_history" not in silent:
            unmet.append((policy.name, beyond))
    warnings = per_policy
    if floorless:
        warnings.append(
            f"{_policies(floorless)}: min_keep is 0, so {_its(floorless)} rules and limits may "
            "delete every unprotected backup of a server, even the newest; "
            f"{_acknowledge('min_keep_zero', floorless)}"
        )
    if unmet:
        if len(unmet) == 1:  # `policy 'db': keep_daily 7 ask for more`
            ((name, rules),) = unmet
            what = f"policy {name!r}: {', '.join(rules)}"
        else:
            what = _policies([f"{name!r} ({', '.join(rules)})" for name, rules in unmet])
        warnings.append(
            f"{what} ask for more history than VPSBG's automatic backups have (one a week, "
            "deleted by VPSBG after 3 weeks): for those backups this cannot be met; if that is "
            "understood (or the servers' backups are not automatic), "
            f"{_acknowledge('automatic_backup_history', unmet)}"
        )
    return warnings


def _policies(names: list[str]) -> str:
    """`policy 'a'`, `policies 'a' and 'b'`, `policies 'a', 'b' and 'c'`."""
    if len(names) == 1:
        return f"policy {names[0]}"
    return f"policies {', '.join(names[:-1])} and {names[-1]}"


def _its(names: list[str]) -> str:
    return "its" if len(names) == 1 else "their"


def _acknowledge(warning: str, policies: Sized) -> str:
    whom = "the policy" if len(policies) == 1 else "each of these policies"
    return f"add `acknowledge: [{warning}]` to {whom}"


def _keeps_only_the_floor(policy: Policy, rules: str) -> str:
    """The warning for a policy whose keep rules are all counts of 0 (`keep_last: 0` alone):
    valid, and restic's meaning, but it keeps nothing beyond min_keep."""
    label = policy.resource.removesuffix("s")
    if policy.min_keep == 0:
        return (
            f"policy {policy.name!r}: its keep rules select nothing ({rules}) and min_keep is 0, "
            f"so it deletes every unprotected {label} of every server it matches; if that is "
            f"meant, {_acknowledge('keep_rules_select_nothing', [policy.name])}"
        )
    floor = f"{policy.min_keep} {policy.resource}" if policy.min_keep > 1 else label
    return (
        f"policy {policy.name!r}: its keep rules select nothing ({rules}), so it keeps only "
        f"the newest {floor} of each server (and protected ones) and deletes the rest: if that "
        "is not meant, give it a keep rule that selects something; if it is, "
        f"{_acknowledge('keep_rules_select_nothing', [policy.name])}"
    )


def beyond_automatic_history(span: Duration) -> bool:
    """More history than VPSBG keeps of its automatic backups (3 weeks)."""
    return span.months > 0 or span.seconds > _AUTOMATIC_BACKUPS_HISTORY.total_seconds()


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
        if duration is not None and beyond_automatic_history(duration):
            unmet.append(f"{rule} {duration}")
    return unmet
