"""Helpers of the client's contract tests: a `responses` mock, the waits recorded instead of
slept, and API pages built as the API shapes them."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import responses
from responses import matchers

from pruner.config.schema import ApiSettings
from pruner.vpsbg.client import ApiClient
from pruner.vpsbg.token import Secret

BASE = "https://api.test/v1"
TOKEN = "tok-7f3a-SECRET-91c2"
BACKUP_PARAMS = {"sort": "date"}
SERVER_PARAMS = {"per_page": "50", "filter[status]": "all"}


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def sleeps() -> list[float]:
    return []


class FixedRandom(random.Random):
    """A Random whose every draw is `value` (0 = the low end of a jitter range, ~1 = the top)."""

    def __init__(self, value: float) -> None:
        super().__init__(0)
        self.value = value

    def random(self) -> float:
        return self.value


def client(sleeps: list[float] | None = None, **options: Any) -> ApiClient:
    settings: dict[str, Any] = {
        "timeout": 7.0,
        "retries": 2,
        "backoff": 1.0,
        "concurrency": 1,
        "sleep": (sleeps.append if sleeps is not None else lambda _: None),
        "rng": random.Random(0),
    }
    settings.update(options)
    return ApiClient(BASE, Secret(TOKEN, "$VPSBG_API_TOKEN"), **settings)


def item(id: int, server_id: int = 2478, **fields: Any) -> dict[str, Any]:
    return {
        "id": id,
        "server_id": server_id,
        "server_hostname": "ubuntu-2gb",
        "name": f"{id}_ubuntu-2gb.qcow2.gz",
        "created_at": "2023-06-19T22:36:35+03:00",
        "size": 50,
        **fields,
    }


def page_body(
    items: list[Any], number: int, last_page: int, total: int, resource: str = "backups"
) -> dict[str, Any]:
    real = f"https://api.vpsbg.eu/v1/{resource}"
    return {
        "data": items,
        "links": {
            "first": f"{real}?page=1",
            "last": f"{real}?page={last_page}",
            "prev": f"{real}?page={number - 1}" if number > 1 else None,
            "next": f"{real}?page={number + 1}" if number < last_page else None,
        },
        "meta": {
            "current_page": number,
            "from": (number - 1) * 50 + 1,
            "last_page": last_page,
            "path": real,
            "per_page": 50,
            "to": (number - 1) * 50 + len(items),
            "total": total,
        },
    }


def add_page(
    rsps: responses.RequestsMock,
    resource: str,
    number: int,
    body: object = None,
    *,
    status: int = 200,
    **kwargs: Any,
) -> responses.BaseResponse:
    params = SERVER_PARAMS if resource == "servers" else BACKUP_PARAMS
    match = [matchers.query_param_matcher({"page": str(number), **params})]
    if isinstance(body, str):
        return rsps.add(responses.GET, f"{BASE}/{resource}", body=body, status=status, match=match)
    return rsps.add(
        responses.GET, f"{BASE}/{resource}", json=body, status=status, match=match, **kwargs
    )


def add_listing(
    rsps: responses.RequestsMock, resource: str, items: list[Any], total: int | None = None
) -> int:
    """Register each page of `items` (50 a page); the number of pages."""
    last_page = max(1, -(-len(items) // 50))
    for number in range(1, last_page + 1):
        chunk = items[(number - 1) * 50 : number * 50]
        body = page_body(chunk, number, last_page, len(items) if total is None else total)
        add_page(rsps, resource, number, body)
    return last_page


def add_delete(
    rsps: responses.RequestsMock, id: int, status: int, resource: str = "backups", **kwargs: Any
) -> None:
    rsps.add(responses.DELETE, f"{BASE}/{resource}/{id}", status=status, **kwargs)


def count(rsps: responses.RequestsMock, method: str = "GET", path: str = "/backups") -> int:
    return sum(
        1
        for call in rsps.calls
        if call.request.method == method and (call.request.url or "").split("?")[0] == BASE + path
    )


def api_settings(tmp_path: Path, token_file: Path | None = None) -> ApiSettings:
    return ApiSettings.model_construct(
        base_url=BASE,
        token_env="VPSBG_API_TOKEN",
        token_file=token_file,
        timeout=timedelta(seconds=30),
        retries=5,
        backoff=timedelta(seconds=1),
        concurrency=4,
    )
