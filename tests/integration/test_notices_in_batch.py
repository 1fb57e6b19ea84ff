"""A customer mail's notifications wait in the worker's batch for its held rows
(store/batch.py, `Notices`), yet each reads its ticket as its own mail left it, as when
every message is stored alone, even when a later mail of the same batch changes the
ticket: here an agent's `#pickup` and `#sticky on` between a new ticket and its
customer's follow-up, all three in one batch.

The same three messages are drained twice, in one batch and on the savepoint path (one
message at a time, no batch state), and every table is compared (test_batch_ids.py).
"""

from __future__ import annotations

from datetime import UTC, datetime
from email import message_from_bytes, policy
from pathlib import Path

from sqlalchemy import Engine

from mailgate.agents import tokens
from mailgate.spool import Envelope
from tests.harness import load, message, offline, outbox, tickets, write_config
from tests.integration.test_agents import text_of
from tests.integration.test_batch_ids import compared
from tests.integration.test_notify_bytes import AGENTS, NOTIFIED

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
QUEUE = "support@example.test"


def _mails(secret: bytes) -> list[tuple[bytes, tuple[str, ...]]]:
    """A new ticket (#1), bob's commands to its reply address, the customer's follow-up."""
    bob = tokens.reply_address(secret, "bob", 1, QUEUE)
    return [
        (message(message_id="<a@example.com>", subject="Printer is broken", date=NOW), (QUEUE,)),
        (
            message(
                sender="bob@example.test",
                name="Bob",
                to=bob,
                subject="Re: notification",
                body="#pickup\n#sticky on\n",
                message_id="<bob-1@example.test>",
                date=NOW,
            ),
            (bob,),
        ),
        (
            message(
                message_id="<a2@example.com>",
                in_reply_to="<a@example.com>",
                subject="Re: [support #1] Printer is broken",
                body="Any news?\n",
                date=NOW,
            ),
            (QUEUE,),
        ),
    ]


def _drained(root: Path, alone: bool) -> Engine:
    cfg = load(write_config(root, batch_size=64, agents_toml=AGENTS, queue_extra=NOTIFIED))
    engine, spool, worker = offline(cfg)
    worker.pipeline.clock = lambda: NOW
    if alone:  # straight to the savepoint path, without a batch state
        worker._optimistic = lambda *args: None  # type: ignore[method-assign]
    for raw, rcpts in _mails(cfg.secret):
        spool.put(raw, Envelope(source="smtp", rcpt_tos=rcpts, received_at=NOW.timestamp()))
    assert worker.process_batch().handled == 3  # one batch
    return engine


def test_a_notification_reads_its_ticket_as_its_own_mail_left_it(tmp_path):
    batch, alone = _drained(tmp_path / "batch", False), _drained(tmp_path / "alone", True)
    compared(batch, alone, ranked=False, outbox_by_message_id=True)
    (ticket,) = tickets(batch)
    assert (ticket.assignee, ticket.sticky) == ("bob", True)  # the command ran in the batch
    sent = [(o.kind, tuple(o.rcpt_tos)) for o in outbox(batch)]
    # the new ticket's, before the command: the whole queue; the follow-up's, after it:
    # bob alone, the ticket being sticky and his
    assert ("notify-new_ticket", ("alice@example.test",)) in sent
    assert ("notify-new_ticket", ("bob@example.test",)) in sent
    replies = [o for o in outbox(batch) if o.kind == "notify-customer_reply"]
    assert [tuple(o.rcpt_tos) for o in replies] == [("bob@example.test",)]
    assert "Any news?" in text_of(message_from_bytes(replies[0].raw, policy=policy.default))
