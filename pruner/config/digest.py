"""The config's fingerprint, `config_sha256`: what every plan records, and `pruner apply` checks.

What is hashed is the resolved config: every setting as validated (defaults filled in), the
policies with safety's defaults applied, in their order; values by what they mean, so `2w` and
`14d` are the same. Left out: where the token is (`api.token_env`, `api.token_file`), the URLs
that may carry secrets (`notify.urls`, `notify.webhooks`), and `dry_run`, which decides whether
anything is deleted, not what: a plan reviewed while `dry_run` is true must still apply once it
is false. A key added later that may hold a secret belongs in `_LEFT_OUT`.

The sha256 is of that document as JSON, keys sorted, no spaces: `hashed_config` shows it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel

from pruner.config.schema import Config
from pruner.engine.units import Duration, Size
from pruner.report.plan_json import PlanOrigin

__all__ = ["config_sha256", "hashed_config", "plan_origin"]

_LEFT_OUT: dict[str, frozenset[str]] = {
    "": frozenset({"dry_run", "source", "warnings"}),
    "api": frozenset({"token_env", "token_file"}),
    "notify": frozenset({"urls", "webhooks"}),
}


def plan_origin(config: Config) -> PlanOrigin:
    """What a plan made under `config` records: its fingerprint and the API's base URL."""
    return PlanOrigin(config_sha256=config_sha256(config), api_base_url=config.api.base_url)


def config_sha256(config: Config) -> str:
    """The sha256, in hex, of `hashed_config(config)` as compact JSON with sorted keys."""
    text = json.dumps(hashed_config(config), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def hashed_config(config: Config) -> dict[str, Any]:
    """What `config_sha256` hashes: the resolved config as JSON values, secrets left out."""
    document = _model(config, "")
    assert isinstance(document, dict)
    return document


def _model(model: BaseModel, path: str) -> dict[str, Any]:
    left_out = _LEFT_OUT.get(path, frozenset())
    return {
        name: _value(getattr(model, name), name if not path else f"{path}.{name}")
        for name in type(model).model_fields
        if name not in left_out
    }


def _value(value: object, path: str) -> Any:
    """A setting as a JSON value that says what it means."""
    if isinstance(value, BaseModel):
        return _model(value, path)
    if isinstance(value, Duration):
        return {"months": value.months, "seconds": _number(value.seconds)}
    if isinstance(value, Size):
        return {"gigabytes": _number(value.gigabytes)}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):  # a resolved Policy
        return {f.name: _value(getattr(value, f.name), path) for f in dataclasses.fields(value)}
    if isinstance(value, timedelta):
        return {"seconds": _number(Decimal(value // timedelta(microseconds=1)) / 1_000_000)}
    if isinstance(value, frozenset):
        return sorted(_value(item, path) for item in value)
    if isinstance(value, tuple | list):
        return [_value(item, path) for item in value]
    if isinstance(value, ZoneInfo):
        return value.key
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Decimal):
        return _number(value)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise TypeError(f"{path}: no JSON form for {type(value).__name__} in the config fingerprint")


def _number(value: Decimal) -> str:
    """A decimal as the shortest exact text: 1209600, 0.01."""
    return format(value.normalize(), "f")
