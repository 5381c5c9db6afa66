"""Raw API JSON → models, never trusting it: API answers and saved listings
(`pruner plan --listing`) alike.

Every defect becomes a Problem scoped as narrowly as is known, so the planner can fail closed on
exactly the groups it affects; nothing is skipped silently if skipping it could change what gets
deleted.

A saved listing is read the fast way where it allows: msgspec decodes each page's items straight
into typed values, and those become Backups without a dict per item. Whatever does not fit that
shape (a bad item, a repeated id, an unusual timestamp, a file msgspec refuses) is read the careful
way, the json module and the item-by-item checks, so the result and every message are the same
either way.
"""

from __future__ import annotations

import codecs
import json
import mmap
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from operator import attrgetter
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, NamedTuple, cast

import msgspec
from msgspec import UNSET, Meta, Raw, UnsetType

from pruner.engine.models import Backup, Listing, Problem, Resource, Server

__all__ = [
    "ListingError",
    "load_listing",
    "parse_backups",
    "parse_servers",
    "parse_timestamp",
]

_EXPECTED = (
    "expected a saved GET /backups response (an object with 'data'), a list of such pages, "
    "a plain list of backup objects, or an object with any of the keys "
    "'backups', 'snapshots', 'servers' holding one of those"
)
_SECTIONS = ("backups", "snapshots", "servers")
_RESOURCES: dict[str, Resource] = {"backups": "backups", "snapshots": "snapshots"}


class ListingError(Exception):
    """A saved listing that cannot be used at all: unreadable, not JSON, or the wrong shape."""


def parse_timestamp(value: object) -> datetime:
    """An aware datetime from ISO 8601 text, keeping its offset; `Z` is UTC, naive is UTC.

    Raises ValueError for anything else, including a date without a time.
    """
    return _timestamp(value)[0]


def _timestamp(value: object) -> tuple[datetime, bool]:
    """parse_timestamp's datetime, and whether the text was naive (read as UTC)."""
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a timestamp string")
    if "T" not in value and " " not in value:
        raise ValueError(f"{value!r} has no time of day")
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC), True
    return moment, False


def _describe(value: object) -> str:
    text = json.dumps(value) if isinstance(value, str | int | float | bool | None) else None
    if text is None or len(text) > 40:
        return f"a JSON {_json_type(value)}"
    return text


def _json_type(value: object) -> str:
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, str):
        return "string"
    if value is None:
        return "null"
    return "number"


@dataclass(slots=True)
class _Parsed:
    backups: list[Backup]
    problems: list[Problem]
    distinct_items: int  # items after removing exact repeats (what meta.total should count)


@dataclass(slots=True)
class _Naive:
    """Timestamps without a UTC offset, read as UTC: counted, to be told once, not per item."""

    count: int = 0
    first: tuple[int, str] | None = None  # (id, the text) of the first one

    def add(self, backup_id: int, text: str) -> None:
        self.count += 1
        if self.first is None:
            self.first = (backup_id, text)

    def warning(self, resource: Resource) -> Problem | None:
        if self.first is None:
            return None
        backup_id, text = self.first
        label = resource if self.count != 1 else resource.removesuffix("s")
        verb = "have" if self.count != 1 else "has"
        return Problem(
            level="warning",
            message=f"{self.count} {label} {verb} created_at without a UTC offset (the first: "
            f"id {backup_id}, {_describe(text)}): read as UTC; if the API means another zone, "
            "their ages and calendar buckets are off by its offset",
            resource=resource,
        )


def parse_backups(
    items: Iterable[object], resource: Resource
) -> tuple[list[Backup], list[Problem]]:
    """Backups (or snapshots) from API items, and a Problem for every item that is not right.

    An item without a usable `server_id` cannot be placed in a group, so its Problem covers the
    whole resource; an item without a usable `id` or `created_at` makes its server's group
    incomplete; a bad `size` or `name` only matters to a policy that needs that field. Exact
    repeats of an item (pages overlap) are dropped; the same id with other content is an error
    for every server involved.
    """
    parsed = _parse_backup_items(items, resource)
    return parsed.backups, parsed.problems


def _parse_backup_items(items: Iterable[object], resource: Resource) -> _Parsed:
    reader = _BackupReader(resource)
    reader.add_items(items)
    return reader.parsed()


class _BackupReader:
    """Reads one resource's items in the order listed, a batch at a time, into Backups and
    Problems. Items come decoded (`add_items`, the careful way) or as the JSON text of a list
    (`add_text`: the fast way when every item of it fits, else the careful way)."""

    __slots__ = ("backups", "first_seen", "parser", "position", "repeats")

    def __init__(self, resource: Resource) -> None:
        self.parser = _ItemParser(resource)
        self.backups: list[Backup] = []
        # id → its first raw item, or the JSON text of the list that held it (read the fast way)
        self.first_seen: dict[int, dict[str, Any] | Raw] = {}
        self.position = self.repeats = 0

    def parsed(self) -> _Parsed:
        naive = self.parser.naive.warning(self.parser.resource)
        problems = self.parser.problems if naive is None else [*self.parser.problems, naive]
        return _Parsed(self.backups, problems, self.position - self.repeats)

    def add_text(self, text: Raw, where: str | None = None) -> None:
        """The items of a JSON list. `where` names a list whose shape is not known yet (a plain
        list of items, unless it mixes in pages): read the careful way, it is checked first."""
        try:
            items = _ITEM_LISTS[self.parser.resource].decode(text)
        except msgspec.ValidationError:  # the careful way says what is wrong
            self.add_items(_decoded(_Text(text, where)))
            return
        backups = _well_formed(items)
        ids = [] if backups is None else [backup.id for backup in backups]
        repeated = len(set(ids)) != len(ids) or not self.first_seen.keys().isdisjoint(ids)
        if backups is None or repeated:  # the careful way tells repeats from conflicts
            self.add_items(_decoded(_Text(text)))
            return
        self.first_seen.update(dict.fromkeys(ids, text))
        self.position += len(ids)
        self.backups.extend(backups)

    def add_items(self, items: Iterable[object]) -> None:
        parser, backups, first_seen = self.parser, self.backups, self.first_seen
        resource, position = parser.resource, self.position
        # The fast path takes a well-formed item in one go (a million of them must load in
        # seconds); anything unusual goes through the parser, which says exactly what is wrong.
        fromisoformat, append = datetime.fromisoformat, backups.append
        for position, item in enumerate(items, start=self.position + 1):
            if type(item) is dict:
                server_id, backup_id = item.get("server_id"), item.get("id")
                created_raw, size = item.get("created_at"), item.get("size")
                name, hostname = item.get("name"), item.get("server_hostname")
                if (
                    type(server_id) is int
                    and type(backup_id) is int
                    and backup_id not in first_seen
                    and type(created_raw) is str
                    and len(created_raw) > 19
                    and created_raw[10] == "T"
                    and (size is None or (type(size) is int and size >= 0))
                    and (name is None or type(name) is str)
                    and (hostname is None or type(hostname) is str)
                ):
                    try:
                        created_at = fromisoformat(created_raw)
                    except ValueError:
                        pass
                    else:
                        if created_at.tzinfo is None:
                            created_at = created_at.replace(tzinfo=UTC)
                            parser.naive.add(backup_id, created_raw)
                        first_seen[backup_id] = item
                        append(
                            Backup(resource, backup_id, server_id, created_at, name, size, hostname)
                        )
                        continue
            identity = parser.identity(position, item)
            if identity is None:
                continue
            fields, server_id, backup_id = identity
            seen = first_seen.get(backup_id)
            if seen is None:
                first_seen[backup_id] = fields
                backup = parser.backup(position, fields, server_id, backup_id)
                if backup is not None:
                    backups.append(backup)
                continue
            earlier = _first_item(seen, backup_id)
            if earlier == fields:  # the API repeats items across pages; one copy is enough
                self.repeats += 1
            else:
                involved = {server_id, earlier.get("server_id")}
                parser.conflict(position, backup_id, sorted(i for i in involved if type(i) is int))
        self.position = position


def _first_item(seen: dict[str, Any] | Raw, backup_id: int) -> dict[str, Any]:
    """The raw item first seen with an id: kept as is, or found again in the JSON text of the
    list read the fast way (where every id is an integer and none repeats)."""
    if isinstance(seen, dict):
        return seen
    items: list[dict[str, Any]] = json.loads(bytes(seen))
    return next(item for item in items if item["id"] == backup_id)


class _BackupItem(msgspec.Struct, gc=False):
    """A well-formed backup as the API lists it: what the fast way decodes an item into.

    `resource` is not a field: msgspec.convert reads it as an attribute, like the others, when it
    turns these into Backups. `created_at` stays text until then, for _well_formed to check.
    """

    resource: ClassVar[Resource] = "backups"
    id: int
    server_id: int
    created_at: str
    name: str | None = None
    size: Annotated[int, Meta(ge=0)] | None = None
    server_hostname: str | None = None


class _SnapshotItem(_BackupItem, gc=False):
    resource: ClassVar[Resource] = "snapshots"


_ITEM_LISTS: dict[Resource, msgspec.json.Decoder[list[_BackupItem]]] = {
    "backups": msgspec.json.Decoder(list[_BackupItem]),
    "snapshots": msgspec.json.Decoder(list[_SnapshotItem]),
}
_CREATED_AT = attrgetter("created_at")
_ZONE = attrgetter("created_at.tzinfo")
# msgspec reads RFC 3339 and datetime.fromisoformat ISO 8601: they agree on every timestamp the
# API sends, not on a lowercase `z` (fromisoformat refuses it) nor on more than six digits of a
# second (msgspec rounds them, fromisoformat cuts them). With an offset or Z, 27 characters leave
# room for six digits at most.
_LONGEST_AGREED = len("2024-08-29T14:21:54.000000Z")


def _well_formed(items: list[_BackupItem]) -> list[Backup] | None:
    """Backups from decoded items, or None when a timestamp may read otherwise the careful way
    (or is naive: the careful way counts those and says so)."""
    if not items:
        return []
    texts = list(map(_CREATED_AT, items))
    if max(map(len, texts)) > _LONGEST_AGREED or "z" in "".join(texts):
        return None
    try:
        backups = msgspec.convert(items, list[Backup], from_attributes=True)
    except msgspec.ValidationError:  # a timestamp that is not one
        return None
    if None in map(_ZONE, backups):
        return None
    return backups


class _ItemParser:
    """Checks one item at a time, collecting a Problem for each fault."""

    __slots__ = ("label", "naive", "problems", "resource")

    def __init__(self, resource: Resource) -> None:
        self.resource: Resource = resource
        self.label = resource.removesuffix("s")
        self.problems: list[Problem] = []
        self.naive = _Naive()

    def identity(self, position: int, item: object) -> tuple[dict[str, Any], int, int] | None:
        """(item, server_id, id), or None after recording why the item cannot be placed."""
        if type(item) is not dict:
            self._fault(position, None, None, f"is {_describe(item)}, not an object")
            return None
        server_id = item.get("server_id")
        backup_id = item.get("id")
        if type(server_id) is not int:
            fault = (
                "has no server_id"
                if server_id is None
                else f"has a non-integer server_id {_describe(server_id)}"
            )
            self._fault(position, backup_id, None, f"{fault}, so no server can be named for it")
            return None
        if type(backup_id) is not int:
            fault = (
                "has no id" if backup_id is None else f"has a non-integer id {_describe(backup_id)}"
            )
            self._fault(position, None, server_id, fault)
            return None
        return item, server_id, backup_id

    def backup(
        self, position: int, item: dict[str, Any], server_id: int, backup_id: int
    ) -> Backup | None:
        created_raw = item.get("created_at")
        try:
            created_at, naive = _timestamp(created_raw)
        except ValueError:
            fault = (
                "has no created_at"
                if created_raw is None
                else f"has created_at {_describe(created_raw)}, which is not an ISO 8601 timestamp"
            )
            self._fault(position, backup_id, server_id, fault)
            return None
        if naive:
            self.naive.add(backup_id, str(created_raw))
        size = item.get("size")
        if size is not None and (type(size) is not int or size < 0):
            fault = f"has size {_describe(size)}, not a non-negative integer (GB)"
            self._fault(position, backup_id, server_id, fault, field="size")
            size = None
        name = self._text(position, item, "name", backup_id, server_id, field="name")
        # A hostname can decide which policy applies: a garbled one blocks the whole group.
        hostname = self._text(position, item, "server_hostname", backup_id, server_id, field=None)
        return Backup(self.resource, backup_id, server_id, created_at, name, size, hostname)

    def conflict(self, position: int, backup_id: int, server_ids: list[int]) -> None:
        fault = f"repeats {self.label} id {backup_id} with different content"
        for server_id in server_ids:
            self._fault(position, backup_id, server_id, fault)

    def _text(
        self,
        position: int,
        item: dict[str, Any],
        key: str,
        backup_id: int,
        server_id: int,
        *,
        field: str | None,
    ) -> str | None:
        value = item.get(key)
        if value is None or type(value) is str:
            return value
        fault = f"has {key} {_describe(value)}, not a string"
        self._fault(position, backup_id, server_id, fault, field=field)
        return None

    def _fault(
        self,
        position: int,
        backup_id: object,
        server_id: int | None,
        fault: str,
        *,
        field: str | None = None,
    ) -> None:
        known_id = backup_id if type(backup_id) is int else None
        where = f"{self.resource} item {position}"
        if known_id is not None:
            where += f" (id {known_id})"
        if server_id is None:
            consequence = f"nothing is deleted from {self.resource} until the listing is whole"
        elif field is None:
            consequence = f"server {server_id}'s {self.resource} are not pruned"
        else:
            consequence = (
                f"server {server_id}'s {self.resource} are not pruned if its policy needs {field}"
            )
        self.problems.append(
            Problem(
                level="error",
                message=f"{where} {fault}: {consequence}",
                resource=self.resource,
                server_id=server_id,
                backup_id=known_id,
                field=field,
            )
        )


def parse_servers(items: Iterable[object]) -> tuple[list[Server], list[Problem]]:
    """Servers from API items. Any error means the servers listing cannot be trusted."""
    servers, problems, _ = _parse_server_items(items)
    return servers, problems


def _parse_server_items(items: Iterable[object]) -> tuple[list[Server], list[Problem], int]:
    servers: list[Server] = []
    problems: list[Problem] = []
    first_seen: dict[int, object] = {}  # id → raw item
    position = repeats = 0
    for position, item in enumerate(items, start=1):
        server, item_problems = _parse_server(position, item)
        if server is not None and server.id in first_seen:
            if first_seen[server.id] == item:
                repeats += 1
            else:
                problems.append(
                    _server_problem(position, server.id, "repeats its id with different content")
                )
            continue
        problems.extend(item_problems)
        if server is not None:
            first_seen[server.id] = item
            servers.append(server)
    return servers, problems, position - repeats


def _parse_server(position: int, item: object) -> tuple[Server | None, list[Problem]]:
    if not isinstance(item, dict):
        return None, [_server_problem(position, None, f"is {_describe(item)}, not an object")]
    server_id = item.get("id")
    if type(server_id) is not int:
        fault = "has no id" if server_id is None else f"has a non-integer id {_describe(server_id)}"
        return None, [_server_problem(position, None, fault)]
    problems: list[Problem] = []
    text: dict[str, str | None] = {}
    for key in ("hostname", "status"):
        value = item.get(key)
        if value is not None and type(value) is not str:
            problems.append(
                _server_problem(position, server_id, f"has {key} {_describe(value)}, not a string")
            )
            value = None
        text[key] = value
    locked = item.get("locked", False)
    if locked is None:
        locked = False
    if type(locked) is not bool:
        problems.append(
            _server_problem(
                position, server_id, f"has locked {_describe(locked)}, not true or false"
            )
        )
        locked = True  # keep its backups whatever happens
    created_at = None
    created_raw = item.get("created_at")
    if created_raw is not None:
        try:
            created_at = parse_timestamp(created_raw)
        except ValueError:
            problems.append(
                _server_problem(
                    position,
                    server_id,
                    f"has created_at {_describe(created_raw)}, which is not an ISO 8601 timestamp",
                    level="warning",
                )
            )
    server = Server(server_id, text["hostname"], text["status"], locked, created_at)
    return server, problems


def _server_problem(
    position: int,
    server_id: int | None,
    fault: str,
    level: Literal["error", "warning"] = "error",
) -> Problem:
    where = f"servers item {position}"
    if server_id is not None:
        where += f" (id {server_id})"
    consequence = (
        "the servers listing cannot be trusted, so nothing is deleted in this pass"
        if level == "error"
        else "ignored"
    )
    return Problem(level=level, message=f"{where} {fault}: {consequence}", server_id=server_id)


# --- saved listings (`pruner plan --listing FILE`) ---------------------------------------------


class _Text(NamedTuple):
    """The JSON text of a list of items, not decoded yet. `where` names a plain list, whose shape
    (items, not pages) is only checked if it has to be read the careful way."""

    raw: Raw
    where: str | None = None


@dataclass(frozen=True, slots=True)
class _Section:
    """One resource's part of a saved listing: its items in the order listed, in batches (decoded,
    or still JSON text), and the `meta` of each page they came in (none when not in pages)."""

    batches: list[list[object] | _Text]
    metas: list[object]


class _RawPage(msgspec.Struct, gc=False):
    """A page of a listing as the fast way first reads it: its parts still JSON text."""

    data: Raw
    meta: Raw = Raw(b"null")


class _PagedSections(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """The usual saved listing, whose pages the fast way finds in one pass over the file."""

    backups: list[_RawPage] | _RawPage | UnsetType = UNSET
    snapshots: list[_RawPage] | _RawPage | UnsetType = UNSET
    servers: Raw | UnsetType = UNSET


class _Unusual(Exception):
    """A listing in a shape the fast way leaves to the careful way, which reads it or says what
    is wrong with it."""


_PAGED_SECTIONS = msgspec.json.Decoder(_PagedSections)
_PARTS = msgspec.json.Decoder(dict[str, Raw] | list[_RawPage])
_OBJECT = msgspec.json.Decoder(dict[str, Raw])
_PAGES = msgspec.json.Decoder(list[_RawPage])
_RELEASE_EVERY = 16 << 20  # bytes of a mapped file read between giving its pages back
_UTF8_CHUNK = 1 << 20


def load_listing(path: Path) -> Listing:
    """A Listing from a saved file; raises ListingError naming the file when it cannot be used."""
    data = _read(path)
    if _is_utf8(data):
        try:
            return _listing(path, _fast_sections(path, data), _releaser(data))
        except (msgspec.DecodeError, ListingError, _Unusual):
            pass  # msgspec refuses what the json module may take, or the shape is unusual
    return _listing(path, _split_sections(path, _json_document(path, data)))


def _read(path: Path) -> bytes | mmap.mmap:
    """The file's bytes, mapped where it can be: the pages of a mapping can be given back once
    read, so the size of the file does not add to the peak memory of reading it. (A file cut
    short while it is mapped ends the process with SIGBUS: a saved listing is not rewritten in
    place while it is planned.)"""
    try:
        with path.open("rb") as stream:
            try:
                return mmap.mmap(stream.fileno(), 0, access=mmap.ACCESS_READ)
            except (OSError, ValueError):  # an empty file, a pipe
                return stream.read()
    except OSError as error:
        raise ListingError(f"{path}: cannot read the listing: {error.strerror or error}") from error


def _releaser(data: bytes | mmap.mmap) -> Callable[[], None]:
    """Gives the pages of a mapped file back to the system; what is read again comes back from
    the page cache."""
    if isinstance(data, mmap.mmap) and hasattr(mmap, "MADV_DONTNEED"):
        return lambda: data.madvise(mmap.MADV_DONTNEED)
    return lambda: None


def _is_utf8(data: bytes | mmap.mmap) -> bool:
    """Whether the json module would read the bytes as UTF-8 (msgspec does not check the text of
    the values it skips)."""
    decoder = codecs.getincrementaldecoder("utf-8")("surrogatepass")
    try:
        for start in range(0, len(data), _UTF8_CHUNK):
            chunk = data[start : start + _UTF8_CHUNK]
            if not chunk.isascii() or decoder.getstate()[0]:
                decoder.decode(chunk)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def _json_document(path: Path, data: bytes | mmap.mmap) -> object:
    try:
        return json.loads(data if isinstance(data, bytes) else data[:])
    except UnicodeDecodeError as error:
        raise ListingError(f"{path}: not UTF-8 text ({error.reason}); {_EXPECTED}") from error
    except json.JSONDecodeError as error:
        raise ListingError(
            f"{path}:{error.lineno}:{error.colno}: not valid JSON ({error.msg}); {_EXPECTED}"
        ) from error


def _listing(
    path: Path, sections: dict[str, _Section], release: Callable[[], None] = lambda: None
) -> Listing:
    release()  # the shape is known: the items are read again page by page
    backups: list[Backup] = []
    problems: list[Problem] = []
    for resource in ("backups", "snapshots"):
        section = sections.get(resource)
        if section is None:
            continue
        parsed = _read_backups(section, resource, release)
        backups.extend(parsed.backups)
        problems.extend(parsed.problems)
        problems.extend(_page_problems(path, resource, section.metas, parsed.distinct_items))
    servers: tuple[Server, ...] | None = None
    servers_complete = True
    section = sections.get("servers")
    if section is not None:
        items = [item for batch in section.batches for item in _decoded(batch)]
        server_list, server_problems, distinct = _parse_server_items(items)
        servers = tuple(server_list)
        servers_complete = not any(p.level == "error" for p in server_problems)
        problems.extend(server_problems)
        problems.extend(_page_problems(path, "servers", section.metas, distinct))
    return Listing(
        backups=tuple(backups),
        servers=servers,
        resources=frozenset(r for r in ("backups", "snapshots") if r in sections),
        servers_complete=servers_complete,
        problems=tuple(problems),
    )


def _read_backups(section: _Section, resource: Resource, release: Callable[[], None]) -> _Parsed:
    reader = _BackupReader(resource)
    unreleased = 0
    for batch in section.batches:
        if not isinstance(batch, _Text):
            reader.add_items(batch)
            continue
        reader.add_text(batch.raw, batch.where)
        unreleased += len(batch.raw)
        if unreleased > _RELEASE_EVERY:
            release()
            unreleased = 0
    return reader.parsed()


def _decoded(batch: list[object] | _Text) -> list[object]:
    """A batch's items, decoded the careful way."""
    if not isinstance(batch, _Text):
        return batch
    value = json.loads(bytes(batch.raw))
    if batch.where is None:
        return cast("list[object]", value)
    return [item for part in _section(batch.where, value).batches for item in _decoded(part)]


def _fast_sections(path: Path, data: bytes | mmap.mmap) -> dict[str, _Section]:
    """The sections of a listing, their items left as JSON text. Raises msgspec.DecodeError,
    ListingError or _Unusual for a listing the careful way must read."""
    try:
        paged = _PAGED_SECTIONS.decode(data)
    except msgspec.ValidationError:  # not sections of pages: their parts first, then the pages
        return _fast_parts(path, data)
    sections = {
        name: _fast_section(f"{path}: {name!r}", value)
        for name in _SECTIONS
        if (value := getattr(paged, name)) is not UNSET
    }
    if not sections:
        raise _Unusual
    return sections


def _fast_parts(path: Path, data: bytes | mmap.mmap) -> dict[str, _Section]:
    try:
        document = _PARTS.decode(data)
    except msgspec.ValidationError:  # a plain list of items (or a list mixing in pages)
        return {"backups": _fast_section(str(path), Raw(data))}
    if isinstance(document, list) or "data" in document:  # a page, or a list of pages
        return {"backups": _fast_section(str(path), document)}
    if not document or not set(document) <= set(_SECTIONS):
        raise _Unusual
    return {name: _fast_section(f"{path}: {name!r}", raw) for name, raw in document.items()}


def _fast_section(where: str, value: Raw | dict[str, Raw] | _RawPage | list[_RawPage]) -> _Section:
    """A section from the JSON text of a page, of a list of pages or of a plain list of items, or
    from a page or a list of pages decoded already."""
    if isinstance(value, Raw):
        return _fast_text(where, value)
    if isinstance(value, dict):
        return _fast_pages([_page_of(value)])
    return _fast_pages(value if isinstance(value, list) else [value])


def _fast_text(where: str, raw: Raw) -> _Section:
    first = _first_byte(raw)
    if first == b"{":
        return _fast_pages([_page_of(_OBJECT.decode(raw))])
    if first != b"[":
        raise _Unusual
    try:
        pages = _PAGES.decode(raw)
    except msgspec.ValidationError:  # items, unless it mixes in pages: checked if need be
        return _Section([_Text(raw, where)], [])
    return _fast_pages(pages)


def _page_of(page: dict[str, Raw]) -> _RawPage:
    if "data" not in page or set(page) & set(_SECTIONS):
        raise _Unusual
    return _RawPage(page["data"], page.get("meta", Raw(b"null")))


def _fast_pages(pages: list[_RawPage]) -> _Section:
    if any(_first_byte(page.data) != b"[" for page in pages):
        raise _Unusual
    return _Section(
        [_Text(page.data) for page in pages], [json.loads(bytes(page.meta)) for page in pages]
    )


def _first_byte(data: bytes | mmap.mmap | Raw) -> bytes:
    """The first byte of a JSON text, past any whitespace."""
    view = memoryview(data)
    start = 0
    while start < len(view) and view[start] in b" \t\n\r":
        start += 1
    return bytes(view[start : start + 1])


def _split_sections(path: Path, document: object) -> dict[str, _Section]:
    if isinstance(document, dict) and "data" not in document:
        unknown = sorted(set(document) - set(_SECTIONS))
        if unknown:
            raise ListingError(f"{path}: unexpected key {unknown[0]!r}; {_EXPECTED}")
        if not document:
            raise ListingError(f"{path}: the object is empty; {_EXPECTED}")
        return {key: _section(f"{path}: {key!r}", value) for key, value in document.items()}
    if isinstance(document, dict) and set(document) & set(_SECTIONS):
        raise ListingError(
            f"{path}: holds both a page ('data') and sections ({', '.join(_SECTIONS)}); "
            "put the page under 'backups'"
        )
    return {"backups": _section(str(path), document)}


def _section(where: str, value: object) -> _Section:
    if isinstance(value, dict):
        return _Section([_page_items(where, value)], [value.get("meta")])
    if isinstance(value, list):
        pages = [item for item in value if isinstance(item, dict) and "data" in item]
        if not pages:
            return _Section([value], [])
        if len(pages) != len(value):
            raise ListingError(f"{where}: a list that mixes pages (objects with 'data') and items")
        items: list[object] = []
        for page in pages:
            items.extend(_page_items(where, page))
        return _Section([items], [page.get("meta") for page in pages])
    raise ListingError(f"{where}: holds {_describe(value)}; {_EXPECTED}")


def _page_items(where: str, page: dict[str, Any]) -> list[object]:
    data = page.get("data")
    if not isinstance(data, list):
        raise ListingError(f"{where}: 'data' holds {_describe(data)}, not a list; {_EXPECTED}")
    return data


def _page_problems(
    path: Path, section: str, page_metas: Sequence[object], distinct_items: int
) -> list[Problem]:
    """Warnings when the pages themselves say the saved listing is not whole."""
    metas = [meta for meta in page_metas if isinstance(meta, dict)]
    if not metas:
        return []
    numbers = [meta.get("current_page") for meta in metas]
    last = max(metas, key=lambda meta: _int_or(meta.get("current_page"), 0))
    details: list[str] = []
    last_page = last.get("last_page")
    if type(last_page) is int:
        if all(type(n) is int for n in numbers):
            present = set(numbers)
            missing = [n for n in range(1, last_page + 1) if n not in present]
        else:  # pages without numbers: only their count can be checked
            missing = list(range(len(metas) + 1, last_page + 1))
        if missing:
            shown = ", ".join(str(n) for n in missing[:5]) + (", …" if len(missing) > 5 else "")
            details.append(f"lacks page(s) {shown} of {last_page}")
    total = last.get("total")
    if type(total) is int and total != distinct_items:
        details.append(f"holds {distinct_items} {section} but its meta.total says {total}")
    consequence = (
        "servers missing from it are taken as gone (orphans)"
        if section == "servers"
        else f"servers or {section} missing from it are not considered"
    )
    resource = _RESOURCES.get(section)
    return [
        Problem(
            level="warning",
            message=f"{path}: the saved {section} listing {detail}: "
            f"it is not a whole listing; {consequence}",
            resource=resource,
        )
        for detail in details
    ]


def _int_or(value: object, default: int) -> int:
    return value if type(value) is int else default
