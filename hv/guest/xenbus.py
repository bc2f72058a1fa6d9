"""The kernel's xenbus client (Linux's drivers/xen/xenbus/xenbus_comms.c
and xenbus_xs.c): requests go into the request ring of the
xenstore_domain_interface page start_info names, in as many pieces as the
1024-byte ring needs, with an event on the store channel; replies and watch
events come back through the response ring when that channel fires.

Everything here is plain data (bytes, ints, dicts), so that a snapshot
carries a request half sent or a reply not yet read."""

from __future__ import annotations

from hv.public.io.xs_wire import XS_WATCH_EVENT
from hv.xenstore import ring
from hv.xenstore.protocol import Parser, ProtocolError, encode, get_strings


class Xenbus:
    def __init__(self, port: int, mfn: int):
        self.port = port
        self.mfn = mfn
        self.next_req_id = 1
        self.unsent = b""                     # request bytes not yet in the ring
        self.replies: dict[int, tuple[int, bytes]] = {}
        self.events: list[tuple[bytes, bytes]] = []
        self.parser = Parser()
        self.broken = False                   # the store spoke garbage

    def request(self, type_: int, payload: bytes) -> int:
        req_id = self.next_req_id
        self.next_req_id = (self.next_req_id + 1) & 0xFFFFFFFF or 1
        self.unsent += encode(type_, req_id, 0, payload)
        return req_id

    def write(self, page: bytearray) -> bool:
        """Put as much of what waits into the request ring as fits; True
        when anything went in."""
        if not self.unsent:
            return False
        sent = ring.put(page, ring.REQ, self.unsent)
        if not sent:
            return False
        self.unsent = self.unsent[sent:]
        return True

    def read(self, page: bytearray) -> bool:
        """Take what the store wrote; True when the ring moved."""
        data = ring.take(page, ring.RSP)
        if not data:
            return False
        try:
            messages = self.parser.feed(data)
        except ProtocolError:
            self.broken = True
            return True
        for msg in messages:
            if msg.type == XS_WATCH_EVENT:
                strings = get_strings(msg.payload)
                if len(strings) >= 2:
                    self.events.append((strings[0], strings[1]))
            else:
                self.replies[msg.req_id] = (msg.type, msg.payload)
        return True
