"""Routing rules over a parsed message: which rules match, why, and what they set. Pure.

Rules run in the order of the queue file; each matching rule's actions apply (a later
rule's queue, priority, category, complexity or assignee replaces an earlier one's; tags
add up) until a matching rule says `stop`. Every hit keeps the reason of each matcher, so
a ticket can say why it went where it went. Regexes run with a time limit: one that runs
out counts as no match and says so in `notes`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache

import regex

from mailgate.config.model import Queue
from mailgate.config.rules import REGEX_FLAGS, Rule
from mailgate.config.sla import ClassBounds
from mailgate.parse.message import Parsed

REGEX_TIMEOUT_SECONDS = 0.1  # per regex and message: a pathological pattern costs this, no more
TEXT_LIMIT = 256 * 1024  # characters of the body the matchers read


@dataclass(frozen=True)
class RuleHit:
    rule: str
    reasons: tuple[str, ...]  # one per matcher, e.g. 'subject has "refund"'


@dataclass(frozen=True)
class Routing:
    """What the matching rules set; empty values leave the queue's defaults."""

    queue: str = ""
    priority: int | None = None
    priority_class: str = ""
    tags: tuple[str, ...] = ()
    category: str = ""
    complexity: str = ""
    assignee: str = ""
    hits: tuple[RuleHit, ...] = ()
    notes: tuple[str, ...] = field(default=())  # regexes that ran out of time


NO_ROUTING = Routing()


@lru_cache(maxsize=4096)
def _keywords_re(words: tuple[str, ...]) -> re.Pattern[str]:
    # escaped literals in one alternation: linear work, no time limit needed
    alts = "|".join(r"\s+".join(re.escape(w) for w in kw.split()) for kw in words)
    # on lowercased text (keywords are lowercased at load): 3x faster than IGNORECASE
    return re.compile(rf"(?<!\w)(?:{alts})(?!\w)")


@lru_cache(maxsize=4096)
def _regex(pattern: str) -> regex.Pattern[str]:
    return regex.compile(pattern, REGEX_FLAGS)


class _Matcher:
    """One message's texts, and the notes of regexes that ran out of time."""

    def __init__(self, parsed: Parsed):
        self.p = parsed
        self.body = parsed.text[:TEXT_LIMIT]
        self.notes: list[str] = []
        self._lower: dict[str, str] = {}  # each text lowercased once per message

    def keywords(self, where: str, texts: Iterable[str], words: list[str]) -> str | None:
        pattern = _keywords_re(tuple(words))
        for t in texts:
            m = pattern.search(self._lower.get(t) or self._lower.setdefault(t, t.lower()))
            if m:
                return f'{where} has "{" ".join(m[0].lower().split())}"'
        return None

    def regex(self, rule: str, where: str, texts: Iterable[str], pattern: str) -> str | None:
        for t in texts:
            try:
                m = _regex(pattern).search(t, timeout=REGEX_TIMEOUT_SECONDS)
            except TimeoutError:
                self.notes.append(f"rule {rule!r}: {where} regex /{pattern}/ ran out of time")
                return None
            if m:
                return f"{where} matches /{pattern}/"
        return None

    def sender(self, entries: list[str]) -> str | None:
        addr = self.p.from_addr.lower()
        domain = addr.rpartition("@")[2]
        for e in entries:
            if "@" in e.lstrip("@"):
                if addr == e:
                    return f"sender is {e}"
            elif domain == e.lstrip("@") or domain.endswith("." + e.lstrip("@")):
                return f"sender domain is {domain}"
        return None

    def attachment(self, wanted: bool) -> str | None:
        has = any(a.filename or not a.inline for a in self.p.attachments)
        if has != wanted:
            return None
        return "has an attachment" if has else "has no attachment"

    def hit(self, r: Rule) -> RuleHit | None:
        """The rule's hit when every matcher it has matches, else None."""
        p, body = self.p, self.body
        checks: list[Callable[[], str | None]] = []
        for where, texts in (("subject", (p.subject,)), ("body", (body,)), ("text", None)):
            texts = texts or (p.subject, body)
            if words := getattr(r, where):
                checks.append(lambda w=where, t=texts, k=words: self.keywords(w, t, k))
            if pattern := getattr(r, f"{where}_regex"):
                checks.append(lambda w=where, t=texts, x=pattern: self.regex(r.name, w, t, x))
        for name, words in r.header.items():
            checks.append(lambda n=name, k=words: self.keywords(f"header {n}", p.header_all(n), k))
        for name, pattern in r.header_regex.items():
            checks.append(
                lambda n=name, x=pattern: self.regex(r.name, f"header {n}", p.header_all(n), x)
            )
        if r.sender:
            checks.append(lambda: self.sender(r.sender))
        if r.has_attachment is not None:
            checks.append(lambda: self.attachment(bool(r.has_attachment)))
        reasons = []
        for check in checks:
            reason = check()
            if reason is None:
                return None
            reasons.append(reason)
        return RuleHit(r.name, tuple(reasons))


def evaluate(rules: Iterable[Rule], parsed: Parsed) -> Routing:
    """Apply the rules in order to a new ticket's first message."""
    m = _Matcher(parsed)
    values: dict[str, object] = {}
    tags: dict[str, None] = {}
    hits: list[RuleHit] = []
    for r in rules:
        hit = m.hit(r)
        if hit is None:
            continue
        hits.append(hit)
        for key in ("queue", "category", "assignee"):
            if getattr(r, key):
                values[key] = getattr(r, key)
        if r.complexity:
            values["complexity"] = r.complexity
        if r.priority is not None:
            values.update(priority=r.priority, priority_class="")
        elif r.priority_class:
            values.update(priority=None, priority_class=r.priority_class)
        tags.update(dict.fromkeys(r.tags))
        if r.stop:
            break
    if not hits and not m.notes:
        return NO_ROUTING
    return Routing(**values, tags=tuple(tags), hits=tuple(hits), notes=tuple(m.notes))  # type: ignore[arg-type]


def initial_priority(routing: Routing, queue: Queue) -> int:
    """A new ticket's priority in `queue`: the rules' number, or the lowest of the rules'
    class (low: 1) by the queue's `[sla.classes]`, or the queue's `priority.initial`."""
    if routing.priority is not None:
        return routing.priority
    if routing.priority_class:
        bounds = queue.sla.classes if queue.sla else ClassBounds()
        low = bounds.ranges()[routing.priority_class][0]
        return 1 if low is None else low
    return queue.priority.initial


def hit_lines(hits: Iterable[RuleHit]) -> list[str]:
    """`rule NAME: reason; reason` per hit, as the ticket and `rules test` show them."""
    return [f"rule {h.rule!r}: {'; '.join(h.reasons)}" for h in hits]
