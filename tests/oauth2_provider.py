"""A local OAuth2 provider for tests: authorize, token and RFC 7662 introspection endpoints
on loopback; an SMTP sink that takes XOAUTH2 / OAUTHBEARER checked against it; Dovecot's
oauth2 passdb pointed at it.

Access tokens live `expires_in` seconds (server-side clock), refresh tokens rotate at each
use (the old one is dead at once), and the test can revoke, expire or fail on demand.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

from tests.servers import Dovecot, SmtpSink

CLIENT_ID = "mailgate-test"
CLIENT_SECRET = "client-secret-s3cr3t-value"


@dataclass
class Provider:
    """State of the fake identity provider; the HTTP handler reads and changes it."""

    expires_in: int = 3600
    app_user: str = "support@example.test"  # whose mailbox client-credentials tokens open
    access: dict[str, tuple[str, float]] = field(default_factory=dict)  # token -> (user, until)
    refresh: dict[str, str] = field(default_factory=dict)  # live refresh token -> user
    codes: dict[str, tuple[str, str, str]] = field(default_factory=dict)  # code -> user, ...
    grants: list[str] = field(default_factory=list)  # grant_type of every token request
    failures: list[tuple[int, str]] = field(default_factory=list)  # next answers to force
    issued: list[str] = field(default_factory=list)  # every token handed out (log scans)
    authorize_user: str = "support@example.test"
    lock: threading.Lock = field(default_factory=threading.Lock)

    def _new(self, prefix: str) -> str:
        token = f"{prefix}-{secrets.token_urlsafe(18)}"
        self.issued.append(token)
        return token

    def seed(self, user: str) -> str:
        """A live refresh token for `user` (as if someone had authorized once)."""
        with self.lock:
            token = self._new("rt")
            self.refresh[token] = user
            return token

    def user_of(self, access_token: str) -> str | None:
        with self.lock:
            user, until = self.access.get(access_token, ("", 0.0))
            return user if time.time() < until else None

    def expire_access_tokens(self) -> None:
        """Every access token handed out so far stops working (early expiry, revocation)."""
        with self.lock:
            self.access.clear()

    def revoke_refresh_tokens(self) -> None:
        with self.lock:
            self.refresh.clear()

    def fail_next(self, status: int = 503, error: str = "temporarily_unavailable") -> None:
        with self.lock:
            self.failures.append((status, error))

    def token_request(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        with self.lock:
            grant = form.get("grant_type", "")
            self.grants.append(grant)
            if self.failures:
                status, error = self.failures.pop(0)
                return status, {"error": error, "error_description": "told to fail"}
            if form.get("client_id") != CLIENT_ID:
                return 401, {"error": "invalid_client"}
            user = self._grant_user(grant, form)
            if user is None:
                return 400, {"error": "invalid_grant", "error_description": "AADSTS70008: expired"}
            access = self._new("at")
            self.access[access] = (user, time.time() + self.expires_in)
            answer = {"access_token": access, "token_type": "Bearer", "expires_in": self.expires_in}
            if grant != "client_credentials":
                rotated = self._new("rt")
                self.refresh[rotated] = user
                answer["refresh_token"] = rotated
            return 200, answer

    def _grant_user(self, grant: str, form: dict[str, str]) -> str | None:
        if grant == "client_credentials":
            return self.app_user if form.get("client_secret") == CLIENT_SECRET else None
        if grant == "refresh_token":
            return self.refresh.pop(form.get("refresh_token", ""), None)  # rotation
        if grant == "authorization_code":
            user, challenge, redirect = self.codes.pop(form.get("code", ""), ("", "", ""))
            verifier = form.get("code_verifier", "")
            digest = hashlib.sha256(verifier.encode()).digest()
            ok = base64.urlsafe_b64encode(digest).rstrip(b"=").decode() == challenge
            return user if user and ok and form.get("redirect_uri") == redirect else None
        return None

    def authorize(self, query: dict[str, str]) -> str:
        """The user said yes: where the browser is sent next."""
        with self.lock:
            code = self._new("code")
            self.codes[code] = (
                self.authorize_user,
                query.get("code_challenge", ""),
                query.get("redirect_uri", ""),
            )
        sep = "&" if "?" in query["redirect_uri"] else "?"
        params = urllib.parse.urlencode({"code": code, "state": query.get("state", "")})
        return f"{query['redirect_uri']}{sep}{params}"


class _Handler(BaseHTTPRequestHandler):
    provider: Provider

    def _send(self, status: int, answer: dict[str, Any]) -> None:
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        if url.path != "/authorize" or "redirect_uri" not in query:
            return self._send(404, {})
        self.send_response(302)
        self.send_header("Location", self.provider.authorize(query))
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
        form = dict(urllib.parse.parse_qsl(body))
        if self.path == "/token":
            return self._send(*self.provider.token_request(form))
        if self.path == "/introspect":
            user = self.provider.user_of(form.get("token", ""))
            return self._send(
                200, {"active": True, "username": user} if user else {"active": False}
            )
        self._send(404, {})

    def log_message(self, *args: Any) -> None:
        pass


class ProviderServer:
    """The endpoints on 127.0.0.1, served from a thread until stop()."""

    def __init__(self) -> None:
        self.provider = Provider()
        handler = type("Handler", (_Handler,), {"provider": self.provider})
        self.http = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.http.server_port}"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def table(self, **extra: str | int) -> str:
        """The TOML inline table of an oauth2 client of this provider."""
        items = {
            "token_endpoint": f"{self.url}/token",
            "authorize_endpoint": f"{self.url}/authorize",
            "client_id": CLIENT_ID,
            "scope": "mail",
            **extra,
        }
        return (
            "{ "
            + ", ".join(
                f"{k} = {v if str(v).startswith('{') else json.dumps(v)}" for k, v in items.items()
            )
            + " }"
        )

    def stop(self) -> None:
        self.http.shutdown()
        self.http.server_close()


def enable_oauth2(d: Dovecot, introspection_url: str) -> None:
    """Make `d` accept XOAUTH2 and OAUTHBEARER tokens checked at `introspection_url`."""
    ext = Path(d.dir) / "oauth2.conf.ext"
    ext.write_text(
        f"introspection_url = {introspection_url}\n"
        "introspection_mode = post\nusername_attribute = username\n"
        "active_attribute = active\nactive_value = true\n"
    )
    os.chmod(ext, 0o644)
    conf = Path(d.conf_path).read_text()
    conf = conf.replace(
        "auth_mechanisms = plain login", "auth_mechanisms = plain login xoauth2 oauthbearer"
    )
    conf = conf.replace(
        "passdb {",
        f"passdb {{\n  driver = oauth2\n  mechanisms = xoauth2 oauthbearer\n  args = {ext}\n}}\n"
        "passdb {",
        1,
    )
    Path(d.conf_path).write_text(conf)
    d.restart()


class OAuthSmtpSink(SmtpSink):
    """An SmtpSink whose AUTH takes XOAUTH2 and OAUTHBEARER tokens the provider issued."""

    def __init__(self, provider: Provider, **kwargs: Any) -> None:
        self.provider = provider
        self.mechanisms: list[str] = []  # mechanism of each successful AUTH
        super().__init__(auth=("", "\0never"), **kwargs)

    async def auth_XOAUTH2(self, server: SMTP, args: list[str]) -> AuthResult:
        return await self._bearer(server, args, "XOAUTH2")

    async def auth_OAUTHBEARER(self, server: SMTP, args: list[str]) -> AuthResult:
        return await self._bearer(server, args, "OAUTHBEARER")

    async def _bearer(self, server: SMTP, args: list[str], mechanism: str) -> AuthResult:
        raw = args[1] if len(args) > 1 else ""  # ["XOAUTH2", initial response]
        text = base64.b64decode(raw).decode(errors="replace") if raw else ""
        fields = dict(p.split("=", 1) for p in text.split("\x01") if "=" in p)
        user = fields.get("user") or fields.get("n,a", "").rstrip(",")
        token = fields.get("auth", "").removeprefix("Bearer ")
        ok = bool(user) and self.provider.user_of(token) == user
        if ok:
            self.mechanisms.append(mechanism)
        data = LoginPassword(user.encode(), b"") if ok else None
        return AuthResult(success=ok, handled=False, auth_data=data)
