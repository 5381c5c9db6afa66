"""`pruner apply PLAN.json` in process, against the simulated API over 127.0.0.1: it deletes
exactly what the reviewed plan deletes, skips what changed or vanished, refuses (exit 4) a plan
too old, made under another config or deleting what the policy keeps now, and otherwise ends as
`run` does: dry run, lock (75), caps (3), audit trail, last-plan.json, metrics."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from pruner.cli import main
from pruner.passes.lock import PassLock
from pruner.passes.pending import PendingDeletions, read_pending, write_pending
from pruner.sim import WRITE_TOKEN, Simulator, generate_fleet

pytestmark = pytest.mark.usefixtures("restore_logging")

Item = tuple[str, int]
Document = dict[str, Any]


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


MakeConfig = Callable[..., Path]


@pytest.fixture
def make_config(sim: Simulator, tmp_path: Path) -> MakeConfig:
    written = iter(range(1, 100))

    def make(**overrides: Any) -> Path:
        settings: dict[str, Any] = {
            "api": {"base_url": sim.base_url, "retries": 1, "backoff": "0.001s", "timeout": "5s"},
            "dry_run": False,
            "state_dir": str(tmp_path / "state"),
            "safety": {"max_delete_fraction": 1.0, "max_deletions_per_run": None},
            "policies": [{"name": "all", "keep_daily": 7}],
        }
        for key, value in overrides.items():
            if isinstance(value, dict):
                settings[key] = {**settings.get(key, {}), **value}
            else:
                settings[key] = value
        path = tmp_path / f"config-{next(written)}.yaml"
        path.write_text(json.dumps(settings), encoding="utf-8")
        return path

    return make


@pytest.fixture
def config(make_config: MakeConfig) -> Path:
    return make_config()


def _plan(config: Path, capsys: pytest.CaptureFixture[str]) -> Document:
    assert main(["--config", str(config), "plan", "--format", "json"]) == 0
    document: Document = json.loads(capsys.readouterr().out)
    return document


def _save(tmp_path: Path, document: Document | str) -> Path:
    path = tmp_path / "plan.json"
    text = document if isinstance(document, str) else json.dumps(document)
    path.write_text(text, encoding="utf-8")
    return path


def _apply(config: Path, plan: Path, *options: str) -> int:
    return main(["--log-format", "json", "--config", str(config), "apply", str(plan), *options])


def _deletions(document: Document) -> list[Document]:
    return [d for d in document["decisions"] if d["action"] == "delete"]


def _items(decisions: list[Document]) -> set[Item]:
    return {(d["resource"], d["id"]) for d in decisions}


def _events(stderr: str) -> list[Document]:
    return [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]


def _last_plan(config: Path) -> Document:
    state_dir = Path(json.loads(config.read_text())["state_dir"])
    document: Document = json.loads((state_dir / "last-plan.json").read_text("utf-8"))
    return document


def _delete_behind_its_back(sim: Simulator, resource: str, backup_id: int) -> None:
    """What another tool (or a person in the web panel) does: DELETE it through the API."""
    request = urllib.request.Request(
        f"{sim.base_url}/{resource}/{backup_id}",
        method="DELETE",
        headers={"Authorization": f"Bearer {WRITE_TOKEN}", "Accept": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=5):
        pass


# --- what apply deletes -------------------------------------------------------------------------


def test_apply_deletes_exactly_the_deletions_left_in_the_reviewed_plan(
    sim: Simulator, config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = _plan(config, capsys)
    planned = _deletions(document)
    assert len(planned) > 4
    for struck in planned[::2]:  # the reviewer keeps every other one
        struck["action"] = "keep"
    reviewed = _items(_deletions(document))

    code = _apply(config, _save(tmp_path, document))

    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert set(sim.deleted) == reviewed
    assert len(sim.deleted) == sim.request_count("DELETE")
    last = _last_plan(config)
    assert _items(_deletions(last)) == reviewed
    assert {d["outcome"] for d in _deletions(last)} == {"deleted"}
    assert last["config_sha256"] == document["config_sha256"]
    unreviewed = _items([d for d in last["decisions"] if d["reasons"] == ["unreviewed"]])
    assert _items(planned) - reviewed <= unreviewed  # struck by the reviewer
    assert not unreviewed & reviewed
    assert f"{len(reviewed)} deletions; {len(reviewed)} carried out, 0 skipped" in captured.out
    events = [e["event"] for e in _events(captured.err)]
    assert events.count("backup.deleted") == len(reviewed)
    assert events[-1] == "pass.summary"


def test_apply_writes_the_audit_trail_as_run_does(
    sim: Simulator, config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = _plan(config, capsys)

    assert _apply(config, _save(tmp_path, document)) == 0

    state_dir = Path(json.loads(config.read_text())["state_dir"])
    lines = [json.loads(line) for line in (state_dir / "audit.jsonl").read_text().splitlines()]
    intents = {(e["resource"], e["id"]) for e in lines if e["event"] == "intent"}
    outcomes = {(e["resource"], e["id"]) for e in lines if e["event"] == "outcome"}
    assert intents == outcomes == _items(_deletions(document)) == set(sim.deleted)


def test_apply_skips_backups_that_vanished_or_changed_since_the_plan(
    sim: Simulator, config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = _plan(config, capsys)
    vanished, changed, *rest = _deletions(document)
    _delete_behind_its_back(sim, vanished["resource"], vanished["id"])
    changed["size"] = (changed["size"] or 0) + 10  # the plan saw another backup under this id
    before = set(sim.deleted)

    code = _apply(config, _save(tmp_path, document))

    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert set(sim.deleted) - before == _items(rest)
    assert f"id {vanished['id']}" in captured.out
    assert "no longer listed" in captured.out
    assert f"id {changed['id']}" in captured.out
    assert "changed since the plan" in captured.out
    skipped = [e for e in _events(captured.err) if e["event"] == "apply.skipped"]
    assert {(e["backup_id"], e["kind"]) for e in skipped} == {
        (vanished["id"], "vanished"),
        (changed["id"], "changed"),
    }


# --- refusals -----------------------------------------------------------------------------------


def test_apply_refuses_a_plan_older_than_max_age_before_listing(
    sim: Simulator, config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = _plan(config, capsys)
    made = datetime.fromisoformat(document["generated_at"])
    document["generated_at"] = (made - timedelta(hours=30)).isoformat()
    requests = sim.request_count()

    code = _apply(config, _save(tmp_path, document))
    after_refusal = sim.request_count()
    shorter = _apply(config, _save(tmp_path, document), "--max-age", "2d")

    captured = capsys.readouterr()
    assert code == 4
    assert after_refusal == requests
    assert shorter == 0
    assert sim.deleted
    assert "--max-age 24h" in captured.out
    refused = [e for e in _events(captured.err) if e["event"] == "apply.refused"]
    assert len(refused) == 1
    summaries = [e for e in _events(captured.err) if e["event"] == "pass.summary"]
    assert [e["exit_code"] for e in summaries] == [4, 0]
    assert summaries[0]["listed"] == 0  # refused before anything was listed


def test_apply_refuses_a_plan_made_under_another_config_unless_told_to_ignore_it(
    sim: Simulator,
    config: Path,
    make_config: MakeConfig,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    plan = _save(tmp_path, _plan(config, capsys))
    changed = make_config(api={"timeout": "6s"})  # decides alike, but is another config

    refused = _apply(changed, plan)
    refusal = capsys.readouterr().out
    ignored = _apply(changed, plan, "--ignore-config-change")

    assert refused == 4
    assert "another config" in refusal
    assert "--ignore-config-change" in refusal
    assert ignored == 0
    assert sim.deleted


def test_apply_refuses_a_plan_that_deletes_what_the_policy_keeps_now_unless_forced(
    sim: Simulator, config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = _plan(config, capsys)
    ok_groups = {(g["resource"], g["server_id"]) for g in document["groups"] if g["status"] == "ok"}
    kept_by_group: dict[tuple[str, int], list[Document]] = {}
    for decision in document["decisions"]:
        if decision["action"] == "keep":
            kept_by_group.setdefault((decision["resource"], decision["server_id"]), []).append(
                decision
            )
    kept = next(ds[-1] for key, ds in kept_by_group.items() if key in ok_groups and len(ds) > 1)
    kept["action"] = "delete"  # a reviewer added one by hand: the oldest a keep rule keeps
    plan = _save(tmp_path, document)

    refused = _apply(config, plan)
    refusal = capsys.readouterr().out
    deleted_when_refused = list(sim.deleted)
    forced = _apply(config, plan, "--force")

    assert refused == 4
    assert deleted_when_refused == []
    assert f"id {kept['id']}" in refusal
    assert "the current policy keeps" in refusal
    assert forced == 0
    assert (kept["resource"], kept["id"]) in set(sim.deleted)
    assert _items(_deletions(document)) == set(sim.deleted)


def test_apply_refuses_to_delete_a_protected_backup_even_with_force(
    sim: Simulator, make_config: MakeConfig, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = make_config()
    document = _plan(config, capsys)
    victim = _deletions(document)[0]
    guarded = make_config(
        policies=[{"name": "all", "keep_daily": 7, "protect": {"ids": [victim["id"]]}}]
    )

    code = _apply(guarded, _save(tmp_path, document), "--ignore-config-change", "--force")

    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert (victim["resource"], victim["id"]) not in set(sim.deleted)
    assert _items(_deletions(document)) - set(sim.deleted) == {(victim["resource"], victim["id"])}
    assert "protected" in captured.out


# --- bad input, dry run, lock, caps ------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        '{"schema": "pruner.plan/v1", "generated_at": "2026-11-27T03:30:00+00:00", "deci',
        '{"schema": "pruner.simulation/v1", "runs": []}',
        "[]",
    ],
)
def test_apply_exits_2_on_a_file_that_is_not_a_plan_and_contacts_nothing(
    sim: Simulator, config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str
) -> None:
    code = _apply(config, _save(tmp_path, text))

    captured = capsys.readouterr()
    assert code == 2
    assert sim.request_count() == 0
    assert captured.err.splitlines()[-1].startswith(f"pruner: {tmp_path / 'plan.json'}: ")
    assert "pruner plan --format json" in captured.err


@pytest.mark.parametrize("how", ["flag", "config"])
def test_apply_dry_run_sends_no_delete_and_says_what_it_would_delete(
    sim: Simulator,
    make_config: MakeConfig,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    how: str,
) -> None:
    config = make_config(dry_run=how == "config")
    document = _plan(config, capsys)

    code = _apply(config, _save(tmp_path, document), *(["--dry-run"] if how == "flag" else []))

    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert sim.request_count("DELETE") == 0
    assert "DRY RUN" in captured.out
    assert f"would delete {len(_deletions(document))} " in captured.out
    assert _items(_deletions(_last_plan(config))) == _items(_deletions(document))


def test_apply_exits_75_while_another_pass_holds_the_lock(
    sim: Simulator, config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = _plan(config, capsys)
    document["generated_at"] = "2020-01-01T00:00:00+00:00"  # 4 too, but 75 comes first
    plan = _save(tmp_path, document)
    requests = sim.request_count()

    with PassLock(Path(json.loads(config.read_text())["state_dir"])):
        code = _apply(config, plan)

    assert code == 75
    assert sim.request_count() == requests
    assert "another pruner pass holds the lock" in capsys.readouterr().err


def test_apply_exits_3_when_what_it_deletes_trips_a_cap(
    sim: Simulator, make_config: MakeConfig, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = _plan(make_config(), capsys)
    capped = make_config(safety={"max_deletions_per_run": 1})

    code = _apply(capped, _save(tmp_path, document), "--ignore-config-change")

    out = capsys.readouterr().out
    assert code == 3
    assert sim.request_count("DELETE") == 0
    assert "max_deletions_per_run" in out
    assert "apply the plan in parts" in out
    assert "--allow-large-deletions" not in out  # not an option of apply


def test_apply_writes_the_metrics_textfile_with_a_refused_result(
    sim: Simulator, make_config: MakeConfig, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    textfile = tmp_path / "pruner.prom"
    config = make_config(metrics={"textfile": str(textfile)})
    document = _plan(config, capsys)
    document["generated_at"] = "2020-01-01T00:00:00+00:00"

    assert _apply(config, _save(tmp_path, document)) == 4

    assert 'pruner_runs_total{result="refused"} 1.0' in textfile.read_text()


@pytest.mark.parametrize(
    ("given", "says"), [("1mo", "calendar units"), ("0s", "the age must be longer than zero")]
)
def test_apply_exits_2_on_a_max_age_it_cannot_use(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], given: str, says: str
) -> None:
    code = _apply(config, tmp_path / "plan.json", "--max-age", given)

    assert code == 2
    assert f"argument --max-age: '{given}': {says}" in capsys.readouterr().err


# --- scoped: --server, --policy -----------------------------------------------------------------


def _by_server(decisions: list[Document]) -> dict[int, set[Item]]:
    found: dict[int, set[Item]] = {}
    for decision in decisions:
        found.setdefault(decision["server_id"], set()).add((decision["resource"], decision["id"]))
    return found


def test_apply_scoped_to_a_server_deletes_its_reviewed_deletions_alone(
    sim: Simulator, config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = _plan(config, capsys)
    by_server = _by_server(_deletions(document))
    server = max(by_server, key=lambda server_id: len(by_server[server_id]))
    others = _items(_deletions(document)) - by_server[server]
    assert others

    code = _apply(config, _save(tmp_path, document), "--server", str(server))

    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert set(sim.deleted) == by_server[server]
    assert f"Scoped to servers {server}: no other server was planned" in captured.out
    assert f"{len(others)} out of scope" in captured.out
    last = _last_plan(config)
    assert last["scope"] == {"servers": [str(server)], "policy": None}
    assert {group["server_id"] for group in last["groups"]} == {server}
    events = _events(captured.err)
    assert [e for e in events if e["event"] in ("apply.skipped", "apply.refused")] == []
    review = next(e for e in events if e["event"] == "apply.review")
    assert review["out_of_scope"] == len(others)
    summary = next(e for e in events if e["event"] == "pass.summary")
    assert summary["reviewed_out_of_scope"] == len(others)


def test_apply_scoped_neither_refuses_nor_deletes_what_is_out_of_scope(
    sim: Simulator, config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = _plan(config, capsys)
    by_server = _by_server(_deletions(document))
    server, other = sorted(by_server, key=lambda server_id: len(by_server[server_id]))[-2:]
    kept_elsewhere = next(
        d
        for d in document["decisions"]
        if d["server_id"] == other and d["action"] == "keep" and d["reasons"] != ["protected"]
    )
    kept_elsewhere["action"] = "delete"  # out of scope: the whole plan would be refused
    plan = _save(tmp_path, document)

    whole = _apply(config, plan, "--dry-run")
    scoped = _apply(config, plan, "--server", str(server))

    captured = capsys.readouterr()
    assert whole == 4
    assert scoped == 0, captured.err
    assert set(sim.deleted) == by_server[server]


def test_apply_scoped_judges_the_caps_on_the_scoped_deletions(
    sim: Simulator, make_config: MakeConfig, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = _plan(make_config(), capsys)
    by_server = _by_server(_deletions(document))
    server = min(by_server, key=lambda server_id: len(by_server[server_id]))
    capped = make_config(safety={"max_deletions_per_run": len(by_server[server])})
    plan = _save(tmp_path, document)

    whole = _apply(capped, plan, "--ignore-config-change", "--dry-run")
    scoped = _apply(capped, plan, "--ignore-config-change", "--server", str(server))

    captured = capsys.readouterr()
    assert whole == 3
    assert scoped == 0, captured.err
    assert set(sim.deleted) == by_server[server]


def test_apply_scoped_to_a_policy_deletes_that_policys_reviewed_deletions_alone(
    sim: Simulator, make_config: MakeConfig, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = make_config(
        policies=[
            {"name": "snapshots", "resource": "snapshots", "keep_last": 1},
            {"name": "all", "keep_daily": 7},
        ]
    )
    document = _plan(config, capsys)
    snapshots = {item for item in _items(_deletions(document)) if item[0] == "snapshots"}
    assert snapshots
    assert _items(_deletions(document)) - snapshots

    code = _apply(config, _save(tmp_path, document), "--policy", "snapshots")

    assert code == 0, capsys.readouterr().err
    assert set(sim.deleted) == snapshots
    assert _last_plan(config)["scope"] == {"servers": [], "policy": "snapshots"}


def test_apply_exits_2_on_a_policy_the_config_does_not_have_before_any_request(
    sim: Simulator, config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = _save(tmp_path, _plan(config, capsys))
    requests = sim.request_count()

    code = _apply(config, plan, "--policy", "al")

    assert code == 2
    assert sim.request_count() == requests
    assert "--policy al: the config has no such policy; its policies are: all" in (
        capsys.readouterr().err
    )


# --- two-phase deletion: apply reads pending.json, never writes it -------------------------------


def _pending_path(config: Path) -> Path:
    return Path(json.loads(config.read_text())["state_dir"]) / "pending.json"


def _first_planned_a_day_earlier(config: Path) -> None:
    """As if the pass that recorded pending.json had run a day ago."""
    path = _pending_path(config)
    pending = read_pending(path)
    assert pending is not None
    earlier = [
        replace(e, first_seen=e.first_seen - timedelta(days=1)) for e in pending.entries.values()
    ]
    write_pending(path, PendingDeletions.of(earlier))


def test_apply_refuses_a_deletion_that_waits_for_its_confirmation_and_force_keeps_it(
    sim: Simulator, make_config: MakeConfig, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = make_config(safety={"confirm_after": "12h"})
    document = _plan(config, capsys)  # no pass planned anything yet: every deletion waits
    waiting = [d for d in document["decisions"] if d["reasons"][0].startswith("pending:")]
    assert waiting
    assert _deletions(document) == []
    for decision in waiting:
        decision["action"] = "delete"  # a reviewer who will not wait
    plan = _save(tmp_path, document)

    refused = _apply(config, plan)
    refusal = capsys.readouterr().out
    forced = _apply(config, plan, "--force")

    out = " ".join(capsys.readouterr().out.split())
    assert refused == 4
    assert "waits for its confirmation" in refusal
    assert forced == 0
    assert sim.request_count("DELETE") == 0
    assert "kept although --force" in out
    assert "a deletion that waits for its confirmation (pending, safety.confirm_after)" in out
    assert not _pending_path(config).exists()  # apply reads it, never writes it


def test_apply_deletes_what_passes_confirmed_and_the_next_pass_forgets_those_deleted(
    sim: Simulator, make_config: MakeConfig, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = make_config(safety={"confirm_after": "12h"})
    assert main(["--config", str(config), "run"]) == 0  # records what it plans, deletes nothing
    assert sim.deleted == []
    capsys.readouterr()
    _first_planned_a_day_earlier(config)
    document = _plan(config, capsys)
    for struck in _deletions(document)[::2]:
        struck["action"] = "keep"
    reviewed = _items(_deletions(document))
    assert reviewed
    recorded = _pending_path(config).read_bytes()

    code = _apply(config, _save(tmp_path, document))

    assert code == 0, capsys.readouterr().err
    assert set(sim.deleted) == reviewed
    assert _pending_path(config).read_bytes() == recorded
    assert main(["--config", str(config), "run", "--dry-run"]) == 0
    after = read_pending(_pending_path(config))
    assert after is not None
    assert not set(after.entries) & reviewed  # no longer listed: fallen away
    assert set(after.entries) >= _items(_deletions(document)[1::2]) - reviewed
    struck = {(d["resource"], d["id"]) for d in document["decisions"] if d["action"] == "keep"}
    assert set(after.entries) & struck  # the struck deletions still wait, as they did


def test_apply_with_two_phase_off_leaves_a_pending_json_alone(
    sim: Simulator, make_config: MakeConfig, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    two_phase = make_config(safety={"confirm_after": "12h"})
    assert main(["--config", str(two_phase), "run"]) == 0
    capsys.readouterr()
    recorded = _pending_path(two_phase).read_bytes()
    config = make_config()

    code = _apply(config, _save(tmp_path, _plan(config, capsys)))

    assert code == 0, capsys.readouterr().err
    assert sim.deleted
    assert _pending_path(config).read_bytes() == recorded  # a run would remove it
