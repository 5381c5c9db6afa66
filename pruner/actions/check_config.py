"""`pruner check-config [--online]`: validate the config and print the resolved policies.

With --online, one authenticated request checks that the API answers and accepts the token
(exit 1 with the API's reason if not; exit 2 if no token is configured).
"""

from __future__ import annotations

import argparse
import os

from pruner.actions.common import load_and_warn
from pruner.api import ApiClient, load_token
from pruner.config import Config, describe_config
from pruner.errors import EXIT_OK
from pruner.logging import mask_secrets

__all__ = ["main"]


def main(args: argparse.Namespace) -> int:
    config = load_and_warn(args)
    print(describe_config(config))  # on stdout, warnings included
    if args.online:
        servers = _check_api(config)
        print(f"API OK: {config.api.base_url} answered, token accepted ({servers} servers)")
    return EXIT_OK


def _check_api(config: Config) -> int:
    """The number of servers the token can see; raises TokenMissing or the ApiError."""
    api = config.api
    token = load_token(api, os.environ)
    with (
        mask_secrets(token.reveal()),
        ApiClient(
            api.base_url,
            token,
            timeout=api.timeout.total_seconds(),
            retries=min(api.retries, 1),  # a check should answer quickly, not back off for long
            backoff=api.backoff.total_seconds(),
            concurrency=1,
        ) as client,
    ):
        return client.check()
