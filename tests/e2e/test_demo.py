"""`pruner demo` as a newcomer runs it: no token, no config, nothing but 127.0.0.1.

The demo runs once per module, in a subprocess with a clean environment and an empty working
directory (so no config file is found), with TMPDIR and HOME pointed at empty folders that must
be empty again afterwards. The tests below read its output.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from pruner.actions.demo import EXAMPLE_CONFIG, example_config_path, for_simulator
from pruner.config.load import parse_config
from pruner.sim import WRITE_TOKEN

ROOT = Path(__file__).resolve().parents[2]
WIDTH = 100


@dataclass(frozen=True)
class DemoRun:
    result: subprocess.CompletedProcess[str]
    folder: Path  # the working directory; TMPDIR and HOME are inside it

    @property
    def out(self) -> str:
        return self.result.stdout

    def section(self, start: str, end: str) -> str:
        text = self.out
        return text[text.index(start) : text.index(end, text.index(start))]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    folder = tmp_path_factory.mktemp("demo")
    (folder / "tmp").mkdir()
    (folder / "home").mkdir()
    unset = {"VPSBG_API_TOKEN", "PRUNER_CONFIG", "CREDENTIALS_DIRECTORY"}
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in unset and key.upper() not in {"HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"}
    }
    environment.update(
        TMPDIR=str(folder / "tmp"),
        HOME=str(folder / "home"),
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
    )
    result = subprocess.run(
        [sys.executable, "-m", "pruner", "demo"],
        env=environment,
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return DemoRun(result, folder)


def test_demo_succeeds_without_token_or_config(demo: DemoRun) -> None:
    assert demo.result.returncode == 0, demo.result.stderr
    assert "The pass succeeded." in demo.out
    assert demo.result.stderr == ""  # logs: errors only, unless --log-level says otherwise


def test_demo_says_what_it_changed_in_the_example_config(demo: DemoRun) -> None:
    intro = demo.section("Policies:", "1. The plan")
    assert f"{EXAMPLE_CONFIG}, changed for the simulator:" in intro
    assert re.search(r"safety\.max_delete_fraction +0\.5 -> 1\.0 +\(caps loosened", intro)
    assert re.search(r"safety\.max_deletions_per_run +100 -> null +\(caps loosened", intro)
    assert re.search(r"dry_run +true -> false", intro)
    assert re.search(
        r"api\.base_url +https://api\.vpsbg\.eu/v1 -> http://127\.0\.0\.1:\d+/v1", intro
    )
    assert re.search(r"safety\.confirm_after +12h -> null +\(two-phase deletion off", intro)
    said = " ".join(intro.split())
    assert "Caps loosened and two-phase deletion off:" in said
    # what a real account with the example config goes through: first the wait, then the caps
    assert "the first passes delete nothing: each deletion waits safety.confirm_after (12h)" in said
    assert "`pruner run --allow-large-deletions` once" in said


def test_demo_prints_the_plan_per_server_and_the_first_rows(demo: DemoRun) -> None:
    plan = demo.section("1. The plan", "2. The pass")
    assert re.search(r"^  db-01 +\d+ +databases +\d+ +\d+ ", plan, re.MULTILINE)
    assert re.search(r"^  web-02 +\d+ +web .* locked$", plan, re.MULTILINE)
    assert re.search(r"^  action +id created_at +GB name +reasons$", plan, re.M)  # as --details
    assert "`pruner plan --details` every row of every server" in " ".join(plan.split())


def test_demo_deletes_what_the_plan_said(demo: DemoRun) -> None:
    planned = re.search(r"In all: keep ([\d,]+), delete ([\d,]+)\.", demo.out)
    deleted = re.search(r"Deleted ([\d,]+) backups and ([\d,]+) snapshots in", demo.out)
    assert planned is not None
    assert deleted is not None
    backups, snapshots = (int(n.replace(",", "")) for n in deleted.groups())
    assert backups > 1000
    assert backups + snapshots == int(planned[2].replace(",", ""))


def test_demo_shows_what_each_server_kept_and_why(demo: DemoRun) -> None:
    outcome = demo.section("3. What each server kept", "Guards that tripped")
    db = re.search(
        r"^db-01 \(\d+\) · policy databases · kept (\d+), deleted (\d+).*\n"
        r"((?:    (?!snapshots).*\n)+)",  # the kept backups, before the snapshots line
        outcome,
        re.MULTILINE,
    )
    assert db is not None
    kept = " ".join(line.strip() for line in db[3].splitlines()).split(" · ")
    assert len(kept) == int(db[1])
    assert int(db[2]) > 0
    assert re.fullmatch(r"\w{3} \d{2}(?: \d{2}:\d{2})? LDWM", kept[0])  # the newest: every rule
    assert any(re.fullmatch(r"\w{3} \d{2}(?: \d{2}:\d{2})? P", k) for k in kept)  # pre-upgrade
    assert re.search(r"^web-02 \(\d+\) · policy web · locked: all \d+ kept", outcome, re.M)


def test_demo_notes_the_guards_that_tripped(demo: DemoRun) -> None:
    guards = demo.section("Guards that tripped", "Next steps")
    assert re.search(r"^  locked: web-02 \(\d+\), backups: the server is locked", guards, re.M)
    assert re.search(r"^  stale: app-03 \(\d+\), backups: its newest backup", guards, re.M)
    assert re.search(r"^  orphan: ubuntu-2gb \(\d+\), backups: the server's status", guards, re.M)


def test_demo_ends_with_next_steps(demo: DemoRun) -> None:
    steps = demo.out[demo.out.index("Next steps") :]
    assert "pruner check-config" in steps
    assert "pruner plan" in steps


def test_demo_output_fits_100_columns_and_hides_the_token_it_uses(demo: DemoRun) -> None:
    wide = [line for line in demo.out.splitlines() if len(line) > WIDTH]
    assert wide == []
    assert WRITE_TOKEN not in demo.out + demo.result.stderr


def test_demo_leaves_nothing_behind(demo: DemoRun) -> None:
    state = re.search(r"state_dir +/var/lib/pruner ->\s+(\S+)", demo.out)  # may wrap
    assert state is not None
    state_dir = Path(state[1])
    assert state_dir.parent == demo.folder / "tmp"
    assert not state_dir.exists()
    left = sorted(str(path.relative_to(demo.folder)) for path in demo.folder.rglob("*"))
    assert left == ["home", "tmp"]


# --- in-process ------------------------------------------------------------------------------


def test_example_config_path_finds_the_example_next_to_the_package() -> None:
    path = example_config_path()
    assert path.read_bytes() == (ROOT / EXAMPLE_CONFIG).read_bytes()


def test_for_simulator_loosens_only_what_a_simulator_needs(tmp_path: Path) -> None:
    config = parse_config((ROOT / EXAMPLE_CONFIG).read_text(encoding="utf-8"))
    demo, changes = for_simulator(config, "http://127.0.0.1:8080/v1", tmp_path)
    assert demo.api.base_url == "http://127.0.0.1:8080/v1"
    assert demo.dry_run is False
    assert demo.state_dir == tmp_path
    assert demo.safety.max_delete_fraction == 1.0
    assert demo.safety.max_deletions_per_run is None
    assert config.safety.confirm_after is not None  # the example waits before it deletes ...
    assert demo.safety.confirm_after is None  # ... the demo's one pass deletes at once
    assert demo.safety.min_keep == config.safety.min_keep
    assert demo.safety.stale_after == config.safety.stale_after
    unchanged = [
        replace(policy, max_delete_fraction=original.max_delete_fraction)
        for policy, original in zip(demo.policies, config.policies, strict=True)
    ]
    assert unchanged == list(config.policies)
    assert all(policy.max_delete_fraction == 1.0 for policy in demo.policies)
    assert {change.setting for change in changes} >= {
        "api.base_url",
        "dry_run",
        "state_dir",
        "safety.max_delete_fraction",
        "safety.max_deletions_per_run",
        "safety.confirm_after",
    }


def test_wheel_ships_the_example_config(tmp_path: Path) -> None:
    pytest.importorskip(
        "hatchling", reason="hatchling is not installed here: the wheel cannot be built offline"
    )
    built = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from hatchling.build import build_wheel; print(build_wheel(sys.argv[1]))",
            str(tmp_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    wheel = tmp_path / built.stdout.strip().splitlines()[-1]
    with zipfile.ZipFile(wheel) as archive:
        shipped = archive.read(f"pruner/{EXAMPLE_CONFIG}")
    assert shipped == (ROOT / EXAMPLE_CONFIG).read_bytes()
