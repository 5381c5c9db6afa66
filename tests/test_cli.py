from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from pruner import __version__
from pruner.actions.run import stop_on_signals
from pruner.cli import _as_user_error, main
from pruner.config.digest import config_sha256
from pruner.config.load import ConfigError, load_config
from pruner.passes.lock import LockHeld, PassLock
from pruner.sim import READ_TOKEN, WRITE_TOKEN, Simulator, generate_fleet
from pruner.vpsbg.errors import ApiAuthError, ApiError, ApiPermissionError, TokenMissing
from tests._factories import DOCS_EXAMPLE_PAGE, item

CONFIG = """\
dry_run: true
safety:
  stale_after: null
policies:
  - name: default
    keep_last: 2
"""


pytestmark = pytest.mark.usefixtures("restore_logging")


@pytest.fixture
def no_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VPSBG_API_TOKEN", raising=False)
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)


@pytest.fixture
def sim(monkeypatch: pytest.MonkeyPatch) -> Iterator[Simulator]:
    """A small simulated account (a locked, a stale and a terminated server among 8), with
    $VPSBG_API_TOKEN holding its Write key and no proxy in the way."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    monkeypatch.setenv("VPSBG_API_TOKEN", WRITE_TOKEN)
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    with Simulator(generate_fleet(now=datetime.now(UTC), servers=8, days=20, seed=1)) as simulator:
        yield simulator
    assert simulator.errors == []


MakeLiveConfig = Callable[..., Path]


@pytest.fixture
def live_config(sim: Simulator, tmp_path: Path) -> MakeLiveConfig:
    def make(dry_run: bool = False, max_deletions_per_run: int | None = None) -> Path:
        settings = {
            "api": {"base_url": sim.base_url, "retries": 1, "backoff": "0.001s", "timeout": "5s"},
            "dry_run": dry_run,
            "state_dir": str(tmp_path / "state"),
            "safety": {"max_delete_fraction": 1.0, "max_deletions_per_run": max_deletions_per_run},
            "policies": [{"name": "all", "keep_daily": 7}],
        }
        path = tmp_path / "live.yaml"
        path.write_text(json.dumps(settings), encoding="utf-8")
        return path

    return make


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


def test_main_ctrl_c_outside_a_pass_exits_130_without_a_traceback(
    config: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(_args: object) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr("pruner.actions.check_config.main", interrupted)

    assert main(["--config", str(config), "check-config"]) == 130
    assert capsys.readouterr().err == "pruner: interrupted\n"


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


def test_main_plan_json_names_the_config_and_the_api_it_was_made_with(
    config: Path, listing: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["--config", str(config), "plan", "--listing", str(listing), "--format", "json"])

    plan = json.loads(capsys.readouterr().out)
    assert code == 0
    assert plan["config_sha256"] == config_sha256(load_config(config))
    assert plan["api_base_url"] == "https://api.vpsbg.eu/v1"


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
    assert re.search(r"^ubuntu-2gb +2478 +default +2 +2 +0 ", out, re.M)
    assert "Totals: would delete 2 of 4 backups (2 kept)" in out


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


@pytest.mark.parametrize("log_format", ["console", "json"])
def test_main_plan_on_a_terminal_says_each_problem_once(
    config: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    log_format: str,
) -> None:
    listing = tmp_path / "backups-page.json"
    listing.write_text(DOCS_EXAMPLE_PAGE, encoding="utf-8")
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)

    argv = ["--config", str(config), "--log-format", log_format, "plan", "--listing", str(listing)]
    assert main(argv) == 0

    captured = capsys.readouterr()
    assert "meta.total says 6" in captured.out  # the report's problems
    logged = "meta.total says 6" in captured.err
    assert logged is (log_format == "json")  # machines still get every event
    assert ("plan.summary" in captured.err) is (log_format == "json")


def test_main_plan_without_a_listing_or_a_token_exits_2(
    config: Path, capsys: pytest.CaptureFixture[str], no_token: None
) -> None:
    assert main(["--config", str(config), "plan"]) == 2
    captured = capsys.readouterr()
    assert "no VPSBG API token: $VPSBG_API_TOKEN is not set" in captured.err
    assert captured.out == ""


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
    config: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VPSBG_API_TOKEN", "a-token")
    assert main(["--config", str(_with_state(config)), "check-config"]) == 0
    out = capsys.readouterr().out
    assert "default" in out
    assert "keep_last 2" in out


# --- check-config: what `run` needs before its first request ---------------------------------


def _with_state(config: Path, state_dir: Path | None = None, **api: str) -> Path:
    """`config` with state_dir (default: `state` next to it) and these api settings."""
    state = state_dir if state_dir is not None else config.parent / "state"
    text = config.read_text(encoding="utf-8") + f"state_dir: {json.dumps(str(state))}\n"
    if api:
        text += f"api: {json.dumps(api)}\n"
    path = config.parent / "checked.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_main_check_config_without_a_token_exits_2_saying_what_to_set(
    config: Path, capsys: pytest.CaptureFixture[str], no_token: None
) -> None:
    assert main(["--config", str(_with_state(config)), "check-config"]) == 2
    captured = capsys.readouterr()
    assert "pruner: no VPSBG API token: $VPSBG_API_TOKEN is not set or empty." in captured.err
    assert "policies (in order" in captured.out  # the config itself is still shown


def test_main_check_config_with_an_empty_token_file_exits_2(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("\n", encoding="utf-8")
    checked = _with_state(config, token_file=str(token_file))
    assert main(["--config", str(checked), "check-config"]) == 2
    assert f"pruner: api.token_file {token_file} is empty" in capsys.readouterr().err


def test_main_check_config_names_the_credential_it_reads_never_the_token(
    config: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "vpsbg-token").write_text("credential-token-value\n", encoding="utf-8")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(credentials))
    monkeypatch.setenv("VPSBG_API_TOKEN", "environment-token-value")

    assert main(["--config", str(_with_state(config)), "check-config"]) == 0

    captured = capsys.readouterr()
    source = f"$CREDENTIALS_DIRECTORY/vpsbg-token ({credentials / 'vpsbg-token'})"
    assert f"token from {source}" in captured.out
    assert "$VPSBG_API_TOKEN" not in captured.out
    assert "token-value" not in captured.out + captured.err


@pytest.mark.parametrize("where", ["under a file", "a file"])
def test_main_check_config_exits_2_when_state_dir_cannot_be_created(
    where: str,
    config: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("VPSBG_API_TOKEN", "a-token")
    blocker = tmp_path / "blocker"
    blocker.write_text("", encoding="utf-8")
    state_dir = blocker / "state" if where == "under a file" else blocker
    assert main(["--config", str(_with_state(config, state_dir)), "check-config"]) == 2
    err = capsys.readouterr().err
    assert f"pruner: state_dir {state_dir}: " in err
    assert "set state_dir in the config" in err


def test_main_check_config_checks_state_dir_without_creating_it(
    config: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("VPSBG_API_TOKEN", "a-token")
    state_dir = tmp_path / "not" / "yet"
    assert main(["--config", str(_with_state(config, state_dir)), "check-config"]) == 0
    assert not (tmp_path / "not").exists()  # run as root, it would leave a root-owned directory
    assert f"state_dir {state_dir} can be created" in capsys.readouterr().out


def test_main_check_config_reports_every_preflight_problem_at_once(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], no_token: None
) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("", encoding="utf-8")
    assert main(["--config", str(_with_state(config, blocker)), "check-config"]) == 2
    err = capsys.readouterr().err
    assert "pruner: no VPSBG API token" in err
    assert f"pruner: state_dir {blocker}: " in err


_UNREADABLE = "vpsbg-token) cannot be read (permission denied)"


@pytest.mark.parametrize("command", ["check-config", "run", "daemon"])
def test_main_exits_2_when_the_credential_cannot_be_read(
    command: str,
    *,
    config: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    deny_access: Callable[[Path], None],
) -> None:
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "vpsbg-token").write_text("a-token\n", encoding="utf-8")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(credentials))
    checked = _with_state(config)
    checked.write_text(
        checked.read_text(encoding="utf-8") + 'schedule: {cron: "30 3 * * *"}\n', encoding="utf-8"
    )
    deny_access(credentials)

    assert main(["--config", str(checked), command]) == 2

    err = capsys.readouterr().err
    assert f"pruner: $CREDENTIALS_DIRECTORY/vpsbg-token ({credentials}/{_UNREADABLE}" in err
    assert "LoadCredential=" in err
    assert not (tmp_path / "state").exists()  # nothing was started


def test_main_check_config_online_without_a_token_exits_2(
    config: Path, capsys: pytest.CaptureFixture[str], no_token: None
) -> None:
    assert main(["--config", str(config), "check-config", "--online"]) == 2
    assert "no VPSBG API token" in capsys.readouterr().err


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
    assert plan["summary"] == {
        "kept": 2,
        "deleted": 2,
        "skipped_groups": 0,
        "size_freed": 100,
        "pending": 0,
    }
    assert json.loads(result.stderr.splitlines()[-1])["event"] == "plan.summary"


def test_main_plan_lists_the_account_live_with_a_read_key(
    sim: Simulator,
    live_config: MakeLiveConfig,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("VPSBG_API_TOKEN", READ_TOKEN)
    argv = ["--config", str(live_config()), "plan", "--format", "json"]
    now = (datetime.now(UTC) + timedelta(hours=1)).replace(microsecond=0)

    assert main([*argv, "--now", now.isoformat()]) == 0

    captured = capsys.readouterr()
    plan = json.loads(captured.out)
    assert datetime.fromisoformat(plan["now"]) == now
    assert plan["summary"]["deleted"] > 0
    assert sim.request_count("DELETE") == 0
    assert _log_events(captured.err)[-1]["event"] == "pass.summary"


def test_main_plan_live_with_now_still_says_when_the_plan_was_made(
    sim: Simulator,
    live_config: MakeLiveConfig,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("VPSBG_API_TOKEN", READ_TOKEN)
    fixed = (datetime.now(UTC) + timedelta(days=3)).replace(microsecond=0)
    before = datetime.now(UTC)

    argv = ["--config", str(live_config()), "plan", "--format", "json", "--now", fixed.isoformat()]
    assert main(argv) == 0

    plan = json.loads(capsys.readouterr().out)
    assert datetime.fromisoformat(plan["now"]) == fixed
    assert before <= datetime.fromisoformat(plan["generated_at"]) <= datetime.now(UTC)


def test_main_run_dry_run_reports_what_it_would_delete(
    sim: Simulator, live_config: MakeLiveConfig, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--config", str(live_config()), "run", "--dry-run"]) == 0

    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == "DRY RUN: nothing will be deleted (--dry-run)"
    assert re.fullmatch(
        r"DRY RUN: nothing was deleted; a real pass would delete \d+ of \d+ backups "
        r"\(\d+ kept\)",
        lines[-1],
    )
    assert "· policy all: would delete" in out
    words = " ".join(out.split())
    assert "disk size of the backups it would delete: " in words
    assert not re.search(r"(?<!would )delete[ds]? \d", words)  # conditional throughout
    assert "Not pruned this pass" in out
    assert sim.request_count("DELETE") == 0


def test_main_run_deletes_and_reports_per_server(
    sim: Simulator, live_config: MakeLiveConfig, capsys: pytest.CaptureFixture[str]
) -> None:
    config = live_config()

    assert main(["--config", str(config), "run"]) == 0

    out = capsys.readouterr().out
    assert "DRY RUN" not in out
    assert "· policy all: deleted " in out
    kept, deleted = _count_kept(config), len(sim.deleted)
    words = " ".join(out.split())  # the report wraps at 100 columns
    assert (
        f"Summary: deleted {deleted} of {kept + deleted} backups ({kept} kept); "
        "disk size of the deleted backups: "
    ) in words
    assert "freed" not in words
    assert len(sim.deleted) > 0


def test_main_run_scoped_to_a_server_prunes_it_alone_and_says_so(
    sim: Simulator, live_config: MakeLiveConfig, capsys: pytest.CaptureFixture[str]
) -> None:
    [server] = [s for s in sim.servers() if s["hostname"] == "db-01"]
    owners = {b["id"]: b["server_id"] for b in sim.backups()}

    assert main(["--config", str(live_config()), "run", "--server", str(server["id"])]) == 0

    out = capsys.readouterr().out
    assert out.splitlines()[1] == f"Scoped to servers {server['id']}: no other server was planned"
    assert sim.deleted
    assert {owners[id_] for _, id_ in sim.deleted} == {server["id"]}


def test_main_run_with_an_unknown_policy_exits_2_before_any_request(
    sim: Simulator, live_config: MakeLiveConfig, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--config", str(live_config()), "run", "--policy", "al"]) == 2
    assert "--policy al: the config has no such policy; its policies are: all" in (
        capsys.readouterr().err
    )
    assert sim.request_count() == 0


def _count_kept(config: Path) -> int:
    state = json.loads((config.parent / "state" / "last-plan.json").read_text(encoding="utf-8"))
    kept: int = state["summary"]["kept"]
    return kept


def test_main_run_exits_3_when_a_cap_holds_deletions_back(
    sim: Simulator, live_config: MakeLiveConfig, capsys: pytest.CaptureFixture[str]
) -> None:
    config = live_config(max_deletions_per_run=1)
    assert main(["--config", str(config), "run"]) == 3
    assert "--allow-large-deletions" in capsys.readouterr().out
    assert main(["--config", str(config), "run", "--allow-large-deletions"]) == 0
    assert len(sim.deleted) > 1


def test_main_run_exits_75_while_another_pass_holds_the_lock(
    sim: Simulator, live_config: MakeLiveConfig, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    with PassLock(tmp_path / "state"):
        assert main(["--config", str(live_config()), "run"]) == 75
    assert "another pruner pass holds the lock" in capsys.readouterr().err
    assert sim.request_count() == 0


def test_main_run_exits_2_without_a_token_before_any_request(
    sim: Simulator,
    live_config: MakeLiveConfig,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("VPSBG_API_TOKEN")
    assert main(["--config", str(live_config()), "run"]) == 2
    assert "no VPSBG API token" in capsys.readouterr().err
    assert sim.request_count() == 0


def test_main_run_exits_1_with_the_api_message_when_the_token_is_rejected(
    sim: Simulator,
    live_config: MakeLiveConfig,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("VPSBG_API_TOKEN", "revoked-token")
    assert main(["--config", str(live_config()), "run"]) == 1
    out, err = capsys.readouterr()
    assert "FAILED: the API token was rejected (HTTP 401)" in out
    assert _log_events(err)[-1]["event"] == "pass.summary"
    assert "Traceback" not in err
    assert "revoked-token" not in out + err


def test_main_plan_exits_1_with_the_api_message_when_the_token_is_rejected(
    sim: Simulator,
    live_config: MakeLiveConfig,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("VPSBG_API_TOKEN", "revoked-token")
    assert main(["--config", str(live_config()), "plan", "--format", "json"]) == 1
    out, err = capsys.readouterr()
    assert out == ""  # no plan: an empty one would read as "nothing to delete"
    assert "pruner: the API token was rejected (HTTP 401)" in err
    assert "Traceback" not in err


def test_main_check_config_online_says_the_api_answered(
    sim: Simulator, live_config: MakeLiveConfig, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--config", str(live_config()), "check-config", "--online"]) == 0
    out = capsys.readouterr().out
    visible = sum(1 for s in sim.servers() if s["status"] in ("active", "suspended"))
    rows = [line.split(maxsplit=2) for line in out.splitlines()]
    assert ["ok", "API", f"{sim.base_url} answered"] in rows
    assert ["ok", "token", f"accepted: $VPSBG_API_TOKEN ({visible} servers)"] in rows


def test_main_check_config_online_exits_1_when_the_token_is_rejected(
    sim: Simulator,
    live_config: MakeLiveConfig,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("VPSBG_API_TOKEN", "revoked-token")
    assert main(["--config", str(live_config()), "check-config", "--online"]) == 1
    assert "HTTP 401" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (TokenMissing("no VPSBG API token"), 2),
        (ConfigError(["config.yaml:3: policies: required"]), 2),
        (LockHeld("another pruner pass holds the lock"), 75),
        (ApiAuthError("the API token was rejected (HTTP 401)", status=401), 1),
        (ApiPermissionError("this API key has Read permission only", status=403), 1),
        (ApiError("the API did not answer"), 1),
    ],
)
def test_as_user_error_maps_each_error_to_its_exit_code(error: Exception, code: int) -> None:
    user_error = _as_user_error(error)
    assert user_error is not None
    assert user_error.exit_code == code
    assert user_error.lines[0] == str(error).splitlines()[0]


def test_as_user_error_leaves_bugs_alone() -> None:
    assert _as_user_error(KeyError("bug")) is None


@pytest.mark.parametrize("number", [signal.SIGTERM, signal.SIGINT])
def test_stop_on_signals_sets_stop_and_a_second_signal_only_says_what_it_waits_for(
    number: signal.Signals,
) -> None:
    stop = threading.Event()
    before = signal.getsignal(number)
    with capture_logs() as logs, stop_on_signals(stop):
        signal.raise_signal(number)
        assert stop.wait(5)
        signal.raise_signal(number)  # neither ends the process nor raises KeyboardInterrupt
    assert signal.getsignal(number) == before
    assert [(e["event"], e["signal"]) for e in logs] == [
        ("run.stopping", number.name),
        ("run.still_stopping", number.name),
    ]


def test_python_m_pruner_plan_into_a_reader_that_leaves_ends_quietly_with_0(
    config: Path, tmp_path: Path
) -> None:
    """`pruner plan | head`: the reader goes away, and pruner stops as Unix tools do."""
    items = [item(n, created_at=f"2026-10-{1 + n % 28:02d}T03:00:00+03:00") for n in range(3000)]
    listing = _listing(tmp_path, items)
    argv = ["plan", "--listing", str(listing), "--format", "json", "--now", "2026-11-27T03:30Z"]
    with subprocess.Popen(
        [sys.executable, "-m", "pruner", "--config", str(config), "--log-level", "error", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        assert process.stdout is not None
        assert process.stderr is not None
        assert process.stdout.readline().startswith("{")
        process.stdout.close()  # far more than a pipe holds is still to come
        stderr = process.stderr.read()
        assert process.wait(timeout=60) == 0
    assert stderr == ""


def test_only_a_plan_for_a_terminal_draws_with_rich(config: Path, listing: Path) -> None:
    """rich is for people at a terminal: probes never load it, and JSON and pipes never load
    pruner's terminal view. (structlog itself imports rich when it is installed.)"""
    program = f"""
import sys
from pruner.cli import main
for argv in (["--version"], ["--help"], ["health"]):
    main(argv)
assert "rich" not in sys.modules, "a probe loaded rich"
plan = ["--config", {str(config)!r}, "--log-level", "error", "plan", "--listing", {str(listing)!r}]
for argv in ([*plan, "--format", "json"], plan):
    main(argv)
assert "pruner.report.terminal" not in sys.modules, "the terminal view without a terminal"
sys.stdout.isatty = lambda: True
main(plan)
assert "pruner.report.terminal" in sys.modules
"""
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=False, timeout=60
    )

    assert result.returncode == 0, result.stderr
    assert "Totals: would delete 2 of 4 backups (2 kept)" in result.stdout


def test_main_plan_details_adds_every_backup_with_its_full_name(
    config: Path, listing: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for flag in ("--details", "-v"):
        assert main(["--config", str(config), "plan", "--listing", str(listing), flag]) == 0
        out = capsys.readouterr().out
        assert "4_ubuntu-2gb_2023_06_19-19_34_40.qcow2.gz" in out
        assert "· backups · policy default · ok · would delete 2 of 4 backups (2 kept)" in out
    assert main(["--config", str(config), "plan", "--listing", str(listing)]) == 0
    assert "qcow2.gz" not in capsys.readouterr().out


def test_main_run_on_a_terminal_leaves_to_its_report_what_the_report_says(
    sim: Simulator,
    live_config: MakeLiveConfig,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)

    assert main(["--config", str(live_config()), "--log-format", "console", "run"]) == 0

    captured = capsys.readouterr()
    assert "locked" in captured.out  # "Not pruned this pass": the locked server
    assert "Summary: deleted " in captured.out
    for event in ("guard.locked", "backup.deleted", "pass.summary"):
        assert event not in captured.err
    assert "pass.start" in captured.err  # what the report does not say stays in the log


@pytest.mark.parametrize("log_format", ["auto", "console"])
def test_main_run_draws_no_progress_where_stderr_is_no_terminal(
    sim: Simulator,
    live_config: MakeLiveConfig,
    capsys: pytest.CaptureFixture[str],
    log_format: str,
) -> None:
    assert main(["--config", str(live_config()), "--log-format", log_format, "run"]) == 0

    err = capsys.readouterr().err
    assert sim.deleted
    assert "\r" not in err
    assert "━" not in err
    assert not re.search(r"\d+/\d+ ", err)
    if log_format == "auto":  # stderr is no terminal: JSON, every line of it
        assert all(json.loads(line) for line in err.splitlines())
