from __future__ import annotations

from textwrap import dedent

from pruner.config.diff import changed_keys
from pruner.config.load import parse_config
from pruner.config.schema import Config

BASE = """\
api:
  timeout: 30s
schedule:
  cron: "30 3 * * *"
notify:
  urls: [https://hc-ping.com/secret-uuid-1]
policies:
  - name: databases
    match: {hostnames: ["db-*"]}
    keep_daily: 7
  - name: everything
    keep_daily: 3
"""


def config(text: str = BASE) -> Config:
    return parse_config(dedent(text))


def test_changed_keys_of_the_same_config_is_empty() -> None:
    assert changed_keys(config(), config()) == ()


def test_changed_keys_names_settings_by_their_key_paths() -> None:
    new = config(BASE.replace("timeout: 30s", "timeout: 10s").replace("30 3", "0 4"))

    assert changed_keys(config(), new) == ("api.timeout", "schedule.cron")


def test_changed_keys_names_a_policy_key_by_its_index_and_file_key() -> None:
    new = config(BASE.replace("keep_daily: 3", "keep_daily: 5").replace('"db-*"', '"pg-*"'))

    assert changed_keys(config(), new) == ("policies[0].match.hostnames", "policies[1].keep_daily")


def test_changed_keys_names_a_policy_added_or_removed_whole() -> None:
    more = config(BASE + "  - name: snapshots\n    resource: snapshots\n    keep_last: 2\n")

    assert changed_keys(config(), more) == ("policies[2]",)
    assert changed_keys(more, config()) == ("policies[2]",)


def test_changed_keys_names_a_section_that_appears_or_goes_whole() -> None:
    without = config(BASE.replace('schedule:\n  cron: "30 3 * * *"\n', ""))

    assert changed_keys(config(), without) == ("schedule",)


def test_changed_keys_shows_no_value_only_the_key() -> None:
    new = config(BASE.replace("secret-uuid-1", "secret-uuid-2"))

    assert changed_keys(config(), new) == ("notify.urls",)


def test_changed_keys_a_safety_default_names_the_policies_that_inherit_it() -> None:
    new = config(BASE + "safety: {min_keep: 2}\n")

    assert changed_keys(config(), new) == (
        "safety.min_keep",
        "policies[0].min_keep",
        "policies[1].min_keep",
    )
