"""The client over real HTTP against the VPSBG API simulator on 127.0.0.1 (no real waits)."""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from structlog.testing import capture_logs

from pruner.engine.results import DeleteOutcome
from pruner.sim import (
    READ_TOKEN,
    WRITE_TOKEN,
    Faults,
    Fleet,
    ScriptedResponse,
    Simulator,
    generate_fleet,
)
from pruner.vpsbg.client import ApiClient, build_session
from pruner.vpsbg.errors import (
    ApiAuthError,
    ApiPermissionError,
    IncompleteListing,
    ListedResource,
    PassInterrupted,
)
from pruner.vpsbg.fetch import fetch_listing
from pruner.vpsbg.token import Secret
from tests._factories import RecordedProgress

NOW = datetime(2026, 11, 27, 3, 30, tzinfo=UTC)
RETRIES = 5

MakeClient = Callable[..., ApiClient]


@pytest.fixture(scope="module")
def big_fleet() -> Fleet:
    return generate_fleet(now=NOW)  # 30 servers, a few thousand backups


@pytest.fixture(scope="module")
def fleet() -> Fleet:
    return generate_fleet(now=NOW, servers=8, days=60)  # ten pages of backups: quick to serve


@pytest.fixture
def sim(request: pytest.FixtureRequest) -> Iterator[Simulator]:
    """A simulator of `fleet`, or of the fixture named by indirect parametrisation."""
    fleet: Fleet = request.getfixturevalue(getattr(request, "param", "fleet"))
    with Simulator(fleet) as simulator:
        yield simulator
    assert simulator.errors == []


@pytest.fixture
def make_client(sim: Simulator) -> Iterator[MakeClient]:
    clients: list[ApiClient] = []
    sessions = []

    def make(token: str = WRITE_TOKEN, **options: Any) -> ApiClient:
        settings: dict[str, Any] = {
            "timeout": 5.0,
            "retries": RETRIES,
            "backoff": 0.001,
            "concurrency": 4,
        }
        settings.update(options)
        session = build_session(settings["concurrency"])
        session.trust_env = False  # no proxy from the environment for 127.0.0.1
        sessions.append(session)
        api = ApiClient(sim.base_url, Secret(token), session=session, **settings)
        clients.append(api)
        return api

    yield make
    for session in sessions:
        session.close()


def by_id(items: list[Any]) -> list[Any]:
    return sorted(items, key=lambda item: item["id"])


def state(sim: Simulator, resource: ListedResource) -> list[Any]:
    if resource == "servers":
        return sim.servers()
    return sim.backups(resource)


def unlocked_ids(fleet: Fleet, resource: str = "backups") -> list[int]:
    """Ids of items whose server is not locked: their deletes can succeed."""
    unlocked = {server["id"] for server in fleet.servers if not server.get("locked")}
    items = fleet.backups if resource == "backups" else fleet.snapshots
    return [item["id"] for item in items if item["server_id"] in unlocked]


def pages(count: int) -> int:
    return max(1, math.ceil(count / 50))


def outcome_within(seconds: float, call: Callable[[], object]) -> object:
    """What `call` returned or raised. It runs in a thread, so a call that hangs fails the test
    after `seconds` instead of hanging the suite (the simulator's teardown then cuts it)."""
    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(call())
        except Exception as error:
            outcome.append(error)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(seconds)
    assert outcome, f"still waiting after {seconds}s"
    return outcome[0]


@pytest.mark.parametrize("sim", ["big_fleet"], indirect=True)
def test_list_items_reads_the_whole_account_one_request_a_page(
    sim: Simulator, make_client: MakeClient, big_fleet: Fleet
) -> None:
    listed = make_client().list_items("backups")

    assert len(big_fleet.backups) > 2000
    assert by_id(listed) == sim.backups()
    assert sim.request_count("GET", "/v1/backups") == pages(len(big_fleet.backups))


def test_list_items_one_page_at_a_time_reads_the_same(
    sim: Simulator, make_client: MakeClient, fleet: Fleet
) -> None:
    listed = make_client(concurrency=1).list_items("backups")

    assert listed == sorted(listed, key=lambda item: (item["created_at"][:10], item["id"]))
    assert by_id(listed) == sim.backups()
    assert sim.request_count("GET", "/v1/backups") == pages(len(fleet.backups))


@pytest.mark.parametrize("resource", ["snapshots", "servers"])
def test_list_items_reads_snapshots_and_servers_of_every_status(
    sim: Simulator, make_client: MakeClient, resource: ListedResource
) -> None:
    listed = make_client().list_items(resource)

    assert by_id(listed) == state(sim, resource)
    assert sim.request_count("GET", f"/v1/{resource}") == pages(len(listed))
    if resource == "servers":
        assert "terminated" in {server["status"] for server in listed}


FAULTS = {
    "500s": Faults(error_rate=0.3),
    "429s": Faults(rate_limit_every=4, retry_after=0.01),
    "garbage": Faults(garbage_rate=0.3),
    "all at once": Faults(error_rate=0.2, rate_limit_every=5, retry_after=0.01, garbage_rate=0.2),
}


@pytest.mark.parametrize("faults", FAULTS.values(), ids=FAULTS.keys())
def test_list_items_under_faults_is_whole_or_incomplete_never_partial(
    sim: Simulator, make_client: MakeClient, faults: Faults
) -> None:
    sim.faults = faults
    sleeps: list[float] = []
    stop = threading.Event()

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        stop.wait(seconds)

    api = make_client(sleep=sleep, stop=stop)

    outcome: list[Any] | IncompleteListing
    try:
        outcome = api.list_items("backups")
    except IncompleteListing as error:
        outcome = error
    if isinstance(outcome, IncompleteListing):
        assert outcome.resource == "backups"
    else:
        assert by_id(outcome) == sim.backups()
    assert sleeps  # the faults were met, and waited out
    if faults.rate_limit_every:
        assert faults.retry_after in sleeps


def test_list_items_relists_when_backups_appear_during_the_listing(
    sim: Simulator, make_client: MakeClient, fleet: Fleet
) -> None:
    sim.faults = Faults(appear_during_listing=3)

    with capture_logs() as logs:
        listed = make_client().list_items("backups")

    assert by_id(listed) == sim.backups()
    assert len(listed) == len(fleet.backups) + 3
    # The first listing stops at its first batch (pages 2 to 5), where the new total shows.
    assert sim.request_count("GET", "/v1/backups") == 1 + 4 + pages(len(fleet.backups) + 3)
    assert [log["event"] for log in logs] == ["api.relist"]


def test_list_items_page_failing_through_every_retry_is_incomplete(
    sim: Simulator, make_client: MakeClient
) -> None:
    def on_request(method: str, path: str) -> None:
        # Page 2 (the second GET) and each of its retries: 500.
        if path == "/v1/backups" and sim.request_count("GET", path) == 2:
            sim.script("GET", path, *[ScriptedResponse(500, {"message": "Server Error"})] * 6)

    sim.on_request(on_request)

    with pytest.raises(IncompleteListing, match="page 2 could not be read: HTTP 500") as caught:
        make_client(concurrency=1).list_items("backups")

    assert caught.value.page == 2
    assert sim.request_count("GET", "/v1/backups") == 1 + RETRIES + 1


def test_fetch_listing_under_faults_is_whole_or_marked_incomplete(
    sim: Simulator, make_client: MakeClient, fleet: Fleet
) -> None:
    sim.faults = Faults(error_rate=0.3, garbage_rate=0.2)

    listing = fetch_listing(make_client(retries=2), ["backups", "snapshots"])

    for resource in ("backups", "snapshots"):
        listed = sorted(b.id for b in listing.backups if b.resource == resource)
        if resource in listing.incomplete_resources:
            assert listed == []
        else:
            assert listed == [item["id"] for item in sim.backups(resource)]
    if listing.servers_complete:
        assert listing.servers is not None
        assert sorted(s.id for s in listing.servers) == [s["id"] for s in sim.servers()]
    else:
        assert listing.servers is None
    assert all(p.level == "error" for p in listing.problems)
    assert len(listing.problems) == len(listing.incomplete_resources) + (
        not listing.servers_complete
    )


def test_fetch_listing_over_http_is_complete_and_parsed(
    sim: Simulator, make_client: MakeClient, fleet: Fleet
) -> None:
    listing = fetch_listing(make_client(), ["backups", "snapshots"])

    assert listing.servers_complete
    assert listing.incomplete_resources == frozenset()
    assert [p for p in listing.problems if p.level == "error"] == []
    assert len(listing.backups) == len(fleet.backups) + len(fleet.snapshots)
    assert listing.servers is not None
    assert len(listing.servers) == len(fleet.servers)


def test_delete_removes_the_backup_then_finds_it_gone(
    sim: Simulator, make_client: MakeClient, fleet: Fleet
) -> None:
    api = make_client()
    victim = unlocked_ids(fleet)[0]

    first = api.delete("backups", victim)
    again = api.delete("backups", victim)

    assert (first.result, first.status) == ("deleted", 204)
    assert (again.result, again.status) == ("already_gone", 404)
    assert victim not in {item["id"] for item in sim.backups()}
    assert sim.deleted == [("backups", victim)]


def test_delete_snapshot_removes_it(sim: Simulator, make_client: MakeClient, fleet: Fleet) -> None:
    victim = unlocked_ids(fleet, "snapshots")[0]

    assert make_client().delete("snapshots", victim).result == "deleted"
    assert victim not in {item["id"] for item in sim.backups("snapshots")}


def test_delete_of_a_locked_servers_backup_ends_locked(
    sim: Simulator, make_client: MakeClient, fleet: Fleet
) -> None:
    locked = next(server["id"] for server in fleet.servers if server.get("locked"))
    victim = next(item["id"] for item in fleet.backups if item["server_id"] == locked)

    outcome = make_client().delete("backups", victim)

    assert (outcome.result, outcome.status) == ("locked", 423)
    assert sim.request_count("DELETE", f"/v1/backups/{victim}") == RETRIES + 1
    assert victim in {item["id"] for item in sim.backups()}


def test_delete_under_random_locks_matches_the_simulator(
    sim: Simulator, make_client: MakeClient, fleet: Fleet
) -> None:
    sim.faults = Faults(locked_delete_rate=0.6)
    victims = unlocked_ids(fleet)[:20]
    api = make_client(retries=1)

    outcomes = [api.delete("backups", victim) for victim in victims]

    remaining = {item["id"] for item in sim.backups()}
    assert {o.result for o in outcomes} == {"deleted", "locked"}
    for outcome in outcomes:
        assert (outcome.id in remaining) == (outcome.result == "locked")


def test_delete_with_a_read_token_is_a_permission_error(
    sim: Simulator, make_client: MakeClient, fleet: Fleet
) -> None:
    victim = unlocked_ids(fleet)[0]

    with pytest.raises(ApiPermissionError, match="Read permission only"):
        make_client(READ_TOKEN).delete("backups", victim)

    assert victim in {item["id"] for item in sim.backups()}
    assert sim.request_count("DELETE") == 1


def test_list_items_with_an_unknown_token_is_an_auth_error(make_client: MakeClient) -> None:
    with pytest.raises(ApiAuthError, match="HTTP 401"):
        make_client("not-a-token").list_items("backups")


def test_check_counts_the_servers_the_key_sees(
    sim: Simulator, make_client: MakeClient, fleet: Fleet
) -> None:
    visible = [s for s in fleet.servers if s["status"] in ("active", "suspended")]

    assert make_client(READ_TOKEN).check() == len(visible)
    assert sim.request_count() == 1


# --- deadlines: api.timeout is the whole request ---------------------------------------------


def test_list_items_a_trickling_answer_fails_within_the_timeout(
    sim: Simulator, make_client: MakeClient
) -> None:
    sim.faults.trickle = 0.01  # a page of servers, a byte every 10 ms: over ten seconds
    api = make_client(timeout=0.2, retries=1, concurrency=1)

    outcome = outcome_within(3.0, lambda: api.list_items("servers"))

    assert isinstance(outcome, IncompleteListing), outcome
    assert "no complete answer within 0.2s" in str(outcome)
    assert "(2 attempts)" in str(outcome)
    assert sim.request_count("GET", "/v1/servers") == 2


def test_list_items_stop_abandons_a_trickling_answer(
    sim: Simulator, make_client: MakeClient
) -> None:
    sim.faults.trickle = 0.01
    stop = threading.Event()
    sim.on_request(lambda _method, _path: stop.set())  # the answer has only begun
    api = make_client(timeout=30.0, concurrency=1, stop=stop)

    started = time.monotonic()
    outcome = outcome_within(3.0, lambda: api.list_items("servers"))

    assert isinstance(outcome, PassInterrupted), outcome
    assert time.monotonic() - started < 1.0
    assert sim.request_count() == 1


def test_delete_a_trickling_answer_is_judged_by_its_status_at_the_deadline(
    sim: Simulator, make_client: MakeClient, fleet: Fleet
) -> None:
    victim = unlocked_ids(fleet)[0]
    sim.script(
        "DELETE",
        f"/v1/backups/{victim}",
        ScriptedResponse(200, {"message": "Deleted."}, perform=True),
    )
    sim.faults.trickle = 0.2  # the 24-byte body would take almost five seconds
    api = make_client(timeout=0.3, retries=0)

    outcome = outcome_within(2.0, lambda: api.delete("backups", victim))

    assert isinstance(outcome, DeleteOutcome), outcome
    assert (outcome.result, outcome.status) == ("deleted", 200)
    assert sim.deleted == [("backups", victim)]


def test_delete_on_the_wire_is_read_whole_after_a_stop(
    sim: Simulator, make_client: MakeClient, fleet: Fleet
) -> None:
    victim = unlocked_ids(fleet)[0]
    sim.script(
        "DELETE",
        f"/v1/backups/{victim}",
        ScriptedResponse(422, {"message": "The backup is in use."}),
    )
    sim.faults.trickle = 0.002
    stop = threading.Event()
    sim.on_request(lambda _method, _path: stop.set())
    api = make_client(timeout=5.0, stop=stop)

    outcome = outcome_within(3.0, lambda: api.delete("backups", victim))

    assert isinstance(outcome, DeleteOutcome), outcome
    assert (outcome.result, outcome.status) == ("failed", 422)
    assert "The backup is in use." in outcome.message


# --- one retry layer: pruner's own, every attempt counted -------------------------------------


def test_delete_timing_out_is_sent_once_per_attempt_pruner_counts(
    sim: Simulator, make_client: MakeClient, fleet: Fleet
) -> None:
    sim.delete_gate.clear()  # every DELETE is held unanswered
    api = make_client(timeout=0.1, retries=1)

    outcome = outcome_within(3.0, lambda: api.delete("backups", unlocked_ids(fleet)[0]))

    assert isinstance(outcome, DeleteOutcome), outcome
    assert outcome.result == "failed"
    assert outcome.message == "no answer within 0.1s (ReadTimeout) (2 attempts)"
    assert sim.request_count("DELETE") == 2  # urllib3 retried none of them underneath


def test_a_refused_connection_is_one_attempt_told_plainly(
    fleet: Fleet, make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    gone = Simulator(fleet)
    gone.start()
    gone.stop()  # nothing listens on its port any more
    api = make_client(retries=1)
    api.base_url = gone.base_url

    with caplog.at_level(logging.DEBUG), capture_logs() as logs:
        outcome = api.delete("backups", 1)

    assert outcome.result == "failed"
    assert outcome.message == "no answer (could not connect: Connection refused) (2 attempts)"
    [retry] = [log for log in logs if log["event"] == "api.retry"]
    assert (retry["attempt"], retry["problem"]) == (
        1,
        "no answer (could not connect: Connection refused)",
    )
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_fetch_listing_tells_its_progress_page_by_page(
    fleet: Fleet, make_client: MakeClient
) -> None:
    progress = RecordedProgress()

    fetch_listing(make_client(), ["backups", "snapshots"], progress=progress)

    for resource, count in (
        ("servers", len(fleet.servers)),
        ("backups", len(fleet.backups)),
        ("snapshots", len(fleet.snapshots)),
    ):
        task = f"listing {resource}"
        assert ("start", task, pages(count)) in progress.calls
        assert progress.steps(task) == pages(count)
        assert progress.of(task)[0] == "start"
        assert progress.of(task)[-1] == "finish"
