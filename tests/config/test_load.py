from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from textwrap import dedent
from zoneinfo import ZoneInfo

import pytest
import yaml

from pruner.config.load import ConfigError, load_config, parse_config
from pruner.config.schema import MetricsSettings, NotifySettings
from pruner.engine.models import Policy
from pruner.engine.units import parse_duration, parse_size

EXAMPLE = Path(__file__).resolve().parents[2] / "config.example.yaml"

MINIMAL = """\
policies:
  - name: default
    keep_daily: 7
"""


def problems(text: str) -> tuple[str, ...]:
    with pytest.raises(ConfigError) as raised:
        parse_config(dedent(text))
    return raised.value.problems


def only_problem(text: str) -> str:
    found = problems(text)
    assert len(found) == 1, found
    return found[0]


# --- errors: each names the line and the key path ----------------------------------------------


def test_parse_config_rejects_unknown_top_level_key() -> None:
    problem = only_problem(MINIMAL + "colour: blue\n")

    assert problem.startswith("config.yaml:4: colour: unknown key")


def test_parse_config_rejects_unknown_nested_keys_in_api_and_policy() -> None:
    found = problems(
        """\
        api:
          timout: 30s
        policies:
          - name: default
            keep_daily: 7
            mach:
              hostnames: ["db-*"]
        """
    )

    assert found == (
        "config.yaml:2: api.timout: unknown key: did you mean timeout?",
        "config.yaml:6: policies[0].mach: unknown key: did you mean match?",
    )


def test_parse_config_rejects_duplicate_key_at_its_second_line() -> None:
    problem = only_problem(
        """\
        policies:
          - name: default
            keep_daily: 7
            keep_daily: 14
        """
    )

    assert problem == (
        "config.yaml:4: policies[0].keep_daily: duplicate key 'keep_daily' (first at line 3)"
    )


def test_parse_config_rejects_leading_zero_number() -> None:
    problem = only_problem(MINIMAL.replace("keep_daily: 7", "keep_daily: 010"))

    assert problem.startswith("config.yaml:3: policies[0].keep_daily: `010` is ambiguous")
    assert "octal 8 in YAML 1.1" in problem
    assert "write 10" in problem


@pytest.mark.parametrize("word", ["on", "off", "yes", "No", "Y", "n"])
def test_parse_config_rejects_yaml11_booleans(word: str) -> None:
    problem = only_problem(f"dry_run: {word}\n" + MINIMAL)

    assert problem.startswith(f"config.yaml:1: dry_run: `{word}` is ambiguous in YAML")
    assert "write true" in problem or "write false" in problem


def test_parse_config_rejects_sexagesimal_number() -> None:
    problem = only_problem("api:\n  timeout: 1:30\n" + MINIMAL)

    assert problem.startswith("config.yaml:2: api.timeout: `1:30` is ambiguous")
    assert "sexagesimal 90" in problem


@pytest.mark.parametrize(
    ("value", "hint"),
    [("0x1F", "write 31"), ("0o10", "write 8"), ("1_000", "write 1000"), ("+5", "write 5")],
)
def test_parse_config_rejects_other_number_forms(value: str, hint: str) -> None:
    problem = only_problem(MINIMAL.replace("keep_daily: 7", f"keep_daily: {value}"))

    assert problem.startswith(f"config.yaml:3: policies[0].keep_daily: `{value}`")
    assert hint in problem


def test_parse_config_takes_quoted_values_as_text() -> None:
    config = parse_config(MINIMAL.replace("name: default", 'name: "010"'))

    assert config.policies[0].name == "010"


def test_parse_config_rejects_count_below_minus_one() -> None:
    problem = only_problem(MINIMAL.replace("keep_daily: 7", "keep_daily: -2"))

    assert problem == (
        "config.yaml:3: policies[0].keep_daily: must be an integer >= -1 "
        "(a count; -1 = unlimited), not -2"
    )


@pytest.mark.parametrize("value", ['"7"', "7.0", "true", "null", "[7]"])
def test_parse_config_rejects_non_integer_count_without_coercing(value: str) -> None:
    problem = only_problem(MINIMAL.replace("keep_daily: 7", f"keep_daily: {value}"))

    assert problem.startswith("config.yaml:3: policies[0].keep_daily: must be an integer >= -1")


def test_parse_config_rejects_text_for_a_boolean() -> None:
    problem = only_problem('dry_run: "false"\n' + MINIMAL)

    assert problem == 'config.yaml:1: dry_run: must be true or false, not the text "false"'


def test_parse_config_rejects_empty_match_list() -> None:
    problem = only_problem(
        """\
        policies:
          - name: db
            match:
              hostnames: []
            keep_daily: 7
        """
    )

    assert problem.startswith("config.yaml:4: policies[0].match.hostnames: an empty list")


@pytest.mark.parametrize("block", ["match: {}", "match:", "match: null"])
def test_parse_config_rejects_empty_match_block(block: str) -> None:
    problem = only_problem(
        f"""\
        policies:
          - name: db
            {block}
            keep_daily: 7
        """
    )

    assert problem.startswith("config.yaml:3: policies[0].match: ")


def test_parse_config_rejects_policy_after_catch_all_of_same_resource() -> None:
    problem = only_problem(
        """\
        policies:
          - name: everything
            keep_daily: 7
          - name: snaps
            resource: snapshots
            keep_last: 3
          - name: databases
            match:
              hostnames: ["db-*"]
            keep_daily: 30
        """
    )

    assert problem.startswith("config.yaml:7: policies[2]: policy 'databases' can never match")
    assert "policies[0] ('everything')" in problem


def test_parse_config_allows_catch_all_per_resource() -> None:
    config = parse_config(MINIMAL + "  - name: snaps\n    resource: snapshots\n    keep_last: 3\n")

    assert [p.name for p in config.policies] == ["default", "snaps"]


def test_parse_config_rejects_policy_without_rule_or_limit() -> None:
    problem = only_problem(
        """\
        policies:
          - name: nothing
            min_keep: 2
        """
    )

    assert problem.startswith("config.yaml:2: policies[0]: policy 'nothing' has no keep rule")


def test_parse_config_rejects_duplicate_policy_names() -> None:
    problem = only_problem(
        MINIMAL + "  - name: default\n    resource: snapshots\n    keep_last: 3\n"
    )

    assert problem.startswith("config.yaml:4: policies[1].name: the name 'default' is taken")


def test_parse_config_rejects_missing_and_empty_policies() -> None:
    assert only_problem("dry_run: true\n") == "config.yaml:1: policies: required key is missing"
    assert only_problem("policies: []\n") == "config.yaml:1: policies: list at least one policy"


@pytest.mark.parametrize(
    ("schedule", "given"),
    [('cron: "30 3 * * *"\n  interval: 6h', "both"), ("run_on_start: true", "neither")],
)
def test_parse_config_rejects_schedule_without_exactly_one_trigger(
    schedule: str, given: str
) -> None:
    problem = only_problem(f"schedule:\n  {schedule}\n" + MINIMAL)

    assert problem.startswith(f"config.yaml:1: schedule: {given} of cron and interval given")


def test_parse_config_rejects_bad_cron() -> None:
    problem = only_problem('schedule:\n  cron: "30 3 * * 8"\n' + MINIMAL)

    assert problem == (
        "config.yaml:2: schedule.cron: day-of-week '8': 8 is out of range 0-7 (0 and 7 are Sunday)"
    )


def test_parse_config_rejects_unknown_time_zones() -> None:
    found = problems(
        'timezone: Europe/Sofa\nschedule:\n  cron: "@daily"\n  timezone: Mars/Olympus\n' + MINIMAL
    )

    assert found[0].startswith("config.yaml:1: timezone: unknown time zone 'Europe/Sofa'")
    assert "did you mean Europe/Sofia?" in found[0]
    assert found[1].startswith("config.yaml:4: schedule.timezone: unknown time zone")


@pytest.mark.parametrize("key", ["interval", "jitter"])
def test_parse_config_rejects_calendar_units_in_exact_durations(key: str) -> None:
    trigger = "" if key == "interval" else '  cron: "@daily"\n'
    problem = only_problem(f"schedule:\n{trigger}  {key}: 1mo\n" + MINIMAL)

    assert f"schedule.{key}: '1mo': calendar units (y, mo) are not allowed here" in problem


def test_parse_config_rejects_bare_m() -> None:
    problem = only_problem(MINIMAL + "    keep_within: 2m\n")

    assert problem.startswith("config.yaml:4: policies[0].keep_within: '2m': the unit 'm'")
    assert "'min'" in problem
    assert "'mo'" in problem


def test_parse_config_rejects_duration_without_unit() -> None:
    problem = only_problem("api:\n  timeout: 30\n" + MINIMAL)

    assert problem.startswith("config.yaml:2: api.timeout: must be a duration with a unit")


def test_parse_config_rejects_bad_size() -> None:
    problem = only_problem(MINIMAL + "    max_total_size: 2PB\n")

    assert problem.startswith("config.yaml:4: policies[0].max_total_size: '2PB' is not a size")


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("api:\n  concurrency: 33", "api.concurrency: must be an integer from 1 to 32"),
        ("api:\n  retries: -1", "api.retries: must be an integer >= 0"),
        ("api:\n  base_url: ftp://example.com", "api.base_url: must be an http(s) URL"),
        ("api:\n  base_url: https://u:p@example.com", "without credentials"),
        ("api:\n  timeout: 0s", "api.timeout: must be longer than 0s"),
        ("safety:\n  max_delete_fraction: 0", "safety.max_delete_fraction: must be a number above"),
        ("safety:\n  max_delete_fraction: 1.5", "safety.max_delete_fraction: must be a number"),
        ("safety:\n  max_deletions_per_run: 0", "safety.max_deletions_per_run: must be an integer"),
        ("safety:\n  min_keep: -1", "safety.min_keep: must be an integer >= 0"),
        ("schedule:\n  interval: 30s", "schedule.interval: must be at least 1min"),
        ("api: 5", "api: must be a mapping"),
        ("metrics:\n  listen: 9814", "metrics.listen: must be host:port"),
        ("metrics:\n  listen: localhost", "metrics.listen: must be host:port"),
        ("metrics:\n  listen: '[::1]'", "metrics.listen: must be host:port"),
        ("metrics:\n  listen: 0.0.0.0:65536", "metrics.listen: port 65536 is out of range"),
        ("metrics:\n  textfile: ''", "metrics.textfile: must be non-empty text"),
        ("metrics:\n  textfile: /tmp/pruner.txt", "metrics.textfile: /tmp/pruner.txt: node_"),
        ("metrics:\n  per_server: 1", "metrics.per_server: must be true or false"),
        ("metrics: 5", "metrics: must be a mapping"),
        ("notify:\n  urls: [ftp://hc.example/x]", "notify.urls[0]: must be an http(s) URL"),
        ("notify:\n  urls: https://hc.example/x", "notify.urls: must be a list"),
        ("notify:\n  urls: ['https://hc.example/x?k=1']", "notify.urls[0]: must be a URL without"),
        ("notify:\n  timeout: 0s", "notify.timeout: must be longer than 0s"),
        ("notify:\n  timeout: 1mo", "notify.timeout: '1mo': calendar units"),
        ("notify:\n  on_dry_run: 'true'", "notify.on_dry_run: must be true or false"),
        ("notify:\n  webhooks: [ftp://hooks.example/x]", "notify.webhooks[0]: must be an http(s)"),
        ("safety:\n  confirm_after: 0s", "safety.confirm_after: must be at least 1s"),
        ("safety:\n  confirm_after: 1mo", "safety.confirm_after: '1mo': calendar units"),
        ("api:\n  paths:\n    backups: /backups", "api.paths.backups: must be a path starting"),
        ("api:\n  paths:\n    backups: backups/{id}", "api.paths.backups: must be a path"),
        ("api:\n  paths:\n    snapshots: /s/{id}/{id}", "api.paths.snapshots: must be a path"),
        ("api:\n  paths:\n    backups: /b/{id}?force=1", "api.paths.backups: must be a plain path"),
        ("api:\n  paths:\n    backups: /b/{name}/{id}", "api.paths.backups: must be a plain path"),
        ("api:\n  paths:\n    trash: /t/{id}", "api.paths.trash: unknown key"),
    ],
)
def test_parse_config_rejects_impossible_settings(setting: str, message: str) -> None:
    problem = only_problem(setting + "\n" + MINIMAL)

    assert problem.startswith("config.yaml:")
    assert message in problem


def test_parse_config_reports_all_problems_together_in_line_order() -> None:
    found = problems(
        """\
        dry_run: yes
        api:
          retries: "5"
        policies:
          - name: a
            keep_daily: -2
          - name: b
            keep_weekly: 010
          - keep_last: 1
        bogus: 1
        """
    )

    assert [problem.split(": ")[0:2] for problem in found] == [
        ["config.yaml:1", "dry_run"],
        ["config.yaml:3", "api.retries"],
        ["config.yaml:6", "policies[0].keep_daily"],
        ["config.yaml:8", "policies[1].keep_weekly"],
        ["config.yaml:9", "policies[2].name"],
        ["config.yaml:10", "bogus"],
    ]


def test_parse_config_reports_yaml_syntax_error_with_line() -> None:
    problem = only_problem("policies:\n  - name: [a\n")

    assert problem.startswith("config.yaml:3: not valid YAML")


@pytest.mark.parametrize("text", ["", "- name: a\n", "just text\n"])
def test_parse_config_requires_a_mapping_at_top(text: str) -> None:
    assert "config.yaml" in only_problem(text)


def test_parse_config_rejects_merge_keys() -> None:
    problem = only_problem(
        """\
        policies:
          - &base
            name: a
            keep_daily: 7
          - <<: *base
            name: b
        """
    )

    assert (
        problem
        == "config.yaml:5: policies[1]: merge keys (<<) are not supported: write the keys out"
    )


def test_parse_config_allows_anchors_and_aliases() -> None:
    config = parse_config(
        dedent(
            """\
            policies:
              - name: a
                match:
                  hostnames: &db ["db-*", "pg-*"]
                keep_daily: 7
              - name: b
                resource: snapshots
                match:
                  hostnames: *db
                keep_last: 2
            """
        )
    )

    assert config.policies[1].hostnames == ("db-*", "pg-*")


def test_config_error_str_is_the_problems_one_per_line() -> None:
    with pytest.raises(ConfigError) as raised:
        parse_config("dry_run: on\napi: 5\n" + MINIMAL, source="/etc/pruner/config.yaml")

    assert str(raised.value) == "\n".join(raised.value.problems)
    assert all(p.startswith("/etc/pruner/config.yaml:") for p in raised.value.problems)
    assert len(raised.value.problems) == 2


def test_load_config_missing_file_names_path_and_what_to_do(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.yaml"

    with pytest.raises(ConfigError) as raised:
        load_config(missing)

    assert str(missing) in str(raised.value)
    assert "--config" in str(raised.value)


def test_load_config_names_the_file_in_problems(tmp_path: Path) -> None:
    path = tmp_path / "pruner.yaml"
    path.write_text(MINIMAL + "bogus: 1\n", encoding="utf-8")

    with pytest.raises(ConfigError) as raised:
        load_config(path)

    assert raised.value.problems[0].startswith(f"{path}:4: bogus: unknown key")


def test_load_config_rejects_a_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is a directory"):
        load_config(tmp_path)


# --- values --------------------------------------------------------------------------------------


def test_parse_config_defaults() -> None:
    config = parse_config(MINIMAL)

    assert config.source == "config.yaml"
    assert config.api.base_url == "https://api.vpsbg.eu/v1"
    assert config.api.token_env == "VPSBG_API_TOKEN"
    assert config.api.token_file is None
    assert config.api.timeout == timedelta(seconds=30)
    assert config.api.retries == 5
    assert config.api.backoff == timedelta(seconds=1)
    assert config.api.concurrency == 4
    assert config.dry_run is True
    assert config.timezone is None
    assert config.state_dir == Path("/var/lib/pruner")
    assert config.schedule is None
    assert config.safety.min_keep == 1
    assert config.safety.max_deletions_per_run == 100
    assert config.safety.max_delete_fraction == 0.5
    assert config.safety.stale_after == parse_duration("14d")
    assert config.metrics == MetricsSettings.model_construct(
        listen=("127.0.0.1", 9814), textfile=None, per_server=False
    )
    assert config.notify == NotifySettings.model_construct(
        urls=(), on_dry_run=False, timeout=timedelta(seconds=10)
    )
    assert config.policies == (
        Policy(
            name="default",
            keep_daily=7,
            min_keep=1,
            max_delete_fraction=0.5,
            stale_after=parse_duration("14d"),
        ),
    )
    assert config.warnings == (
        "policy 'default': keep_daily 7 ask for more history than "
        "VPSBG's automatic backups have (one a week, deleted by VPSBG "
        "after 3 weeks): for those backups this cannot be met; if that is understood (or the "
        "servers' backups are not automatic), add `acknowledge: [automatic_backup_history]` to "
        "the policy",
    )


def test_parse_config_reads_every_setting() -> None:
    config = parse_config(
        dedent(
            """\
            api:
              base_url: http://127.0.0.1:8080/v1/
              token_env: MY_TOKEN
              token_file: /run/secrets/token
              timeout: 0.5s
              retries: 0
              backoff: 2s
              concurrency: 32
            policies:
              - name: default
                keep_last: 1
            """
        )
    )

    assert config.api.base_url == "http://127.0.0.1:8080/v1"
    assert config.api.token_env == "MY_TOKEN"
    assert config.api.token_file == Path("/run/secrets/token")
    assert config.api.timeout == timedelta(milliseconds=500)
    assert (config.api.retries, config.api.backoff, config.api.concurrency) == (
        0,
        timedelta(seconds=2),
        32,
    )


def test_parse_config_reads_schedule() -> None:
    config = parse_config(
        "schedule:\n  interval: 6h\n  timezone: Europe/Sofia\n  jitter: 10min\n"
        "  run_on_start: true\ntimezone: UTC\n" + MINIMAL
    )

    assert config.timezone == ZoneInfo("UTC")
    schedule = config.schedule
    assert schedule is not None
    assert schedule.cron is None
    assert schedule.interval == timedelta(hours=6)
    assert schedule.timezone == ZoneInfo("Europe/Sofia")
    assert schedule.jitter == timedelta(minutes=10)
    assert schedule.run_on_start is True


def test_parse_config_schedule_defaults_to_utc_and_no_jitter() -> None:
    schedule = parse_config('schedule:\n  cron: "30 3 * * 0"\n' + MINIMAL).schedule

    assert schedule is not None
    assert (schedule.cron, schedule.interval) == ("30 3 * * 0", None)
    assert schedule.timezone == ZoneInfo("UTC")
    assert schedule.jitter == timedelta(0)
    assert schedule.run_on_start is False


def test_parse_config_resolves_policy_overrides_and_safety_defaults() -> None:
    config = parse_config(
        dedent(
            """\
            safety:
              min_keep: 2
              max_delete_fraction: 0.25
              stale_after: 30d
              max_deletions_per_run: null
            policies:
              - name: db
                match:
                  hostnames: ["db-*"]
                  server_ids: [12, 7]
                keep_last: 3
                min_keep: 5
                max_delete_fraction: 1
                stale_after: 1mo
                protect:
                  ids: [77]
                  names: ["*pre-upgrade*"]
                orphans: apply
              - name: no-stale
                match:
                  server_ids: [1]
                keep_last: 3
                stale_after: null
              - name: snaps
                resource: snapshots
                keep_within: 30d
              - name: rest
                keep_daily: 3
                max_age: 400d
                max_total_size: 2TB
            """
        )
    )

    db, no_stale, snaps, rest = config.policies
    assert config.safety.max_deletions_per_run is None
    assert db.hostnames == ("db-*",)
    assert db.server_ids == frozenset({7, 12})
    assert (db.min_keep, db.max_delete_fraction, db.stale_after) == (5, 1.0, parse_duration("1mo"))
    assert db.protect_ids == frozenset({77})
    assert db.protect_names == ("*pre-upgrade*",)
    assert db.orphans == "apply"
    assert no_stale.stale_after is None
    assert no_stale.hostnames is None
    assert (snaps.min_keep, snaps.max_delete_fraction, snaps.stale_after) == (2, 0.25, None)
    assert snaps.keep_within == parse_duration("30d")
    assert (rest.min_keep, rest.max_delete_fraction, rest.stale_after) == (
        2,
        0.25,
        parse_duration("30d"),
    )
    assert rest.max_age == parse_duration("400d")
    assert rest.max_total_size == parse_size("2TB")
    assert (rest.hostnames, rest.server_ids) == (None, None)


def test_parse_config_loads_huge_durations() -> None:
    config = parse_config(MINIMAL + "    keep_within: 9999y\n    max_age: 99999999999d\n")

    assert config.policies[0].keep_within == parse_duration("9999y")


def test_parse_config_warns_about_min_keep_zero() -> None:
    config = parse_config(
        "safety:\n  min_keep: 0\n" + MINIMAL.replace("keep_daily: 7", "keep_last: 3")
    )

    assert config.policies[0].min_keep == 0
    assert config.warnings == (
        "policy 'default': min_keep is 0, so its rules and limits may delete every unprotected "
        "backup of a server, even the newest; add `acknowledge: [min_keep_zero]` to the policy",
    )


@pytest.mark.parametrize(
    ("rules", "selecting", "floor"),
    [
        ("keep_last: 0", "keep_last 0", "the newest backup"),
        (
            "keep_last: 0\n    keep_daily: 0\n    max_age: 30d",
            "keep_last 0, keep_daily 0",
            "the newest backup",
        ),
        ("keep_last: 0\n    min_keep: 3", "keep_last 0", "the newest 3 backups"),
    ],
)
def test_parse_config_warns_about_a_policy_that_keeps_only_the_floor(
    rules: str, selecting: str, floor: str
) -> None:
    config = parse_config(f"policies:\n  - name: db\n    {rules}\n")

    assert config.warnings == (
        f"policy 'db': its keep rules select nothing ({selecting}), so it keeps only {floor} "
        "of each server (and protected ones) and deletes the rest: if that is not meant, give it "
        "a keep rule that selects something; if it is, add `acknowledge: "
        "[keep_rules_select_nothing]` to the policy",
    )


def test_parse_config_warns_once_about_a_policy_that_keeps_nothing_at_all() -> None:
    config = parse_config("safety:\n  min_keep: 0\npolicies:\n  - name: db\n    keep_last: 0\n")

    assert config.warnings == (
        "policy 'db': its keep rules select nothing (keep_last 0) and min_keep is 0, so it "
        "deletes every unprotected backup of every server it matches; if that is meant, add "
        "`acknowledge: [keep_rules_select_nothing]` to the policy",
    )


@pytest.mark.parametrize(
    "rules",
    ["keep_last: 0\n    keep_within: 2d", "keep_last: 1", "max_age: 21d"],
)
def test_parse_config_does_not_warn_about_a_policy_that_selects_something(rules: str) -> None:
    assert parse_config(f"policies:\n  - name: db\n    {rules}\n").warnings == ()


@pytest.mark.parametrize(
    "rules",
    [
        "keep_weekly: 4",
        "keep_last: -1",
        "keep_monthly: 2",
        "keep_yearly: 2",
        "keep_within: 22d",
        "keep_within_daily: 1mo",
    ],
)
def test_parse_config_warns_when_backups_policy_outlives_automatic_backups(rules: str) -> None:
    config = parse_config(f"policies:\n  - name: db\n    {rules}\n")

    assert len(config.warnings) == 1
    assert config.warnings[0].startswith(f"policy 'db': {rules.replace(':', '')} ask for more")
    assert "3 weeks" in config.warnings[0]


@pytest.mark.parametrize(
    "rules",
    ["keep_weekly: 3", "keep_last: 3", "keep_monthly: 1", "keep_within: 3w", "max_age: 1y"],
)
def test_parse_config_does_not_warn_within_automatic_backups(rules: str) -> None:
    assert parse_config(f"policies:\n  - name: db\n    {rules}\n").warnings == ()


def test_parse_config_does_not_warn_about_snapshots_history() -> None:
    config = parse_config("policies:\n  - name: s\n    resource: snapshots\n    keep_daily: 30\n")

    assert config.warnings == ()


def test_the_automatic_backups_warning_keeps_a_policy_name_with_parentheses_whole() -> None:
    config = parse_config('policies:\n  - name: "db (prod)"\n    keep_weekly: 4\n')

    assert config.warnings[0].startswith(
        "policy 'db (prod)': keep_weekly 4 ask for more history than VPSBG's automatic backups"
    )


def test_parse_config_warns_once_about_automatic_backups_naming_every_policy() -> None:
    config = parse_config(
        "policies:\n"
        "  - name: db\n    match: {hostnames: [db-*]}\n    keep_daily: 7\n"
        "  - name: web\n    match: {hostnames: [web-*]}\n    keep_weekly: 8\n"
        "  - name: rest\n    keep_last: 2\n"
    )

    assert config.warnings == (
        "policies 'db' (keep_daily 7) and 'web' (keep_weekly 8) ask for more history than "
        "VPSBG's automatic backups have (one a week, deleted by VPSBG after 3 weeks): for those "
        "backups this cannot be met; if that is understood (or the servers' backups are not "
        "automatic), add `acknowledge: [automatic_backup_history]` to each of these policies",
    )


@pytest.mark.parametrize(
    ("rules", "warning"),
    [
        ("keep_weekly: 8", "automatic_backup_history"),
        ("keep_last: 3\n    min_keep: 0", "min_keep_zero"),
        ("keep_last: 0", "keep_rules_select_nothing"),
    ],
)
def test_parse_config_an_acknowledged_warning_stays_silent(rules: str, warning: str) -> None:
    policy = f"policies:\n  - name: db\n    {rules}\n"

    assert len(parse_config(policy).warnings) == 1
    assert warning in parse_config(policy).warnings[0]
    assert parse_config(f"{policy}    acknowledge: [{warning}]\n").warnings == ()


def test_parse_config_acknowledges_only_for_the_policy_that_says_so() -> None:
    config = parse_config(
        "policies:\n"
        "  - name: db\n    match: {hostnames: [db-*]}\n    keep_daily: 7\n"
        "    acknowledge: [automatic_backup_history]\n"
        "  - name: rest\n    keep_weekly: 8\n"
    )

    assert len(config.warnings) == 1
    assert config.warnings[0].startswith("policy 'rest': keep_weekly 8 ask for more")


def test_parse_config_rejects_an_unknown_warning_to_acknowledge_listing_the_known() -> None:
    with pytest.raises(ConfigError) as error:
        parse_config("policies:\n  - name: db\n    keep_last: 3\n    acknowledge: [stale]\n")

    assert error.value.problems == (
        "config.yaml:4: policies[0].acknowledge[0]: 'stale' is no warning pruner gives; "
        "a policy can acknowledge automatic_backup_history, min_keep_zero, "
        "keep_rules_select_nothing",
    )


# --- the example file and the description ------------------------------------------------------

SPEC_KEYS = {
    "api", "api.base_url", "api.token_env", "api.token_file", "api.timeout", "api.retries",
    "api.backoff", "api.concurrency", "api.max_pages", "api.paths", "api.paths.backups",
    "api.paths.snapshots", "dry_run", "timezone", "state_dir",
    "schedule",
    "schedule.cron", "schedule.interval", "schedule.timezone", "schedule.jitter",
    "schedule.run_on_start", "safety", "safety.min_keep", "safety.max_deletions_per_run",
    "safety.max_delete_fraction", "safety.stale_after", "safety.max_pass_duration",
    "safety.max_consecutive_failures", "safety.confirm_after", "policies", "policies.name",
    "policies.resource", "policies.match", "policies.match.hostnames",
    "policies.match.server_ids", "policies.keep_last", "policies.keep_hourly",
    "policies.keep_daily", "policies.keep_weekly", "policies.keep_monthly",
    "policies.keep_yearly", "policies.keep_within", "policies.keep_within_hourly",
    "policies.keep_within_daily", "policies.keep_within_weekly", "policies.keep_within_monthly",
    "policies.keep_within_yearly", "policies.max_age", "policies.max_total_size",
    "policies.min_keep", "policies.max_delete_fraction", "policies.stale_after",
    "policies.protect", "policies.protect.ids", "policies.protect.names", "policies.orphans",
    "policies.acknowledge",
    "metrics", "metrics.listen", "metrics.textfile", "metrics.per_server", "notify",
    "notify.urls", "notify.on_dry_run", "notify.timeout", "notify.webhooks",
}  # fmt: skip


def key_paths(value: object, prefix: str = "") -> set[str]:
    paths: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            path = f"{prefix}.{key}" if prefix else key
            paths |= {path} | key_paths(item, path)
    elif isinstance(value, list):
        for item in value:
            paths |= key_paths(item, prefix)
    return paths


def test_example_config_loads_and_is_a_dry_run() -> None:
    config = load_config(EXAMPLE)

    assert config.dry_run is True
    assert [p.name for p in config.policies] == [
        "databases",
        "web",
        "archive",
        "snapshots",
        "everything-else",
    ]


def test_example_config_sets_every_key() -> None:
    assert key_paths(yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))) == SPEC_KEYS


def test_example_config_policies_fit_the_demo_fleet() -> None:
    policies = {p.name: p for p in load_config(EXAMPLE).policies}

    databases, web = policies["databases"], policies["web"]
    assert databases.matches(1, "db-1")
    assert not databases.matches(1, "web-1")
    assert (databases.keep_last, databases.keep_daily) == (3, 7)
    assert (databases.keep_weekly, databases.keep_monthly) == (4, 6)
    assert databases.protect_names == ("*pre-upgrade*",)
    assert web.matches(1, "web-2")
    assert (web.keep_daily, web.keep_weekly) == (14, 8)
    snapshots, rest = policies["snapshots"], policies["everything-else"]
    assert snapshots.resource == "snapshots"
    assert (snapshots.hostnames, snapshots.server_ids) == (None, None)
    assert (snapshots.keep_last, snapshots.keep_within) == (3, parse_duration("30d"))
    assert rest.resource == "backups"
    assert (rest.hostnames, rest.server_ids) == (None, None)
    assert (rest.keep_daily, rest.keep_weekly, rest.keep_monthly) == (7, 4, 3)
    assert not policies["archive"].matches(1, "archive-1")  # needs server 2478 as well


def test_parse_config_reads_metrics_and_notify() -> None:
    config = parse_config(
        dedent(
            """\
            metrics:
              listen: "[::1]:0"
              textfile: /var/lib/node_exporter/pruner.prom
              per_server: true
            notify:
              urls: [https://hc.example/ping/abc/, http://127.0.0.1:8000/x]
              on_dry_run: true
              timeout: 2.5s
            """
        )
        + MINIMAL
    )

    assert config.metrics == MetricsSettings.model_construct(
        listen=("::1", 0), textfile=Path("/var/lib/node_exporter/pruner.prom"), per_server=True
    )
    assert config.notify == NotifySettings.model_construct(
        urls=("https://hc.example/ping/abc", "http://127.0.0.1:8000/x"),
        on_dry_run=True,
        timeout=timedelta(seconds=2.5),
    )


def test_parse_config_turns_metrics_endpoint_off_with_null() -> None:
    config = parse_config("metrics:\n  listen: null\n" + MINIMAL)

    assert config.metrics.listen is None


def test_parse_config_takes_empty_metrics_and_notify_as_defaults() -> None:
    config = parse_config("metrics:\nnotify:\n" + MINIMAL)

    assert config.metrics == parse_config(MINIMAL).metrics
    assert config.notify == parse_config(MINIMAL).notify


def test_parse_config_reads_the_delete_paths_confirm_after_and_webhooks() -> None:
    config = parse_config(
        "api:\n  paths:\n    backups: /v2/backups/{id}/delete\n"
        "safety:\n  confirm_after: 12h\n"
        "notify:\n  webhooks: ['https://hooks.example/p?key=1']\n" + MINIMAL
    )
    assert config.api.paths.backups == "/v2/backups/{id}/delete"
    assert config.api.paths.snapshots == "/snapshots/{id}"
    assert config.safety.confirm_after == timedelta(hours=12)
    assert config.notify.webhooks == ("https://hooks.example/p?key=1",)


def test_parse_config_defaults_leave_two_phase_deletion_and_webhooks_off() -> None:
    config = parse_config(MINIMAL)
    assert config.safety.confirm_after is None
    assert config.notify.webhooks == ()
    assert (config.api.paths.backups, config.api.paths.snapshots) == (
        "/backups/{id}",
        "/snapshots/{id}",
    )
