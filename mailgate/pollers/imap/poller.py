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
from collections.abc import Callable, Iterator
from typing import Any

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError
from sqlalchemy import Engine

from mailgate.config.load import Queue
from mailgate.pollers.imap.checkpoint import Checkpoint, CheckpointStore, mailbox_key
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
from mailgate.pollers.imap_settings import ImapSettings
from mailgate.runtime import Backoff, chunks, in_own_thread
from mailgate.spool import Envelope, Spool

log = logging.getLogger(__name__)

SEEN = b"\\Seen"
DELETED = b"\\Deleted"


def _group_by_bytes(uids: list[int], sizes: dict[int, int], limit: int) -> Iterator[list[int]]:
    group: list[int] = []
    total = 0
    for uid in uids:
        size = sizes.get(uid, 0)
        if group and total + size > limit:
            yield group
            group, total = [], 0
        group.append(uid)
        total += size
    if group:
        yield group


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
    ):
        self.queue = queue
        self.settings = settings
        self.folder = folder
        self.spool = spool
        self.stop = stop
        self.key = mailbox_key(queue.name, settings, folder)
        self.where = f"{settings.account()}/{folder}"  # for log lines that name the queue
        self.checkpoints = CheckpointStore(engine, self.key)
        self.backoff = Backoff(backoff_initial, backoff_max, rng=rng or random.Random())
        self.auth_retry_seconds = auth_retry_seconds
        self.folder_retry_seconds = folder_retry_seconds
        self.idle_check_seconds = idle_check_seconds
        self.monotonic = monotonic
        self.on_spooled = on_spooled  # called from the poller thread after spool writes
        self.halt = threading.Event()
        self.idling = threading.Event()  # set while the connection is in IDLE (tests wait on it)
        self.taken = 0  # messages put into the spool by this poller (for tests and stats)
        self.connections = 0
        self.last_error = ""
        self._last_uid = 0
        self._uidvalidity = 0

    def __repr__(self) -> str:
        return f"Poller({self.key!r})"

    @property
    def envelope(self) -> Envelope:
        return Envelope(
            source=f"imap:{self.key}", queue=self.queue.name, rcpt_tos=(self.queue.address,)
        )

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
        while not self.halt.is_set():
            delay = self._one_connection()
            if delay and not self.halt.is_set():
                self.halt.wait(delay)
        log.info("queue %s: stopped watching %s", self.queue.name, self.where)

    def poll_once(self) -> int:
        """Connect, take everything new, log out; return how many messages were spooled.

        Errors propagate (unlike `serve_forever`, which logs and retries).
        """
        before = self.taken
        client = connect(self.settings)
        try:
            self._open_folder(client)
            self._drain(client)
        except BaseException:
            shutdown(client)
            raise
        logout(client)
        return self.taken - before

    def _action(self) -> str:
        s = self.settings
        return f"move to {s.move_to!r}" if s.action == "move" else "flag \\Seen and keep"

    def _one_connection(self) -> float:
        """One connect-serve-disconnect cycle; returns how long to wait before the next."""
        try:
            client = connect(self.settings)
        except AuthFailed as e:
            return self._failed(e, self.auth_retry_seconds, logging.ERROR)
        except TlsUnavailable as e:
            return self._failed(e, self.auth_retry_seconds, logging.ERROR)
        except Exception as e:
            return self._failed(e, self.backoff.next(), logging.WARNING)
        self.connections += 1
        try:
            self._serve(client)
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
            return self.backoff.next()
        logout(client)
        return 0.0

    def _failed(self, exc: BaseException, delay: float, level: int) -> float:
        self.last_error = describe_error(exc, self.settings)
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
        self._open_folder(client)
        idle = client.has_capability("IDLE")
        log.info(
            "queue %s: connected to %s (%s)",
            self.queue.name,
            self.where,
            "IDLE" if idle else f"polling every {self.settings.poll_interval_seconds:g}s",
        )
        while not self.halt.is_set():
            self._drain(client)
            self.backoff.reset()
            if self.halt.is_set():
                break
            if idle:
                self._idle_wait(client)
            else:
                self.halt.wait(self.settings.poll_interval_seconds)

    # -- folder state --------------------------------------------------------------------
    def _open_folder(self, client: IMAPClient) -> None:
        s = self.settings
        if not client.folder_exists(self.folder):
            raise FolderMissing(f"imap {self.where}: folder {self.folder!r} does not exist")
        if s.action == "move" and not client.folder_exists(s.move_to):
            raise FolderMissing(
                f"imap {self.where}: move_to folder {s.move_to!r} does not exist on {s.account()}"
            )
        info = client.select_folder(self.folder)
        uidvalidity = int(info[b"UIDVALIDITY"])
        cp = self.checkpoints.load()
        if cp is None:
            log.info("queue %s: %s: first run, taking every message", self.queue.name, self.where)
            cp = Checkpoint(uidvalidity, 0)
            self.checkpoints.save(cp)
        elif cp.uidvalidity != uidvalidity:
            log.warning(
                "queue %s: %s: UIDVALIDITY changed %d -> %d (folder recreated?): re-scanning "
                "from UID 1; the worker drops what it already has",
                self.queue.name,
                self.where,
                cp.uidvalidity,
                uidvalidity,
            )
            cp = Checkpoint(uidvalidity, 0)
            self.checkpoints.save(cp)
        self._uidvalidity, self._last_uid = cp.uidvalidity, cp.last_uid

    def _search_new(self, client: IMAPClient) -> list[int]:
        # `n:*` always matches the highest UID, even when it is below n: filter
        found = client.search(["UID", f"{self._last_uid + 1}:*", "UNDELETED"])
        return sorted(u for u in found if u > self._last_uid)

    # -- taking messages -----------------------------------------------------------------
    def _drain(self, client: IMAPClient) -> None:
        """Take messages until a search finds nothing new (mail may arrive meanwhile)."""
        while not self.halt.is_set():
            forget_untagged(client)
            uids = self._search_new(client)
            if not uids:
                return
            for chunk in chunks(uids, self.settings.batch_size):
                if self.halt.is_set():
                    return
                self._take_chunk(client, chunk)

    def _take_chunk(self, client: IMAPClient, uids: list[int]) -> None:
        sizes = {
            uid: int(d.get(b"RFC822.SIZE", 0))
            for uid, d in client.fetch(uids, ["RFC822.SIZE"]).items()
        }
        present = [u for u in uids if u in sizes]  # others were expunged meanwhile
        for group in _group_by_bytes(present, sizes, self.settings.batch_max_bytes):
            if self.halt.is_set():
                return
            self._take_group(client, group)
        if not self.halt.is_set():
            self._advance(uids[-1])

    def _take_group(self, client: IMAPClient, uids: list[int]) -> None:
        data = client.fetch(uids, ["BODY.PEEK[]"])
        taken: list[int] = []
        done_upto = self._last_uid
        try:
            for uid in uids:
                if self.halt.is_set():
                    break  # fetched but not spooled: it stays on the server untouched
                item = data.pop(uid, None)
                raw = None if item is None else item.get(b"BODY[]")
                if raw is not None:
                    self.spool.put(bytes(raw), self.envelope)
                    taken.append(uid)
                    self.taken += 1
                done_upto = uid
        finally:
            # whatever the spool has gets its flag/move, even when stopping or failing;
            # if that fails, no checkpoint: the next session fetches (and dedupes) again
            if taken:
                if self.on_spooled:
                    self.on_spooled()
                self._acknowledge(client, taken)
                log.info(
                    "queue %s: %s: took %d message(s), UID %d..%d",
                    self.queue.name,
                    self.where,
                    len(taken),
                    taken[0],
                    taken[-1],
                )
            self._advance(done_upto)

    def _acknowledge(self, client: IMAPClient, uids: list[int]) -> None:
        if self.settings.action == "seen":
            client.add_flags(uids, [SEEN], silent=True)
            return
        target = self.settings.move_to
        if client.has_capability("MOVE"):
            client.move(uids, target)
            return
        client.copy(uids, target)
        client.add_flags(uids, [DELETED], silent=True)
        if client.has_capability("UIDPLUS"):
            client.uid_expunge(uids)
        else:
            client.expunge()

    def _advance(self, uid: int) -> None:
        if uid > self._last_uid:
            self._last_uid = uid
            self.checkpoints.save(Checkpoint(self._uidvalidity, uid))

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
        """In IDLE: return on EXISTS, stop or the renew deadline; raise if the server left."""
        deadline = self.monotonic() + self.settings.idle_renew_seconds
        quick_empties = 0
        while not self.halt.is_set() and self.monotonic() < deadline:
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
