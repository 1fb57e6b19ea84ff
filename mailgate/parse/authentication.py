"""Sender authentication from `Authentication-Results` (RFC 8601). Pure.

Only a header whose authserv-id is one of `authentication.trusted_authserv_ids` counts:
anyone can write the header, so the same header naming another server changes nothing.
The header is parsed with `authres` (not by hand); what it leaves out, the DMARC policy
that servers write as a comment (`dmarc=fail (p=reject ...)`, Microsoft's
`action=oreject`), is read from the DMARC clause alone.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import authres

METHODS = ("spf", "dkim", "dmarc")
# a method's results, best first: any passing DKIM signature is a pass
_RANK = ("pass", "fail", "softfail", "neutral", "policy", "temperror", "permerror", "none")
_REJECT = re.compile(r"\bdmarc=fail\b[^;]*?\b(?:p|policy\.dmarc|action)=o?reject\b", re.I)


@dataclass(frozen=True)
class SenderAuth:
    spf: str = "none"
    dkim: str = "none"
    dmarc: str = "none"
    dmarc_reject: bool = False  # DMARC failed and the domain's policy is reject
    aligned: bool = False  # a passing SPF or DKIM domain is the From domain (or its parent)
    authserv_id: str = ""  # the trusted header read ("" = none)
    ignored: tuple[str, ...] = ()  # authserv-ids of headers not trusted

    @property
    def authenticated(self) -> bool:
        return self.dmarc == "pass" or (self.dmarc in ("none", "") and self.aligned)

    def as_dict(self) -> dict[str, object]:
        """What an article's verdict keeps (`tickets show`)."""
        d: dict[str, object] = {m: getattr(self, m) for m in METHODS}
        d.update(by=self.authserv_id, authenticated=self.authenticated)
        if self.dmarc_reject:
            d["dmarc_policy"] = "reject"
        if self.ignored:
            d["ignored"] = list(self.ignored)
        return d


NONE = SenderAuth()


def _best(results: Iterable[str]) -> str:
    found = [r.lower() for r in results if r]
    return min(found, key=lambda r: _RANK.index(r) if r in _RANK else len(_RANK), default="none")


def _aligned(domain: str, from_domain: str) -> bool:
    d = domain.lower().rpartition("@")[2].strip(".")
    return bool(d) and (from_domain == d or from_domain.endswith("." + d))


def sender_auth(headers: Sequence[str], trusted: Sequence[str], from_addr: str) -> SenderAuth:
    """The topmost `Authentication-Results` from a trusted authserv-id, read; NONE if none."""
    trusted_ids = {t.lower() for t in trusted}
    ignored: list[str] = []
    from_domain = from_addr.lower().rpartition("@")[2]
    for value in headers:
        text = " ".join(value.split()).rstrip("; ")
        try:
            parsed = authres.AuthenticationResultsHeader.parse_value(text)
        except Exception:  # noqa: BLE001 - authres raises its own SyntaxError on junk
            ignored.append(text.split(";", 1)[0][:80] + " (unreadable)")
            continue
        if (parsed.authserv_id or "").lower() not in trusted_ids:
            ignored.append(str(parsed.authserv_id))
            continue
        by_method: dict[str, list[str]] = {m: [] for m in METHODS}
        aligned = False
        for r in parsed.results:
            method = (r.method or "").lower()
            if method in by_method:
                by_method[method].append(r.result or "")
            if method in ("spf", "dkim") and (r.result or "").lower() == "pass":
                props = {(p.type, p.name): p.value for p in r.properties}
                domain = props.get(("header", "d")) or props.get(("smtp", "mailfrom")) or ""
                aligned = aligned or _aligned(str(domain), from_domain)
        return SenderAuth(
            spf=_best(by_method["spf"]),
            dkim=_best(by_method["dkim"]),
            dmarc=_best(by_method["dmarc"]),
            dmarc_reject=bool(_REJECT.search(text)),
            aligned=aligned,
            authserv_id=str(parsed.authserv_id),
            ignored=tuple(ignored),
        )
    return SenderAuth(ignored=tuple(ignored)) if ignored else NONE  # NONE: pickled once a batch


def auth_line(verdict: dict) -> str:
    """One line for `tickets show`: what the trusted server said of the sender."""
    a = verdict.get("auth")
    if not a:
        return ""
    line = " ".join(f"{m}={a.get(m, 'none')}" for m in METHODS)
    if a.get("dmarc_policy"):
        line += f" (policy {a['dmarc_policy']})"
    by = f" by {a['by']}" if a.get("by") else " (no trusted Authentication-Results)"
    ignored = f"; ignored from {', '.join(a['ignored'])}" if a.get("ignored") else ""
    return f"sender authentication: {line}{by}{ignored}"
