"""Node permissions: a list of (access, domid), the first naming the owner
and the access of everyone not listed. The one check, perm_for_conn(),
lives here."""

from __future__ import annotations

from typing import NamedTuple

from hv.public.errno import EINVAL
from hv.xenstore.errors import XsError

PERM_NONE = 0x00
PERM_READ = 0x01
PERM_WRITE = 0x02
PERM_OWNER = 0x08
PERM_IGNORE = 0x10      # an entry for a domain that no longer exists

_LETTER = {b"n"[0]: PERM_NONE, b"r"[0]: PERM_READ, b"w"[0]: PERM_WRITE,
           b"b"[0]: PERM_READ | PERM_WRITE}
_TO_LETTER = {v: chr(k) for k, v in _LETTER.items()}


class Perm(NamedTuple):
    perms: int
    domid: int


Perms = tuple[Perm, ...]


def _strtol(text: bytes) -> int | None:
    """C's strtol(text, &end, 0) with *end required to be NUL: leading
    blanks and a sign allowed, 0x for hex, a leading 0 for octal. None
    where C would leave characters unread (or read none)."""
    s = text.decode("latin-1").lstrip(" \t\n\v\f\r")
    sign = 1
    if s[:1] in ("+", "-"):
        sign = -1 if s[0] == "-" else 1
        s = s[1:]
    base = 10
    if s[:2].lower() == "0x" and len(s) > 2:
        base, s = 16, s[2:]
    elif s[:1] == "0" and len(s) > 1:
        base, s = 8, s[1:]
    try:
        if not s or not all(c.isascii() and c.isalnum() for c in s):
            return None
        value = int(s, base)
    except ValueError:
        return None
    value = max(min(sign * value, (1 << 63) - 1), -(1 << 63))
    return value


def parse_perms(strings: list[bytes]) -> Perms:
    """xs_strings_to_perms(): each string a letter and a domid."""
    out = []
    for s in strings:
        if not s or s[0] not in _LETTER:
            raise XsError(EINVAL)
        if len(s) == 1:
            raise XsError(EINVAL)
        domid = _strtol(s[1:])
        if domid is None:
            raise XsError(EINVAL)
        out.append(Perm(_LETTER[s[0]], domid & 0xFFFFFFFF))
    return tuple(out)


def format_perm(p: Perm) -> bytes:
    domid = p.domid - (1 << 32) if p.domid & 0x80000000 else p.domid
    return f"{_TO_LETTER[p.perms & ~PERM_IGNORE & 0x3]}{domid}".encode()


def format_perms(perms: Perms) -> bytes:
    """GET_PERMS' answer: each entry with a NUL."""
    return b"".join(format_perm(p) + b"\0" for p in perms)


def perm_for_conn(conn_id: int, privileged: bool, target: int | None, perms: Perms) -> int:
    """What a connection may do to a node with ``perms``: everything for
    the owner, dom0 and the toolstack (and a domain's device model on the
    domain it serves), else its own entry, else the default."""
    everything = PERM_READ | PERM_WRITE | PERM_OWNER
    owner = perms[0].domid
    if privileged or owner == conn_id or (target is not None and owner == target):
        return everything
    for p in perms[1:]:
        if not p.perms & PERM_IGNORE and (p.domid == conn_id or
                                          (target is not None and p.domid == target)):
            return p.perms & everything
    return perms[0].perms & everything
