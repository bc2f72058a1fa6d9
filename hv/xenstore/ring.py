"""The two byte rings of a xenstore_domain_interface page, from either end:
the guest produces requests and consumes replies, xenstored the mirror.
Indices are free-running 32-bit counters masked on access; a producer more
than a ring ahead of its consumer is a broken ring (None here)."""

from __future__ import annotations

import struct

from hv.public.io.xs_wire import XENSTORE_RING_SIZE, XenstoreDomainInterface

_U32 = struct.Struct("<I")
MASK = XENSTORE_RING_SIZE - 1
REQ = (XenstoreDomainInterface.offsetof("req"), XenstoreDomainInterface.offsetof("req_cons"),
       XenstoreDomainInterface.offsetof("req_prod"))
RSP = (XenstoreDomainInterface.offsetof("rsp"), XenstoreDomainInterface.offsetof("rsp_cons"),
       XenstoreDomainInterface.offsetof("rsp_prod"))
IDX_OFF = REQ[1]


def _indices(page, ring) -> tuple[int, int] | None:
    cons = _U32.unpack_from(page, ring[1])[0]
    prod = _U32.unpack_from(page, ring[2])[0]
    if (prod - cons) & 0xFFFFFFFF > XENSTORE_RING_SIZE:
        return None
    return cons, prod


def available(page, ring) -> int | None:
    """Bytes waiting to be consumed (None: the indices are broken)."""
    idx = _indices(page, ring)
    return None if idx is None else (idx[1] - idx[0]) & 0xFFFFFFFF


def put(page, ring, data: bytes) -> int | None:
    """Produce as much of ``data`` as fits; how much went in."""
    idx = _indices(page, ring)
    if idx is None:
        return None
    cons, prod = idx
    chunk = data[:XENSTORE_RING_SIZE - ((prod - cons) & 0xFFFFFFFF)]
    base = ring[0]
    for i, byte in enumerate(chunk):
        page[base + ((prod + i) & MASK)] = byte
    _U32.pack_into(page, ring[2], (prod + len(chunk)) & 0xFFFFFFFF)
    return len(chunk)


def take(page, ring, limit: int = XENSTORE_RING_SIZE) -> bytes | None:
    """Consume up to ``limit`` bytes."""
    idx = _indices(page, ring)
    if idx is None:
        return None
    cons, prod = idx
    count = min(limit, (prod - cons) & 0xFFFFFFFF)
    base = ring[0]
    data = bytes(page[base + ((cons + i) & MASK)] for i in range(count))
    _U32.pack_into(page, ring[1], (cons + count) & 0xFFFFFFFF)
    return data
