"""Where a quoted message begins in a reply, in the layouts of common mail clients and
languages. Pure; the language tables are data (add a language by adding words).

Three kinds of quote header, each ending what the author wrote above it:

- an attribution: "On <date>, <someone> wrote:" and its translations, on one to six
  lines (Gmail wraps the address; Polymail puts "> wrote:" on a line of its own), or a
  date and an address with no verb at all ("2011/4/7 Nathan <n@example.com>") when a
  '>' quote follows;
- a header block: Outlook's "From: / Sent: / To: / Subject:" lines, localized, plain or
  bold (`*From:*`);
- a separator: "-----Original Message-----" and its translations, Outlook's rule of
  underscores.

`reply.split_reply` decides what to do with the text under a header (docs/agents.md).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# the words an attribution starts with ("On ... wrote:"), per language
ATTRIBUTION_STARTS = {
    "en": ("on",),
    "de": ("am",),
    "fr": ("le",),
    "es": ("el",),
    "it": ("il",),
    "nl": ("op",),
    "pt": ("em", "no dia"),
    "pl": ("w dniu", "dnia"),
    "sv": ("den",),
    "da": ("den",),
    "no": ("på", "den"),
    "fi": ("pe", "ma", "ti", "ke", "to", "la", "su"),
    "vi": ("vào",),
    "zh": ("在",),
}
# the verbs an attribution ends with
ATTRIBUTION_VERBS = {
    "en": ("wrote", "sent", "writes"),
    "de": ("schrieb", "geschrieben"),
    "fr": ("a écrit", "écrit"),
    "es": ("escribió",),
    "it": ("ha scritto", "scrisse"),
    "nl": ("schreef", "het volgende geschreven", "geschreven"),
    "pt": ("escreveu",),
    "pl": ("napisał", "napisała", "napisał(a)"),
    "sv": ("skrev",),
    "da": ("skrev",),
    "no": ("skrev",),
    "fi": ("kirjoitti",),
    "ru": ("написал", "написала", "написал(а)"),
    "vi": ("đã viết",),
    "ja": ("書きました", "のメッセージ"),
    "zh": ("写道", "寫道"),
}
# header-block field names: the field a line names, per language
HEADER_FIELDS = {
    "from": (
        "from",
        "von",
        "de",
        "da",
        "van",
        "fra",
        "från",
        "od",
        "lähettäjä",
        "от",
        "mittente",
        "remetente",
        "afzender",
        "发件人",
        "寄件者",
        "差出人",
    ),
    "sent": (
        "sent",
        "date",
        "gesendet",
        "datum",
        "envoyé",
        "enviado",
        "enviada",
        "fecha",
        "inviato",
        "data",
        "verzonden",
        "sendt",
        "skickat",
        "wysłano",
        "wysłane",
        "lähetetty",
        "päivämäärä",
        "отправлено",
        "дата",
        "发送时间",
        "日期",
        "送信日時",
        "日時",
    ),
    "to": (
        "to",
        "an",
        "à",
        "a",
        "para",
        "aan",
        "til",
        "till",
        "do",
        "vastaanottaja",
        "кому",
        "收件人",
        "宛先",
    ),
    "cc": ("cc", "kopie", "kopia", "копия", "抄送", "kopio"),
    "subject": (
        "subject",
        "betreff",
        "objet",
        "asunto",
        "oggetto",
        "onderwerp",
        "emne",
        "ämne",
        "temat",
        "aihe",
        "assunto",
        "тема",
        "主题",
        "件名",
        "subj",
    ),
}
# "-----Original Message-----" and its kin, between runs of dashes
SEPARATOR_NAMES = (
    "original message",
    "reply message",
    "ursprüngliche nachricht",
    "antwort nachricht",
    "originalnachricht",
    "oprindelig meddelelse",
    "message d'origine",
    "message original",
    "mensaje original",
    "messaggio originale",
    "oorspronkelijk bericht",
    "origineel bericht",
    "originalmeddelande",
    "ursprungligt meddelande",
    "opprinnelig melding",
    "alkuperäinen viesti",
    "wiadomość oryginalna",
    "oryginalna wiadomość",
    "mensagem original",
    "исходное сообщение",
    "пересылаемое сообщение",
    "原始邮件",
    "原始郵件",
    "元のメッセージ",
)
FORWARD_NAMES = (
    "forwarded message",
    "weitergeleitete nachricht",
    "message transféré",
    "mensaje reenviado",
    "messaggio inoltrato",
    "doorgestuurd bericht",
    "videresendt meddelelse",
    "vidarebefordrat meddelande",
    "mensagem encaminhada",
    "välitetty viesti",
    "przekazana wiadomość",
    "перенаправленное сообщение",
    "转发的邮件",
    "転送されたメッセージ",
)
# "Sent from my iPhone" and its translations: a mobile client's footer
MOBILE_FOOTERS = (
    r"sent from my \S.{0,40}",
    r"get outlook for \S+",
    r"von meinem \S+( \S+)? gesendet",
    r"gesendet von (meinem )?\S.{0,30}",
    r"envoyé de mon \S.{0,30}",
    r"enviado desde mi \S.{0,30}",
    r"inviato da(l mio)? \S.{0,30}",
    r"verzonden (met|vanaf|van) mijn \S.{0,30}",
    r"enviado do meu \S.{0,30}",
    r"wysłane z (mojego )?\S.{0,30}",
    r"(skickat|sendt) fr(å|a)n? min \S.{0,30}",
    r"lähetetty (laitteesta )?\S.{0,30}",
    r"отправлено с \S.{0,30}",
    r"\S{1,20}から送信",
    r"发自我的\S{1,20}",
)


def _alternatives(words) -> str:
    return "|".join(sorted((re.escape(w) for w in words), key=len, reverse=True))


_STARTS = {w for ws in ATTRIBUTION_STARTS.values() for w in ws}
_VERBS = {w for ws in ATTRIBUTION_VERBS.values() for w in ws}
_START_RE = re.compile(rf"^(?:{_alternatives(_STARTS)})(?=[\s,])", re.I)
# a verb at the end, read backwards: an anchored match costs one step on most lines, where
# a search for "...$" tries every position
_VERB_END_REVERSED_RE = re.compile(
    rf"\s*[:：]?\s*(?:{_alternatives(v[::-1] for v in _VERBS)})", re.I
)
_VERB_RE = re.compile(rf"\b(?:{_alternatives(_VERBS)})\b", re.I)
_DASHED_VERB_RE = re.compile(rf"^-{{2,}}\s*(.*(?:{_alternatives(_VERBS)}))\s*-{{2,}}$", re.I)
_FIELD_RE = {
    field: re.compile(rf"^\*?(?:{_alternatives(words)})\s*\*?\s*[:：]\s*\*?", re.I)
    for field, words in HEADER_FIELDS.items()
}
_SEPARATOR_RE = re.compile(rf"^-{{2,}}\s*(?:{_alternatives(SEPARATOR_NAMES)})\s*-{{2,}}$", re.I)
_FORWARD_RE = re.compile(
    rf"^(?:-{{2,}}|begin)\s*(?:{_alternatives(FORWARD_NAMES)})\s*(?:-{{2,}}|:)?$", re.I
)
_RULE_RE = re.compile(r"^_{20,}$")  # Outlook's rule (and a mailing list's footer)
_DASH_RULE_RE = re.compile(r"^-{20,}$")  # a quote's rule only when a header block follows
_MOBILE_RE = re.compile(rf"^(?:{'|'.join(MOBILE_FOOTERS)})$", re.I)
_DATE_RE = re.compile(
    r"\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}|\d{4}年|\b\d{1,2}[:.]\d{2}\b|\b\d{1,2}\.? \w+\.?,? \d{4}\b"
)
_EMAIL_RE = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_SHARED_LINE_RE = re.compile(
    rf"^(.*?\S)\s*(?:-{{2,}}\s*)?\b(?:{_alternatives(_STARTS)})\s.*(?:{_alternatives(_VERBS)})\s*:\s*$",
    re.I,
)
ATTRIBUTION_MAX_LINES = 6
_LONGEST_LINE = 400  # longer lines are text, never the start of an attribution
_DIGIT_RE = re.compile(r"\d")
_DIGIT_OR_AT_RE = re.compile(r"[\d@]")
# what the first line of every quote header but a bare "X wrote:" holds: a rule's, a
# separator's or a forward's first character, a field's colon, a date's digit, an address
# (two patterns: one alternation tried both branches at every position, twice the time)
_HEADER_OPENING_START_RE = re.compile(r"\s*[-_bB]")
_HEADER_OPENING_CHAR_RE = re.compile(r"[:：\d@]")


@dataclass(frozen=True)
class Header:
    """A quote header found at a line: how many lines it spans, whether the text under it
    is quoted even without '>' (a verb or a header block said so), whether it opens a
    forward."""

    lines: int
    explicit: bool
    forward: bool = False
    separator: bool = False  # a rule or "Original Message": ends a forward's text too


def _bare(line: str) -> str:
    return line.strip()  # (str.strip removes U+00A0 and every other Unicode space)


def is_quoted(line: str) -> bool:
    """A '>' line, except a banner like '>>> http://example.com <<<'."""
    s = line.lstrip()
    return s.startswith(">") and not s.rstrip().endswith("<<<")


def is_broken_quote_line(lines: list[str], n: int) -> bool:
    """A line between two '>' lines that a client's wrapping broke out of the quote: a
    link's tail (a real inline answer stands apart by blank lines)."""
    if not (0 < n < len(lines) - 1 and is_quoted(lines[n - 1]) and is_quoted(lines[n + 1])):
        return False
    tail = lines[n - 1].split()[-1] if lines[n - 1].split() else ""
    return "://" in lines[n] or "://" in tail


def is_mobile_footer(line: str) -> bool:
    return bool(_MOBILE_RE.match(_bare(line)))


def shared_line_split(line: str) -> str | None:
    """The author's text before an attribution that shares its line ("reply On ... wrote:"),
    or None."""
    s = _bare(line)
    if not s.endswith((":", "：")):
        return None
    m = None if _START_RE.match(s) else _SHARED_LINE_RE.match(s)  # (the cheap one first)
    if m is None:
        return None
    return m.group(1).rstrip("-").rstrip()


def may_open_header(line: str) -> bool:
    """False: header_at is None at this line, or a bare "X wrote:" (a header only where a
    '>' quote follows)."""
    return bool(_HEADER_OPENING_START_RE.match(line) or _HEADER_OPENING_CHAR_RE.search(line))


def header_at(lines: list[str], n: int) -> Header | None:
    """The quote header starting at line n, or None."""
    s = _bare(lines[n])
    if not s or (s[0] == ">" and not s.endswith("<<<")):  # empty, or is_quoted
        return None
    if s[0] in "-_bB":  # every rule, separator and forward line starts so
        if _SEPARATOR_RE.match(s) or _RULE_RE.match(s):
            return Header(1, explicit=True, separator=True)
        if _DASH_RULE_RE.match(s):
            return _dash_rule(lines, n)
        if _FORWARD_RE.match(s):
            return Header(1, explicit=False, forward=True)
        if _DASHED_VERB_RE.match(s):
            return Header(1, explicit=True)
    if ":" in s or "：" in s:  # a header block's first field
        block = _header_block(lines, n)
        if block:
            return Header(block, explicit=True)
    if len(s) > _LONGEST_LINE:
        return None
    if _DIGIT_OR_AT_RE.search(s) is None:  # no date, no address: "X wrote:" at most
        return Header(1, explicit=False) if _verb_end(s) else None
    return _attribution(lines, n)


def _dash_rule(lines: list[str], n: int) -> Header | None:
    """A rule of dashes is a quote's separator only when a header block follows."""
    following = next((k for k in range(n + 1, min(len(lines), n + 4)) if _bare(lines[k])), 0)
    if following and _header_block(lines, following):
        return Header(1, explicit=True, separator=True)
    return None


def _field(line: str) -> str:
    if ":" not in line and "：" not in line:  # every field has its colon
        return ""
    s = _bare(line)
    return next((f for f, rx in _FIELD_RE.items() if rx.match(s)), "")


def _header_block(lines: list[str], n: int) -> int:
    """Lines of an Outlook-style block at n: a From or Date line, then another field within
    the next four lines (a wrapped address may come between)."""
    first = _field(lines[n])
    if first not in ("from", "sent"):
        return 0
    seen, last, k = {first}, n, n + 1
    while k < len(lines) and k <= last + 3:
        field = _field(lines[k])
        if field:
            seen.add(field)
            last = k
        k += 1
    return last - n + 1 if len(seen) >= 2 else 0


def _verb_end(text: str) -> bool:
    """Does the text end with an attribution's verb? (only its tail is searched)"""
    return _VERB_END_REVERSED_RE.match(text[-48:][::-1]) is not None


def _attribution(lines: list[str], n: int) -> Header | None:
    """(Line n has a digit or an '@', and is not too long.)"""
    first = _bare(lines[n])
    digits = _DIGIT_RE.search(first) is not None  # no digit: no date (the cheap test first)
    dated = digits and _DATE_RE.search(first) is not None
    starts = dated and _START_RE.match(first) is not None
    joined = first
    dated_first = dated or ("@" in first and _EMAIL_RE.search(first) is not None)
    limit = ATTRIBUTION_MAX_LINES if starts else 3 if dated_first else 1
    for k in range(n, min(len(lines), n + limit)):
        if k > n:
            nxt = _bare(lines[k]).lstrip(">").strip()
            if not nxt and not starts:
                break
            joined = f"{joined} {nxt}".strip()
        if _verb_end(joined):
            dated = bool(_DATE_RE.search(joined) or _EMAIL_RE.search(joined))
            if starts or dated:
                return Header(k - n + 1, explicit=True)
            return Header(k - n + 1, explicit=False)  # "X wrote:" alone: only before '>'
        if starts and _VERB_RE.search(joined) and joined.endswith((":", "：")):
            return Header(k - n + 1, explicit=True)  # nl: "Op <date> schreef <name>:"
        if k > n and (is_quoted(lines[k]) and not _verb_end(nxt)):
            break
    return _bare_attribution(lines, n) if dated else None


def _bare_attribution(lines: list[str], n: int) -> Header | None:
    """(Line n has a date.) A date and an address with no verb ("2011/4/7 Nathan
    <n@example.com>", Gmail's "2014-10-17 11:28 GMT+03:00 Name <\\naddr>:", ja
    "2026年12月1日 Name <addr>:")."""
    joined = _bare(lines[n])
    for k in range(n, min(len(lines), n + 3)):
        if k > n:
            if not _bare(lines[k]):
                return None
            joined = f"{joined} {_bare(lines[k])}"
        closed = joined.rstrip().endswith((">", ":", "："))
        if closed and _EMAIL_RE.search(joined) and len(joined) < 200:
            return Header(k - n + 1, explicit=False)
    return None
