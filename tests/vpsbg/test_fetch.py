"""fetch_listing: a whole pass's listing, servers first, each resource after."""

from __future__ import annotations

import pytest
import responses

from pruner.vpsbg.errors import (
    ApiAuthError,
    ApiError,
    ApiPermissionError,
)
from pruner.vpsbg.fetch import fetch_listing

from .conftest import BASE, add_listing, add_page, client, item, page_body


def test_fetch_listing_lists_servers_then_each_resource(rsps: responses.RequestsMock) -> None:
    add_listing(rsps, "servers", [{"id": 2478, "hostname": "ubuntu-2gb", "status": "active"}])
    add_listing(rsps, "backups", [item(1), item(2)])
    add_listing(rsps, "snapshots", [item(3, server_hostname=None)])

    listing = fetch_listing(client(), ["backups", "snapshots"])

    assert [call.request.url.split("?")[0] for call in rsps.calls] == [  # type: ignore[union-attr]
        f"{BASE}/servers",
        f"{BASE}/backups",
        f"{BASE}/snapshots",
    ]
    assert [(b.resource, b.id) for b in listing.backups] == [
        ("backups", 1),
        ("backups", 2),
        ("snapshots", 3),
    ]
    assert listing.servers is not None
    assert [s.hostname for s in listing.servers] == ["ubuntu-2gb"]
    assert listing.resources == {"backups", "snapshots"}
    assert listing.incomplete_resources == frozenset()
    assert listing.servers_complete
    assert listing.problems == ()


def test_fetch_listing_marks_an_incomplete_resource_and_says_why(
    rsps: responses.RequestsMock,
) -> None:
    add_listing(rsps, "servers", [{"id": 2478}])
    add_listing(rsps, "backups", [item(1)])
    add_page(rsps, "snapshots", 1, status=500)

    listing = fetch_listing(client(), ["backups", "snapshots"])

    assert listing.incomplete_resources == {"snapshots"}
    assert [b.id for b in listing.backups] == [1]
    assert listing.servers_complete
    (problem,) = listing.problems
    assert problem.level == "error"
    assert problem.resource == "snapshots"
    assert problem.server_id is None
    assert "the snapshots listing is incomplete: page 1 could not be read: HTTP 500" in (
        problem.message
    )


def test_fetch_listing_incomplete_servers_blocks_the_pass(
    rsps: responses.RequestsMock,
) -> None:
    add_page(rsps, "servers", 1, page_body([{"id": 1}], 1, 1, 4, "servers"))
    add_listing(rsps, "backups", [item(1)])

    listing = fetch_listing(client(), ["backups"])

    assert not listing.servers_complete
    assert listing.servers is None
    assert listing.incomplete_resources == frozenset()
    (problem,) = listing.problems
    assert (problem.level, problem.resource, problem.server_id) == ("error", None, None)
    assert "nothing is deleted this pass" in problem.message


def test_fetch_listing_passes_item_problems_on(rsps: responses.RequestsMock) -> None:
    add_listing(rsps, "servers", [{"id": 2478}, {"hostname": "no-id"}])
    add_listing(rsps, "backups", [item(1), item(2, created_at="yesterday")])

    listing = fetch_listing(client(), ["backups"])

    assert not listing.servers_complete
    assert [b.id for b in listing.backups] == [1]
    assert [(p.resource, p.backup_id) for p in listing.problems] == [(None, None), ("backups", 2)]


@pytest.mark.parametrize(("status", "error"), [(401, ApiAuthError), (403, ApiPermissionError)])
def test_fetch_listing_auth_errors_are_fatal(
    rsps: responses.RequestsMock, status: int, error: type[ApiError]
) -> None:
    add_listing(rsps, "servers", [{"id": 1}])
    add_page(rsps, "backups", 1, status=status)

    with pytest.raises(error):
        fetch_listing(client(), ["backups"])
