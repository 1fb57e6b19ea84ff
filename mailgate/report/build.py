"""The whole report of one month as one JSON-ready dict (what `--json` prints and the
HTML shows). Pure."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mailgate.report.clusters import repetitive_issues
from mailgate.report.figures import Figures, Settings
from mailgate.report.rows import ReportRows
from mailgate.report.trends import frt_histogram, top_labels, volume_per_day

LOW_RATINGS = 10  # the lowest-rated comments shown, for the team lead to read


@dataclass(frozen=True)
class Options:
    top: int = 10  # tags, categories, clusters
    cluster_threshold: float = 0.6
    cluster_min_size: int = 3


def build(rows: ReportRows, s: Settings, o: Options = Options()) -> dict[str, Any]:
    f = Figures(rows, s)
    received = f.received
    comments = sorted((r for r in rows.ratings if r.comment), key=lambda r: (r.rating, r.at))
    return {
        "month": str(rows.month),
        "previous_month": str(rows.month.previous()),
        "as_of": s.as_of.isoformat(),
        "complexity_weights": dict(s.weights),
        "total": f.total(),
        "queues": f.queues(),
        "agents": f.agents(),
        **top_labels(rows, received, o.top),
        "volume_per_day": volume_per_day(rows, received),
        "frt_histogram": frt_histogram(received),
        "repetitive_issues": repetitive_issues(
            received, threshold=o.cluster_threshold, min_size=o.cluster_min_size, top=o.top
        ),
        "rating_comments": [
            {"ticket": r.ticket_id, "rating": r.rating, "agent": r.agent, "comment": r.comment}
            for r in comments[:LOW_RATINGS]
        ],
    }
