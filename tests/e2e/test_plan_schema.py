"""What the CLI writes is valid by docs/plan.schema.json: `plan --format json` on stdout, and
the last-plan.json of a real pass, with each deletion's outcome and the execution block."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from .conftest import E2E

pytestmark = pytest.mark.usefixtures("no_token_leaks")

SCHEMA = json.loads(
    (Path(__file__).resolve().parents[2] / "docs" / "plan.schema.json").read_text("utf-8")
)


def test_plan_json_and_the_last_plan_of_a_pass_are_valid_by_the_plan_schema(e2e: E2E) -> None:
    config = e2e.config()
    shown = e2e.cli("--config", config, "plan", "--format", "json")
    ran = e2e.cli("--config", config, "run")

    assert (shown.returncode, ran.returncode) == (0, 0), shown.stderr + ran.stderr
    last = json.loads((e2e.state_dir / "last-plan.json").read_text("utf-8"))
    assert "execution" in last
    assert any("outcome" in decision for decision in last["decisions"])
    for document in (json.loads(shown.stdout), last):
        jsonschema.validate(document, SCHEMA, cls=jsonschema.Draft202012Validator)
