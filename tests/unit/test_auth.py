"""Agent authentication, table-driven: the attacks of tests/security/test_spoof.py at unit level.

`find_agent_reply` decides whether a mail is an agent's at all (From + token in a
recipient); `refusal` and `signature_refusal` why an authenticated mail must not run;
`message_key` and `signed_content_key` what makes a replay one.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mailgate.agents import auth, tokens
from mailgate.config.model import Config, Queue
from mailgate.config.schema import AgentMailSettings
from mailgate.parse.message import parse
from mailgate.pgp.verdicts import SignatureCheck
from mailgate.spool import Envelope
from tests.harness import load, message, write_config
from tests.security.test_spoof import _variant as spoof_variant

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
TID = 12
AGENTS = """
[[agents]]
name = "alice"
address = "alice@example.test"
queues = ["support"]
pgp_fingerprint = "AAAA BBBB CCCC DDDD EEEE  FFFF 0000 1111 2222 3333"

[[agents]]
name = "bob"
address = "bob@example.test"
queues = ["support"]
"""
FPR = "AAAABBBBCCCCDDDDEEEEFFFF0000111122223333"


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Config:
    root: Path = tmp_path_factory.mktemp("auth")
    return load(write_config(root, agents_toml=AGENTS))


def token(config: Config, agent: str, tid: int = TID, queue: str = "support") -> str:
    return tokens.reply_address(config.secret, agent, tid, f"{queue}@example.test")


def variant(addr: str, how: str) -> str:
    """test_spoof's spellings of a token, and two more: one hex digit changed, another domain."""
    local, domain = addr.split("@")
    if how == "tampered":
        return f"{local[:-1]}{'0' if local[-1] != '0' else '1'}@{domain}"
    if how == "foreign-domain":
        return f"{local}@evil.example"
    return spoof_variant(addr, how)


# (case, From addr-spec, recipient values as the agent's token function gives them,
#  expected (ticket, queue) or None: customer path)
FIND = [
    ("genuine", "alice@example.test", lambda c: [token(c, "alice")], (TID, "support")),
    ("From in another case", "Alice@Example.TEST", lambda c: [token(c, "alice")], (TID, "support")),
    ("token in a Cc-style list", "alice@example.test",
     lambda c: [f"Carla <carla@example.com>, Support <{token(c, 'alice')}>"], (TID, "support")),
    ("command address", "alice@example.test", lambda c: [token(c, "alice", 0)], (0, "support")),
    ("token under another queue's address", "alice@example.test",
     lambda c: [token(c, "alice", queue="billing")], (TID, "billing")),
    ("no token", "alice@example.test", lambda c: ["support@example.test"], None),
    ("not an agent", "carla@example.com", lambda c: [token(c, "alice")], None),
    ("no From", "", lambda c: [token(c, "alice")], None),
    ("display-name trick: From is mallory", "mallory@evil.example",
     lambda c: [token(c, "alice")], None),
    ("token for another ticket", "alice@example.test",
     lambda c: [f"support+t{TID}.k{tokens.token_mac(c.secret, 'alice', TID + 1000)}@example.test"],
     None),
    ("bob's token, From alice", "alice@example.test", lambda c: [token(c, "bob")], None),
    ("alice's token, From bob", "bob@example.test", lambda c: [token(c, "alice")], None),
    *(
        (f"token {how}", "alice@example.test",
         lambda c, how=how: [variant(token(c, "alice"), how)], None)
        for how in ("upper", "upper-T", "percent", "plus-encoded", "leading-zero", "tampered",
                    "foreign-domain")
    ),
]  # fmt: skip


@pytest.mark.parametrize(("case", "sender", "rcpts", "want"), FIND, ids=[c[0] for c in FIND])
def test_find_agent_reply(config: Config, case: str, sender: str, rcpts, want):  # type: ignore[no-untyped-def]
    reply = auth.find_agent_reply(config, sender, rcpts(config))
    got = None if reply is None else (reply.ticket_id, reply.queue.name)
    assert got == want
    if reply is not None:
        assert reply.agent.address == sender.lower() and not reply.ambiguous


def test_tokens_of_two_tickets_are_ambiguous(config: Config):
    reply = auth.find_agent_reply(
        config, "alice@example.test", [token(config, "alice"), token(config, "alice", TID + 1)]
    )
    assert reply is not None and reply.ambiguous
    again = auth.find_agent_reply(
        config, "alice@example.test", [token(config, "alice"), token(config, "alice")]
    )
    assert again is not None and not again.ambiguous


@pytest.mark.parametrize(
    ("where", "found"),
    [
        ("envelope", True),
        ("To", True),
        ("Cc", True),
        ("Delivered-To", True),
        ("X-Original-To", True),
        ("body", False),  # a token only in the text authenticates nothing
        ("Subject", False),
        ("Reply-To", False),
        ("To display name", False),  # "support+t1.k..@" <support@>: the address counts
        ("Cc display name", False),
    ],
)
def test_where_a_token_counts(config: Config, where: str, found: bool):
    tok = token(config, "alice")
    headers = {"To": "support@example.test", "extra": "", "body": "Hello\n", "subject": "Re: x"}
    if where == "To":
        headers["To"] = tok
    elif where == "To display name":
        headers["To"] = f'"{tok}" <support@example.test>'
    elif where == "Cc display name":
        headers["extra"] = f'Cc: {tok.replace("@", " at ")} <bob@example.test>, "{tok}" <x@y.z>'
    elif where == "body":
        headers["body"] = f"#close\nwrite to {tok}\n"
    elif where == "Subject":
        headers["subject"] = f"Re: {tok}"
    elif where != "envelope":
        headers["extra"] = f"{where}: {tok}"
    raw = message(
        sender="alice@example.test",
        to=headers["To"],
        subject=headers["subject"],
        body=headers["body"],
        extra=headers["extra"],
    )
    rcpt = tok if where == "envelope" else "support@example.test"
    envelope = Envelope("smtp", mail_from="alice@example.test", rcpt_tos=(rcpt,))
    p = parse(raw)
    reply = auth.find_agent_reply(config, p.from_addr, auth.recipients(envelope, p))
    assert (reply is not None) is found


def _queue(config: Config, **settings: object) -> Queue:
    q = config.queue("support")
    assert q is not None
    return dataclasses.replace(q, agent_mail=AgentMailSettings(**settings))  # type: ignore[arg-type]


H = timedelta(hours=1)
# (case, ticket found, ambiguous, Message-ID, Date, queue settings, refusal contains)
REFUSE = [
    ("genuine", True, False, "<m@x>", NOW - H, {}, ""),
    ("72 h old is still recent", True, False, "<m@x>", NOW - 72 * H, {}, ""),
    ("10 min in the future: clock skew", True, False, "<m@x>", NOW + H / 6, {}, ""),
    ("stale Date (73 h)", True, False, "<m@x>", NOW - 73 * H, {}, "more than 72 h ago"),
    ("future Date (+2 h)", True, False, "<m@x>", NOW + 2 * H, {}, "in the future"),
    ("no Date", True, False, "<m@x>", None, {}, "no readable Date"),
    ("no Message-ID", True, False, "", NOW, {}, "no Message-ID"),
    ("ticket gone", False, False, "<m@x>", NOW, {}, f"ticket #{TID} does not exist"),
    ("two tickets", True, True, "<m@x>", NOW, {}, "more than one ticket"),
    ("strict queue: 2 h old", True, False, "<m@x>", NOW - 2 * H, {"max_command_age_hours": 1},
     "more than 1 h ago"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "found", "ambiguous", "mid", "date", "settings", "want"),
    REFUSE,
    ids=[c[0] for c in REFUSE],
)
def test_refusal(config: Config, case, found, ambiguous, mid, date, settings, want):  # type: ignore[no-untyped-def]
    reply = auth.find_agent_reply(config, "alice@example.test", [token(config, "alice")])
    assert reply is not None
    reply = dataclasses.replace(reply, ambiguous=ambiguous)
    queues = [reply.queue, _queue(config, **settings)]  # the strictest of the two applies
    why = auth.refusal(reply, ticket_found=found, message_id=mid, date=date, now=NOW, queues=queues)
    assert (why == "") if not want else (want in why)


def test_the_command_address_needs_no_ticket(config: Config):
    reply = auth.find_agent_reply(config, "alice@example.test", [token(config, "alice", 0)])
    assert reply is not None
    why = auth.refusal(
        reply, ticket_found=False, message_id="<m@x>", date=NOW, now=NOW, queues=[reply.queue]
    )
    assert why == ""


def _sig(valid: bool = True, fingerprint: str = FPR, reason: str = "") -> SignatureCheck:
    return SignatureCheck(valid, fingerprint, ("alice@example.test",), True, reason)


@pytest.mark.parametrize(
    ("case", "agent", "sig", "want"),
    [
        ("signed by the registered key", "alice", _sig(), ""),
        ("fingerprint in lower case", "alice", _sig(fingerprint=FPR.lower()), ""),
        ("no signature", "alice", None, "has no such signature"),
        ("bad signature", "alice", _sig(False, reason="bad signature"), "not valid: bad"),
        ("another key", "alice", _sig(fingerprint="F" * 40), "not by your registered key"),
        ("agent without a key", "bob", _sig(), "no key registered"),
    ],
)
def test_signature_refusal(config: Config, case, agent, sig, want):  # type: ignore[no-untyped-def]
    a = config.agent(agent)
    assert a is not None
    queue = _queue(config, require_signed_commands=True, agent_keyring="keys")
    why = auth.signature_refusal(a, queue, sig)
    assert (why == "") if not want else (want in why)


def test_signing_queue_is_the_first_that_requires_it(config: Config):
    plain, signed = _queue(config), _queue(config, require_signed_commands=True, agent_keyring="k")
    assert auth.signing_queue([plain]) is None
    assert auth.signing_queue([plain, signed]) is signed


def test_replay_keys():
    one = parse(message(message_id="<Same@Example.COM>", body="a\n"))
    same = parse(message(message_id="<same@example.com>", body="other text\n"))
    other = parse(message(message_id="<other@example.com>", body="a\n"))
    assert auth.message_key(one) == auth.message_key(same)  # the Message-ID, case-folded
    assert auth.message_key(one) != auth.message_key(other)
    bare = message(body="a\n").replace(b"Message-ID:", b"X-Old-Id:")
    assert auth.message_key(parse(bare)) != auth.message_key(parse(bare + b"more"))


def test_signed_content_key_ignores_the_headers():
    body = b"-----BEGIN PGP SIGNED MESSAGE-----\r\n#close\r\n"
    first = b"Message-ID: <a@x>\r\nDate: Mon, 2 Mar 2026 09:00:00 +0000\r\n\r\n" + body
    again = b"Message-ID: <b@x>\r\nDate: Tue, 3 Mar 2026 09:00:00 +0000\r\n\r\n" + body
    changed = first + b"more\r\n"
    assert auth.signed_content_key(first) == auth.signed_content_key(again)
    assert auth.signed_content_key(first) != auth.signed_content_key(changed)
