"""One POST to a token endpoint (RFC 6749 §4.1.3, §4.4, §6) with the stdlib; errors worded
for an administrator, never carrying a token."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from mailgate.config.oauth2 import OAuth2Settings
from mailgate.config.secrets import SecretError


class OAuth2Error(Exception):
    """The token endpoint refused or could not be reached. `error` is the RFC 6749 code
    (``invalid_grant``: the refresh token was revoked or expired) or ``""``."""

    def __init__(self, message: str, error: str = ""):
        super().__init__(message)
        self.error = error


@dataclass(frozen=True)
class Grant:
    access_token: str
    expires_in: float
    refresh_token: str  # "" when the endpoint did not rotate it

    def __repr__(self) -> str:
        return f"Grant(expires_in={self.expires_in})"


def request_token(settings: OAuth2Settings, base: Path, form: dict[str, str]) -> Grant:
    """POST `form` (+ client id and secret) to the token endpoint; OAuth2Error if refused."""
    body = {**form, "client_id": settings.client_id}
    if settings.client_secret is not None:
        key = f"oauth2.client_secret.{settings.client_secret.kind}"
        try:
            body["client_secret"] = settings.client_secret.read(base, key)
        except SecretError as e:
            raise OAuth2Error(str(e)) from e
    url = settings.effective_token_endpoint
    req = urllib.request.Request(
        url,
        data=urllib.parse.urlencode(body).encode(),
        headers={"Accept": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(req, timeout=settings.timeout_seconds) as resp:
            answer = json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as e:
        raise _refused(url, e) from None
    except (urllib.error.URLError, OSError, ValueError) as e:
        raise OAuth2Error(f"token endpoint {url} unreachable: {getattr(e, 'reason', e)}") from None
    token = answer.get("access_token")
    if not isinstance(token, str) or not token:
        raise OAuth2Error(f"token endpoint {url} answered without an access_token")
    return Grant(token, float(answer.get("expires_in") or 3600), answer.get("refresh_token") or "")


def _refused(url: str, e: urllib.error.HTTPError) -> OAuth2Error:
    try:
        answer = json.loads(e.read() or b"{}")
    except ValueError:
        answer = {}
    error = str(answer.get("error", "")) if isinstance(answer, dict) else ""
    described = str(answer.get("error_description", ""))[:300] if error else ""
    text = f"{error}: {described}" if described else error or f"HTTP {e.code}"
    return OAuth2Error(f"token endpoint {url} refused: {text}", error)
