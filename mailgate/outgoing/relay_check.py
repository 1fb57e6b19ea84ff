"""`check-config --connect` for the relay: connect, TLS, log in as configured, QUIT."""

from __future__ import annotations

import smtplib
import ssl

from mailgate.config.model import Config
from mailgate.config.secrets import SecretError
from mailgate.oauth2.clients import relay_tokens
from mailgate.outgoing import relay_auth


def check_relay(config: Config) -> tuple[bool, str] | None:
    """(ok, detail) for the configured relay; None when mail goes to the local maildir."""
    s = config.relay
    if not s.host:
        return None
    ctx = ssl.create_default_context()
    smtp_class = smtplib.SMTP_SSL if s.tls else smtplib.SMTP
    kwargs = {"context": ctx} if s.tls else {}
    try:
        with smtp_class(s.host, s.port, timeout=s.timeout_seconds, **kwargs) as smtp:
            if s.starttls:
                smtp.starttls(context=ctx)
            relay_auth.login(smtp, config)
    except (OSError, smtplib.SMTPException, SecretError) as e:
        text = (
            e.smtp_error.decode(errors="replace")
            if isinstance(e, smtplib.SMTPResponseException)
            else e
        )
        return False, f"{s.host}:{s.port}: {text}"
    tokens = relay_tokens(config)
    login = f"logged in as {s.username}" if s.username else "no login configured"
    return True, f"{s.host}:{s.port}: {login}" + (f"; {tokens.status()}" if tokens else "")
