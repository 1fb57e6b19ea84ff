"""The authorization code flow, done once by an admin (RFC 6749 §4.1 with PKCE, RFC 7636).

The URL is printed; the code comes back either to a listener on the loopback
`redirect_uri` (the browser runs on the same machine, or through an SSH tunnel) or as the
address the browser ended on, pasted by the admin.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import urllib.parse
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, HTTPServer

from mailgate.config.oauth2 import OAuth2Settings
from mailgate.oauth2.client import TokenClient
from mailgate.oauth2.endpoint import OAuth2Error, request_token
from mailgate.oauth2.store import Tokens


@dataclass(frozen=True)
class Request:
    url: str
    state: str
    verifier: str


def start(settings: OAuth2Settings, login_hint: str = "") -> Request:
    """The address the admin opens, with a fresh state and PKCE verifier."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    state = secrets.token_urlsafe(16)
    query = {
        "response_type": "code",
        "client_id": settings.client_id,
        "redirect_uri": settings.redirect_uri,
        "scope": settings.effective_scope,
        "state": state,
        "code_challenge": challenge.rstrip(b"=").decode(),
        "code_challenge_method": "S256",
    }
    if settings.provider == "google":  # Google gives a refresh token only when asked so
        query |= {"access_type": "offline", "prompt": "consent"}
    if login_hint:
        query["login_hint"] = login_hint
    endpoint = settings.effective_authorize_endpoint
    sep = "&" if "?" in endpoint else "?"
    return Request(f"{endpoint}{sep}{urllib.parse.urlencode(query)}", state, verifier)


def code_from(redirected: str, request: Request) -> str:
    """The code in the address the provider redirected to; OAuth2Error if refused or forged."""
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(redirected.strip()).query))
    if "error" in query:
        detail = query.get("error_description", "")
        raise OAuth2Error(f"authorization refused: {query['error']} {detail}".strip(), "denied")
    if query.get("state") != request.state:
        raise OAuth2Error("the answer's state does not match this request (an old or forged link)")
    if not query.get("code"):
        raise OAuth2Error("no code in that address")
    return query["code"]


class RedirectListener:
    """The loopback redirect_uri, bound at once (before the URL is shown); `wait()` for the
    browser's one visit and return its path + query."""

    def __init__(self, settings: OAuth2Settings):
        where = urllib.parse.urlsplit(settings.redirect_uri)
        self.uri = settings.redirect_uri
        self.got: list[str] = []
        got = self.got

        class Answer(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                got.append(self.path)
                body = b"mailgate: authorization received, you can close this window.\n"
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:  # the query holds the code
                pass

        self.server = HTTPServer((where.hostname or "127.0.0.1", where.port or 80), Answer)

    def wait(self, timeout: float) -> str:
        try:
            self.server.timeout = timeout
            self.server.handle_request()
        finally:
            self.server.server_close()
        if not self.got:
            raise OAuth2Error(f"no answer on {self.uri} within {timeout:g}s")
        return self.got[0]


def finish(tokens: TokenClient, request: Request, code: str) -> Tokens:
    """Exchange the code for tokens and store them; OAuth2Error if refused."""
    grant = request_token(
        tokens.settings,
        tokens.base,
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": tokens.settings.redirect_uri,
            "code_verifier": request.verifier,
        },
    )
    if not grant.refresh_token:
        raise OAuth2Error(
            "the provider returned no refresh token (Microsoft: add the offline_access scope)"
        )
    return tokens.store_grant(grant)
