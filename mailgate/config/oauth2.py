"""The `oauth2` table of `[imap]` and `[relay]`: how mailgate gets its own access tokens.

Either a refresh token obtained once by `mailgate oauth2 authorize QUEUE` (authorization
code flow, delegated access to one mailbox) or client credentials (app-only access).
`provider = "microsoft"` / `"google"` fill in endpoints and scopes (PRESETS, docs/imap.md).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from mailgate.config.base import NotBlank, Strict
from mailgate.config.secrets import SecretRef

Purpose = Literal["imap", "smtp"]
Grant = Literal["authorization_code", "client_credentials"]

MICROSOFT = "https://login.microsoftonline.com/{tenant}/oauth2/v2.0"
OUTLOOK = "https://outlook.office.com"
# provider -> endpoints and default scopes per (purpose, grant); {tenant} is filled in
PRESETS: dict[str, dict[str, str]] = {
    "microsoft": {
        "authorize_endpoint": MICROSOFT + "/authorize",
        "token_endpoint": MICROSOFT + "/token",
        "imap.authorization_code": OUTLOOK + "/IMAP.AccessAsUser.All offline_access",
        "smtp.authorization_code": OUTLOOK + "/SMTP.Send offline_access",
        "imap.client_credentials": "https://outlook.office365.com/.default",
        "smtp.client_credentials": "https://outlook.office365.com/.default",
    },
    "google": {
        "authorize_endpoint": "https://accounts.google.com/o/oauth2/v2/auth",
        "token_endpoint": "https://oauth2.googleapis.com/token",
        "imap.authorization_code": "https://mail.google.com/",
        "smtp.authorization_code": "https://mail.google.com/",
    },
}


class OAuth2Settings(Strict):
    """One OAuth2 client. `purpose` is set by the section that holds the table."""

    provider: Literal["microsoft", "google"] | None = None
    tenant: str = "common"  # Microsoft: the directory (tenant id or domain)
    grant: Grant = "authorization_code"
    authorize_endpoint: str = ""
    token_endpoint: str = ""
    client_id: NotBlank
    client_secret: SecretRef | None = None  # none: a public client (PKCE only)
    scope: str = ""
    redirect_uri: str = "http://127.0.0.1:8400/"  # where `mailgate oauth2 authorize` listens
    mechanism: Literal["auto", "xoauth2", "oauthbearer"] = "auto"
    refresh_margin_seconds: Annotated[float, Field(ge=0, le=3600)] = 300.0
    timeout_seconds: Annotated[float, Field(gt=0, le=600)] = 30.0
    purpose: Purpose = "imap"

    @model_validator(mode="after")
    def _complete(self) -> OAuth2Settings:
        if not self.effective_token_endpoint:
            raise ValueError('give token_endpoint, or provider = "microsoft" or "google"')
        if self.grant == "client_credentials":
            if self.provider == "google":
                raise ValueError(
                    "Google does not give Gmail access by client credentials; use "
                    'grant = "authorization_code" (mailgate oauth2 authorize)'
                )
            if self.client_secret is None:
                raise ValueError('grant = "client_credentials" needs client_secret')
        elif not self.effective_authorize_endpoint:
            raise ValueError("the authorization code grant needs authorize_endpoint (or provider)")
        if not self.effective_scope:
            raise ValueError("give scope (no preset for this provider, grant and use)")
        return self

    def _preset(self, key: str) -> str:
        preset = PRESETS.get(self.provider or "", {})
        return preset.get(key, "").replace("{tenant}", self.tenant)

    @property
    def effective_token_endpoint(self) -> str:
        return self.token_endpoint or self._preset("token_endpoint")

    @property
    def effective_authorize_endpoint(self) -> str:
        return self.authorize_endpoint or self._preset("authorize_endpoint")

    @property
    def effective_scope(self) -> str:
        return self.scope or self._preset(f"{self.purpose}.{self.grant}")
