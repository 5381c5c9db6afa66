"""A plan file read back, for `pruner apply`: the plan JSON that `plan --format json` (or a pass,
as last-plan.json) wrote, reduced to what apply needs.

Only a whole, well-formed plan is taken: a file that is not JSON (truncated), not a plan (another
schema), or has a field apply needs that is missing or of the wrong type is bad input, refused
with exit 2 like a bad config, naming the file and the field. Fields apply does not need are not
checked (a plan may gain fields); every decision must still be a `keep` or a `delete`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from pruner.engine.models import Resource
from pruner.engine.review import Reviewed, ReviewedPlan
from pruner.errors import UserError
from pruner.report.plan_json import SCHEMA

__all__ = ["PlanFileError", "read_plan_file"]

_REMAKE = "give the file that `pruner plan --format json > FILE` wrote, or write it again"
_RESOURCES: tuple[Resource, ...] = ("backups", "snapshots")
_SHA256 = re.compile(r"[0-9a-f]{64}")


class PlanFileError(UserError):
    """A plan file apply cannot use: bad input, exit 2."""


class _Wrong(Exception):
    """A field of the plan that is missing or of the wrong type: `where: what`."""


def read_plan_file(path: Path) -> ReviewedPlan:
    """The plan at `path`, or PlanFileError saying what is wrong with it and where."""
    document = _load(path)
    if not isinstance(document, dict) or "schema" not in document:
        raise PlanFileError(f"{path}: not a pruner plan (no schema field): {_REMAKE}")
    if document["schema"] != SCHEMA:
        raise PlanFileError(
            f"{path}: not a pruner plan: its schema is {document['schema']!r}, not {SCHEMA!r}: "
            f"{_REMAKE}"
        )
    try:
        return _plan(document, str(path))
    except _Wrong as wrong:
        raise PlanFileError(f"{path}: not a usable plan: {wrong}: {_REMAKE}") from None


def _load(path: Path) -> object:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PlanFileError(f"{path}: no such file: {_REMAKE}") from None
    except UnicodeDecodeError as error:
        raise PlanFileError(f"{path}: not UTF-8 text (byte {error.start}): {_REMAKE}") from None
    except OSError as error:
        raise PlanFileError(f"{path}: cannot read it: {error.strerror or error}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise PlanFileError(
            f"{path}: not valid JSON ({error.msg}: line {error.lineno}, column {error.colno}; "
            f"a file cut short, or edited by hand?): {_REMAKE}"
        ) from None


def _plan(document: Mapping[str, Any], source: str) -> ReviewedPlan:
    decisions = document.get("decisions")
    if not isinstance(decisions, list):
        raise _Wrong(f"decisions: {_expected('a list', decisions)}")
    deletions: dict[tuple[Resource, int], Reviewed] = {}
    for index, entry in enumerate(decisions):
        reviewed = _deletion(entry, f"decisions[{index}]")
        if reviewed is None:
            continue
        if reviewed.key in deletions:
            raise _Wrong(
                f"decisions[{index}]: it deletes {reviewed.resource} id {reviewed.id} twice"
            )
        deletions[reviewed.key] = reviewed
    return ReviewedPlan(
        source=source,
        generated_at=_time(document.get("generated_at"), "generated_at"),
        config_sha256=_optional(document, "config_sha256", _is_sha256, "a sha256 in hex"),
        api_base_url=_optional(document, "api_base_url", _is_url, "an http(s) URL"),
        deletions=tuple(deletions.values()),
    )


def _deletion(entry: object, where: str) -> Reviewed | None:
    """The backup a `delete` decision names; None for a `keep`."""
    if not isinstance(entry, dict):
        raise _Wrong(f"{where}: {_expected('an object', entry)}")
    action = entry.get("action")
    if action == "keep":
        return None
    if action != "delete":
        raise _Wrong(f"{where}.action: {_expected('keep or delete', action)}")
    resource = entry.get("resource")
    if resource not in _RESOURCES:
        raise _Wrong(f"{where}.resource: {_expected('backups or snapshots', resource)}")
    return Reviewed(
        resource=resource,
        id=_integer(entry, "id", where),
        server_id=_integer(entry, "server_id", where),
        name=_text_or_null(entry, "name", where),
        created_at=_time(entry.get("created_at"), f"{where}.created_at"),
        size=_integer_or_null(entry, "size", where),
    )


def _integer(entry: Mapping[str, Any], key: str, where: str) -> int:
    value = entry.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Wrong(f"{where}.{key}: {_expected('an integer', value)}")
    return value


def _integer_or_null(entry: Mapping[str, Any], key: str, where: str) -> int | None:
    return None if entry.get(key) is None else _integer(entry, key, where)


def _text_or_null(entry: Mapping[str, Any], key: str, where: str) -> str | None:
    value = entry.get(key)
    if value is not None and not isinstance(value, str):
        raise _Wrong(f"{where}.{key}: {_expected('text or null', value)}")
    return value


def _time(value: object, where: str) -> datetime:
    """An RFC 3339 time with its UTC offset, as every plan writes them."""
    moment = None
    if isinstance(value, str) and "T" in value:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            moment = None
    if moment is None or moment.tzinfo is None:
        raise _Wrong(f"{where}: {_expected('an RFC 3339 time with its UTC offset', value)}")
    return moment


def _optional(document: Mapping[str, Any], key: str, valid: Any, what: str) -> str | None:
    """A field plans of older versions lack: None when absent."""
    value = document.get(key)
    if value is None and key not in document:
        return None
    if not isinstance(value, str) or not valid(value):
        raise _Wrong(f"{key}: {_expected(what, value)}")
    return value


def _is_sha256(text: str) -> bool:
    return _SHA256.fullmatch(text) is not None


def _is_url(text: str) -> bool:
    return text.startswith(("http://", "https://"))


def _expected(what: str, value: object) -> str:
    shown = json.dumps(value) if not isinstance(value, dict | list) else type(value).__name__
    if len(shown) > 40:
        shown = shown[:37] + "..."
    return f"must be {what}, not {shown if value is not None else 'null or missing'}"
