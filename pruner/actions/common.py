"""What the actions share: finding the config, logging its warnings."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pruner.config.load import Config

__all__ = ["DEFAULT_CONFIG", "config_path", "load_and_warn"]

DEFAULT_CONFIG = Path("/etc/pruner/config.yaml")


def config_path(args: argparse.Namespace) -> Path:
    """--config, else $PRUNER_CONFIG, else /etc/pruner/config.yaml."""
    if args.config is not None:
        return Path(args.config)
    from_environment = os.environ.get("PRUNER_CONFIG")
    return Path(from_environment) if from_environment else DEFAULT_CONFIG


def load_and_warn(args: argparse.Namespace) -> Config:
    """Load the config (ConfigError on any problem) and log its warnings."""
    # Imported here: `pruner health` uses config_path and must not load pydantic and structlog.
    import structlog  # noqa: PLC0415

    from pruner.config.load import load_config  # noqa: PLC0415

    config = load_config(config_path(args))
    log = structlog.get_logger("pruner")
    for warning in config.warnings:
        log.warning("config.warning", message=warning)
    return config
