"""The daemon's entry point for IMAP: one Poller per (queue, folder), run until stop.

`PollerSet` follows the configuration: after a reload, `update(config)` starts the pollers
of new mailboxes, stops those of removed ones cleanly (the poller finishes the message it
is on, then logs out) and restarts those whose queue or [imap] table changed.
"""

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


def _thread_safe(on_spooled: Callable[[], None] | None) -> Callable[[], None] | None:
    """`on_spooled` called on the running event loop from a poller's thread."""
    if on_spooled is None:
        return None
    loop = asyncio.get_running_loop()

    def wake() -> None:
        with contextlib.suppress(RuntimeError):  # loop closed: nobody to wake
            loop.call_soon_threadsafe(on_spooled)

    return wake


def _same(a: Poller, b: Poller) -> bool:
    """Would `b` poll exactly like `a`? (same queue address, [imap] table and tokens)"""
    return (
        a.queue.name == b.queue.name
        and a.queue.address == b.queue.address
        and a.settings == b.settings
        and (a.tokens is None) == (b.tokens is None)
    )


class PollerSet:
    """The running pollers, by mailbox key; `update()` makes them match a new config."""

    def __init__(
        self,
        spool: Spool,
        engine: Engine,
        stop: asyncio.Event,
        on_spooled: Callable[[], None] | None = None,
        **kwargs: Any,
    ):
        self.spool, self.engine, self.stop = spool, engine, stop
        self.kwargs = {**kwargs, "on_spooled": _thread_safe(on_spooled)}
        self.pollers: dict[str, Poller] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._lock = asyncio.Lock()

    @property
    def keys(self) -> list[str]:
        return sorted(self.pollers)

    def connections(self) -> dict[str, bool]:
        """Mailbox key -> whether its poller is logged in now."""
        return {key: p.connected for key, p in list(self.pollers.items())}

    async def update(self, config: Config) -> None:
        """Start new mailboxes, stop removed ones, restart changed ones."""
        async with self._lock:
            wanted = {
                p.key: p
                for p in make_pollers(config, self.spool, self.engine, self.stop, **self.kwargs)
            }
            gone = [
                k for k, p in self.pollers.items() if k not in wanted or not _same(p, wanted[k])
            ]
            for key in gone:
                changed = key in wanted
                log.info("imap: %s %s", "restarting" if changed else "stopping", key)
                await self._end(key)
                health = self.kwargs.get("health")
                if not changed and health is not None:
                    health.forget(f"imap:{key}")  # stopped on purpose: not a failing part
            for key, poller in wanted.items():
                if key not in self.pollers and not self.stop.is_set():
                    self._start(poller)

    def _start(self, poller: Poller) -> None:
        self.pollers[poller.key] = poller
        task = asyncio.create_task(poller.run(), name=f"imap:{poller.key}")
        task.add_done_callback(lambda t, p=poller: self._ended(p, t))
        self._tasks[poller.key] = task

    def _ended(self, poller: Poller, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("imap: poller %s ended with %r", poller.key, task.exception())

    async def _end(self, key: str) -> None:
        poller = self.pollers.pop(key)
        task = self._tasks.pop(key)
        poller.halt.set()
        await asyncio.gather(task, return_exceptions=True)

    async def run(self, config: Config) -> None:
        """Start the config's pollers, serve until `stop` is set, then end every one."""
        await self.update(config)
        if not self.pollers:
            log.info("imap: no queue has an [imap] table; no pollers")
        else:
            log.info("imap: started %d poller(s)", len(self.pollers))
        await self.stop.wait()
        async with self._lock:
            for key in list(self.pollers):
                await self._end(key)
        log.info("imap: all pollers stopped")


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
