"""The reference pages in docs/ stay true to the code: a config key, a reason rule, an exit code or
a metric added without its entry fails here, and so does a relative link that leads nowhere."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = ("configuration.md",)


def page(name: str) -> str:
    return (DOCS / name).read_text(encoding="utf-8")


def key_paths(prefix: str, value: object) -> Iterator[str]:
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from key_paths(f"{prefix}.{key}", item)


def config_keys() -> list[str]:
    """Every key config.example.yaml sets: `api.timeout` ...; policy keys as `match.hostnames`."""
    example = yaml.safe_load((ROOT / "config.example.yaml").read_text(encoding="utf-8"))
    keys = {path for key, value in example.items() for path in key_paths(key, value)}
    for policy in example["policies"]:
        keys |= {path for key, value in policy.items() for path in key_paths(key, value)}
    return sorted(keys)


@pytest.mark.parametrize("key", config_keys())
def test_every_config_key_has_its_entry(key: str) -> None:
    assert f"`{key}`" in page("configuration.md"), f"docs/configuration.md lacks `{key}`"


@pytest.mark.parametrize("name", list(PAGES))
def test_pages_stand_on_their_own(name: str) -> None:
    """The pages are the reference: they never send a reader to a document outside the repo."""
    assert not re.search(r"SPEC|§|\.\./shared", page(name))
