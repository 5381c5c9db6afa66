"""What differs between two configs, named by the key paths a config file writes.

For the daemon's `config.reloaded` event: `schedule.cron`, `policies[1].keep_daily`. Only the
paths, never the values: some values are credentials of a sort (a ping URL is as good as a
password for its check). Policies are compared as resolved, so a changed `safety.min_keep`
also names each policy that inherits it: what a pass does changes there too.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import fields

from pydantic import BaseModel

from pruner.config.schema import Config, Settings
from pruner.engine.models import Policy

__all__ = ["changed_keys"]

# The resolved policy's fields that a config file writes under another key.
_POLICY_KEYS = {
    "hostnames": "match.hostnames",
    "server_ids": "match.server_ids",
    "protect_ids": "protect.ids",
    "protect_names": "protect.names",
}


def changed_keys(old: Config, new: Config) -> tuple[str, ...]:
    """The key paths whose values differ, settings first (in the schema's order), then
    policies (by position); a section or policy that one side lacks is named whole."""
    settings = [
        path
        for name in Settings.model_fields
        for path in _differences(name, getattr(old, name), getattr(new, name))
    ]
    return (*settings, *_policy_differences(old.policies, new.policies))


def _differences(path: str, old: object, new: object) -> Iterator[str]:
    if isinstance(old, BaseModel) and type(old) is type(new):
        for name in type(old).model_fields:
            yield from _differences(f"{path}.{name}", getattr(old, name), getattr(new, name))
    elif old != new:
        yield path


def _policy_differences(old: Sequence[Policy], new: Sequence[Policy]) -> Iterator[str]:
    for index in range(max(len(old), len(new))):
        path = f"policies[{index}]"
        if index >= len(old) or index >= len(new):
            yield path
            continue
        for field in fields(Policy):
            if getattr(old[index], field.name) != getattr(new[index], field.name):
                yield f"{path}.{_POLICY_KEYS.get(field.name, field.name)}"
