"""Three `mailgate run` processes on one real PostgreSQL, with shared IMAP mailboxes on a
real Dovecot and one relay sink; one daemon SIGKILLed mid run (docs/scaling.md).

What must hold: every message (over SMTP at any of the three, the same message at two of
them, or in a mailbox) is exactly one article; every ticket's acknowledgement reaches the
relay, each Message-ID once (a redelivery after the kill, at-least-once, is counted
apart); every due escalation happens exactly once; the dead daemon's mailboxes are polled
by the others within the takeover time; restarted on its spool, it processes what it had
acknowledged before it died.
"""

from __future__ import annotations

import smtplib
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, select, text

from mailgate.db.models import Article, AuditEvent, OutboxRow, Ticket
from mailgate.scheduler.lock import ADVISORY_KEY
from mailgate.store import leases
from tests.harness import message, wait_until, write_config
from tests.reliability.daemon_proc import DaemonProc
from tests.servers import Dovecot, SmtpSink, free_port

QUEUES = ("support", "billing", "sales")
PASSWORD_ENV = "MG_THREE_DAEMONS_IMAP"
TAKEOVER = 6
# every hour of every day is business time, and a first answer is due after one minute:
# each new support ticket is escalated L1 -> L2 at the first sweep a minute after it
SLA = """
[sla]
business_days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
business_hours = ["00:00-24:00"]
[sla.first_response]
critical = 1
high = 1
medium = 1
low = 1
"""


def _imap(d: Dovecot, user: str) -> str:
    return (
        f'[imap]\nhost = "{d.host}"\nport = {d.port}\ntls = "none"\nuser = "{user}"\n'
        f'password_env = "{PASSWORD_ENV}"\nmove_to = "Archive"\ntimeout_seconds = 10\n'
    )


def _mail(tag: str, n: int, to: str) -> tuple[str, bytes]:
    mid = f"<{tag}-{n}@customer.example>"
    raw = message(message_id=mid, sender=f"{tag}{n}@customer.example", to=to, subject=f"{tag} {n}")
    return mid, raw


def _send(port: int, raw: bytes, rcpt: str) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as s:
        s.sendmail("someone@customer.example", [rcpt], raw)


def _inbound(engine: Engine) -> Counter[str]:
    with engine.connect() as conn:
        return Counter(conn.scalars(select(Article.message_id).where(Article.kind == "inbound")))


def _holders(engine: Engine) -> dict[str, str]:
    return {h.name: h.holder for h in leases.holdings(engine, "imap:")}


def test_three_daemons_one_killed(
    tmp_path: Path,
    pg_url: str,
    dovecot: Dovecot,
    smtp_sink: SmtpSink,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(PASSWORD_ENV, dovecot.password)
    users = {q: dovecot.add_user(f"{q}-{time.time_ns()}@example.test") for q in QUEUES}
    extra = {q: _imap(dovecot, users[q]) + (SLA if q == "support" else "") for q in QUEUES}
    daemons, ports = [], []
    for i in range(3):
        port = free_port()
        cfg = write_config(
            tmp_path / f"d{i}",
            relay_port=smtp_sink.port,
            listen_port=port,
            database_url=pg_url,
            queue_extra=extra,
            relay_extra="lease_seconds = 5\n",
            main_extra=f'[database]\nnode = "d{i}"\nmailbox_takeover_seconds = {TAKEOVER}\n',
        )
        log_dir = tmp_path / f"logs{i}"
        log_dir.mkdir()
        daemons.append(DaemonProc(cfg, log_dir))
        ports.append(port)
    engine = create_engine(pg_url)
    expected: set[str] = set()
    try:
        # d0 first, alone: it holds every mailbox and the sweep lock when it is killed
        daemons[0].start(60)
        wait_until(lambda: len(_holders(engine)) == 3, 30, "d0 polling all")
        assert set(_holders(engine).values()) == {"d0"}
        wait_until(lambda: _sweeper(engine) == "mailgate d0", 30, "d0 sweeping")
        for d in daemons[1:]:  # both at once: they migrate one after the other
            d.spawn()
        for d in daemons[1:]:
            d.wait_ready(60)

        # phase 1: SMTP at all three, the same message at two of them, mail in the boxes
        for n in range(24):
            mid, raw = _mail("smtp", n, f"{QUEUES[n % 3]}@example.test")
            _send(ports[n % 3], raw, f"{QUEUES[n % 3]}@example.test")
            expected.add(mid)
        for n in range(6):
            mid, raw = _mail("twice", n, "support@example.test")
            _send(ports[n % 3], raw, "support@example.test")
            _send(ports[(n + 1) % 3], raw, "billing@example.test")  # redelivered elsewhere
            expected.add(mid)
        for n in range(9):
            q = QUEUES[n % 3]
            mid, raw = _mail("imap", n, f"{q}@example.test")
            dovecot.append(users[q], raw)
            expected.add(mid)

        # kill d0 mid run, with mail of its own just acknowledged
        wait_until(lambda: len(_inbound(engine)) >= 10, 60, "processing under way")
        victim = 0
        mid, raw = _mail("victim", 0, "sales@example.test")
        _send(ports[victim], raw, "sales@example.test")  # acknowledged, maybe not processed
        expected.add(mid)
        daemons[victim].kill9()
        killed_at = time.monotonic()
        survivors = [i for i in range(3) if i != victim]

        # phase 2: the survivors get SMTP mail, the mailboxes get more
        for n in range(8):
            i = survivors[n % 2]
            mid, raw = _mail("after", n, f"{QUEUES[n % 3]}@example.test")
            _send(ports[i], raw, f"{QUEUES[n % 3]}@example.test")
            expected.add(mid)
        imap_after = set()
        for n in range(6):
            q = QUEUES[n % 3]
            mid, raw = _mail("imap-after", n, f"{q}@example.test")
            dovecot.append(users[q], raw)
            expected.add(mid)
            imap_after.add(mid)
        wait_until(
            lambda: set(_holders(engine).values()) <= {f"d{i}" for i in survivors},
            TAKEOVER * 4,
            "the dead daemon's mailboxes taken over",
        )
        took_over = time.monotonic() - killed_at
        wait_until(lambda: _sweeper(engine) in {f"mailgate d{i}" for i in survivors}, 90, "sweeps")
        sweeps_taken = time.monotonic() - killed_at
        wait_until(lambda: imap_after <= set(_inbound(engine)), 60, "mailbox mail after it")

        # restarted on its spool (systemd would), it processes what it had acknowledged
        daemons[victim].start(60)
        wait_until(lambda: set(_inbound(engine)) >= expected, 120, "every message stored")

        with engine.connect() as conn:
            support_tickets = set(conn.scalars(select(Ticket.id).where(Ticket.queue == "support")))
        wait_until(lambda: _escalated(engine) >= support_tickets, 200, "every due escalation")
        time.sleep(3)  # let a second sweep (if one ran twice) show itself
        with engine.connect() as conn:
            acks = list(conn.scalars(select(OutboxRow.message_id).where(OutboxRow.kind == "ack")))
            ticket_count = conn.scalar(select(Ticket.id).order_by(Ticket.id.desc()).limit(1))
            escalations = Counter(
                conn.scalars(select(AuditEvent.ticket_id).where(AuditEvent.action == "escalated"))
            )
            notices = Counter(
                conn.scalars(select(OutboxRow.ticket_id).where(OutboxRow.kind == "escalated"))
            )
        acks = [_bare(a) for a in acks]
        wait_until(lambda: set(acks) <= set(_at_relay(smtp_sink)), 60, "acks sent")
        at_relay = _at_relay(smtp_sink)
    finally:
        for d in daemons:
            d.terminate()
        engine.dispose()

    articles = _inbound(engine)
    assert set(articles) == expected
    assert all(n == 1 for n in articles.values()), [m for m, n in articles.items() if n > 1]
    assert len(acks) == len(set(acks)) == len(expected)  # one ticket, one ack per message
    assert ticket_count is not None
    redelivered = {m: n - 1 for m, n in at_relay.items() if m in set(acks) and n > 1}
    assert set(escalations) == support_tickets and all(n == 1 for n in escalations.values())
    assert set(notices) == support_tickets and all(n == 1 for n in notices.values())
    print(
        f"\n{len(expected)} messages, {len(articles)} articles; {len(acks)} acks at the relay "
        f"({sum(redelivered.values())} at-least-once redeliveries after the kill); "
        f"{len(escalations)} escalations, each once; d{victim} killed, its mailboxes taken "
        f"over in {took_over:.1f}s (takeover time {TAKEOVER}s), the sweeps in {sweeps_taken:.1f}s"
    )


def _escalated(engine: Engine) -> set[int]:
    with engine.connect() as conn:
        return set(
            conn.scalars(select(AuditEvent.ticket_id).where(AuditEvent.action == "escalated"))
        )


def _bare(mid: str) -> str:
    return mid.strip().strip("<>")


def _at_relay(sink: SmtpSink) -> Counter[str]:
    """How many times the relay got each Message-ID."""
    return Counter(_bare(str(m.message["Message-ID"])) for m in sink.messages)


def _sweeper(engine: Engine) -> str | None:
    """The application_name of the session holding the sweep lock (scheduler/lock.py)."""
    with engine.connect() as conn:
        return conn.execute(
            text(
                "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a "
                "ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted "
                "AND l.objid = :lo"
            ),
            {"lo": ADVISORY_KEY & 0xFFFFFFFF},
        ).scalar()
