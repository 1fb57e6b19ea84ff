"""A notification's reads sent together (agents/queries.notification_reads on
store/read_together.py) give what reading them one by one through SQLAlchemy gives, on
SQLite and on PostgreSQL (one pipeline there): the ticket, its queues, tags, CCs, recent
articles and the requester's other tickets cut to its own queue's sizes, and the
article's attachments; after the writes waiting in the batch's pipeline, in order."""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import Connection, bindparam, insert, select
from sqlalchemy.exc import IntegrityError

from mailgate.agents.attachments import _SELECT, StoredAttachment
from mailgate.agents.queries import notification_reads
from mailgate.config.model import Config
from mailgate.db.models import Attachment
from mailgate.outgoing import digest as dg
from mailgate.spool import Envelope
from mailgate.store import fast
from mailgate.store.articles import articles
from mailgate.store.batch import batch_state
from mailgate.store.read_together import rows_together
from mailgate.store.tickets import ticket_ccs, ticket_queues, ticket_tags, tickets
from tests.harness import load, message, offline, write_config

_FILES = Attachment.__table__
SMTP = Envelope(source="smtp", rcpt_tos=("support@example.test",))
SIZES = {  # different sizes per queue: read at the largest, cut to the ticket's own
    "support": "[agent_mail]\nhistory_articles = 2\nlatest_tickets = 1\n",
    "billing": "[agent_mail]\nhistory_articles = 7\nlatest_tickets = 3\n",
}


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest) -> str:
    return request.getfixturevalue("pg_url") if request.param == "postgres" else ""


def _with_attachment(subject: str) -> bytes:
    m = EmailMessage()
    m["From"] = "Carla <carla@customers.example>"
    m["To"] = "billing@example.test"
    m["Subject"] = subject
    m["Message-ID"] = "<att@customers.example>"
    m.set_content("Invoice attached.\n")
    m.add_attachment(b"%PDF-1.4 ...", maintype="application", subtype="pdf", filename="inv.pdf")
    m.add_attachment(b"a,b\n1,2\n", maintype="text", subtype="csv", filename="rows.csv")
    return m.as_bytes()


def _mail(cfg: Config) -> tuple:  # type: ignore[type-arg]
    engine, spool, worker = offline(cfg)
    carla = "carla@customers.example"
    first = message(sender=carla, message_id="<t1@customers.example>", subject="Printer")
    spool.put(first, SMTP)
    for n in range(4):  # follow-ups: a history longer than support's 2
        mid = f"<t1-{n}@customers.example>"
        body = f"Still broken ({n}).\n"
        spool.put(message(sender=carla, message_id=mid, in_reply_to="<t1@customers.example>",
                          references="<t1@customers.example>", body=body), SMTP)  # fmt: skip
    for n in range(3):  # the requester's other tickets
        spool.put(message(sender=carla, subject=f"Other {n}", to="billing@example.test"), SMTP)
    spool.put(_with_attachment("Invoice"), SMTP)
    spool.put(message(sender="dan@else.example", subject="Not Carla's"), SMTP)
    while worker.process_batch(64).handled:
        pass
    return engine


def _one_by_one(conn: Connection, cfg: Config, tid: int, aid: int | None) -> dict:  # type: ignore[type-arg]
    """What the notification read before, statement by statement through SQLAlchemy."""
    row = conn.execute(select(tickets).where(tickets.c.id == tid)).first()
    assert row is not None
    queue = cfg.queue(row.queue)
    assert queue is not None
    c = articles.c
    history = conn.execute(
        select(c.created_at, c.kind, c.author, c.from_addr, c.body_text, c.new_text)
        .where(c.ticket_id == tid)
        .order_by(c.id.desc())
        .limit(queue.agent_mail.history_articles)
    ).all()
    latest = conn.execute(
        select(tickets.c.id, tickets.c.status, tickets.c.created_at, tickets.c.title)
        .where(tickets.c.requester_addr == row.requester_addr, tickets.c.id != tid)
        .order_by(tickets.c.created_at.desc(), tickets.c.id.desc())
        .limit(queue.agent_mail.latest_tickets)
    ).all()
    of = lambda t: conn.execute(select(t).where(t.c.ticket_id == tid)).all()  # noqa: E731
    files = conn.execute(_SELECT.where(_FILES.c.article_id == aid).order_by(_FILES.c.id)).all()
    return {
        "row": tuple(row),
        "queues": frozenset({*(q.queue for q in of(ticket_queues)), row.queue}),
        "tags": tuple(sorted(t.tag for t in of(ticket_tags))),
        "ccs": tuple(sorted(x.address for x in of(ticket_ccs))),
        "history": [
            (dg.when(a.created_at), a.kind, dg.shorten(a.new_text or a.body_text))
            for a in reversed(history)
        ],  # fmt: skip
        "latest": [(t.id, t.status, dg.when(t.created_at)[:10], t.title) for t in latest],
        "files": [StoredAttachment(*f) for f in files] if aid else [],
    }


def _together(conn: Connection, cfg: Config, tid: int, aid: int | None) -> dict:  # type: ignore[type-arg]
    found = notification_reads(conn, cfg, tid, aid)
    assert found is not None
    row, view, digest, files = found
    return {
        "row": tuple(row),
        "queues": view.queues,
        "tags": digest.tags,
        "ccs": digest.ccs,
        "history": [(h.when, h.kind, h.text) for h in digest.history],
        "latest": [(t.id, t.status, t.created, t.title) for t in digest.latest],
        "files": files,
    }


def test_reads_together_are_the_reads_one_by_one(tmp_path: Path, database_url: str) -> None:
    cfg = load(write_config(tmp_path, database_url=database_url, queue_extra=SIZES))
    engine = _mail(cfg)
    with engine.connect() as conn:
        pairs = conn.execute(select(articles.c.ticket_id, articles.c.id)).all()
        assert len({t for t, _ in pairs}) == 6
        with_files = 0
        for tid, aid in [*pairs, *((t, None) for t, _ in pairs)]:
            expected = _one_by_one(conn, cfg, tid, aid)
            assert _together(conn, cfg, tid, aid) == expected
            with_files += len(expected["files"])
        assert with_files == 2
        assert max(len(_one_by_one(conn, cfg, t, None)["history"]) for t, _ in pairs) == 2
        assert notification_reads(conn, cfg, 10_000, None) is None


def test_the_reads_come_after_the_writes_waiting_in_the_batch(
    tmp_path: Path, database_url: str
) -> None:
    cfg = load(write_config(tmp_path, database_url=database_url, queue_extra=SIZES))
    engine = _mail(cfg)
    add_tag = insert(ticket_tags)
    with engine.begin() as conn, batch_state(conn):
        fast.write(conn, add_tag, {"ticket_id": 1, "tag": "zz-waiting"})  # waits on PostgreSQL
        fast.write(conn, add_tag, {"ticket_id": 1, "tag": "aa-waiting"})
        assert _together(conn, cfg, 1, None) == _one_by_one(conn, cfg, 1, None)
        assert {"aa-waiting", "zz-waiting"} <= set(_together(conn, cfg, 1, None)["tags"])
        conn.rollback()


def test_an_error_in_a_waiting_write_is_sqlalchemys(tmp_path: Path, database_url: str) -> None:
    cfg = load(write_config(tmp_path, database_url=database_url, queue_extra=SIZES))
    engine = _mail(cfg)
    tags = select(ticket_tags.c.tag).where(ticket_tags.c.ticket_id == bindparam("tid"))
    with pytest.raises(IntegrityError), engine.begin() as conn, batch_state(conn):
        fast.write(conn, insert(ticket_tags), {"ticket_id": 1, "tag": "twice"})
        fast.write(conn, insert(ticket_tags), {"ticket_id": 1, "tag": "twice"})
        rows_together(conn, [(tags, {"tid": 1}), (tags, {"tid": 2})])


def test_queues_ccs_and_tags_of_one_ticket_stay_apart(tmp_path: Path, database_url: str) -> None:
    """They are read by one statement (agents/queries._LABELS): a value that is a queue's,
    a CC's and a tag's at once lands in each list once, and only there."""
    cfg = load(write_config(tmp_path, database_url=database_url, queue_extra=SIZES))
    engine = _mail(cfg)
    with engine.begin() as conn:
        conn.execute(insert(ticket_queues), [{"ticket_id": 1, "queue": q} for q in ("sales", "x")])
        conn.execute(insert(ticket_ccs), [{"ticket_id": 1, "address": a} for a in ("x", "b@c.d")])
        conn.execute(insert(ticket_tags), [{"ticket_id": 1, "tag": t} for t in ("x", "urgent")])
        conn.execute(insert(ticket_tags), {"ticket_id": 2, "tag": "other-ticket"})
        together = _together(conn, cfg, 1, None)
        assert together == _one_by_one(conn, cfg, 1, None)
        assert {"sales", "x"} <= together["queues"]
        assert together["ccs"] == ("b@c.d", "x")
        assert together["tags"] == ("urgent", "x")
        conn.rollback()
