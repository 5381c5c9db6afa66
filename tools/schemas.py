"""Write the machine-readable schemas in docs/ (config.schema.json, plan.schema.json) from the
code that defines them.

    .venv/bin/python tools/schemas.py           # rewrite both files
    .venv/bin/python tools/schemas.py --check   # exit 1 when either is stale

The config file's schema comes from its pydantic models (pruner.config.schema), the plan's from
pruner.report.plan_schema; a test fails when the files in docs/ differ from what this writes.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from pruner.config.schema import config_json_schema
from pruner.report.plan_schema import PLAN_SCHEMA

DOCS = Path(__file__).resolve().parents[1] / "docs"
COMMAND = ".venv/bin/python tools/schemas.py"


def schemas() -> dict[Path, str]:
    """Each schema file in docs/ and the text it should hold."""
    return {
        DOCS / "config.schema.json": _text(config_json_schema()),
        DOCS / "plan.schema.json": _text(PLAN_SCHEMA),
    }


def stale() -> list[Path]:
    """The schema files whose text is not what the code defines."""
    return [
        path
        for path, text in schemas().items()
        if not path.is_file() or path.read_text(encoding="utf-8") != text
    ]


def _text(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="only say which files are stale")
    if parser.parse_args().check:
        outdated = stale()
        for path in outdated:
            print(f"{path} is stale: run {COMMAND}", file=sys.stderr)
        return 1 if outdated else 0
    for path, text in schemas().items():
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
