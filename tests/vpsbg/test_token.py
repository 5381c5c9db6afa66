"""load_token: where the API token is found, and a Secret that never shows it."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

import pytest
import requests
import responses
from structlog.testing import capture_logs

from pruner.vpsbg.errors import (
    ApiError,
    TokenMissing,
)
from pruner.vpsbg.token import Secret, load_token

from .conftest import BASE, TOKEN, api_settings, client


def test_load_token_prefers_token_file_then_credentials_then_env(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("from-file\n")
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "vpsbg-token").write_text("from-credentials")
    environ = {"VPSBG_API_TOKEN": "from-env", "CREDENTIALS_DIRECTORY": str(credentials)}

    from_file = load_token(api_settings(tmp_path, token_file), environ)
    from_credentials = load_token(api_settings(tmp_path), environ)
    from_env = load_token(api_settings(tmp_path), {"VPSBG_API_TOKEN": " from-env\n"})

    assert from_file.reveal() == "from-file"
    assert from_file.source == f"api.token_file {token_file}"
    assert from_credentials.reveal() == "from-credentials"
    assert from_credentials.source == (
        f"$CREDENTIALS_DIRECTORY/vpsbg-token ({credentials / 'vpsbg-token'})"
    )
    assert from_env.reveal() == "from-env"
    assert from_env.source == "$VPSBG_API_TOKEN"


def test_load_token_credentials_directory_without_the_file_falls_back_to_env(
    tmp_path: Path,
) -> None:
    environ = {"VPSBG_API_TOKEN": "from-env", "CREDENTIALS_DIRECTORY": str(tmp_path)}

    assert load_token(api_settings(tmp_path), environ).reveal() == "from-env"


def test_load_token_unreadable_credential_is_a_configuration_error(
    tmp_path: Path, deny_access: Callable[[Path], None]
) -> None:
    (tmp_path / "vpsbg-token").write_text("from-credentials")
    environ = {"VPSBG_API_TOKEN": "from-env", "CREDENTIALS_DIRECTORY": str(tmp_path)}
    deny_access(tmp_path)  # e.g. a credentials directory the service's user may not search

    with pytest.raises(TokenMissing) as caught:
        load_token(api_settings(tmp_path), environ)

    message = caught.value.message
    assert message.startswith(
        f"$CREDENTIALS_DIRECTORY/vpsbg-token ({tmp_path / 'vpsbg-token'}) cannot be read "
        f"(permission denied): the user pruner runs as (uid {os.getuid()}) cannot read it;"
    )
    assert "LoadCredential=" in message
    assert "from-" not in message


def test_load_token_credential_that_is_a_directory_is_a_configuration_error(
    tmp_path: Path,
) -> None:
    (tmp_path / "vpsbg-token").mkdir()  # a secret mounted one level too deep
    environ = {"VPSBG_API_TOKEN": "from-env", "CREDENTIALS_DIRECTORY": str(tmp_path)}

    with pytest.raises(TokenMissing, match=r"vpsbg-token\) cannot be read \(Is a directory\)"):
        load_token(api_settings(tmp_path), environ)


def test_load_token_missing_says_what_to_set(tmp_path: Path) -> None:
    with pytest.raises(TokenMissing) as caught:
        load_token(api_settings(tmp_path), {"VPSBG_API_TOKEN": "  "})

    message = str(caught.value)
    assert message.startswith("no VPSBG API token: $VPSBG_API_TOKEN is not set or empty.")
    assert "api.token_file" in message
    assert "LoadCredential=vpsbg-token" in message


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "does not exist"), ("\n", "is empty"), ("abc def", "whitespace")],
)
def test_load_token_unusable_token_file(tmp_path: Path, content: str | None, message: str) -> None:
    token_file = tmp_path / "token"
    if content is not None:
        token_file.write_text(content)

    with pytest.raises(TokenMissing, match=f"api.token_file {token_file} .*{message}") as caught:
        load_token(api_settings(tmp_path, token_file), {"VPSBG_API_TOKEN": "from-env"})

    assert "abc" not in str(caught.value)


def test_load_token_refuses_a_token_a_header_cannot_carry(tmp_path: Path) -> None:
    with pytest.raises(TokenMissing, match="control") as caught:
        load_token(api_settings(tmp_path), {"VPSBG_API_TOKEN": "abc\x00def"})

    assert "abc" not in str(caught.value)


def test_secret_hides_its_value() -> None:
    secret = Secret(TOKEN)

    assert repr(secret) == "Secret('***')"
    assert str(secret) == "Secret('***')"
    assert f"{secret}" == "Secret('***')"
    assert secret.reveal() == TOKEN


def echoing(status: int) -> Callable[[responses.RequestsMock], object]:
    """An error answer that quotes the token back, in its message and its body."""
    return lambda rsps: rsps.add(
        responses.GET,
        f"{BASE}/backups",
        status=status,
        json={"message": f"token {TOKEN} says no", "token": TOKEN},
        headers={"Retry-After": "1"},
    )


FAULTS: dict[str, Callable[[responses.RequestsMock], object]] = {
    **{f"HTTP {s}": echoing(s) for s in (400, 401, 403, 404, 422, 423, 429, 500, 503)},
    "garbage": lambda rsps: rsps.add(
        responses.GET, f"{BASE}/backups", body=f"<html>{TOKEN}</html>"
    ),
    "connection": lambda rsps: rsps.add(
        responses.GET, f"{BASE}/backups", body=requests.ConnectionError(f"reset ({TOKEN})")
    ),
    "odd error": lambda rsps: rsps.add(
        responses.GET, f"{BASE}/backups", body=requests.RequestException(f"odd {TOKEN}")
    ),
}


@pytest.mark.parametrize("fault", FAULTS.values(), ids=FAULTS.keys())
def test_token_never_shows_in_errors_outcomes_or_logs(
    rsps: responses.RequestsMock,
    caplog: pytest.LogCaptureFixture,
    fault: Callable[[responses.RequestsMock], object],
) -> None:
    fault(rsps)
    rsps.add(responses.DELETE, f"{BASE}/backups/1", status=422, json={"message": f"no, {TOKEN}"})
    api = client()
    shown: list[str] = [repr(api)]

    with caplog.at_level(logging.DEBUG), capture_logs() as logs:
        try:
            api.list_items("backups")
        except ApiError as error:
            shown += [str(error), repr(error), repr(error.args)]
        outcome = api.delete("backups", 1)
        shown += [repr(outcome), outcome.message]

    shown += [repr(logs), caplog.text]
    shown += [call.request.url or "" for call in rsps.calls]
    assert len(shown) > 5
    assert not [text for text in shown if TOKEN in text]
