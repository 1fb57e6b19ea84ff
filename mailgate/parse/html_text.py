"""HTML to readable text, in one linear pass (no parser, no tree)."""

from __future__ import annotations

import html as htmllib
import re

_TAG_RE = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9:-]*)([^<>]*)>")
_DECL_RE = re.compile(r"<[!?][^<>]*>")
_SPACE_RE = re.compile(r"[ \t\r\n\f\v]+")
_BLANKS_RE = re.compile(r"\n{3,}")
_INLINE_SPACES_RE = re.compile(r"[ \t\xa0\u2000-\u200a\u202f\u205f\u3000]+")
_SKIP_TAGS = frozenset({"script", "style", "head", "template", "xml", "title"})
_LINE_TAGS = frozenset(
    [
        "div",
        "tr",
        "dt",
        "dd",
        "section",
        "article",
        "header",
        "footer",
        "nav",
        "aside",
        "form",
        "fieldset",
        "address",
        "center",
        "main",
        "figure",
        "figcaption",
        "caption",
        "details",
        "summary",
        "body",
        "html",
    ]
)
_PARA_TAGS = frozenset(
    ["p", "h1", "h2", "h3", "h4", "h5", "h6", "table", "ul", "ol", "dl", "blockquote", "pre", "hr"]
)
_CELL_TAGS = frozenset({"td", "th"})
_QUOTE_OPEN, _QUOTE_CLOSE = "\x01", "\x02"  # <blockquote> marks, resolved at the end


def html_to_text(html: str) -> str:
    """Readable text from HTML: no tags/scripts/styles; paragraphs, breaks, list items kept."""
    out: list[str] = []
    pending = 0  # line breaks owed by block boundaries, written before the next text
    pos, n = 0, len(html)
    in_pre = 0
    missing_close: set[str] = set()

    def text(chunk: str) -> None:
        """Append text, writing the line breaks owed before it."""
        nonlocal pending
        if not chunk.strip():
            if not pending and chunk:
                out.append(" ")
            return
        if pending:
            out.append("\n" * pending)
            pending = 0
        out.append(chunk)

    while pos < n:
        lt = html.find("<", pos)
        if lt < 0:
            text(_html_chunk(html[pos:], in_pre))
            break
        if lt > pos:
            text(_html_chunk(html[pos:lt], in_pre))
        if html.startswith("<!--", lt):
            end = html.find("-->", lt + 4)
            pos = n if end < 0 else end + 3
            continue
        m = _TAG_RE.match(html, lt)
        if m is None:
            d = _DECL_RE.match(html, lt)
            if d is not None:
                pos = d.end()
            else:
                text("<")
                pos = lt + 1
            continue
        pos = m.end()
        closing, tag = m.group(1) == "/", m.group(2).lower()
        if not closing and tag in _SKIP_TAGS and not m.group(3).rstrip().endswith("/"):
            pos = _skip_element(html, tag, pos, missing_close)
        elif tag == "br":
            out.append("\n" * pending + "\n")
            pending = 0
        elif tag == "li":
            if not closing:
                pending = max(pending, 1)
                text("- ")
        elif tag in _PARA_TAGS:
            pending = 2 if out else 0
            if tag == "blockquote":
                out.append(_QUOTE_CLOSE if closing else _QUOTE_OPEN)
            if tag == "pre":
                in_pre = max(0, in_pre + (-1 if closing else 1))
        elif tag in _LINE_TAGS:
            pending = max(pending, 1) if out else 0
        elif tag in _CELL_TAGS and not closing:
            text(" ")
    lines = [_INLINE_SPACES_RE.sub(" ", line).strip() for line in "".join(out).split("\n")]
    text = "\n".join(lines)
    if _QUOTE_OPEN in text:
        text = _quote_marks(text)
    return _BLANKS_RE.sub("\n\n", text).strip()


def _quote_marks(text: str) -> str:
    """Lines inside <blockquote> get a '> ' per level, as a plain-text client quotes them
    (so an answer between quotes reads apart from them). A mark before a line's first
    visible character counts for that line, one after it for the next lines."""
    out, depth = [], 0
    for line in text.split("\n"):
        visible = line.replace(_QUOTE_OPEN, "").replace(_QUOTE_CLOSE, "").strip()
        head = len(line) - len(line.lstrip(_QUOTE_OPEN + _QUOTE_CLOSE + " "))
        for mark in line[:head]:
            depth = max(
                0, depth + (1 if mark == _QUOTE_OPEN else -1 if mark == _QUOTE_CLOSE else 0)
            )
        line_depth = depth
        for mark in line[head:]:
            if mark in (_QUOTE_OPEN, _QUOTE_CLOSE):
                depth = max(0, depth + (1 if mark == _QUOTE_OPEN else -1))
        out.append("> " * line_depth + visible if line_depth and visible else visible)
    return "\n".join(out)


def _html_chunk(chunk: str, in_pre: int) -> str:
    """Text between tags: whitespace collapsed (except in <pre>), entities decoded."""
    if not in_pre:
        chunk = _SPACE_RE.sub(" ", chunk)
    elif "\r" in chunk:
        chunk = chunk.replace("\r\n", "\n").replace("\r", "\n")
    if "&" in chunk:
        chunk = htmllib.unescape(chunk)
    return chunk.replace("\x00", "").replace(_QUOTE_OPEN, "").replace(_QUOTE_CLOSE, "")


def _skip_element(html: str, tag: str, pos: int, missing_close: set[str]) -> int:
    """Position after the end of a skipped element (script, style, head...)."""
    if tag not in missing_close:
        m = re.compile(rf"</{tag}\s*>", re.IGNORECASE).search(html, pos)
        if m is not None:
            return m.end()
        missing_close.add(tag)
    if tag == "head":  # unterminated head: resume at <body>
        m = re.compile(r"<body\b", re.IGNORECASE).search(html, pos)
        return m.start() if m is not None else pos
    if tag == "title":
        return pos
    return len(html)  # unterminated script/style: the rest is not text
