"""`mailgate stats`, the running daemon's part: what only the daemon knows, read from its
[http] port (the same /metrics a Prometheus scrapes): intake per queue and source since it
started, each running part's state and last success, and the IMAP connections."""

from __future__ import annotations

import urllib.error
import urllib.request
from datetime import UTC, datetime

from mailgate.cli.output import console, print_table, table
from mailgate.config.model import Config


def scrape(config: Config, timeout: float = 5.0) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Metric name -> [(labels, value)] from the daemon's /metrics; OSError if unreachable."""
    from prometheus_client.parser import text_string_to_metric_families

    url = f"http://{config.http.host}:{config.http.port}/metrics"
    with urllib.request.urlopen(url, timeout=timeout) as answer:  # noqa: S310 - loopback only
        text = answer.read().decode()
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return out


def _when(ts: float | None) -> str:
    if ts is None:
        return "never"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def print_daemon_section(config: Config) -> None:
    where = f"{config.http.host}:{config.http.port}"
    if not config.http.enabled:
        console.print(
            "running daemon: [http] is off (enabled = true shows intake, parts and IMAP here)"
        )
        return
    try:
        m = scrape(config)
    except (OSError, urllib.error.URLError) as e:
        console.print(f"running daemon: not reachable at http://{where}/metrics ({e})")
        return
    out = table("running daemon", "value", title=f"the running daemon (http://{where})")
    for labels, n in m.get("mailgate_intake_messages_total", []):
        out.add_row(f"intake {labels['queue']} {labels['source']}", str(int(n)))
    last = {
        lb["component"]: v
        for lb, v in m.get("mailgate_component_last_success_timestamp_seconds", [])
    }
    for labels, ok in m.get("mailgate_component_ok", []):
        name = labels["component"]
        state = "ok" if ok else "FAILING"
        out.add_row(name, f"{state}, last success {_when(last.get(name))}")
    for labels, connected in m.get("mailgate_imap_connected", []):
        out.add_row(f"imap {labels['mailbox']}", "connected" if connected else "not connected")
    print_table(out)
