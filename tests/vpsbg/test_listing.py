from __future__ import annotations

import json
import tracemalloc
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pruner.engine.models import Backup
from pruner.vpsbg.listing import (
    ListingError,
    _split_sections,
    load_listing,
    parse_backups,
    parse_servers,
    parse_timestamp,
)
from tests._factories import ABSENT, DOCS_EXAMPLE_PAGE, item

# --- parse_timestamp ------------------------------------------------------------------------


def test_parse_timestamp_keeps_the_original_offset() -> None:
    moment = parse_timestamp("2023-06-19T22:36:35+03:00")
    assert moment.utcoffset() == timedelta(hours=3)
    assert moment.isoformat() == "2023-06-19T22:36:35+03:00"


def test_parse_timestamp_reads_z_with_a_fraction_as_utc() -> None:
    moment = parse_timestamp("2024-08-29T14:21:54.000000Z")
    assert moment == datetime(2024, 8, 29, 14, 21, 54, tzinfo=UTC)
    assert moment.utcoffset() == timedelta(0)


def test_parse_timestamp_takes_a_naive_time_as_utc() -> None:
    moment = parse_timestamp("2023-06-19T22:36:35")
    assert moment == datetime(2023, 6, 19, 22, 36, 35, tzinfo=UTC)


@pytest.mark.parametrize(
    "value", ["", "yesterday", "2023-06-19", "2023-13-01T00:00:00Z", 1687203395, None, ["x"]]
)
def test_parse_timestamp_rejects_what_is_not_a_time(value: object) -> None:
    with pytest.raises(ValueError, match=r"."):
        parse_timestamp(value)


# --- parse_backups --------------------------------------------------------------------------


def test_parse_backups_reads_every_field() -> None:
    backups, problems = parse_backups([item(77)], "backups")
    assert problems == []
    [backup] = backups
    assert (backup.resource, backup.id, backup.server_id) == ("backups", 77, 2478)
    assert backup.server_hostname == "ubuntu-2gb"
    assert backup.name == "77_ubuntu-2gb_2023_06_19-19_34_40.qcow2.gz"
    assert backup.size == 50
    assert backup.created_at.utcoffset() == timedelta(hours=3)


def test_parse_backups_warns_once_with_a_count_of_naive_timestamps_read_as_utc() -> None:
    items = [
        item(1, created_at="2026-11-20T03:00:00"),  # the fast path
        item(2, created_at="2026-11-21 03:00:00", server_id=7),  # the careful one
        item(3, created_at="2026-11-22T03:00:00"),
        item(4),  # with an offset
    ]
    backups, problems = parse_backups(items, "backups")
    assert [b.created_at.utcoffset() for b in backups] == [timedelta(0)] * 3 + [timedelta(hours=3)]
    assert [(p.level, p.resource, p.server_id, p.message) for p in problems] == [
        (
            "warning",
            "backups",
            None,
            "3 backups have created_at without a UTC offset (the first: id 1, "
            '"2026-11-20T03:00:00"): read as UTC; if the API means another zone, their ages and '
            "calendar buckets are off by its offset",
        )
    ]


def test_parse_backups_accepts_snapshots_without_hostname() -> None:
    raw = item(5, server_hostname=ABSENT, server_ip=ABSENT)
    backups, problems = parse_backups([raw], "snapshots")
    assert problems == []
    assert backups[0].resource == "snapshots"
    assert backups[0].server_hostname is None


@pytest.mark.parametrize(
    ("raw", "fault"),
    [
        ("not an object", 'is "not an object", not an object'),
        (item(77, server_id=ABSENT), "has no server_id"),
        (item(77, server_id="2478"), 'non-integer server_id "2478"'),
        (item(77, server_id=True), "non-integer server_id true"),
        (item(77, server_id=2478.0), "non-integer server_id 2478.0"),
    ],
)
def test_parse_backups_blocks_the_whole_resource_when_an_item_has_no_server(
    raw: object, fault: str
) -> None:
    backups, [problem] = parse_backups([item(1), raw], "backups")
    assert [b.id for b in backups] == [1]
    assert problem.level == "error"
    assert problem.resource == "backups"
    assert problem.server_id is None
    assert problem.message.startswith("backups item 2")
    assert fault in problem.message


def test_parse_backups_names_the_id_of_an_unplaceable_item_when_known() -> None:
    _, [problem] = parse_backups([item(77, server_id=None)], "backups")
    assert problem.backup_id == 77
    assert "backups item 1 (id 77) has no server_id" in problem.message


@pytest.mark.parametrize(
    ("raw", "fault"),
    [
        (item(ABSENT), "has no id"),
        (item("77"), 'non-integer id "77"'),
        (item(77, created_at=ABSENT), "has no created_at"),
        (item(77, created_at="19/06/2023"), 'created_at "19/06/2023", which is not an ISO 8601'),
        (item(77, created_at=1687203395), "created_at 1687203395"),
        (item(77, server_hostname=12), "server_hostname 12, not a string"),
    ],
)
def test_parse_backups_makes_the_servers_group_incomplete_for_a_bad_id_or_time(
    raw: dict[str, Any], fault: str
) -> None:
    backups, [problem] = parse_backups([raw], "backups")
    assert problem.level == "error"
    assert problem.server_id == 2478
    assert problem.field is None  # blocks the group whatever its policy
    assert problem.message.startswith("backups item 1")
    assert fault in problem.message
    assert "server 2478's backups are not pruned" in problem.message
    assert backups == [] or backups[0].server_hostname is None


@pytest.mark.parametrize(
    ("raw", "field", "fault"),
    [
        (item(77, size=-1), "size", "size -1, not a non-negative integer"),
        (item(77, size="50"), "size", 'size "50"'),
        (item(77, size=1.5), "size", "size 1.5"),
        (item(77, size=False), "size", "size false"),
        (item(77, name=7), "name", "name 7, not a string"),
    ],
)
def test_parse_backups_keeps_a_backup_with_a_bad_optional_field_and_names_the_field(
    raw: dict[str, Any], field: str, fault: str
) -> None:
    [backup], [problem] = parse_backups([raw], "backups")
    assert getattr(backup, field) is None
    assert (problem.level, problem.server_id, problem.backup_id, problem.field) == (
        "error",
        2478,
        77,
        field,
    )
    assert fault in problem.message
    assert "backups item 1 (id 77)" in problem.message


def test_parse_backups_takes_a_null_size_or_name_as_absent() -> None:
    [backup], problems = parse_backups([item(77, size=None, name=None)], "backups")
    assert problems == []
    assert (backup.size, backup.name) == (None, None)


def test_parse_backups_drops_exact_repeats_silently() -> None:
    backups, problems = parse_backups([item(1), item(2), item(1)], "backups")
    assert [b.id for b in backups] == [1, 2]
    assert problems == []


def test_parse_backups_reports_a_repeated_id_with_other_content_for_every_server_involved() -> None:
    backups, problems = parse_backups([item(1), item(1, server_id=9, size=10)], "backups")
    assert [b.id for b in backups] == [1]
    assert sorted(p.server_id or 0 for p in problems) == [9, 2478]
    assert all(p.level == "error" and p.backup_id == 1 for p in problems)
    assert "backups item 2 (id 1) repeats backup id 1 with different content" in problems[0].message


def test_parse_backups_accepts_a_generator() -> None:
    backups, problems = parse_backups((item(n) for n in range(3)), "backups")
    assert len(backups) == 3
    assert problems == []


# --- parse_servers --------------------------------------------------------------------------


def _server(id: Any = 2478, **overrides: Any) -> dict[str, Any]:
    raw = {
        "id": id,
        "hostname": "ubuntu-2gb",
        "status": "active",
        "locked": False,
        "created_at": "2024-08-29T14:21:54.000000Z",
    }
    raw.update(overrides)
    return {key: value for key, value in raw.items() if value is not ABSENT}


def test_parse_servers_reads_every_field() -> None:
    [server], problems = parse_servers([_server(locked=True)])
    assert problems == []
    assert (server.id, server.hostname, server.status, server.locked) == (
        2478,
        "ubuntu-2gb",
        "active",
        True,
    )
    assert server.created_at == datetime(2024, 8, 29, 14, 21, 54, tzinfo=UTC)


@pytest.mark.parametrize(
    ("raw", "fault"),
    [
        (1, "servers item 1 is 1, not an object"),
        (_server("2478"), 'servers item 1 has a non-integer id "2478"'),
        (_server(ABSENT), "servers item 1 has no id"),
        (_server(hostname=5), "servers item 1 (id 2478) has hostname 5, not a string"),
        (_server(locked="yes"), 'has locked "yes", not true or false'),
    ],
)
def test_parse_servers_reports_errors_that_make_the_servers_listing_untrusted(
    raw: object, fault: str
) -> None:
    _, problems = parse_servers([raw])
    assert [p.level for p in problems] == ["error"]
    assert fault in problems[0].message
    assert "nothing is deleted in this pass" in problems[0].message


def test_parse_servers_takes_an_unreadable_creation_time_as_a_warning() -> None:
    [server], [problem] = parse_servers([_server(created_at="soon")])
    assert server.created_at is None
    assert problem.level == "warning"


def test_parse_servers_dedupes_repeats_and_rejects_conflicts() -> None:
    servers, problems = parse_servers([_server(), _server()])
    assert len(servers) == 1
    assert problems == []
    _, problems = parse_servers([_server(), _server(hostname="other")])
    assert [p.level for p in problems] == ["error"]


# --- load_listing ---------------------------------------------------------------------------


def _write(tmp_path: Path, document: object) -> Path:
    path = tmp_path / "listing.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def _page(items: list[Any], page: int = 1, last_page: int = 1, total: int | None = None) -> Any:
    return {
        "data": items,
        "links": {},
        "meta": {
            "current_page": page,
            "last_page": last_page,
            "per_page": 50,
            "total": len(items) if total is None else total,
        },
    }


def test_load_listing_warns_that_the_docs_example_is_not_a_whole_listing(tmp_path: Path) -> None:
    path = tmp_path / "backups-page.json"
    path.write_text(DOCS_EXAMPLE_PAGE, encoding="utf-8")
    loaded = load_listing(path)
    assert sorted(b.id for b in loaded.backups) == [73, 77]
    assert loaded.resources == frozenset({"backups"})
    assert loaded.servers is None
    assert loaded.servers_complete
    [problem] = loaded.problems
    assert problem.level == "warning"
    assert problem.resource == "backups"
    assert "holds 2 backups but its meta.total says 6" in problem.message
    assert "it is not a whole listing" in problem.message
    assert str(path) in problem.message


def test_load_listing_reads_a_list_of_pages(tmp_path: Path) -> None:
    pages = [_page([item(1), item(2)], 1, 2, total=3), _page([item(2), item(3)], 2, 2, total=3)]
    loaded = load_listing(_write(tmp_path, pages))
    assert sorted(b.id for b in loaded.backups) == [1, 2, 3]
    assert loaded.problems == ()  # the repeat across pages is not counted twice


def test_load_listing_warns_about_missing_pages(tmp_path: Path) -> None:
    pages = [_page([item(1)], 1, 3, total=3), _page([item(3)], 3, 3, total=3)]
    problems = load_listing(_write(tmp_path, pages)).problems
    messages = [p.message for p in problems]
    assert any("lacks page(s) 2 of 3" in m for m in messages)
    assert any("holds 2 backups but its meta.total says 3" in m for m in messages)
    assert {p.level for p in problems} == {"warning"}


def test_load_listing_reads_a_plain_list_of_backups(tmp_path: Path) -> None:
    loaded = load_listing(_write(tmp_path, [item(1), item(2)]))
    assert len(loaded.backups) == 2
    assert loaded.problems == ()
    assert loaded.resources == frozenset({"backups"})


def test_load_listing_reads_sections_for_each_resource_and_the_servers(tmp_path: Path) -> None:
    document = {
        "backups": _page([item(1)]),
        "snapshots": [item(2, server_hostname=ABSENT)],
        "servers": [_server(2478)],
    }
    loaded = load_listing(_write(tmp_path, document))
    assert loaded.resources == frozenset({"backups", "snapshots"})
    assert {(b.resource, b.id) for b in loaded.backups} == {("backups", 1), ("snapshots", 2)}
    assert loaded.servers is not None
    assert [s.id for s in loaded.servers] == [2478]
    assert loaded.servers_complete


def test_load_listing_lists_only_the_resources_present(tmp_path: Path) -> None:
    loaded = load_listing(_write(tmp_path, {"snapshots": []}))
    assert loaded.resources == frozenset({"snapshots"})
    assert loaded.servers is None


def test_load_listing_marks_the_servers_listing_untrusted_on_an_error(tmp_path: Path) -> None:
    loaded = load_listing(_write(tmp_path, {"backups": [], "servers": [{"id": "x"}]}))
    assert not loaded.servers_complete
    assert loaded.problems[0].level == "error"


def test_load_listing_keeps_bad_items_as_problems_not_failures(tmp_path: Path) -> None:
    loaded = load_listing(_write(tmp_path, [item(1), 5]))
    assert len(loaded.backups) == 1
    assert [p.message.split(" is ")[0] for p in loaded.problems] == ["backups item 2"]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("{not json", "not valid JSON"),
        ('"a string"', 'holds "a string"'),
        ("42", "holds 42"),
        ('{"backups": 5}', "'backups': holds 5"),
        ('{"backup": []}', "unexpected key 'backup'"),
        ("{}", "the object is empty"),
        ('{"data": {"id": 1}}', "'data' holds a JSON object, not a list"),
        ('[{"data": []}, {"id": 1}]', "mixes pages"),
        ('{"data": [], "servers": []}', "put the page under 'backups'"),
    ],
)
def test_load_listing_rejects_a_file_of_the_wrong_shape(
    tmp_path: Path, content: str, expected: str
) -> None:
    path = tmp_path / "listing.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ListingError) as raised:
        load_listing(path)
    assert str(path) in str(raised.value)
    assert expected in str(raised.value)


def test_load_listing_names_a_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.json"
    with pytest.raises(ListingError, match=r"absent\.json: cannot read the listing"):
        load_listing(path)


def test_load_listing_keeps_offsets_of_every_form(tmp_path: Path) -> None:
    items = [
        item(1, created_at="2023-06-19T22:36:35+03:00"),
        item(2, created_at="2024-08-29T14:21:54.000000Z"),
        item(3, created_at="2023-06-19T22:36:35"),
    ]
    loaded = load_listing(_write(tmp_path, items))
    offsets = {b.id: b.created_at.utcoffset() for b in loaded.backups}
    assert offsets == {1: timedelta(hours=3), 2: timedelta(0), 3: timedelta(0)}
    assert loaded.backups[0].created_at.tzinfo == timezone(timedelta(hours=3))


# --- load_listing: the fast way and the careful way agree --------------------------------------

# Timestamps the two ways might read differently: the API's forms, and their near misses.
TIMESTAMPS = st.sampled_from(
    [
        "2023-06-19T22:36:35+03:00",
        "2023-06-19T22:36:35-00:00",
        "2023-06-19T22:36:35+0300",
        "2024-08-29T14:21:54.000000Z",
        "2024-08-29T14:21:54.5Z",
        "2024-08-29T14:21:54.1234567Z",  # more than microseconds: fromisoformat cuts them
        "2024-08-29T14:21:54.9999996+03:00",
        "2024-08-29t14:21:54z",  # fromisoformat refuses a lowercase z
        "2024-08-29T14:21:54z",
        "2023-06-19 22:36:35+03:00",
        "2023-06-19T22:36:35",  # naive: read as UTC, counted
        "2023-06-19T22:36:35.123456",
        "2023-06-19T22:36+03:00",
        "2023-06-19T24:00:00Z",
        "2023-02-29T10:00:00Z",
        "20230619T223635Z",
        "2023-06-19",
        "",
    ]
)
JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-3, max_value=3),
    st.sampled_from([2**70, 1.0, 2.5, "7", "x", "\ud800", "é"]),
)


@st.composite
def raw_items(draw: st.DrawFn) -> list[object]:
    """API items with now and then a defect: a field of the wrong type or missing, a repeated
    id (the same item again, or other content), an item that is not an object at all."""
    items: list[object] = []
    for position in range(draw(st.integers(min_value=0, max_value=12))):
        if items and draw(st.integers(0, 9)) == 0:
            items.append(draw(st.sampled_from(items)))  # an exact repeat, as pages overlap
            continue
        raw = item(
            draw(st.integers(1, 15)),
            draw(st.sampled_from([2478, 2448])),
            created_at=draw(TIMESTAMPS),
            server_ip=f"87.120.37.{position % 2}",
        )
        for key in ("id", "server_id", "created_at", "name", "size", "server_hostname"):
            if draw(st.integers(0, 14)) == 0:
                raw[key] = draw(st.one_of(st.just(ABSENT), JSON_SCALARS))
        items.append({key: value for key, value in raw.items() if value is not ABSENT})
        if draw(st.integers(0, 19)) == 0:
            items[-1] = draw(JSON_SCALARS)
    return items


def _as_read(backups: Sequence[Backup]) -> list[tuple[Backup, object, object]]:
    """Backups with what equality leaves out: the offset and its tzinfo's kind."""
    return [(b, b.created_at.utcoffset(), type(b.created_at.tzinfo)) for b in backups]


@settings(max_examples=300, deadline=None)
@given(
    items=raw_items(),
    page_size=st.integers(min_value=0, max_value=5),
    in_section=st.booleans(),
    ascii=st.booleans(),
)
def test_load_listing_reads_every_item_as_parse_backups_does(
    tmp_path_factory: pytest.TempPathFactory,
    items: list[object],
    page_size: int,
    in_section: bool,
    ascii: bool,
) -> None:
    # page_size 0: a plain list of items; else pages of that many, without meta
    pages = [items[n : n + page_size] for n in range(0, len(items), page_size or 1)]
    document: object = items if page_size == 0 else [{"data": page} for page in pages]
    if in_section:
        document = {"backups": document, "servers": []}
    path = tmp_path_factory.mktemp("listing") / "listing.json"
    path.write_bytes(json.dumps(document, ensure_ascii=ascii).encode("utf-8", "surrogatepass"))
    expected_backups, expected_problems = parse_backups(items, "backups")
    loaded = load_listing(path)
    assert _as_read(loaded.backups) == _as_read(expected_backups)
    assert list(loaded.problems) == expected_problems


def test_load_listing_reads_well_formed_snapshots_as_snapshots(tmp_path: Path) -> None:
    snapshots = [item(n, server_hostname=ABSENT) for n in (1, 2)]
    loaded = load_listing(_write(tmp_path, {"snapshots": _page(snapshots)}))
    assert [(b.resource, b.id) for b in loaded.backups] == [("snapshots", 1), ("snapshots", 2)]
    assert loaded.problems == ()


def test_load_listing_keeps_each_offset_and_shares_equal_ones(tmp_path: Path) -> None:
    items = [item(n, created_at=f"2023-06-{n:02d}T22:36:35+03:00") for n in range(1, 4)]
    loaded = load_listing(_write(tmp_path, [_page(items)]))
    assert {b.created_at.utcoffset() for b in loaded.backups} == {timedelta(hours=3)}
    assert len({id(b.created_at.tzinfo) for b in loaded.backups}) == 1  # one object, not three


def test_load_listing_refuses_bytes_that_are_not_utf8_anywhere(tmp_path: Path) -> None:
    # in a field nothing reads: the json module refuses the file all the same
    path = tmp_path / "listing.json"
    path.write_bytes(json.dumps([item(1, server_ip="X")]).encode().replace(b'"X"', b'"\xff"'))
    with pytest.raises(ListingError, match=r"not UTF-8 text"):
        load_listing(path)


def test_load_listing_reads_what_only_the_json_module_takes(tmp_path: Path) -> None:
    # a lone surrogate escape and a number beyond a double: msgspec refuses both, json does not
    path = tmp_path / "listing.json"
    path.write_text(
        '{"backups": [{"id": 1, "server_id": 2, "created_at": "2023-06-19T22:36:35+03:00", '
        '"name": "\\ud800", "server_ip": 1e999}], "servers": [{"id": 2, "locked": false}]}',
        encoding="utf-8",
    )
    loaded = load_listing(path)
    assert [(b.id, b.name) for b in loaded.backups] == [(1, "\ud800")]
    assert loaded.problems == ()


@pytest.mark.parametrize(
    "document",
    [
        {"backups": [{"data": [item(1)]}, {"data": 5}]},
        {"backups": {"meta": {}}},
        {"backups": [_page([item(1)]), item(2)]},
        [_page([item(1)]), item(2)],
        [item(1), _page([item(2)])],
        {"backups": 5},
        {"servers": [{"data": [{"id": 1}]}, {"id": 2}]},
    ],
)
def test_load_listing_says_what_is_wrong_with_a_shape_as_the_json_module_would(
    tmp_path: Path, document: object
) -> None:
    """Whichever way the file is read, the same error: the careful reading is the reference."""
    path = _write(tmp_path, document)
    with pytest.raises(ListingError) as raised:
        load_listing(path)
    with pytest.raises(ListingError) as expected:
        _split_sections(path, document)
    assert str(raised.value) == str(expected.value)


def test_load_listing_holds_neither_the_file_nor_a_dict_per_item(tmp_path: Path) -> None:
    """A million backups must load within a few hundred MB: what reading allocates beyond the
    Backups themselves stays under half the file's size (the file read whole is all of it, a dict
    per item several times it)."""
    items = [item(n, created_at=f"2023-06-19T22:{n % 60:02d}:35+03:00") for n in range(20_000)]
    path = _write(tmp_path, {"backups": [_page(items[n : n + 50]) for n in range(0, 20_000, 50)]})
    del items
    tracemalloc.start()
    try:
        loaded = load_listing(path)
        _, peak = tracemalloc.get_traced_memory()
        kept, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(loaded.backups) == 20_000
    assert peak - kept < path.stat().st_size / 2
