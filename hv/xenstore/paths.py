"""Node names as xenstored takes them: the characters allowed, no empty
component, no trailing slash, a length limit that leaves out a domain's
own /local/domain/<id>/ prefix, and relative names under the connection's
home."""

from __future__ import annotations

import re

_VALID = re.compile(rb"[A-Za-z0-9\-/_@]*")
# sscanf("%5u") takes a sign too: "-1" counts as a domain's prefix.
_LOCAL = re.compile(rb"/local/domain/(?:[-+]\d{1,4}|\d{1,5})/")


def is_valid_nodename(name: bytes, path_max: int) -> bool:
    """is_valid_nodename(): an absolute name Xen would store."""
    if not name.startswith(b"/"):
        return False
    if name.endswith(b"/") and name != b"/":
        return False
    if b"//" in name:
        return False
    m = _LOCAL.match(name)
    local_off = m.end() if m else 0
    if len(name) > local_off + path_max:
        return False
    return _VALID.fullmatch(name) is not None


def canonicalize(home: bytes, name: bytes) -> bytes:
    """A relative name is under ``home``; absolute and special (@) names
    stay as they are."""
    if name.startswith((b"/", b"@")):
        return name
    return home + b"/" + name


def get_parent(name: bytes) -> bytes:
    slash = name.rfind(b"/", 1)
    return name[:slash] if slash > 0 else b"/"


def basename(name: bytes) -> bytes:
    return name[name.rfind(b"/") + 1:]


def child_name(parent: bytes, child: bytes) -> bytes:
    return parent + b"/" + child if parent != b"/" else b"/" + child


def is_child(child: bytes, parent: bytes) -> bool:
    """``child`` is ``parent`` or below it."""
    if parent == b"/":
        return True
    if not child.startswith(parent):
        return False
    return len(child) == len(parent) or child[len(parent)] == 0x2F


def domain_path(domid: int) -> bytes:
    return b"/local/domain/%d" % domid
