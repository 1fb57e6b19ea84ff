"""The scheduler's sweeps on a real database, driven by a fake clock.

Times are Europe/Berlin business hours (Mon-Fri 09:00-17:00) with Wednesday 4 March 2026
a holiday; the week under test starts on Monday 2 March 2026.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, func, insert, select, update

from mailgate.agents import tokens
from mailgate.agents.reply import REPLY_MARKER
from mailgate.app import Daemon
from mailgate.config.errors import ConfigError
from mailgate.config.model import Config
from mailgate.db import engine as db
from mailgate.pgp.keyring import Keyrings
from mailgate.pipeline.steps import Pipeline
from mailgate.pipeline.worker import Worker
from mailgate.scheduler.runner import run_all_sweeps, run_scheduler
from mailgate.scheduler.sweeps.sql import ticket_sla
from mailgate.spool import Envelope, Spool
from mailgate.store.articles import articles
from mailgate.store.audit import audit_events
from mailgate.store.outbox import outbox
from mailgate.store.tickets import ticket_links, ticket_queues, tickets
from tests.harness import load, message, wait_until, write_config

BERLIN = ZoneInfo("Europe/Berlin")
T = tickets.c

AGENTS = """
[[agents]]
name = "bob"
address = "bob@example.test"
full_name = "Bob Tier1"
queues = ["support", "billing", "sales"]
tier = "L1"

[[agents]]
name = "alice"
address = "alice@example.test"
full_name = "Alice Tier2"
queues = ["support", "billing"]
tier = "L2"

[[agents]]
name = "carol"
address = "carol@example.test"
full_name = "Carol Tier3"
queues = ["support"]
tier = "L3"

[[agents]]
name = "lena"
address = "lena@example.test"
full_name = "Lena Lead"
queues = ["support"]
tier = "L1"
team_lead = true
"""

SLA = """
[sla]
timezone = "Europe/Berlin"
holidays = [2026-03-04]
priority_growth_per_hour = 1
review_link = "https://www.trustpilot.com/evaluate/example.test"
"""


def berlin(*args: int) -> datetime:
    return datetime(*args, tzinfo=BERLIN).astimezone(UTC)


MONDAY = berlin(2026, 3, 2, 9)


@dataclass
class Env:
    config: Config
    engine: Engine
    root: Path
    seq: int = 0

    def sweep(self, now: datetime) -> dict[str, int]:
        return run_all_sweeps(self.engine, self.config, now)

    def ticket(
        self,
        created: datetime,
        *,
        priority: int = 50,
        status: str = "new",
        queue: str = "support",
        tier: str = "L1",
        answered: datetime | None = None,
        assignee: str | None = None,
    ) -> int:
        """A ticket as the worker stores it: one inbound article with a Message-ID."""
        self.seq += 1
        with self.engine.begin() as conn:
            tid = conn.execute(
                insert(tickets).returning(T.id),
                {
                    "title": f"Problem {self.seq}",
                    "requester_addr": f"customer{self.seq}@example.com",
                    "requester_name": f"Customer {self.seq}",
                    "queue": queue,
                    "status": "answered" if answered else status,
                    "type": "email",
                    "priority": priority,
                    "sticky": False,
                    "assignee": assignee,
                    "tier": tier,
                    "category": "",
                    "complexity": "",
                    "created_at": created,
                    "updated_at": answered or created,
                    "first_response_at": answered,
                    "last_customer_at": created,
                    "last_answer_at": answered,
                },
            ).scalar_one()
            conn.execute(
                insert(articles),
                {
                    "ticket_id": tid,
                    "kind": "inbound",
                    "message_id": f"<m{self.seq}@example.com>",
                    "from_addr": f"customer{self.seq}@example.com",
                    "subject": f"Problem {self.seq}",
                    "body_text": "help",
                    "created_at": created,
                },
            )
        return tid

    def set(self, tid: int, **values: object) -> None:
        """Change a ticket as the mail path does: updated_at moves with every change (by
        default to the latest time given)."""
        if "updated_at" not in values:
            values["updated_at"] = max(v for v in values.values() if isinstance(v, datetime))
        with self.engine.begin() as conn:
            conn.execute(update(tickets).where(T.id == tid).values(**values))

    def get(self, tid: int) -> dict:
        with self.engine.connect() as conn:
            return dict(conn.execute(select(tickets).where(T.id == tid)).one()._mapping)

    def mails(self, kind: str | None = None) -> list[dict]:
        q = select(outbox).order_by(outbox.c.id)
        if kind:
            q = q.where(outbox.c.kind == kind)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    def audits(self, action: str) -> list[dict]:
        a = audit_events.c
        with self.engine.connect() as conn:
            q = select(audit_events).where(a.action == action).order_by(a.id)
            return [dict(r._mapping) for r in conn.execute(q)]


def make_env(root: Path, queue_extra: dict[str, str] | None = None, url: str = "") -> Env:
    cfg = load(write_config(root, queue_extra=queue_extra or {"support": SLA}, agents_toml=AGENTS))
    engine = db.connect(url or "sqlite:///" + str(root / "db.sqlite"))
    return Env(cfg, engine, root)


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    e = make_env(tmp_path)
    yield e
    e.engine.dispose()


def parsed(row: dict) -> email.message.EmailMessage:
    return email.message_from_bytes(row["raw"], policy=email.policy.default)  # type: ignore[return-value]


# -- priority growth -----------------------------------------------------------------------
def test_priority_grows_per_business_hour_over_a_week_with_a_holiday(env: Env):
    tid = env.ticket(MONDAY)
    checkpoints = {
        berlin(2026, 3, 2, 17): 58,  # Monday: 8 business hours
        berlin(2026, 3, 3, 12): 61,
        berlin(2026, 3, 4, 16): 66,  # Wednesday is a holiday: no growth
        berlin(2026, 3, 5, 9, 30): 66,  # nor before a whole hour
        berlin(2026, 3, 6, 17): 82,
        berlin(2026, 3, 8, 23): 82,  # weekend
        berlin(2026, 3, 9, 15): 88,
        berlin(2026, 3, 10, 13): 94,
        berlin(2026, 3, 10, 17): 98,
        berlin(2026, 3, 11, 10): 99,  # the cap
        berlin(2026, 3, 12, 17): 99,
    }
    every_3h = {MONDAY + timedelta(hours=3 * i) for i in range(85)}
    seen = []
    for now in sorted(every_3h | set(checkpoints)):
        env.sweep(now)
        seen.append(env.get(tid)["priority"])
        if now in checkpoints:
            assert seen[-1] == checkpoints[now], now.astimezone(BERLIN)
    assert seen == sorted(seen) and seen[0] == 50
    # the pure function of the clock: one sweep long after gives the same value
    other = env.ticket(MONDAY)
    env.sweep(berlin(2026, 3, 10, 13))
    assert env.get(other)["priority"] == 94


def test_growth_stops_when_answered_and_restarts_on_the_next_customer_message(env: Env):
    tid = env.ticket(MONDAY)
    env.sweep(berlin(2026, 3, 2, 12))
    assert env.get(tid)["priority"] == 53
    env.set(tid, status="answered", last_answer_at=berlin(2026, 3, 2, 12), first_response_at=None)
    env.sweep(berlin(2026, 3, 3, 16))
    assert env.get(tid)["priority"] == 53
    # the customer writes again on Tuesday 16:00: growth goes on from 53
    env.set(tid, status="open", last_customer_at=berlin(2026, 3, 3, 16))
    env.sweep(berlin(2026, 3, 3, 16, 30))
    assert env.get(tid)["priority"] == 53
    env.sweep(berlin(2026, 3, 5, 11))  # 1 h Tuesday + 2 h Thursday
    assert env.get(tid)["priority"] == 56


def test_a_priority_set_by_hand_is_kept_and_grows_from_there(env: Env):
    tid = env.ticket(MONDAY)
    env.sweep(berlin(2026, 3, 2, 14))
    assert env.get(tid)["priority"] == 55
    env.set(tid, priority=30, updated_at=berlin(2026, 3, 2, 14, 10))  # an agent lowers it
    env.sweep(berlin(2026, 3, 2, 14, 30))
    assert env.get(tid)["priority"] == 30
    env.sweep(berlin(2026, 3, 2, 16, 30))
    assert env.get(tid)["priority"] == 32


def test_ticket_list_order_is_priority_then_oldest(env: Env):
    older = env.ticket(MONDAY)
    newer = env.ticket(berlin(2026, 3, 2, 13))
    same = env.ticket(berlin(2026, 3, 2, 14), priority=51)
    env.sweep(berlin(2026, 3, 2, 15))  # 56, 52, 52
    with env.engine.connect() as conn:
        order = conn.execute(
            select(T.id, T.priority).order_by(T.priority.desc(), T.created_at, T.id)
        ).all()
    assert order == [(older, 56), (newer, 52), (same, 52)]


# -- SLA -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("priority", "due"),
    [
        (95, berlin(2026, 3, 2, 10, 15)),  # critical: 15 min
        (75, berlin(2026, 3, 2, 11, 0)),  # high: 1 h
        (50, berlin(2026, 3, 2, 14, 0)),  # medium: 4 h
        (20, berlin(2026, 3, 3, 10, 0)),  # low: 8 h, over the night
    ],
)
def test_first_response_breach_at_the_right_minute(env: Env, priority: int, due: datetime):
    tid = env.ticket(berlin(2026, 3, 2, 10), priority=priority)
    env.sweep(due - timedelta(minutes=1))
    assert env.get(tid)["tier"] == "L1"
    assert env.mails() == []
    env.sweep(due)
    assert env.get(tid)["tier"] == "L2"
    [event] = env.audits("escalated")
    assert event["ticket_id"] == tid and event["detail"]["cause"] == "first_response"


def test_resolution_breach_after_the_first_answer(env: Env):
    # critical: answered at once, but not resolved within 4 business hours
    tid = env.ticket(MONDAY, priority=95)
    env.set(tid, status="open", first_response_at=MONDAY, last_answer_at=MONDAY)
    env.sweep(berlin(2026, 3, 2, 12, 59))
    assert env.get(tid)["tier"] == "L1"
    env.sweep(berlin(2026, 3, 2, 13))
    assert env.get(tid)["tier"] == "L2"
    assert env.audits("escalated")[0]["detail"]["cause"] == "resolution"


def test_the_clock_stands_still_on_hold_and_outside_business_hours(env: Env):
    tid = env.ticket(berlin(2026, 3, 2, 10), priority=95)  # 15 min target
    env.set(tid, status="on-hold", updated_at=berlin(2026, 3, 2, 10, 5))
    env.sweep(berlin(2026, 3, 2, 10, 6))
    env.sweep(berlin(2026, 3, 2, 12))  # on hold: no breach
    assert env.get(tid)["tier"] == "L1"
    env.set(tid, status="open", updated_at=berlin(2026, 3, 2, 16, 55))
    env.sweep(berlin(2026, 3, 2, 16, 58))
    env.sweep(berlin(2026, 3, 3, 9, 4))  # 5 + 4 of the remaining 10 minutes
    assert env.get(tid)["tier"] == "L1"
    env.sweep(berlin(2026, 3, 3, 9, 5))
    assert env.get(tid)["tier"] == "L2"


def test_escalation_chain_l1_l2_l3_tells_tier_agents_leads_and_customer(tmp_path: Path):
    env = make_env(tmp_path, {"support": SLA + "\n[sla.tiers]\nL2 = 720\nL3 = 240\n"})
    tid = env.ticket(berlin(2026, 3, 2, 10), priority=95)

    env.sweep(berlin(2026, 3, 2, 10, 15))
    assert env.get(tid)["tier"] == "L2"
    to_agents = sorted(r["rcpt_tos"][0] for r in env.mails("escalation"))
    assert to_agents == ["alice@example.test", "lena@example.test"]
    [notice] = env.mails("escalated")
    m = parsed(notice)
    assert notice["rcpt_tos"] == ["customer1@example.com"]
    assert m["From"] == "Example Support <support@example.test>"
    assert m["Subject"] == f"[support #{tid}] Problem 1"
    assert m["In-Reply-To"] == "<m1@example.com>"
    assert m["Auto-Submitted"] == "auto-generated"
    body = m.get_content()
    assert "Tier 2" in body and "2026-03-03 10:15 CET" in body  # news within 24 h
    first_agent = parsed(env.mails("escalation")[0])
    reply = tokens.parse_reply_address(first_agent["Reply-To"])
    assert reply is not None and reply.ticket_id == tid
    agent = first_agent["To"].addresses[0].username  # alice, lena: names as addresses
    assert reply.mac == tokens.token_mac(env.config.secret, agent, tid)
    agent_body = first_agent.get_content()
    assert "first response target of 15 min (critical priority) missed" in agent_body
    assert "2026-03-03 14:15 CET" in agent_body  # Tier 2 has 12 business hours

    env.sweep(berlin(2026, 3, 3, 14, 14))
    assert env.get(tid)["tier"] == "L2"
    env.sweep(berlin(2026, 3, 3, 14, 15))
    assert env.get(tid)["tier"] == "L3"
    assert len(env.mails("escalated")) == 2
    latest = sorted(r["rcpt_tos"][0] for r in env.mails("escalation")[2:])
    assert latest == ["carol@example.test", "lena@example.test"]

    # Tier 3 has 4 business hours: Tuesday 14:15-17:00, then Thursday (Wednesday is off)
    env.sweep(berlin(2026, 3, 5, 10, 14))
    assert len(env.audits("sla_breach")) == 0
    env.sweep(berlin(2026, 3, 5, 10, 15))
    assert env.get(tid)["tier"] == "L3"
    [breach] = env.audits("sla_breach")
    assert breach["detail"]["reason"] == "Tier 3 did not resolve it within 4 h"
    assert len(env.mails("escalated")) == 2  # the customer hears nothing new
    assert len(env.mails("escalation")) == 6
    env.sweep(berlin(2026, 3, 5, 10, 15))
    env.sweep(berlin(2026, 3, 12, 10))  # a week later: reminders only, no more escalation
    assert (len(env.mails("escalated")), len(env.mails("escalation"))) == (2, 6)
    assert [e["detail"]["to_tier"] for e in env.audits("escalated")] == ["L2", "L3"]


def test_escalation_into_a_queue(tmp_path: Path):
    extra = {"support": SLA + 'escalate_queue = "billing"\n', "billing": "[sla]\n"}
    env = make_env(tmp_path, extra)
    tid = env.ticket(berlin(2026, 3, 2, 10), priority=95)
    env.sweep(berlin(2026, 3, 2, 10, 15))
    t = env.get(tid)
    assert (t["queue"], t["tier"]) == ("billing", "L2")
    with env.engine.connect() as conn:
        seen = conn.execute(
            select(ticket_queues.c.queue).where(ticket_queues.c.ticket_id == tid)
        ).scalars()
        assert "billing" in set(seen)
    assert [r["rcpt_tos"] for r in env.mails("escalation")] == [["alice@example.test"]]
    assert parsed(env.mails("escalated")[0])["From"] == "Example Support <support@example.test>"


def test_a_tier_set_by_hand_starts_that_tiers_clock(env: Env):
    tid = env.ticket(MONDAY, priority=20)
    env.sweep(berlin(2026, 3, 2, 9, 30))
    env.set(tid, tier="L2", updated_at=berlin(2026, 3, 2, 10))  # an agent escalates
    env.sweep(berlin(2026, 3, 2, 10, 1))
    env.sweep(berlin(2026, 3, 3, 14, 0))  # 12 business hours from 10:01 end at 14:01
    assert env.get(tid)["tier"] == "L2"
    env.sweep(berlin(2026, 3, 3, 14, 1))
    assert env.get(tid)["tier"] == "L3"
    assert env.audits("escalated")[0]["detail"]["cause"] == "tier"


def test_changes_are_found_by_updated_at_and_all_once_an_hour(env: Env):
    tid = env.ticket(MONDAY)
    env.sweep(berlin(2026, 3, 2, 9, 5))
    env.ticket(berlin(2026, 3, 2, 10, 20))  # the newest change the sync has seen
    env.sweep(berlin(2026, 3, 2, 10, 25))
    with env.engine.begin() as conn:  # a writer that forgets to bump updated_at
        conn.execute(update(tickets).where(T.id == tid).values(status="on-hold"))
    env.sweep(berlin(2026, 3, 2, 10, 30))
    assert paused_since(env, tid) is None  # older than the sync's slack: not seen yet
    env.sweep(berlin(2026, 3, 2, 11, 0))  # the first minute of the hour re-reads everything
    assert paused_since(env, tid) == MONDAY


def paused_since(env: Env, tid: int) -> datetime | None:
    with env.engine.connect() as conn:
        return conn.execute(
            select(ticket_sla.c.paused_since).where(ticket_sla.c.ticket_id == tid)
        ).scalar_one()


# -- reminders -----------------------------------------------------------------------------
def test_escalated_ticket_without_update_reminds_every_24_hours(env: Env):
    mine = env.ticket(MONDAY, tier="L2", assignee="alice", status="open")
    nobody = env.ticket(MONDAY, tier="L3", status="open")
    fresh = env.ticket(MONDAY, tier="L1", status="open")
    env.set(fresh, first_response_at=MONDAY)
    env.sweep(MONDAY + timedelta(hours=23, minutes=59))
    assert env.mails("reminder") == []
    env.sweep(MONDAY + timedelta(hours=24))
    got = {(r["ticket_id"], r["rcpt_tos"][0]) for r in env.mails("reminder")}
    assert got == {(mine, "alice@example.test"), (nobody, "carol@example.test")}
    env.sweep(MONDAY + timedelta(hours=30))
    assert len(env.mails("reminder")) == 2
    env.set(mine, updated_at=MONDAY + timedelta(hours=40))  # someone worked on it
    env.sweep(MONDAY + timedelta(hours=48))
    assert [r["ticket_id"] for r in env.mails("reminder")[2:]] == [nobody]
    env.sweep(MONDAY + timedelta(hours=64))
    assert [r["ticket_id"] for r in env.mails("reminder")[3:]] == [mine]
    body = parsed(env.mails("reminder")[0]).get_content()
    assert "no update" in body and "once a day" in body


def test_shift_end_flags_worked_tickets_without_notes(tmp_path: Path):
    env = make_env(tmp_path, {"support": SLA + 'shift_ends = ["17:00"]\n'})
    bare = env.ticket(MONDAY, status="open", assignee="bob")
    noted = env.ticket(MONDAY, status="open", assignee="bob")
    idle = env.ticket(MONDAY - timedelta(days=7), status="open", assignee="bob")
    env.set(bare, updated_at=berlin(2026, 3, 2, 14), first_response_at=MONDAY)
    env.set(noted, updated_at=berlin(2026, 3, 2, 14), first_response_at=MONDAY)
    env.set(idle, first_response_at=MONDAY - timedelta(days=7))
    with env.engine.begin() as conn:
        conn.execute(
            insert(articles),
            {"ticket_id": noted, "kind": "note", "body_text": "tried X, next: Y",
             "created_at": berlin(2026, 3, 2, 15)},
        )  # fmt: skip
    env.sweep(berlin(2026, 3, 2, 16, 59))
    assert env.mails("reminder") == []
    env.sweep(berlin(2026, 3, 2, 17))
    [flag] = env.mails("reminder")
    assert (flag["ticket_id"], flag["rcpt_tos"]) == (bare, ["bob@example.test"])
    assert "no internal note" in parsed(flag).get_content()
    assert [a["ticket_id"] for a in env.audits("notes_missing")] == [bare]
    env.sweep(berlin(2026, 3, 2, 17, 30))
    env.sweep(berlin(2026, 3, 3, 17))  # not worked on during Tuesday's shift
    assert [a["ticket_id"] for a in env.audits("notes_missing")] == [bare]


# -- auto-close ----------------------------------------------------------------------------
CLOSE = {
    "support": SLA + "\n[close]\nafter_days = 0\n",
    "billing": "[close]\nafter_days = 3\n",
    "sales": "[close]\nafter_days = -1\n",
}


def test_auto_close_at_once_after_n_days_and_never(tmp_path: Path):
    env = make_env(tmp_path, CLOSE)
    at_once = env.ticket(MONDAY, answered=MONDAY + timedelta(hours=1))
    later = env.ticket(MONDAY, queue="billing", answered=MONDAY + timedelta(hours=1))
    never = env.ticket(MONDAY, queue="sales", answered=MONDAY + timedelta(hours=1))
    waiting = env.ticket(MONDAY, queue="billing", status="open")

    env.sweep(MONDAY + timedelta(hours=1, minutes=1))
    assert env.get(at_once)["status"] == "closed"
    assert env.get(at_once)["closed_at"] == MONDAY + timedelta(hours=1, minutes=1)
    env.sweep(MONDAY + timedelta(days=3, minutes=59))
    assert env.get(later)["status"] == "answered"
    env.sweep(MONDAY + timedelta(days=3, hours=1))
    assert env.get(later)["status"] == "closed"
    env.sweep(MONDAY + timedelta(days=400))
    assert env.get(never)["status"] == "answered"
    assert env.get(waiting)["status"] == "open"

    closed = env.mails("closed")
    assert [r["ticket_id"] for r in closed] == [at_once, later]
    first = parsed(closed[0])
    assert first["Subject"] == f"[support #{at_once}] Problem 1"
    assert first["In-Reply-To"] == "<m1@example.com>"
    text = first.get_content()
    assert "https://www.trustpilot.com/evaluate/example.test" in text
    assert "within 30 days the ticket opens again" in text
    assert "trustpilot" not in parsed(closed[1]).get_content()  # billing has no link
    assert "3 day(s) ago" in parsed(closed[1]).get_content()
    assert len(env.audits("closed")) == 2


def test_a_reply_reopens_within_the_window_and_opens_a_new_ticket_after(tmp_path: Path):
    extra = {"support": SLA + "\n[close]\nafter_days = 2\nreopen_window_days = 5\n"}
    env = make_env(tmp_path, extra)
    clock = [MONDAY]
    spool = Spool(env.config.spool_dir)
    worker = Worker(
        env.config, env.engine, spool, Pipeline(env.config, lambda: clock[0], keyrings=Keyrings())
    )

    def customer_writes(subject: str, at: datetime) -> None:
        clock[0] = at
        envelope = Envelope(source="test", rcpt_tos=("support@example.test",))
        spool.put(message(subject=subject, date=at), envelope)
        worker.drain()

    customer_writes("Printer is broken", MONDAY)
    with env.engine.connect() as conn:
        tid = conn.execute(select(T.id)).scalar_one()
    env.set(tid, status="answered", last_answer_at=berlin(2026, 3, 2, 10))
    env.sweep(berlin(2026, 3, 4, 10))  # 2 days after the answer
    assert env.get(tid)["status"] == "closed"

    customer_writes(f"Re: [support #{tid}] Printer is broken", berlin(2026, 3, 6, 10))
    t = env.get(tid)
    assert t["status"] == "reopened" and t["closed_at"] is None
    assert len(env.audits("reopened")) == 1

    # answered and closed again; a reply 6 days after closing starts a linked ticket
    env.set(tid, status="answered", last_answer_at=berlin(2026, 3, 6, 11))
    env.sweep(berlin(2026, 3, 8, 11))
    assert env.get(tid)["status"] == "closed"
    assert len(env.mails("closed")) == 2  # a new answer, a new closing mail
    customer_writes(f"Re: [support #{tid}] Printer is broken", berlin(2026, 3, 14, 12))
    with env.engine.connect() as conn:
        ids = conn.execute(select(T.id).order_by(T.id)).scalars().all()
        links = conn.execute(select(ticket_links)).all()
    assert len(ids) == 2 and env.get(tid)["status"] == "closed"
    assert [(r.ticket_id, r.linked_id) for r in links] == [(ids[1], tid)]


# -- catch-up and concurrency -------------------------------------------------------------
def outage_setup(env: Env) -> tuple[list[int], list[int]]:
    answered = [env.ticket(MONDAY, answered=MONDAY + timedelta(hours=h)) for h in (0, 10, 20, 30)]
    breaching = [env.ticket(berlin(2026, 3, 2, 10), priority=p) for p in (95, 75, 50, 20)]
    return answered, breaching


def test_catch_up_after_a_72_hour_outage_acts_once(tmp_path: Path):
    env = make_env(tmp_path, {"support": SLA + "\n[close]\nafter_days = 2\n"})
    env.sweep(MONDAY)
    answered, breaching = outage_setup(env)
    back = MONDAY + timedelta(hours=72)  # Thursday 09:00: the daemon comes back
    counts = env.sweep(back)
    assert counts["close"] == 3  # the one answered at +30 h is due at +78 h
    assert [env.get(t)["status"] for t in answered] == ["closed"] * 3 + ["answered"]
    assert [env.get(t)["tier"] for t in breaching] == ["L2"] * 4  # once, not twice
    assert [env.get(t)["priority"] for t in breaching] == [99, 90, 65, 35]  # the pure curve
    mails = env.mails()
    assert len(env.mails("closed")) == 3 and len(env.mails("escalated")) == 4
    for again in (back, back + timedelta(minutes=1)):
        assert env.sweep(again)["close"] == 0
    assert len(env.mails()) == len(mails)
    env.sweep(MONDAY + timedelta(hours=78))
    assert len(env.mails("closed")) == 4
    assert len({r["message_id"] for r in env.mails()}) == len(env.mails())


def test_a_big_catch_up_runs_in_batches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from mailgate.scheduler.sweeps import sql

    monkeypatch.setattr(sql, "BATCH", 4)
    env = make_env(tmp_path, {"support": SLA + "\n[close]\nafter_days = 1\n"})
    answered = [env.ticket(MONDAY, answered=MONDAY) for _ in range(10)]
    breaching = [env.ticket(MONDAY, priority=95) for _ in range(9)]
    counts = env.sweep(MONDAY + timedelta(days=2))
    assert (counts["close"], counts["sla"]) == (10, 9)
    assert {env.get(t)["status"] for t in answered} == {"closed"}
    assert {env.get(t)["tier"] for t in breaching} == {"L2"}
    assert len(env.mails("closed")) == 10 and len(env.mails("escalated")) == 9


def race(env: Env, url: str, at: datetime) -> None:
    """Two daemons (own engines) sweep the same database at the same moment, twice."""
    other = db.connect(url)
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def run(engine: Engine, now: datetime) -> None:
        try:
            barrier.wait()
            run_all_sweeps(engine, env.config, now)
            run_all_sweeps(engine, env.config, now + timedelta(seconds=30))
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [
        threading.Thread(target=run, args=(env.engine, at)),
        threading.Thread(target=run, args=(other, at + timedelta(seconds=1))),
    ]
    for th in threads:
        th.start()
    for th in threads:
        th.join(120)
    other.dispose()
    assert not errors, errors


def check_race(env: Env, answered: list[int], breaching: list[int]) -> None:
    assert len(env.audits("closed")) == len(answered)
    assert len(env.audits("escalated")) == len(breaching)
    assert len(env.mails("closed")) == len(answered)
    assert len(env.mails("escalated")) == len(breaching)
    assert len(env.mails("escalation")) == 2 * len(breaching)  # alice and lena
    with env.engine.connect() as conn:
        per_ticket = conn.execute(
            select(outbox.c.ticket_id, outbox.c.kind, func.count())
            .group_by(outbox.c.ticket_id, outbox.c.kind)
            .having(func.count() > 2)
        ).all()
    assert per_ticket == []


def many(env: Env) -> tuple[list[int], list[int]]:
    answered = [env.ticket(MONDAY, answered=MONDAY) for _ in range(25)]
    breaching = [env.ticket(MONDAY, priority=95) for _ in range(25)]
    return answered, breaching


def test_two_sweepers_at_once_send_nothing_twice(tmp_path: Path):
    env = make_env(tmp_path, {"support": SLA + "\n[close]\nafter_days = 1\n"})
    answered, breaching = many(env)
    race(env, "sqlite:///" + str(tmp_path / "db.sqlite"), MONDAY + timedelta(days=1, hours=1))
    check_race(env, answered, breaching)


def test_two_sweepers_at_once_on_postgresql(tmp_path: Path, pg_url: str):
    env = make_env(tmp_path, {"support": SLA + "\n[close]\nafter_days = 1\n"}, url=pg_url)
    answered, breaching = many(env)
    race(env, pg_url, MONDAY + timedelta(days=1, hours=1))
    check_race(env, answered, breaching)
    env.engine.dispose()


# -- the scheduler in an event loop ----------------------------------------------------------
def test_run_scheduler_sweeps_at_once_and_stops(tmp_path: Path):
    env = make_env(tmp_path, {"support": SLA + "\n[close]\nafter_days = 0\n"})
    tid = env.ticket(MONDAY, answered=MONDAY)
    clock = MONDAY + timedelta(minutes=5)

    async def main() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(
            run_scheduler(lambda: env.config, env.engine, stop, lambda: clock, interval_seconds=1)
        )

        def closed() -> bool:
            return env.get(tid)["status"] == "closed"

        await asyncio.to_thread(wait_until, closed, 10, "the ticket closed")
        stop.set()
        await asyncio.wait_for(task, 10)

    asyncio.run(main())
    assert env.get(tid)["status"] == "closed"
    assert len(env.mails("closed")) == 1


def test_a_broken_sla_table_never_reaches_the_scheduler(tmp_path: Path):
    env = make_env(tmp_path)  # config.load types [sla] once: a broken table stops the load
    source = env.config.queue("support").source  # type: ignore[union-attr]
    source.write_text(source.read_text().replace("[sla]\n", '[sla]\nbusiness_hours = ["9-5"]\n'))
    with pytest.raises(ConfigError, match=r"support.toml: sla.business_hours: '9-5'"):
        load(env.config.path)


def test_a_broken_reload_keeps_the_last_good_sla_settings(tmp_path: Path):
    env = make_env(tmp_path, {"support": SLA + "\n[close]\nafter_days = 0\n"})
    first = env.ticket(MONDAY, answered=MONDAY)
    daemon = Daemon(env.config)  # its SIGHUP reload is what the scheduler sees
    source = env.config.queue("support").source  # type: ignore[union-attr]

    async def until_closed(tid: int) -> None:
        def closed() -> bool:
            return env.get(tid)["status"] == "closed"

        await asyncio.to_thread(wait_until, closed, 10, f"#{tid} closed")

    async def main() -> int:
        stop = asyncio.Event()
        task = asyncio.create_task(
            run_scheduler(
                lambda: daemon.config, env.engine, stop, lambda: MONDAY, interval_seconds=1
            )
        )
        await until_closed(first)
        source.write_text(
            source.read_text().replace('timezone = "Europe/Berlin"', 'timezone = "Mars/Olympus"')
        )
        assert not daemon.reload() and daemon.config is env.config  # a reload with a broken [sla]
        second = env.ticket(MONDAY, answered=MONDAY)
        await until_closed(second)
        stop.set()
        await asyncio.wait_for(task, 10)
        return second

    second = asyncio.run(main())
    assert env.get(first)["status"] == env.get(second)["status"] == "closed"


def test_every_scheduler_mail_to_an_agent_is_an_agent_mail(tmp_path: Path):
    # The sweeps built their own agent mail without the reply marker, the footer and the
    # command address that every notification carries; one builder family makes both now.
    env = make_env(tmp_path, {"support": SLA + 'shift_ends = ["17:00"]\n'})
    esc = env.ticket(berlin(2026, 3, 2, 10), priority=95)
    env.sweep(berlin(2026, 3, 2, 10, 15))  # first response missed: L1 -> L2
    env.set(esc, updated_at=berlin(2026, 3, 2, 10, 15))
    env.sweep(berlin(2026, 3, 3, 10, 16))  # a day without update: reminder
    agent_rows = env.mails("escalation") + env.mails("reminder")
    assert {r["kind"] for r in agent_rows} == {"escalation", "reminder"}
    for row in agent_rows:
        m = parsed(row)
        agent = m["To"].addresses[0].username
        body = m.get_content()
        assert body.startswith(REPLY_MARKER), row["kind"]
        assert "Your command address" in body and m["X-Mailgate-Command-Address"] in body
        command = tokens.parse_reply_address(m["X-Mailgate-Command-Address"])
        assert command is not None and command.ticket_id == tokens.COMMAND_TICKET
        reply = tokens.parse_reply_address(m["Reply-To"])
        assert reply is not None and reply.ticket_id == esc
        assert reply.mac == tokens.token_mac(env.config.secret, agent, esc)
        assert m["X-Mailgate-Ticket"] == str(esc)
        assert m["Auto-Submitted"] == "auto-generated" and m["X-Mailgate-Loop"]
    for row in env.mails("escalated"):  # the customer's: no marker, no token, no footer
        m = parsed(row)
        assert REPLY_MARKER not in m.get_content() and m["Reply-To"] is None
        assert m["X-Mailgate-Command-Address"] is None
