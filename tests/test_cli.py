from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog

from pruner import __version__
from pruner.cli import main
from tests._factories import DOCS_EXAMPLE_PAGE, item

CONFIG = """\
dry_run: true
safety:
  stale_after: null
policies:
  - name: default
    keep_last: 2
"""


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """main() points logging at the captured stderr; leave nothing behind for other tests."""
    yield
    root = logging.getLogger()
    for handler in [h for h in root.handlers if h.get_name() == "pruner"]:
        root.removeHandler(handler)
    structlog.reset_defaults()


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    return path


def _listing(tmp_path: Path, items: list[Any]) -> Path:
    path = tmp_path / "listing.json"
    path.write_text(json.dumps(items), encoding="utf-8")
    return path


@pytest.fixture
def listing(tmp_path: Path) -> Path:
    items = [item(n, created_at=f"2026-11-{20 + n:02d}T03:00:00+03:00") for n in range(1, 5)]
    return _listing(tmp_path, items)


def _log_events(stderr: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stderr.splitlines()]


def test_main_prints_the_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"pruner {__version__}\n"


def test_main_plan_writes_clean_json_to_stdout_and_logs_to_stderr(
    config: Path, listing: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["--config", str(config), "plan", "--listing", str(listing), "--format", "json"])
    captured = capsys.readouterr()
    assert code == 0
    plan = json.loads(captured.out)
    assert plan["schema"] == "pruner.plan/v1"
    assert plan["dry_run"] is True
    assert [d["action"] for d in plan["decisions"]] == ["keep", "keep", "delete", "delete"]
    events = _log_events(captured.err)
    assert events[-1]["event"] == "plan.summary"
    assert (events[-1]["kept"], events[-1]["deleted"]) == (2, 2)


def test_main_plan_fixes_the_clock_with_now(
    config: Path, listing: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--config", str(config), "plan", "--listing", str(listing), "--format", "json"]
    assert main([*argv, "--now", "2026-11-27T03:30:00+02:00"]) == 0
    assert json.loads(capsys.readouterr().out)["now"] == "2026-11-27T03:30:00+02:00"


@pytest.mark.parametrize(
    ("now", "message"), [("2026-11-27T03:30:00", "no UTC offset"), ("tomorrow", "not an RFC 3339")]
)
def test_main_plan_rejects_a_now_without_offset(
    config: Path, listing: Path, capsys: pytest.CaptureFixture[str], now: str, message: str
) -> None:
    argv = ["--config", str(config), "plan", "--listing", str(listing), "--now", now]
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert message in captured.err


def test_main_plan_writes_a_table_by_default(
    config: Path, listing: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--config", str(config), "plan", "--listing", str(listing)]) == 0
    out = capsys.readouterr().out
    assert "server 2478 (ubuntu-2gb) · backups · policy default · ok" in out
    assert "Summary: kept 2, deleted 2" in out


def test_main_accepts_global_options_after_the_command(
    config: Path, listing: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["plan", "--listing", str(listing), "--config", str(config), "--log-level", "ERROR"]
    assert main(argv) == 0
    assert capsys.readouterr().err == ""  # the summary is info: filtered out


def test_main_reads_the_config_path_from_the_environment(
    config: Path,
    listing: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PRUNER_CONFIG", str(config))
    assert main(["plan", "--listing", str(listing)]) == 0
    monkeypatch.setenv("PRUNER_CONFIG", str(config.parent / "absent.yaml"))
    assert main(["plan", "--listing", str(listing)]) == 2
    assert "absent.yaml" in capsys.readouterr().err


def test_main_plan_exits_2_on_a_bad_config(
    tmp_path: Path, listing: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("policies:\n  - name: x\n    keep_daily: lots\n", encoding="utf-8")
    assert main(["--config", str(config), "plan", "--listing", str(listing)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "bad.yaml:3" in captured.err
    assert "Traceback" not in captured.err


def test_main_plan_exits_2_on_an_unusable_listing(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text("{", encoding="utf-8")
    assert main(["--config", str(config), "plan", "--listing", str(broken)]) == 2
    assert "broken.json:1:2: not valid JSON" in capsys.readouterr().err


def test_main_plan_exits_1_when_the_plan_is_incomplete(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    listing = _listing(tmp_path, [item(1), item(2, created_at="whenever")])
    argv = ["--config", str(config), "plan", "--listing", str(listing), "--format", "json"]
    assert main(argv) == 1
    captured = capsys.readouterr()
    assert json.loads(captured.out)["groups"][0]["status"] == "incomplete"
    errors = [e for e in _log_events(captured.err) if e["level"] == "error"]
    assert errors[0]["event"] == "plan.problem"
    assert "backups item 2 (id 2)" in errors[0]["message"]


def test_main_plan_exits_0_for_a_warning_only_listing(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    listing = tmp_path / "backups-page.json"
    listing.write_text(DOCS_EXAMPLE_PAGE, encoding="utf-8")
    argv = ["--config", str(config), "plan", "--listing", str(listing), "--format", "json"]
    assert main(argv) == 0
    warnings = [e for e in _log_events(capsys.readouterr().err) if e["level"] == "warning"]
    assert "meta.total says 6" in warnings[0]["message"]


def test_main_plan_without_a_listing_is_not_available_yet(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--config", str(config), "plan"]) == 2
    assert "use --listing FILE" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["health", "simulate"])
def test_main_stub_commands_say_they_are_not_implemented(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([command]) == 2
    assert f"pruner: {command}: not implemented yet" in capsys.readouterr().err


def test_main_help_shows_the_contract(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("run", "daemon", "plan", "apply", "simulate", "check-config", "health", "demo"):
        assert command in out


def test_main_rejects_usage_errors_with_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "--format", "yaml"]) == 2
    assert main(["--log-level", "loud", "plan"]) == 2
    assert main([]) == 2
    assert "usage: pruner" in capsys.readouterr().err


def test_main_check_config_prints_the_resolved_policies(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--config", str(config), "check-config"]) == 0
    out = capsys.readouterr().out
    assert "default" in out
    assert "keep_last 2" in out


def test_main_check_config_online_is_not_available_yet(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--config", str(config), "check-config", "--online"]) == 2
    assert "not available yet" in capsys.readouterr().err


def test_python_m_pruner_plans_a_listing_as_json(config: Path, listing: Path) -> None:
    argv = ["plan", "--listing", str(listing), "--format", "json", "--now", "2026-11-27T03:30Z"]
    result = subprocess.run(
        [sys.executable, "-m", "pruner", "--config", str(config), *argv],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    assert plan["summary"] == {"kept": 2, "deleted": 2, "skipped_groups": 0, "size_freed": 100}
    assert json.loads(result.stderr.splitlines()[-1])["event"] == "plan.summary"
