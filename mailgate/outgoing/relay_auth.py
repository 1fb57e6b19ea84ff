"""The relay login: user and password, or XOAUTH2 / OAUTHBEARER with a token from the
`[relay.oauth2]` client, refreshed once when the relay refuses it."""

from __future__ import annotations

import logging
import smtplib

from mailgate.config.model import Config
from mailgate.oauth2.client import TokenClient
from mailgate.oauth2.clients import relay_tokens
from mailgate.oauth2.endpoint import OAuth2Error

log = logging.getLogger(__name__)


class RelayAuthError(smtplib.SMTPException):
    """No token could be had, or the relay refused a fresh one (a temporary failure: the
    mail stays in the outbox and is retried)."""


def bearer(mechanism: str, user: str, token: str) -> str:
    """The SASL initial response of XOAUTH2 or OAUTHBEARER (RFC 7628)."""
    if mechanism == "OAUTHBEARER":
        return f"n,a={user},\x01auth=Bearer {token}\x01\x01"
    return f"user={user}\x01auth=Bearer {token}\x01\x01"


def _mechanism(smtp: smtplib.SMTP, wanted: str) -> str:
    if wanted != "auto":
        return wanted.upper()
    offered = smtp.esmtp_features.get("auth", "").upper().split()
    return "OAUTHBEARER" if "OAUTHBEARER" in offered and "XOAUTH2" not in offered else "XOAUTH2"


def _auth(smtp: smtplib.SMTP, mechanism: str, user: str, token: str) -> None:
    answer = bearer(mechanism, user, token)
    # a refusal comes as 334 + an error document; the empty reply ends the exchange (535)
    smtp.auth(mechanism, lambda challenge=None: answer if challenge is None else "")


def oauth2_login(smtp: smtplib.SMTP, user: str, tokens: TokenClient) -> None:
    smtp.ehlo_or_helo_if_needed()
    mechanism = _mechanism(smtp, tokens.settings.mechanism)
    try:
        try:
            _auth(smtp, mechanism, user, tokens.access_token())
            return
        except smtplib.SMTPAuthenticationError as e:
            log.info(
                "relay %s login as %s refused (%s): refreshing the token once",
                mechanism,
                user,
                e.smtp_code,
            )
        try:
            _auth(smtp, mechanism, user, tokens.access_token(force=True))
        except smtplib.SMTPAuthenticationError as e:
            raise RelayAuthError(
                f"relay {mechanism} login as {user} failed with a fresh token: {e.smtp_code} "
                f"{e.smtp_error.decode(errors='replace')}"
            ) from None
    except OAuth2Error as e:
        raise RelayAuthError(f"relay oauth2 token: {e}") from None


def login(smtp: smtplib.SMTP, config: Config) -> None:
    """Log in as `[relay] username` when set: with the oauth2 table, else the password."""
    s = config.relay
    if not s.username:
        return
    tokens = relay_tokens(config)
    if tokens is not None:
        return oauth2_login(smtp, s.username, tokens)
    # read at each connection (a rotated secret just works); SecretError defers the mail
    password = (
        s.password.read(config.path.parent, f"relay.password.{s.password.kind}")
        if s.password
        else ""
    )
    smtp.login(s.username, password)
