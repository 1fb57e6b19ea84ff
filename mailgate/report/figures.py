"""The monthly figures per queue, per agent and in total, from the month's rows. Pure.

Definitions (docs/report.md says them in words):
- received: tickets created in the month; first-response, resolution, SLA and reopen
  figures are over these, per the ticket's queue.
- per agent, a received ticket counts for the author of its first answer (first response
  figures) and for the author of its last answer, its owner (resolution, reopen figures).
- handled: distinct tickets an agent answered in the month (any creation date); the
  complexity-weighted productivity is the sum of their complexity weights.
- escalations: the SLA sweep's tier escalations and agents' #escalate in the month.
- satisfaction: ratings given in the month, for the queue and for the agent the survey
  was sent for; CSAT is the share of 4 and 5.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mailgate.report.numbers import hours, mean, median, p90, share
from mailgate.report.rows import AnswerRow, RatingRow, ReportRows, TicketRow
from mailgate.report.sla import Targets, first_response_met, resolution_met


@dataclass(frozen=True)
class Settings:
    weights: Mapping[str, float]  # complexity -> weight ("" for tickets without one)
    targets: Mapping[str, Targets]  # queue -> its SLA (queues without [sla] are absent)
    as_of: datetime  # open tickets are judged against their SLA up to this instant
    _met: dict[int, tuple[bool | None, bool | None]] = field(default_factory=dict)

    def met(self, t: TicketRow) -> tuple[bool | None, bool | None]:
        """(first response, resolution) within the SLA target, judged once per ticket."""
        if t.id not in self._met:
            target = self.targets.get(t.queue)
            self._met[t.id] = (
                first_response_met(target, t, self.as_of),
                resolution_met(target, t, self.as_of),
            )
        return self._met[t.id]


def _frt(t: TicketRow) -> float | None:
    if t.first_response_at is None:
        return None
    return hours((t.first_response_at - t.created_at).total_seconds())


def _resolution(t: TicketRow) -> float | None:
    return None if t.done_at is None else hours((t.done_at - t.created_at).total_seconds())


def _sla_pct(verdicts: Iterable[bool | None]) -> float | None:
    judged = [v for v in verdicts if v is not None]
    return share(sum(judged), len(judged))


def _ratings(rs: list[RatingRow]) -> dict[str, Any]:
    scores = [r.rating for r in rs]
    return {
        "ratings": len(scores),
        "rating_mean": mean(scores),
        "csat_pct": share(sum(s >= 4 for s in scores), len(scores)),
    }


def _times(s: Settings, first: list[TicketRow], owned: list[TicketRow]) -> dict[str, Any]:
    """First-response figures over `first`; resolution figures over `owned`: times of the
    resolved ones, SLA over all (one still open past its target counts as missed)."""
    frt = [v for v in map(_frt, first) if v is not None]
    res = [v for v in map(_resolution, owned) if v is not None]
    return {
        "frt_median_h": median(frt),
        "frt_p90_h": p90(frt),
        "fr_sla_pct": _sla_pct(s.met(t)[0] for t in first),
        "resolved": len(res),
        "resolution_median_h": median(res),
        "resolution_p90_h": p90(res),
        "res_sla_pct": _sla_pct(s.met(t)[1] for t in owned),
    }


class Figures:
    """Indexes over the rows, then one block of figures per queue, per agent, in total."""

    def __init__(self, rows: ReportRows, s: Settings):
        self.rows, self.s = rows, s
        start, end = rows.month.start, rows.month.end
        self.received = [t for t in rows.tickets if start <= t.created_at < end]
        self.by_id = {t.id: t for t in rows.tickets}
        answers = sorted(rows.answers, key=lambda a: (a.at, a.ticket_id))
        self.first_by: dict[int, str] = {}
        self.owner: dict[int, str] = {}
        self.handled: dict[str, set[int]] = defaultdict(set)
        for a in answers:
            self.first_by.setdefault(a.ticket_id, a.agent)
            self.owner[a.ticket_id] = a.agent
            if start <= a.at < end:
                self.handled[a.agent].add(a.ticket_id)
        self.reopened = {e.ticket_id for e in rows.events if e.kind == "reopened"}
        self.escalations = [e for e in rows.events if e.kind == "escalated"]

    def _weighted(self, ids: Iterable[int]) -> float:
        w = self.s.weights
        return round(sum(w.get(self.by_id[i].complexity, w.get("", 1.0)) for i in ids), 2)

    def block(
        self, tickets: list[TicketRow], handled: set[int], esc: int, ratings: list[RatingRow]
    ) -> dict[str, Any]:
        return {
            "received": len(tickets),
            **_times(self.s, tickets, tickets),
            "escalations": esc,
            "reopen_pct": share(sum(t.id in self.reopened for t in tickets), len(tickets)),
            **_ratings(ratings),
            "handled": len(handled),
            "weighted": self._weighted(handled),
        }

    def total(self) -> dict[str, Any]:
        handled = set().union(*self.handled.values()) if self.handled else set()
        return self.block(self.received, handled, len(self.escalations), list(self.rows.ratings))

    def queues(self) -> list[dict[str, Any]]:
        names = sorted({t.queue for t in self.received} | {r.queue for r in self.rows.ratings})
        out = []
        for q in names:
            tickets = [t for t in self.received if t.queue == q]
            handled = {i for ids in self.handled.values() for i in ids if self.by_id[i].queue == q}
            esc = sum(e.queue == q for e in self.escalations)
            ratings = [r for r in self.rows.ratings if r.queue == q]
            target = self.s.targets.get(q)
            out.append(
                {
                    "name": q,
                    **self.block(tickets, handled, esc, ratings),
                    "targets_h": target.hours() if target else None,
                }
            )
        return out

    def agents(self) -> list[dict[str, Any]]:
        rated = {r.agent for r in self.rows.ratings if r.agent}
        names = sorted(set(self.handled) | set(self.first_by.values()) | rated)
        out = []
        for name in names:
            first = [t for t in self.received if self.first_by.get(t.id) == name]
            owned = [t for t in self.received if self.owner.get(t.id) == name]
            handled = self.handled.get(name, set())
            ratings = [r for r in self.rows.ratings if r.agent == name]
            if not (first or owned or handled or ratings):
                continue
            out.append(
                {
                    "name": name,
                    "handled": len(handled),
                    "first_responses": len(first),
                    **_times(self.s, first, owned),
                    "escalations": sum(e.actor == name for e in self.escalations),
                    "reopen_pct": share(sum(t.id in self.reopened for t in owned), len(owned)),
                    **_ratings(ratings),
                    "weighted": self._weighted(handled),
                }
            )
        return out


def answers_in(rows: ReportRows) -> list[AnswerRow]:
    """The answers given in the month (for the charts)."""
    start, end = rows.month.start, rows.month.end
    return [a for a in rows.answers if start <= a.at < end]
