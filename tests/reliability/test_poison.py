"""Poison: messages the pipeline cannot take never stop the messages behind them.

Through a live daemon (real SMTP in, real relay out): binary junk and other non-mail end in
the shunt with their stage and reason while the good messages around them become tickets;
a message that makes the pipeline raise (a broken queue template, a stand-in for a bug) is
retried `max_attempts` times, then shunted with the step that raised ("ack") and its
traceback once, and `mailgate shunt retry` after the fix turns it into a ticket.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.harness import (
    load,
    message,
    outbox,
    running,
    tickets,
    wait_until,
    write_config,
)
from tests.reliability.daemon_proc import mailgate
from tests.servers import SmtpSink
from tests.spool_layout import entries, split


def _lines(data: bytes, width: int = 64) -> bytes:
    """Binary junk cut into CRLF lines: SMTP refuses lines over 1000 bytes before we see it."""
    return b"\r\n".join(data[i : i + width] for i in range(0, len(data), width)) + b"\r\n"


JUNK = {
    "binary": _lines(bytes(range(256)) * 10),
    "ole": _lines(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(range(256)) * 4),
    "blank": b"\r\n\r\n\r\n",
}
# broken, but mail: kept as tickets with their defects (or, at worst, shunted with a reason)
MALFORMED = {
    "no-boundary": b"Content-Type: multipart/mixed\r\n\r\n--zz\r\nhello\r\n",
    "bad-base64": b"Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n!!*\r\n",
    "8bit-headers": b"X-Junk: \xff\xfe caf\xe9 \x00\r\n\r\nbody \xff\xc3\r\n",
    "deep-nesting": b"".join(
        b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n" % (i, i) for i in range(60)
    )
    + b"text\r\n",
}


def _malformed(kind: str, tail: bytes) -> bytes:
    head = (
        f"From: {kind} <{kind}@customers.example>\r\nTo: support@example.test\r\n"
        f"Subject: malformed {kind}\r\nMessage-ID: <{kind}@customers.example>\r\n"
    )
    return head.encode() + tail


def _shunt(spool: Path) -> dict[str, dict]:
    """Shunted entries (NAME.msg) by envelope sender: the envelope (with its failures)."""
    out = {}
    for p in sorted((spool / "shunt").glob("*.msg")):
        try:
            envelope, raw = split(p)
        except FileNotFoundError:  # being retried meanwhile
            continue
        env = json.loads(envelope.to_json())
        env["name"] = p.stem
        env["has_raw"] = bool(raw)
        out[env["mail_from"]] = env
    return out


def _relayed_to(sink: SmtpSink, rcpt: str) -> list:  # type: ignore[type-arg]
    return [c for c in sink.messages if c.rcpt_tos == [rcpt]]


def _eml(spool: Path, sub: str) -> list[str]:
    return entries(spool / sub)


def test_junk_is_shunted_and_good_mail_flows_around_it(tmp_path, smtp_sink: SmtpSink):
    cfg = load(write_config(tmp_path, relay_port=smtp_sink.port))
    spool = cfg.spool_dir
    plan: list[tuple[str, str, bytes]] = []  # (kind, envelope sender, raw)
    for i in range(12):
        sender = f"good{i:02d}@customers.example"
        plan.append(("good", sender, message(sender=sender, subject=f"good {i}")))
        if i < len(JUNK):
            kind = list(JUNK)[i]
            plan.append((f"junk:{kind}", f"{kind}@junk.example", JUNK[kind]))
        if i < len(MALFORMED):
            kind = list(MALFORMED)[i]
            sender = f"{kind}@customers.example"
            plan.append((f"malformed:{kind}", sender, _malformed(kind, MALFORMED[kind])))
    n_good = sum(k == "good" for k, _s, _r in plan)
    with running(cfg) as d:
        for _kind, sender, raw in plan:
            d.send(raw, sender=sender)

        def settled() -> bool:
            arts = {a.from_addr for t in tickets(d.engine) for a in t.articles}
            seen = arts | set(_shunt(spool))
            return all(s in seen for _k, s, _r in plan)

        wait_until(settled, timeout=30, interval=0.1)
        # the worker is still alive: a message sent after the junk is taken at once
        d.send(message(sender="after@customers.example", subject="after"), sender="after@x.test")
        wait_until(lambda: any(t.title == "after" for t in tickets(d.engine)), timeout=15)
        wait_until(lambda: all(r.status == "sent" for r in outbox(d.engine)), timeout=15)
        ts = tickets(d.engine)
        rows = outbox(d.engine)
        assert d.thread.is_alive() and d.error is None
    acks = [r for r in rows if r.kind == "ack"]
    ack_ids = {r.message_id for r in acks}
    relayed = [c for c in smtp_sink.messages if str(c.message["Message-ID"]) in ack_ids]

    requesters = {t.requester_addr for t in ts}
    shunted = _shunt(spool)
    outcome: dict[str, str] = {}  # by envelope sender (== From: here, except junk)
    for _kind, sender, _raw in plan:
        if sender in requesters:
            outcome[sender] = "ticket"
        elif sender in shunted:
            f = shunted[sender]["failures"][-1]
            outcome[sender] = f"shunt at {f['stage']}: {f['reason'].splitlines()[0][:60]}"
        else:
            outcome[sender] = "NOWHERE"
    summary = (
        f"sent={len(plan) + 1} good={n_good + 1} junk={len(JUNK)} malformed={len(MALFORMED)} "
        f"tickets={len(ts)} shunted={len(shunted)} acks_sent={len(relayed)} "
        f"outbox_rows={len(rows)} "
        f"nowhere={sum(v == 'NOWHERE' for v in outcome.values())}"
    )
    print("\npoison:", summary)
    for kind, sender, _raw in plan:
        if kind != "good":
            print(f"  {kind}: {outcome[sender]}")

    # README "What it promises": every message ends somewhere visible
    assert "NOWHERE" not in outcome.values(), f"{outcome}\n{summary}"
    assert all(outcome[s] == "ticket" for k, s, _r in plan if k == "good"), summary
    for kind in JUNK:
        env = shunted[f"{kind}@junk.example"]
        assert env["has_raw"], kind
        assert [f["stage"] for f in env["failures"]] == ["parse"], (kind, env)
        assert env["failures"][0]["reason"].strip(), (kind, env)
        assert env["attempts"] == 1  # not mail: shunted at once, not retried
    for kind in MALFORMED:
        where = outcome[f"{kind}@customers.example"]
        assert where == "ticket" or where.startswith("shunt at "), where
    assert len(ts) == sum(v == "ticket" for v in outcome.values()) + 1
    assert _eml(spool, "incoming") == [] and _eml(spool, "claimed") == []
    # every ticket from a real sender got its ack; no junk produced any outgoing mail
    assert len(acks) == len(ts) and len(relayed) == len(ts), summary
    assert {r.status for r in rows} == {"sent"}, summary
    junk_senders = {s for _k, s, _r in plan if "junk" in s}
    assert not {a for r in rows for a in r.rcpt_tos} & junk_senders, summary

    # `mailgate shunt list` (another process) shows each one with stage and reason
    listing = mailgate(cfg.path, "shunt", "list").stdout.decode()
    for env in (shunted[f"{k}@junk.example"] for k in JUNK):
        assert env["name"] in listing and "parse" in listing, listing


def test_pipeline_error_is_retried_then_shunted_then_retried_after_fix(
    tmp_path, smtp_sink: SmtpSink
):
    cfg = load(write_config(tmp_path, relay_port=smtp_sink.port))
    # the queue override directory is <config>/../templates/<queue>/ (mailgate.templates_dir)
    assert cfg.templates_dir == (tmp_path / "templates").resolve()
    override = cfg.templates_dir / "support" / "new_ticket.txt"
    override.parent.mkdir(parents=True)
    override.write_text("Dear {{ undefined_variable }},\n")
    spool = cfg.spool_dir
    max_attempts = cfg.worker.max_attempts
    with running(cfg) as d:
        d.send(message(sender="victim@customers.example", subject="bug"), sender="v@x.test")
        wait_until(lambda: _eml(spool, "shunt"), timeout=20)
        # billing uses the shared template: the worker goes on with other mail
        d.send(
            message(sender="payer@customers.example", subject="ok", to="billing@example.test"),
            rcpts=["billing@example.test"],
            sender="payer@customers.example",
        )
        wait_until(lambda: _relayed_to(smtp_sink, "payer@customers.example"), timeout=15)
        [env] = _shunt(spool).values()
        before_fix = tickets(d.engine)
        shown = mailgate(cfg.path, "shunt", "show", env["name"]).stdout.decode()

        override.write_text("Fixed template: ticket {{ ticket_ref }}\n")
        r = mailgate(cfg.path, "shunt", "retry", env["name"])
        assert r.returncode == 0, r.stderr.decode()
        wait_until(lambda: len(tickets(d.engine)) == 2, timeout=20)
        [ack] = wait_until(lambda: _relayed_to(smtp_sink, "victim@customers.example"), 15)
        wait_until(lambda: not _eml(spool, "claimed"), timeout=10)
        after_fix = tickets(d.engine)
        assert d.thread.is_alive() and d.error is None

    reasons = [f["reason"].splitlines()[0] for f in env["failures"]]
    stages = [f["stage"] for f in env["failures"]]
    print(
        f"\npipeline error: attempts={env['attempts']} stages={stages}"
        f"\n  reason: {reasons[-1]}\n  tickets before fix={len(before_fix)} after retry="
        f"{len(after_fix)} ack after retry: {ack.message['Subject']!r}"
    )
    assert env["attempts"] == max_attempts and len(env["failures"]) == max_attempts, env
    assert set(stages) == {"ack"}  # the step that raised: build_ack's template
    [tb] = env["tracebacks"]  # one traceback, kept once for the attempts it covered
    # `mailgate shunt show`: the failure with the attempts it covers, the traceback once
    assert shown.count("failed at ack, attempts 1, 2, 3") == 1, shown
    assert shown.count("traceback at ack, attempt(s) 1, 2, 3") == 1, shown
    assert shown.count("in ack_step") == 1, shown  # the step's frame: printed once
    assert tb["stage"] == "ack" and tb["attempts"] == list(range(1, max_attempts + 1)), tb
    assert "undefined_variable" in tb["text"], tb
    assert all("TemplateError" in r and "undefined_variable" in r for r in reasons), reasons
    assert env["mail_from"] == "v@x.test" and env["rcpt_tos"] == ["support@example.test"]
    # the failed tries left nothing behind: the ticket was rolled back with its savepoint
    assert [t.requester_addr for t in before_fix] == ["payer@customers.example"]
    assert [t.requester_addr for t in after_fix][1] == "victim@customers.example"
    t = after_fix[1]
    assert t.queue == "support" and [a.kind for a in t.articles] == ["inbound"]
    assert "Fixed template: ticket support #" in ack.message.get_content()
    assert _eml(spool, "shunt") == [] and _eml(spool, "incoming") == []


def test_shunt_retry_keeps_the_history_and_leaves_nothing_behind(tmp_path):
    """Shunting leaves no stray envelope behind, and a retry keeps the failure history.

    Fails today: `Spool.fail` writes the new envelope into shunt/ and moves the .eml there,
    but leaves the old `incoming/NAME.json` behind (until the next start's `recover()`
    deletes it as an orphan). (An earlier spool left it in claimed/, from where `recover()`
    moved it over the real envelope and reset the history; the second half guards that.)
    """
    path = write_config(tmp_path)
    cfg = load(path)
    r = mailgate(path, "ingest", stdin=bytes(range(256)) * 10)
    assert r.returncode == 0
    assert mailgate(path, "process").returncode == 0
    [entry] = sorted((cfg.spool_dir / "shunt").glob("*.msg"))
    stray = sorted(
        str(p.relative_to(cfg.spool_dir))
        for sub in ("tmp", "incoming", "claimed")
        if (cfg.spool_dir / sub).is_dir()
        for p in (cfg.spool_dir / sub).iterdir()
    )
    assert mailgate(path, "shunt", "retry", entry.stem).returncode == 0
    assert mailgate(path, "process").returncode == 0
    env = json.loads(split(entry)[0].to_json())
    stages = [f["stage"] for f in env["failures"]]
    print(f"\nspool files besides the shunt: {stray}; failures after retry + process: {stages}")
    assert stray == [], f"stray spool files after a shunt: {stray}"
    assert stages == ["parse", "parse"], f"failure history lost across a retry: {env}"
    assert env["attempts"] == 1  # fresh count after the retry, shunted at once again
