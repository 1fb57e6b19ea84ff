"""A reply's HTML read at HTML level: what its author wrote, as HTML. Pure.

The text reading (agents/reply.py) decides what an answer says; this module finds the
same thing in the HTML so that an agent's HTML answer (with its inline images) can reach
the customer and a customer's HTML mail can be shown to agents:

- the quoted history is cut where the mail clients start it: Gmail's `gmail_quote`,
  Outlook's `divRplyFwdMsg` / `appendonsend` / the `border-top:solid` header block,
  Apple Mail's and Thunderbird's `<blockquote type="cite">` and `moz-cite-prefix`, any
  `<blockquote>`, a signature block (`gmail_signature`, `moz-signature`, a "-- " line),
  and our notification's marker line;
- the command lines on top (`#close`, `#priority 60` ...) are removed;
- `outgoing/html.py` then sanitises what is left (nh3).

`answer_html` returns "" unless the text of the HTML it keeps says word for word what the
text reading kept: an inline answer (author lines between quotes) or an unusual layout
falls back to the text answer, so a quote never leaks through the HTML.
"""

from __future__ import annotations

import re
from html import unescape
from html.parser import HTMLParser

from mailgate.outgoing.html import sanitize
from mailgate.parse.html_text import html_to_text

_MARKER_KEY = "reply above this line"  # agents.reply.REPLY_MARKER, lower case
_QUOTE_CLASSES = frozenset(
    {
        "gmail_quote",
        "gmail_attr",
        "gmail_signature",
        "moz-cite-prefix",
        "moz-signature",
        "yahoo_quoted",
        "protonmail_quote",
        "outlookmessageheader",
    }
)
_QUOTE_IDS = frozenset(
    {"divrplyfwdmsg", "x_divrplyfwdmsg", "appendonsend", "mail-editor-reference-message-container"}
)
_OUTLOOK_HEADER_RE = re.compile(r"border-top\s*:\s*solid", re.I)
_HIDDEN = frozenset({"head", "style", "script", "title", "template"})
_BLOCKS = frozenset({"p", "div", "li", "tr", "td", "pre", "h1", "h2", "h3", "h4", "table"})
_SIGNATURE_LINE = ("--", "-- ")
_WORD_RE = re.compile(r"\w+", re.UNICODE)


def _is_quote(tag: str, attrs: dict[str, str]) -> bool:
    classes = set((attrs.get("class") or "").lower().split())
    return (
        tag == "blockquote"
        or bool(classes & _QUOTE_CLASSES)
        or (attrs.get("id") or "").lower() in _QUOTE_IDS
        or (tag == "div" and bool(_OUTLOOK_HEADER_RE.search(attrs.get("style") or "")))
    )


class _Scan(HTMLParser):
    """Where the quote starts, and the source spans of the text before it."""

    def __init__(self, source: str):
        super().__init__(convert_charrefs=True)
        self.line_starts = [0]
        for m in re.finditer("\n", source):
            self.line_starts.append(m.end())
        self.cut: int | None = None
        self.block = 0  # where the latest block element started
        self.events: list[tuple[int, str]] = []  # (offset, text or "" for a tag)
        self.hidden = 0  # inside <head>, <style>, <script>, <title>: not text
        self.feed(source)
        self.close()

    def _offset(self) -> int:
        line, col = self.getpos()
        return self.line_starts[line - 1] + col

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.cut is not None:
            return
        pos = self._offset()
        if _is_quote(tag, {k: v or "" for k, v in attrs}):
            self.cut = pos
            return
        if tag in _BLOCKS:
            self.block = pos
        if tag in _HIDDEN:
            self.hidden += 1
        self.events.append((pos, ""))

    def handle_endtag(self, tag: str) -> None:
        if self.cut is None:
            if tag in _HIDDEN:
                self.hidden = max(0, self.hidden - 1)
            self.events.append((self._offset(), ""))

    def handle_data(self, data: str) -> None:
        if self.cut is not None or self.hidden:
            return
        pos = self._offset()
        low = data.lower()
        if _MARKER_KEY in low:
            self.cut = self.block if self.block >= self._last_text_end() else pos
            return
        if data.replace("\xa0", " ").strip() in _SIGNATURE_LINE and data.strip():
            self.cut = pos
            return
        self.events.append((pos, data))

    def _last_text_end(self) -> int:
        return max((o for o, t in self.events if t.strip()), default=-1)


def written_html(html: str, commands: bool = True) -> tuple[str, int]:
    """The HTML above the quote with (`commands`) the leading command lines removed, and
    how many command lines were removed. Not yet sanitised."""
    scan = _Scan(html)
    end = len(html) if scan.cut is None else scan.cut
    events = [*scan.events, (end, "")]
    spans: list[tuple[int, int]] = []
    removed = 0
    for i, (pos, text) in enumerate(events[:-1]):
        lines = [s.strip() for s in text.replace("\xa0", " ").split("\n") if s.strip()]
        if not lines:
            continue
        if not commands or not all(s.startswith("#") for s in lines):
            break
        spans.append((pos, min(events[i + 1][0], end)))
        removed += len(lines)
    out, last = [], 0
    for start, stop in spans:
        out.append(html[last:start])
        last = stop
    out.append(html[last:end])
    return "".join(out), removed


def words(text: str) -> list[str]:
    return _WORD_RE.findall(text.lower())


def answer_html(
    html: str, answer: str, command_lines: int, signature: str = ""
) -> tuple[str, bool]:
    """The agent's answer as sanitised HTML and whether it ends with the agent's
    signature; "" when the HTML reading disagrees with the text reading (`answer`, after
    `command_lines` command lines, the signature cut)."""
    if not html.strip():
        return "", False
    kept, removed = written_html(html)
    if removed != command_lines:
        return "", False
    clean = sanitize(kept)
    got, want = words(html_to_text(clean)), words(answer)
    if got == want and want:
        return clean, False
    if want and signature.strip() and got == want + words(signature):
        return clean, True
    return "", False


# what a cut needs in the document (a quote's tag, class, id or style, the marker, a
# signature line); the scan reads tags, attributes and text lowered, entities decoded
_CUT_NEEDS = ("blockquote", *_QUOTE_CLASSES, *_QUOTE_IDS, "border-top", _MARKER_KEY, "--")


def _may_cut(html: str) -> bool:
    """False when the scan cannot cut `html`: none of `_CUT_NEEDS` in it (decoded and
    lowered as a whole, which holds every piece the scan decodes and lowers)."""
    text = (unescape(html) if "&" in html else html).lower()
    return any(need in text for need in _CUT_NEEDS)


def new_html(html: str) -> str:
    """What a customer wrote in an HTML mail, the quoted history cut, sanitised."""
    if not html.strip():
        return ""
    if not _may_cut(html):  # nothing to cut: the scan (stdlib HTMLParser) would keep it all
        return sanitize(html)
    return sanitize(written_html(html, commands=False)[0])
