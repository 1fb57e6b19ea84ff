"""The daemon's Prometheus metrics, gathered at scrape time (prometheus-client collector).

Spool depth, shunt and outbox counts are read from disk and database when scraped, the
same way `mailgate stats` reads them; intake counts, each part's state and last success,
and the IMAP connections come from the running daemon (observe/intake.py, health.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry
from sqlalchemy import Engine

from mailgate.health import Health
from mailgate.observe.figures import outbox_counts
from mailgate.observe.intake import IntakeCounts
from mailgate.spool import Spool

log = logging.getLogger(__name__)


class DaemonCollector(Collector):
    def __init__(
        self,
        engine: Engine,
        spool: Spool,
        health: Health,
        intake: IntakeCounts,
        mailboxes: Callable[[], dict[str, bool]],
    ):
        self.engine, self.spool, self.health, self.intake = engine, spool, health, intake
        self.mailboxes = mailboxes  # mailbox key -> logged in now

    def describe(self) -> list[Metric]:
        return []  # no scrape (and no database query) when the registry is made

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "mailgate_spool_depth",
            "Messages in the spool waiting for the worker.",
            value=self.spool.pending(),
        )
        yield GaugeMetricFamily(
            "mailgate_shunt_messages",
            "Messages moved to the shunt (mailgate shunt list).",
            value=len(self.spool.shunted()),
        )
        yield from self._outbox()
        intake = CounterMetricFamily(
            "mailgate_intake_messages",
            "Messages stored since the daemon started, per queue and source.",
            labels=["queue", "source"],
        )
        for (queue, source), n in sorted(self.intake.snapshot().items()):
            intake.add_metric([queue, source], n)
        yield intake
        yield from self._components()
        imap = GaugeMetricFamily(
            "mailgate_imap_connected",
            "1 while the mailbox's poller holds a logged-in connection.",
            labels=["mailbox"],
        )
        for key, connected in sorted(self.mailboxes().items()):
            imap.add_metric([key], 1 if connected else 0)
        yield imap

    def _outbox(self) -> Iterator[Metric]:
        try:
            counts = outbox_counts(self.engine)
        except Exception as e:  # noqa: BLE001 - the other figures are still worth a scrape
            log.warning("metrics: outbox counts unavailable: %s", e)
            return
        family = GaugeMetricFamily(
            "mailgate_outbox_messages", "Outbox rows per status.", labels=["status"]
        )
        for status, n in counts.items():
            family.add_metric([status], n)
        yield family

    def _components(self) -> Iterator[Metric]:
        ok = GaugeMetricFamily(
            "mailgate_component_ok",
            "1 when the part's last report was a success (worker, sender, imap:MAILBOX ...).",
            labels=["component"],
        )
        last = GaugeMetricFamily(
            "mailgate_component_last_success_timestamp_seconds",
            "When the part last did its work (Unix time).",
            labels=["component"],
        )
        for state in self.health.snapshot():
            ok.add_metric([state.name], 1 if state.ok else 0)
            if state.last_success is not None:
                last.add_metric([state.name], state.last_success.timestamp())
        yield ok
        yield last


def registry_for(collector: DaemonCollector) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return registry
