"""Routing rules: each matcher and action, order and stop, the SOP examples (pure)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from pydantic import ValidationError

from mailgate.config.model import Queue
from mailgate.config.rules import Rule
from mailgate.config.schema import PrioritySettings
from mailgate.config.sla import SlaSettings
from mailgate.parse.message import parse
from mailgate.queues.rules import NO_ROUTING, Routing, evaluate, initial_priority
from tests.harness import load, message
from tests.unit.test_sla import queue as sla_queue

REPO_CONFIG = Path(__file__).resolve().parents[2] / "config" / "mailgate.toml"

WITH_FILE = (
    b"From: Carla <carla@shop.example.com>\r\nTo: support@example.test\r\n"
    b"Subject: photo\r\nMessage-ID: <a1@example.com>\r\nMIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n'
    b"Content-Type: text/plain\r\n\r\nsee the file\r\n--b\r\n"
    b'Content-Type: image/png\r\nContent-Disposition: attachment; filename="x.png"\r\n'
    b"Content-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=\r\n--b--\r\n"
)


def rule(**kw) -> Rule:
    return Rule.model_validate({"name": "r", "tags": ["hit"], **kw})


def mail(**kw):
    return parse(message(**kw))


MATCHES = [
    # (rule matchers, message, reason when it matches or None)
    ({"subject": ["refund"]}, {"subject": "Need a REFUND please"}, 'subject has "refund"'),
    ({"subject": ["refund"]}, {"subject": "refunded?"}, None),  # whole words only
    ({"subject": ["refund"]}, {"body": "a refund"}, None),
    ({"body": ["site down"]}, {"body": "our Site\n  DOWN since 9"}, 'body has "site down"'),
    ({"body": ["site down"]}, {"body": "website downtime"}, None),
    ({"text": ["invoice"]}, {"subject": "Invoice 12"}, 'text has "invoice"'),
    ({"text": ["invoice"]}, {"body": "the invoice"}, 'text has "invoice"'),
    ({"subject_regex": r"inv-\d{4}"}, {"subject": "INV-2024 wrong"}, "subject matches"),
    ({"subject_regex": r"(?-i)INV-\d+"}, {"subject": "inv-2024"}, None),
    ({"body_regex": r"error \d{3}"}, {"body": "I get error 502"}, "body matches"),
    ({"text_regex": r"^urgent"}, {"subject": "urgent: help"}, "text matches"),
    ({"sender": ["carla@shop.example.com"]}, {"sender": "Carla@Shop.example.com"}, "sender is"),
    ({"sender": ["carla@shop.example.com"]}, {"sender": "other@shop.example.com"}, None),
    ({"sender": ["example.com"]}, {"sender": "x@shop.example.com"}, "sender domain is"),
    ({"sender": ["@example.com"]}, {"sender": "x@example.com"}, "sender domain is"),
    ({"sender": ["example.com"]}, {"sender": "x@badexample.com"}, None),
    ({"header": {"X-Priority": ["1"]}}, {"extra": "X-Priority: 1 (Highest)"}, "header x-priority"),
    ({"header": {"X-Priority": ["1"]}}, {"extra": "X-Priority: 3"}, None),
    ({"header_regex": {"X-Mailer": "^outlook"}}, {"extra": "X-Mailer: Outlook 16"}, "x-mailer"),
    ({"header_regex": {"X-Mailer": "^outlook"}}, {}, None),  # absent header: no match
    ({"has_attachment": False}, {}, "has no attachment"),
    # every matcher must match
    ({"subject": ["refund"], "sender": ["example.org"]}, {"subject": "refund"}, None),
]


@pytest.mark.parametrize(("matchers", "msg", "reason"), MATCHES)
def test_each_matcher(matchers, msg, reason):
    routing = evaluate([rule(**matchers)], mail(**msg))
    if reason is None:
        assert routing == NO_ROUTING
    else:
        [hit] = routing.hits
        assert any(reason in r for r in hit.reasons), hit.reasons
        assert routing.tags == ("hit",)


def test_attachment_presence():
    parsed = parse(WITH_FILE)
    assert evaluate([rule(has_attachment=True)], parsed).hits[0].reasons == ("has an attachment",)
    assert evaluate([rule(has_attachment=False)], parsed) == NO_ROUTING
    assert evaluate([rule(has_attachment=True)], mail()) == NO_ROUTING


def test_each_action():
    r = rule(
        subject=["broken"],
        queue="billing",
        priority=77,
        tags=["a", "b"],
        category="hardware",
        complexity="hard",
        assignee="alice",
    )
    routing = evaluate([r], mail())
    assert (routing.queue, routing.priority, routing.tags) == ("billing", 77, ("a", "b"))
    assert (routing.category, routing.complexity, routing.assignee) == ("hardware", "hard", "alice")


def _queue(initial: int = 50, sla: SlaSettings | None = None) -> Queue:
    return replace(sla_queue(sla), priority=PrioritySettings(initial=initial))


def test_a_priority_class_starts_at_the_lowest_priority_of_the_class():
    assert initial_priority(NO_ROUTING, _queue(44)) == 44
    assert initial_priority(Routing(priority=12), _queue()) == 12
    assert initial_priority(Routing(priority_class="critical"), _queue()) == 90
    assert initial_priority(Routing(priority_class="high"), _queue()) == 70
    assert initial_priority(Routing(priority_class="low"), _queue()) == 1
    own = SlaSettings.model_validate({"classes": {"critical": 95, "high": 80, "medium": 50}})
    assert initial_priority(Routing(priority_class="critical"), _queue(sla=own)) == 95


def test_rules_run_in_order_later_ones_win_and_tags_add_up():
    rules = [
        rule(name="one", subject=["printer"], queue="billing", priority_class="high", tags=["x"]),
        rule(name="two", body=["broken"], queue="sales", priority=30, tags=["y"]),
        rule(name="three", subject=["fax"], queue="support"),
    ]
    routing = evaluate(rules, mail())
    assert [h.rule for h in routing.hits] == ["one", "two"]
    assert (routing.queue, routing.priority, routing.priority_class) == ("sales", 30, "")
    assert routing.tags == ("x", "y")


def test_stop_ends_the_rules_only_when_its_rule_matches():
    rules = [
        rule(name="miss", subject=["fax"], stop=True),
        rule(name="stopper", subject=["printer"], queue="billing", stop=True),
        rule(name="never", subject=["printer"], queue="sales"),
    ]
    routing = evaluate(rules, mail())
    assert [h.rule for h in routing.hits] == ["stopper"]
    assert routing.queue == "billing"


def test_a_regex_that_runs_out_of_time_is_no_match_and_says_so():
    slow = rule(name="slow", body_regex=r"(a|aa)+$")
    body = "hello " + "a" * 5000 + "b"
    routing = evaluate([slow, rule(name="fine", body=["hello"])], mail(body=body))
    assert [h.rule for h in routing.hits] == ["fine"]
    assert routing.notes == ("rule 'slow': body regex /(a|aa)+$/ ran out of time",)


@pytest.mark.parametrize(
    ("fields", "expect"),
    [
        ({"subject_regex": "(unclosed"}, "is not a valid regular expression"),
        ({"header_regex": {"X-A": "[z-a]"}}, "is not a valid regular expression"),
        ({"queue": "billing"}, "has no matcher"),
        ({"subject": ["x"], "tags": []}, "does nothing"),
        ({"subject": ["x"], "priority": 10, "priority_class": "low"}, "not both"),
        ({"subject": ["x"], "priority": 100}, "less than or equal to 99"),
        ({"subject": ["x"], "priority": "50"}, "valid integer"),  # strict: no "50" for 50
        ({"subject": ["!!"]}, "is not a keyword"),
        ({"sender": ["not a domain"]}, "neither an address nor a domain"),
        ({"subject": ["x"], "complexity": "easy"}, "'lower', 'medium' or 'hard'"),
        ({"subject": ["x"], "tags": ["Bad Tag"]}, "is not a tag"),
        ({"header": {"Bad Name": ["x"]}}, "is not a header name"),
    ],
)
def test_a_broken_rule_is_refused_at_load(fields, expect):
    with pytest.raises(ValidationError) as e:
        Rule.model_validate({"name": "r", "tags": ["t"], **fields})
    assert expect in str(e.value)


SOP = [
    ("Please cancel my subscription", "", "cancellation", 60, ("cancellation",)),
    ("Cancellation", "", "cancellation", 60, ("cancellation",)),
    ("Question about pricing", "", "billing", 60, ("billing",)),
    ("Invoice #123 is wrong", "", "billing", 60, ("billing",)),
    ("hello", "I would like a refund.", "billing", 60, ("billing",)),
    ("Renewal date", "", "billing", 60, ("billing",)),
    ("Upgrade to VPS", "", "billing", 60, ("billing",)),
    ("Site down!!", "", "support", 90, ("outage",)),
    ("help", "We have an outage since 9:00", "support", 90, ("outage",)),
    ("Error", "nginx says 502 Bad Gateway", "support", 90, ("outage",)),
    ("invoice site down", "", "billing", 90, ("billing", "outage")),
    ("Printer is broken", "it prints nothing", "support", 50, ()),
]


@pytest.mark.parametrize(("subject", "body", "queue", "priority", "tags"), SOP)
def test_the_shipped_sop_rules(subject, body, queue, priority, tags):
    cfg = load(REPO_CONFIG)
    support = cfg.queue("support")
    routing = evaluate(support.rules, mail(subject=subject, body=body or "hello"))
    home = cfg.queue(routing.queue) or support
    assert (home.name, initial_priority(routing, home), routing.tags) == (queue, priority, tags)
