"""A whole pass's listing: the servers, then each resource, parsed into one `Listing`."""

from __future__ import annotations

from collections.abc import Iterable

from pruner.engine.models import Backup, Listing, Problem, Resource, Server
from pruner.vpsbg.client import ApiClient
from pruner.vpsbg.errors import IncompleteListing
from pruner.vpsbg.listing import parse_backups, parse_servers
from pruner.vpsbg.progress import NO_PROGRESS, Progress

__all__ = ["fetch_listing"]


def fetch_listing(
    client: ApiClient, resources: Iterable[Resource], progress: Progress = NO_PROGRESS
) -> Listing:
    """List the servers, then each resource, and parse them into a Listing.

    A listing that could not be read completely is marked so (the planner deletes nothing it
    covers) with an error Problem saying why; ApiAuthError, ApiPermissionError and
    PassInterrupted propagate (fatal for the pass). `progress` is told of each page read.
    """
    wanted = tuple(dict.fromkeys(resources))
    problems: list[Problem] = []
    servers: tuple[Server, ...] | None = None
    try:
        server_items = client.list_items("servers", progress)
    except IncompleteListing as error:
        servers_complete = False
        problems.append(Problem("error", f"{error}: nothing is deleted this pass"))
    else:
        parsed_servers, server_problems = parse_servers(server_items)
        servers = tuple(parsed_servers)
        servers_complete = not any(p.level == "error" for p in server_problems)
        problems.extend(server_problems)
    backups: list[Backup] = []
    incomplete: set[Resource] = set()
    for resource in wanted:
        try:
            items = client.list_items(resource, progress)
        except IncompleteListing as error:
            incomplete.add(resource)
            problems.append(
                Problem(
                    "error",
                    f"{error}: none of the {resource} are deleted this pass",
                    resource=resource,
                )
            )
            continue
        parsed, item_problems = parse_backups(items, resource)
        backups.extend(parsed)
        problems.extend(item_problems)
    return Listing(
        backups=tuple(backups),
        servers=servers,
        resources=frozenset(wanted),
        incomplete_resources=frozenset(incomplete),
        servers_complete=servers_complete,
        problems=tuple(problems),
    )
