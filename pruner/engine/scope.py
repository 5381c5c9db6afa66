"""Scoping a pass to some servers, or to one policy's (`--server ID|GLOB`, `--policy NAME`).

A scoped pass lists the whole account as any pass does, then decides only the groups in scope:
the guards and caps see those alone, and nothing outside them is deleted or recorded. Whatever
plans or deletes takes the same value (`build_plan(scope=...)`), so every command scopes alike.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

__all__ = ["Scope"]


@dataclass(frozen=True, slots=True)
class Scope:
    """Which servers (ids, or shell globs on the hostname; none: every server) and which policy
    (None: any) a pass decides."""

    servers: tuple[str, ...] = ()
    policy: str | None = None

    @classmethod
    def of(cls, servers: Iterable[str] = (), policy: str | None = None) -> Scope | None:
        """The scope given on the command line; None when nothing narrows the pass."""
        chosen = tuple(dict.fromkeys(servers))
        if not chosen and policy is None:
            return None
        return cls(chosen, policy)

    def selects_server(self, server_id: int, hostname: str | None) -> bool:
        return not self.servers or any(
            _matches(pattern, server_id, hostname) for pattern in self.servers
        )

    def unmatched(self, servers: Iterable[tuple[int, str | None]]) -> tuple[str, ...]:
        """The servers given that none of `servers` (id, hostname) answers to: most likely typos."""
        listed = list(servers)
        return tuple(
            pattern
            for pattern in self.servers
            if not any(_matches(pattern, server_id, hostname) for server_id, hostname in listed)
        )

    def as_json(self) -> dict[str, Any]:
        return {"servers": list(self.servers), "policy": self.policy}

    def __str__(self) -> str:
        parts = []
        if self.servers:
            parts.append(f"servers {', '.join(self.servers)}")
        if self.policy is not None:
            parts.append(f"policy {self.policy}")
        return "; ".join(parts)


def _matches(pattern: str, server_id: int, hostname: str | None) -> bool:
    """Digits are a server id; anything else is a shell glob on the hostname."""
    if pattern.isascii() and pattern.isdigit():
        return server_id == int(pattern)
    return hostname is not None and fnmatchcase(hostname, pattern)
