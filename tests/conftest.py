"""Shared fixtures, and the hypothesis profiles.

Profiles: "ci" (derandomized, no deadline) by default and in CI; "dev" explores. Choose one with
HYPOTHESIS_PROFILE=dev (or ci).
"""

from __future__ import annotations

import errno
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from hypothesis import HealthCheck, settings

from pruner.sim import Fleet, Simulator

settings.register_profile(
    "ci",
    deadline=None,
    derandomize=True,
    max_examples=100,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "dev",
    deadline=None,
    max_examples=1000,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

_E2E = Path(__file__).parent / "e2e"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test under tests/e2e/ is marked `e2e`, so `pytest -m "not e2e"` runs the fast rest."""
    for item in items:
        if _E2E in item.path.parents:
            item.add_marker(pytest.mark.e2e)


@pytest.fixture
def sim(fleet: Fleet) -> Iterator[Simulator]:
    """A simulator on 127.0.0.1 serving the module's `fleet`; fails the test on its own errors."""
    with Simulator(fleet) as simulator:
        yield simulator
    assert simulator.errors == []


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """Commands point logging at the captured stderr; leave nothing behind for other tests."""
    yield
    root = logging.getLogger()
    for handler in [h for h in root.handlers if h.get_name() == "pruner"]:
        root.removeHandler(handler)
    structlog.reset_defaults()


@pytest.fixture
def deny_access(monkeypatch: pytest.MonkeyPatch) -> Callable[[Path], None]:
    """`deny_access(directory)`: every pathlib access under `directory` fails with EACCES, as for
    a user who may not search it. Tests run as root, which file modes do not stop."""

    def deny(directory: Path) -> None:
        def guarded(original: Callable[..., Any]) -> Callable[..., Any]:
            def method(self: Path, *args: Any, **kwargs: Any) -> Any:
                if self == directory or directory in self.parents:
                    raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(self))
                return original(self, *args, **kwargs)

            return method

        for name in ("stat", "open", "read_text", "read_bytes"):
            monkeypatch.setattr(Path, name, guarded(getattr(Path, name)))

    return deny
