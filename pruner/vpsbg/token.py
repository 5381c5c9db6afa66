"""The API token: where it is found (a file, a systemd credential, the environment), and a
`Secret` that never shows it."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from pruner.config.schema import ApiSettings
from pruner.vpsbg.errors import TokenMissing

__all__ = ["CREDENTIAL_NAME", "Secret", "load_token"]

CREDENTIAL_NAME = "vpsbg-token"  # systemd LoadCredential= name read from $CREDENTIALS_DIRECTORY


class Secret:
    """A token that does not show itself: repr and str are `Secret('***')`; `reveal()` gives it.

    `source` says where it came from ("$VPSBG_API_TOKEN", "file /etc/pruner/token"), for messages.
    """

    __slots__ = ("_value", "source")

    def __init__(self, value: str, source: str = "the configured API token") -> None:
        self._value = value
        self.source = source

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__


def load_token(api: ApiSettings, environ: Mapping[str, str]) -> Secret:
    """The API token: from `api.token_file`, else `$CREDENTIALS_DIRECTORY/vpsbg-token` when that
    file exists (systemd credentials; the image points it at /run/secrets), else the
    environment variable `api.token_env`. `Secret.source` names the one used.

    Raises TokenMissing (a configuration error) saying what to fix when none gives a usable
    token, or when a file that should hold it cannot be read.
    """
    if api.token_file is not None:
        return _token_from_file(api.token_file, f"api.token_file {api.token_file}")
    credentials = environ.get("CREDENTIALS_DIRECTORY")
    if credentials:
        path = Path(credentials) / CREDENTIAL_NAME
        try:
            return _token_from_file(path, f"$CREDENTIALS_DIRECTORY/{CREDENTIAL_NAME} ({path})")
        except _NoTokenFile:
            pass  # no credential of that name: the environment variable may hold it
    source = f"${api.token_env}"
    value = environ.get(api.token_env, "").strip()
    if not value:
        raise TokenMissing(
            f"no VPSBG API token: {source} is not set or empty. Set {source} to an API key "
            "(a Write key to delete; a Read key is enough for `pruner plan`), or set "
            f"api.token_file to a file holding it, or pass a systemd credential named "
            f"{CREDENTIAL_NAME} (LoadCredential={CREDENTIAL_NAME}:/path/to/token)"
        )
    return _checked_token(value, source)


class _NoTokenFile(TokenMissing):
    """The file that should hold the token does not exist."""


def _token_from_file(path: Path, source: str) -> Secret:
    """The token in `path`, read without a check first: a check fails for the same reasons as
    the read (a directory the user may not search), and its answer may change before it."""
    try:
        value = path.read_text(encoding="utf-8").strip()
    except (FileNotFoundError, NotADirectoryError):
        raise _NoTokenFile(
            f"{source} does not exist: create it holding the API token, or remove the setting"
        ) from None
    except PermissionError:
        raise TokenMissing(
            f"{source} cannot be read (permission denied): the user pruner runs as "
            f"(uid {os.getuid()}) cannot read it; check LoadCredential= under systemd, or the "
            "mode and owner of the file (or of the secret's mount) and of its directories"
        ) from None
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) else "not UTF-8 text"
        raise TokenMissing(
            f"{source} cannot be read ({reason}): put only the API token in it"
        ) from None
    if not value:
        raise TokenMissing(f"{source} is empty: put the API token in it")
    return _checked_token(value, source)


def _checked_token(value: str, source: str) -> Secret:
    # An HTTP header cannot carry these, and requests would quote the header (the token) in its
    # error: refuse early, without showing the value.
    if not value.isascii() or not value.isprintable() or any(c.isspace() for c in value):
        raise TokenMissing(
            f"{source} holds whitespace, control or non-ASCII characters inside the token: "
            "put only the API token in it"
        )
    return Secret(value, source)
