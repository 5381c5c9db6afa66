"""`pruner check-config`: validate the config and print the resolved policies."""

from __future__ import annotations

import argparse

from pruner.actions.common import load_and_warn
from pruner.config import describe_config
from pruner.errors import EXIT_OK, NotAvailableError

__all__ = ["main"]


def main(args: argparse.Namespace) -> int:
    config = load_and_warn(args)
    print(describe_config(config))  # on stdout, warnings included
    if args.online:
        raise NotAvailableError("check-config --online: the API client is not available yet")
    return EXIT_OK
