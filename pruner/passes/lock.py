"""One pass at a time per state_dir: a timer run and a daemon pass never overlap.

The lock is `flock` on `state_dir/pruner.lock`: the kernel releases it when the holder exits,
however it exits, so a crash never leaves a stale lock behind. The file keeps the holder's pid
for the message a second pass shows; it is never deleted (deleting a lock file lets two passes
each lock a different file).
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType

from pruner.errors import EXIT_LOCKED, EXIT_USAGE, UserError

__all__ = ["LOCK_FILE", "LockHeld", "PassLock", "StateDirError"]

LOCK_FILE = "pruner.lock"


class LockHeld(UserError):
    """Another pass holds the lock on this state_dir (exit 75: try again later)."""

    exit_code = EXIT_LOCKED


class StateDirError(UserError):
    """state_dir cannot be created or written: a config problem, found before any API call."""

    exit_code = EXIT_USAGE


class PassLock:
    """`with PassLock(state_dir):` holds the pass lock, or raises LockHeld at once (no waiting)."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.path = state_dir / LOCK_FILE
        self._fd: int | None = None

    def __enter__(self) -> PassLock:
        fd = self._open()
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _recorded_pid(fd)
            os.close(fd)
            pid = f"pid {holder}" if holder is not None else "no pid recorded"
            raise LockHeld(
                f"another pruner pass holds the lock on {self.path} ({pid}): try again later"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except OSError as error:  # a full disk: closing releases the flock for the next pass
            os.close(fd)
            raise self._unwritable(error) from None
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            os.ftruncate(fd, 0)  # still locked: nobody reads a pid that is gone
        except OSError:
            pass  # a stale pid only shows in a later "lock held" message; the pass's end matters
        finally:
            os.close(fd)  # closing the last descriptor releases the flock

    def _open(self) -> int:
        try:
            self.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            return os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as error:
            reason = error.strerror or type(error).__name__
            raise StateDirError(
                f"state_dir {self.state_dir}: cannot create the lock file {self.path} "
                f"({reason}): create the directory writable by the user pruner runs as, "
                "or set state_dir in the config"
            ) from None

    def _unwritable(self, error: OSError) -> StateDirError:
        reason = error.strerror or type(error).__name__
        return StateDirError(
            f"state_dir {self.state_dir}: cannot write the lock file {self.path} ({reason}): "
            "free space in state_dir or make it writable; nothing was done, the next pass "
            "tries again"
        )


def _recorded_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None
