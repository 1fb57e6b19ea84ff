"""The report as one HTML file that works offline: inline CSS, the charts as inline SVG,
no scripts. Every figure cell carries `data-k` (its JSON path), so a test can compare the
page with `--json`. Pure."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, StrictUndefined

from mailgate.report.charts import charts

CHART_TITLES = {
    "volume": "Tickets received per day",
    "response": "Time to first response",
    "agents": "Per agent: tickets handled and complexity-weighted productivity",
    "sla": "SLA attainment per queue",
}
# (JSON key, column heading)
QUEUE_COLUMNS = (
    ("received", "received"),
    ("resolved", "resolved"),
    ("frt_median_h", "first response median h"),
    ("frt_p90_h", "p90 h"),
    ("fr_sla_pct", "within SLA %"),
    ("resolution_median_h", "resolution median h"),
    ("resolution_p90_h", "p90 h"),
    ("res_sla_pct", "within SLA %"),
    ("escalations", "escalations"),
    ("reopen_pct", "reopened %"),
    ("ratings", "ratings"),
    ("rating_mean", "mean rating"),
    ("csat_pct", "CSAT %"),
    ("handled", "handled"),
    ("weighted", "weighted"),
)
AGENT_COLUMNS = (
    ("handled", "handled"),
    ("first_responses", "first responses"),
    *QUEUE_COLUMNS[2:5],
    ("resolved", "resolved"),
    *QUEUE_COLUMNS[5:13],
    ("weighted", "weighted"),
)


def cell(value: Any) -> str:
    """How a figure is written in the page (and how a test reads the JSON value)."""
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:g}" if value == int(value) else f"{value:.2f}".rstrip("0")
    return str(value)


PAGE = Path(__file__).with_name("report.html")


def render_html(report: dict[str, Any]) -> str:
    env = Environment(autoescape=True, undefined=StrictUndefined, trim_blocks=False)
    return env.from_string(PAGE.read_text(encoding="utf-8")).render(
        r=report,
        charts=charts(report),
        titles=CHART_TITLES,
        qcols=QUEUE_COLUMNS,
        acols=AGENT_COLUMNS,
        cell=cell,
    )
