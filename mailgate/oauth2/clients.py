"""The TokenClient of each mailbox and of the relay, built from the configuration."""

from __future__ import annotations

from mailgate.config.model import Config, Queue
from mailgate.oauth2.client import TokenClient
from mailgate.oauth2.store import TokenStore


def token_store(config: Config) -> TokenStore:
    return TokenStore(config.data_dir / "oauth2")


def imap_tokens(config: Config, queue: Queue) -> TokenClient | None:
    """The queue's IMAP token client; None without an `[imap.oauth2]` table."""
    if queue.imap is None or queue.imap.oauth2 is None:
        return None
    return TokenClient(
        queue.imap.oauth2,
        queue.imap.base,
        token_store(config),
        f"imap-{queue.name}",
        authorize_hint=f"mailgate oauth2 authorize {queue.name}",
    )


def relay_tokens(config: Config) -> TokenClient | None:
    """The relay's token client; None without a `[relay.oauth2]` table."""
    if config.relay.oauth2 is None:
        return None
    return TokenClient(
        config.relay.oauth2,
        config.path.parent,
        token_store(config),
        "relay",
        authorize_hint="mailgate oauth2 authorize --relay",
    )
