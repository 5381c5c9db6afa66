"""Contract tests of the VPSBG API client against `responses` (no network, no real waits)."""

from __future__ import annotations

import itertools
import json
import random
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses
from responses import matchers
from structlog.testing import capture_logs

from pruner.config.schema import DeletePaths
from pruner.vpsbg.client import USER_AGENT, ApiClient, BackoffGate, build_session
from pruner.vpsbg.errors import (
    ApiAuthError,
    ApiError,
    ApiPermissionError,
    IncompleteListing,
    PassInterrupted,
)
from pruner.vpsbg.token import Secret

from .conftest import (
    BASE,
    TOKEN,
    FixedRandom,
    add_delete,
    add_listing,
    add_page,
    api_settings,
    client,
    count,
    item,
    page_body,
)

# --- requests ---------------------------------------------------------------------------------


def test_list_items_sends_token_accept_user_agent_and_timeout(
    rsps: responses.RequestsMock,
) -> None:
    add_listing(rsps, "backups", [item(1)])

    client().list_items("backups")

    request = rsps.calls[0].request
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.headers["Accept"] == "application/json"
    assert request.headers["User-Agent"] == USER_AGENT
    assert USER_AGENT.startswith("pruner/")
    assert request.req_kwargs["timeout"].total == 7.0  # type: ignore[attr-defined]


def test_from_settings_takes_timeout_retries_and_concurrency(
    rsps: responses.RequestsMock, tmp_path: Path
) -> None:
    add_page(rsps, "backups", 1, status=500)
    api = ApiClient.from_settings(
        api_settings(tmp_path), Secret(TOKEN), sleep=lambda _: None, rng=random.Random(0)
    )

    with pytest.raises(IncompleteListing):
        api.list_items("backups")

    assert count(rsps) == 6  # retries: 5
    assert rsps.calls[0].request.req_kwargs["timeout"].total == 30.0  # type: ignore[attr-defined]


def test_build_session_retries_nothing_under_the_client() -> None:
    adapter = build_session(4).get_adapter(BASE)
    retry = adapter.max_retries  # type: ignore[attr-defined]

    assert retry.total == 0
    assert retry.read is False  # a read error reaches the client as it is, not as a retry
    assert adapter._pool_maxsize == 4  # type: ignore[attr-defined]


# --- listing ----------------------------------------------------------------------------------


def test_list_items_empty_account_is_one_request(rsps: responses.RequestsMock) -> None:
    add_page(rsps, "backups", 1, page_body([], 1, 1, 0))

    assert client().list_items("backups") == []
    assert count(rsps) == 1


def test_list_items_accepts_last_page_zero_for_an_empty_listing(
    rsps: responses.RequestsMock,
) -> None:
    add_page(rsps, "snapshots", 1, page_body([], 1, 0, 0))

    assert client().list_items("snapshots") == []
    assert count(rsps, path="/snapshots") == 1


def test_list_items_one_page(rsps: responses.RequestsMock) -> None:
    items = [item(i) for i in range(1, 8)]
    add_listing(rsps, "backups", items)

    assert client().list_items("backups") == items
    assert count(rsps) == 1


@pytest.mark.parametrize("concurrency", [1, 4])
def test_list_items_reads_each_page_once_building_its_url(
    rsps: responses.RequestsMock, concurrency: int
) -> None:
    items = [item(i) for i in range(1, 238)]
    pages = add_listing(rsps, "backups", items)

    listed = client(concurrency=concurrency).list_items("backups")

    assert listed == items
    assert pages == 5
    assert count(rsps) == 5
    # Built from base_url, never from links.next (which points at the real host).
    asked = sorted(call.request.url or "" for call in rsps.calls)
    assert asked == [f"{BASE}/backups?page={n}&sort=date" for n in range(1, 6)]


def test_list_items_servers_asks_for_every_status_fifty_a_page(
    rsps: responses.RequestsMock,
) -> None:
    servers = [{"id": i, "hostname": f"srv-{i}", "status": "active"} for i in range(60)]
    add_listing(rsps, "servers", servers)

    assert client().list_items("servers") == servers
    assert count(rsps, path="/servers") == 2
    assert "filter%5Bstatus%5D=all" in (rsps.calls[0].request.url or "")


def test_list_items_drops_exact_repeats_across_pages(rsps: responses.RequestsMock) -> None:
    # A backup deleted by someone else shifts the next page by one: its first item repeats.
    first = [item(i) for i in range(1, 51)]
    second = [item(50), item(51)]
    add_page(rsps, "backups", 1, page_body(first, 1, 2, 51))
    add_page(rsps, "backups", 2, page_body(second, 2, 2, 51))

    listed = client().list_items("backups")

    assert [b["id"] for b in listed] == list(range(1, 52))


def test_list_items_relists_when_the_total_changes_midway(
    rsps: responses.RequestsMock,
) -> None:
    before = [item(i) for i in range(1, 61)]
    after = [*before, item(61)]
    add_page(rsps, "backups", 1, page_body(before[:50], 1, 2, 60))
    add_page(rsps, "backups", 2, page_body(after[50:], 2, 2, 61))  # a backup appeared
    add_listing(rsps, "backups", after)

    with capture_logs() as logs:
        listed = client().list_items("backups")

    assert listed == after
    assert count(rsps) == 4  # two listings of two pages
    assert [log["event"] for log in logs] == ["api.relist"]


def test_list_items_gives_up_after_three_listings_of_a_changing_account(
    rsps: responses.RequestsMock,
) -> None:
    for total in (60, 62, 64):
        add_page(rsps, "backups", 1, page_body([item(i) for i in range(50)], 1, 2, total))
        add_page(rsps, "backups", 2, page_body([item(i) for i in range(50, 61)], 2, 2, total + 1))

    with pytest.raises(IncompleteListing, match=r"kept changing.*3 listings") as caught:
        client().list_items("backups")

    assert count(rsps) == 6
    assert "meta.total" in str(caught.value)
    assert caught.value.resource == "backups"


def test_list_items_count_disagreeing_with_total_is_incomplete(
    rsps: responses.RequestsMock,
) -> None:
    # The docs' own example: two items, meta.total 6.
    add_page(rsps, "backups", 1, page_body([item(77), item(73)], 1, 1, 6))

    with pytest.raises(
        IncompleteListing, match=r"2 distinct backups were read but meta\.total says 6"
    ):
        client().list_items("backups")

    assert count(rsps) == 3


# --- listings that claim too much -------------------------------------------------------------


def claiming(
    rsps: responses.RequestsMock, first: list[Any], total: int, later: list[Any] | None = None
) -> None:
    """Page 1 holds `first` and claims `total` backups; every later page holds `later` (default:
    nothing) and claims the same."""
    last_page = -(-total // 50)

    def answer(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        number = int(parse_qs(urlsplit(request.url or "").query)["page"][0])
        items = first if number == 1 else (later or [])
        return 200, {}, json.dumps(page_body(items, number, last_page, total))

    rsps.add_callback(responses.GET, f"{BASE}/backups", callback=answer)


def test_list_items_claiming_more_pages_than_max_pages_fails_closed_at_once(
    rsps: responses.RequestsMock,
) -> None:
    claiming(rsps, [item(i) for i in range(1, 51)], total=50_000_000)  # a million pages

    with pytest.raises(IncompleteListing) as caught:
        client(concurrency=4, max_pages=20_000).list_items("backups")

    assert count(rsps) == 1
    message = str(caught.value)
    assert "page 1 says there are 1000000 pages (50000000 backups)" in message
    assert "more than api.max_pages (20000)" in message
    assert caught.value.page == 1


def test_from_settings_takes_max_pages(rsps: responses.RequestsMock, tmp_path: Path) -> None:
    claiming(rsps, [item(i) for i in range(1, 51)], total=200)  # four pages
    settings = api_settings(tmp_path).model_copy(update={"max_pages": 3})
    api = ApiClient.from_settings(settings, Secret(TOKEN), sleep=lambda _: None)

    with pytest.raises(IncompleteListing, match=r"more than api\.max_pages \(3\)"):
        api.list_items("backups")

    assert count(rsps) == 1


def test_list_items_a_first_page_claiming_250000_with_empty_later_pages_stops_early(
    rsps: responses.RequestsMock,
) -> None:
    claiming(rsps, [item(i) for i in range(1, 51)], total=250_000)  # 5,000 pages claimed

    with capture_logs() as logs, pytest.raises(IncompleteListing) as caught:
        client(concurrency=4).list_items("backups")

    # Three listings, each page 1 and then one batch of four pages, the first of them short.
    assert count(rsps) == 3 * (1 + 4)
    assert "page 2 of 5000 holds 0 backups where a page holds 50" in str(caught.value)
    assert [log["event"] for log in logs] == ["api.relist", "api.relist"]


def test_list_items_stops_at_the_first_batch_that_disagrees(
    rsps: responses.RequestsMock,
) -> None:
    items = [item(i) for i in range(1, 501)]  # ten pages
    for number in range(1, 11):
        chunk = items[(number - 1) * 50 : number * 50]
        if number == 6:
            chunk = chunk[:40]  # ten backups short, yet not the last page
        add_page(rsps, "backups", number, page_body(chunk, number, 10, 500))

    with pytest.raises(IncompleteListing, match="page 6 of 10 holds 40 backups"):
        client(concurrency=2).list_items("backups")

    # Each listing: page 1, then batches of two: 2-3, 4-5, 6-7 (where it stops).
    assert count(rsps) == 3 * 7


@pytest.mark.parametrize(("last_page", "total"), [(2, 250_000), (3, 60)])
def test_list_items_last_page_not_fitting_total_and_per_page_is_malformed(
    rsps: responses.RequestsMock, last_page: int, total: int
) -> None:
    add_page(rsps, "backups", 1, page_body([item(i) for i in range(50)], 1, last_page, total))

    with pytest.raises(IncompleteListing, match=f"meta.last_page {last_page} does not fit"):
        client().list_items("backups")

    assert count(rsps) == 3  # page 1 and its two retries: no other page is asked for


def test_list_items_same_id_with_other_content_is_incomplete(
    rsps: responses.RequestsMock,
) -> None:
    add_page(rsps, "backups", 1, page_body([item(1), item(1, size=80)], 1, 1, 2))

    with pytest.raises(IncompleteListing, match="id 1 came twice with different content"):
        client().list_items("backups")


def test_list_items_keeps_items_it_cannot_identify_for_the_parser(
    rsps: responses.RequestsMock,
) -> None:
    odd: list[Any] = [item(1), {"server_id": 3}, None]
    add_page(rsps, "backups", 1, page_body(odd, 1, 1, 3))

    assert client().list_items("backups") == odd


def test_list_items_page_failing_after_retries_names_resource_and_page(
    rsps: responses.RequestsMock, sleeps: list[float]
) -> None:
    add_page(rsps, "snapshots", 1, page_body([item(i) for i in range(50)], 1, 2, 60))
    add_page(rsps, "snapshots", 2, {"message": "Server Error"}, status=500)

    with pytest.raises(IncompleteListing) as caught:
        client(sleeps).list_items("snapshots")

    assert str(caught.value) == (
        "the snapshots listing is incomplete: page 2 could not be read: "
        "HTTP 500: Server Error (3 attempts)"
    )
    assert caught.value.page == 2
    assert caught.value.status == 500
    assert count(rsps, path="/snapshots") == 1 + 3
    assert len(sleeps) == 2


def test_list_items_recovers_when_a_retry_succeeds(
    rsps: responses.RequestsMock, sleeps: list[float]
) -> None:
    add_page(rsps, "backups", 1, status=503)
    add_page(rsps, "backups", 1, "<html><body>Bad gateway</body></html>", status=200)
    add_listing(rsps, "backups", [item(1)])

    assert client(sleeps).list_items("backups") == [item(1)]
    assert count(rsps) == 3


MALFORMED = {
    "html": "<!DOCTYPE html><html><body>Login</body></html>",
    "truncated": '{"data": [{"id": 1, "server_id": 2',
    "empty": "",
    "a list": "[]",
    "no data": '{"meta": {"last_page": 1, "total": 0}}',
    "data not a list": '{"data": {}, "meta": {"last_page": 1, "total": 0}}',
    "no meta": '{"data": []}',
    "total a string": '{"data": [], "meta": {"last_page": 1, "total": "0"}}',
    "total a boolean": '{"data": [], "meta": {"last_page": 1, "total": false}}',
    "last_page missing": '{"data": [], "meta": {"total": 0}}',
    "last_page a float": '{"data": [], "meta": {"last_page": 1.0, "total": 0}}',
    "another page": '{"data": [], "meta": {"current_page": 3, "last_page": 3, "total": 0}}',
    "last_page beyond total": '{"data": [], "meta": {"last_page": 9999, "total": 3}}',
    "last_page beyond total/per_page": (
        '{"data": [], "meta": {"last_page": 3, "per_page": 50, "total": 100}}'
    ),
}


@pytest.mark.parametrize("body", MALFORMED.values(), ids=MALFORMED.keys())
def test_list_items_retries_malformed_bodies_then_is_incomplete(
    rsps: responses.RequestsMock, body: str
) -> None:
    add_page(rsps, "backups", 1, body)

    with pytest.raises(IncompleteListing, match="page 1 could not be read: HTTP 200 with a malf"):
        client(retries=3).list_items("backups")

    assert count(rsps) == 4


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (404, "HTTP 404.*check api.base_url"),
        (422, "HTTP 422: The page must be an integer"),
        (400, "HTTP 400"),
        (301, "redirected to https://elsewhere.test/; check api.base_url"),
    ],
)
def test_list_items_does_not_retry_client_errors(
    rsps: responses.RequestsMock, status: int, message: str
) -> None:
    add_page(
        rsps,
        "backups",
        1,
        {"message": "The page must be an integer."},
        status=status,
        headers={"Location": "https://elsewhere.test/"},
    )

    with pytest.raises(IncompleteListing, match=message):
        client().list_items("backups")

    assert count(rsps) == 1


def test_list_items_rejects_an_unknown_resource() -> None:
    with pytest.raises(ValueError, match="cannot list 'volumes'"):
        client().list_items("volumes")  # type: ignore[arg-type]


# --- status codes -----------------------------------------------------------------------------


def test_list_items_401_is_fatal_and_names_the_token_source(
    rsps: responses.RequestsMock,
) -> None:
    add_page(rsps, "backups", 1, {"message": "Unauthenticated."}, status=401)

    with pytest.raises(ApiAuthError) as caught:
        client().list_items("backups")

    assert str(caught.value).startswith(
        "the API token was rejected (HTTP 401): check the token in $VPSBG_API_TOKEN"
    )
    assert count(rsps) == 1


def test_list_items_403_says_the_key_may_not_read(rsps: responses.RequestsMock) -> None:
    add_page(rsps, "backups", 1, {"message": "Forbidden"}, status=403)

    with pytest.raises(ApiPermissionError, match=r"refused access.*GET /backups") as caught:
        client().list_items("backups")

    assert "Write key" not in str(caught.value)
    assert count(rsps) == 1


@pytest.mark.parametrize("status", [200, 202, 204])
def test_delete_any_2xx_is_deleted(rsps: responses.RequestsMock, status: int) -> None:
    add_delete(rsps, 77, status)

    outcome = client().delete("backups", 77)

    assert (outcome.result, outcome.status, outcome.done) == ("deleted", status, True)
    assert (outcome.resource, outcome.id) == ("backups", 77)


def test_delete_snapshot_deletes_under_snapshots(rsps: responses.RequestsMock) -> None:
    add_delete(rsps, 5, 204, resource="snapshots")

    assert client().delete("snapshots", 5).result == "deleted"
    assert count(rsps, "DELETE", "/snapshots/5") == 1


def test_delete_404_is_already_gone(rsps: responses.RequestsMock) -> None:
    add_delete(rsps, 77, 404, json={"message": "Not found"})

    outcome = client().delete("backups", 77)

    assert (outcome.result, outcome.status, outcome.done) == ("already_gone", 404, True)
    assert count(rsps, "DELETE", "/backups/77") == 1


def test_delete_401_is_fatal(rsps: responses.RequestsMock) -> None:
    add_delete(rsps, 77, 401)

    with pytest.raises(ApiAuthError, match=r"HTTP 401"):
        client().delete("backups", 77)
    assert count(rsps, "DELETE", "/backups/77") == 1


def test_delete_403_says_a_write_key_is_needed(rsps: responses.RequestsMock) -> None:
    add_delete(rsps, 77, 403, json={"message": "This action is unauthorized."})

    with pytest.raises(ApiPermissionError) as caught:
        client().delete("backups", 77)

    assert str(caught.value).startswith(
        "this API key has Read permission only; deletions need a Write key"
    )
    assert "$VPSBG_API_TOKEN" in str(caught.value)
    assert count(rsps, "DELETE", "/backups/77") == 1


def test_delete_422_fails_at_once_with_the_api_message(rsps: responses.RequestsMock) -> None:
    message = "The backup cannot be deleted while it is being restored."
    add_delete(rsps, 77, 422, json={"message": message, "errors": {"id": ["busy"]}})

    outcome = client().delete("backups", 77)

    assert (outcome.result, outcome.status) == ("failed", 422)
    assert outcome.message == f"HTTP 422: {message}"
    assert count(rsps, "DELETE", "/backups/77") == 1


def test_delete_423_is_retried_then_locked(
    rsps: responses.RequestsMock, sleeps: list[float]
) -> None:
    add_delete(rsps, 77, 423, json={"message": "Locked"})

    outcome = client(sleeps, retries=3).delete("backups", 77)

    assert (outcome.result, outcome.status, outcome.done) == ("locked", 423, False)
    assert "4 attempts" in outcome.message
    assert count(rsps, "DELETE", "/backups/77") == 4
    assert len(sleeps) == 3


def test_delete_423_then_success_is_deleted(
    rsps: responses.RequestsMock, sleeps: list[float]
) -> None:
    add_delete(rsps, 77, 423)
    add_delete(rsps, 77, 204)

    assert client(sleeps).delete("backups", 77).result == "deleted"
    assert len(sleeps) == 1


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_delete_5xx_is_retried_then_failed(
    rsps: responses.RequestsMock, sleeps: list[float], status: int
) -> None:
    add_delete(rsps, 77, status)

    outcome = client(sleeps).delete("backups", 77)

    assert (outcome.result, outcome.status) == ("failed", status)
    assert outcome.message == f"HTTP {status} (3 attempts)"
    assert count(rsps, "DELETE", "/backups/77") == 3


def test_delete_connection_errors_are_retried_then_failed(
    rsps: responses.RequestsMock, sleeps: list[float]
) -> None:
    add_delete(rsps, 77, 200, body=requests.ConnectionError("connection reset by peer"))
    statuses: list[tuple[str, int | None]] = []

    outcome = client(sleeps, on_response=lambda m, s: statuses.append((m, s))).delete("backups", 77)

    assert (outcome.result, outcome.status) == ("failed", None)
    assert "connection reset by peer" in outcome.message
    assert statuses == [("DELETE", None)] * 3


def test_delete_timeout_is_retried_then_failed(
    rsps: responses.RequestsMock, sleeps: list[float]
) -> None:
    add_delete(rsps, 77, 200, body=requests.ReadTimeout("read timed out"))

    outcome = client(sleeps).delete("backups", 77)

    assert outcome.result == "failed"
    assert outcome.message == "no answer within 7s (ReadTimeout) (3 attempts)"


def test_request_past_its_deadline_while_reading_a_page_is_no_answer(
    rsps: responses.RequestsMock,
) -> None:
    add_listing(rsps, "backups", [item(1)])
    ticks = itertools.count(0.0, 4.0)  # each look at the clock: 4 s later; the timeout is 7 s

    with pytest.raises(IncompleteListing) as caught:
        client(monotonic=lambda: next(ticks)).list_items("backups")

    assert "no complete answer within 7s (the body was still arriving) (3 attempts)" in str(
        caught.value
    )


def test_delete_past_its_deadline_is_judged_by_its_status(rsps: responses.RequestsMock) -> None:
    add_delete(rsps, 77, 200, json={"message": "Deleted."})
    ticks = itertools.count(0.0, 4.0)

    outcome = client(monotonic=lambda: next(ticks)).delete("backups", 77)

    assert (outcome.result, outcome.status) == ("deleted", 200)
    assert count(rsps, "DELETE", "/backups/77") == 1


def test_delete_goes_to_the_configured_path(rsps: responses.RequestsMock) -> None:
    rsps.add(responses.DELETE, f"{BASE}/v2/backups/77/delete", status=204)
    rsps.add(responses.DELETE, f"{BASE}/trash/snapshots/5", status=204)
    paths = DeletePaths(backups="/v2/backups/{id}/delete", snapshots="/trash/snapshots/{id}")
    api = client(paths=paths)

    assert api.delete("backups", 77).result == "deleted"
    assert api.delete("snapshots", 5).result == "deleted"
    assert [call.request.url for call in rsps.calls] == [
        f"{BASE}/v2/backups/77/delete",
        f"{BASE}/trash/snapshots/5",
    ]


def test_from_settings_takes_the_delete_paths(rsps: responses.RequestsMock, tmp_path: Path) -> None:
    rsps.add(responses.DELETE, f"{BASE}/b/77", status=403)
    settings = api_settings(tmp_path).model_copy(update={"paths": DeletePaths(backups="/b/{id}")})
    api = ApiClient.from_settings(settings, Secret(TOKEN), sleep=lambda _: None)

    with pytest.raises(ApiPermissionError, match=r"HTTP 403 on DELETE /b/77\)"):
        api.delete("backups", 77)


def test_delete_refuses_servers_and_odd_ids() -> None:
    with pytest.raises(ValueError, match="cannot delete 'servers'"):
        client().delete("servers", 1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="non-negative integer"):
        client().delete("backups", "1/../../servers/2")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="non-negative integer"):
        client().delete("backups", True)


def test_request_reports_every_attempt_to_on_response(
    rsps: responses.RequestsMock,
) -> None:
    add_delete(rsps, 77, 500)
    add_delete(rsps, 77, 429)
    add_delete(rsps, 77, 204)
    seen: list[tuple[str, int | None]] = []

    client(on_response=lambda m, s: seen.append((m, s))).delete("backups", 77)

    assert seen == [("DELETE", 500), ("DELETE", 429), ("DELETE", 204)]


def test_request_reports_refused_attempts_to_on_response_too(
    rsps: responses.RequestsMock,
) -> None:
    add_delete(rsps, 77, 403)
    seen: list[tuple[str, int | None]] = []

    with pytest.raises(ApiPermissionError):
        client(on_response=lambda m, s: seen.append((m, s))).delete("backups", 77)

    assert seen == [("DELETE", 403)]


# --- backoff ----------------------------------------------------------------------------------


def test_request_429_waits_exactly_retry_after(
    rsps: responses.RequestsMock, sleeps: list[float]
) -> None:
    add_delete(rsps, 77, 429, headers={"Retry-After": "7"})
    add_delete(rsps, 77, 204)

    assert client(sleeps, backoff=0.5).delete("backups", 77).result == "deleted"
    assert sleeps == [7.0]


def test_request_429_retry_after_http_date_counts_from_the_date_header(
    rsps: responses.RequestsMock, sleeps: list[float]
) -> None:
    headers = {
        "Date": "Wed, 25 Nov 2026 10:00:00 GMT",
        "Retry-After": "Wed, 25 Nov 2026 10:00:30 GMT",
    }
    add_delete(rsps, 77, 429, headers=headers)
    add_delete(rsps, 77, 204)

    client(sleeps).delete("backups", 77)

    assert sleeps == [30.0]


def test_request_429_retry_after_http_date_without_date_uses_the_wall_clock(
    rsps: responses.RequestsMock, sleeps: list[float]
) -> None:
    add_delete(rsps, 77, 429, headers={"Retry-After": "Wed, 25 Nov 2026 10:00:30 GMT"})
    add_delete(rsps, 77, 204)
    ten_o_clock = 1795600800.0  # 2026-11-25T10:00:00Z

    client(sleeps, wall_clock=lambda: ten_o_clock - 12).delete("backups", 77)

    assert sleeps == [42.0]


@pytest.mark.parametrize(
    ("retry_after", "cap", "expected"),
    [("600", 60.0, 60.0), ("600", 5.0, 5.0), ("0.25", 60.0, 0.25), ("-3", 60.0, 0.0)],
)
def test_request_retry_after_is_capped(
    rsps: responses.RequestsMock,
    sleeps: list[float],
    retry_after: str,
    cap: float,
    expected: float,
) -> None:
    add_delete(rsps, 77, 429, headers={"Retry-After": retry_after})
    add_delete(rsps, 77, 204)

    client(sleeps, retry_after_cap=cap).delete("backups", 77)

    assert sleeps == ([expected] if expected else [])


def test_request_unreadable_retry_after_falls_back_to_backoff(
    rsps: responses.RequestsMock, sleeps: list[float]
) -> None:
    add_delete(rsps, 77, 429, headers={"Retry-After": "soon"})
    add_delete(rsps, 77, 204)

    client(sleeps, backoff=2.0, rng=FixedRandom(0.0)).delete("backups", 77)

    assert sleeps == [1.0]


@pytest.mark.parametrize(("retries", "requests_sent"), [(0, 1), (1, 2), (4, 5)])
def test_request_retries_are_bounded(
    rsps: responses.RequestsMock, sleeps: list[float], retries: int, requests_sent: int
) -> None:
    add_delete(rsps, 77, 503)

    client(sleeps, retries=retries).delete("backups", 77)

    assert count(rsps, "DELETE", "/backups/77") == requests_sent
    assert len(sleeps) == retries


def test_request_backoff_doubles_up_to_sixty_seconds_with_jitter_in_the_upper_half(
    rsps: responses.RequestsMock,
) -> None:
    add_delete(rsps, 77, 500)
    ceilings = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]
    low: list[float] = []
    high: list[float] = []
    spread: list[float] = []

    client(low, retries=8, rng=FixedRandom(0.0)).delete("backups", 77)
    client(high, retries=8, rng=FixedRandom(1.0)).delete("backups", 77)
    client(spread, retries=8, rng=random.Random(4)).delete("backups", 77)

    assert low == [c / 2 for c in ceilings]
    assert high == ceilings
    assert all(c / 2 <= s <= c for s, c in zip(spread, ceilings, strict=True))
    assert len(set(spread)) == len(spread)


def test_request_zero_backoff_never_sleeps(
    rsps: responses.RequestsMock, sleeps: list[float]
) -> None:
    add_delete(rsps, 77, 500)

    client(sleeps, backoff=0.0).delete("backups", 77)

    assert sleeps == []
    assert count(rsps, "DELETE", "/backups/77") == 3


def test_request_logs_each_retry_without_secrets(
    rsps: responses.RequestsMock, sleeps: list[float]
) -> None:
    add_delete(rsps, 77, 503)
    add_delete(rsps, 77, 204)

    with capture_logs() as logs:
        client(sleeps, rng=FixedRandom(0.0)).delete("backups", 77)

    assert logs == [
        {
            "event": "api.retry",
            "log_level": "warning",
            "method": "DELETE",
            "path": "/backups/77",
            "params": {},
            "status": 503,
            "problem": "HTTP 503",
            "attempt": 1,
            "delay": 0.5,
        }
    ]


# --- stop -------------------------------------------------------------------------------------


def test_request_after_stop_sends_nothing(rsps: responses.RequestsMock) -> None:
    stop = threading.Event()
    stop.set()

    with pytest.raises(PassInterrupted):
        client(stop=stop).delete("backups", 77)
    with pytest.raises(PassInterrupted):
        client(stop=stop).list_items("backups")
    assert len(rsps.calls) == 0


def test_request_stop_cuts_a_backoff_wait_short(rsps: responses.RequestsMock) -> None:
    add_delete(rsps, 77, 429, headers={"Retry-After": "60"})
    stop = threading.Event()
    # The default sleep waits on `stop`: setting it while the answer comes in ends the wait.
    api = client(sleep=None, stop=stop, on_response=lambda _m, _s: stop.set())

    started = time.monotonic()
    with pytest.raises(PassInterrupted):
        api.delete("backups", 77)

    assert time.monotonic() - started < 5
    assert count(rsps, "DELETE", "/backups/77") == 1


def test_list_items_stopped_midway_is_interrupted_not_incomplete(
    rsps: responses.RequestsMock,
) -> None:
    stop = threading.Event()
    add_page(rsps, "backups", 1, page_body([item(i) for i in range(50)], 1, 3, 120))

    with pytest.raises(PassInterrupted):
        client(stop=stop, on_response=lambda _m, _s: stop.set()).list_items("backups")

    assert count(rsps) == 1


# --- the gate ---------------------------------------------------------------------------------

WAIT = 5.0  # only reached when the behaviour is broken: a failing test, not a hanging one


def test_backoff_gate_pause_holds_every_worker() -> None:
    asleep, release, waiting, entered = (threading.Event() for _ in range(4))
    order: list[str] = []

    def sleep(seconds: float) -> None:
        order.append(f"pause {seconds}")
        asleep.set()
        release.wait(WAIT)

    gate = BackoffGate(4, sleep=sleep, on_wait=waiting.set)

    def other_worker() -> None:
        with gate.turn():
            order.append("other request")
            entered.set()

    pauser = threading.Thread(target=gate.pause_all, args=(7.0,))
    pauser.start()
    assert asleep.wait(WAIT)
    other = threading.Thread(target=other_worker)
    other.start()
    assert waiting.wait(WAIT)  # it reached the gate and is held there
    assert not entered.is_set()
    release.set()
    pauser.join(WAIT)
    other.join(WAIT)

    assert order == ["pause 7.0", "other request"]


def test_backoff_gate_lets_at_most_concurrency_requests_in() -> None:
    waiting = threading.Event()
    gate = BackoffGate(2, on_wait=waiting.set)
    inside = [threading.Event() for _ in range(3)]
    proceed = [threading.Event() for _ in range(3)]

    def worker(index: int) -> None:
        with gate.turn():
            inside[index].set()
            proceed[index].wait(WAIT)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(3)]
    threads[0].start()
    threads[1].start()
    assert inside[0].wait(WAIT)
    assert inside[1].wait(WAIT)
    threads[2].start()
    assert waiting.wait(WAIT)
    assert not inside[2].is_set()
    proceed[0].set()
    assert inside[2].wait(WAIT)
    proceed[1].set()
    proceed[2].set()
    for thread in threads:
        thread.join(WAIT)


def test_backoff_gate_held_worker_stops_when_stop_is_set() -> None:
    stop = threading.Event()
    asleep, waiting = threading.Event(), threading.Event()
    failures: list[BaseException] = []

    def sleep(seconds: float) -> None:  # like stop.wait: returns when stop is set
        asleep.set()
        stop.wait(WAIT)

    gate = BackoffGate(1, sleep=sleep, stop=stop, on_wait=waiting.set)

    def other_worker() -> None:
        try:
            with gate.turn():
                pass
        except PassInterrupted as error:
            failures.append(error)

    pauser = threading.Thread(target=gate.pause_all, args=(60.0,))
    pauser.start()
    assert asleep.wait(WAIT)
    other = threading.Thread(target=other_worker)
    other.start()
    assert waiting.wait(WAIT)
    stop.set()
    pauser.join(WAIT)
    other.join(WAIT)

    assert len(failures) == 1


def test_backoff_gate_refuses_a_concurrency_below_one() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        BackoffGate(0)


def test_request_429_pauses_every_worker_other_retries_only_this_one(
    rsps: responses.RequestsMock,
) -> None:
    add_delete(rsps, 1, 429, headers={"Retry-After": "3"})
    add_delete(rsps, 1, 500)
    add_delete(rsps, 1, 423)
    add_delete(rsps, 1, 204)
    paused_while_sleeping: list[bool] = []
    gates: list[BackoffGate] = []
    # The gate's own state: nothing outside it needs to ask whether it is paused.
    api = client(retries=3, sleep=lambda _: paused_while_sleeping.append(gates[0]._pauses > 0))
    gates.append(api.gate)

    api.delete("backups", 1)

    assert paused_while_sleeping == [True, False, False]
    assert api.gate._pauses == 0


# --- check and single objects -----------------------------------------------------------------


def test_check_is_one_small_authenticated_request(rsps: responses.RequestsMock) -> None:
    rsps.add(
        responses.GET,
        f"{BASE}/servers",
        json={"data": [{"id": 1}], "meta": {"last_page": 12, "per_page": 1, "total": 12}},
        match=[matchers.query_param_matcher({"per_page": "1"})],
    )

    assert client().check() == 12
    assert len(rsps.calls) == 1
    assert rsps.calls[0].request.headers["Authorization"] == f"Bearer {TOKEN}"


def test_check_unexpected_answer_names_the_base_url(
    rsps: responses.RequestsMock, sleeps: list[float]
) -> None:
    rsps.add(responses.GET, f"{BASE}/servers", body="<html>nginx</html>")

    with pytest.raises(ApiError, match=r"the API at https://api.test/v1 did not answer"):
        client(sleeps).check()


def test_check_401_raises_auth_error(rsps: responses.RequestsMock) -> None:
    rsps.add(responses.GET, f"{BASE}/servers", status=401)

    with pytest.raises(ApiAuthError):
        client().check()
