"""Routing rules through the real worker and database: the ticket lands where the rules
say, records which rules matched and why, and `tickets show` / `rules test` print it."""

from __future__ import annotations

from mailgate.cli.main import main as cli_main
from mailgate.spool import Envelope
from tests.harness import load, message, offline, outbox, tickets, write_config

RULES = """
[[rules]]
name = "cancellations"
text = ["cancel"]
queue = "billing"
tags = ["cancellation"]
category = "billing"
complexity = "lower"
assignee = "alice"
stop = true

[[rules]]
name = "outage"
subject_regex = "site (is )?down|\\\\b502\\\\b"
priority_class = "critical"
tags = ["outage"]
"""

SMTP = Envelope(source="smtp", rcpt_tos=("support@example.test",))


def _desk(tmp_path, database_url=""):
    cfg = load(write_config(tmp_path, queue_extra={"support": RULES}, database_url=database_url))
    engine, spool, worker = offline(cfg)
    return cfg, engine, spool, worker


def test_a_new_ticket_is_routed_and_says_why(tmp_path, capsys):
    cfg, engine, spool, worker = _desk(tmp_path)
    spool.put(message(subject="Please cancel my plan", body="site down too"), SMTP)
    spool.put(message(subject="Our site is down", body="since 9"), SMTP)
    spool.put(message(subject="Printer is broken"), SMTP)
    assert worker.drain().stored == 3

    cancel, outage, plain = tickets(engine)
    assert (cancel.queue, cancel.priority, cancel.assignee, cancel.status) == (
        "billing",
        60,  # billing's initial priority: the ticket moved before it was created
        "alice",
        "open",
    )
    assert (cancel.category, cancel.complexity) == ("billing", "lower")
    assert {t.tag for t in cancel.tags} == {"cancellation"}  # stop: the outage rule never ran
    assert {q.queue for q in cancel.queues} == {"billing", "support"}
    assert (outage.queue, outage.priority, {t.tag for t in outage.tags}) == (
        "support",
        90,
        {"outage"},
    )
    assert (plain.queue, plain.priority, plain.tags) == ("support", 50, [])
    # the acknowledgement comes from the queue the ticket is in, with its tag
    acks = {r.ticket_id: r for r in outbox(engine) if r.kind == "ack"}
    assert b"[billing #1]" in acks[cancel.id].raw
    assert b"From: Example Billing <billing@example.test>" in acks[cancel.id].raw
    assert b"[support #2]" in acks[outage.id].raw

    assert cli_main(["--config", str(cfg.path), "tickets", "show", str(cancel.id)]) == 0
    shown = capsys.readouterr().out
    assert "routed by rule 'cancellations': text has \"cancel\"" in shown
    assert "tags cancellation  category billing  complexity lower" in shown
    assert "'outage'" not in shown  # stop: the second rule never ran
    cli_main(["--config", str(cfg.path), "tickets", "show", str(plain.id)])
    assert "routed by" not in capsys.readouterr().out


def test_the_matched_rules_are_written_on_postgresql_too(tmp_path, pg_url):
    """The worker writes a new ticket's rule hits on its hot path (store/fast.py): on
    PostgreSQL they wait in the batch's pipeline and go with the next statement."""
    from mailgate.store.rule_hits import hits_of

    cfg, engine, spool, worker = _desk(tmp_path, pg_url)
    spool.put(message(subject="Please cancel my plan", body="site down too"), SMTP)
    spool.put(message(subject="Our site is down", body="since 9"), SMTP)
    assert worker.drain().stored == 2
    cancel, outage = tickets(engine)
    with engine.connect() as conn:
        hits = {t.id: hits_of(conn, t.id) for t in (cancel, outage)}
    assert [h.rule for h in hits[cancel.id]] == ["cancellations"]
    assert hits[cancel.id][0].reasons == ('text has "cancel"',)
    assert [h.rule for h in hits[outage.id]] == ["outage"]


def test_a_follow_up_is_never_rerouted(tmp_path):
    cfg, engine, spool, worker = _desk(tmp_path)
    spool.put(message(subject="Printer is broken", message_id="<first@example.com>"), SMTP)
    worker.drain()
    [t] = tickets(engine)
    reply = message(
        subject="Re: [support #1] Printer is broken, cancel it",
        in_reply_to="<first@example.com>",
        body="please cancel",
    )
    spool.put(reply, SMTP)
    worker.drain()
    [after] = tickets(engine)
    assert (after.queue, after.assignee, len(after.articles)) == ("support", None, 2)


def test_rules_test_prints_what_the_rules_would_do(tmp_path, capsys):
    cfg, *_ = _desk(tmp_path)
    eml = tmp_path / "msg.eml"
    eml.write_bytes(message(subject="Site down, 502 everywhere"))
    assert cli_main(["--config", str(cfg.path), "rules", "test", str(eml)]) == 0
    out = capsys.readouterr().out
    assert "arrives in queue support: 2 rule(s)" in out
    assert "-  cancellations: no match" in out
    assert "+  outage: subject matches /site (is )?down|\\b502\\b/" in out
    assert "queue     support\n" in out and "priority  90 (class critical)" in out
    assert "tags      outage" in out

    eml.write_bytes(message(subject="cancel: site down", to="billing@example.test"))
    assert (
        cli_main(["--config", str(cfg.path), "rules", "test", "--queue", "support", str(eml)]) == 0
    )
    out = capsys.readouterr().out
    assert "queue     support -> billing" in out and "assignee  alice" in out
    assert "-  outage: not run (an earlier rule stopped)" in out
    assert "(rule 'cancellations' stopped the rules after it)" in out
    assert cli_main(["--config", str(cfg.path), "rules", "test", str(eml)]) == 0
    assert "arrives in queue billing: 0 rule(s)" in capsys.readouterr().out


def test_a_rule_naming_an_unknown_queue_or_agent_is_a_load_error(tmp_path):
    from mailgate.config.errors import ConfigError

    bad = '[[rules]]\nname = "x"\nsubject = ["a"]\nqueue = "nowhere"\nassignee = "zed"\n'
    path = write_config(tmp_path, queue_extra={"sales": bad})
    try:
        load(path)
    except ConfigError as e:
        problems = e.problems
    else:
        raise AssertionError("loaded")
    assert problems == [
        f"{path.parent / 'queues' / 'sales.toml'}: rules[x].queue: no queue named 'nowhere'",
        f"{path.parent / 'queues' / 'sales.toml'}: rules[x].assignee: no agent named 'zed'",
    ]
