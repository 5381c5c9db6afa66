"""The config's fingerprint in every plan (`config_sha256`): equal for configs that decide and
reach the API alike, different as soon as a setting differs; never a secret in what is hashed."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from pruner.config.digest import config_sha256, hashed_config
from pruner.config.load import load_config, parse_config

EXAMPLE = Path(__file__).resolve().parents[2] / "config.example.yaml"

BASE = """\
api:
  base_url: https://api.vpsbg.eu/v1
safety:
  stale_after: 14d
policies:
  - name: databases
    match: {hostnames: ["db-*"]}
    keep_daily: 7
    keep_within: 2d
  - name: everything-else
    keep_weekly: 4
"""


def digest(text: str) -> str:
    return config_sha256(parse_config(text))


def test_config_sha256_is_a_sha256_in_hex_and_the_same_for_the_same_config() -> None:
    first, second = digest(BASE), digest(BASE)

    assert re.fullmatch(r"[0-9a-f]{64}", first)
    assert first == second


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("stale_after: 14d", "stale_after: 2w"),  # the same duration, written otherwise
        ("keep_within: 2d", "keep_within: 48h"),
        ("api:\n  base_url: https://api.vpsbg.eu/v1\n", ""),  # the default, spelled out or not
        ("base_url: https://api.vpsbg.eu/v1", "base_url: https://api.vpsbg.eu/v1/"),
    ],
)
def test_config_sha256_hashes_what_the_config_means_not_how_it_is_written(
    old: str, new: str
) -> None:
    assert old in BASE
    assert digest(BASE.replace(old, new)) == digest(BASE)


@pytest.mark.parametrize(
    "added",
    [
        "dry_run: false\n",
        "notify:\n  urls: [https://hc-ping.com/5e1c0a1b-secret]\n",
        "notify:\n  webhooks: [https://hooks.example.com/T0/B0/secret]\n",
    ],
)
def test_config_sha256_leaves_out_secrets_and_dry_run(added: str) -> None:
    assert digest(added + BASE) == digest(BASE)


@pytest.mark.parametrize(
    "token", ["  token_env: OTHER_TOKEN\n", "  token_file: /run/credentials/token\n"]
)
def test_config_sha256_leaves_out_where_the_token_is(token: str) -> None:
    moved = BASE.replace("api:\n", "api:\n" + token)

    assert digest(moved) == digest(BASE)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("keep_daily: 7", "keep_daily: 8"),
        ('hostnames: ["db-*"]', 'hostnames: ["pg-*"]'),
        ("stale_after: 14d", "stale_after: 15d"),
        ("stale_after: 14d", "max_delete_fraction: 0.4\n  stale_after: 14d"),
        ("base_url: https://api.vpsbg.eu/v1", "base_url: https://api.example.com/v1"),
        ("policies:", "timezone: Europe/Sofia\npolicies:"),
        ("  - name: everything-else", "  - name: everything"),
    ],
)
def test_config_sha256_changes_with_any_setting_that_changes(old: str, new: str) -> None:
    assert old in BASE
    assert digest(BASE.replace(old, new)) != digest(BASE)


def test_config_sha256_changes_when_the_policies_change_order() -> None:
    first = "  - name: a\n    match: {server_ids: [1]}\n    keep_daily: 7\n"
    second = "  - name: b\n    match: {hostnames: [db-*]}\n    keep_daily: 9\n"

    assert digest(f"policies:\n{first}{second}") != digest(f"policies:\n{second}{first}")


def test_hashed_config_is_json_without_token_settings_or_urls() -> None:
    config = load_config(EXAMPLE)

    document = hashed_config(config)
    text = json.dumps(document, sort_keys=True)

    assert set(document["api"]) == {
        "base_url",
        "timeout",
        "retries",
        "backoff",
        "concurrency",
        "max_pages",
        "paths",
    }
    assert "dry_run" not in document
    assert set(document["notify"]) == {"on_dry_run", "timeout"}
    assert "source" not in document
    assert "warnings" not in document
    assert [policy["name"] for policy in document["policies"]] == [
        policy.name for policy in config.policies
    ]
    assert "VPSBG_API_TOKEN" not in text
