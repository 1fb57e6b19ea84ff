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
import contextlib
import logging
import random
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from imapclient import IMAPClient, SocketTimeout
from imapclient.exceptions import IMAPClientAbortError, IMAPClientError, LoginError
from sqlalchemy import Engine, insert, select, update

from mailgate.config.imap import ImapSettings
from mailgate.config.model import Config, Queue
from mailgate.config.secrets import SecretError
from mailgate.db.models import ImapCheckpoint
from mailgate.runtime import Backoff, chunks
from mailgate.spool import Envelope, Spool

log = logging.getLogger(__name__)

SEEN = b"\\Seen"
DELETED = b"\\Deleted"
CHECKPOINTS = ImapCheckpoint.__table__


# -- errors ------------------------------------------------------------------------------
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


# -- connection --------------------------------------------------------------------------
def _ssl_context(settings: ImapSettings) -> ssl.SSLContext:
    cafile = str(settings.path(settings.ca_file)) if settings.ca_file else None
    return ssl.create_default_context(cafile=cafile)


def _login(client: IMAPClient, settings: ImapSettings) -> None:
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


def connect(settings: ImapSettings) -> IMAPClient:
    """A logged-in client with a socket timeout; TLS as configured (STARTTLS is mandatory)."""
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
        _login(client, settings)
    except BaseException:
        _shutdown(client)
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


def _shutdown(client: IMAPClient) -> None:
    with contextlib.suppress(Exception):  # the socket is already gone
        client.shutdown()


def _logout(client: IMAPClient) -> None:
    try:
        client.logout()
    except Exception:
        _shutdown(client)


def mailbox_key(queue: str, settings: ImapSettings, folder: str) -> str:
    """The checkpoint key and Envelope source suffix: queue/user@host:port/folder."""
    return f"{queue}/{settings.account()}/{folder}"


# -- checkpoint --------------------------------------------------------------------------
@dataclass(frozen=True)
class Checkpoint:
    uidvalidity: int
    last_uid: int


class CheckpointStore:
    """One row per mailbox key in imap_checkpoints (each key has exactly one writer)."""

    def __init__(self, engine: Engine, key: str):
        self.engine = engine
        self.key = key

    def load(self) -> Checkpoint | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(CHECKPOINTS.c.uidvalidity, CHECKPOINTS.c.last_uid).where(
                    CHECKPOINTS.c.mailbox == self.key
                )
            ).first()
        return None if row is None else Checkpoint(int(row[0]), int(row[1]))

    def save(self, cp: Checkpoint) -> None:
        values = {"uidvalidity": cp.uidvalidity, "last_uid": cp.last_uid, "updated_at": _now()}
        with self.engine.begin() as conn:
            done = conn.execute(
                update(CHECKPOINTS).where(CHECKPOINTS.c.mailbox == self.key).values(**values)
            )
            if done.rowcount == 0:
                conn.execute(insert(CHECKPOINTS).values(mailbox=self.key, **values))


def _now() -> datetime:
    return datetime.now(UTC)


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


# -- the poller --------------------------------------------------------------------------
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
            await _in_thread(self.serve_forever, name=f"imap:{self.key}", halt=self.halt)
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
            _shutdown(client)
            raise
        _logout(client)
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
            _shutdown(client)
            return self._failed(e, self.folder_retry_seconds, logging.ERROR)
        except (OSError, EOFError, IMAPClientError, ImapError) as e:
            _shutdown(client)
            return self._failed(e, self.backoff.next(), logging.WARNING)
        except Exception as e:  # a bug: log it with its traceback, keep the others running
            _shutdown(client)
            log.exception("queue %s: imap %s: unexpected error", self.queue.name, self.where)
            self.last_error = f"{type(e).__name__}: {e}"
            return self.backoff.next()
        _logout(client)
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
            _forget_untagged(client)
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
        if _forget_untagged(client):
            return  # EXISTS arrived inside an earlier command's answer: drain again first
        client.idle()
        deadline = self.monotonic() + self.settings.idle_renew_seconds
        quick_empties = 0
        while not self.halt.is_set() and self.monotonic() < deadline:
            t0 = self.monotonic()
            responses = client.idle_check(timeout=self.idle_check_seconds)
            if any(_is(r, b"BYE") for r in responses):
                raise ConnectionLost(f"imap {self.where}: server closed the connection (BYE)")
            if any(_is(r, b"EXISTS") for r in responses):
                break
            # idle_check swallows EOF and returns [] at once: a dead socket would spin here
            quick = not responses and self.monotonic() - t0 < self.idle_check_seconds / 2
            quick_empties = quick_empties + 1 if quick else 0
            if quick_empties >= 3:
                raise ConnectionLost(f"imap {self.where}: connection closed during IDLE")
        client.idle_done()


def _is(response: tuple[Any, ...], word: bytes) -> bool:
    return any(isinstance(x, bytes) and x.upper() == word for x in response[:2])


def _forget_untagged(client: IMAPClient) -> bool:
    """Drop untagged replies imaplib keeps forever; True if one was EXISTS (new mail)."""
    pending = getattr(getattr(client, "_imap", None), "untagged_responses", None)
    if not isinstance(pending, dict):
        return False
    exists = "EXISTS" in pending
    pending.clear()
    return exists


async def _in_thread(fn: Callable[[], None], *, name: str, halt: threading.Event) -> None:
    """Run fn in a dedicated thread (not the shared default pool: pollers block for hours)."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()

    def settle(exc: BaseException | None) -> None:
        if done.done():
            return
        if exc is None:
            done.set_result(None)
        else:
            done.set_exception(exc)

    def target() -> None:
        exc: BaseException | None = None
        try:
            fn()
        except BaseException as e:
            exc = e
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody is waiting
            loop.call_soon_threadsafe(settle, exc)

    threading.Thread(target=target, name=name, daemon=True).start()
    try:
        await asyncio.shield(done)
    except asyncio.CancelledError:
        halt.set()  # cancelled: stop the thread and still wait for its clean end
        await done
        raise


# -- the daemon entry point --------------------------------------------------------------
def make_pollers(
    config: Config, spool: Spool, engine: Engine, stop: asyncio.Event, **kwargs: Any
) -> list[Poller]:
    """One Poller per (queue, folder) with an [imap] table."""
    return [
        Poller(q, q.imap, folder, spool, engine, stop, **kwargs)
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
    a poller wrote messages to the spool.
    """
    wake = None
    if on_spooled is not None:
        loop = asyncio.get_running_loop()

        def wake() -> None:
            with contextlib.suppress(RuntimeError):  # loop closed: nobody to wake
                loop.call_soon_threadsafe(on_spooled)

    pollers = make_pollers(config, spool, engine, stop, on_spooled=wake)
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


# -- check-config --connect --------------------------------------------------------------
@dataclass(frozen=True)
class MailboxCheck:
    queue: str
    mailbox: str
    ok: bool
    detail: str


def _check_folder(queue: str, settings: ImapSettings, folder: str) -> MailboxCheck:
    mailbox = f"{settings.account()}/{folder}"
    try:
        client = connect(settings)
    except Exception as e:
        return MailboxCheck(queue, mailbox, False, describe_error(e, settings))
    try:
        if not client.folder_exists(folder):
            return MailboxCheck(queue, mailbox, False, f"folder {folder!r} does not exist")
        if settings.action == "move" and not client.folder_exists(settings.move_to):
            return MailboxCheck(
                queue, mailbox, False, f"move_to folder {settings.move_to!r} does not exist"
            )
        info = client.select_folder(folder, readonly=True)
        caps = [c for c in ("IDLE", "MOVE", "UIDPLUS") if client.has_capability(c)]
        detail = (
            f"ok: {int(info.get(b'EXISTS', 0))} message(s), UIDVALIDITY "
            f"{int(info[b'UIDVALIDITY'])}, {'+'.join(caps) or 'no IDLE (polling)'}"
        )
        return MailboxCheck(queue, mailbox, True, detail)
    except Exception as e:
        return MailboxCheck(queue, mailbox, False, describe_error(e, settings))
    finally:
        _logout(client)


def check_mailboxes(config: Config, *, max_workers: int = 8) -> list[MailboxCheck]:
    """Log in to every configured mailbox folder; report ok or exactly what failed."""
    jobs: list[tuple[str, ImapSettings, str]] = [
        (q.name, q.imap, f) for q in config.queues if q.imap is not None for f in q.imap.folders
    ]
    if not jobs:
        return []
    with ThreadPoolExecutor(max_workers=min(max_workers, len(jobs))) as pool:
        return list(pool.map(lambda j: _check_folder(*j), jobs))
