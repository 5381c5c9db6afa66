"""`--server ID|GLOB` and `--policy NAME`: the scope of a pass, from the command line.

`scope_of(args, config)` is all a command needs (`run`, `plan`; `apply` alike): it turns the
options `pruner.cli` adds into a Scope, or None for the whole account, and refuses a policy name
the config does not have before any request is made.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from pruner.engine.scope import Scope
from pruner.errors import UserError

if TYPE_CHECKING:
    from pruner.config.schema import Config

__all__ = ["scope_of"]


def scope_of(args: argparse.Namespace, config: Config) -> Scope | None:
    """The scope of `--server` (any number) and `--policy`; UserError (exit 2) for a policy
    the config does not have."""
    scope = Scope.of(args.servers or (), args.policy)
    if scope is None or scope.policy is None:
        return scope
    names = list(dict.fromkeys(policy.name for policy in config.policies))
    if scope.policy not in names:
        raise UserError(
            f"--policy {scope.policy}: the config has no such policy; its policies are: "
            f"{', '.join(names)}"
        )
    return scope
