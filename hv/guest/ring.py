"""The shared I/O ring of xen/include/public/io/ring.h, knowing nothing of
what travels on it: a page that starts with the four shared indices
(req_prod, req_event, rsp_prod, rsp_event), 48 bytes of private area and
padding, then the slots at offset 64, as many as fit rounded down to a
power of two. Indices run free (32-bit, wrapping) and are masked only to
find a slot.

Each end keeps its private index apart from the shared ones: the frontend
its req_prod_pvt and rsp_cons, the backend its rsp_prod_pvt and req_cons.
The backend is the frontend seen in a mirror: the same code with requests
and responses swapped. Ends keep plain ints, so a snapshot carries them;
the page is fetched from whoever owns the bytes each time."""

from __future__ import annotations

import struct

_U32 = struct.Struct("<I")
REQ_PROD, REQ_EVENT, RSP_PROD, RSP_EVENT = 0, 4, 8, 12
PVT = 16
SLOTS = 64
WRAP = 0xFFFFFFFF


def ring_size(page_size: int, entry_size: int) -> int:
    """__RING_SIZE(): the largest power of two of entries that fit."""
    n = (page_size - SLOTS) // entry_size
    return 1 << (n.bit_length() - 1) if n else 0


def shared_ring_init(page: bytearray) -> None:
    """SHARED_RING_INIT(): both producers at 0, both events at 1."""
    page[:SLOTS] = bytes(SLOTS)
    _U32.pack_into(page, REQ_EVENT, 1)
    _U32.pack_into(page, RSP_EVENT, 1)


def get(page, offset: int) -> int:
    return _U32.unpack_from(page, offset)[0]


def _set(page, offset: int, value: int) -> None:
    _U32.pack_into(page, offset, value & WRAP)


class RingEnd:
    """One end of a ring. ``front`` produces requests and consumes
    responses; the back end the other way round."""

    __slots__ = ("front", "entry_size", "nr_ents", "prod_pvt", "cons")

    def __init__(self, front: bool, entry_size: int, page_size: int = 4096):
        self.front = front
        self.entry_size = entry_size
        self.nr_ents = ring_size(page_size, entry_size)
        self.prod_pvt = 0          # req_prod_pvt (front) / rsp_prod_pvt (back)
        self.cons = 0              # rsp_cons (front) / req_cons (back)

    # which shared index this end produces into and watches
    @property
    def _prod(self) -> int:
        return REQ_PROD if self.front else RSP_PROD

    @property
    def _their_prod(self) -> int:
        return RSP_PROD if self.front else REQ_PROD

    @property
    def _their_event(self) -> int:
        return REQ_EVENT if self.front else RSP_EVENT

    @property
    def _my_event(self) -> int:
        return RSP_EVENT if self.front else REQ_EVENT

    def attach(self, page) -> None:
        """FRONT_RING_ATTACH / BACK_RING_ATTACH: start from the page's
        indices (a ring taken over, say after restore)."""
        if self.front:
            self.prod_pvt = get(page, REQ_PROD)
            self.cons = get(page, RSP_PROD)
        else:
            self.prod_pvt = get(page, RSP_PROD)
            self.cons = get(page, REQ_PROD)

    def slot(self, idx: int) -> int:
        """Byte offset of the slot index ``idx`` lands in."""
        return SLOTS + (idx & (self.nr_ents - 1)) * self.entry_size

    # ------------------------------------------------------------ producing
    def free(self) -> int:
        """RING_FREE_REQUESTS (front): slots not holding an unanswered request."""
        return self.nr_ents - ((self.prod_pvt - self.cons) & WRAP)

    def full(self) -> bool:
        return self.free() == 0

    def produce(self, page, entry: bytes) -> int:
        """Write the next entry at the private producer index; it is not
        seen until pushed. Returns the index used."""
        if len(entry) > self.entry_size:
            raise ValueError(f"an entry of {len(entry)} bytes in {self.entry_size}-byte slots")
        idx = self.prod_pvt
        at = self.slot(idx)
        page[at:at + len(entry)] = entry
        self.prod_pvt = (idx + 1) & WRAP
        return idx

    def push(self, page) -> bool:
        """RING_PUSH_*_AND_CHECK_NOTIFY: publish the private producer and
        say whether the other end asked to be told."""
        old = get(page, self._prod)
        new = self.prod_pvt
        _set(page, self._prod, new)
        event = get(page, self._their_event)
        return ((new - event) & WRAP) < ((new - old) & WRAP)

    # ------------------------------------------------------------ consuming
    def unconsumed(self, page) -> int:
        """RING_HAS_UNCONSUMED_RESPONSES (front) / _REQUESTS (back): the
        back end never counts more requests than it has room to answer."""
        waiting = (get(page, self._their_prod) - self.cons) & WRAP
        if self.front:
            return waiting
        room = self.nr_ents - ((self.cons - self.prod_pvt) & WRAP)
        return min(waiting, room)

    def consume(self, page) -> bytes:
        """The entry at the consumer index, and move past it."""
        at = self.slot(self.cons)
        self.cons = (self.cons + 1) & WRAP
        return bytes(page[at:at + self.entry_size])

    def request_cons_overflow(self) -> bool:
        """RING_REQUEST_CONS_OVERFLOW (back), asked before taking the next
        request: every slot already holds a request not yet answered, so a
        frontend claiming more is lying about its producer index."""
        return not self.front and ((self.cons - self.prod_pvt) & WRAP) >= self.nr_ents

    def request_prod_overflow(self, page) -> bool:
        """RING_REQUEST_PROD_OVERFLOW (back): the frontend's producer claims
        more requests than the ring has slots beyond what we answered."""
        return ((get(page, REQ_PROD) - self.prod_pvt) & WRAP) > self.nr_ents

    def response_prod_overflow(self, page) -> bool:
        """RING_RESPONSE_PROD_OVERFLOW (front): the backend claims more
        responses than the ring holds."""
        return ((get(page, RSP_PROD) - self.cons) & WRAP) > self.nr_ents

    def final_check(self, page) -> bool:
        """RING_FINAL_CHECK_FOR_*: before sleeping, ask to be told of the
        next entry, then look once more (one may have come meanwhile)."""
        if self.unconsumed(page):
            return True
        _set(page, self._my_event, self.cons + 1)
        return bool(self.unconsumed(page))
