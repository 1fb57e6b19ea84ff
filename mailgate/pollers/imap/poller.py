"""IMAP intake: one poller per (queue, folder), IDLE when offered, polling otherwise.

Per message the order is fixed, and a crash between any two steps loses nothing:

    UID FETCH BODY.PEEK[]  ->  spool.put() (fsync)  ->  \\Seen or MOVE  ->  checkpoint

A message is flagged or moved only after its spool write returned. A crash after the write
and before the checkpoint makes the next run fetch the message again; the worker dedupes by
Message-ID / raw hash, so that re-fetch is absorbed. The checkpoint (UIDVALIDITY, last UID)
lives in the `imap_checkpoints` table; each wake-up searches only `UID last+1:*`, so an idle
poll of a big mailbox costs the same as of an empty one. A new UIDVALIDITY re-scans the
folder from UID 1.

imapclient is blocking: every poller runs its connection in a thread of its own, and the
asyncio side only starts the threads and hands them the stop signal.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import time
from collections.abc import Callable
from typing import Any

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError
from sqlalchemy import Engine

from mailgate.config.imap import ImapSettings
from mailgate.config.model import Queue
from mailgate.health import Health
from mailgate.oauth2.client import TokenClient
from mailgate.pollers.imap.checkpoint import CheckpointStore, mailbox_key
from mailgate.pollers.imap.connection import (
    AuthFailed,
    ConnectionLost,
    FolderMissing,
    ImapError,
    TlsUnavailable,
    connect,
    describe_error,
    forget_untagged,
    logout,
    shutdown,
)
from mailgate.pollers.imap.intake import FolderIntake
from mailgate.pollers.imap.lease import LeaseLost, MailboxLease
from mailgate.runtime import Backoff, in_own_thread
from mailgate.spool import Envelope, Spool

log = logging.getLogger(__name__)


class Poller:
    """Takes every message of one folder of one queue's mailbox into the spool.

    `run()` is the daemon's coroutine (returns when `stop` is set); `poll_once()` is one
    synchronous connect-drain-logout pass for tests and the bench.
    """

    def __init__(
        self,
        queue: Queue,
        settings: ImapSettings,
        folder: str,
        spool: Spool,
        engine: Engine,
        stop: asyncio.Event | None = None,
        *,
        backoff_initial: float = 1.0,
        backoff_max: float = 300.0,
        rng: random.Random | None = None,
        auth_retry_seconds: float = 300.0,
        folder_retry_seconds: float = 300.0,
        idle_check_seconds: float = 0.5,
        monotonic: Callable[[], float] = time.monotonic,
        on_spooled: Callable[[], None] | None = None,
        tokens: TokenClient | None = None,
        health: Health | None = None,
        lease: MailboxLease | None = None,
    ):
        self.queue = queue
        self.settings = settings
        self.tokens = tokens  # the access tokens of an [imap.oauth2] table
        self.stop = stop
        self.key = mailbox_key(queue.name, settings, folder)
        self.where = f"{settings.account()}/{folder}"  # for log lines that name the queue
        self.backoff = Backoff(backoff_initial, backoff_max, rng=rng or random.Random())
        self.auth_retry_seconds = auth_retry_seconds
        self.folder_retry_seconds = folder_retry_seconds
        self.idle_check_seconds = idle_check_seconds
        self.monotonic = monotonic
        self.halt = threading.Event()
        self.idling = threading.Event()  # set while the connection is in IDLE (tests wait on it)
        self.connections = 0
        self.last_error = ""
        self.health = health  # reports as "imap:KEY": a drained folder, or why it failed
        self.connected = False  # logged in right now (/metrics: mailgate_imap_connected)
        envelope = Envelope(source=f"imap:{self.key}", queue=queue.name, rcpt_tos=(queue.address,))
        self.lease = lease  # several daemons on one database: poll only while holding it
        checkpoints = CheckpointStore(engine, self.key, guard=lease.keep if lease else None)
        self.intake = FolderIntake(
            queue.name, settings, folder, spool, checkpoints, envelope, self.halt, on_spooled
        )

    def __repr__(self) -> str:
        return f"Poller({self.key!r})"

    @property
    def taken(self) -> int:
        """Messages this poller put into the spool."""
        return self.intake.taken

    # -- asyncio side --------------------------------------------------------------------
    async def run(self) -> None:
        """Serve the folder until `stop` is set; never raises for mailbox problems."""
        watcher = asyncio.create_task(self._forward_stop()) if self.stop else None
        try:
            await in_own_thread(self.serve_forever, name=f"imap:{self.key}", halt=self.halt)
        finally:
            if watcher:
                watcher.cancel()

    async def _forward_stop(self) -> None:
        assert self.stop is not None
        await self.stop.wait()
        self.halt.set()

    # -- thread side ---------------------------------------------------------------------
    def serve_forever(self) -> None:
        log.info("queue %s: watching %s (then %s)", self.queue.name, self.where, self._action())
        try:
            while not self.halt.is_set():
                if not self._lease_taken():
                    continue
                delay = self._one_connection()
                if delay and not self.halt.is_set():
                    self.halt.wait(delay)
        finally:
            if self.lease is not None:
                self.lease.release()
        log.info("queue %s: stopped watching %s", self.queue.name, self.where)

    def _lease_taken(self) -> bool:
        """True when this daemon may connect; otherwise wait a while (another one polls)."""
        lease = self.lease
        if lease is None or lease.held:
            return True
        if lease.acquire():
            log.info("queue %s: %s: this daemon polls it now", self.queue.name, self.where)
            return True
        self.halt.wait(lease.retry_seconds)
        return False

    def poll_once(self) -> int:
        """Connect, take everything new, log out; return how many messages were spooled.

        Errors propagate (unlike `serve_forever`, which logs and retries); LeaseLost when
        another daemon holds the mailbox.
        """
        before = self.taken
        if self.lease is not None and not self.lease.acquire():
            raise LeaseLost(f"{self.lease.name}: another daemon polls this mailbox")
        try:
            client = connect(self.settings, self.tokens)
            try:
                self.intake.open(client)
                self.intake.drain(client)
            except BaseException:
                shutdown(client)
                raise
            logout(client)
        finally:
            if self.lease is not None:
                self.lease.release()
        return self.taken - before

    def _action(self) -> str:
        s = self.settings
        return f"move to {s.move_to!r}" if s.action == "move" else "flag \\Seen and keep"

    def _one_connection(self) -> float:
        """One connect-serve-disconnect cycle; returns how long to wait before the next."""
        try:
            client = connect(self.settings, self.tokens)
        except AuthFailed as e:
            return self._failed(e, self.auth_retry_seconds, logging.ERROR)
        except TlsUnavailable as e:
            return self._failed(e, self.auth_retry_seconds, logging.ERROR)
        except Exception as e:
            return self._failed(e, self.backoff.next(), logging.WARNING)
        self.connections += 1
        self.connected = True
        try:
            self._serve(client)
        except LeaseLost as e:
            shutdown(client)
            log.warning("queue %s: imap %s: %s; disconnected", self.queue.name, self.where, e)
            return 0.0
        except FolderMissing as e:
            shutdown(client)
            return self._failed(e, self.folder_retry_seconds, logging.ERROR)
        except (OSError, EOFError, IMAPClientError, ImapError) as e:
            shutdown(client)
            return self._failed(e, self.backoff.next(), logging.WARNING)
        except Exception as e:  # a bug: log it with its traceback, keep the others running
            shutdown(client)
            log.exception("queue %s: imap %s: unexpected error", self.queue.name, self.where)
            self.last_error = f"{type(e).__name__}: {e}"
            if self.health is not None:
                self.health.failed(f"imap:{self.key}", self.last_error)
            return self.backoff.next()
        finally:
            self.connected = False
        logout(client)
        return 0.0

    def _failed(self, exc: BaseException, delay: float, level: int) -> float:
        self.last_error = describe_error(exc, self.settings)
        if self.health is not None:
            self.health.failed(f"imap:{self.key}", self.last_error)
        if self.halt.is_set():
            log.info("queue %s: %s (stopping)", self.queue.name, self._prefixed(self.last_error))
            return 0.0
        log.log(
            level,
            "queue %s: %s; retrying in %.1fs",
            self.queue.name,
            self._prefixed(self.last_error),
            delay,
        )
        return delay

    def _prefixed(self, detail: str) -> str:
        return detail if detail.startswith("imap ") else f"imap {self.where}: {detail}"

    def _serve(self, client: IMAPClient) -> None:
        self.intake.open(client)
        idle = client.has_capability("IDLE")
        log.info(
            "queue %s: connected to %s (%s)",
            self.queue.name,
            self.where,
            "IDLE" if idle else f"polling every {self.settings.poll_interval_seconds:g}s",
        )
        while not self.halt.is_set():
            self._keep_lease()
            self.intake.drain(client)
            self.backoff.reset()
            if self.health is not None:
                self.health.succeeded(f"imap:{self.key}", "connected")
            if self.halt.is_set():
                break
            if idle:
                self._idle_wait(client)
            else:
                self._poll_wait()

    def _keep_lease(self) -> None:
        if self.lease is not None:
            self.lease.keep()

    def _poll_wait(self) -> None:
        """Wait the poll interval, renewing the lease on the way."""
        deadline = self.monotonic() + self.settings.poll_interval_seconds
        step = self.lease.renew_seconds if self.lease else self.settings.poll_interval_seconds
        while not self.halt.is_set() and (left := deadline - self.monotonic()) > 0:
            self.halt.wait(min(left, step))
            self._keep_lease()

    # -- waiting -------------------------------------------------------------------------
    def _idle_wait(self, client: IMAPClient) -> None:
        """IDLE until new mail, stop, or the renew deadline; then DONE."""
        if forget_untagged(client):
            return  # EXISTS arrived inside an earlier command's answer: drain again first
        client.idle()
        self.idling.set()
        try:
            self._await_news(client)
        finally:
            self.idling.clear()
        client.idle_done()

    def _await_news(self, client: IMAPClient) -> None:
        """In IDLE: return on EXISTS, stop or the deadline; raise if the server left.

        The deadline is the IDLE renewal or `poll_interval_seconds`, whichever comes
        first: a new-mail notification the server never sends (or we never see) then costs
        at most one poll interval, not the 25 minutes of a renewal.
        """
        s = self.settings
        deadline = self.monotonic() + min(s.idle_renew_seconds, s.poll_interval_seconds)
        quick_empties = 0
        while not self.halt.is_set() and self.monotonic() < deadline:
            self._keep_lease()
            t0 = self.monotonic()
            responses = client.idle_check(timeout=self.idle_check_seconds)
            if any(_is(r, b"BYE") for r in responses):
                raise ConnectionLost(f"imap {self.where}: server closed the connection (BYE)")
            if any(_is(r, b"EXISTS") for r in responses):
                return
            # idle_check swallows EOF and returns [] at once: a dead socket would spin here
            quick = not responses and self.monotonic() - t0 < self.idle_check_seconds / 2
            quick_empties = quick_empties + 1 if quick else 0
            if quick_empties >= 3:
                raise ConnectionLost(f"imap {self.where}: connection closed during IDLE")


def _is(response: tuple[Any, ...], word: bytes) -> bool:
    return any(isinstance(x, bytes) and x.upper() == word for x in response[:2])
