"""Lookups by ticket status use ix_tickets_open_order (status, priority, created_at) since
migration 0009 dropped the narrower ix_tickets_status, whose one column is its prefix."""

from __future__ import annotations

from datetime import UTC, datetime

from alembic import command
from sqlalchemy import func, insert, inspect, or_, select

from mailgate.db import engine as db
from mailgate.db.models import OPEN_STATUSES
from mailgate.scheduler.sweeps.priority import RUNNING
from mailgate.store.tickets import tickets


def _ticket_indexes(engine) -> set[str]:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return {i["name"] for i in inspect(conn).get_indexes("tickets")}


def _plan(engine, stmt) -> str:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        sql = str(stmt.compile(engine, compile_kwargs={"literal_binds": True}))
        return " | ".join(r[-1] for r in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}"))


def _some_tickets(engine, n: int = 300) -> None:  # type: ignore[no-untyped-def]
    now = datetime(2026, 12, 1, tzinfo=UTC)
    statuses = ("new", "open", "answered", "closed", "resolved")
    rows = [
        {
            "title": f"t{i}",
            "requester_addr": f"c{i}@example.test",
            "requester_name": "",
            "queue": "support",
            "status": statuses[i % len(statuses)],
            "type": "email",
            "priority": i % 7,
            "sticky": False,
            "tier": "T1",
            "category": "",
            "complexity": "",
            "created_at": now,
            "updated_at": now,
        }
        for i in range(n)
    ]
    with engine.begin() as conn:
        conn.execute(insert(tickets), rows)
        conn.exec_driver_sql("ANALYZE")


def test_status_lookups_use_the_open_order_index(tmp_path):
    engine = db.connect(f"sqlite:///{tmp_path / 'mailgate.db'}")
    try:
        assert "ix_tickets_status" not in _ticket_indexes(engine)
        assert "ix_tickets_open_order" in _ticket_indexes(engine)
        _some_tickets(engine)
        t = tickets.c
        lookups = (
            select(func.count()).where(t.status.in_(OPEN_STATUSES)),  # the SLA sweep's count
            select(t.id).where(t.status == "open"),  # mailgate tickets --status open
            select(t.status, func.count()).where(t.status.in_(OPEN_STATUSES)).group_by(t.status),
            select(t.id).where(or_(*(t.status == s for s in RUNNING))),  # the priority sweep
        )
        for stmt in lookups:
            plan = _plan(engine, stmt)
            assert "ix_tickets_open_order" in plan, plan
            assert "SCAN tickets" not in plan, plan
    finally:
        engine.dispose()


def test_the_migration_goes_down_and_up_again(tmp_path):
    url = f"sqlite:///{tmp_path / 'mailgate.db'}"
    engine = db.connect(url)
    try:
        _some_tickets(engine, 20)
        with engine.begin() as conn:
            cfg = db.alembic_config(url)
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0008_search_by_batch")
        assert "ix_tickets_status" in _ticket_indexes(engine)
        db.upgrade(engine)  # what the next start does
        assert "ix_tickets_status" not in _ticket_indexes(engine)
        with engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(tickets)).scalar() == 20
    finally:
        engine.dispose()
