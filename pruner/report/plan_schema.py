"""The JSON Schema of the plan JSON (docs/plan.schema.json), next to the code that writes it.

It checks what `pruner plan --format json` and state_dir/last-plan.json write: every field
docs/plan-json.md documents, with its type, and the reasons in their documented forms. Fields
may be added (a plan of a later version is still valid), none removed.
"""

from __future__ import annotations

from typing import Any

from pruner.engine.models import COUNT_RULES, WITHIN_RULES
from pruner.report.plan_json import SCHEMA

__all__ = ["PLAN_SCHEMA"]

_BUCKET = r"[0-9]{4}(?:-W[0-9]{2}|-[0-9]{2}(?:-[0-9]{2}(?:T[0-9]{2})?)?)?"
_REASON = "|".join(
    (
        "keep_all|not_selected|unmanaged|orphan|unreviewed|forced",
        "keep_last:[1-9][0-9]*",
        f"(?:{'|'.join(COUNT_RULES[1:])}):{_BUCKET}(?::oldest)?",
        "keep_within:.+",
        f"(?:{'|'.join(WITHIN_RULES[1:])}):{_BUCKET}",
        "protected:.+",
        "min_keep:[0-9]+",
        "max_age:.+|max_total_size:.+",
        "skipped:(?:incomplete|locked|stale|max_delete_fraction|max_deletions_per_run)",
        "pending:.+",
    )
)

_RESOURCE = {"enum": ["backups", "snapshots"]}
_TIME = {"type": "string", "format": "date-time"}
_COUNT = {"type": "integer", "minimum": 0}
_ID = {"type": "integer", "minimum": 0}
_TEXT_OR_NULL = {"type": ["string", "null"]}


def _object(required: dict[str, Any], optional: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "type": "object",
        "required": list(required),
        "properties": {**required, **(optional or {})},
    }


_DECISION = _object(
    {
        "resource": _RESOURCE,
        "id": _ID,
        "server_id": _ID,
        "server_hostname": _TEXT_OR_NULL,
        "name": _TEXT_OR_NULL,
        "created_at": _TIME,
        "size": {"type": ["integer", "null"]},
        "policy": _TEXT_OR_NULL,
        "action": {"enum": ["keep", "delete"]},
        "reasons": {
            "type": "array",
            "minItems": 1,
            "items": {"type": "string", "pattern": f"^(?:{_REASON})$"},
        },
    },
    {  # last-plan.json of a real pass: what became of each delete decision
        "outcome": {"enum": ["deleted", "already_gone", "locked", "failed", "not_attempted"]},
    },
)

_PENDING = {  # since deletions wait for a confirmation (safety.confirm_after)
    "pending": {**_COUNT, "description": "of the kept: deletions that wait for a confirmation"}
}

_GROUP = _object(
    {
        "resource": _RESOURCE,
        "server_id": _ID,
        "server_hostname": _TEXT_OR_NULL,
        "policy": _TEXT_OR_NULL,
        "status": {"enum": ["ok", "skipped", "unmanaged", "orphan", "incomplete", "failed"]},
        "kept": _COUNT,
        "deleted": _COUNT,
        "size_freed": _COUNT,
        "guard": {
            "enum": [
                None,
                "incomplete",
                "locked",
                "stale",
                "max_delete_fraction",
                "max_deletions_per_run",
            ]
        },
        "blocked_deletions": _COUNT,
        "messages": {"type": "array", "items": {"type": "string"}},
    },
    _PENDING,
)

_PROBLEM = _object(
    {
        "level": {"enum": ["error", "warning"]},
        "message": {"type": "string"},
        "resource": {"enum": [None, "backups", "snapshots"]},
        "server_id": {"type": ["integer", "null"]},
        "backup_id": {"type": ["integer", "null"]},
        "field": _TEXT_OR_NULL,
    }
)

_SCOPE = {
    "description": "null: every server was planned; else only these (--server, --policy)",
    "oneOf": [
        {"type": "null"},
        _object(
            {
                "servers": {"type": "array", "items": {"type": "string"}},
                "policy": _TEXT_OR_NULL,
            }
        ),
    ],
}

_EXECUTION = _object(
    {
        "deleted": _COUNT,
        "already_gone": _COUNT,
        "locked": _COUNT,
        "failed": _COUNT,
        "not_attempted": _COUNT,
        "size_freed": _COUNT,
        "interrupted": {"type": "boolean"},
        "fatal": _TEXT_OR_NULL,
    }
)

PLAN_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "pruner plan",
    "description": "What a pass keeps and deletes, and why: `pruner plan --format json` and "
    "state_dir/last-plan.json (which adds run_id, and for a real pass each deletion's outcome "
    "and an execution block).",
    **_object(
        {
            "schema": {"const": SCHEMA},
            "generated_at": _TIME,
            "now": _TIME,
            "dry_run": {"type": "boolean"},
            "decisions": {"type": "array", "items": _DECISION},
            "groups": {"type": "array", "items": _GROUP},
            "summary": _object(
                {"kept": _COUNT, "deleted": _COUNT, "skipped_groups": _COUNT, "size_freed": _COUNT},
                _PENDING,
            ),
            "problems": {"type": "array", "items": _PROBLEM},
        },
        {
            # pruner.config.digest: the config the plan was made under, for `pruner apply`
            "config_sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
            "api_base_url": {"type": "string", "pattern": "^https?://"},
            "run_id": {"type": "string"},
            "execution": _EXECUTION,
            "scope": _SCOPE,
        },
    ),
}
