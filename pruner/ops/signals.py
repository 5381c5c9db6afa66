"""SIGTERM and SIGINT as a request to stop, and SIGHUP as one to reload, each delivered to a
callback in a thread of its own.

A process-directed signal may land in any thread, and Python runs its handler in the main
thread only when that thread next runs bytecode: a main thread blocked in a long wait would not
see it for as long. A handler is no place to act either: it interrupts the main thread wherever
it is, perhaps holding a non-reentrant lock (the scheduler's, the logger's). So
`stop_on_signals` has the interpreter's C-level handler write the signal number to a pipe
(`signal.set_wakeup_fd`), which it does at once in whatever thread the signal landed in; a small
watcher thread reads the pipe and calls back from its own thread, where it may log and lock.

The Python-level handler does nothing, so no signal ever raises KeyboardInterrupt while inside:
the second Ctrl-C reaches the callback like the first, and the caller decides what it means.
A reload runs in the watcher thread too, so a stop that comes during one waits for it to end.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable, Iterator, Mapping

__all__ = ["RELOAD_SIGNAL", "STOP_SIGNALS", "stop_on_signals"]

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
RELOAD_SIGNAL = signal.SIGHUP

_Callback = Callable[[int], None]


@contextlib.contextmanager
def stop_on_signals(
    on_signal: _Callback,
    signals: tuple[signal.Signals, ...] = STOP_SIGNALS,
    *,
    on_reload: _Callback | None = None,
) -> Iterator[None]:
    """While inside, each of `signals` calls `on_signal(signum)` promptly from a watcher thread,
    whichever thread the signal landed in and whatever the main thread is blocked in; with
    `on_reload`, SIGHUP calls it the same way (without, SIGHUP keeps its handler).

    Call from the main thread. The previous handlers and wakeup fd are restored on exit.
    """
    callbacks: dict[int, _Callback] = dict.fromkeys(signals, on_signal)
    if on_reload is not None:
        callbacks[RELOAD_SIGNAL] = on_reload
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)  # set_wakeup_fd requires it: a handler must never block
    watcher = threading.Thread(target=_watch, args=(read_fd, callbacks), name="pruner-signals")
    previous_fd = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    watcher.start()
    previous = {signum: signal.signal(signum, _noted) for signum in callbacks}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        signal.set_wakeup_fd(previous_fd)
        os.write(write_fd, bytes([0]))  # 0 is no signal: the watcher's cue to finish
        watcher.join()
        os.close(read_fd)
        os.close(write_fd)


def _noted(_signum: int, _frame: object) -> None:
    """The Python-level handler: the wakeup fd carries the signal; here only the default
    action (terminate, KeyboardInterrupt) is replaced."""


def _watch(read_fd: int, callbacks: Mapping[int, _Callback]) -> None:
    while True:
        for signum in os.read(read_fd, 64):
            if signum == 0:
                return
            callback = callbacks.get(signum)
            if callback is not None:
                callback(signum)
