from __future__ import annotations

import json
import math
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from pruner.sim import (
    READ_TOKEN,
    WRITE_TOKEN,
    Fleet,
    ScriptedResponse,
    Simulator,
    generate_fleet,
    sofia_offset,
)
from tests._factories import DOCS_EXAMPLE_PAGE

NOW = datetime(2026, 11, 27, 3, 30, tzinfo=UTC)
NAME = re.compile(
    r"^(\d+)_([a-z0-9-]+)_(pre-upgrade_)?(\d{4}_\d{2}_\d{2}-\d{2}_\d{2}_\d{2})\.qcow2\.gz$"
)
SOFIA_OFFSETS = ("+02:00", "+03:00")


@pytest.fixture(scope="module")
def fleet() -> Fleet:
    return generate_fleet(now=NOW)


@pytest.fixture
def http() -> Iterator[requests.Session]:
    session = requests.Session()
    session.trust_env = False  # no proxy from the environment for 127.0.0.1
    yield session
    session.close()


def headers(token: str | None = WRITE_TOKEN, accept: str = "application/json") -> dict[str, str]:
    result = {"Accept": accept}
    if token is not None:
        result["Authorization"] = f"Bearer {token}"
    return result


def get(
    http: requests.Session, sim: Simulator, path: str, token: str = WRITE_TOKEN, **params: Any
) -> requests.Response:
    return http.get(sim.base_url + path, params=params, headers=headers(token), timeout=5)


def delete(
    http: requests.Session, sim: Simulator, path: str, token: str = WRITE_TOKEN
) -> requests.Response:
    return http.delete(sim.base_url + path, headers=headers(token), timeout=5)


def server_named(fleet: Fleet, **fields: object) -> dict[str, Any]:
    return next(s for s in fleet.servers if all(s[k] == v for k, v in fields.items()))


def backups_of(fleet: Fleet, server_id: int) -> list[dict[str, Any]]:
    return [b for b in fleet.backups if b["server_id"] == server_id]


def counter(name: str) -> int:
    match = NAME.match(name)
    assert match is not None, name
    return int(match[1])


def moment(item: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(item["created_at"])


# --- authentication and negotiation --------------------------------------------------------


@pytest.mark.parametrize("authorization", [None, "Bearer nope", f"Basic {WRITE_TOKEN}", "Bearer"])
def test_simulator_answers_401_without_a_valid_bearer_token(
    sim: Simulator, http: requests.Session, authorization: str | None
) -> None:
    sent = {"Accept": "application/json"}
    if authorization is not None:
        sent["Authorization"] = authorization

    response = http.get(sim.base_url + "/backups", headers=sent, timeout=5)

    assert response.status_code == 401
    assert response.json() == {"message": "Unauthenticated."}


def test_simulator_lets_a_read_token_list_but_not_delete(
    sim: Simulator, fleet: Fleet, http: requests.Session
) -> None:
    backup_id = fleet.backups[0]["id"]

    listed = get(http, sim, "/backups", token=READ_TOKEN)
    refused = delete(http, sim, f"/backups/{backup_id}", token=READ_TOKEN)

    assert listed.status_code == 200
    assert refused.status_code == 403
    assert isinstance(refused.json()["message"], str)
    assert backup_id in {b["id"] for b in sim.backups()}
    assert sim.deleted == []


@pytest.mark.parametrize("accept", ["*/*", "text/html", "text/html, application/json;q=0.9"])
def test_simulator_answers_an_html_page_unless_json_is_preferred(
    sim: Simulator, http: requests.Session, accept: str
) -> None:
    response = http.get(sim.base_url + "/backups", headers=headers(accept=accept), timeout=5)

    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    with pytest.raises(requests.JSONDecodeError):
        response.json()


def test_simulator_routes_before_authenticating(sim: Simulator, http: requests.Session) -> None:
    unknown = http.get(sim.base_url + "/nothing-here", timeout=5)
    wrong_method = http.post(sim.base_url + "/backups", headers=headers(), timeout=5)
    servers_are_not_deletable = delete(http, sim, "/servers/2401")

    assert unknown.status_code == 404
    assert wrong_method.status_code == 405
    assert "GET" in wrong_method.headers["Allow"]
    assert servers_are_not_deletable.status_code == 405


# --- backups and snapshots listings --------------------------------------------------------


def test_backups_listing_has_the_docs_shape(sim: Simulator, http: requests.Session) -> None:
    docs = json.loads(DOCS_EXAMPLE_PAGE)

    page = get(http, sim, "/backups").json()

    assert page.keys() == docs.keys()
    assert list(page["links"]) == list(docs["links"])
    assert list(page["meta"]) == list(docs["meta"])
    assert page["data"][0].keys() == docs["data"][0].keys()
    assert page["meta"]["links"][0] == {
        "url": None,
        "label": "pagination.previous",
        "active": False,
    }


def test_backups_listing_pages_by_50_with_absolute_links(
    sim: Simulator, fleet: Fleet, http: requests.Session
) -> None:
    total = len(fleet.backups)
    last_page = math.ceil(total / 50)

    second = get(http, sim, "/backups", page=2).json()
    last = get(http, sim, "/backups", page=last_page).json()

    meta = second["meta"]
    assert (meta["total"], meta["per_page"], meta["last_page"]) == (total, 50, last_page)
    assert (meta["current_page"], meta["from"], meta["to"]) == (2, 51, 100)
    assert [b["id"] for b in second["data"]] == [b["id"] for b in fleet.backups[50:100]]
    assert meta["path"] == f"{sim.base_url}/backups"
    assert second["links"] == {
        "first": f"{sim.base_url}/backups?page=1",
        "last": f"{sim.base_url}/backups?page={last_page}",
        "prev": f"{sim.base_url}/backups?page=1",
        "next": f"{sim.base_url}/backups?page=3",
    }
    active = [link["label"] for link in meta["links"] if link["active"]]
    assert active == ["2"]
    assert len(last["data"]) == total - 50 * (last_page - 1)
    assert last["links"]["next"] is None
    assert last["meta"]["to"] == total


def test_backups_listing_past_the_end_is_empty(
    sim: Simulator, fleet: Fleet, http: requests.Session
) -> None:
    beyond = math.ceil(len(fleet.backups) / 50) + 1

    page = get(http, sim, "/backups", page=beyond).json()

    assert page["data"] == []
    assert (page["meta"]["from"], page["meta"]["to"]) == (None, None)
    assert page["meta"]["total"] == len(fleet.backups)
    assert page["links"]["next"] is None


def test_backups_listing_links_keep_the_query(sim: Simulator, http: requests.Session) -> None:
    page = get(http, sim, "/backups", sort="date", **{"filter[size]": "80"}).json()

    assert page["links"]["next"] == (f"{sim.base_url}/backups?sort=date&filter%5Bsize%5D=80&page=2")


@pytest.mark.parametrize(("sort", "newest_first"), [("date", False), ("-date", True)])
def test_backups_listing_sorts_by_date(
    sim: Simulator, fleet: Fleet, http: requests.Session, sort: str, newest_first: bool
) -> None:
    everything = sorted(fleet.backups, key=lambda b: (moment(b), b["id"]), reverse=newest_first)

    page = get(http, sim, "/backups", sort=sort, page=3).json()

    assert [b["id"] for b in page["data"]] == [b["id"] for b in everything[100:150]]


def test_backups_listing_defaults_to_ascending_id(sim: Simulator, http: requests.Session) -> None:
    ids = [b["id"] for b in get(http, sim, "/backups", page=5).json()["data"]]

    assert ids == sorted(ids)


def test_backups_listing_filters_by_server(
    sim: Simulator, fleet: Fleet, http: requests.Session
) -> None:
    server_id = server_named(fleet, hostname="db-01")["id"]

    page = get(http, sim, "/backups", **{"filter[server_id]": str(server_id)}).json()

    assert page["meta"]["total"] == len(backups_of(fleet, server_id))
    assert {b["server_id"] for b in page["data"]} == {server_id}


def test_backups_listing_filters_by_local_date(
    sim: Simulator, fleet: Fleet, http: requests.Session
) -> None:
    day = fleet.backups[len(fleet.backups) // 2]["created_at"][:10]

    page = get(http, sim, "/backups", **{"filter[date]": day}).json()

    expected = [b["id"] for b in fleet.backups if b["created_at"].startswith(day)]
    assert [b["id"] for b in page["data"]] == expected
    assert 10 < len(expected) <= 50


def test_backups_listing_filters_by_minimum_size(
    sim: Simulator, fleet: Fleet, http: requests.Session
) -> None:
    page = get(http, sim, "/backups", **{"filter[size]": "160"}).json()

    assert page["meta"]["total"] == sum(1 for b in fleet.backups if b["size"] >= 160)
    assert all(b["size"] >= 160 for b in page["data"])


@pytest.mark.parametrize(
    ("path", "params", "status"),
    [
        ("/backups", {"filter[date]": "27.11.2026"}, 422),
        ("/backups", {"filter[size]": "big"}, 422),
        ("/backups", {"filter[owner]": "me"}, 400),
        ("/backups", {"sort": "size"}, 400),
        ("/snapshots", {"filter[size]": "20"}, 400),
    ],
)
def test_listing_rejects_bad_filters(
    sim: Simulator, http: requests.Session, path: str, params: dict[str, str], status: int
) -> None:
    response = get(http, sim, path, **params)

    assert response.status_code == status
    assert isinstance(response.json()["message"], str)
    if status == 422:
        assert response.json()["errors"]


def test_snapshots_listing_has_no_hostnames(
    sim: Simulator, fleet: Fleet, http: requests.Session
) -> None:
    page = get(http, sim, "/snapshots").json()

    assert page["meta"]["total"] == len(fleet.snapshots)
    assert page["meta"]["path"] == f"{sim.base_url}/snapshots"
    assert page["data"][0].keys() == {"id", "server_id", "name", "created_at", "size"}


# --- servers --------------------------------------------------------------------------------


def test_servers_listing_hides_terminated_servers_by_default(
    sim: Simulator, fleet: Fleet, http: requests.Session
) -> None:
    default = get(http, sim, "/servers", per_page=50).json()
    everything = get(http, sim, "/servers", per_page=50, **{"filter[status]": "all"}).json()
    terminated = get(http, sim, "/servers", **{"filter[status]": "terminated"}).json()

    assert {s["status"] for s in default["data"]} == {"active", "suspended"}
    assert everything["data"] == fleet.servers
    assert [s["status"] for s in terminated["data"]] == ["terminated"]
    assert default["meta"]["total"] == len(fleet.servers) - 1


def test_servers_listing_pages_by_15_unless_asked(
    sim: Simulator, fleet: Fleet, http: requests.Session
) -> None:
    first = get(http, sim, "/servers", **{"filter[status]": "all"}).json()
    small = get(http, sim, "/servers", per_page=4, page=2, **{"filter[status]": "all"}).json()

    assert first["meta"]["per_page"] == 15
    assert first["meta"]["last_page"] == 2
    assert small["data"] == fleet.servers[4:8]


@pytest.mark.parametrize("per_page", ["0", "51", "ten"])
def test_servers_listing_rejects_per_page_out_of_range(
    sim: Simulator, http: requests.Session, per_page: str
) -> None:
    response = get(http, sim, "/servers", per_page=per_page)

    assert response.status_code == 422
    assert set(response.json()) == {"message", "errors"}
    assert "per_page" in response.json()["errors"]


def test_single_server_comes_bare(sim: Simulator, fleet: Fleet, http: requests.Session) -> None:
    server = fleet.servers[3]

    found = get(http, sim, f"/servers/{server['id']}")
    missing = get(http, sim, "/servers/99")

    assert found.json() == server
    assert missing.status_code == 404
    assert isinstance(missing.json()["message"], str)


# --- deletion -------------------------------------------------------------------------------


def test_delete_removes_the_backup_then_answers_404(
    sim: Simulator, fleet: Fleet, http: requests.Session
) -> None:
    unlocked = {s["id"] for s in fleet.servers if not s["locked"]}
    backup = next(b for b in fleet.backups if b["server_id"] in unlocked)

    first = delete(http, sim, f"/backups/{backup['id']}")
    again = delete(http, sim, f"/backups/{backup['id']}")

    assert (first.status_code, first.content) == (204, b"")
    assert again.status_code == 404
    assert "message" in again.json()
    assert sim.deleted == [("backups", backup["id"])]
    assert backup["id"] not in {b["id"] for b in sim.backups()}
    assert get(http, sim, "/backups").json()["meta"]["total"] == len(fleet.backups) - 1


def test_delete_removes_a_snapshot(sim: Simulator, fleet: Fleet, http: requests.Session) -> None:
    locked = {s["id"] for s in fleet.servers if s["locked"]}
    snapshot = next(s for s in fleet.snapshots if s["server_id"] not in locked)

    response = delete(http, sim, f"/snapshots/{snapshot['id']}")

    assert response.status_code == 204
    assert sim.deleted == [("snapshots", snapshot["id"])]
    assert len(sim.backups("snapshots")) == len(fleet.snapshots) - 1


def test_move_delete_path_serves_deletes_at_the_new_path_only(
    sim: Simulator, fleet: Fleet, http: requests.Session
) -> None:
    unlocked = {s["id"] for s in fleet.servers if not s["locked"]}
    first, second = [b["id"] for b in fleet.backups if b["server_id"] in unlocked][:2]
    snapshot = next(s["id"] for s in fleet.snapshots if s["server_id"] in unlocked)

    sim.move_delete_path("backups", "/backups/{id}/delete")
    old = delete(http, sim, f"/backups/{first}")
    moved = delete(http, sim, f"/backups/{first}/delete")
    gone = delete(http, sim, f"/backups/{first}/delete")
    unmoved = delete(http, sim, f"/snapshots/{snapshot}")
    no_token = http.delete(
        sim.base_url + f"/backups/{second}/delete", headers=headers(token=None), timeout=5
    )

    assert old.status_code == 405  # the GET route stays, as Laravel answers for it
    assert "DELETE" not in old.headers["Allow"]
    assert (moved.status_code, gone.status_code, unmoved.status_code) == (204, 404, 204)
    assert no_token.status_code == 401
    assert sim.deleted == [("backups", first), ("snapshots", snapshot)]
    assert get(http, sim, f"/backups/{second}").status_code == 200


def test_delete_of_a_locked_servers_backup_is_423(
    sim: Simulator, fleet: Fleet, http: requests.Session
) -> None:
    locked = server_named(fleet, locked=True)
    backup = backups_of(fleet, locked["id"])[0]

    response = delete(http, sim, f"/backups/{backup['id']}")

    assert response.status_code == 423
    assert "message" in response.json()
    assert backup["id"] in {b["id"] for b in sim.backups()}


def test_set_server_locks_and_unlocks_while_running(
    sim: Simulator, fleet: Fleet, http: requests.Session
) -> None:
    server = server_named(fleet, hostname="db-01")
    backup = backups_of(fleet, server["id"])[0]

    sim.set_server(server["id"], locked=True)
    refused = delete(http, sim, f"/backups/{backup['id']}")
    sim.set_server(server["id"], locked=False)
    accepted = delete(http, sim, f"/backups/{backup['id']}")

    assert (refused.status_code, accepted.status_code) == (423, 204)


def test_delete_gate_holds_a_delete_on_the_wire(
    sim: Simulator, fleet: Fleet, http: requests.Session
) -> None:
    backup = fleet.backups[-1]
    answers: list[int] = []
    sim.delete_gate.clear()
    client = threading.Thread(
        target=lambda: answers.append(delete(http, sim, f"/backups/{backup['id']}").status_code)
    )

    client.start()
    assert sim.delete_started.wait(timeout=5)
    held = (list(answers), backup["id"] in {b["id"] for b in sim.backups()})
    sim.delete_gate.set()
    client.join(timeout=5)

    assert held == ([], True)
    assert answers == [204]
    assert sim.deleted == [("backups", backup["id"])]


# --- faults ---------------------------------------------------------------------------------


def test_error_rate_one_answers_500(sim: Simulator, http: requests.Session) -> None:
    sim.faults.error_rate = 1.0

    response = get(http, sim, "/backups")

    assert response.status_code == 500
    assert "message" in response.json()


def test_rate_limit_every_nth_request_answers_429_with_retry_after(
    sim: Simulator, http: requests.Session
) -> None:
    sim.faults.rate_limit_every = 3
    sim.faults.retry_after = 0.05

    statuses = [get(http, sim, "/servers").status_code for _ in range(6)]
    sim.faults.rate_limit_every = 1
    limited = get(http, sim, "/servers")

    assert statuses == [200, 200, 429, 200, 200, 429]
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "0.05"


def test_garbage_rate_one_answers_200_with_an_unreadable_body(
    sim: Simulator, http: requests.Session
) -> None:
    sim.faults.garbage_rate = 1.0
    kinds = set()

    for _ in range(12):
        response = get(http, sim, "/backups")
        assert response.status_code == 200
        with pytest.raises(requests.JSONDecodeError):
            response.json()
        kinds.add(response.headers["Content-Type"].split(";")[0])

    assert kinds == {"application/json", "text/html"}


def test_latency_delays_every_request(sim: Simulator, fleet: Fleet, http: requests.Session) -> None:
    sim.faults.latency = 0.05
    started = time.monotonic()

    get(http, sim, "/servers")
    delete(http, sim, f"/backups/{fleet.backups[-1]['id']}")

    assert time.monotonic() - started >= 0.1


def test_locked_delete_rate_one_answers_423_for_unlocked_servers(
    sim: Simulator, fleet: Fleet, http: requests.Session
) -> None:
    sim.faults.locked_delete_rate = 1.0
    backup = fleet.backups[-1]

    response = delete(http, sim, f"/backups/{backup['id']}")

    assert response.status_code == 423
    assert sim.deleted == []


def test_appear_during_listing_grows_the_listing_once_per_setting(
    sim: Simulator, fleet: Fleet, http: requests.Session
) -> None:
    total = len(fleet.backups)
    sim.faults.appear_during_listing = 3

    first = get(http, sim, "/backups", sort="date").json()
    second = get(http, sim, "/backups", sort="date", page=2).json()
    relisted = get(http, sim, "/backups", sort="date").json()
    sim.faults.appear_during_listing = 3
    get(http, sim, "/backups", sort="date")
    last_page = math.ceil((total + 6) / 50)
    tail = get(http, sim, "/backups", sort="date", page=last_page).json()

    assert first["meta"]["total"] == total
    assert second["meta"]["total"] == total + 3
    assert relisted["meta"]["total"] == total + 3
    assert tail["meta"]["total"] == total + 6
    newest_ids = [b["id"] for b in tail["data"][-6:]]
    assert min(newest_ids) > max(b["id"] for b in fleet.backups)
    assert newest_ids == sorted(newest_ids)


def test_trickle_sends_each_body_a_byte_at_a_time(sim: Simulator, http: requests.Session) -> None:
    sim.script("GET", "/v1/servers", ScriptedResponse(200, b'{"a":1}'))
    sim.faults.trickle = 0.02
    started = time.monotonic()

    response = get(http, sim, "/servers")

    assert response.json() == {"a": 1}
    assert time.monotonic() - started >= 6 * 0.02  # seven bytes, six gaps


def test_stop_cuts_a_trickling_answer_short(fleet: Fleet, http: requests.Session) -> None:
    simulator = Simulator(fleet)
    simulator.start()
    simulator.faults.trickle = 60.0  # a byte a minute: only stop() can end this answer
    answered = threading.Event()
    simulator.on_request(lambda _method, _path: answered.set())
    failures: list[Exception] = []

    def read_the_answer() -> None:
        try:
            http.get(simulator.base_url + "/servers", headers=headers(), timeout=30)
        except requests.RequestException as error:
            failures.append(error)

    client = threading.Thread(target=read_the_answer)
    client.start()
    assert answered.wait(timeout=5)

    started = time.monotonic()
    simulator.stop()

    assert time.monotonic() - started < 1.0
    client.join(timeout=5)
    assert not client.is_alive()
    assert len(failures) == 1  # the answer was cut, not completed


# --- scripts, counters, hooks ---------------------------------------------------------------


def test_script_answers_in_order_before_any_fault(sim: Simulator, http: requests.Session) -> None:
    sim.script(
        "GET",
        "/v1/backups",
        ScriptedResponse(503, {"message": "Service Unavailable"}),
        ScriptedResponse(429, None, {"Retry-After": "0"}),
        ScriptedResponse(200, '{"data": [', {}),
    )

    answers = [get(http, sim, "/backups", page=n) for n in (1, 1, 1, 1)]
    other_path = get(http, sim, "/snapshots")

    assert [a.status_code for a in answers] == [503, 429, 200, 200]
    assert answers[0].json() == {"message": "Service Unavailable"}
    assert answers[1].headers["Retry-After"] == "0"
    assert answers[2].text == '{"data": ['
    assert answers[3].json()["meta"]["current_page"] == 1
    assert other_path.status_code == 200


def test_script_with_perform_loses_the_answer_to_a_real_delete(
    sim: Simulator, fleet: Fleet, http: requests.Session
) -> None:
    backup = fleet.backups[-1]
    path = f"/v1/backups/{backup['id']}"
    sim.script("DELETE", path, ScriptedResponse(500, {"message": "Server Error"}, perform=True))

    lost = delete(http, sim, f"/backups/{backup['id']}")
    retried = delete(http, sim, f"/backups/{backup['id']}")

    assert (lost.status_code, retried.status_code) == (500, 404)
    assert sim.deleted == [("backups", backup["id"])]


def test_request_count_and_requests_record_every_request(
    sim: Simulator, http: requests.Session
) -> None:
    sim.faults.error_rate = 1.0
    get(http, sim, "/backups", sort="date", page=2)
    get(http, sim, "/backups")
    http.get(sim.base_url + "/servers", timeout=5)  # unauthenticated: counted as well
    delete(http, sim, "/backups/1")

    assert sim.request_count() == 4
    assert sim.request_count("GET") == 3
    assert sim.request_count("GET", "/v1/backups") == 2
    assert sim.request_count(path="/v1/backups/1") == 1
    assert sim.requests[0] == ("GET", "/v1/backups", {"sort": "date", "page": "2"})


def test_on_request_calls_back_at_the_start_of_each_request(
    sim: Simulator, http: requests.Session
) -> None:
    seen: list[tuple[str, str]] = []
    sim.on_request(lambda method, path: seen.append((method, path)))

    get(http, sim, "/servers")
    delete(http, sim, "/snapshots/5")

    assert seen == [("GET", "/v1/servers"), ("DELETE", "/v1/snapshots/5")]


def test_add_backup_creates_the_next_backup_of_a_server(
    sim: Simulator, fleet: Fleet, http: requests.Session
) -> None:
    server = server_named(fleet, hostname="db-01")
    counters = [counter(b["name"]) for b in backups_of(fleet, server["id"])]

    added = sim.add_backup(server["id"], created_at=NOW - timedelta(minutes=5))

    assert added["id"] == max(b["id"] for b in fleet.backups) + 1
    assert added["created_at"] == "2026-11-27T05:25:00+02:00"
    assert counter(added["name"]) == max(counters) + 1
    assert added["server_hostname"] == "db-01"
    assert get(http, sim, f"/backups/{added['id']}").json() == added


def test_stop_ends_serving(fleet: Fleet, http: requests.Session) -> None:
    simulator = Simulator(fleet)
    base_url = simulator.start()
    assert base_url.startswith("http://127.0.0.1:")
    assert http.get(base_url + "/servers", headers=headers(), timeout=5).status_code == 200

    simulator.stop()

    with pytest.raises(requests.ConnectionError):
        http.get(base_url + "/servers", headers=headers(), timeout=5)


def test_stop_answers_a_held_delete_first(fleet: Fleet, http: requests.Session) -> None:
    simulator = Simulator(fleet)
    simulator.start()
    simulator.delete_gate.clear()
    answers: list[int] = []
    path = f"/backups/{fleet.backups[-1]['id']}"
    client = threading.Thread(
        target=lambda: answers.append(delete(http, simulator, path).status_code)
    )

    client.start()
    assert simulator.delete_started.wait(timeout=5)
    simulator.stop()
    client.join(timeout=5)

    assert answers == [204]


# --- fleet generator ------------------------------------------------------------------------


def test_generate_fleet_is_deterministic(fleet: Fleet) -> None:
    assert generate_fleet(now=NOW) == fleet
    assert generate_fleet(now=NOW, seed=1) != fleet


def test_generate_fleet_has_a_realistic_size(fleet: Fleet) -> None:
    assert len(fleet.servers) == 30
    assert 3000 <= len(fleet.backups) <= 6000
    assert len(fleet.servers) <= len(fleet.snapshots) <= 5 * len(fleet.servers)
    assert all(s["id"] >= 2401 for s in fleet.servers)
    assert {b["size"] for b in fleet.backups} <= {20, 40, 50, 80, 160}
    hostnames = {s["hostname"] for s in fleet.servers}
    assert {"db-01", "db-02", "web-01", "app-03", "mail-01", "ubuntu-2gb"} <= hostnames


def test_generate_fleet_names_carry_each_servers_counter(fleet: Fleet) -> None:
    for server in fleet.servers:
        names = [b["name"] for b in backups_of(fleet, server["id"])]
        matches = [NAME.match(name) for name in names]
        assert all(matches), names
        assert {m[2] for m in matches if m} == {server["hostname"]}
        counters = sorted(map(counter, names))
        assert counters == list(range(counters[0], counters[0] + len(counters)))


def test_generate_fleet_timestamps_have_sofia_offsets(fleet: Fleet) -> None:
    for item in fleet.backups + fleet.snapshots:
        assert item["created_at"][-6:] in SOFIA_OFFSETS
        assert NOW - timedelta(days=120) <= moment(item) < NOW
    assert all(
        re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000000Z", s["created_at"])
        for s in fleet.servers
    )


def test_generate_fleet_ids_grow_with_created_at(fleet: Fleet) -> None:
    for items in (fleet.backups, fleet.snapshots):
        by_time = sorted(items, key=lambda b: (moment(b), b["id"]))
        assert [b["id"] for b in by_time] == sorted(b["id"] for b in items)


def test_generate_fleet_has_the_special_servers(fleet: Fleet) -> None:
    def newest(server: dict[str, Any]) -> datetime:
        return max(moment(b) for b in backups_of(fleet, server["id"]))

    locked = [s for s in fleet.servers if s["locked"]]
    terminated = [s for s in fleet.servers if s["status"] == "terminated"]
    stale = [
        s
        for s in fleet.servers
        if s["status"] != "terminated" and newest(s) < NOW - timedelta(days=8)
    ]
    pre_upgrade = [b for b in fleet.backups if "pre-upgrade" in b["name"]]

    assert len(locked) == 1
    assert len(terminated) == 1
    assert backups_of(fleet, terminated[0]["id"])
    assert [s["hostname"] for s in stale] == ["app-03"]
    assert NOW - timedelta(days=31) < newest(stale[0]) <= NOW - timedelta(days=30)
    assert len(pre_upgrade) == 2
    assert {b["server_hostname"][:3] for b in pre_upgrade} == {"db-"}


def test_generate_fleet_mixes_schedules(fleet: Fleet) -> None:
    per_server = {s["hostname"]: len(backups_of(fleet, s["id"])) for s in fleet.servers}

    assert per_server["db-01"] > 200  # twice daily
    assert 100 < per_server["mail-01"] < 125  # daily
    assert per_server["ns1"] < 20  # weekly


def test_generate_fleet_grows_past_the_named_servers() -> None:
    small = generate_fleet(now=NOW, servers=3, days=10)
    large = generate_fleet(now=NOW, servers=33, days=10)

    assert sorted(s["hostname"] for s in small.servers) == ["db-01", "db-02", "web-01"]
    assert {"node-01", "node-02", "node-03"} <= {s["hostname"] for s in large.servers}


def test_generate_fleet_needs_an_aware_now() -> None:
    with pytest.raises(ValueError, match="aware"):
        generate_fleet(now=datetime(2026, 11, 27))


@pytest.mark.parametrize(
    ("utc", "offset"),
    [
        (datetime(2026, 3, 29, 0, 59, tzinfo=UTC), 2),
        (datetime(2026, 3, 29, 1, 0, tzinfo=UTC), 3),
        (datetime(2026, 10, 25, 0, 59, tzinfo=UTC), 3),
        (datetime(2026, 10, 25, 1, 0, tzinfo=UTC), 2),
        (datetime(2026, 12, 31, 23, 0, tzinfo=UTC), 2),
    ],
)
def test_sofia_offset_follows_the_eu_rule(utc: datetime, offset: int) -> None:
    assert sofia_offset(utc).utcoffset(None) == timedelta(hours=offset)


# --- python -m pruner.sim -------------------------------------------------------------


def test_module_serves_a_fleet_until_interrupted(http: requests.Session) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "pruner.sim", "--servers", "4", "--days", "7", "--seed", "3"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        banner = "".join(process.stdout.readline() for _ in range(5))
        base_url = banner.splitlines()[0].split(" at ")[1]
        servers = http.get(base_url + "/servers", headers=headers(), timeout=5).json()
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.communicate(timeout=5)
        finally:
            process.kill()  # only if it did not stop on SIGINT: the test fails above
            process.communicate()

    assert process.returncode == 0
    assert servers["meta"]["total"] == 4
    assert f"write token: {WRITE_TOKEN}" in banner
    assert f"read token:  {READ_TOKEN}" in banner
    assert process.returncode == 0
