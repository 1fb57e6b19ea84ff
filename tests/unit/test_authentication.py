"""Authentication-Results (RFC 8601), read only from trusted authserv-ids."""

from __future__ import annotations

import pytest

from mailgate.config.governor import GovernorSettings
from mailgate.outgoing.governor import Counts, Mail, check
from mailgate.parse.authentication import auth_line, sender_auth

TRUSTED = ["mx.example.test"]
FROM = "carla@customers.example"


@pytest.mark.parametrize(
    ("headers", "spf", "dkim", "dmarc", "reject", "authenticated"),
    [
        ([], "none", "none", "none", False, False),
        (
            [
                "mx.example.test; spf=pass smtp.mailfrom=carla@customers.example; "
                "dkim=pass header.d=customers.example; dmarc=pass header.from=customers.example"
            ],
            "pass",
            "pass",
            "pass",
            False,
            True,
        ),
        # a header from another server changes nothing, whatever it claims
        (
            ["mx.evil.example; dmarc=pass header.from=customers.example"],
            "none",
            "none",
            "none",
            False,
            False,
        ),
        (
            ["mx.evil.example; dmarc=fail (p=reject) header.from=customers.example"],
            "none",
            "none",
            "none",
            False,
            False,
        ),
        # the topmost trusted header is the one read (ours is added on top)
        (
            [
                "mx.example.test; dmarc=fail (p=reject dis=none) header.from=customers.example",
                "mx.example.test; dmarc=pass header.from=customers.example",
            ],
            "none",
            "none",
            "fail",
            True,
            False,
        ),
        (
            ["mx.example.test; dmarc=fail action=oreject header.from=customers.example;"],
            "none",
            "none",
            "fail",
            True,
            False,
        ),
        (
            ["mx.example.test; dmarc=fail (p=quarantine) header.from=customers.example"],
            "none",
            "none",
            "fail",
            False,
            False,
        ),
        # no DMARC: an aligned DKIM pass authenticates, an unaligned one does not
        (
            ["mx.example.test; dkim=pass header.d=customers.example"],
            "none",
            "pass",
            "none",
            False,
            True,
        ),
        (
            ["mx.example.test; dkim=pass header.d=bulk.example"],
            "none",
            "pass",
            "none",
            False,
            False,
        ),
        (
            ["mx.example.test; dkim=fail header.d=x.example; dkim=pass header.d=customers.example"],
            "none",
            "pass",
            "none",
            False,
            True,
        ),
        (
            ["MX.EXAMPLE.TEST; spf=softfail smtp.mailfrom=customers.example"],
            "softfail",
            "none",
            "none",
            False,
            False,
        ),
        (["garbage ;;; ="], "none", "none", "none", False, False),
    ],
)
def test_sender_auth(headers, spf, dkim, dmarc, reject, authenticated):
    a = sender_auth(headers, TRUSTED, FROM)
    assert (a.spf, a.dkim, a.dmarc, a.dmarc_reject) == (spf, dkim, dmarc, reject)
    assert a.authenticated == authenticated


def test_untrusted_headers_are_named_in_the_record():
    a = sender_auth(["mx.evil.example; dmarc=pass"], TRUSTED, FROM)
    assert a.authserv_id == "" and a.ignored == ("mx.evil.example",)
    line = auth_line({"auth": a.as_dict()})
    assert "dmarc=none" in line and "no trusted" in line and "mx.evil.example" in line
    assert auth_line({}) == ""


def test_an_authenticated_sender_is_not_counted_against_the_queues_ack_budget():
    caps = GovernorSettings(ack_per_queue_minute=5)
    full = Counts(acks_queue_minute=5)
    assert check(Mail("ack", "c@x.example", 1, "support"), full, caps).cap == "ack_per_queue_minute"
    assert not check(Mail("ack", "c@x.example", 1, "support", budget=False), full, caps).hold
    # the per-address caps still hold for everyone
    over = Counts(acks_queue_minute=5, auto_hour=10)
    held = check(Mail("ack", "c@x.example", 1, "support", budget=False), over, caps)
    assert held.cap == "auto_per_address_hour"
