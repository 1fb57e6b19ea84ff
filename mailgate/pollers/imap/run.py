"""The daemon's entry point for IMAP: one Poller per (queue, folder), run until stop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine

from mailgate.config.model import Config
from mailgate.oauth2.clients import imap_tokens
from mailgate.pollers.imap.checkpoint import mailbox_key
from mailgate.pollers.imap.lease import MailboxLease
from mailgate.pollers.imap.poller import Poller
from mailgate.spool import Spool
from mailgate.store.leases import node_name

log = logging.getLogger(__name__)


def make_pollers(
    config: Config, spool: Spool, engine: Engine, stop: asyncio.Event, **kwargs: Any
) -> list[Poller]:
    """One Poller per (queue, folder) with an [imap] table, each behind its lease."""
    node = node_name(config.database.node, config.spool_dir)
    takeover = config.database.mailbox_takeover_seconds
    return [
        Poller(
            q,
            q.imap,
            folder,
            spool,
            engine,
            stop,
            tokens=imap_tokens(config, q),
            lease=MailboxLease(engine, mailbox_key(q.name, q.imap, folder), node, takeover),
            **kwargs,
        )
        for q in config.queues
        if q.imap is not None
        for folder in q.imap.folders
    ]


async def run_pollers(
    config: Config,
    spool: Spool,
    engine: Engine,
    stop: asyncio.Event,
    on_spooled: Callable[[], None] | None = None,
) -> None:
    """Run every IMAP poller until `stop` is set; return when all of them ended cleanly.

    `on_spooled` (optional, e.g. the worker's wake-up) is called on the event loop after
    a poller wrote messages to the spool. Raises ConfigError for an invalid [imap] table.
    """
    wake = None
    if on_spooled is not None:
        loop = asyncio.get_running_loop()

        def wake() -> None:
            with contextlib.suppress(RuntimeError):  # loop closed: nobody to wake
                loop.call_soon_threadsafe(on_spooled)

    await serve(make_pollers(config, spool, engine, stop, on_spooled=wake), stop)


async def serve(pollers: list[Poller], stop: asyncio.Event) -> None:
    """Run the pollers until `stop` is set; return when every one of them has ended."""
    if not pollers:
        log.info("imap: no queue has an [imap] table; no pollers")
        await stop.wait()
        return
    log.info("imap: starting %d poller(s)", len(pollers))
    results = await asyncio.gather(*(p.run() for p in pollers), return_exceptions=True)
    for p, r in zip(pollers, results, strict=True):
        if isinstance(r, BaseException):
            log.error("imap: poller %s ended with %r", p.key, r)
    log.info("imap: all pollers stopped")
