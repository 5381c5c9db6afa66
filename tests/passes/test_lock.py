from __future__ import annotations

import errno
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pruner.errors import EXIT_LOCKED, EXIT_USAGE
from pruner.passes.lock import LOCK_FILE, LockHeld, PassLock, StateDirError


def test_pass_lock_refuses_a_second_holder_naming_the_first(tmp_path: Path) -> None:
    with PassLock(tmp_path), pytest.raises(LockHeld) as held:
        PassLock(tmp_path).__enter__()  # another open file description: flock conflicts
    message = str(held.value)
    assert message == (
        f"another pruner pass holds the lock on {tmp_path / LOCK_FILE} "
        f"(pid {os.getpid()}): try again later"
    )
    assert held.value.exit_code == EXIT_LOCKED == 75


def test_pass_lock_is_free_again_after_the_holder_leaves(tmp_path: Path) -> None:
    with PassLock(tmp_path):
        pass
    with PassLock(tmp_path) as lock:
        assert lock.path.read_text(encoding="ascii") == f"{os.getpid()}\n"
    assert lock.path.read_text(encoding="ascii") == ""  # no pid of a pass that is gone


def test_pass_lock_holds_against_another_process(tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import sys
        from pathlib import Path
        from pruner.passes.lock import LockHeld, PassLock
        try:
            with PassLock(Path({str(tmp_path)!r})):
                sys.exit(0)
        except LockHeld as error:
            print(error)
            sys.exit(error.exit_code)
        """
    )
    with PassLock(tmp_path):
        held = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, check=False
        )
    free = subprocess.run([sys.executable, "-c", script], capture_output=True, check=False)
    assert held.returncode == 75, held.stderr
    assert f"(pid {os.getpid()})" in held.stdout
    assert free.returncode == 0


def test_pass_lock_creates_a_private_state_dir(tmp_path: Path) -> None:
    state_dir = tmp_path / "var" / "lib" / "pruner"
    with PassLock(state_dir):
        assert (state_dir / LOCK_FILE).exists()
    assert stat.S_IMODE(state_dir.stat().st_mode) == 0o700


def test_pass_lock_says_when_the_state_dir_cannot_be_made(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("", encoding="utf-8")
    with pytest.raises(StateDirError, match=r"state_dir .*file/state: cannot create") as error:
        PassLock(blocker / "state").__enter__()
    assert error.value.exit_code == EXIT_USAGE


def test_pass_lock_that_cannot_write_its_pid_releases_the_lock_and_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full_disk(fd: int, data: bytes, offset: int) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with monkeypatch.context() as patched:
        patched.setattr(os, "pwrite", full_disk)
        with pytest.raises(StateDirError) as error:
            PassLock(tmp_path).__enter__()

    assert str(error.value) == (
        f"state_dir {tmp_path}: cannot write the lock file {tmp_path / LOCK_FILE} "
        "(No space left on device): free space in state_dir or make it writable; "
        "nothing was done, the next pass tries again"
    )
    assert error.value.exit_code == EXIT_USAGE
    with PassLock(tmp_path) as lock:  # the failed pass left the lock free
        assert lock.path.read_text(encoding="ascii") == f"{os.getpid()}\n"


def test_pass_lock_that_cannot_clear_its_pid_still_ends_the_pass_and_releases_the_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(fd: int, length: int) -> None:
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    lock = PassLock(tmp_path)
    with lock:
        monkeypatch.setattr(os, "ftruncate", broken)
    monkeypatch.undo()

    with PassLock(tmp_path):
        pass


def test_the_lock_file_keeps_its_documented_name() -> None:
    # Operators find it by name (the README's state_dir list); a rename would let an old and a
    # new version of pruner run passes side by side in one state_dir.
    assert LOCK_FILE == "pruner.lock"
