"""Tell systemd how the daemon is doing: the sd_notify protocol, without libsystemd.

The protocol is one datagram of `KEY=value` lines to the AF_UNIX socket named in
$NOTIFY_SOCKET: a path, or an abstract name written with a leading `@`. Outside a
`Type=notify` unit the variable is unset and every message is a no-op, so the daemon can
notify unconditionally. A message that cannot be sent is reported (False), never raised:
systemd's own sd_notify behaves the same, and a daemon must not stop for it.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["NOTIFY_SOCKET", "Notifier", "notify"]

NOTIFY_SOCKET = "NOTIFY_SOCKET"


def notify(message: str, environ: Mapping[str, str] | None = None) -> bool:
    """Send `message` (e.g. "READY=1") to $NOTIFY_SOCKET; True when it was sent."""
    return Notifier.from_environ(os.environ if environ is None else environ).send(message)


@dataclass(frozen=True, slots=True)
class Notifier:
    """The daemon's messages to systemd; `address` None (not under systemd) sends nothing."""

    address: str | None

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Notifier:
        return cls(environ.get(NOTIFY_SOCKET) or None)

    def ready(self, status: str | None = None) -> bool:
        """Start-up is over: the scheduler runs."""
        return self.send(_message("READY=1", status))

    def status(self, text: str) -> bool:
        """One line for `systemctl status`, e.g. the last pass's outcome."""
        return self.send(_message(None, text))

    def reloading(self, monotonic_usec: int) -> bool:
        """A reload begins; `ready` ends it. MONOTONIC_USEC (CLOCK_MONOTONIC, in microseconds)
        is what Type=notify-reload (systemd 253) asks for; older systemd ignores it."""
        return self.send(f"RELOADING=1\nMONOTONIC_USEC={monotonic_usec}")

    def stopping(self, status: str | None = None) -> bool:
        return self.send(_message("STOPPING=1", status))

    def watchdog(self) -> bool:
        """Alive: resets the WatchdogSec= timer."""
        return self.send("WATCHDOG=1")

    def send(self, message: str) -> bool:
        target = _socket_address(self.address)
        if target is None:
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.connect(target)
                sock.sendall(message.encode("utf-8"))
        except OSError:
            return False
        return True


def _socket_address(address: str | None) -> str | None:
    """`@name` is Linux's abstract namespace (a leading NUL byte); other forms systemd may use
    (vsock:) are not AF_UNIX and are ignored."""
    if not address:
        return None
    if address.startswith("@"):
        return "\0" + address[1:]
    if address.startswith("/"):
        return address
    return None


def _message(assignment: str | None, status: str | None) -> str:
    """`assignment` and a STATUS= line; a newline in `status` would start another assignment,
    so its whitespace is flattened."""
    lines = [assignment] if assignment else []
    if status is not None:
        lines.append("STATUS=" + " ".join(status.split()))
    return "\n".join(lines)
