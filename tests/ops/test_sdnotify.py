from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from pruner.ops.sdnotify import Notifier, notify


class Listener:
    """The systemd side: a datagram socket that NOTIFY_SOCKET names."""

    def __init__(self, sock: socket.socket, address: str) -> None:
        self.sock = sock
        self.address = address  # as NOTIFY_SOCKET spells it

    def received(self) -> str:
        return self.sock.recv(4096).decode("utf-8")

    def nothing_received(self) -> bool:
        self.sock.setblocking(False)
        try:
            self.sock.recv(4096)
        except BlockingIOError:
            return True
        return False


def _listener(bind_to: str, address: str) -> Iterator[Listener]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(bind_to)
        sock.settimeout(5)  # a bound on a failing test, never a wait: sends are synchronous
        yield Listener(sock, address)


@pytest.fixture
def path_listener(tmp_path: Path) -> Iterator[Listener]:
    path = str(tmp_path / "notify")
    yield from _listener(path, path)


@pytest.fixture
def abstract_listener() -> Iterator[Listener]:
    name = f"pruner-test-{uuid.uuid4().hex}"
    yield from _listener("\0" + name, "@" + name)


@pytest.fixture(params=["path", "abstract"])
def listener(request: pytest.FixtureRequest) -> Listener:
    fixture = "path_listener" if request.param == "path" else "abstract_listener"
    result: Listener = request.getfixturevalue(fixture)
    return result


def test_ready_sends_ready(listener: Listener) -> None:
    assert Notifier(listener.address).ready()
    assert listener.received() == "READY=1"


def test_ready_with_status_sends_both_in_one_datagram(listener: Listener) -> None:
    Notifier(listener.address).ready("scheduler started; next pass 03:30")
    assert listener.received() == "READY=1\nSTATUS=scheduler started; next pass 03:30"


def test_status_sends_status(listener: Listener) -> None:
    Notifier(listener.address).status("last pass ok: 12 deleted")
    assert listener.received() == "STATUS=last pass ok: 12 deleted"


def test_status_flattens_newlines_so_no_other_assignment_slips_in(listener: Listener) -> None:
    Notifier(listener.address).status("failed:\nREADY=1\n  retry later")
    assert listener.received() == "STATUS=failed: READY=1 retry later"


def test_stopping_sends_stopping(listener: Listener) -> None:
    Notifier(listener.address).stopping("waiting for the pass in progress")
    assert listener.received() == "STOPPING=1\nSTATUS=waiting for the pass in progress"


def test_reloading_sends_reloading_with_the_monotonic_time(listener: Listener) -> None:
    assert Notifier(listener.address).reloading(123456789)
    assert listener.received() == "RELOADING=1\nMONOTONIC_USEC=123456789"


def test_watchdog_sends_watchdog(listener: Listener) -> None:
    assert Notifier(listener.address).watchdog()
    assert listener.received() == "WATCHDOG=1"


def test_notify_reads_notify_socket_from_the_environment(listener: Listener) -> None:
    assert notify("READY=1", {"NOTIFY_SOCKET": listener.address})
    assert listener.received() == "READY=1"


def test_notify_defaults_to_the_process_environment(
    path_listener: Listener, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", path_listener.address)
    assert notify("WATCHDOG=1")
    assert path_listener.received() == "WATCHDOG=1"


@pytest.mark.parametrize("environ", [{}, {"NOTIFY_SOCKET": ""}])
def test_from_environ_without_notify_socket_sends_nothing(environ: dict[str, str]) -> None:
    notifier = Notifier.from_environ(environ)
    assert notifier.address is None
    assert not notifier.ready()
    assert not notifier.watchdog()


def test_send_to_a_socket_nobody_listens_on_reports_false(tmp_path: Path) -> None:
    assert not Notifier(str(tmp_path / "gone")).ready()


def test_send_to_a_non_unix_address_sends_nothing(path_listener: Listener) -> None:
    assert not Notifier("vsock:2:1234").ready()
    assert not Notifier("relative/path").ready()
    assert path_listener.nothing_received()


def test_send_leaves_no_file_descriptor_open(path_listener: Listener) -> None:
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(5):
        Notifier(path_listener.address).watchdog()
        path_listener.received()
    assert len(os.listdir("/proc/self/fd")) == before
