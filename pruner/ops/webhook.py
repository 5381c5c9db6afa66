"""Webhooks: each pass's summary and problems as a JSON POST to every URL of `notify.webhooks`.

A PassHooks like the health pings, for whatever takes JSON: a chat's incoming webhook (the
`text` field is the alert paragraph, or the summary line when nothing needs a person), an
incident tool, a script. The document (`pruner.webhook/v1`) is described in docs/operating.md.

Delivery never holds the pass: each URL gets its own thread, which tries at most three times
within three times `notify.timeout`, waiting a jittered backoff between tries, and retries only
what may pass on its own (no answer, 408, 429, 5xx). A receiver that stays down is a
`webhook.failed` warning, never a failed pass. The threads are not daemons, so `pruner run`
exits once they are done, within that bound. Each delivery has its own HTTP session: the API
token never reaches a webhook. A webhook URL may hold a secret, so the log names it only as
`notify.webhooks[i]` and its host. Dry runs post nothing unless `notify.on_dry_run`.

urllib3's retries are not used: they cannot bound the whole delivery, honour Retry-After
without a cap, and sleep where tests cannot step in.
"""

from __future__ import annotations

import contextvars
import json
import random
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import requests
import structlog

from pruner import __version__
from pruner.config.schema import NotifySettings
from pruner.engine.models import Problem
from pruner.errors import EXIT_INCOMPLETE
from pruner.ops.telling import PassTeller, error_text
from pruner.report.alert import alert_of
from pruner.report.pass_summary import PassSummary
from pruner.report.problems import problem_entry

if TYPE_CHECKING:
    from pruner.engine.results import PassResult

__all__ = ["SCHEMA", "Webhooks", "failed_document", "pass_document"]

SCHEMA = "pruner.webhook/v1"
_TRIES = 3
_SHOWN_PROBLEMS = 50  # the rest are counted in problems_left_out: the log and the plan have all
_USER_AGENT = f"pruner/{__version__} (webhook)"

_log = structlog.get_logger("pruner.webhook")


def pass_document(
    result: PassResult, *, host: str, max_deletions_per_run: int | None = None
) -> dict[str, Any]:
    """The `pass.finished` document of a pass (docs/operating.md)."""
    alert = alert_of(result, host=host, max_deletions_per_run=max_deletions_per_run)
    summary = PassSummary.of(result)
    mode = " (dry run)" if result.dry_run else ""
    problems = sorted(result.plan.problems, key=_urgency)
    return {
        "schema": SCHEMA,
        "event": "pass.finished",
        "host": host,
        "run_id": result.run_id,
        "exit_code": result.exit_code,
        "dry_run": result.dry_run,
        "status": "ok" if alert is None else alert.level,
        "text": (
            alert.paragraph
            if alert is not None
            else f"pruner on {host}: pass {result.run_id}{mode}: {summary.sentence()}"
        ),
        "summary": summary.log_fields(would=result.dry_run),
        "problems": [
            {**problem_entry(problem), "guard": problem.guard}
            for problem in problems[:_SHOWN_PROBLEMS]
        ],
        "problems_left_out": max(0, len(problems) - _SHOWN_PROBLEMS),
    }


def failed_document(run_id: str, message: str, *, host: str, dry_run: bool) -> dict[str, Any]:
    """The `pass.failed` document of a pass that raised (a bug) instead of ending with a result."""
    return {
        "schema": SCHEMA,
        "event": "pass.failed",
        "host": host,
        "run_id": run_id,
        "exit_code": EXIT_INCOMPLETE,
        "dry_run": dry_run,
        "status": "fail",
        "text": f"pruner on {host}: pass {run_id} failed: {message}",
        "summary": None,
        "problems": [],
        "problems_left_out": 0,
    }


def _urgency(problem: Problem) -> tuple[bool, bool]:
    """Errors first, then the warnings of a guard that tripped, then the rest (plan order)."""
    return (problem.level != "error", problem.guard is None)


class Webhooks(PassTeller):
    """Posts each pass to `settings.webhooks` (a pruner.passes.hooks.PassHooks).

    `host` names this machine (default: its hostname); `max_deletions_per_run` is the run cap
    the alert names. `session_factory`, `sleep`, `monotonic` and `rng` are for tests.
    """

    def __init__(
        self,
        settings: NotifySettings,
        *,
        host: str | None = None,
        max_deletions_per_run: int | None = None,
        session_factory: Callable[[], requests.Session] = requests.Session,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(settings, host=host, max_deletions_per_run=max_deletions_per_run)
        self._new_session = session_factory
        self._sleep = sleep
        self._monotonic = monotonic
        self._rng = rng if rng is not None else random.Random()
        self._timeout = settings.timeout.total_seconds()
        self._deliveries: list[threading.Thread] = []

    def pass_started(self, run_id: str, *, dry_run: bool) -> None:
        self._started(run_id, dry_run)  # nothing is posted until the pass ends

    def api_response(self, method: str, status: int | None) -> None:
        pass  # webhooks are about passes, not requests

    def pass_finished(self, result: PassResult) -> None:
        self._ended(result.run_id)
        if self._wanted(result.dry_run):
            self._post_all(
                pass_document(result, host=self._host, max_deletions_per_run=self._run_cap)
            )

    def pass_failed(self, run_id: str, error: BaseException) -> None:
        dry_run = self._ended(run_id)
        if self._wanted(dry_run):
            message = error_text(error)
            self._post_all(failed_document(run_id, message, host=self._host, dry_run=dry_run))

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the deliveries under way; whether all of them ended within `timeout`."""
        with self._lock:
            deliveries = list(self._deliveries)
        end = None if timeout is None else time.monotonic() + timeout
        for delivery in deliveries:
            delivery.join(None if end is None else max(0.0, end - time.monotonic()))
        return not any(delivery.is_alive() for delivery in deliveries)

    def _post_all(self, document: dict[str, Any]) -> None:
        body = json.dumps(document).encode("utf-8")
        started = []
        for index, url in enumerate(self.settings.webhooks):
            # In a copy of this context, so that its log lines carry the pass's run_id.
            context = contextvars.copy_context()
            started.append(
                threading.Thread(
                    target=context.run,
                    args=(self._deliver, index, url, body),
                    name=f"pruner-webhook-{index}",
                )
            )
        with self._lock:
            self._deliveries = [d for d in self._deliveries if d.is_alive()] + started
        for delivery in started:
            delivery.start()

    def _deliver(self, index: int, url: str, body: bytes) -> None:
        where = {"url": f"notify.webhooks[{index}]", "host": urlsplit(url).hostname}
        budget = _TRIES * self._timeout
        deadline = self._monotonic() + budget
        attempts, problem, retry = 0, "", True
        with self._new_session() as session:
            session.headers["User-Agent"] = _USER_AGENT
            while retry and attempts < _TRIES:
                left = deadline - self._monotonic()
                if left <= 0:
                    break
                if attempts:
                    delay = self._backoff(attempts)
                    if delay >= left:
                        break
                    self._sleep(delay)
                attempts += 1
                status, problem, retry = self._post(session, url, body, min(self._timeout, left))
                if status is not None and 200 <= status < 300:
                    _log.debug("webhook.sent", **where, status=status, attempts=attempts)
                    return
        why = (
            "not retried: check the URL"
            if not retry
            else f"{attempts} attempt(s) within {budget:g}s: check that the receiver is up and "
            "that this host can reach it"
        )
        _log.warning(
            "webhook.failed",
            **where,
            attempts=attempts,
            message=f"{problem or 'no time left'}, {why}; the pass goes on",
        )

    def _post(
        self, session: requests.Session, url: str, body: bytes, timeout: float
    ) -> tuple[int | None, str, bool]:
        """One POST: its status (None: no answer), what went wrong, and whether to retry."""
        try:
            response = session.post(
                url,
                data=body,
                headers={"Content-Type": "application/json"},
                timeout=timeout,
                allow_redirects=False,  # a POST sent on elsewhere is not what was configured
                stream=True,  # the answer's body is not read: a receiver cannot hold us with it
            )
        except requests.RequestException as error:
            return None, f"no answer ({type(error).__name__})", True
        with response:
            status = response.status_code
        if 300 <= status < 400:
            target = urlsplit(response.headers.get("Location", "")).hostname or "elsewhere"
            return status, f"HTTP {status}: redirected to {target}; use the final URL", False
        return status, f"HTTP {status}", status in (408, 429) or status >= 500

    def _backoff(self, attempt: int) -> float:
        """A tenth of notify.timeout, doubling per try, somewhere in its upper half."""
        ceiling = self._timeout / 10 * 2.0 ** (attempt - 1)
        return ceiling / 2 + self._rng.uniform(0, ceiling / 2)
