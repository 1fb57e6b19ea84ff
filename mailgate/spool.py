"""The durable on-disk message queue between the sources and the worker.

Layout under the spool directory:
  tmp/       files being written (never read by the worker)
  incoming/  durable messages waiting for the worker, one file each: NAME.msg = the
             envelope's JSON on the first line, then the raw message bytes unchanged
  claimed/   only from older versions: moved back to incoming/ on start
  shunt/     messages that failed `max_attempts` times: NAME.msg, its envelope holding
             each failure's stage and reason (`mailgate shunt show` prints them and the bytes)

Older versions wrote each message as two files, NAME.eml (the bytes) + NAME.json (the
envelope), in incoming/ and shunt/; such pairs are still read, retried, shunted and
removed as pairs, so a spool (or an old `mailgate ingest` still running) from before an
upgrade is processed with its envelopes.

`put()` returns only after the file and its directory entry are on disk: a source
acknowledges (250, exit 0, IMAP flag/move) only after `put()` returned. The file is
renamed in whole, so a message is never visible without its envelope.
Concurrent puts share the directory fsync (`GroupFsync`: group commit), each still
returning only after an fsync that began after its own rename.
`done()` removes a message; the worker calls it only after the database commit.

The worker holds an exclusive lock on the spool, so taking a message needs no rename: it
stays in incoming/ until its results are committed. A crash in between leaves it there
to be processed again, and the store's dedupe key makes that second pass a no-op.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Collection
from pathlib import Path
from typing import NamedTuple

from mailgate.durable import GroupFsync, fsync_dir, write_durable
from mailgate.envelope import Envelope
from mailgate.spool_files import (
    MSG,
    ORPHAN_GRACE_SECONDS,
    PAIR,
    log,
    messages,
    pair_envelope,
    read,
    read_head,
    shunt_envelope,
    split_msg,
    unlink,
)

SUBDIRS = ("tmp", "incoming", "claimed", "shunt")


class SpoolEntry(NamedTuple):
    name: str
    envelope: Envelope


class Spooled(NamedTuple):
    """A waiting message as read from incoming/, in the worker or in a parse process."""

    entry: SpoolEntry
    raw: bytes | OSError  # or why the file could not be read: a failure at stage "read"
    warning: str = ""  # for the worker's log (`report`): the parse processes do not log


def read_waiting(incoming: str, name: str) -> Spooled | None:
    """A claimed message's envelope and bytes; None when it is not there to process: an old
    pair's envelope may still be coming (looked at again on a later claim), or it moved away."""
    raw: bytes | OSError
    try:
        data = read(f"{incoming}/{name}{MSG}")
    except FileNotFoundError:
        return _read_pair(incoming, name)
    except OSError as e:  # recorded for that message alone (its envelope is in it too)
        envelope, raw, warning = Envelope(source="unknown"), e, ""
    else:
        envelope, start, warning = split_msg(data, name)
        raw = data[start:] if start else data
    return Spooled(SpoolEntry(name, envelope), raw, warning)


def _read_pair(incoming: str, name: str) -> Spooled | None:
    """An old pair's envelope and bytes (None: not there to process)."""
    envelope, warning = pair_envelope(incoming, name)
    if envelope is None:
        return None
    try:
        raw: bytes | OSError = read(f"{incoming}/{name}.eml")
    except OSError as e:  # recorded for that message alone
        raw = e
    return Spooled(SpoolEntry(name, envelope), raw, warning)


def read_envelope(incoming: str, name: str) -> tuple[Envelope | None, str]:
    """A message's envelope (None: not there to process) and what is wrong with it ("")."""
    try:
        head = read_head(f"{incoming}/{name}{MSG}")
    except FileNotFoundError:
        return pair_envelope(incoming, name)
    except OSError:  # its bytes cannot be read either: that failure is recorded at "read"
        return Envelope(source="unknown"), ""
    envelope, _, warning = split_msg(head, name)
    return envelope, warning


def report(warning: str) -> None:
    """Log a warning of `read_waiting` in the worker's process (where it was read may not log)."""
    if warning:
        log("warning", "%s", warning)


class SpoolLocked(Exception):
    """Another process is already working this spool."""


class Spool:
    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root)
        for d in SUBDIRS:
            (self.root / d).mkdir(parents=True, exist_ok=True)
        self._lock_fd: int | None = None
        self._backlog: deque[str] = deque()
        # committed messages whose files a background thread is still removing
        self._removing: set[str] = set()
        self._remove_queue: queue.SimpleQueue[list[str]] = queue.SimpleQueue()  # a batch each
        self._remover: threading.Thread | None = None
        self._removed = threading.Condition()
        self.incoming_sync = GroupFsync(self._dir("incoming"))  # shared by concurrent puts

    def _dir(self, name: str) -> Path:
        return self.root / name

    # -- sources -------------------------------------------------------------------------
    def put(self, raw: bytes, envelope: Envelope) -> str:
        """Store raw bytes durably; return the entry name. Raises OSError on failure."""
        name = f"{time.time_ns():020d}-{os.getpid()}-{os.urandom(6).hex()}"
        if not envelope.received_at:
            envelope = envelope._replace(received_at=time.time())
        line = envelope.to_line()
        tmp = self._dir("tmp") / f"{name}{MSG}"
        try:
            write_durable(tmp, line, raw)
            os.rename(tmp, self._dir("incoming") / f"{name}{MSG}")  # visible whole, or not
        except BaseException:
            # not acknowledged, so the source still has it: a full disk must not fill up
            # with half-written files until the next restart
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        self.incoming_sync.sync()
        return name

    # -- worker --------------------------------------------------------------------------
    def lock(self) -> None:
        """Make this process the only worker of the spool (released at exit)."""
        fd = os.open(self.root / "worker.lock", os.O_RDWR | os.O_CREAT, 0o640)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as e:
            os.close(fd)
            raise SpoolLocked(f"{self.root} is in use by another mailgate worker") from e
        self._lock_fd = fd

    def unlock(self) -> None:
        self.flush(timeout=30)
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def recover(self) -> int:
        """Put messages a crashed worker had claimed back in line; drop half-written tmp files."""
        n = 0
        claimed, inc = self._dir("claimed"), self._dir("incoming")
        for p in sorted(claimed.glob("*.json")):
            os.rename(p, inc / p.name)
        for p in sorted(claimed.glob("*.eml")):
            os.rename(p, inc / p.name)
            n += 1
        for p in self._dir("tmp").iterdir():
            # never acknowledged: the source still has the message
            p.unlink(missing_ok=True)
        for d in (inc, self._dir("shunt")):
            for p in d.glob("*.json"):
                # an old pair's message always lands before its envelope: this one's is gone
                if not p.with_suffix(".eml").exists():
                    p.unlink(missing_ok=True)
        for p in self._dir("shunt").glob("*.new"):
            # a shunt retry that died while rewriting its copy (the entry itself is intact)
            with contextlib.suppress(FileNotFoundError):
                if time.time() - p.stat().st_mtime > ORPHAN_GRACE_SECONDS:
                    p.unlink()
        if n:
            fsync_dir(inc)
            log("info", "spool: recovered %d claimed message(s)", n)
        return n

    def pending(self) -> int:
        """Messages waiting for the worker (committed ones still being removed do not count)."""
        with self._removed:
            removing = set(self._removing)
        return sum(1 for n in messages(self._dir("incoming")) if n not in removing)

    @property
    def incoming(self) -> str:
        """Where the waiting messages are (what `read_waiting` reads, in any process)."""
        return str(self._dir("incoming"))

    def claim_names(self, limit: int, busy: Collection[str] = ()) -> list[str]:
        """The names of the oldest `limit` messages waiting (the caller holds the worker
        lock), never one of `busy` (the worker's batches in flight, claimed but not yet done);
        their files are read by `read_waiting`, where the batch is parsed."""
        if not self._backlog:
            with self._removed:
                skip = set(self._removing) | set(busy)
            self._backlog.extend(
                n for n in sorted(messages(self._dir("incoming"))) if n not in skip
            )
        return [self._backlog.popleft() for _ in range(min(limit, len(self._backlog)))]

    def claim(self, limit: int, busy: Collection[str] = ()) -> list[SpoolEntry]:
        """The oldest messages waiting, with their envelopes, in this process (tools, tests);
        one not there to process yet is left for a later claim."""
        inc, out = self.incoming, []
        for name in self.claim_names(limit, busy):
            envelope, warning = read_envelope(inc, name)
            report(warning)
            if envelope is not None:
                out.append(SpoolEntry(name, envelope))
        return out

    def read(self, entry: SpoolEntry) -> bytes:
        try:
            data = read(f"{self.incoming}/{entry.name}{MSG}")
        except FileNotFoundError:
            return read(f"{self.incoming}/{entry.name}.eml")
        return data[split_msg(data, entry.name)[1] :]

    def done(self, entries: list[SpoolEntry]) -> None:
        """Remove messages whose results are committed (in a background thread).

        A crash before the removal only means the message is processed again, which the
        store's dedupe key turns into a no-op.
        """
        if not entries:
            return
        if self._remover is None or not self._remover.is_alive():
            self._remover = threading.Thread(
                target=self._remove_loop, name="spool-remove", daemon=True
            )
            self._remover.start()
        names = [e.name for e in entries]
        with self._removed:
            self._removing.update(names)
        self._remove_queue.put(names)

    def _remove_loop(self) -> None:
        inc = str(self._dir("incoming"))
        while names := self._remove_queue.get():  # a batch each; its waiters woken once
            for name in names:
                if not unlink(f"{inc}/{name}{MSG}"):  # one unlink; an old pair: two more
                    for suffix in PAIR:
                        unlink(f"{inc}/{name}{suffix}")
            with self._removed:
                self._removing.difference_update(names)
                self._removed.notify_all()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every committed message's files are removed."""
        with self._removed:
            return self._removed.wait_for(lambda: not self._removing, timeout)

    def fail(
        self, entry: SpoolEntry, stage: str, reason: str, max_attempts: int, traceback: str = ""
    ) -> bool:
        """Record a failed try; after `max_attempts` move the message to the shunt (True)."""
        env = entry.envelope.with_failure(stage, reason, traceback)
        inc, sh = self._dir("incoming"), self._dir("shunt")
        msg = inc / f"{entry.name}{MSG}"
        try:
            data = read(msg)
        except FileNotFoundError:
            return self._fail_pair(entry.name, env, max_attempts)
        except OSError:
            # the failure cannot be written into a file that cannot be read: it goes to the
            # shunt as it is, where `shunted()` shows why it cannot be read
            os.rename(msg, sh / msg.name)
            fsync_dir(sh)
            fsync_dir(inc)
            return True
        start = split_msg(data, entry.name)[1]
        # the new envelope in place first (an atomic replace), then the move: a crash
        # between leaves it in incoming/ with the failure counted, never in two places
        self._rewrite(msg, env, memoryview(data)[start:], self._dir("tmp"))
        if env.attempts < max_attempts:
            self.incoming_sync.sync()
            return False
        os.rename(msg, sh / msg.name)
        fsync_dir(sh)
        fsync_dir(inc)
        return True

    @staticmethod
    def _rewrite(msg: Path, env: Envelope, raw: memoryview, tmp_dir: Path) -> None:
        """Replace the .msg file `msg` by one with `env` and the same raw bytes (no dir fsync)."""
        tmp = tmp_dir / f"{msg.name}.new"
        try:
            write_durable(tmp, env.to_line(), raw)
            os.rename(tmp, msg)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def _fail_pair(self, name: str, env: Envelope, max_attempts: int) -> bool:
        """`fail()` for an old pair: the envelope rewritten, the pair shunted as a pair."""
        inc = self._dir("incoming")
        if not (inc / f"{name}.eml").exists():
            log("warning", "spool: %s to record a failure for is gone", name)
            return False
        target = self._dir("shunt") if env.attempts >= max_attempts else inc
        write_durable(self._dir("tmp") / f"{name}.json", env.to_json())
        # the envelope first: the .eml is what makes an entry visible in its new place
        os.rename(self._dir("tmp") / f"{name}.json", target / f"{name}.json")
        if target is not inc:
            os.rename(inc / f"{name}.eml", target / f"{name}.eml")
            (inc / f"{name}.json").unlink(missing_ok=True)
        fsync_dir(target)
        return target is not inc

    def shunt_now(self, entry: SpoolEntry, stage: str, reason: str) -> None:
        """Shunt at once: retrying cannot help (the bytes are not mail)."""
        self.fail(entry, stage, reason, max_attempts=0)

    # -- shunt administration ------------------------------------------------------------
    def shunted(self) -> list[SpoolEntry]:
        sh = self._dir("shunt")
        return [SpoolEntry(name, shunt_envelope(sh, name)) for name in sorted(messages(sh))]

    def shunt_read(self, name: str) -> bytes:
        sh = self._dir("shunt")
        try:
            data = read(sh / f"{name}{MSG}")
        except FileNotFoundError:
            return (sh / f"{name}.eml").read_bytes()
        return data[split_msg(data, name)[1] :]

    def shunt_retry(self, name: str) -> None:
        """Put a shunted message back in line with a fresh attempt count (failures kept)."""
        sh, inc = self._dir("shunt"), self._dir("incoming")
        msg = sh / f"{name}{MSG}"
        try:
            data: bytes | None = read(msg)
        except FileNotFoundError:
            return self._shunt_retry_pair(name)
        except OSError:
            data = None  # back as it is: reading it fails again and shunts it again, visibly
        if data is not None:
            env, start, _ = split_msg(data, name)
            # rewritten in place, then moved: never in both directories
            self._rewrite(msg, env._replace(attempts=0), memoryview(data)[start:], sh)
        os.rename(msg, inc / msg.name)
        self.incoming_sync.sync()
        fsync_dir(sh)

    def _shunt_retry_pair(self, name: str) -> None:
        sh, inc = self._dir("shunt"), self._dir("incoming")
        if not (sh / f"{name}.eml").exists():
            raise FileNotFoundError(f"no shunted message {name!r}")
        env = Envelope.from_json((sh / f"{name}.json").read_bytes())
        write_durable(sh / f"{name}.json.new", env._replace(attempts=0).to_json())
        os.rename(sh / f"{name}.json.new", inc / f"{name}.json")
        # its old copy goes first: once the .eml is in, the worker may shunt it here again
        (sh / f"{name}.json").unlink(missing_ok=True)
        os.rename(sh / f"{name}.eml", inc / f"{name}.eml")
        fsync_dir(inc)

    def shunt_discard(self, name: str) -> None:
        sh = self._dir("shunt")
        try:
            return (sh / f"{name}{MSG}").unlink()
        except FileNotFoundError:
            pass  # an old pair
        if not (sh / f"{name}.eml").exists():
            raise FileNotFoundError(f"no shunted message {name!r}")
        for suffix in PAIR:
            (sh / f"{name}{suffix}").unlink(missing_ok=suffix == ".json")
