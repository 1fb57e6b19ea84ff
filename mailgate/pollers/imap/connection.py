"""An IMAP connection: connect with TLS as configured, log in, log out, and say in an
administrator's words what went wrong."""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
from typing import Any

from imapclient import IMAPClient, SocketTimeout
from imapclient.exceptions import IMAPClientAbortError, IMAPClientError, LoginError

from mailgate.config.imap import ImapSettings
from mailgate.config.secrets import SecretError
from mailgate.oauth2.client import TokenClient
from mailgate.oauth2.endpoint import OAuth2Error

log = logging.getLogger(__name__)


class ImapError(Exception):
    """A problem with one mailbox, worded for an administrator."""


class AuthFailed(ImapError):
    """The server refused our credentials, or we could not obtain them."""


class TlsUnavailable(ImapError):
    """tls = "starttls" but the server does not offer STARTTLS."""


class FolderMissing(ImapError):
    """A watched folder or the move_to folder does not exist."""


class ConnectionLost(ImapError):
    """The server went away (BYE, EOF) in the middle of a session."""


def _text(value: Any) -> str:
    """imapclient error texts often arrive as a bytes repr: b'[AUTHENTICATIONFAILED] ...'."""
    s = str(value)
    if len(s) >= 3 and s[0] == "b" and s[1] in "'\"" and s[-1] == s[1]:
        s = s[2:-1]
    return s


def describe_error(exc: BaseException, settings: ImapSettings) -> str:
    """Say exactly what failed: DNS, refused, timeout, TLS, auth, folder, protocol."""
    where = f"{settings.host}:{settings.effective_port}"
    if isinstance(exc, ImapError | SecretError):
        return str(exc)
    if isinstance(exc, socket.gaierror):
        return f"DNS lookup of {settings.host!r} failed: {exc.strerror or exc}"
    if isinstance(exc, ConnectionRefusedError):
        return f"connection to {where} refused (server down or wrong port?)"
    if isinstance(exc, TimeoutError | socket.timeout):
        return f"no answer from {where} within {settings.timeout_seconds:g}s (timeout)"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate of {where} rejected: {exc.verify_message or exc}"
    if isinstance(exc, ssl.SSLError):
        hint = (
            ' (is this port plain IMAP? try tls = "starttls")'
            if exc.reason == ("WRONG_VERSION_NUMBER")
            else ""
        )
        return f"TLS with {where} failed: {exc.reason or exc}{hint}"
    if isinstance(exc, ConnectionError | EOFError):
        return f"connection to {where} lost: {exc}"
    if isinstance(exc, OSError):
        return f"network error with {where}: {exc.strerror or exc}"
    if isinstance(exc, IMAPClientAbortError):
        return f"connection to {where} lost: {_text(exc)}"
    if isinstance(exc, IMAPClientError):
        return f"IMAP error from {where}: {_text(exc)}"
    return f"{type(exc).__name__}: {exc}"


def _ssl_context(settings: ImapSettings) -> ssl.SSLContext:
    cafile = str(settings.path(settings.ca_file)) if settings.ca_file else None
    return ssl.create_default_context(cafile=cafile)


def _mechanism(client: IMAPClient, wanted: str) -> str:
    if wanted != "auto":
        return wanted.upper()
    offered = [m for m in ("XOAUTH2", "OAUTHBEARER") if client.has_capability(f"AUTH={m}")]
    return offered[0] if offered else "XOAUTH2"


def _authenticate(client: IMAPClient, mechanism: str, user: str, token: str) -> None:
    if mechanism == "OAUTHBEARER":
        client.oauthbearer_login(user, token)
    else:
        client.oauth2_login(user, token)


def _token(tokens: TokenClient, settings: ImapSettings, *, force: bool = False) -> str:
    try:
        return tokens.access_token(force=force)
    except OAuth2Error as e:
        raise AuthFailed(f"imap oauth2 token for {settings.account()}: {e}") from None


def _oauth2_login(client: IMAPClient, settings: ImapSettings, tokens: TokenClient | None) -> None:
    """Log in with a token from `tokens`; a refused one is refreshed once and tried again."""
    if tokens is None:
        raise AuthFailed(f"imap oauth2 for {settings.account()}: no token client was given")
    assert settings.oauth2 is not None
    mechanism = _mechanism(client, settings.oauth2.mechanism)
    try:
        _authenticate(client, mechanism, settings.login_user, _token(tokens, settings))
        return
    except LoginError as e:
        log.info(
            "imap %s login to %s refused (%s): refreshing the token once",
            mechanism,
            settings.account(),
            _text(e),
        )
    try:
        _authenticate(client, mechanism, settings.login_user, _token(tokens, settings, force=True))
    except LoginError as e:
        raise AuthFailed(
            f"imap {mechanism} login to {settings.account()} failed with a fresh token: "
            f"{_text(e)} (does the account grant this app IMAP access?)"
        ) from e


def _login(client: IMAPClient, settings: ImapSettings, tokens: TokenClient | None) -> None:
    if settings.oauth2 is not None:
        return _oauth2_login(client, settings, tokens)
    try:
        if settings.uses_oauth2:
            client.oauth2_login(settings.login_user, settings.oauth2_token())
        else:
            client.login(settings.user, settings.password())
    except LoginError as e:
        how = "XOAUTH2 login" if settings.uses_oauth2 else "login"
        raise AuthFailed(f"imap {how} to {settings.account()} failed: {_text(e)}") from e
    except SecretError as e:
        raise AuthFailed(f"imap credentials for {settings.account()}: {e}") from e


def connect(settings: ImapSettings, tokens: TokenClient | None = None) -> IMAPClient:
    """A logged-in client with a socket timeout; TLS as configured (STARTTLS is mandatory).
    `tokens` gives the access tokens of an `[imap.oauth2]` table."""
    ctx = _ssl_context(settings) if settings.tls != "none" else None
    t = settings.timeout_seconds
    client = IMAPClient(
        settings.host,
        port=settings.effective_port,
        ssl=settings.tls == "implicit",
        ssl_context=ctx,
        timeout=SocketTimeout(connect=t, read=t),
    )
    _keepalive(client)
    try:
        if settings.tls == "starttls":
            if not client.has_capability("STARTTLS"):
                raise TlsUnavailable(
                    f"{settings.host}:{settings.effective_port} does not offer STARTTLS and tls = "
                    '"starttls" requires it (refusing to send the password in clear)'
                )
            client.starttls(ctx)
        _login(client, settings, tokens)
    except BaseException:
        shutdown(client)
        raise
    return client


def _keepalive(client: IMAPClient, idle: int = 60, interval: int = 15, count: int = 4) -> None:
    """TCP keepalive: a peer that vanished without a FIN is noticed in ~2 min, even in IDLE."""
    sock = client.socket()
    with contextlib.suppress(OSError, AttributeError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, idle)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, interval)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, count)


def shutdown(client: IMAPClient) -> None:
    with contextlib.suppress(Exception):  # the socket is already gone
        client.shutdown()


def logout(client: IMAPClient) -> None:
    try:
        client.logout()
    except Exception:
        shutdown(client)


def forget_untagged(client: IMAPClient) -> bool:
    """Drop untagged replies imaplib keeps forever; True if one was EXISTS (new mail)."""
    pending = getattr(getattr(client, "_imap", None), "untagged_responses", None)
    if not isinstance(pending, dict):
        return False
    exists = "EXISTS" in pending
    pending.clear()
    return exists
