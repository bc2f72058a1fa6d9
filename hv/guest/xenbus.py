"""The kernel's xenbus client (Linux's drivers/xen/xenbus/xenbus_comms.c
and xenbus_xs.c): requests go into the request ring of the
xenstore_domain_interface page, in as many pieces as the 1024-byte ring
needs, with an event on the store channel; replies and watch events come
back through the response ring when that channel fires.

Drivers ask asynchronously: a request may name what to call with its reply
(``then``), and a watch what to call with each event. Both are bound
methods of plain objects, so a snapshot carries a request half sent, a
reply not yet read, and who waits for it.

It remembers each watch it registered (token and path) and which requests
still wait for their reply: what a suspend waits to settle, and what a
kernel resumed in a new domain registers again with its new store."""

from __future__ import annotations

from hv.public.io.xs_wire import XS_ERROR, XS_UNWATCH, XS_WATCH, XS_WATCH_EVENT
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
        self.waiting: dict[int, tuple] = {}   # req_id -> (then, ctx)
        self.watchers: dict[bytes, object] = {}   # token -> what to call
        self.watches: dict[bytes, bytes] = {}     # token -> path, as registered
        self.in_flight: set[int] = set()          # req_ids still without a reply

    def request(self, type_: int, payload: bytes, then=None, ctx: tuple = ()) -> int:
        req_id = self.next_req_id
        self.next_req_id = (self.next_req_id + 1) & 0xFFFFFFFF or 1
        self.unsent += encode(type_, req_id, 0, payload)
        self.in_flight.add(req_id)
        if then is not None:
            self.waiting[req_id] = (then, ctx)
        if type_ in (XS_WATCH, XS_UNWATCH):
            strings = get_strings(payload)
            if len(strings) >= 2 and type_ == XS_WATCH:
                self.watches[strings[1]] = strings[0]
            elif len(strings) >= 2:
                self.watches.pop(strings[1], None)
        return req_id

    @property
    def busy(self) -> bool:
        """A request not yet in the ring, or one the store has not answered."""
        return bool(self.unsent or self.in_flight)

    def forget_watch(self, token: bytes) -> None:
        """Drop a watch the store no longer has (it went with the old
        domain's connection)."""
        self.watches.pop(token, None)
        self.watchers.pop(token, None)

    def reconnect(self, port: int, mfn: int) -> None:
        """xs_resume(): the ring and channel of the store in a new domain.
        Nothing is half sent or unanswered (the suspend waited for that);
        a message half read from the old ring is dropped with it."""
        self.port = port
        self.mfn = mfn
        self.parser = Parser()
        self.in_flight.clear()

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

    def read(self, page: bytearray) -> tuple[bool, list]:
        """Take what the store wrote: whether the ring moved, and the calls
        it asks for (a reply someone waits for, an event someone watches),
        in order, for the kernel to make once the rings are settled."""
        data = ring.take(page, ring.RSP)
        if not data:
            return False, []
        try:
            messages = self.parser.feed(data)
        except ProtocolError:
            self.broken = True
            return True, []
        calls = []
        for msg in messages:
            if msg.type == XS_WATCH_EVENT:
                strings = get_strings(msg.payload)
                if len(strings) < 2:
                    continue
                path, token = strings[0], strings[1]
                watcher = self.watchers.get(token)
                if watcher is not None:
                    calls.append((watcher, (path,)))
                else:
                    self.events.append((path, token))
            elif msg.req_id in self.waiting:
                self.in_flight.discard(msg.req_id)
                then, ctx = self.waiting.pop(msg.req_id)
                ok = msg.type != XS_ERROR
                calls.append((then, (ok, msg.payload if ok else msg.payload.rstrip(b"\0")) + ctx))
            else:
                self.in_flight.discard(msg.req_id)
                self.replies[msg.req_id] = (msg.type, msg.payload)
        return True, calls
