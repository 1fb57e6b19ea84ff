"""The HTML report in a real browser (headless Chromium): the page works offline, every
chart is drawn (its box holds the bars' colours, not just background) and every figure
the page shows equals the JSON's."""

from __future__ import annotations

import json
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from mailgate.cli.report import make_report
from mailgate.report.charts import BLUE
from mailgate.report.html import cell, render_html
from tests.integration.test_report import NOV, NOW, config, seed
from tests.servers import require

WIDTH, HEIGHT = 1300, 2400
# a test-only addition: write each chart's box (page pixels) into the DOM for --dump-dom
BOXES = """<script>
for (const f of document.querySelectorAll("figure")) {
  const r = f.querySelector("svg").getBoundingClientRect();
  f.dataset.box = [r.left, r.top, r.width, r.height].map(Math.round).join(",");
}
</script></body>"""


def chromium(tmp: Path, *args: str) -> str:
    cmd = [
        "chromium",
        "--headless",
        "--no-sandbox",  # root in the test container
        "--disable-gpu",
        "--hide-scrollbars",
        "--force-device-scale-factor=1",
        f"--user-data-dir={tmp / 'profile'}",
        f"--window-size={WIDTH},{HEIGHT}",
        *args,
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True)
    return done.stdout


class Page(HTMLParser):
    """The dumped DOM's chart boxes and figure cells."""

    def __init__(self) -> None:
        super().__init__()
        self.boxes: dict[str, tuple[int, int, int, int]] = {}
        self.cells: dict[str, str] = {}
        self._key: str | None = None
        self.external: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "figure" and a.get("data-box"):
            x, y, w, h = (int(v) for v in str(a["data-box"]).split(","))
            self.boxes[str(a["id"])] = (x, y, w, h)
        if tag == "td" and a.get("data-k"):
            self._key = str(a["data-k"])
            self.cells[self._key] = ""
        for name in ("src", "href"):
            if a.get(name):
                self.external.append(str(a[name]))

    def handle_data(self, data: str) -> None:
        if self._key is not None:
            self.cells[self._key] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "td":
            self._key = None


def json_value(report: dict[str, Any], key: str) -> Any:
    """`queues.support.frt_median_h` -> the value (lists of named rows by their name)."""
    value: Any = report
    for part in key.split("."):
        if isinstance(value, list):
            value = (
                value[int(part)] if part.isdigit() else next(v for v in value if v["name"] == part)
            )
        else:
            value = value[part]
    return value


def _rgb(hex_colour: str) -> tuple[int, int, int]:
    return tuple(int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]


def test_the_html_report_draws_every_chart_and_shows_the_json_figures(tmp_path: Path):
    require("chromium")
    ids, url = seed("sqlite:///" + str(tmp_path / "db.sqlite"))
    report = make_report(config(tmp_path, url), NOV, now=NOW)
    page = tmp_path / "report.html"
    page.write_text(render_html(report).replace("</body>", BOXES), encoding="utf-8")

    dom = Page()
    dom.feed(chromium(tmp_path, "--dump-dom", page.as_uri()))
    assert dom.external == []  # nothing to fetch: the file works offline
    assert set(dom.boxes) == {"chart-volume", "chart-response", "chart-agents", "chart-sla"}
    # every figure in the page is the JSON's, written as the page writes it
    assert len(dom.cells) > 100
    for key, text in dom.cells.items():
        value = json_value(report, key)
        assert text == (f"{value:+d}" if key.endswith(".change") else cell(value)), key
    assert dom.cells["total.received"] == "5" and dom.cells["agents.alice.frt_median_h"] == "33.5"

    shot = tmp_path / "shot.png"
    chromium(tmp_path, f"--screenshot={shot}", page.as_uri())
    image = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    assert image.shape == (HEIGHT, WIDTH, 3)
    blue = np.array(_rgb(BLUE))
    for name, (x, y, w, h) in dom.boxes.items():
        assert w > 200 and h > 100 and y + h < HEIGHT, name
        box = image[y : y + h, x : x + w]
        drawn = int((box != 255).any(axis=2).sum())
        bars = int((np.abs(box - blue) < 12).all(axis=2).sum())
        assert drawn > 0.03 * w * h, f"{name}: {drawn} of {w * h} pixels drawn"
        assert bars > 200, f"{name}: {bars} pixels in the bars' colour"
    # outside the charts, a strip of the page margin stays background: the test can fail
    assert (image[:, :10] == 255).all()
    json.dumps(report)  # the figures the page showed are plain JSON
    assert ids["t1"] in report["repetitive_issues"][0]["examples"]
