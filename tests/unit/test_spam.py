"""The spam filter's verdict in the headers (SpamAssassin, rspamd): classify's spam rule."""

from __future__ import annotations

import pytest

from mailgate.parse.message import parse
from mailgate.pipeline.classify import classify
from tests.harness import message

OURS = frozenset({"support@example.test"})


@pytest.mark.parametrize(
    ("extra", "spam"),
    [
        ("X-Spam-Flag: YES", True),
        ("X-Spam-Flag: NO", False),
        ("X-Spam-Status: Yes, score=7.1 required=5.0 tests=BAYES_99", True),
        ("X-Spam-Status: No, score=7.1 required=8.0", True),  # our threshold is 5
        ("X-Spam-Status: No, score=1.2 required=5.0", False),
        ("X-Spam-Score: 5.0", True),
        ("X-Spam-Score: 4.9", False),
        ("X-Spam-Score: -3", False),
        ("X-Spam-Score: garbage", False),
        ("X-Rspamd-Action: reject", True),
        ("X-Rspamd-Action: add header", True),
        ("X-Rspamd-Action: no action", False),
        ("X-Rspamd-Action: greylist", False),
        ("X-Spamd-Result: default: True [16.20 / 15.00]; BAYES_SPAM(5.1)", True),
        ("X-Spamd-Result: default: False [6.20 / 15.00]", True),  # over our threshold
        ("X-Spamd-Result: default: False [1.20 / 15.00]", False),
        ("", False),
    ],
)
def test_spam_verdicts(extra: str, spam: bool):
    p = parse(message(extra=extra))
    v = classify(p, OURS, "helpdesk.example.test", spam_threshold=5.0)
    assert v.spam == spam
    assert any(r.startswith("spam: ") for r in v.reasons) == spam
    # not asked (spam.enabled = false): never spam
    assert not classify(p, OURS, "helpdesk.example.test").spam
