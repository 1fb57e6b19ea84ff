"""A simulated day of sweeps leaves junk alone: the scheduler sees only tickets, so an
unmatched bounce, an unthreaded out-of-office reply and spam are never escalated,
reminded or closed, and nobody is mailed about them; the bounce that matched its ticket
pauses the escalation notice the customer would have got."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from mailgate.bounces.verp import verp_address
from mailgate.pgp.keyring import Keyrings
from mailgate.pipeline.steps import Pipeline
from mailgate.pipeline.worker import Worker
from mailgate.spool import Envelope, Spool
from mailgate.store.junk import junk, list_junk
from mailgate.store.outbox import outbox
from mailgate.store.tickets import tickets
from tests.harness import message
from tests.integration.test_machine_mail import CORPUS, rebuild
from tests.integration.test_scheduler import MONDAY, SLA, make_env

CUSTOMER = "carla@customers.example"  # the address test_machine_mail's rebuild uses


def test_a_day_of_sweeps_never_touches_junk(tmp_path: Path):
    env = make_env(tmp_path, {"support": SLA + "\n[sla.tiers]\nL2 = 720\n"})
    clock = [MONDAY]
    spool = Spool(env.config.spool_dir)
    pipeline = Pipeline(env.config, lambda: clock[0], keyrings=Keyrings())
    worker = Worker(env.config, env.engine, spool, pipeline)

    def deliver(raw: bytes, rcpt: str = "support@example.test", sender: str = "") -> None:
        spool.put(raw, Envelope(source="smtp", mail_from=sender, rcpt_tos=(rcpt,)))
        worker.drain()

    deliver(message(sender=CUSTOMER, subject="Urgent: printer", date=MONDAY), sender=CUSTOMER)
    with env.engine.connect() as conn:
        (ack,) = conn.execute(select(outbox.c.id, outbox.c.message_id)).all()
    verp = verp_address(env.config.secret, ack.id, "support@example.test")
    deliver(rebuild("flanker__bounce_zed.eml", "verp", to=verp, message_id=None), verp)
    # junk: an unmatched bounce, an unthreaded out-of-office reply, spam
    deliver((CORPUS / "flanker__bounce_gmail-no-dns.eml").read_bytes())
    ooo = message(sender="ooo@example.com", subject="Out of office", date=MONDAY)
    deliver(ooo, sender="ooo@example.com")
    spam = message(sender="pills@spam.example", extra="X-Spam-Score: 9.9", date=MONDAY)
    deliver(spam, sender="pills@spam.example")
    with env.engine.connect() as conn:
        before = [tuple(r) for r in conn.execute(select(junk).order_by(junk.c.id))]
    assert [r[2] for r in before] == ["bounce", "auto-reply", "spam"]

    counts: dict[str, int] = {}
    for minute in range(0, 24 * 60 + 1, 10):  # every 10 minutes for a day
        for name, n in env.sweep(MONDAY + timedelta(minutes=minute)).items():
            counts[name] = counts.get(name, 0) + n

    with env.engine.connect() as conn:
        after = [tuple(r) for r in conn.execute(select(junk).order_by(junk.c.id))]
        assert len(list_junk(conn)) == 3
        rows = conn.execute(select(outbox.c.kind, outbox.c.rcpt_tos, outbox.c.status)).all()
        ticket_ids = conn.execute(select(tickets.c.id)).scalars().all()
    assert after == before  # junk untouched, byte for byte
    assert ticket_ids == [1]
    junk_senders = {"mailer-daemon@googlemail.com", "ooo@example.com", "pills@spam.example"}
    assert not {r for row in rows for r in row.rcpt_tos} & junk_senders
    # the sweeps did run on the ticket: escalated to Tier 2, agents told ...
    assert env.get(1)["tier"] == "L2" and any(r.kind == "escalation" for r in rows)
    # ... and the customer's notice is held: its ack bounced (VERP), the address is paused
    (notice,) = [r for r in rows if r.kind == "escalated"]
    assert notice.rcpt_tos == [CUSTOMER] and notice.status == "held"
