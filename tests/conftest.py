"""Shared fixtures, and the hypothesis profiles.

Profiles: "ci" (derandomized, no deadline) by default and in CI; "dev" explores. Choose one with
HYPOTHESIS_PROFILE=dev (or ci).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

import pytest
import structlog
from hypothesis import HealthCheck, settings

from pruner.simulator import Fleet, Simulator

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
