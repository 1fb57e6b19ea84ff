"""The HTML that mailgate sends: sanitised by nh3, images only by Content-ID. Pure.

Whatever HTML a customer or an agent wrote passes `sanitize` before it goes into a mail:
nh3 (the Rust `ammonia` sanitiser) keeps a fixed set of formatting tags, drops scripts,
styles, event handlers, forms and unknown tags, and closes what the cut left open; an
`<img>` keeps its `src` only when it is a `cid:` reference to a part of the same mail, so
no mail of ours loads a remote image (tracking pixels) or a `data:` payload. The HTML
around it (our marker, the notification text, the answer footer) is escaped text.
"""

from __future__ import annotations

import html as htmllib
import re

import nh3

_TAGS = frozenset(nh3.ALLOWED_TAGS - {"area", "map"})
_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "width", "height", "title"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan"},
    "*": {"dir", "lang"},
}
_SCHEMES = frozenset({"http", "https", "mailto", "cid"})
_EMPTY_RE = re.compile(r"<(p|div|span)>(\s|&nbsp;|\xa0)*</\1>")
_TRAILING_RE = re.compile(r"(\s|<br>|<hr>|&nbsp;|\xa0)+$")
_LEADING_RE = re.compile(r"^(\s|<br>|&nbsp;|\xa0)+")
PRE = '<div style="white-space:pre-wrap;font-family:monospace">{}</div>'


def _only_cid_images(tag: str, attribute: str, value: str) -> str | None:
    if tag == "img" and attribute == "src" and not value.lower().startswith("cid:"):
        return None
    return value


def sanitize(html: str) -> str:
    """Safe HTML for a mail: allowed tags only, images only by cid:, empty blocks gone."""
    clean = nh3.clean(
        html,
        tags=set(_TAGS),
        attributes={k: set(v) for k, v in _ATTRIBUTES.items()},
        url_schemes=set(_SCHEMES),
        attribute_filter=_only_cid_images,
        link_rel="noopener noreferrer",
    )
    previous = None
    while previous != clean:  # nested empties: <div><p></p></div>
        previous, clean = clean, _EMPTY_RE.sub("", clean)
    return _LEADING_RE.sub("", _TRAILING_RE.sub("", clean))


def text_block(text: str) -> str:
    """Plain text as HTML, line breaks and spacing kept."""
    return PRE.format(htmllib.escape(text.strip("\n")))


def document(*parts: str) -> str:
    """A whole HTML body from already-safe parts."""
    inner = "\n".join(p for p in parts if p)
    head = '<!DOCTYPE html>\n<html><head><meta charset="utf-8"></head><body>'
    return f"{head}\n{inner}\n</body></html>\n"
