"""Health pings in the style of healthchecks.io: a PassHooks that tells URLs how passes go.

For each URL of `notify.urls`: `<url>/start` when a pass starts, `<url>` when it succeeds (exit
0), `<url>/fail` when it fails (exit 1 or 3, or an error raised). Success carries the pass
summary as a short text body; failure the alert paragraph (pruner.report.alert: which cap, the
numbers, what to do) above it. A pass that succeeded but left something for a person (a stale
server) first sends the paragraph to `<url>/log`, an event that does not change the check's
state. The monitor alerts when a ping is late or a failure comes.

A ping that fails (no answer, a timeout, an HTTP error) is a `notify.failed` warning, never a
failed pass. Dry runs ping nothing unless `notify.on_dry_run`. The pings use their own HTTP
session: the API token never goes to a ping URL. The URLs themselves are not logged whole (a
healthchecks.io URL is as good as a password for its check): only `notify.urls[i]` and the host.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit, urlunsplit

import requests
import structlog

from pruner import __version__
from pruner.config.schema import NotifySettings
from pruner.errors import EXIT_OK
from pruner.ops.telling import PassTeller, error_text
from pruner.report.alert import alert_of
from pruner.report.pass_summary import PassSummary

if TYPE_CHECKING:
    from pruner.engine.results import PassResult

__all__ = ["BODY_LIMIT", "Notifier", "Ping", "ping_url", "summary_text"]

Ping = Literal["start", "success", "fail", "log"]
# Characters of a ping body: a summary, not a report (healthchecks.io keeps 100 kB of a body,
# some self-hosted instances 10 kB).
BODY_LIMIT = 2000
_SHOWN_FAILURES = 5
_USER_AGENT = f"pruner/{__version__} (health ping)"

_log = structlog.get_logger("pruner.notify")


def ping_url(url: str, ping: Ping) -> str:
    """`url` with `/start`, `/fail` or `/log` appended to its path (a query string stays at the
    end)."""
    if ping == "success":
        return url
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"{parts.path.rstrip('/')}/{ping}"))


class Notifier(PassTeller):
    """Pings `settings.urls` at the start and end of each pass (a pruner.passes.hooks.PassHooks).

    `host` names this machine in the alert (default: its hostname); `max_deletions_per_run` is
    the configured run cap, which the alert names when it trips.
    """

    def __init__(
        self,
        settings: NotifySettings,
        *,
        host: str | None = None,
        max_deletions_per_run: int | None = None,
        session: requests.Session | None = None,
    ) -> None:
        super().__init__(settings, host=host, max_deletions_per_run=max_deletions_per_run)
        self._session = session if session is not None else requests.Session()
        self._session.headers["User-Agent"] = _USER_AGENT
        self._timeout = settings.timeout.total_seconds()

    def close(self) -> None:
        self._session.close()

    def pass_started(self, run_id: str, *, dry_run: bool) -> None:
        if self._started(run_id, dry_run):
            self._ping_all("start", "")

    def api_response(self, method: str, status: int | None) -> None:
        pass  # pings are about passes, not requests

    def pass_finished(self, result: PassResult) -> None:
        self._ended(result.run_id)
        if not self._wanted(result.dry_run):
            return
        alert = alert_of(result, host=self._host, max_deletions_per_run=self._run_cap)
        summary = summary_text(result)
        if result.exit_code != EXIT_OK:
            lead = f"{alert.paragraph}\n\n" if alert is not None else ""
            self._ping_all("fail", _limited(lead + summary))
            return
        if alert is not None:
            self._ping_all("log", _limited(f"{alert.paragraph}\n"))
        self._ping_all("success", summary)

    def pass_failed(self, run_id: str, error: BaseException) -> None:
        if self._wanted(self._ended(run_id)):
            text = f"pruner on {self._host}: pass {run_id} failed: {error_text(error)}\n"
            self._ping_all("fail", _limited(text))

    def _ping_all(self, ping: Ping, body: str) -> None:
        for index, url in enumerate(self.settings.urls):
            self._ping(index, url, ping, body)
        if ping != "start":
            # No connection kept open until the next pass, hours away: the session reconnects.
            self._session.close()

    def _ping(self, index: int, url: str, ping: Ping, body: str) -> None:
        where = {"url": f"notify.urls[{index}]", "host": urlsplit(url).hostname, "ping": ping}
        try:
            response = self._session.post(
                ping_url(url, ping),
                data=body.encode("utf-8"),
                headers={"Content-Type": "text/plain; charset=utf-8"},
                timeout=self._timeout,
            )
        except requests.RequestException as error:
            _log.warning(
                "notify.failed",
                **where,
                message=f"no answer ({type(error).__name__}): the pass goes on; check the URL "
                "and that this host can reach it",
            )
            return
        if response.status_code >= 400:
            _log.warning(
                "notify.failed",
                **where,
                status=response.status_code,
                message=f"HTTP {response.status_code}: the pass goes on; check the URL",
            )
        else:
            _log.debug("notify.sent", **where, status=response.status_code)


def summary_text(result: PassResult) -> str:
    """A few lines on the pass: what a monitor shows next to the ping."""
    return _limited("".join(_summary_lines(result)))


def _summary_lines(result: PassResult) -> Iterator[str]:
    summary = PassSummary.of(result)
    mode = " (dry run)" if result.dry_run else ""
    yield f"pruner pass {result.run_id}{mode}: exit {result.exit_code}\n"
    yield f"{summary.sentence()}\n"
    caps = summary.caps()
    if caps is not None:
        yield f"{caps}\n"
    for failure in summary.failures(shown=_SHOWN_FAILURES):
        yield f"{failure}\n"


def _limited(text: str) -> str:
    return text if len(text) <= BODY_LIMIT else text[: BODY_LIMIT - 2] + "…\n"
