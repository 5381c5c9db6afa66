"""SIGTERM and SIGINT reach a callback in a thread of its own, never as KeyboardInterrupt."""

from __future__ import annotations

import signal
import threading

from pruner.ops.signals import stop_on_signals

WAIT = 5.0  # seconds: a bound on waits for other threads, never reached when all is well


def test_stop_on_signals_restores_the_previous_handlers() -> None:
    before = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGINT)}
    calls: list[int] = []

    with stop_on_signals(calls.append):
        assert signal.getsignal(signal.SIGTERM) is not before[signal.SIGTERM]

    assert {signum: signal.getsignal(signum) for signum in before} == before
    assert signal.set_wakeup_fd(-1) == -1  # no wakeup fd left behind
    assert calls == []


def test_stop_on_signals_calls_back_from_another_thread() -> None:
    called = threading.Event()
    threads: list[str] = []

    def on_signal(signum: int) -> None:
        threads.append(threading.current_thread().name)
        called.set()

    with stop_on_signals(on_signal):
        signal.raise_signal(signal.SIGTERM)
        assert called.wait(WAIT)

    assert threads == ["pruner-signals"]


def test_stop_on_signals_a_second_sigint_is_a_call_not_a_keyboardinterrupt() -> None:
    calls: list[int] = []
    both = threading.Event()

    def on_signal(signum: int) -> None:
        calls.append(signum)
        if len(calls) == 2:
            both.set()

    with stop_on_signals(on_signal):
        signal.raise_signal(signal.SIGINT)
        signal.raise_signal(signal.SIGINT)
        assert both.wait(WAIT)

    assert calls == [signal.SIGINT, signal.SIGINT]


def test_stop_on_signals_sighup_calls_on_reload_not_on_stop() -> None:
    stops: list[int] = []
    reloads: list[tuple[int, str]] = []
    reloaded = threading.Event()

    def on_reload(signum: int) -> None:
        reloads.append((signum, threading.current_thread().name))
        reloaded.set()

    with stop_on_signals(stops.append, on_reload=on_reload):
        signal.raise_signal(signal.SIGHUP)
        assert reloaded.wait(WAIT)

    assert reloads == [(signal.SIGHUP, "pruner-signals")]
    assert stops == []


def test_stop_on_signals_without_on_reload_leaves_sighup_alone() -> None:
    before = signal.getsignal(signal.SIGHUP)

    with stop_on_signals(lambda _signum: None):
        assert signal.getsignal(signal.SIGHUP) is before

    assert signal.getsignal(signal.SIGHUP) is before
