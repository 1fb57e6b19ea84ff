"""The durable on-disk message queue between the sources and the worker.

Layout under the spool directory:
  tmp/       files being written (never read by the worker)
  incoming/  durable messages waiting for the worker: NAME.eml + NAME.json (envelope)
  claimed/   only from older versions: moved back to incoming/ on start
  shunt/     messages that failed `max_attempts` times: NAME.eml + NAME.json with the reason

`put()` returns only after the bytes, the envelope and the directory entry are on disk:
a source acknowledges (250, exit 0, IMAP flag/move) only after `put()` returned.
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
import json
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import NamedTuple

from mailgate.durable import GroupFsync, fsync_dir, write_durable


def _log(level: str, msg: str, *args: object) -> None:
    """Log via `logging`, imported at first use: the MTA pipe imports this module per message."""
    import logging

    getattr(logging.getLogger(__name__), level)(msg, *args)


SUBDIRS = ("tmp", "incoming", "claimed", "shunt")
# how long a message may wait for its envelope before it counts as left by a dead writer
ORPHAN_GRACE_SECONDS = 10.0
_FILES = (".eml", ".json")  # a message's two files in a directory of the spool

IMPORT_SOURCE = "import"  # `mailgate import`: "import", "import+ack", "import+ack+notify"


def imported_with(envelope: Envelope, what: str, default: bool) -> bool:
    """Whether mail that `mailgate import` spooled asked for `what` (ack, notify); for
    mail from any other source, `default`."""
    parts = envelope.source.split("+")
    return what in parts[1:] if parts[0] == IMPORT_SOURCE else default


class Envelope(NamedTuple):
    """How a message reached us: the SMTP envelope, or what the source knows."""

    source: str  # "smtp", "lmtp", "pipe", "imap:<mailbox>"
    mail_from: str = ""
    rcpt_tos: tuple[str, ...] = ()
    queue: str = ""  # set when the source already knows the queue (pipe --queue, IMAP)
    received_at: float = 0.0
    attempts: int = 0
    # one {"stage", "reason", "at"} per failed try, oldest first
    failures: tuple[dict, ...] = ()
    # each distinct {"stage", "text"} once, with "attempts": the failures (1-based) it covers
    tracebacks: tuple[dict, ...] = ()

    def to_json(self) -> bytes:
        d = self._asdict()
        d["rcpt_tos"] = list(self.rcpt_tos)
        d["failures"] = list(self.failures)
        d["tracebacks"] = list(self.tracebacks)
        return json.dumps(d, ensure_ascii=False).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Envelope:
        d = json.loads(data)
        d["rcpt_tos"] = tuple(d.get("rcpt_tos", ()))
        d["failures"] = tuple(d.get("failures", ()))
        d["tracebacks"] = tuple(d.get("tracebacks", ()))
        return cls(**d)

    def with_failure(self, stage: str, reason: str, traceback: str = "") -> Envelope:
        """One more failed try; a traceback already recorded only gains this attempt."""
        failure = {"stage": stage, "reason": reason[:4000], "at": time.time()}
        number = len(self.failures) + 1
        tracebacks = _add_traceback(self.tracebacks, stage, traceback[:8000], number)
        return self._replace(
            attempts=self.attempts + 1,
            failures=(*self.failures, failure),
            tracebacks=tracebacks,
        )


def _add_traceback(
    tracebacks: tuple[dict, ...], stage: str, text: str, number: int
) -> tuple[dict, ...]:
    if not text:
        return tracebacks
    for i, t in enumerate(tracebacks):
        if t.get("stage") == stage and t.get("text") == text:
            seen = {**t, "attempts": [*t.get("attempts", ()), number]}
            return (*tracebacks[:i], seen, *tracebacks[i + 1 :])
    return (*tracebacks, {"stage": stage, "text": text, "attempts": [number]})


class SpoolEntry(NamedTuple):
    name: str
    envelope: Envelope


class Spooled(NamedTuple):
    """A waiting message as read from incoming/, in the worker or in a parse process."""

    entry: SpoolEntry
    raw: bytes | OSError  # or why the .eml could not be read: a failure at stage "read"
    warning: str = ""  # for the worker's log (`report`): the parse processes do not log


def read_waiting(incoming: str, name: str) -> Spooled | None:
    """A claimed message's envelope and bytes; None when it is not there to process: its
    envelope may still be coming (looked at again on a later claim), or it moved away."""
    envelope, warning = read_envelope(incoming, name)
    if envelope is None:
        return None
    try:
        raw: bytes | OSError = _read(f"{incoming}/{name}.eml")
    except OSError as e:  # recorded for that message alone
        raw = e
    return Spooled(SpoolEntry(name, envelope), raw, warning)


def read_envelope(incoming: str, name: str) -> tuple[Envelope | None, str]:
    """A message's envelope (None: not there to process) and what is wrong with it ("")."""
    try:
        return Envelope.from_json(_read(f"{incoming}/{name}.json")), ""
    except FileNotFoundError:
        return _without_envelope(f"{incoming}/{name}.eml")
    except (OSError, ValueError, TypeError) as e:
        warning = f"spool: {name} has an unreadable envelope ({e}); using an empty one"
        return Envelope(source="unknown"), warning


def _without_envelope(eml: str) -> tuple[Envelope | None, str]:
    """A message whose envelope is missing: wait while a put() may be finishing; after
    that its writer died before acknowledging, and the message is routed by headers."""
    try:
        age = time.time() - os.stat(eml).st_ctime  # ctime: when it was renamed in
    except FileNotFoundError:
        return None, ""  # moved away meanwhile (shunt administration)
    if age < ORPHAN_GRACE_SECONDS:
        return None, ""  # looked at again on the next listing
    warning = (
        f"spool: {os.path.basename(eml)} has no envelope (its writer died); routing by headers"
    )
    return Envelope(source="recovered"), warning


def report(warning: str) -> None:
    """Log a warning of `read_waiting` in the worker's process (where it was read may not log)."""
    if warning:
        _log("warning", "%s", warning)


class SpoolLocked(Exception):
    """Another process is already working this spool."""


def _messages(d: Path) -> Iterator[str]:
    """Message names in `d`, streamed (glob held every entry: 12 MiB at 20,000 waiting)."""
    with os.scandir(d) as entries:
        yield from (e.name[:-4] for e in entries if e.name.endswith(".eml"))


def _read(path: str) -> bytes:
    """A whole file, unbuffered: half a Path's read_bytes (two are read for each message)."""
    with open(path, "rb", buffering=0) as f:
        return f.readall()


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
        tmp, inc = self._dir("tmp"), self._dir("incoming")
        try:
            write_durable(tmp / f"{name}.json", envelope.to_json())
            write_durable(tmp / f"{name}.eml", raw)
            # the message lands first, its envelope right after: a crash in between leaves a
            # message the worker can still route by its headers, never an envelope alone
            os.rename(tmp / f"{name}.eml", inc / f"{name}.eml")
            os.rename(tmp / f"{name}.json", inc / f"{name}.json")
        except BaseException:
            # not acknowledged, so the source still has it: a full disk must not fill up
            # with half-written files until the next restart
            for suffix in _FILES:
                with contextlib.suppress(OSError):
                    os.unlink(tmp / f"{name}{suffix}")
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
                # a message always lands before its envelope: this one's message is gone
                if not p.with_suffix(".eml").exists():
                    p.unlink(missing_ok=True)
        if n:
            fsync_dir(inc)
            _log("info", "spool: recovered %d claimed message(s)", n)
        return n

    def pending(self) -> int:
        """Messages waiting for the worker (committed ones still being removed do not count)."""
        with self._removed:
            removing = set(self._removing)
        return sum(1 for n in _messages(self._dir("incoming")) if n not in removing)

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
                n for n in sorted(_messages(self._dir("incoming"))) if n not in skip
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
        return _read(f"{self.incoming}/{entry.name}.eml")

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
            for path in (f"{inc}/{name}{suffix}" for name in names for suffix in _FILES):
                try:
                    os.unlink(path)
                except FileNotFoundError:
                    pass
                except OSError as e:  # the next start processes it again: a no-op
                    _log("warning", "spool: could not remove %s: %s", path, e)
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
        inc = self._dir("incoming")
        target = self._dir("shunt") if env.attempts >= max_attempts else inc
        write_durable(self._dir("tmp") / f"{entry.name}.json", env.to_json())
        # the envelope first: the .eml is what makes an entry visible in its new place
        os.rename(self._dir("tmp") / f"{entry.name}.json", target / f"{entry.name}.json")
        if target is not inc:
            os.rename(inc / f"{entry.name}.eml", target / f"{entry.name}.eml")
            (inc / f"{entry.name}.json").unlink(missing_ok=True)
        fsync_dir(target)
        return target is not inc

    def shunt_now(self, entry: SpoolEntry, stage: str, reason: str) -> None:
        """Shunt at once: retrying cannot help (the bytes are not mail)."""
        self.fail(entry, stage, reason, max_attempts=0)

    # -- shunt administration ------------------------------------------------------------
    def shunted(self) -> list[SpoolEntry]:
        sh = self._dir("shunt")
        out = []
        for p in sorted(sh.glob("*.eml")):
            name = p.name[:-4]
            try:
                env = Envelope.from_json((sh / f"{name}.json").read_bytes())
            except (OSError, ValueError, TypeError):
                env = Envelope(source="unknown")
            out.append(SpoolEntry(name, env))
        return out

    def shunt_read(self, name: str) -> bytes:
        return (self._dir("shunt") / f"{name}.eml").read_bytes()

    def shunt_retry(self, name: str) -> None:
        """Put a shunted message back in line with a fresh attempt count (failures kept)."""
        sh, inc = self._dir("shunt"), self._dir("incoming")
        if not (sh / f"{name}.eml").exists():
            raise FileNotFoundError(f"no shunted message {name!r}")
        env = Envelope.from_json((sh / f"{name}.json").read_bytes())
        write_durable(sh / f"{name}.json.new", env._replace(attempts=0).to_json())
        os.rename(sh / f"{name}.json.new", inc / f"{name}.json")
        os.rename(sh / f"{name}.eml", inc / f"{name}.eml")
        fsync_dir(inc)

    def shunt_discard(self, name: str) -> None:
        sh = self._dir("shunt")
        if not (sh / f"{name}.eml").exists():
            raise FileNotFoundError(f"no shunted message {name!r}")
        for suffix in _FILES:
            (sh / f"{name}{suffix}").unlink(missing_ok=suffix == ".json")
