from __future__ import annotations

import pytest

from pruner.engine.scope import Scope


def test_scope_of_nothing_is_no_scope() -> None:
    assert Scope.of() is None
    assert Scope.of([], None) is None


def test_scope_of_keeps_the_servers_in_order_once_each() -> None:
    assert Scope.of(["db-*", "2478", "db-*"], "databases") == Scope(("db-*", "2478"), "databases")


@pytest.mark.parametrize(
    ("pattern", "server_id", "hostname", "selected"),
    [
        ("2478", 2478, "ubuntu-2gb", True),
        ("2478", 2479, "2478", False),  # digits are an id, never a hostname
        ("02478", 2478, None, True),
        ("db-*", 7, "db-01", True),
        ("db-*", 7, "web-01", False),
        ("db-*", 7, None, False),  # an unknown hostname matches no glob
        ("DB-*", 7, "db-01", False),  # globs are case-sensitive, as policies' are
        ("web-0[12]", 7, "web-02", True),
    ],
)
def test_a_server_is_selected_by_its_id_or_a_glob_on_its_hostname(
    pattern: str, server_id: int, hostname: str | None, selected: bool
) -> None:
    assert Scope((pattern,)).selects_server(server_id, hostname) is selected


def test_several_servers_select_their_union_and_none_selects_every_server() -> None:
    scope = Scope(("2478", "db-*"))
    assert scope.selects_server(2478, "x")
    assert scope.selects_server(1, "db-02")
    assert not scope.selects_server(1, "web-01")
    assert Scope((), "databases").selects_server(1, None)


def test_unmatched_names_the_servers_no_listed_server_answers_to() -> None:
    scope = Scope(("2478", "db-*", "dv-01"))
    assert scope.unmatched([(2478, "ubuntu-2gb"), (7, "db-01")]) == ("dv-01",)


def test_a_scope_reads_and_serialises_as_given() -> None:
    scope = Scope(("2478", "db-*"), "databases")
    assert str(scope) == "servers 2478, db-*; policy databases"
    assert str(Scope((), "databases")) == "policy databases"
    assert str(Scope(("db-*",))) == "servers db-*"
    assert scope.as_json() == {"servers": ["2478", "db-*"], "policy": "databases"}
