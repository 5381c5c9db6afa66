"""The schema is the one declaration of every key: what a config without a key gets is its
default there, and the settings pruner runs on are its models."""

from __future__ import annotations

import grimp

from pruner.config.defaults import DEFAULT_STATE_DIR
from pruner.config.load import parse_config
from pruner.config.schema import (
    ApiSettings,
    ConfigFile,
    MetricsSettings,
    NotifySettings,
    SafetySettings,
    Settings,
)

MINIMAL = """\
policies:
  - name: default
    keep_daily: 7
"""


def test_a_config_without_a_section_runs_on_the_sections_declared_defaults() -> None:
    config = parse_config(MINIMAL)

    assert config.api == ApiSettings()
    assert config.safety == SafetySettings()
    assert config.metrics == MetricsSettings()
    assert config.notify == NotifySettings()
    assert (config.dry_run, config.timezone, config.schedule) == (True, None, None)
    assert config.state_dir == DEFAULT_STATE_DIR


def test_a_config_holds_every_setting_the_file_declares() -> None:
    assert set(ConfigFile.model_fields) == {*Settings.model_fields, "policies"}
    config = parse_config("api:\n  max_pages: 7\nsafety:\n  min_keep: 3\n" + MINIMAL)

    assert config.api == ApiSettings().model_copy(update={"max_pages": 7})
    assert config.safety.min_keep == 3
    assert config.policies[0].min_keep == 3  # resolved: safety's default applied


def test_the_schema_does_not_read_yaml() -> None:
    graph = grimp.build_graph("pruner")

    assert "pruner.config._yaml" not in graph.find_upstream_modules("pruner.config.schema")
