"""Test helpers: a config in a temp dir, a daemon in a background thread, test messages."""

from __future__ import annotations

import asyncio
import contextlib
import os
import smtplib
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import TypeVar

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from mailgate.app import Daemon
from mailgate.config import load as config_mod
from mailgate.config.model import Config
from mailgate.db import engine as db
from mailgate.db.models import Article, OutboxRow, Ticket
from mailgate.pgp.keyring import Keyrings
from mailgate.pipeline.steps import Pipeline
from mailgate.pipeline.worker import Worker
from mailgate.spool import Spool

T = TypeVar("T")

QUEUES = {
    "support": {"tag": "support", "priority": 50},
    "billing": {"tag": "billing", "priority": 60},
    "sales": {"tag": "sales", "priority": 40},
}


def write_config(
    root: Path,
    *,
    relay_port: int | None = None,
    listen_port: int = 0,
    mode: str = "smtp",
    database_url: str = "",
    queue_extra: dict[str, str] | None = None,
    agents_toml: str | None = None,
    main_extra: str = "",
    relay_extra: str = "",
    worker_extra: str = "",
    period_hours: float = 24,
    batch_size: int = 32,  # the daemon's default is 128: tests see batches split sooner
) -> Path:
    """Write mailgate.toml, queues/*.toml and agents.toml under root/config; return the path."""
    cfg = root / "config"
    (cfg / "queues").mkdir(parents=True, exist_ok=True)
    relay = f'host = "127.0.0.1"\nport = {relay_port}\n' if relay_port else 'host = ""\n'
    relay += "retry_initial_seconds = 0.2\nretry_max_seconds = 1\n" + relay_extra
    db_line = f'database_url = "{database_url}"\n' if database_url else ""
    (cfg / "mailgate.toml").write_text(
        f"""[mailgate]
data_dir = "../var"
{db_line}hostname = "helpdesk.example.test"
secret = {{ env = "MG_TEST_SECRET_UNSET_OK" }}
{main_extra}
[listener]
host = "127.0.0.1"
port = {listen_port}
mode = "{mode}"
max_message_bytes = 2000000

[relay]
{relay}
[worker]
batch_size = {batch_size}
shutdown_timeout_seconds = 10
{worker_extra}"""
    )
    for name, q in QUEUES.items():
        extra = (queue_extra or {}).get(name, "")
        # tests count what the relay gets: agent notifications only where a test asks
        quiet = "" if "[agent_mail]" in extra else "[agent_mail]\nnotify = false\n\n"
        (cfg / "queues" / f"{name}.toml").write_text(
            f"""name = "{name}"
addresses = ["{name}@example.test"]
subject_tag = "{q["tag"]}"
from_name = "Example {name.capitalize()}"

{quiet}[autoresponse]
enabled = true
period_hours = {period_hours}

[priority]
initial = {q["priority"]}
{extra}
"""
        )
    (cfg / "agents.toml").write_text(
        agents_toml
        if agents_toml is not None
        else """[[agents]]
name = "alice"
address = "alice@example.test"
full_name = "Alice Example"
description = "Senior engineer"
signature = "Alice"
queues = ["support", "billing"]
tier = "L2"
role = "admin"
"""
    )
    return cfg / "mailgate.toml"


# the test configs take the HMAC secret from this variable (child processes inherit it)
os.environ.setdefault("MG_TEST_SECRET_UNSET_OK", "test-secret-0123456789abcdef")


def load(path: Path) -> Config:
    return config_mod.load(path)


def message(
    *,
    sender: str = "customer@example.com",
    name: str = "Carla Customer",
    to: str = "support@example.test",
    subject: str = "Printer is broken",
    body: str = "Hello,\nmy printer is broken.\n",
    message_id: str | None = None,
    in_reply_to: str | None = None,
    references: str | None = None,
    extra: str = "",
    date: datetime | None = None,
) -> bytes:
    """A small RFC 5322 message from dedented parts."""
    mid = message_id or make_msgid(domain="example.com")
    lines = [
        f"From: {name} <{sender}>",
        f"To: {to}",
        f"Subject: {subject}",
        f"Date: {format_datetime(date or datetime.now(UTC))}",
        f"Message-ID: {mid}",
    ]
    if in_reply_to:
        lines.append(f"In-Reply-To: {in_reply_to}")
    if references:
        lines.append(f"References: {references}")
    if extra:
        lines += textwrap.dedent(extra).strip("\n").splitlines()
    lines += [
        "MIME-Version: 1.0",
        'Content-Type: text/plain; charset="utf-8"',
        "Content-Transfer-Encoding: 8bit",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n" + body.replace("\n", "\r\n")).encode("utf-8")


class RunningDaemon:
    """A Daemon serving on its own event loop in a thread."""

    def __init__(self, config: Config, sweep_seconds: float = 60.0):
        self.daemon = Daemon(config, sweep_seconds=sweep_seconds)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.error: BaseException | None = None

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self.daemon.serve(install_signals=False))
        except BaseException as e:  # noqa: BLE001 - reported to the test
            self.error = e
        finally:
            self.loop.close()

    def start(self) -> RunningDaemon:
        self.thread.start()
        ready = self.daemon.ready  # an asyncio.Event of the daemon's loop: polled from here
        wait_until(lambda: ready.is_set() or not self.thread.is_alive(), 30, "the daemon")
        if not ready.is_set():
            raise RuntimeError(f"daemon did not start: {self.error!r}")
        return self

    @property
    def port(self) -> int:
        assert self.daemon.listen_port is not None
        return self.daemon.listen_port

    @property
    def engine(self) -> Engine:
        assert self.daemon.engine is not None
        return self.daemon.engine

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.daemon.stop.set)
        self.thread.join(30)
        if self.error and not isinstance(self.error, SystemExit):
            raise self.error

    def send(
        self, raw: bytes, rcpts: list[str] | None = None, sender: str = "customer@example.com"
    ) -> None:
        with smtplib.SMTP("127.0.0.1", self.port, timeout=10) as s:
            s.sendmail(sender, rcpts or ["support@example.test"], raw)


@contextlib.contextmanager
def running(config: Config, sweep_seconds: float = 60.0) -> Iterator[RunningDaemon]:
    d = RunningDaemon(config, sweep_seconds).start()
    try:
        yield d
    finally:
        d.stop()


def wait_until(
    predicate: Callable[[], T], timeout: float = 15.0, what: str = "condition", *, interval=0.05
) -> T:
    """The predicate's first true value; TimeoutError after `timeout` seconds.

    The one polling wait of the tests, for states no event announces.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def tickets(engine: Engine) -> list[Ticket]:
    with Session(engine) as s:
        rows = list(s.scalars(select(Ticket).order_by(Ticket.id)))
        for t in rows:
            _ = (t.articles, t.queues, t.ccs)
        s.expunge_all()
        return rows


def article_count(engine: Engine) -> int:
    with Session(engine) as s:
        return len(list(s.scalars(select(Article.id))))


def outbox(engine: Engine) -> list[OutboxRow]:
    with Session(engine) as s:
        rows = list(s.scalars(select(OutboxRow).order_by(OutboxRow.id)))
        s.expunge_all()
        return rows


def batches_redone(monkeypatch) -> list[bool]:  # type: ignore[no-untyped-def]
    """Watch every batch transaction the worker runs from now on: the list gets each one's
    `isolate` in order (False: optimistic, True: redone message by message)."""
    redone: list[bool] = []
    transaction = Worker._transaction

    def watched(self, entries, raws, prepared, isolate):  # type: ignore[no-untyped-def]
        redone.append(isolate)
        return transaction(self, entries, raws, prepared, isolate)

    monkeypatch.setattr(Worker, "_transaction", watched)
    return redone


def with_three_tickets(url: str, now: datetime) -> Engine:
    """A migrated database at `url` holding tickets 1, 2 and 3 of one requester (the
    governor's tests count their windows' sends about them)."""
    from mailgate.store.tickets import insert_ticket

    engine = db.connect(url)
    with engine.begin() as conn:
        for t in (1, 2, 3):
            insert_ticket(
                conn,
                title=f"t{t}",
                requester_addr="ann@c.example",
                requester_name="",
                queues=["support"],
                type="email",
                priority=0,
                now=now,
            )
    return engine


def offline(config: Config) -> tuple[Engine, Spool, Worker]:
    """Engine, spool and worker without the daemon: for driving the pipeline synchronously."""
    engine = db.connect(config.database_url)
    spool = Spool(config.spool_dir)
    return engine, spool, Worker(config, engine, spool, Pipeline(config, keyrings=Keyrings()))


def spawned_children() -> set[int]:
    """This process's children started by multiprocessing's spawn (the parse processes)."""
    pids = set()
    for task in Path("/proc/self/task").iterdir():
        try:
            children = (task / "children").read_text().split()
        except OSError:  # the thread ended between the listing and the read
            continue
        for pid in children:
            with contextlib.suppress(OSError):
                if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    pids.add(int(pid))
    return pids
