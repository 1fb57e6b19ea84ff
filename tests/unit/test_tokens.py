"""Reply tokens: canonical form only, bound to (agent, ticket), constant-time check."""

from __future__ import annotations

import pytest

from mailgate.agents import tokens

SECRET = b"test-secret-0123456789abcdef"


def test_reply_address_round_trip():
    addr = tokens.reply_address(SECRET, "alice", 123, "support@example.test")
    assert addr.startswith("support+t123.k") and addr.endswith("@example.test")
    ra = tokens.parse_reply_address(addr)
    assert ra is not None
    assert (ra.queue_address, ra.ticket_id) == ("support@example.test", 123)
    assert len(ra.mac) == tokens.TOKEN_HEX_CHARS and len(ra.mac) * 4 >= 64
    assert tokens.verify(SECRET, "alice", 123, ra.mac)


@pytest.mark.parametrize(
    ("agent", "ticket", "secret"),
    [("bob", 123, SECRET), ("alice", 124, SECRET), ("alice", 123, b"another-secret-0123456789")],
)
def test_token_is_bound_to_agent_ticket_and_secret(agent, ticket, secret):
    mac = tokens.token_mac(SECRET, "alice", 123)
    assert not tokens.verify(secret, agent, ticket, mac)


def test_command_address_is_ticket_zero():
    addr = tokens.command_address(SECRET, "alice", "billing@example.test")
    ra = tokens.parse_reply_address(addr)
    assert ra is not None and ra.ticket_id == tokens.COMMAND_TICKET == 0
    assert tokens.verify(SECRET, "alice", 0, ra.mac)


def _variants(addr: str) -> list[str]:
    local, domain = addr.split("@")
    base, token = local.split("+")
    t, k = token.split(".")
    return [
        f"{base}+{t}.{k.upper()}@{domain}",  # upper-case code
        f"{base}+{t.upper()}.{k}@{domain}",  # upper-case T
        f"{base}+t0{t[1:]}.{k}@{domain}",  # leading zero
        f"{base}+{t}.{k[:-1]}@{domain}",  # truncated
        f"{base}+{t}.{k}0@{domain}",  # too long
        f"{base}+{t}.{k[:-1]}%{ord(k[-1]):02X}@{domain}",  # percent-encoded
        f"{base}+{t}.k{k[1:].replace('a', 'A')}x@{domain}",  # mangled
        f"{base}+{t}-{k}@{domain}",  # other separator
        f'"{base}+{t}.{k}"@{domain}',  # quoted local part
    ]


def test_only_the_canonical_spelling_parses():
    addr = tokens.reply_address(SECRET, "alice", 42, "support@example.test")
    for variant in _variants(addr):
        ra = tokens.parse_reply_address(variant)
        assert ra is None or not tokens.verify(SECRET, "alice", ra.ticket_id, ra.mac), variant


def test_tampered_code_fails():
    mac = tokens.token_mac(SECRET, "alice", 7)
    flipped = mac[:-1] + ("0" if mac[-1] != "0" else "1")
    assert not tokens.verify(SECRET, "alice", 7, flipped)
    assert not tokens.verify(SECRET, "alice", 7, "")


def test_reply_addresses_found_in_header_text():
    addr = tokens.reply_address(SECRET, "alice", 5, "support@example.test")
    found = tokens.reply_addresses(
        [f'"Example Support" <{addr}>, other@example.com', "support@example.test"]
    )
    assert [ra.address for ra in found] == [addr]


def test_contains_token_catches_any_case():
    addr = tokens.reply_address(SECRET, "alice", 5, "support@example.test")
    assert tokens.contains_token(f"On Monday <{addr}> wrote:")
    assert tokens.contains_token(addr.upper().replace("+T", "+t").replace(".K", ".k"))
    assert not tokens.contains_token("write to support@example.test")
