"""The `oauth2` table of [imap] and [relay]: presets filled in, incomplete tables refused
with a reason, and the token store keeps files private."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from mailgate.config.imap import ImapSettings
from mailgate.config.oauth2 import OAuth2Settings
from mailgate.config.schema import RelaySettings
from mailgate.oauth2.store import Tokens, TokenStore

MS = "https://login.microsoftonline.com/contoso.example/oauth2/v2.0"


@pytest.mark.parametrize(
    ("table", "purpose", "endpoint", "scope"),
    [
        (
            {"provider": "microsoft", "tenant": "contoso.example"},
            "imap",
            f"{MS}/token",
            "https://outlook.office.com/IMAP.AccessAsUser.All offline_access",
        ),
        (
            {"provider": "microsoft", "tenant": "contoso.example"},
            "smtp",
            f"{MS}/token",
            "https://outlook.office.com/SMTP.Send offline_access",
        ),
        (
            {
                "provider": "microsoft",
                "tenant": "contoso.example",
                "grant": "client_credentials",
                "client_secret": {"env": "X"},
            },
            "imap",
            f"{MS}/token",
            "https://outlook.office365.com/.default",
        ),
        (
            {"provider": "google"},
            "smtp",
            "https://oauth2.googleapis.com/token",
            "https://mail.google.com/",
        ),
        (
            {"provider": "google", "scope": "custom"},
            "imap",
            "https://oauth2.googleapis.com/token",
            "custom",
        ),
    ],
)
def test_presets(table: dict[str, Any], purpose: str, endpoint: str, scope: str) -> None:
    s = OAuth2Settings.model_validate({**table, "client_id": "app", "purpose": purpose})
    assert (s.effective_token_endpoint, s.effective_scope) == (endpoint, scope)


@pytest.mark.parametrize(
    ("table", "reason"),
    [
        ({}, "give token_endpoint, or provider"),
        (
            {"provider": "google", "grant": "client_credentials", "client_secret": {"env": "X"}},
            "Google does not give Gmail access by client credentials",
        ),
        ({"provider": "microsoft", "grant": "client_credentials"}, "needs client_secret"),
        ({"token_endpoint": "http://127.0.0.1/t"}, "needs authorize_endpoint"),
        (
            {"token_endpoint": "http://127.0.0.1/t", "authorize_endpoint": "http://127.0.0.1/a"},
            "give scope",
        ),
    ],
)
def test_incomplete_tables_are_refused(table: dict[str, Any], reason: str) -> None:
    with pytest.raises(ValidationError, match=reason):
        OAuth2Settings.model_validate({**table, "client_id": "app"})


def test_sections_set_the_purpose_and_refuse_two_logins() -> None:
    table = {"provider": "microsoft", "client_id": "app"}
    imap = ImapSettings(host="h", user="u@x.example", oauth2=table)
    assert imap.oauth2 is not None and imap.oauth2.purpose == "imap" and imap.uses_oauth2
    relay = RelaySettings(host="h", username="u@x.example", oauth2=table)
    assert relay.oauth2 is not None and "SMTP.Send" in relay.oauth2.effective_scope
    with pytest.raises(ValidationError, match="give only one of password_env and oauth2|either"):
        ImapSettings(host="h", user="u", password_env="P", oauth2=table)
    with pytest.raises(ValidationError, match="give only one of oauth2_token_file and oauth2"):
        ImapSettings(host="h", user="u", oauth2_token_file="t", oauth2=table)
    with pytest.raises(ValidationError, match="oauth2 needs username"):
        RelaySettings(host="h", oauth2=table)
    with pytest.raises(ValidationError, match="either password or oauth2"):
        RelaySettings(host="h", username="u", password={"env": "P"}, oauth2=table)


def test_token_store_files_are_private_and_reprs_hold_no_token(tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "oauth2")
    tokens = Tokens("rt-secret", "at-secret", 12.0)
    store.save("imap-support", tokens)
    assert store.load("imap-support") == tokens
    assert os.stat(store.path("imap-support")).st_mode & 0o777 == 0o600
    assert os.stat(tmp_path / "oauth2").st_mode & 0o777 == 0o700
    assert "secret" not in repr(tokens)
    assert store.load("relay") == Tokens()
    with pytest.raises(ValueError, match="bad token key"):
        store.path("../etc")


def test_an_unreadable_token_file_is_an_oauth2_error_naming_the_file(tmp_path: Path) -> None:
    from mailgate.oauth2.client import TokenClient
    from mailgate.oauth2.endpoint import OAuth2Error

    store = TokenStore(tmp_path / "oauth2")
    store.save("relay", Tokens("rt", "at", 1.0))
    store.path("relay").write_text("{not json")
    settings = OAuth2Settings(provider="google", client_id="app")
    tokens = TokenClient(settings, tmp_path, store, "relay", authorize_hint="mailgate oauth2 x")
    with pytest.raises(OAuth2Error, match=r"token file .*relay.json: .*run `mailgate oauth2 x`"):
        tokens.access_token()
