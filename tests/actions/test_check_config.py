"""`describe_config`: the resolved config in words, as `pruner check-config` prints it."""

from __future__ import annotations

from pathlib import Path

from pruner.actions.check_config import describe_config
from pruner.config.load import load_config, parse_config

EXAMPLE = Path(__file__).resolve().parents[2] / "config.example.yaml"

MINIMAL = """\
policies:
  - name: default
    keep_daily: 7
"""


def test_describe_config_lists_each_policy_in_order() -> None:
    config = load_config(EXAMPLE)

    text = describe_config(config)

    positions = [text.index(f". {policy.name} (") for policy in config.policies]
    assert positions == sorted(positions)
    assert "hostname db-*" in text
    assert "keep_daily 7" in text
    assert "name *pre-upgrade*" in text
    assert 'cron "30 3 * * *" in UTC, jitter up to 10min' in text
    assert "dry_run: true" in text
    for warning in config.warnings:
        assert warning in text


def test_describe_config_of_minimal_config() -> None:
    text = describe_config(parse_config(MINIMAL))

    assert "schedule: none" in text
    assert "1. default (backups)" in text
    assert "match: every server" in text


def test_describe_config_says_when_there_is_no_metrics_endpoint() -> None:
    config = parse_config("metrics:\n  listen: null\n" + MINIMAL)

    assert "metrics: no HTTP endpoint" in describe_config(config)


def test_describe_config_shows_ping_hosts_but_not_ping_urls() -> None:
    config = parse_config("notify:\n  urls: [https://hc.example/secret-uuid]\n" + MINIMAL)

    text = describe_config(config)

    assert "notify: 1 ping URL(s) at hc.example" in text
    assert "secret-uuid" not in text
