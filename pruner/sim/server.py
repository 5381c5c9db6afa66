"""An in-process simulator of the VPSBG REST API, for `pruner demo` and end-to-end tests.

It speaks real HTTP on 127.0.0.1, so the real client (or the CLI in a subprocess) talks to it
unchanged. Everything is deterministic given the fleet, the seed and the order of requests; the
faults a client must survive are knobs (`Faults`) or scripted answers (`Simulator.script`), and
tests synchronise with it through events and callbacks, never sleeps.

Where VPSBG's docs are silent it behaves like the Laravel stack the API is built on: routing
before authentication (an unknown path is 404 even without a token), `Accept` negotiation
(unless JSON is the preferred type, the answer is an HTML page), paginator links and meta, 422
bodies with `errors`, spatie-style 400 for unknown filters and sorts, JSON with escaped slashes.
"""

from __future__ import annotations

import contextlib
import json
import math
import random
import re
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socketserver import TCPServer
from types import TracebackType
from typing import Any, Literal, NamedTuple
from urllib.parse import parse_qsl, urlencode, urlsplit

from pruner.sim.faults import Faults, Request, ScriptedResponse
from pruner.sim.fleet import Fleet, Item, local_text, name_stamp

__all__ = [
    "BACKUPS_PER_PAGE",
    "READ_TOKEN",
    "SERVERS_PER_PAGE_DEFAULT",
    "WRITE_TOKEN",
    "Simulator",
]

WRITE_TOKEN = "sim-write-token"
READ_TOKEN = "sim-read-token"
BACKUPS_PER_PAGE = 50
SERVERS_PER_PAGE_DEFAULT = 15  # Laravel's default page size
SERVERS_PER_PAGE_MAX = 50

Access = Literal["read", "write"]
SimResource = Literal["backups", "snapshots"]


@dataclass(frozen=True, slots=True)
class _Response:
    status: int
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()


def _encode(payload: object) -> bytes:
    # Laravel's JsonResponse escapes slashes; '/' only ever occurs inside JSON strings.
    return json.dumps(payload, separators=(",", ":")).replace("/", "\\/").encode()


def _json(status: int, payload: object, headers: tuple[tuple[str, str], ...] = ()) -> _Response:
    return _Response(status, _encode(payload), (("Content-Type", "application/json"), *headers))


def _message(status: int, message: str, headers: tuple[tuple[str, str], ...] = ()) -> _Response:
    return _json(status, {"message": message}, headers)


def _validation(errors: Mapping[str, str]) -> _Response:
    first = next(iter(errors.values()))
    more = len(errors) - 1
    message = first if not more else f"{first} (and {more} more error{'s' if more > 1 else ''})"
    return _json(422, {"message": message, "errors": {k: [v] for k, v in errors.items()}})


_HTML = (
    b'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>VPSBG</title></head>'
    b'<body><div id="app"><h1>VPSBG</h1><p>Cloud servers in Bulgaria.</p></div></body></html>\n'
)


def _html() -> _Response:
    return _Response(200, _HTML, (("Content-Type", "text/html; charset=UTF-8"),))


def _scripted(response: ScriptedResponse) -> _Response:
    body = response.body
    if body is None:
        data = b""
    elif isinstance(body, bytes):
        data = body
    elif isinstance(body, str):
        data = body.encode()
    else:
        data = _encode(body)
    headers = dict(response.headers)
    if data and not any(k.lower() == "content-type" for k in headers):
        headers["Content-Type"] = "application/json"
    return _Response(response.status, data, tuple(headers.items()))


def _seconds_text(seconds: float) -> str:
    return f"{seconds:g}"


# --------------------------------------------------------------------------------------------
# Request parsing helpers (Laravel semantics)
# --------------------------------------------------------------------------------------------

_ROUTE = re.compile(r"^/v1/(backups|snapshots|servers)(?:/(\d+))?$")
_FILTER = re.compile(r"^filter\[(.*)\]$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_INTEGER = re.compile(r"^-?\d+$")
_COUNTER = re.compile(r"^(\d+)_")
_ALLOWED_FILTERS = {
    "backups": ("server_id", "date", "size"),
    "snapshots": ("server_id", "date"),
    "servers": ("status",),
}
_STATUSES = ("active", "suspended", "terminated")
_DEFAULT_STATUSES = frozenset({"active", "suspended"})


class _Route(NamedTuple):
    resource: Literal["backups", "snapshots", "servers"]
    item_id: int | None
    delete_moved: bool = False  # this resource's DELETE is served elsewhere (move_delete_path)
    delete_only: bool = False  # the path a DELETE was moved to

    @property
    def methods(self) -> tuple[str, ...]:
        if self.delete_only:
            return ("DELETE",)
        if self.resource != "servers" and self.item_id is not None and not self.delete_moved:
            return ("GET", "HEAD", "DELETE")
        return ("GET", "HEAD")


def _route(path: str) -> _Route | None:
    match = _ROUTE.match(path.rstrip("/") or "/")
    if match is None:
        return None
    resource: Literal["backups", "snapshots", "servers"] = match[1]  # type: ignore[assignment]
    return _Route(resource, int(match[2]) if match[2] else None)


def _wants_json(accept: str | None) -> bool:
    """Laravel's `wantsJson()`: the most acceptable type (by q, then order) is JSON."""
    if not accept:
        return False
    ranked = []
    for position, part in enumerate(accept.split(",")):
        media, *params = (piece.strip() for piece in part.split(";"))
        quality = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        ranked.append((-quality, position, media.lower()))
    media = min(ranked)[2]
    return "/json" in media or "+json" in media


def _bearer(authorization: str | None) -> str | None:
    scheme, _, token = (authorization or "").strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _page(value: str | None) -> int:
    """Laravel's `resolveCurrentPage`: a valid integer >= 1, anything else is page 1."""
    if value is None or not _INTEGER.match(value.strip()):
        return 1
    return max(int(value), 1)


def _timestamp_key(item: Item) -> float:
    value = item.get("created_at")
    if not isinstance(value, str):
        return -math.inf
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return -math.inf
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _id_key(item: Item) -> int:
    value = item.get("id")
    return value if isinstance(value, int) else -1


def _page_numbers(current: int, last: int) -> list[int | None]:
    """Laravel's UrlWindow (3 on each side); None stands for the '...' separator."""
    each = 3
    if last < each * 2 + 8:
        return list(range(1, last + 1))
    window = each + 4
    if current <= window:
        return [*range(1, window + each + 1), None, last - 1, last]
    if current > last - window:
        return [1, 2, None, *range(last - (window + each - 1), last + 1)]
    return [1, 2, None, *range(current - each, current + each + 1), None, last - 1, last]


def _paginate(
    items: Sequence[Item], *, page: int, per_page: int, path: str, query: Mapping[str, str]
) -> Item:
    total = len(items)
    last_page = max(math.ceil(total / per_page), 1)
    offset = (page - 1) * per_page
    data = list(items[offset : offset + per_page])

    def url(number: int) -> str:
        # withQueryString(): the request's parameters, with the page replaced or appended
        params = {**query, "page": str(number)}
        return f"{path}?{urlencode(list(params.items()))}"

    prev_url = url(page - 1) if page > 1 else None
    next_url = url(page + 1) if page < last_page else None
    links: list[Item] = [{"url": prev_url, "label": "pagination.previous", "active": False}]
    for number in _page_numbers(page, last_page):
        if number is None:
            links.append({"url": None, "label": "...", "active": False})
        else:
            links.append({"url": url(number), "label": str(number), "active": number == page})
    links.append({"url": next_url, "label": "pagination.next", "active": False})
    return {
        "data": data,
        "links": {"first": url(1), "last": url(last_page), "prev": prev_url, "next": next_url},
        "meta": {
            "current_page": page,
            "from": offset + 1 if data else None,
            "last_page": last_page,
            "links": links,
            "path": path,
            "per_page": per_page,
            "to": offset + len(data) if data else None,
            "total": total,
        },
    }


def _not_found(resource: str, item_id: int) -> _Response:
    model = {"backups": "Backup", "snapshots": "Snapshot", "servers": "Server"}[resource]
    return _message(404, f"No query results for model [App\\Models\\{model}] {item_id}")


# --------------------------------------------------------------------------------------------
# The simulator
# --------------------------------------------------------------------------------------------


class Simulator:
    """The VPSBG API on 127.0.0.1, over a copy of `fleet`. Use as a context manager or
    `start()`/`stop()`. All state access is thread-safe; handlers run in threads."""

    def __init__(
        self,
        fleet: Fleet,
        *,
        tokens: Mapping[str, Access] | None = None,
        faults: Faults | None = None,
        seed: int = 0,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.faults = faults if faults is not None else Faults()
        self.base_url = ""
        self.requests: list[Request] = []
        self.deleted: list[tuple[SimResource, int]] = []
        self.errors: list[BaseException] = []  # exceptions inside the simulator (its own bugs)
        self.delete_started = threading.Event()
        self.delete_gate = threading.Event()
        self.delete_gate.set()
        self._tokens: dict[str, Access] = dict(
            tokens if tokens is not None else {WRITE_TOKEN: "write", READ_TOKEN: "read"}
        )
        self._host, self._port = host, port
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self._servers = [dict(server) for server in fleet.servers]
        self._items: dict[SimResource, list[Item]] = {
            "backups": [dict(item) for item in fleet.backups],
            "snapshots": [dict(item) for item in fleet.snapshots],
        }
        self._next_id = {
            r: max(map(_id_key, items), default=0) + 1 for r, items in self._items.items()
        }
        self._counters = _backup_counters(self._items["backups"])
        self._scripts: dict[tuple[str, str], deque[ScriptedResponse]] = {}
        self._moved_deletes: dict[SimResource, re.Pattern[str]] = {}
        self._callbacks: list[Callable[[str, str], None]] = []
        self._fault_count = 0
        self._appear_consumed: tuple[Faults, int] | None = None
        self._http: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()  # set by stop(): trickling answers end at once

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> str:
        """Bind and serve in a background thread; returns the base URL (…/v1)."""
        if self._http is not None:
            return self.base_url
        self._stopping.clear()
        self._http = _HTTPServer((self._host, self._port), self)
        self.base_url = f"http://{self._host}:{self._http.server_port}/v1"
        self._thread = threading.Thread(
            target=self._http.serve_forever,
            kwargs={"poll_interval": 0.02},
            name="vpsbg-simulator",
            daemon=True,
        )
        self._thread.start()
        return self.base_url

    def stop(self) -> None:
        """Stop serving; requests held by `delete_gate` are released and answered first."""
        http, self._http = self._http, None
        if http is None:
            return
        self._stopping.set()
        self.delete_gate.set()
        http.shutdown()
        http.close_connections(grace=5.0)
        http.server_close()
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> Simulator:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # -- test hooks -----------------------------------------------------------------------

    def script(self, method: str, path: str, *responses: ScriptedResponse) -> None:
        """The next requests with this method and exact path (no query) get these answers in
        order, before any other check or fault. Calls add to the queue."""
        with self._lock:
            self._scripts.setdefault((method.upper(), path), deque()).extend(responses)

    def on_request(self, callback: Callable[[str, str], None]) -> None:
        """Call `callback(method, path)` at the start of every request, in the handler thread."""
        with self._lock:
            self._callbacks.append(callback)

    def move_delete_path(self, resource: SimResource, template: str) -> None:
        """VPSBG moved where `resource` is deleted: from now on a DELETE goes to `template`
        (under /v1, `{id}` standing for the id, e.g. "/backups/{id}/delete"), and the old path
        answers 405, as Laravel does for a route that keeps its GET."""
        head, _, tail = template.partition("{id}")
        pattern = re.compile(f"^/v1{re.escape(head)}([0-9]+){re.escape(tail)}$")
        with self._lock:
            self._moved_deletes[resource] = pattern

    def request_count(self, method: str | None = None, path: str | None = None) -> int:
        with self._lock:
            return sum(
                1
                for r in self.requests
                if (method is None or r.method == method.upper())
                and (path is None or r.path == path)
            )

    # -- state ----------------------------------------------------------------------------

    def backups(self, resource: SimResource = "backups") -> list[Item]:
        """Copies of the current backups (or snapshots), ascending id."""
        with self._lock:
            return [dict(item) for item in sorted(self._items[resource], key=_id_key)]

    def servers(self) -> list[Item]:
        """Copies of every server, whatever its status, ascending id."""
        with self._lock:
            return [dict(server) for server in sorted(self._servers, key=_id_key)]

    def set_server(
        self, server_id: int, *, locked: bool | None = None, status: str | None = None
    ) -> None:
        """Change a server while running (e.g. lock it between listing and deleting)."""
        with self._lock:
            server = self._server(server_id)
            if server is None:
                raise KeyError(f"no server {server_id} in the simulated fleet")
            if locked is not None:
                server["locked"] = locked
            if status is not None:
                server["status"] = status

    def add_backup(
        self,
        server_id: int,
        *,
        created_at: datetime,
        resource: SimResource = "backups",
        size: int | None = None,
    ) -> Item:
        """Create a backup (or snapshot) as the platform would, with the next id; returns a copy."""
        with self._lock:
            return dict(self._add(resource, server_id, created_at, size))

    # -- request handling (called by the HTTP handler) ------------------------------------

    def _handle(
        self, method: str, target: str, accept: str | None, authorization: str | None
    ) -> _Response:
        parts = urlsplit(target)
        path, query = parts.path, dict(parse_qsl(parts.query, keep_blank_values=True))
        with self._lock:
            self.requests.append(Request(method, path, query))
            callbacks = list(self._callbacks)
        for callback in callbacks:
            callback(method, path)
        if method == "DELETE":
            self.delete_started.set()
            self.delete_gate.wait()
        if self.faults.latency > 0:
            time.sleep(self.faults.latency)
        with self._lock:
            scripts = self._scripts.get((method, path))
            scripted = scripts.popleft() if scripts else None
        if scripted is not None:
            if scripted.perform:
                self._answer(method, path, query, accept, authorization, faults=False)
            return _scripted(scripted)
        return self._answer(method, path, query, accept, authorization, faults=True)

    def _answer(
        self,
        method: str,
        path: str,
        query: dict[str, str],
        accept: str | None,
        authorization: str | None,
        *,
        faults: bool,
    ) -> _Response:
        route = self._route(path)
        if route is None:
            return _message(404, f"The route {path.lstrip('/')} could not be found.")
        if method not in route.methods:
            allowed = ", ".join(route.methods)
            return _message(
                405,
                f"The {method} method is not supported for route {path.lstrip('/')}. "
                f"Supported methods: {allowed}.",
                (("Allow", allowed),),
            )
        if not _wants_json(accept):
            return _html()
        access = self._tokens.get(_bearer(authorization) or "")
        if access is None:
            return _message(401, "Unauthenticated.")
        if method == "DELETE" and access != "write":
            return _message(403, "This action is unauthorized.")
        fault = self._fault(method) if faults else None
        if fault is not None and fault != "garbage":
            return fault
        response = self._resource(method, route, query, faults=faults)
        return self._garble(response) if fault == "garbage" else response

    def _route(self, path: str) -> _Route | None:
        with self._lock:
            moved = dict(self._moved_deletes)
        for resource, pattern in moved.items():
            found = pattern.match(path)
            if found is not None:
                return _Route(resource, int(found[1]), delete_only=True)
        route = _route(path)
        if route is not None and route.resource in moved:
            return route._replace(delete_moved=True)
        return route

    def _fault(self, method: str) -> _Response | Literal["garbage"] | None:
        faults = self.faults
        with self._lock:
            self._fault_count += 1
            if faults.rate_limit_every > 0 and self._fault_count % faults.rate_limit_every == 0:
                headers = (
                    ("Retry-After", _seconds_text(faults.retry_after)),
                    ("X-RateLimit-Limit", "60"),
                    ("X-RateLimit-Remaining", "0"),
                )
                return _message(429, "Too Many Attempts.", headers)
            if faults.error_rate > 0 and self._rng.random() < faults.error_rate:
                return _message(500, "Server Error")
            garbage = method in {"GET", "HEAD"} and faults.garbage_rate > 0
            if garbage and self._rng.random() < faults.garbage_rate:
                return "garbage"
        return None

    def _garble(self, response: _Response) -> _Response:
        with self._lock:
            truncate = self._rng.random() < 0.5
        if truncate and response.status == 200 and len(response.body) > 1:
            return _Response(200, response.body[: len(response.body) // 2], response.headers)
        return _html()

    def _resource(
        self, method: str, route: _Route, query: dict[str, str], *, faults: bool
    ) -> _Response:
        if route.resource == "servers":
            if route.item_id is None:
                return self._list_servers(query)
            with self._lock:
                server = self._server(route.item_id)
                return _json(200, server) if server else _not_found("servers", route.item_id)
        if route.item_id is None:
            return self._list_items(route.resource, query)
        if method == "DELETE":
            return self._delete(route.resource, route.item_id, faults=faults)
        with self._lock:
            item = self._item(route.resource, route.item_id)
            return _json(200, item) if item else _not_found(route.resource, route.item_id)

    def _list_items(self, resource: SimResource, query: dict[str, str]) -> _Response:
        problem = _check_query(resource, query)
        if problem is not None:
            return problem
        page = _page(query.get("page"))
        with self._lock:
            items = _sorted(_filtered(self._items[resource], query), query.get("sort"))
            body = _paginate(
                items,
                page=page,
                per_page=BACKUPS_PER_PAGE,
                path=f"{self.base_url}/{resource}",
                query=query,
            )
            if page == 1:
                self._appear(resource)
        return _json(200, body)

    def _list_servers(self, query: dict[str, str]) -> _Response:
        problem = _check_query("servers", query)
        if problem is not None:
            return problem
        per_page = _per_page(query.get("per_page"))
        if isinstance(per_page, _Response):
            return per_page
        statuses = _statuses(query.get("filter[status]"))
        with self._lock:
            servers = [s for s in sorted(self._servers, key=_id_key) if s.get("status") in statuses]
            body = _paginate(
                servers,
                page=_page(query.get("page")),
                per_page=per_page,
                path=f"{self.base_url}/servers",
                query=query,
            )
        return _json(200, body)

    def _delete(self, resource: SimResource, item_id: int, *, faults: bool) -> _Response:
        with self._lock:
            item = self._item(resource, item_id)
            if item is None:
                return _not_found(resource, item_id)
            server = self._server(item.get("server_id"))
            locked = server is not None and server.get("locked") is True
            rate = self.faults.locked_delete_rate if faults else 0.0
            if locked or (rate > 0 and self._rng.random() < rate):
                return _message(423, "The server is locked by another operation. Try again later.")
            self._items[resource].remove(item)
            self.deleted.append((resource, item_id))
        return _Response(204)

    # -- state helpers (call with the lock held) ------------------------------------------

    def _server(self, server_id: object) -> Item | None:
        return next((s for s in self._servers if s.get("id") == server_id), None)

    def _item(self, resource: SimResource, item_id: int) -> Item | None:
        return next((i for i in self._items[resource] if i.get("id") == item_id), None)

    def _appear(self, resource: SimResource) -> None:
        faults = self.faults
        count, consumed = faults.appear_during_listing, self._appear_consumed
        if count <= 0 or (
            consumed and consumed[0] is faults and consumed[1] == faults._appear_setting
        ):
            return
        self._appear_consumed = (faults, faults._appear_setting)
        candidates = [
            s
            for s in sorted(self._servers, key=_id_key)
            if s.get("status") == "active" and not s.get("locked") and isinstance(s.get("id"), int)
        ]
        if not candidates:
            return
        newest = max((_timestamp_key(i) for i in self._items[resource]), default=-math.inf)
        start = (
            datetime.fromtimestamp(newest, UTC)
            if newest > -math.inf
            else datetime(2024, 1, 1, tzinfo=UTC)
        )
        for n in range(count):
            server = candidates[n % len(candidates)]
            self._add(resource, server["id"], start + timedelta(minutes=n + 1), None)

    def _add(
        self, resource: SimResource, server_id: int, created_at: datetime, size: int | None
    ) -> Item:
        if created_at.tzinfo is None:
            raise ValueError("add_backup needs an aware created_at")
        server = self._server(server_id) or {}
        hostname = server.get("hostname")
        previous = [i for i in self._items[resource] if i.get("server_id") == server_id]
        latest = max(previous, key=_id_key, default={})
        size = size if size is not None else latest.get("size", 20)
        item_id = self._next_id[resource]
        self._next_id[resource] = item_id + 1
        if resource == "backups":
            counter = self._counters[server_id] = self._counters.get(server_id, 0) + 1
            started = created_at - timedelta(minutes=2)
            item: Item = {
                "id": item_id,
                "server_id": server_id,
                "server_hostname": hostname,
                "server_ip": latest.get("server_ip"),
                "name": f"{counter}_{hostname}_{name_stamp(started)}.qcow2.gz",
                "created_at": local_text(created_at),
                "size": size,
            }
        else:
            item = {
                "id": item_id,
                "server_id": server_id,
                "name": f"{hostname}-manual-{created_at:%Y%m%d}",
                "created_at": local_text(created_at),
                "size": size,
            }
        self._items[resource].append(item)
        return item


def _backup_counters(backups: Sequence[Item]) -> dict[int, int]:
    """Each server's highest backup counter so far (the number that starts a backup's name)."""
    counters: dict[int, int] = {}
    for item in backups:
        server_id, match = item.get("server_id"), _COUNTER.match(str(item.get("name", "")))
        if isinstance(server_id, int) and match:
            counters[server_id] = max(counters.get(server_id, 0), int(match[1]))
    return counters


def _check_query(
    resource: Literal["backups", "snapshots", "servers"], query: Mapping[str, str]
) -> _Response | None:
    """Spatie query-builder rules: unknown filters or sorts are 400; bad values are 422."""
    allowed = _ALLOWED_FILTERS[resource]
    unknown = [m[1] for key in query if (m := _FILTER.match(key)) and m[1] not in allowed]
    if unknown:
        return _message(
            400,
            f"Requested filter(s) `{', '.join(unknown)}` are not allowed. "
            f"Allowed filter(s) are `{', '.join(allowed)}`.",
        )
    sort = query.get("sort")
    if sort is not None and resource != "servers" and sort not in {"date", "-date"}:
        return _message(
            400, f"Requested sort(s) `{sort}` is not allowed. Allowed sort(s) are `date`."
        )
    errors: dict[str, str] = {}
    server_ids = query.get("filter[server_id]")
    if server_ids is not None and not all(_INTEGER.match(p.strip()) for p in server_ids.split(",")):
        errors["filter.server_id"] = "The filter.server_id field must be an integer."
    day = query.get("filter[date]")
    if day is not None and not _valid_date(day):
        errors["filter.date"] = "The filter.date field must match the format Y-m-d."
    size = query.get("filter[size]")
    if size is not None and not _INTEGER.match(size.strip()):
        errors["filter.size"] = "The filter.size field must be an integer."
    return _validation(errors) if errors else None


def _per_page(text: str | None) -> int | _Response:
    if text is None:
        return SERVERS_PER_PAGE_DEFAULT
    if not _INTEGER.match(text.strip()):
        return _validation({"per_page": "The per page field must be an integer."})
    if not 1 <= int(text) <= SERVERS_PER_PAGE_MAX:
        limit = SERVERS_PER_PAGE_MAX
        return _validation({"per_page": f"The per page field must be between 1 and {limit}."})
    return int(text)


def _valid_date(text: str) -> bool:
    if not _DATE.match(text):
        return False
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


def _filtered(items: Sequence[Item], query: Mapping[str, str]) -> list[Item]:
    server_ids = query.get("filter[server_id]")
    wanted = {int(p) for p in server_ids.split(",")} if server_ids is not None else None
    day = query.get("filter[date]")
    size = query.get("filter[size]")
    minimum = int(size) if size is not None else None

    def keep(item: Item) -> bool:
        if wanted is not None and item.get("server_id") not in wanted:
            return False
        if day is not None and str(item.get("created_at", ""))[:10] != day:
            return False
        item_size = item.get("size")
        return minimum is None or (isinstance(item_size, int) and item_size >= minimum)

    return [item for item in items if keep(item)]


def _sorted(items: list[Item], sort: str | None) -> list[Item]:
    if sort == "date":
        return sorted(items, key=lambda i: (_timestamp_key(i), _id_key(i)))
    if sort == "-date":
        return sorted(items, key=lambda i: (_timestamp_key(i), _id_key(i)), reverse=True)
    return sorted(items, key=_id_key)


def _statuses(text: str | None) -> frozenset[str]:
    if text is None:
        return _DEFAULT_STATUSES
    wanted = frozenset(part.strip().lower() for part in text.split(",") if part.strip())
    return frozenset(_STATUSES) if "all" in wanted else wanted


# --------------------------------------------------------------------------------------------
# HTTP plumbing
# --------------------------------------------------------------------------------------------


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], simulator: Simulator) -> None:
        self.simulator = simulator
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Condition()
        self._answering = 0  # requests being handled right now
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host's FQDN, which can take seconds.
        TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def track(self, connection: socket.socket, *, open_: bool) -> None:
        with self._connections_lock:
            if open_:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    @contextlib.contextmanager
    def answering(self) -> Iterator[None]:
        with self._connections_lock:
            self._answering += 1
        try:
            yield
        finally:
            with self._connections_lock:
                self._answering -= 1
                self._connections_lock.notify_all()

    def close_connections(self, grace: float) -> None:
        """Let requests in progress be answered (up to `grace` seconds), then end kept-alive
        connections, so that no handler serves after stop()."""
        with self._connections_lock:
            self._connections_lock.wait_for(lambda: self._answering == 0, timeout=grace)
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: object, client_address: object) -> None:
        """Quiet: clients hanging up mid-answer are normal here."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # else keep-alive answers wait ~40 ms for a delayed ACK
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, open_=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, open_=False)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: no per-request logging."""

    def _dispatch(self) -> None:
        length = self.headers.get("Content-Length")
        if length and length.isdigit():
            self.rfile.read(int(length))
        method = self.command.upper()
        simulator = self.server.simulator
        with self.server.answering():
            try:
                response = simulator._handle(
                    method, self.path, self.headers.get("Accept"), self.headers.get("Authorization")
                )
            except Exception as error:
                simulator.errors.append(error)
                response = _message(500, "Server Error")
            self._send(response, with_body=method != "HEAD")

    def _send(self, response: _Response, *, with_body: bool) -> None:
        self.send_response(response.status)
        for name, value in response.headers:
            self.send_header(name, value)
        if response.status != 204:
            self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if with_body and response.status != 204:
            self._write(response.body)

    def _write(self, body: bytes) -> None:
        simulator = self.server.simulator
        trickle = simulator.faults.trickle
        if trickle <= 0:
            self.wfile.write(body)
            return
        for index in range(len(body)):
            if index and simulator._stopping.wait(trickle):
                return  # stop() closes the connection: the client sees a cut answer
            self.wfile.write(body[index : index + 1])

    do_GET = do_DELETE = do_HEAD = do_POST = do_PUT = do_PATCH = do_OPTIONS = _dispatch
