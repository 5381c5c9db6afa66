"""`pruner check-config [--online]`: validate the config, check what a pass needs before its
first request, and print the resolved policies.

Exit 2, with every problem and its fix at once, when the config is invalid, no token can be
read, or state_dir cannot be created or written. The check creates nothing: run as another user
(root, say), it must not leave behind a state_dir that the service's user cannot write. With
--online, one authenticated request checks that the API answers and accepts the token (exit 1
with the API's reason if not).
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from pruner.actions.common import load_and_warn
from pruner.config.load import Config, describe_config
from pruner.errors import EXIT_OK, UserError
from pruner.passes.audit import AUDIT_FILE
from pruner.passes.lock import LOCK_FILE, StateDirError
from pruner.vpsbg.client import ApiClient
from pruner.vpsbg.errors import TokenMissing
from pruner.vpsbg.redaction import mask_secrets
from pruner.vpsbg.token import Secret, load_token

__all__ = ["main"]

_REWRITTEN_IN_PLACE = (LOCK_FILE, AUDIT_FILE)  # other state files are replaced, not rewritten


def main(args: argparse.Namespace) -> int:
    config = load_and_warn(args)
    token, state, problems = _preflight(config)
    print(describe_config(config, token.source if token is not None else None))  # on stdout
    if token is None or state is None:
        raise UserError(*problems)
    print(f"preflight: token found in {token.source}; state_dir {config.state_dir} {state}")
    if args.online:
        servers = _check_api(config, token)
        print(f"API OK: {config.api.base_url} answered, token accepted ({servers} servers)")
    return EXIT_OK


def _preflight(config: Config) -> tuple[Secret | None, str | None, list[str]]:
    """The token, how state_dir stands, and why either is unusable (all problems, not the
    first): what `run` checks before its first request."""
    problems: list[str] = []
    token = state = None
    try:
        token = load_token(config.api, os.environ)
    except TokenMissing as error:
        problems.append(error.message)
    try:
        state = _check_state_dir(config.state_dir)
    except StateDirError as error:
        problems.extend(error.lines)
    return token, state, problems


def _check_state_dir(state_dir: Path) -> str:
    """How a pass would find state_dir: "is writable" or "can be created". Raises StateDirError
    when a pass run as this check's user could not create or write it."""
    try:
        existing = state_dir
        while not existing.exists():
            existing = existing.parent
        if existing != state_dir:
            if not existing.is_dir():
                raise _unusable(state_dir, f"cannot be created: {existing} is not a directory")
            if not os.access(existing, os.W_OK | os.X_OK):
                what = f"cannot be created: {existing} is not writable{_by_uid()}"
                raise _unusable(state_dir, what)
            return "can be created"
        if not state_dir.is_dir():
            raise _unusable(state_dir, "is not a directory")
        fd, probe = tempfile.mkstemp(dir=state_dir, prefix=".check-config.", suffix=".tmp")
        os.close(fd)
        os.unlink(probe)
        for name in _REWRITTEN_IN_PLACE:
            path = state_dir / name
            if path.exists() and not os.access(path, os.R_OK | os.W_OK):
                raise _unusable(state_dir, f"{path} cannot be written{_by_uid()}")
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise _unusable(state_dir, f"cannot be written{_by_uid()} ({reason})") from None
    return "is writable"


def _by_uid() -> str:
    return f" by uid {os.getuid()}"  # the check's user: the service's may be another


def _unusable(state_dir: Path, what: str) -> StateDirError:
    return StateDirError(
        f"state_dir {state_dir}: {what}: make it a directory that the user "
        "pruner runs as can write (StateDirectory= under systemd, a writable volume in a "
        "container), or set state_dir in the config"
    )


def _check_api(config: Config, token: Secret) -> int:
    """The number of servers the token can see; raises the ApiError."""
    api = config.api
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
