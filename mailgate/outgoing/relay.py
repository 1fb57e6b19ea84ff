"""Relay connections: one SMTP session reused for many messages, a small pool of them.

A delivery answers per recipient: the relay's 2xx recipients got the mail, a 4xx
recipient is retried later (alone), a 5xx recipient is done for good. An error before any
recipient was answered (connection, MAIL FROM, DATA) applies to every recipient.
"""

from __future__ import annotations

import contextlib
import os
import queue
import smtplib
import ssl
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from mailgate.config.model import Config
from mailgate.config.secrets import SecretError
from mailgate.outgoing import relay_auth
from mailgate.outgoing.smtputf8 import Smtputf8Missing, mail_options

T = TypeVar("T")


@dataclass(frozen=True)
class DeliveryResult:
    """What one attempt did, per recipient: 'CODE text' (2xx got it, 4xx retry, 5xx done)."""

    answers: dict[str, str] = field(default_factory=dict)
    detail: str = ""
    hold: str = ""  # why the row waits for an admin (`mailgate outbox release`), not retried

    @classmethod
    def every(cls, rcpts: Iterable[str], answer: str, hold: str = "") -> DeliveryResult:
        return cls({r: answer for r in rcpts}, answer, hold)

    @property
    def ok(self) -> bool:
        return bool(self.answers) and all(a[:1] == "2" for a in self.answers.values())


def is_done(answer: str) -> bool:
    """A recipient with a 2xx (delivered) or a 5xx (refused for good) is never tried again."""
    return answer[:1] in ("2", "5")


def deliver_maildir(root: Path, message_id: str, rcpts: list[str], raw: bytes) -> DeliveryResult:
    """Write one message into a maildir (tmp, fsync, rename to new)."""
    for d in ("tmp", "new", "cur"):
        (root / d).mkdir(parents=True, exist_ok=True)
    name = f"{time.time_ns()}.{os.getpid()}.{abs(hash(message_id)) % 10**8}.mailgate"
    tmp = root / "tmp" / name
    with open(tmp, "wb") as f:
        f.write(raw.replace(b"\r\n", b"\n"))
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, root / "new" / name)
    return DeliveryResult.every(rcpts, f"250 written to {root / 'new' / name}")


def _text(err: bytes | str) -> str:
    return err.decode(errors="replace") if isinstance(err, bytes) else str(err)


class Relay:
    """One SMTP connection, opened on first use and reused until it fails or is closed."""

    def __init__(self, config: Config):
        self.settings = config.relay
        self.config = config
        self.smtp: smtplib.SMTP | None = None

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        ctx = ssl.create_default_context()
        if s.tls:
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                s.host, s.port, timeout=s.timeout_seconds, context=ctx
            )
        else:
            smtp = smtplib.SMTP(s.host, s.port, timeout=s.timeout_seconds)
            if s.starttls:
                smtp.starttls(context=ctx)
        relay_auth.login(smtp, self.config)  # password or OAuth2, read at each connection
        return smtp

    def send(self, mail_from: str, rcpts: list[str], raw: bytes) -> DeliveryResult:
        reused = self.smtp is not None
        try:
            return self._send(mail_from, rcpts, raw)
        except smtplib.SMTPServerDisconnected:
            self.close()
            if not reused:
                raise
        # the relay closed an idle connection we kept: once more on a fresh one
        return self._send(mail_from, rcpts, raw)

    def _send(self, mail_from: str, rcpts: list[str], raw: bytes) -> DeliveryResult:
        try:
            if self.smtp is None:
                self.smtp = self._connect()
            options = mail_options(self.smtp, mail_from, rcpts, raw)
            refused = self.smtp.sendmail(mail_from, rcpts, raw, mail_options=options)
        except smtplib.SMTPServerDisconnected:
            raise
        except Smtputf8Missing as e:  # held, not failed: a relay that offers it can send it
            return DeliveryResult.every(rcpts, f"held: {e}", hold=str(e))
        except smtplib.SMTPRecipientsRefused as e:
            answers = {r: f"{c} {_text(m)}" for r, (c, m) in e.recipients.items()}
            return DeliveryResult(answers, f"recipients refused: {e.recipients}")
        except smtplib.SMTPResponseException as e:
            self.close()
            answer = f"{e.smtp_code} {_text(e.smtp_error)}"
            return DeliveryResult.every(rcpts, answer)
        except (TimeoutError, OSError, smtplib.SMTPException, SecretError) as e:
            self.close()
            return DeliveryResult.every(rcpts, f"{type(e).__name__}: {e}")
        answers = {r: "250 accepted" for r in rcpts}
        answers.update({r: f"{c} {_text(m)}" for r, (c, m) in refused.items()})
        detail = f"partly refused: {refused}" if refused else "250 accepted"
        return DeliveryResult(answers, detail)

    def close(self) -> None:
        if self.smtp is not None:
            with contextlib.suppress(OSError, smtplib.SMTPException):
                self.smtp.quit()
            self.smtp = None


class RelayPool:
    """`size` relay connections, each in its own thread, kept open across batches."""

    def __init__(self, config: Config, size: int):
        self.size = size
        self.config = config
        self._idle: queue.SimpleQueue[Relay] = queue.SimpleQueue()
        self._relays = [Relay(config) for _ in range(size)]
        for r in self._relays:
            self._idle.put(r)
        self._pool = ThreadPoolExecutor(size, thread_name_prefix="relay")

    def run(self, jobs: Iterable[Callable[[Relay], T]]) -> Iterator[Future[T]]:
        """Start the jobs in the given order (the pool works FIFO); one future per job."""

        def on_a_relay(job: Callable[[Relay], T]) -> T:
            relay = self._idle.get()
            try:
                return job(relay)
            finally:
                self._idle.put(relay)

        return iter([self._pool.submit(on_a_relay, job) for job in jobs])

    def close(self) -> None:
        """Say QUIT on every connection (they reopen on next use)."""
        for r in self._relays:
            r.close()

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True)
        self.close()
