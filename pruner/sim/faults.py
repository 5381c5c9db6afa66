"""The faults a client must survive: random and periodic knobs, scripted answers, and the
requests the simulator recorded."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

__all__ = ["Faults", "Request", "ScriptedResponse"]


@dataclass
class Faults:
    """Random and periodic faults, read on every request: tests may change them while running."""

    latency: float = 0.0  # seconds added to every request (DELETE included)
    error_rate: float = 0.0  # fraction of requests answered 500
    rate_limit_every: int = 0  # every Nth request answered 429 with Retry-After (0 = never)
    retry_after: float = 1.0  # the Retry-After value sent, in seconds (may be fractional)
    locked_delete_rate: float = 0.0  # fraction of DELETEs answered 423 though nothing is locked
    garbage_rate: float = 0.0  # fraction of GETs answered 200 with truncated JSON or HTML
    appear_during_listing: int = 0  # new items created right after a listing's page 1 is served
    trickle: float = 0.0  # seconds between the bytes of every answer's body (0 = all at once)
    # Bumped on every assignment of appear_during_listing: "once per knob setting".
    _appear_setting: int = field(default=0, init=False, repr=False, compare=False)

    def __setattr__(self, name: str, value: object) -> None:
        if name == "appear_during_listing":
            object.__setattr__(self, "_appear_setting", getattr(self, "_appear_setting", 0) + 1)
        object.__setattr__(self, name, value)


@dataclass(frozen=True, slots=True)
class ScriptedResponse:
    """An answer given instead of the real one. A dict or list body is sent as JSON; str and
    bytes as they are (Content-Type application/json unless `headers` says otherwise); None is an
    empty body. With `perform`, the request is also carried out (a DELETE really deletes), e.g.
    to lose the answer to a delete that succeeded."""

    status: int
    body: str | bytes | Mapping[str, Any] | Sequence[Any] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    perform: bool = False


class Request(NamedTuple):
    method: str
    path: str  # without the query
    query: dict[str, str]  # decoded; a repeated key keeps its last value, as PHP does
