"""The VPSBG API client: every request pruner makes to the API goes through `ApiClient`.

What the API answers is never trusted as a whole until it is checked: a listing is either every
item (every page read, de-duplicated, the count agreeing with `meta.total`) or an
`IncompleteListing`, never a partial list. Waits go through an injectable `sleep` and end early
when `stop` is set, so tests never wait and SIGTERM never hangs on a backoff. `timeout` bounds a
whole request, its body included, so no answer, however slowly it trickles in, holds a pass.
"""

from __future__ import annotations

import contextvars
import email.utils
import json
import math
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC
from typing import Any, Generic, TypeVar, get_args

import requests
import structlog
import urllib3
from requests.adapters import HTTPAdapter

from pruner import __version__
from pruner.config.schema import ApiSettings, DeletePaths
from pruner.engine.models import Resource
from pruner.engine.results import DeleteOutcome, DeleteResult
from pruner.vpsbg.errors import (
    ApiAuthError,
    ApiError,
    ApiPermissionError,
    IncompleteListing,
    ListedResource,
    PassInterrupted,
)
from pruner.vpsbg.progress import NO_PROGRESS, Progress
from pruner.vpsbg.token import Secret

__all__ = ["PAGE_SIZE", "USER_AGENT", "ApiClient", "BackoffGate", "build_session"]

PAGE_SIZE = 50  # Laravel's page size for /backups and /snapshots; the most /servers allows
USER_AGENT = f"pruner/{__version__} (VPSBG backup retention) python-requests/{requests.__version__}"

_DEFAULTS = ApiSettings()  # what a client built without the config uses
_LISTINGS = 3  # the first listing, and at most two more when the account changed meanwhile
_BACKOFF_CAP = 60.0
_TEXT_LIMIT = 300  # characters of an API message or error kept in our messages
_CHUNK = 64 * 1024  # the most bytes of an answer's body taken in one read
_LISTED: tuple[ListedResource, ...] = get_args(ListedResource)
_DELETABLE: tuple[Resource, ...] = get_args(Resource)

_log = structlog.get_logger("pruner.api")

_T = TypeVar("_T")


# --- waiting ----------------------------------------------------------------------------------


class BackoffGate:
    """The one door every request of a client goes through.

    It lets at most `concurrency` requests be in flight, holds every new request while a rate
    limit pause runs (a 429 slows the whole client, not only the worker that got it), and stops
    letting anything through once `stop` is set. All waiting is done by `sleep`, which must end
    early when `stop` is set (the default, `stop.wait`, does).
    """

    def __init__(
        self,
        concurrency: int,
        *,
        sleep: Callable[[float], None] | None = None,
        stop: threading.Event | None = None,
        on_wait: Callable[[], None] | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, not {concurrency}")
        self.stop = stop if stop is not None else threading.Event()
        self._sleep = sleep if sleep is not None else _waiter(self.stop)
        self._on_wait = on_wait  # called when a request has to wait (tests, metrics)
        self._slots = threading.BoundedSemaphore(concurrency)
        self._open = threading.Condition()
        self._pauses = 0  # rate-limit pauses running now

    @contextmanager
    def turn(self) -> Iterator[None]:
        """Wait for the gate to be open and a slot free, then hold the slot for one request.

        Raises PassInterrupted instead of starting anything once `stop` is set.
        """
        self._enter()
        try:
            yield
        finally:
            self._slots.release()

    def _enter(self) -> None:
        while True:
            self._check_stop()
            with self._open:
                if self._pauses:
                    self._waiting()
                    self._open.wait_for(lambda: self._pauses == 0)
                    continue  # stop may have been set meanwhile
            if not self._slots.acquire(blocking=False):
                self._waiting()
                self._slots.acquire()
            with self._open:
                ready = self._pauses == 0 and not self.stop.is_set()
            if ready:
                return
            self._slots.release()  # a pause or a stop began while waiting for the slot

    def wait(self, seconds: float) -> None:
        """This worker alone waits (a backoff after 423 or 5xx), cut short by `stop`."""
        if seconds > 0:
            self._sleep(seconds)

    def pause_all(self, seconds: float) -> None:
        """Every worker waits: new requests are held until this (sleeping) worker is done."""
        with self._open:
            self._pauses += 1
        try:
            self.wait(seconds)
        finally:
            with self._open:
                self._pauses -= 1
                self._open.notify_all()

    def _waiting(self) -> None:
        if self._on_wait is not None:
            self._on_wait()

    def _check_stop(self) -> None:
        if self.stop.is_set():
            raise PassInterrupted("stopped: no new API request is started")


def _waiter(stop: threading.Event) -> Callable[[float], None]:
    def sleep(seconds: float) -> None:
        stop.wait(seconds)

    return sleep


# --- the client -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Page:
    items: list[Any]
    last_page: int
    total: int
    per_page: int | None  # None when meta.per_page is absent or not a count


@dataclass(frozen=True, slots=True)
class _Answer(Generic[_T]):
    """The outcome of a request after any retries: a value, or what went wrong."""

    ok: bool
    status: int | None  # None: no answer (connection error, timeout)
    value: _T | None = None  # the checked body of a 2xx answer, when one was asked for
    problem: str = ""  # for people: what went wrong
    retry: bool = False  # worth another try (423, 429, 5xx, garbage, no answer)
    retry_after: float | None = None  # seconds, from the Retry-After header


@dataclass(frozen=True, slots=True)
class _Reply:
    """An HTTP answer as read by its deadline. `body` is empty when it was cut at the deadline:
    the status still tells what a DELETE came to, but nothing that needs the body may use it."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    whole: bool = True


@dataclass(frozen=True, slots=True)
class _NoAnswer:
    problem: str
    retry: bool


class _Malformed(ValueError):
    """A 2xx body that is not what the API documents."""


def build_session(concurrency: int) -> requests.Session:
    """A session whose connection pool fits `concurrency`, and in which urllib3 retries nothing.

    ApiClient is the one retry layer: its waits can be injected and interrupted (urllib3's
    cannot), each of its attempts is logged and counted, and a retry under it would send a
    request twice per attempt it reports, and wait out every timeout twice.
    """
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=0, pool_connections=1, pool_maxsize=concurrency)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


@dataclass(frozen=True, slots=True)
class _Wire:
    """What every request of a client has in common, worked out by requests once.

    `Session.request` merges the session's settings into each request anew and reads the proxy
    (HTTPS_PROXY, NO_PROXY …) and CA bundle variables from the environment twice: about half
    of the CPU time a request costs. Every request of a client goes to one base URL with the
    same headers, so the session prepares one request per method here, each request is a copy
    of it with its own URL, and the environment's settings go to `Session.send` as they are.
    Cookies the API may set are not sent back: it authenticates by the token alone.
    """

    templates: Mapping[str, requests.PreparedRequest]
    proxies: MutableMapping[str, str]
    verify: bool | str | None
    cert: str | tuple[str, str] | None

    @classmethod
    def of(cls, session: requests.Session, base_url: str, headers: Mapping[str, str]) -> _Wire:
        settings = session.merge_environment_settings(base_url, {}, None, None, None)
        templates = {}
        for method in ("GET", "DELETE"):
            template = session.prepare_request(requests.Request(method, base_url, headers=headers))
            template.headers.update(headers)  # a ~/.netrc entry must not replace the token
            templates[method] = template
        return cls(templates, settings["proxies"], settings["verify"], settings["cert"])

    def prepared(
        self, method: str, url: str, params: Mapping[str, str | int] | None
    ) -> requests.PreparedRequest:
        request = self.templates[method].copy()
        request.prepare_url(url, params)
        return request


@dataclass(frozen=True, slots=True)
class _Pages:
    """A listing's pages, as its progress counts them: page 1 says how many there are."""

    progress: Progress
    task: str

    def first(self, pages: int) -> None:
        self.progress.start(self.task, pages)
        self.progress.advance(self.task)

    def read(self, pages: int) -> None:
        self.progress.advance(self.task, pages)


class ApiClient:
    """The VPSBG REST API, as pruner needs it: complete listings, deletions, a check.

    Thread-safe: workers may share one client; its BackoffGate paces them all.
    """

    def __init__(
        self,
        base_url: str,
        token: Secret,
        *,
        timeout: float,
        retries: int,
        backoff: float,
        concurrency: int,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] | None = None,
        stop: threading.Event | None = None,
        rng: random.Random | None = None,
        on_response: Callable[[str, int | None], None] | None = None,
        retry_after_cap: float = _BACKOFF_CAP,
        wall_clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        max_pages: int = _DEFAULTS.max_pages,
        paths: DeletePaths = _DEFAULTS.paths,
    ) -> None:
        if timeout <= 0 or retries < 0 or backoff < 0 or retry_after_cap < 0:
            raise ValueError("timeout must be > 0; retries, backoff and retry_after_cap >= 0")
        if concurrency < 1 or max_pages < 1:
            raise ValueError("concurrency and max_pages must be at least 1")
        self.base_url = base_url.rstrip("/")
        self._token = token
        self._timeout = timeout
        self._retries = retries
        self._backoff = backoff
        self._concurrency = concurrency
        self._owns_session = session is None
        self._session = session if session is not None else build_session(concurrency)
        self._headers = {
            "Authorization": f"Bearer {token.reveal()}",
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
        }
        self._wire: _Wire | None = None  # worked out on the first request
        self.gate = BackoffGate(concurrency, sleep=sleep, stop=stop)
        self._rng = rng if rng is not None else random.Random()
        self._on_response = on_response
        self._retry_after_cap = retry_after_cap
        self._wall_clock = wall_clock  # only for a Retry-After date when the answer has no Date
        self._monotonic = monotonic  # for each request's deadline
        self._max_pages = max_pages
        self._paths = paths

    @classmethod
    def from_settings(cls, api: ApiSettings, token: Secret, **options: Any) -> ApiClient:
        """A client configured by the `api` section; `options` as for the constructor."""
        return cls(
            api.base_url,
            token,
            timeout=api.timeout.total_seconds(),
            retries=api.retries,
            backoff=api.backoff.total_seconds(),
            concurrency=api.concurrency,
            max_pages=api.max_pages,
            paths=api.paths,
            **options,
        )

    def __repr__(self) -> str:
        return f"ApiClient({self.base_url!r})"

    def close(self) -> None:
        if self._owns_session:
            self._session.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # --- listing ------------------------------------------------------------------------------

    def list_items(self, resource: ListedResource, progress: Progress = NO_PROGRESS) -> list[Any]:
        """Every item of `resource`, as the API gave them (pruner.vpsbg.listing judges each one).

        All pages are read, then checked as a whole: ids de-duplicated (the same id with other
        content is a disagreement) and the count compared with `meta.total`. If the account
        changed while it was listed, it is listed again, at most twice more. Raises
        IncompleteListing rather than return less than everything. `progress` is told of each
        page read (task `listing <resource>`).
        """
        if resource not in _LISTED:
            raise ValueError(f"cannot list {resource!r}: expected one of {', '.join(_LISTED)}")
        disagreement = ""
        task = f"listing {resource}"
        for listing in range(1, _LISTINGS + 1):
            try:
                items_or_disagreement = self._list_once(resource, _Pages(progress, task))
            finally:
                progress.finish(task)
            if not isinstance(items_or_disagreement, str):
                return items_or_disagreement
            disagreement = items_or_disagreement
            if listing < _LISTINGS:
                _log.warning("api.relist", resource=resource, listing=listing, reason=disagreement)
        raise IncompleteListing(
            resource,
            f"the account kept changing while it was listed ({_LISTINGS} listings; the last one: "
            f"{disagreement}); the next pass lists again",
        )

    def _list_once(self, resource: ListedResource, told: _Pages) -> list[Any] | str:
        """The items of one listing, or why its pages disagree with each other.

        Page 1's claim is checked before any other page is asked for, and the rest come in
        batches of one page a worker, each checked before the next: an API claiming pages that
        are not there costs a batch, not thousands of requests.
        """
        first = self._page(resource, 1)
        told.first(first.last_page)
        if first.last_page > self._max_pages:
            raise IncompleteListing(
                resource,
                f"page 1 says there are {first.last_page} pages ({first.total} {resource}), "
                f"more than api.max_pages ({self._max_pages}): if the account really holds that "
                "many, raise api.max_pages; otherwise the API answered nonsense",
                page=1,
            )
        page_size = first.per_page or len(first.items)
        pages = [first]
        disagreement = _disagreement(resource, first, page_size, [(1, first)])
        numbers = range(2, first.last_page + 1)
        with self._page_pool(len(numbers)) as pool:
            for start in range(0, len(numbers), self._concurrency):
                if disagreement is not None:
                    break
                batch = numbers[start : start + self._concurrency]
                read = self._pages(pool, resource, batch)
                told.read(len(read))
                numbered = zip(batch, read, strict=True)
                disagreement = _disagreement(resource, first, page_size, numbered)
                pages.extend(read)
        if disagreement is not None:
            return disagreement
        items, conflict = _distinct(item for page in pages for item in page.items)
        if conflict is not None:
            return f"id {conflict} came twice with different content"
        total = pages[-1].total
        if len(items) != total:
            return f"{len(items)} distinct {resource} were read but meta.total says {total}"
        return items

    @contextmanager
    def _page_pool(self, pages: int) -> Iterator[ThreadPoolExecutor | None]:
        """Workers for a listing's pages after the first; None when one at a time will do."""
        if self._concurrency == 1 or pages < 2:
            yield None
            return
        workers = min(self._concurrency, pages)
        with ThreadPoolExecutor(workers, thread_name_prefix="pruner-api") as pool:
            yield pool

    def _pages(
        self, pool: ThreadPoolExecutor | None, resource: ListedResource, numbers: range
    ) -> list[_Page]:
        if pool is None or len(numbers) < 2:
            return [self._page(resource, number) for number in numbers]
        # Each page in a copy of this context, so log context (run id) follows the request.
        futures = [
            pool.submit(contextvars.copy_context().run, self._page, resource, number)
            for number in numbers
        ]
        try:
            return [future.result() for future in futures]
        except BaseException:
            for future in futures:
                future.cancel()  # pages not started yet; those on the wire finish
            raise

    def _page(self, resource: ListedResource, number: int) -> _Page:
        params: dict[str, str | int]
        if resource == "servers":
            # filter[status]: the default lists active and suspended servers only, and pruner
            # must tell terminated servers from unknown ones. The value the API wants for "all
            # statuses" is not published; "all" is the common convention.
            params = {"page": number, "per_page": PAGE_SIZE, "filter[status]": "all"}
        else:
            params = {"page": number, "sort": "date"}  # new backups land on the last page
        answer = self._request("GET", f"/{resource}", params, shape=_page_shape(number))
        if answer.value is None:
            detail = f"page {number} could not be read: {answer.problem}"
            if answer.status == 404:
                detail += f" (check api.base_url {self.base_url!r}: it should end in /v1)"
            raise IncompleteListing(resource, detail, page=number, status=answer.status)
        return answer.value

    # --- single requests ----------------------------------------------------------------------

    def delete(self, resource: Resource, item_id: int) -> DeleteOutcome:
        """DELETE one backup or snapshot at its path in api.paths. 2xx: deleted; 404: already
        gone; 423 after every retry: locked (not done); anything else after retries: failed.
        401/403 raise."""
        if resource not in _DELETABLE:
            raise ValueError(f"cannot delete {resource!r}: only {' and '.join(_DELETABLE)}")
        if type(item_id) is not int or item_id < 0:
            raise ValueError(f"{resource} id must be a non-negative integer, not {item_id!r}")
        template = self._paths.backups if resource == "backups" else self._paths.snapshots
        path = template.replace("{id}", str(item_id))
        answer: _Answer[object] = self._request("DELETE", path)
        result: DeleteResult
        if answer.ok:
            result, message = "deleted", f"deleted (HTTP {answer.status})"
        elif answer.status == 404:
            result, message = "already_gone", "already gone (HTTP 404)"
        elif answer.status == 423:
            result = "locked"
            message = (
                f"{answer.problem}: the server is busy (a backup or other operation runs); "
                "the next pass tries again"
            )
        else:
            result, message = "failed", answer.problem
        return DeleteOutcome(resource, item_id, result, answer.status, message)

    def check(self) -> int:
        """One cheap authenticated request (for `check-config --online`): the number of servers
        the key can see. Raises ApiAuthError/ApiPermissionError, or ApiError naming the fault."""
        answer = self._request("GET", "/servers", {"per_page": 1}, shape=_page_shape(1))
        if answer.value is None:
            raise ApiError(
                f"the API at {self.base_url} did not answer GET /servers as expected: "
                f"{answer.problem}; check api.base_url and the network",
                status=answer.status,
            )
        return answer.value.total

    # --- one request, with retries ------------------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        params: Mapping[str, str | int] | None = None,
        *,
        shape: Callable[[object], _T] | None = None,
    ) -> _Answer[_T]:
        """Send until an answer is final or `retries` retries are spent; the last answer."""
        attempt = 0
        while True:
            answer = self._attempt(method, path, params, shape)
            if not answer.retry:
                return answer
            if attempt == self._retries:
                tries = f"{attempt + 1} attempt" + ("s" if attempt else "")
                return replace(answer, problem=f"{answer.problem} ({tries})")
            delay = self._delay(attempt, answer.retry_after)
            _log.warning(
                "api.retry",
                method=method,
                path=path,
                params=dict(params or {}),
                status=answer.status,
                problem=answer.problem,
                attempt=attempt + 1,
                delay=round(delay, 3),
            )
            if answer.status == 429:
                self.gate.pause_all(delay)
            else:
                self.gate.wait(delay)
            attempt += 1

    def _attempt(
        self,
        method: str,
        path: str,
        params: Mapping[str, str | int] | None,
        shape: Callable[[object], _T] | None,
    ) -> _Answer[_T]:
        with self.gate.turn():
            reply = self._exchange(method, path, params)
        if isinstance(reply, _Reply) and not reply.whole and shape is not None:
            reply = _NoAnswer(self._late(), retry=True)
        if self._on_response is not None:
            self._on_response(method, reply.status if isinstance(reply, _Reply) else None)
        if isinstance(reply, _NoAnswer):
            return _Answer(ok=False, status=None, problem=reply.problem, retry=reply.retry)
        return self._judge(method, path, reply, shape)

    def _exchange(
        self, method: str, path: str, params: Mapping[str, str | int] | None
    ) -> _Reply | _NoAnswer:
        """One request and its answer, all within `timeout` (requests and urllib3 only bound
        each read, so a body arriving a byte at a time would never end): connecting and the
        headers under urllib3's total timeout, then the body read against the same deadline."""
        deadline = self._monotonic() + self._timeout
        try:
            wire = self._wire_for_requests()
            with self._session.send(
                wire.prepared(method, self.base_url + path, params),
                # requests hands a urllib3 Timeout on as it is; its stubs only know floats.
                timeout=urllib3.Timeout(total=self._timeout),  # type: ignore[arg-type]
                allow_redirects=False,  # a redirect means a wrong base_url; say so
                stream=True,
                proxies=wire.proxies,
                verify=wire.verify,
                cert=wire.cert,
            ) as response:
                # A stop abandons a listing's page; a DELETE on the wire is read to its end.
                body = self._body(response.raw, deadline, abandon_on_stop=method != "DELETE")
                return _Reply(response.status_code, response.headers, body or b"", body is not None)
        except (
            requests.ConnectionError,
            requests.Timeout,
            requests.exceptions.ChunkedEncodingError,
            requests.exceptions.ContentDecodingError,
            urllib3.exceptions.HTTPError,  # reading the body: a broken connection, bad gzip
        ) as error:
            return _NoAnswer(self._no_answer(error), retry=True)
        except requests.RequestException as error:
            return _NoAnswer(self._no_answer(error), retry=False)

    def _wire_for_requests(self) -> _Wire:
        # Worked out on the first request, inside its error handling: a malformed base_url
        # fails that request, as any request to it would, not the building of the client.
        wire = self._wire
        if wire is None:
            wire = self._wire = _Wire.of(self._session, self.base_url, self._headers)
        return wire

    def _body(
        self, raw: urllib3.BaseHTTPResponse, deadline: float, *, abandon_on_stop: bool
    ) -> bytes | None:
        """The whole body, or None when the deadline came first. Each read waits at most for
        what is left of the deadline; a stop is noticed between reads."""
        chunks: list[bytes] = []
        while True:
            if abandon_on_stop and self.gate.stop.is_set():
                raise PassInterrupted("stopped: the answer still arriving was abandoned")
            left = deadline - self._monotonic()
            if left <= 0:
                return None
            connection = raw.connection
            sock = getattr(connection, "sock", None)
            if sock is not None:
                sock.settimeout(left)
            try:
                chunk = raw.read1(_CHUNK, decode_content=True)
            except urllib3.exceptions.ReadTimeoutError:
                return None
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)

    def _judge(
        self,
        method: str,
        path: str,
        response: _Reply,
        shape: Callable[[object], _T] | None,
    ) -> _Answer[_T]:
        status = response.status
        if 200 <= status < 300:
            if shape is None:
                return _Answer(ok=True, status=status)
            try:
                return _Answer(ok=True, status=status, value=shape(_json_body(response)))
            except _Malformed as error:
                problem = self._scrub(f"HTTP {status} with a malformed body: {error}")
                return _Answer(ok=False, status=status, problem=problem, retry=True)
        if status == 401:
            raise ApiAuthError(
                f"the API token was rejected (HTTP 401): check the token in {self._token.source}"
                ": it may be mistyped, revoked or expired (create a new key in the VPSBG panel)",
                status=status,
            )
        if status == 403:
            raise ApiPermissionError(self._forbidden(method, path), status=status)
        said = _api_message(response)
        problem = f"HTTP {status}" + (f": {said}" if said else "")
        if 300 <= status < 400:
            location = response.headers.get("Location", "?")
            problem += f": the API redirected to {location}; check api.base_url"
        retry = status in (423, 429) or status >= 500
        return _Answer(
            ok=False,
            status=status,
            problem=self._scrub(problem),
            retry=retry,
            retry_after=self._retry_after(response) if retry else None,
        )

    def _forbidden(self, method: str, path: str) -> str:
        if method == "DELETE":
            return (
                "this API key has Read permission only; deletions need a Write key "
                f"(HTTP 403 on DELETE {path}): put a Write key in {self._token.source}, "
                "or use `pruner plan`, which only reads"
            )
        return (
            f"the API key was refused access (HTTP 403 on {method} {path}): check that the key "
            f"in {self._token.source} is active and allowed to read it"
        )

    def _no_answer(self, error: Exception) -> str:
        if isinstance(error, requests.Timeout | urllib3.exceptions.TimeoutError):
            return f"no answer within {self._timeout:g}s ({type(error).__name__})"
        if isinstance(error, requests.RequestException) and not isinstance(
            error, requests.ConnectionError | requests.exceptions.ContentDecodingError
        ):  # the request could not even be made (a malformed URL): say what requests said
            detail = str(error)[:_TEXT_LIMIT]
            return self._scrub(f"no answer ({type(error).__name__}: {detail})")
        return self._scrub(f"no answer ({_connection_failure(error)})")

    def _late(self) -> str:
        return f"no complete answer within {self._timeout:g}s (the body was still arriving)"

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        """Retry-After when given (capped), else backoff * 2^attempt capped at 60 s, with equal
        jitter: somewhere in its upper half, so workers spread out but never retry at once."""
        if retry_after is not None:
            return min(retry_after, self._retry_after_cap)
        ceiling = min(_BACKOFF_CAP, self._backoff * 2.0 ** min(attempt, 64))
        return ceiling / 2 + self._rng.uniform(0, ceiling / 2)

    def _retry_after(self, response: _Reply) -> float | None:
        """Seconds to wait from Retry-After (seconds, or an HTTP date), None when absent/bad."""
        value = response.headers.get("Retry-After")
        if value is None:
            return None
        try:
            seconds = float(value.strip())
        except ValueError:
            moment = _http_date(value)
            if moment is None:
                return None
            reference = _http_date(response.headers.get("Date", ""))
            seconds = moment - (reference if reference is not None else self._wall_clock())
        return max(0.0, seconds) if math.isfinite(seconds) else None

    def _scrub(self, text: str) -> str:
        """Text that came from outside (an API body, an exception) with the token masked."""
        token = self._token.reveal()
        return text.replace(token, "***") if token else text


# --- answers ----------------------------------------------------------------------------------


def _page_shape(number: int) -> Callable[[object], _Page]:
    def shape(body: object) -> _Page:
        if not isinstance(body, dict):
            raise _Malformed(f"{_json_type(body)} instead of a page object")
        data, meta = body.get("data"), body.get("meta")
        if not isinstance(data, list):
            raise _Malformed(f"'data' is {_json_type(data)}, not a list")
        if not isinstance(meta, dict):
            raise _Malformed(f"'meta' is {_json_type(meta)}, not an object")
        last_page, total = meta.get("last_page"), meta.get("total")
        if type(last_page) is not int or last_page < 0:
            raise _Malformed(f"meta.last_page is {_json_type(last_page)}, not a count")
        if type(total) is not int or total < 0:
            raise _Malformed(f"meta.total is {_json_type(total)}, not a count")
        current = meta.get("current_page")
        if type(current) is int and current != number:
            raise _Malformed(f"meta.current_page is {current} where page {number} was asked for")
        last_page = max(last_page, 1)  # an empty listing may say 0
        # A garbled last_page must not send pruner after pages that cannot be there.
        per_page = meta.get("per_page")
        if type(per_page) is int and per_page > 0:
            if last_page != max(-(-total // per_page), 1):  # Laravel's own arithmetic
                raise _Malformed(
                    f"meta.last_page {last_page} does not fit meta.total {total} at "
                    f"{per_page} a page"
                )
            return _Page(data, last_page, total, per_page)
        if last_page > max(total, 1):
            raise _Malformed(f"meta.last_page {last_page} does not fit meta.total {total}")
        return _Page(data, last_page, total, None)

    return shape


def _json_body(response: _Reply) -> object:
    try:
        return json.loads(response.body)
    except ValueError:  # also UnicodeDecodeError
        kind = response.headers.get("Content-Type", "no content type")
        raise _Malformed(f"not JSON ({kind}, {len(response.body)} bytes)") from None


def _api_message(response: _Reply) -> str | None:
    """The `message` of an error body (Laravel's shape), if there is one."""
    try:
        body = json.loads(response.body)
    except ValueError:
        return None
    message = body.get("message") if isinstance(body, dict) else None
    return message[:_TEXT_LIMIT] if isinstance(message, str) and message else None


def _json_type(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if value is None:
        return "missing or null"
    names = {dict: "an object", list: "a list", str: "a string", int: "a number", float: "a number"}
    return names.get(type(value), type(value).__name__)


def _http_date(text: str) -> float | None:
    try:
        moment = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:  # "-0000": HTTP dates are GMT
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _disagreement(
    resource: ListedResource, first: _Page, page_size: int, pages: Iterable[tuple[int, _Page]]
) -> str | None:
    """Why one of these numbered pages cannot belong to the listing that page 1 describes, or
    None: each says the same total and last_page, and holds a full page unless it is the last."""
    for number, page in pages:
        if (page.last_page, page.total) != (first.last_page, first.total):
            return (
                f"meta.total/last_page went from {first.total}/{first.last_page} on page 1 "
                f"to {page.total}/{page.last_page} on page {number}"
            )
        held = len(page.items)
        if held > page_size or (number < first.last_page and held < page_size):
            return (
                f"page {number} of {first.last_page} holds {held} {resource} where a page "
                f"holds {page_size}"
            )
    return None


_FAILURES: tuple[tuple[tuple[type[BaseException], ...], str], ...] = (
    ((requests.exceptions.SSLError, urllib3.exceptions.SSLError), "TLS failed"),
    ((urllib3.exceptions.NewConnectionError,), "could not connect"),
    ((urllib3.exceptions.DecodeError,), "the body could not be decoded"),
)


def _connection_failure(error: BaseException) -> str:
    """What went wrong, in a few words: requests and urllib3 wrap the cause several times over
    ("Max retries exceeded ... Caused by NewConnectionError(<object at 0x...>: ...)")."""
    chain = list(_causes(error))
    what = next(
        (words for kinds, words in _FAILURES if any(isinstance(e, kinds) for e in chain)),
        "the connection broke",
    )
    root = chain[-1]
    reason = root.strerror if isinstance(root, OSError) and root.strerror else str(root)
    return f"{what}: {(reason or type(root).__name__)[:_TEXT_LIMIT]}"


def _causes(error: BaseException) -> Iterator[BaseException]:
    """`error`, then what caused it, and so on down to the first cause."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        reason = getattr(current, "reason", None)  # urllib3's MaxRetryError
        wrapped = [a for a in current.args if isinstance(a, BaseException)]
        current = (
            current.__cause__
            or (reason if isinstance(reason, BaseException) else None)
            or (wrapped[0] if wrapped else None)
            or current.__context__
        )


def _distinct(items: Iterable[Any]) -> tuple[list[Any], object | None]:
    """Items with exact repeats (pages overlapping) dropped, and the first id that came twice
    with different content (or None). Items without an integer id are all kept as they are."""
    kept: list[Any] = []
    seen: dict[int, Any] = {}
    for item in items:
        item_id = item.get("id") if isinstance(item, dict) else None
        if type(item_id) is int:
            if item_id in seen:
                if seen[item_id] != item:
                    return kept, item_id
                continue
            seen[item_id] = item
        kept.append(item)
    return kept, None
