"""docs/config.schema.json and docs/plan.schema.json: written from the code (tools/schemas.py),
and true to what pruner reads and writes."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import jsonschema
import pytest

from pruner.config import _yaml
from pruner.config.load import parse_config
from pruner.engine.models import Listing, Server
from pruner.engine.planner import build_plan
from pruner.engine.reasons import texts
from pruner.engine.review import Review, Reviewed, ReviewedPlan
from pruner.engine.scope import Scope
from pruner.engine.two_phase import TwoPhase
from pruner.engine.units import parse_duration
from pruner.report.plan_json import PlanOrigin, plan_to_json
from tests._factories import NOW, backup, daily, listing, policy

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "config.example.yaml"


def _tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("schemas", ROOT / "tools" / "schemas.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _schema(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((ROOT / "docs" / name).read_text(encoding="utf-8"))
    return loaded


def _validator(name: str) -> Callable[[object], None]:
    schema = _schema(name)
    jsonschema.Draft202012Validator.check_schema(schema)
    checker = jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    return checker.validate


def test_the_schemas_in_docs_are_what_the_code_defines() -> None:
    tool = _tool()

    stale = [path.name for path in tool.stale()]

    assert stale == [], f"stale: run {tool.COMMAND}"


# --- the config ---------------------------------------------------------------------------------


def test_config_example_is_valid_by_the_config_schema() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    assert text.startswith("# yaml-language-server: $schema=docs/config.schema.json\n")

    _validator("config.schema.json")(_yaml.load(text).data)


MINIMAL = "policies:\n  - name: default\n    keep_daily: 7\n"


@pytest.mark.parametrize(
    "text",
    [
        MINIMAL,
        "api:\nsafety:\n" + MINIMAL,  # an empty section is its defaults
        "safety:\n  max_deletions_per_run: null\n  stale_after: 1y6mo\n" + MINIMAL,
        'metrics:\n  listen: "[::1]:0"\n  textfile: /tmp/pruner.prom\n' + MINIMAL,
        "schedule:\n  interval: 6h\n  jitter: 90min\n" + MINIMAL,
        "policies:\n  - name: p\n    max_total_size: 2TB\n    stale_after: null\n",
        "policies:\n  - name: p\n    max_total_size: 500\n    keep_yearly: -1\n",
    ],
)
def test_configs_pruner_accepts_are_valid_by_the_schema(text: str) -> None:
    parse_config(text)

    _validator("config.schema.json")(_yaml.load(text).data)


@pytest.mark.parametrize(
    "text",
    [
        "policies: []\n",
        "dry_run: 1\n" + MINIMAL,
        "api:\n  concurrency: 33\n" + MINIMAL,
        "api:\n  timeout: 1mo\n" + MINIMAL,
        "api:\n  tiemout: 5s\n" + MINIMAL,
        "safety:\n  max_delete_fraction: 0\n" + MINIMAL,
        "metrics:\n  textfile: /tmp/pruner.txt\n" + MINIMAL,
        "policies:\n  - name: p\n    keep_daily: -2\n",
        "policies:\n  - name: p\n    keep_daily: 7\n    keep_within: 5\n",
        "policies:\n  - name: p\n    keep_daily: 7\n    orphans: delete\n",
        "policies:\n  - name: p\n    keep_daily: null\n",
    ],
)
def test_configs_pruner_refuses_are_invalid_by_the_schema(text: str) -> None:
    with pytest.raises(jsonschema.ValidationError):
        _validator("config.schema.json")(_yaml.load(text).data)


# --- the plan -----------------------------------------------------------------------------------


def test_a_plan_with_every_kind_of_group_and_reason_is_valid_by_the_plan_schema() -> None:
    servers = [
        Server(2478, hostname="ubuntu-2gb"),
        Server(7, hostname="db-01", locked=True),
        Server(8, hostname="web-01"),
    ]
    backups = [
        *daily(12, 2478),
        *daily(4, 7, first_id=100),
        *daily(4, 8, first_id=200),
        *daily(3, 9, first_id=300),  # an orphan
        backup(400, 8, NOW, resource="snapshots"),  # no snapshots policy: unmanaged
    ]
    policies = [
        policy(
            "all",
            keep_last=2,
            keep_daily=3,
            keep_weekly=-1,
            keep_within="2d",
            keep_within_daily="5d",
            max_age="10d",
            protect_ids=frozenset({5}),
            min_keep=3,
        )
    ]
    plan = build_plan(
        listing(backups, servers),
        policies,
        now=NOW,
        generated_at=NOW,
        zone=None,
        max_deletions_per_run=None,
        dry_run=True,
        allow_large_deletions=True,
    )
    statuses = {group.status for group in plan.groups}
    assert statuses == {"ok", "skipped", "orphan", "unmanaged"}

    _validator("plan.schema.json")(plan_to_json(plan))


def test_the_plan_of_an_apply_is_valid_by_the_plan_schema() -> None:
    backups = daily(6)
    seen = [Reviewed(b.resource, b.id, b.server_id, b.name, b.created_at, b.size) for b in backups]
    reviewed = ReviewedPlan("plan.json", NOW, None, None, (seen[0], seen[4]))
    review = Review(reviewed, max_age=parse_duration("24h"), force=True)
    plan = build_plan(
        listing(backups),
        [policy("all", keep_last=2, min_keep=0)],
        now=NOW,
        generated_at=NOW,
        zone=None,
        max_deletions_per_run=None,
        dry_run=False,
        revise=review.revise,
    )
    reasons = {reason for d in plan.decisions for reason in texts(d.reasons)}
    assert {"forced", "unreviewed"} <= reasons

    _validator("plan.schema.json")(plan_to_json(plan))


def test_an_empty_plan_is_valid_by_the_plan_schema() -> None:
    plan = build_plan(
        Listing(backups=(), servers=None, resources=frozenset({"backups"})),
        [policy("all", keep_last=1)],
        now=NOW,
        generated_at=NOW,
        zone=None,
        max_deletions_per_run=100,
        dry_run=False,
    )

    _validator("plan.schema.json")(plan_to_json(plan))


def test_a_scoped_plan_with_pending_deletions_is_valid_by_the_plan_schema() -> None:
    plan = build_plan(
        listing(daily(6), [Server(2478, hostname="ubuntu-2gb")]),
        [policy("all", keep_last=2)],
        now=NOW,
        generated_at=NOW,
        zone=None,
        max_deletions_per_run=None,
        dry_run=False,
        allow_large_deletions=True,
        two_phase=TwoPhase(timedelta(hours=12), {("backups", 6): NOW - timedelta(days=1)}),
        scope=Scope(("ubuntu-*",), "all"),
    )
    document = plan_to_json(plan)
    assert (document["summary"]["pending"], document["summary"]["deleted"]) == (3, 1)

    _validator("plan.schema.json")(document)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("schema",), "pruner.plan/v2"),
        (("decisions", 0, "reasons"), ["keep_daily 2026-11-26"]),
        (("decisions", 0, "action"), "remove"),
        (("groups", 0, "status"), "done"),
        (("summary",), {"kept": 1}),
        (("summary", "pending"), -1),
        (("scope",), {"servers": "db-*", "policy": None}),
        (("config_sha256",), "c0ffee"),
        (("api_base_url",), None),
    ],
)
def test_a_plan_that_breaks_the_contract_is_invalid(
    path: tuple[str | int, ...], value: object
) -> None:
    plan = build_plan(
        listing(daily(3)),
        [policy("all", keep_last=1)],
        now=NOW,
        generated_at=NOW,
        zone=None,
        max_deletions_per_run=None,
        dry_run=True,
        allow_large_deletions=True,
    )
    document = plan_to_json(plan, origin=PlanOrigin("0" * 64, "https://api.vpsbg.eu/v1"))
    _validator("plan.schema.json")(document)
    target: Any = document
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value

    with pytest.raises(jsonschema.ValidationError):
        _validator("plan.schema.json")(document)
