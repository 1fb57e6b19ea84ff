"""store/fast.py against real SQLite and PostgreSQL: the same values as SQLAlchemy, the
same errors, and on PostgreSQL writes that wait for the next statement, in order.

Rows written on the cursor are read back through SQLAlchemy and the other way round, for
the column types the hot path uses (UTC datetimes, JSON, booleans, bytes, NULLs); a
unique violation is SQLAlchemy's IntegrityError whichever statement sends it; a waiting
write is in the database before the next read, and dropped with the transaction when the
block raises.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, bindparam, insert, select
from sqlalchemy.exc import IntegrityError

from mailgate.db import engine as db
from mailgate.store import fast
from mailgate.store.articles import articles, blobs
from mailgate.store.sql import insert_ignore
from mailgate.store.tickets import insert_ticket, tickets

NOW = datetime(2026, 12, 1, 15, 30, 12, 345678, tzinfo=UTC)
_ARTICLE = insert(articles).returning(articles.c.id)
_READ = select(
    articles.c.created_at,
    articles.c.to_addrs,
    articles.c.verdict,
    articles.c.auto,
    articles.c.dedupe_key,
)


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request, tmp_path) -> Engine:  # type: ignore[no-untyped-def]
    url = (
        f"sqlite:///{tmp_path / 'fast.db'}"
        if request.param == "sqlite"
        else request.getfixturevalue("pg_url")
    )
    engine = db.connect(url)
    yield engine
    engine.dispose()


def _ticket(conn) -> int:  # type: ignore[no-untyped-def]
    return insert_ticket(
        conn,
        title="Invoice",
        requester_addr="ann@c.example",
        requester_name="Ann",
        queues=["billing", "support"],
        type="email",
        priority=3,
        now=NOW,
    )


def _article(tid: int, **extra) -> dict:  # type: ignore[no-untyped-def]
    row = {
        "ticket_id": tid,
        "kind": "inbound",
        "dedupe_key": None,
        "message_id": "<m@c.example>",
        "raw_sha256": None,
        "from_addr": "ann@c.example",
        "from_name": "Ann",
        "to_addrs": ["billing@example.test", "Zoë <z@example.test>"],
        "cc_addrs": [],
        "subject": "Grüße",
        "body_text": "body",
        "new_text": "body",
        "author": "",
        "auto": True,
        "verdict": {"reasons": ["a", "b"], "auth": None},
        "defects": [],
        "created_at": NOW,
    }
    return {**row, **extra}


def test_values_read_and_written_on_the_cursor_are_sqlalchemys(engine):
    with engine.begin() as conn:
        tid = _ticket(conn)
        by_cursor = fast.scalar(conn, _ARTICLE, _article(tid, dedupe_key="k"))
        by_sqlalchemy = conn.execute(_ARTICLE, _article(tid, dedupe_key=None)).scalar_one()
        stmt = _READ.where(articles.c.id == by_cursor)
        assert conn.execute(stmt).one() == tuple(fast.rows(conn, stmt, {})[0])
        row = conn.execute(stmt).one()
        assert row.created_at == NOW and row.created_at.tzinfo is not None
        assert row.to_addrs == ["billing@example.test", "Zoë <z@example.test>"]
        assert row.verdict == {"reasons": ["a", "b"], "auth": None} and row.auto is True
        other = _READ.where(articles.c.id == by_sqlalchemy)
        assert fast.rows(conn, other, {})[0][4] is None  # a NULL both ways
        # the ticket's own row, written on the cursor, as SQLAlchemy reads it
        t = conn.execute(select(tickets).where(tickets.c.id == tid)).one()
        assert (t.queue, t.status, t.sticky, t.created_at) == ("billing", "new", False, NOW)


def test_a_driver_error_is_sqlalchemys_and_names_the_statement(engine):
    with engine.connect() as conn, conn.begin():
        insert_ignore(conn, blobs, {"sha256": "a" * 64, "size": 1, "data": b"x"})
        assert insert_ignore(conn, blobs, {"sha256": "a" * 64, "size": 1, "data": b"x"}) == 0
        tid = _ticket(conn)
        fast.scalar(conn, _ARTICLE, _article(tid, dedupe_key="k1"))
        with pytest.raises(IntegrityError, match="articles"):
            fast.scalar(conn, _ARTICLE, _article(tid, dedupe_key="k1"))  # unique dedupe key


def test_a_statement_missing_a_value_is_refused_before_it_runs(engine):
    stmt = select(articles.c.id).where(articles.c.ticket_id == bindparam("tid"))
    with engine.begin() as conn, pytest.raises(ValueError, match="no value for 'tid'"):
        fast.rows(conn, stmt, {"ticket": 1})


def test_waiting_writes_go_before_the_next_statement_in_order(engine):
    mids = [f"<w{i}@c.example>" for i in range(4)]
    with engine.begin() as conn:
        tid = _ticket(conn)
        with fast.pipelined(conn):
            fast.write(conn, insert(articles), _article(tid, message_id=mids[0]))
            fast.write(conn, insert(articles), _article(tid, message_id=mids[1]))
            # a read on the cursor sees both; then one through SQLAlchemy sees the third
            count = select(articles.c.message_id).where(articles.c.ticket_id == tid)
            assert [m for (m,) in fast.rows(conn, count.order_by(articles.c.id), {})] == mids[:2]
            fast.write(conn, insert(articles), _article(tid, message_id=mids[2]))
            assert conn.execute(count).scalars().all() == mids[:3]
            fast.write(conn, insert(articles), _article(tid, message_id=mids[3]))
        # the block's end sent the last one
        assert conn.execute(count.order_by(articles.c.id)).scalars().all() == mids


def test_a_failing_waiting_write_fails_the_statement_that_sends_it(engine):
    with engine.connect() as conn:
        with conn.begin():
            tid = _ticket(conn)
            fast.scalar(conn, _ARTICLE, _article(tid, dedupe_key="dup"))
        with pytest.raises(IntegrityError), conn.begin(), fast.pipelined(conn):
            fast.write(conn, insert(articles), _article(tid, dedupe_key="dup"))
            fast.scalar(conn, select(articles.c.id).where(articles.c.id == -1), {})
        # the transaction is gone, the connection works, nothing of it was kept
        with conn.begin():
            n = conn.execute(select(articles.c.id).where(articles.c.ticket_id == tid)).all()
            assert len(n) == 1


def test_writes_waiting_when_the_block_raises_are_dropped_with_the_transaction(engine):
    with engine.connect() as conn:
        with conn.begin():
            tid = _ticket(conn)
        with pytest.raises(RuntimeError), conn.begin(), fast.pipelined(conn):
            fast.write(conn, insert(articles), _article(tid, created_at=NOW + timedelta(1)))
            raise RuntimeError("a step failed")
        with conn.begin():
            assert conn.execute(select(articles.c.id)).all() == []


def test_a_value_converted_once_is_reused_only_for_the_same_unchanged_object(engine):
    """A datetime's conversion is remembered across statements and columns (a message's
    `now`); a list (JSON) is converted on every call, so a changed one is stored changed;
    a naive datetime is refused every time, not only the first."""
    later = NOW + timedelta(hours=1)
    to = ["a@example.test"]
    with engine.begin() as conn:
        tid = _ticket(conn)
        first = fast.scalar(conn, _ARTICLE, _article(tid, dedupe_key="k1", to_addrs=to))
        to.append("b@example.test")
        second = fast.scalar(conn, _ARTICLE, _article(tid, dedupe_key="k2", to_addrs=to))
        third = fast.scalar(conn, _ARTICLE, _article(tid, dedupe_key="k3", created_at=later))
        for _ in range(2):
            with pytest.raises(ValueError, match="naive"):
                fast.scalar(conn, _ARTICLE, _article(tid, created_at=later.replace(tzinfo=None)))
        found = {
            r.id: (r.created_at, r.to_addrs)
            for r in conn.execute(select(articles.c.id, articles.c.created_at, articles.c.to_addrs))
        }
        t = conn.execute(select(tickets.c.created_at).where(tickets.c.id == tid)).scalar_one()
    assert found[first] == (NOW, ["a@example.test"]) and t == NOW
    assert found[second] == (NOW, ["a@example.test", "b@example.test"])
    assert found[third] == (later, ["billing@example.test", "Zoë <z@example.test>"])


def test_many_rows_go_in_order_as_sqlalchemy_writes_them_and_fail_as_it_does(engine):
    """`run_many` (a batch's deferred rows at its flush): rows with other keys in their own
    executemany, in order; a unique violation is IntegrityError; an INSERT leaving out a
    column SQLAlchemy would fill with its default is refused before it runs."""
    mids = [f"<many{i}@c.example>" for i in range(5)]
    with engine.begin() as conn:
        tid = _ticket(conn)
        rows = [_article(tid, message_id=m, dedupe_key=f"d{i}") for i, m in enumerate(mids)]
        rows[2] = {k: v for k, v in rows[2].items() if k != "raw_sha256"}  # another key set
        fast.run_many(conn, insert(articles), rows)
        stmt = _READ.add_columns(articles.c.message_id).where(articles.c.ticket_id == tid)
        found = conn.execute(stmt.order_by(articles.c.id)).all()
        assert [r.message_id for r in found] == mids
        assert {(r.created_at, r.auto, tuple(r.to_addrs)) for r in found} == {
            (NOW, True, ("billing@example.test", "Zoë <z@example.test>"))
        }
        with pytest.raises(ValueError, match="no value for 'defects'"):
            fast.run_many(
                conn, insert(articles), [{k: v for k, v in rows[0].items() if k != "defects"}]
            )
    with engine.begin() as conn, pytest.raises(IntegrityError, match="articles"):
        fast.run_many(conn, insert(articles), [_article(tid, dedupe_key="d0")])
