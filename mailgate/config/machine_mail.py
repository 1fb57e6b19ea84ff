"""[bounces], [spam] and [authentication] in mailgate.toml: mail no person wrote.

How long automatic mail to a bouncing address pauses, which spam verdicts of the filter
in front quarantine a message, and whose Authentication-Results headers are believed
(docs/machine-mail.md).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from mailgate.config.base import Strict

Hours = Annotated[float, Field(ge=0, le=24 * 366)]


class BounceSettings(Strict):
    # automatic mail (acknowledgements, closing and escalation notices) to an address that
    # bounced waits this long; a person's answer still goes out
    hard_pause_hours: Hours = 24 * 30
    soft_pause_hours: Hours = 24
    # a bounce without VERP or a known Message-ID matches the last mail to its recipient
    # sent this long before it
    match_window_hours: Hours = 24 * 7


class SpamSettings(Strict):
    enabled: bool = True
    # X-Spam-Score (or the score in X-Spam-Status / X-Spamd-Result) at or above this is spam
    score_threshold: float = 5.0


class AuthenticationSettings(Strict):
    # the authserv-ids (RFC 8601) of the servers in front whose Authentication-Results
    # are believed; every other such header is ignored
    trusted_authserv_ids: list[str] = []
