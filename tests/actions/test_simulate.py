"""`pruner simulate` in-process: options, outputs, exit codes; on a saved listing and live."""

from __future__ import annotations

import json
import os
import stat
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from pruner.cli import main
from pruner.sim import READ_TOKEN, Simulator, generate_fleet
from tests._factories import DOCS_EXAMPLE_PAGE, item

NOW = "2026-11-27T03:30:00Z"
CONFIG = """\
policies:
  - name: databases
    match: {hostnames: ["db-*"]}
    keep_daily: 7
    keep_weekly: 4
    keep_monthly: 6
  - name: web
    match: {hostnames: ["web-*"]}
    keep_within: 30d
    max_total_size: 1TB
"""

pytestmark = pytest.mark.usefixtures("restore_logging")


def _items() -> list[dict[str, Any]]:
    """A daily db server, a weekly web server, a server no policy matches."""
    now = datetime(2026, 11, 27, 1, 0, tzinfo=UTC)
    daily = [
        item(
            100 + n, 1, server_hostname="db-1", created_at=(now - n * timedelta(days=1)).isoformat()
        )
        for n in range(20)
    ]
    weekly = [
        item(
            200 + n,
            2,
            server_hostname="web-1",
            created_at=(now - n * timedelta(days=7)).isoformat(),
        )
        for n in range(3)
    ]
    other = [item(300, 3, server_hostname="mail-1", created_at=now.isoformat())]
    return [*daily, *weekly, *other]


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    return path


@pytest.fixture
def listing(tmp_path: Path) -> Path:
    path = tmp_path / "listing.json"
    path.write_text(json.dumps(_items()), encoding="utf-8")
    return path


def _simulate(config: Path, *args: str) -> int:
    return main(["--config", str(config), "simulate", *args])


def test_simulate_json_on_a_saved_listing(
    config: Path, listing: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = _simulate(config, "--listing", str(listing), "--now", NOW, "--format", "json")

    captured = capsys.readouterr()
    assert code == 0, captured.err
    document = json.loads(captured.out)
    assert document["schema"] == "pruner.simulation/v1"
    assert document["now"] == "2026-11-27T03:30:00+00:00"
    assert document["days"] == 365
    servers = {s["hostname"]: s for s in document["servers"]}
    assert sorted(servers) == ["db-1", "web-1"]
    assert servers["db-1"]["cadence_seconds"] == 86400
    assert servers["web-1"]["cadence_seconds"] == 7 * 86400
    assert servers["web-1"]["settled"] == {"min": 5, "max": 5}
    assert len(document["totals"]) == 366
    assert [s["hostname"] for s in document["not_simulated"]] == ["mail-1"]


def test_simulate_is_deterministic_for_a_listing_and_now(
    config: Path, listing: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outputs = []
    for _ in range(2):
        assert _simulate(config, "--listing", str(listing), "--now", NOW, "--days", "40") == 0
        outputs.append(capsys.readouterr().out)

    assert outputs[0] == outputs[1]
    assert "db-1" in outputs[0]
    assert "Totals over time" in outputs[0]


def test_simulate_days_and_cadence_options(
    config: Path, listing: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--listing", str(listing), "--now", NOW, "--format", "json"]

    assert _simulate(config, *args, "--days", "10", "--cadence", "6h") == 0

    document = json.loads(capsys.readouterr().out)
    assert document["days"] == 10
    assert {s["cadence_seconds"] for s in document["servers"]} == {21600}
    assert all(len(s["timeline"]) == 11 for s in document["servers"])


def test_simulate_draws_the_svg_beside_the_report(
    config: Path, listing: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    picture = tmp_path / "backtest.svg"

    code = _simulate(config, "--listing", str(listing), "--now", NOW, "--svg", str(picture))

    assert code == 0
    assert "db-1" in capsys.readouterr().out  # the table still goes to stdout
    rows = [
        g
        for g in ET.parse(picture).getroot().iter("{http://www.w3.org/2000/svg}g")
        if g.get("class") == "server"
    ]
    assert len(rows) == 2


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--cadence", "1mo", "calendar units (y, mo) are not allowed here"),
        ("--cadence", "0s", "a cadence must be longer than zero"),
        ("--cadence", "often", "is not a duration"),
        ("--days", "-1", "must be a whole number of days from 0"),
        ("--days", "1.5", "must be a whole number of days from 0"),
        ("--now", "2026-11-27T03:30:00", "has no UTC offset"),
    ],
)
def test_simulate_rejects_bad_options_with_2(
    *,
    config: Path,
    listing: Path,
    capsys: pytest.CaptureFixture[str],
    option: str,
    value: str,
    message: str,
) -> None:
    assert _simulate(config, "--listing", str(listing), option, value) == 2

    captured = capsys.readouterr()
    assert message in captured.err
    assert captured.out == ""


def test_simulate_refuses_an_svg_in_a_missing_folder_before_reading_anything(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nowhere" / "backtest.svg"
    never_read = tmp_path / "absent.json"

    assert _simulate(config, "--listing", str(never_read), "--svg", str(missing)) == 2

    captured = capsys.readouterr()
    assert f"--svg {missing}: the folder {missing.parent} does not exist" in captured.err
    assert captured.out == ""


def test_simulate_exits_1_when_a_group_cannot_be_judged(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    items = _items()
    web = next(i for i in items if i["server_hostname"] == "web-1")
    del web["size"]  # max_total_size needs it: that server is not simulated
    listing = tmp_path / "listing.json"
    listing.write_text(json.dumps(items), encoding="utf-8")

    code = _simulate(config, "--listing", str(listing), "--now", NOW, "--format", "json")

    captured = capsys.readouterr()
    assert code == 1
    document = json.loads(captured.out)
    assert [s["hostname"] for s in document["servers"]] == ["db-1"]
    [web_left_out] = [s for s in document["not_simulated"] if s["hostname"] == "web-1"]
    assert "lacks size" in web_left_out["why"]
    errors = [json.loads(line) for line in captured.err.splitlines()]
    assert any(e["level"] == "error" and "lacks size" in e["message"] for e in errors)


def test_simulate_exits_2_on_an_unusable_listing(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text("[", encoding="utf-8")

    assert _simulate(config, "--listing", str(broken)) == 2
    assert "broken.json:1:2: not valid JSON" in capsys.readouterr().err


# --- live, against the in-process simulator -----------------------------------------------------


@pytest.fixture
def live(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Simulator, Path]]:
    """A simulated account, its Read key in $VPSBG_API_TOKEN, and a config for it."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    monkeypatch.setenv("VPSBG_API_TOKEN", READ_TOKEN)
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    fleet = generate_fleet(now=datetime(2026, 11, 27, tzinfo=UTC), servers=8, days=20, seed=1)
    with Simulator(fleet) as simulator:
        settings = {
            "api": {"base_url": simulator.base_url, "retries": 1, "backoff": "0.001s"},
            "state_dir": str(tmp_path / "state"),
            "policies": [{"name": "all", "keep_daily": 7, "keep_weekly": 4}],
        }
        path = tmp_path / "live.yaml"
        path.write_text(json.dumps(settings), encoding="utf-8")
        yield simulator, path
    assert simulator.errors == []


def test_simulate_lists_live_with_a_read_key_and_deletes_nothing(
    live: tuple[Simulator, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    simulator, config = live

    code = _simulate(config, "--now", NOW, "--days", "30", "--format", "json")

    captured = capsys.readouterr()
    assert code == 0, captured.err
    document = json.loads(captured.out)
    listed = {(b["server_id"], "backups") for b in simulator.backups("backups")}
    assert {(s["server_id"], s["resource"]) for s in document["servers"]} == listed
    assert simulator.request_count("DELETE") == 0
    assert not (config.parent / "state").exists()  # nothing recorded: not a pass


def test_simulate_says_when_the_svg_cannot_be_written(
    config: Path, listing: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    taken = tmp_path / "taken.svg"
    taken.mkdir()  # a folder where the picture should go

    assert _simulate(config, "--listing", str(listing), "--svg", str(taken)) == 2

    captured = capsys.readouterr()
    assert f"--svg {taken}: cannot write it" in captured.err
    assert "Traceback" not in captured.err
    assert list(tmp_path.glob(".taken.svg.*")) == []  # no temporary file left behind


def test_simulate_writes_the_svg_as_the_umask_says(
    config: Path, listing: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    picture = tmp_path / "backtest.svg"
    picture.write_text("an older picture", encoding="utf-8")
    previous = os.umask(0o027)
    try:
        assert _simulate(config, "--listing", str(listing), "--svg", str(picture)) == 0
    finally:
        os.umask(previous)

    assert stat.S_IMODE(picture.stat().st_mode) == 0o640
    assert picture.read_text(encoding="utf-8").startswith("<?xml")
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "backtest.svg",
        "config.yaml",
        "listing.json",
    ]


# --- the example in docs/backtest.md ------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = [
    "--config",
    "docs/examples/backtest.yaml",
    "simulate",
    "--listing",
    "docs/examples/backtest-listing.json",
    "--now",
    "2026-11-27T03:30:00Z",
    "--svg",
    "docs/backtest-example.svg",
]


def test_the_docs_example_is_what_its_documented_command_makes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    page = (ROOT / "docs" / "backtest.md").read_text(encoding="utf-8")
    assert f"pruner {' '.join(EXAMPLE)}\n" in page
    monkeypatch.chdir(ROOT)
    picture = tmp_path / "backtest-example.svg"

    assert main([*EXAMPLE[:-1], str(picture)]) == 0

    committed = ROOT / "docs" / "backtest-example.svg"
    assert picture.read_text(encoding="utf-8") == committed.read_text(encoding="utf-8"), (
        f"docs/backtest-example.svg is stale: run `pruner {' '.join(EXAMPLE)}` and commit it"
    )
    table = capsys.readouterr().out
    assert f"```text\n{table}```" in page, "the table in docs/backtest.md is stale"


def test_simulate_warns_of_a_saved_listing_that_says_it_is_incomplete(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    saved = tmp_path / "backups-page.json"
    saved.write_text(DOCS_EXAMPLE_PAGE, encoding="utf-8")  # meta.total says 6, it holds 2

    assert _simulate(config, "--listing", str(saved), "--now", NOW) == 0

    events = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    warnings = [e["message"] for e in events if e["level"] == "warning"]
    assert any("meta.total says 6" in message for message in warnings)
