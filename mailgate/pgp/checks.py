"""`check-config`'s PGP checks: each queue key is in its GnuPG home and usable.

The `[pgp]` tables themselves are validated at load (config/pgp.py); this asks gpg.
"""

from __future__ import annotations

from mailgate.config.model import Config
from mailgate.pgp import keys as keymgmt


def pgp_problems(config: Config) -> list[str]:
    """For check-config: runs gpg to see that each queue key and its secret half are in
    the queue's home and usable (the `[pgp]` tables themselves were validated at load)."""
    problems: list[str] = []
    for q in config.queues:
        s = q.pgp
        if s is None:
            continue
        try:
            found = keymgmt.list_keys(s.home)
        except keymgmt.KeyManagementError as e:
            problems.append(f"{q.source}: pgp.gnupg_home: {e}")
            continue
        if not s.key:
            if not any(k.secret and k.usable for k in found):
                problems.append(f"{q.source}: pgp.gnupg_home: no usable secret key in {s.home}")
            continue
        info = next((k for k in found if k.fingerprint == s.key), None)
        if info is None:
            problems.append(f"{q.source}: pgp.key: {s.key} is not in {s.home}")
        elif not info.secret:
            problems.append(f"{q.source}: pgp.key: the secret key of {s.key} is not in {s.home}")
        elif not info.usable:
            problems.append(f"{q.source}: pgp.key: {s.key} is expired, revoked or disabled")
    return problems
