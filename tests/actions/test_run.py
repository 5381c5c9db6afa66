"""`pruner run` in process against the simulated API: what a scoped pass (`--server`, `--policy`)
does to the metrics textfile. A whole pass writes it; a scoped one leaves it as the last whole
pass wrote it, since its gauges would describe a few servers as if they were the account."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from pruner.cli import main
from pruner.sim import WRITE_TOKEN, Fleet, Simulator, generate_fleet

pytestmark = pytest.mark.usefixtures("restore_logging")


@pytest.fixture
def fleet() -> Fleet:
    return generate_fleet(now=datetime.now(UTC), servers=8, days=20, seed=1)


@pytest.fixture(autouse=True)
def token(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    monkeypatch.setenv("VPSBG_API_TOKEN", WRITE_TOKEN)
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)


@pytest.fixture
def textfile(tmp_path: Path) -> Path:
    return tmp_path / "pruner.prom"


@pytest.fixture
def config(sim: Simulator, tmp_path: Path, textfile: Path) -> Path:
    settings: dict[str, Any] = {
        "api": {"base_url": sim.base_url, "retries": 1, "backoff": "0.001s", "timeout": "5s"},
        "dry_run": True,
        "state_dir": str(tmp_path / "state"),
        "safety": {"max_delete_fraction": 1.0, "max_deletions_per_run": None},
        "metrics": {"textfile": str(textfile)},
        "policies": [{"name": "all", "keep_daily": 7}],
    }
    path = tmp_path / "config.yaml"
    path.write_text(json.dumps(settings), encoding="utf-8")
    return path


def _server(sim: Simulator) -> int:
    return next(s["id"] for s in sim.servers() if not s.get("locked"))


def _events(stderr: str) -> Iterator[dict[str, Any]]:
    return (json.loads(line) for line in stderr.splitlines() if line.startswith("{"))


@pytest.mark.parametrize("scope", [["--server", "SERVER"], ["--policy", "all"]])
def test_a_scoped_run_leaves_the_textfile_of_the_last_whole_pass_and_says_why(
    sim: Simulator,
    config: Path,
    textfile: Path,
    capsys: pytest.CaptureFixture[str],
    scope: list[str],
) -> None:
    assert main(["--config", str(config), "run"]) == 0
    whole = textfile.read_bytes()
    capsys.readouterr()
    options = [str(_server(sim)) if option == "SERVER" else option for option in scope]

    code = main(["--log-format", "json", "--config", str(config), "run", *options])

    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert textfile.read_bytes() == whole
    [skipped] = [e for e in _events(captured.err) if e["event"] == "metrics.textfile_skipped"]
    assert skipped["path"] == str(textfile)
    assert "scoped" in skipped["message"]


def test_a_scoped_run_writes_no_textfile_where_there_was_none(
    sim: Simulator, config: Path, textfile: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["--config", str(config), "run", "--server", str(_server(sim))])

    assert code == 0, capsys.readouterr().err
    assert not textfile.exists()


def test_a_scoped_apply_leaves_the_textfile_alone_too(
    sim: Simulator,
    config: Path,
    textfile: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["--config", str(config), "plan", "--format", "json"]) == 0
    plan = tmp_path / "plan.json"
    plan.write_text(capsys.readouterr().out, encoding="utf-8")

    code = main(["--config", str(config), "apply", str(plan), "--server", str(_server(sim))])

    assert code == 0, capsys.readouterr().err
    assert not textfile.exists()
    assert main(["--config", str(config), "apply", str(plan)]) == 0
    assert textfile.exists()  # a whole apply writes it, as run does
