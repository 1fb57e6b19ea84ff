"""Linear pre-scan of the raw bytes: the rejection rule, and the cuts that bound the parse.

The stdlib parser costs about 2 us per line and 40 us per part, is quadratic in multipart
nesting and overflows the stack near 1,000 levels, so the bytes it is handed are first cut
here: header block at `MAX_HEADER_LINES` lines, whole message at
max(`MIN_LINE_CAP`, max_bytes / 50) lines, parts after ``max_parts``, multiparts deeper
than ``max_depth + 1`` neutralised. Whatever is cut is recorded in `defects` and stays in
the raw bytes (the caller keeps them).
"""

from __future__ import annotations

import bisect
import re

from mailgate.parse.limits import MAX_HEADER_LINES, MIN_LINE_CAP, ParseLimits, ParseRejected

_BOM = b"\xef\xbb\xbf"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_LINE_RE = re.compile(rb"[^\r\n]*")
_BLANK_LINES_RE = re.compile(rb"(?:[ \t\x0b\x0c]*(?:\r\n|\r|\n))*")
_EOL_RE = re.compile(rb"\r\n|\r|\n")
_FIELD_START_RE = re.compile(rb"(?:^|(?<=[\r\n]))([\x21-\x39\x3b-\x7e]{1,200})[ \t]*:")
_RECOVER_BYTES = 65536  # how far below a damaged first line a header block is looked for
# RFC 5322 field name: printable US-ASCII except ":" (and no space), then optional WSP, ":".
_HEADER_LINE_RE = re.compile(rb"[\x21-\x39\x3b-\x7e]{1,200}[ \t]*:")
# Each pattern starts with a literal, so the scans run at C speed (one alternation: 10x slower).
_DECL_BOUNDARY_RE = re.compile(rb"boundary[ \t]*=[ \t]*(?:\"([^\"\r\n]*)\"|([^\s;\"]+))")
_DELIMITER_RE = re.compile(rb"\n--([^\r\n]*?)[ \t]*\r?(?=\n|\Z)")
_BLANK_RE = re.compile(rb"\n\r?(?=\n)")


def header_start(raw: bytes) -> tuple[int, bool]:
    """Offset where the header block starts, and whether damaged first lines were skipped.

    Raise ParseRejected if there is no header block.
    """
    if raw.startswith(_OLE_MAGIC):
        raise ParseRejected("not a MIME message: OLE compound file (Outlook .msg?)")
    pos = 3 if raw.startswith(_BOM) else 0
    blank = _BLANK_LINES_RE.match(raw, pos)
    pos = blank.end() if blank else pos
    line = _LINE_RE.match(raw, pos)
    assert line is not None  # the pattern matches the empty string
    first = line.group()
    if not first.strip():  # every complete blank line is behind pos
        raise ParseRejected("no content: only blank lines")
    candidate = first
    if first.startswith(b"From "):  # mbox envelope line; the stdlib keeps it as unixfrom
        eol = _EOL_RE.match(raw, line.end())
        nxt = _LINE_RE.match(raw, eol.end()) if eol else None
        candidate = nxt.group() if nxt else b""
    if not _HEADER_LINE_RE.match(candidate):
        later = _usable_header_below(raw, pos)
        if later is not None:
            return later, True
        shown = candidate[:40].decode("ascii", "backslashreplace")
        raise ParseRejected(f"no header block: first line is not a 'Name: value' field: {shown!r}")
    return pos, False


def _usable_header_below(raw: bytes, pos: int) -> int | None:
    """Offset of the first valid field line, if the block from there has From and To/Subject.

    A damaged first line (cut off, binary junk) must not cost a message whose own header
    block is below it; a body of prose has no From: line there.
    """
    end = _blank_line(
        raw, b"\r" if b"\n" not in raw[:_RECOVER_BYTES] else b"\n", pos, pos + _RECOVER_BYTES
    )
    block = raw[pos : end if end >= 0 else pos + _RECOVER_BYTES]
    start = None
    names: set[bytes] = set()
    for m in _FIELD_START_RE.finditer(block):
        if start is None:
            start = m.start()
        names.add(m.group(1).lower())
    if start is None or b"from" not in names or not names & {b"to", b"subject"}:
        return None
    return pos + start


def bound_work(data: bytes, limits: ParseLimits, defects: list[str]) -> bytes:
    """The bytes handed to the stdlib, cut so that parsing stays cheap (see module doc)."""
    nl = b"\n" if b"\n" in data else b"\r"
    lines = data.count(nl)
    if lines > MAX_HEADER_LINES:
        cut = _nth_line_end(data, nl, MAX_HEADER_LINES)
        if _blank_line(data, nl, 0, cut) < 0:  # the header block alone is that long
            body = _blank_line(data, nl, cut, len(data))
            data = data[:cut] + (data[body:] if body >= 0 else b"")
            defects.append(
                f"header block longer than {MAX_HEADER_LINES} lines: the rest not parsed"
            )
            lines = data.count(nl)
    line_cap = max(MIN_LINE_CAP, limits.max_bytes // 50)
    if lines > line_cap:
        data = data[: _nth_line_end(data, nl, line_cap)]
        defects.append(f"more than {line_cap} lines: the rest not parsed")
    lowered = data.lower()
    # (`lines` is at least the line ends left in `data`: no more delimiter lines than that)
    few_parts = lines <= limits.max_parts or lowered.count(nl + b"--") <= limits.max_parts
    if lowered.count(b"boundary") <= limits.max_depth and few_parts:
        return data  # cannot nest deeper, cannot hold more parts than allowed
    return _cap_structure(data, lowered, limits, defects)


def _blank_line(data: bytes, nl: bytes, start: int, end: int) -> int:
    """Offset of the first empty line in data[start:end] (just after a line end), or -1."""
    if nl == b"\r":
        i = data.find(b"\r\r", start, end)
        return i + 1 if i >= 0 else -1
    found = [
        i for i in (data.find(b"\n\n", start, end), data.find(b"\n\r\n", start, end)) if i >= 0
    ]
    return min(found) + 1 if found else -1


def _nth_line_end(data: bytes, nl: bytes, n: int) -> int:
    """Offset just after the n-th line end."""
    pos = 0
    for _ in range(n):
        pos = data.find(nl, pos) + 1
    return pos


def _cap_structure(data: bytes, lowered: bytes, limits: ParseLimits, defects: list[str]) -> bytes:
    """Neutralise too-deep multiparts and drop the parts after max_parts (linear scan)."""
    # Only header blocks declare multiparts: the top one, and one after each delimiter line
    # of an open multipart, each ending at the next blank line.
    if b"\n" not in lowered:
        lowered = lowered.replace(b"\r", b"\n")  # bare-CR mail: same length, same offsets
    lowered = b"\n" + lowered  # the first line also starts after a newline: offsets + 1
    blanks = [m.start() for m in _BLANK_RE.finditer(lowered)]
    stack: list[bytes] = []  # boundaries of the open multiparts
    neutralise: list[int] = []

    def header_block(start: int) -> None:
        """Read the boundary declarations of the header block starting at `start`."""
        i = bisect.bisect_right(blanks, start)
        stop = blanks[i] if i < len(blanks) else len(lowered)
        for m in _DECL_BOUNDARY_RE.finditer(lowered, start, stop):
            if len(stack) > limits.max_depth:
                neutralise.append(m.start() - 1)
            else:
                stack.append(m.group(1) if m.group(1) is not None else m.group(2))

    header_block(0)
    parts, end = 1, len(data)
    for m in _DELIMITER_RE.finditer(lowered):
        if _close_to(stack, m.group(1)):
            parts += 1
            if parts > limits.max_parts + 1:
                end = m.start() - 1
                break
            header_block(m.end())
    if not neutralise and end == len(data):
        return data
    patched = bytearray(data[:end])
    for offset in neutralise:
        if offset < end:
            patched[offset : offset + 1] = b"X"
    if neutralise:
        defects.append(
            f"nesting deeper than {limits.max_depth + 1} levels: "
            f"{len(neutralise)} multiparts not parsed"
        )
    if end < len(data):
        defects.append(f"more than {limits.max_parts} parts: the rest not parsed")
    return bytes(patched)


def _close_to(stack: list[bytes], delimiter: bytes) -> bool:
    """Pop multiparts above the one this delimiter belongs to; True if a new part opens."""
    for i in range(len(stack) - 1, -1, -1):
        if delimiter == stack[i]:
            del stack[i + 1 :]
            return True
        if delimiter == stack[i] + b"--":
            del stack[i:]
            return False
    return False
