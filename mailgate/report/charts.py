"""The report's charts as inline SVG (matplotlib, no fonts or scripts needed to show
them). Pure: figures in, SVG text out."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display: render to files only

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

BLUE, ORANGE, GREY = "#3b6ea8", "#e08a2c", "#9aa5b1"
matplotlib.rcParams.update(
    {
        "svg.fonttype": "path",  # text as paths: the file shows the same everywhere
        "svg.hashsalt": "mailgate-report",  # stable element ids: the same data, the same file
        "font.size": 9,
        "axes.spines.top": False,
        "axes.spines.right": False,
    }
)


def _svg(fig: Figure) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg") :]


def _empty(ax: Any, what: str) -> None:
    ax.text(0.5, 0.5, f"no {what} this month", ha="center", va="center", color=GREY)
    ax.set_xticks([])
    ax.set_yticks([])


def volume_chart(days: Sequence[dict[str, Any]]) -> str:
    fig, ax = plt.subplots(figsize=(8, 2.6))
    ax.bar([d["date"][8:] for d in days], [d["count"] for d in days], color=BLUE)
    ax.set_ylabel("tickets received")
    ax.set_xlabel("day of month")
    ax.tick_params(axis="x", labelsize=7)
    return _svg(fig)


def response_chart(buckets: Sequence[dict[str, Any]]) -> str:
    fig, ax = plt.subplots(figsize=(5, 2.6))
    counts = [b["count"] for b in buckets]
    if sum(counts):
        ax.bar([b["bucket"] for b in buckets], counts, color=BLUE)
        ax.set_ylabel("tickets")
        ax.set_xlabel("time to first response")
        ax.tick_params(axis="x", labelsize=7)
    else:
        _empty(ax, "first responses")
    return _svg(fig)


def agent_chart(agents: Sequence[dict[str, Any]]) -> str:
    fig, ax = plt.subplots(figsize=(5, 0.5 + 0.35 * max(3, len(agents))))
    if agents:
        names = [a["name"] for a in agents]
        ys = range(len(names))
        ax.barh(
            [y + 0.2 for y in ys], [a["handled"] for a in agents], 0.4, label="handled", color=BLUE
        )
        ax.barh(
            [y - 0.2 for y in ys],
            [a["weighted"] for a in agents],
            0.4,
            label="weighted",
            color=ORANGE,
        )
        ax.set_yticks(list(ys), names)
        ax.invert_yaxis()
        ax.legend(loc="lower right", fontsize=7)
    else:
        _empty(ax, "agent answers")
    return _svg(fig)


def sla_chart(queues: Sequence[dict[str, Any]]) -> str:
    judged = [q for q in queues if q["fr_sla_pct"] is not None or q["res_sla_pct"] is not None]
    fig, ax = plt.subplots(figsize=(5, 0.5 + 0.35 * max(3, 2 * len(judged))))
    if judged:
        names = [q["name"] for q in judged]
        ys = range(len(names))
        fr = [q["fr_sla_pct"] or 0 for q in judged]
        res = [q["res_sla_pct"] or 0 for q in judged]
        ax.barh([y + 0.2 for y in ys], fr, 0.4, label="first response", color=BLUE)
        ax.barh([y - 0.2 for y in ys], res, 0.4, label="resolution", color=ORANGE)
        ax.set_yticks(list(ys), names)
        ax.set_xlim(0, 100)
        ax.set_xlabel("% within the SLA target")
        ax.invert_yaxis()
        ax.legend(loc="lower right", fontsize=7)
    else:
        _empty(ax, "SLA targets")
    return _svg(fig)


def charts(report: dict[str, Any]) -> dict[str, str]:
    """chart id -> SVG, in the order the page shows them."""
    return {
        "volume": volume_chart(report["volume_per_day"]),
        "response": response_chart(report["frt_histogram"]),
        "agents": agent_chart(report["agents"]),
        "sla": sla_chart(report["queues"]),
    }
