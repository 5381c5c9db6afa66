"""An in-process simulator of the VPSBG REST API, for `pruner demo` and end-to-end tests.

Standard library only, and nothing else of pruner: it is the API's stand-in, so it must not share
the client's assumptions. `fleet` generates accounts, `faults` holds the knobs and scripted
answers, `server` serves them over real HTTP on 127.0.0.1; `python -m pruner.sim` runs one by
hand.
"""

from __future__ import annotations

from pruner.sim.faults import Faults, Request, ScriptedResponse
from pruner.sim.fleet import Fleet, generate_fleet, sofia_offset
from pruner.sim.server import (
    BACKUPS_PER_PAGE,
    READ_TOKEN,
    SERVERS_PER_PAGE_DEFAULT,
    WRITE_TOKEN,
    Simulator,
)

__all__ = [
    "BACKUPS_PER_PAGE",
    "READ_TOKEN",
    "SERVERS_PER_PAGE_DEFAULT",
    "WRITE_TOKEN",
    "Faults",
    "Fleet",
    "Request",
    "ScriptedResponse",
    "Simulator",
    "generate_fleet",
    "sofia_offset",
]
