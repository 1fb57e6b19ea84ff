"""An access token when a login needs one: cached in the store, refreshed before it
expires (refresh_margin_seconds) or when a server refused it, rotated refresh tokens
stored before they are used."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from mailgate.config.oauth2 import OAuth2Settings
from mailgate.oauth2.endpoint import Grant, OAuth2Error, request_token
from mailgate.oauth2.store import Tokens, TokenStore

log = logging.getLogger(__name__)


class TokenClient:
    """`key` names the client in the store and `queue` says what to authorize in hints."""

    def __init__(
        self,
        settings: OAuth2Settings,
        base: Path,
        store: TokenStore,
        key: str,
        *,
        authorize_hint: str,
        clock: Callable[[], float] = time.time,
    ):
        self.settings = settings
        self.base = base
        self.store = store
        self.key = key
        self.authorize_hint = authorize_hint  # "mailgate oauth2 authorize support"
        self.clock = clock

    def access_token(self, *, force: bool = False) -> str:
        """A token valid for at least the margin; `force`: a new one (the old was refused)."""
        try:
            with self.store.locked(self.key):
                tokens = self.store.load(self.key)
                fresh = tokens.expires_at - self.settings.refresh_margin_seconds > self.clock()
                if tokens.access_token and fresh and not force:
                    return tokens.access_token
                return self._refresh(tokens).access_token
        except (OSError, ValueError) as e:  # unreadable, unwritable or damaged token file
            raise OAuth2Error(
                f"token file {self.store.path(self.key)}: {getattr(e, 'strerror', None) or e} "
                f"(run `{self.authorize_hint}` as the user mailgate runs as)"
            ) from None

    def current(self) -> Tokens:
        return self.store.load(self.key)

    def status(self) -> str:
        """What check-config prints after a login with this client worked."""
        tokens = self.current()
        until = datetime.fromtimestamp(tokens.expires_at, UTC).isoformat(timespec="seconds")
        how = (
            "client credentials"
            if self.settings.grant == "client_credentials"
            else ("refresh token stored" if tokens.refresh_token else "no refresh token")
        )
        return f"oauth2 token ok, expires at {until} ({how}; refreshed automatically)"

    def store_grant(self, grant: Grant) -> Tokens:
        """Keep what an authorization code exchange returned (the first refresh token)."""
        with self.store.locked(self.key):
            return self._keep(self.store.load(self.key), grant)

    def _refresh(self, tokens: Tokens) -> Tokens:
        if self.settings.grant == "client_credentials":
            form = {"grant_type": "client_credentials", "scope": self.settings.effective_scope}
        elif tokens.refresh_token:
            form = {"grant_type": "refresh_token", "refresh_token": tokens.refresh_token}
            form["scope"] = self.settings.effective_scope
        else:
            raise OAuth2Error(f"no refresh token yet: run `{self.authorize_hint}`", "no_token")
        try:
            grant = request_token(self.settings, self.base, form)
        except OAuth2Error as e:
            if e.error == "invalid_grant":
                raise OAuth2Error(
                    f"{e} (the refresh token was revoked or expired): run `{self.authorize_hint}`",
                    e.error,
                ) from None
            raise
        kept = self._keep(tokens, grant)
        log.info(
            "oauth2 %s: new access token, valid for %ds%s",
            self.key,
            grant.expires_in,
            "; refresh token rotated" if grant.refresh_token else "",
        )
        return kept

    def _keep(self, old: Tokens, grant: Grant) -> Tokens:
        tokens = Tokens(
            grant.refresh_token or old.refresh_token,
            grant.access_token,
            self.clock() + grant.expires_in,
        )
        self.store.save(self.key, tokens)
        return tokens
