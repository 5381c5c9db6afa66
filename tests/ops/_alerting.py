"""A pass against the simulator with alerting hooks (pings, webhooks) and a config for it."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pruner.config.load import parse_config
from pruner.config.schema import Config
from pruner.engine.results import PassResult
from pruner.passes.hooks import PassHooks
from pruner.passes.one_pass import run_pass
from pruner.sim import WRITE_TOKEN, Simulator
from pruner.vpsbg.client import ApiClient, build_session
from pruner.vpsbg.token import Secret

NOW = datetime(2026, 11, 27, 3, 30, tzinfo=UTC)


def alert_config(
    sim: Simulator,
    tmp_path: Path,
    *,
    safety: dict[str, Any] | None = None,
    policy: dict[str, Any] | None = None,
    **notify: Any,
) -> Config:
    """A real pass on `sim` (no caps unless `safety` sets them) with `notify` settings."""
    settings: dict[str, Any] = {
        "api": {"base_url": sim.base_url, "retries": 1, "backoff": "0.001s", "timeout": "5s"},
        "dry_run": False,
        "state_dir": str(tmp_path / "state"),
        "safety": {"max_delete_fraction": 1.0, "max_deletions_per_run": None, **(safety or {})},
        "policies": [{"name": "all", "keep_daily": 3, **(policy or {})}],
        "notify": {"timeout": "2s", **notify},
    }
    (tmp_path / "state").mkdir(exist_ok=True)
    return parse_config(json.dumps(settings), source="test.yaml")


def pass_with_hooks(
    config: Config, hooks: tuple[PassHooks, ...], *, token: str = WRITE_TOKEN, **options: Any
) -> PassResult:
    """One pass at NOW (not a dry run unless `options` say so) with `hooks` called."""
    session = build_session(config.api.concurrency)
    session.trust_env = False  # no proxy from the environment for 127.0.0.1
    options.setdefault("dry_run", False)
    try:
        with ApiClient.from_settings(config.api, Secret(token), session=session) as client:
            return run_pass(config, client=client, clock=lambda: NOW, hooks=hooks, **options)
    finally:
        session.close()
