"""Builders for listings, policies and raw API items, shared by the pruner tests."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from pruner.engine.models import Backup, Listing, Policy, Resource, Server
from pruner.engine.units import parse_duration, parse_size

__all__ = [
    "ABSENT",
    "DOCS_EXAMPLE_PAGE",
    "NOW",
    "RecordedProgress",
    "backup",
    "daily",
    "item",
    "listing",
    "policy",
]

NOW = datetime(2026, 11, 27, 3, 30, tzinfo=UTC)
ABSENT: Any = object()  # item(size=ABSENT) leaves the key out


def backup(
    id: int,
    server_id: int = 2478,
    created_at: datetime | None = None,
    *,
    resource: Resource = "backups",
    name: str | None = None,
    size: int | None = 50,
    hostname: str | None = "ubuntu-2gb",
) -> Backup:
    return Backup(
        resource=resource,
        id=id,
        server_id=server_id,
        created_at=created_at or NOW - timedelta(days=id),
        name=name if name is not None else f"{id}_backup.qcow2.gz",
        size=size,
        server_hostname=hostname if resource == "backups" else None,
    )


def daily(
    count: int,
    server_id: int = 2478,
    *,
    first_id: int = 1,
    resource: Resource = "backups",
    hostname: str | None = "ubuntu-2gb",
    newest: datetime | None = None,
) -> list[Backup]:
    """`count` backups one day apart, the newest (lowest id) at `newest` (default: 1 h ago)."""
    start = newest or NOW - timedelta(hours=1)
    return [
        backup(
            first_id + n,
            server_id,
            start - timedelta(days=n),
            resource=resource,
            hostname=hostname,
        )
        for n in range(count)
    ]


def policy(name: str = "default", **fields: Any) -> Policy:
    """A Policy; durations and sizes may be given as text (`"14d"`, `"2TB"`)."""
    for key, value in list(fields.items()):
        if isinstance(value, str) and (
            key.startswith("keep_within") or key in {"max_age", "stale_after"}
        ):
            fields[key] = parse_duration(value)
        elif key == "max_total_size" and not hasattr(value, "gigabytes"):
            fields[key] = parse_size(value)
        elif key == "server_ids" and value is not None:
            fields[key] = frozenset(value)
        elif key == "hostnames" and value is not None:
            fields[key] = tuple(value)
    fields.setdefault("stale_after", None)
    return Policy(name=name, **fields)


def listing(
    backups: Iterable[Backup],
    servers: Iterable[Server] | None = None,
    **fields: Any,
) -> Listing:
    backups = tuple(backups)
    fields.setdefault("resources", frozenset({"backups", "snapshots"}))
    return Listing(
        backups=backups,
        servers=None if servers is None else tuple(servers),
        **fields,
    )


def item(id: Any = 77, server_id: Any = 2478, **overrides: Any) -> dict[str, Any]:
    """One raw API backup object, as GET /backups returns it."""
    raw: dict[str, Any] = {
        "id": id,
        "server_id": server_id,
        "server_hostname": "ubuntu-2gb",
        "server_ip": "87.120.37.0",
        "name": f"{id}_ubuntu-2gb_2023_06_19-19_34_40.qcow2.gz",
        "created_at": "2023-06-19T22:36:35+03:00",
        "size": 50,
    }
    raw.update(overrides)
    return {key: value for key, value in raw.items() if value is not ABSENT}


# VPSBG's own example GET /backups response (shared/examples/backups-page.json), verbatim: its
# meta.total (6) disagrees with its two items.
DOCS_EXAMPLE_PAGE = """{
  "data": [
    {
      "id": 77,
      "server_id": 2478,
      "server_hostname": "ubuntu-2gb",
      "server_ip": "87.120.37.0",
      "name": "71_ubuntu-2gb_2023_06_19-19_34_40.qcow2.gz",
      "created_at": "2023-06-19T22:36:35+03:00",
      "size": 50
    },
    {
      "id": 73,
      "server_id": 2448,
      "server_hostname": "ubuntu-2gb",
      "server_ip": "87.120.37.0",
      "name": "40_ubuntu-2gb_2023_06_10-14_42_22.qcow2.gz",
      "created_at": "2023-06-12T10:52:53+03:00",
      "size": 50
    }
  ],
  "links": {
    "first": "https://api.vpsbg.eu/v1/backups?page=1",
    "last": "https://api.vpsbg.eu/v1/backups?page=1",
    "prev": null,
    "next": null
  },
  "meta": {
    "current_page": 1,
    "from": 1,
    "last_page": 1,
    "links": [
      {
        "url": null,
        "label": "pagination.previous",
        "active": false
      },
      {
        "url": "https://api.vpsbg.eu/v1/backups?page=1",
        "label": "1",
        "active": true
      },
      {
        "url": null,
        "label": "pagination.next",
        "active": false
      }
    ],
    "path": "https://api.vpsbg.eu/v1/backups",
    "per_page": 50,
    "to": 6,
    "total": 6
  }
}"""


class RecordedProgress:
    """A Progress that records its calls (`start`, `advance`, `finish`), from any thread."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, int]] = []
        self._lock = threading.Lock()

    def start(self, task: str, total: int) -> None:
        with self._lock:
            self.calls.append(("start", task, total))

    def advance(self, task: str, steps: int = 1) -> None:
        with self._lock:
            self.calls.append(("advance", task, steps))

    def finish(self, task: str) -> None:
        with self._lock:
            self.calls.append(("finish", task, 0))

    def steps(self, task: str) -> int:
        return sum(n for call, name, n in self.calls if call == "advance" and name == task)

    def of(self, task: str) -> list[str]:
        """The kinds of calls for `task`, in order, advances counted once each."""
        return [call for call, name, _ in self.calls if name == task]
