"""The network frontend (Linux's drivers/net/xen-netfront.c, and the older
flipping netfront of seed 001): a transmit ring, a receive ring and one
event channel per vif, under the guest's small IP stack.

At the backend's InitWait it grants both ring pages, allocates the channel
and chooses how it receives: by copy when the backend offers it (the
default), or by page flipping when its kernel was started with
``xen_netfront.rx_flip=1`` and the backend offers ``feature-rx-flip``. It
publishes its rings and choice and goes Connected.

Receive buffers are posted ahead of time. For copying they are pages
granted writable to the backend; for flipping the guest first gives each
page's frame back to Xen (so a frame arriving by transfer keeps it within
its reservation) and posts a GTF_accept_transfer entry naming the page;
the frame that comes in is put at that page in the kernel's P2M.

Frames to send come from the IP stack; each goes out in a page granted
read-only, and the grant ends with its response.

After a restore (netfront_resume) the rings, their grants and the channel,
which went with the old domain, are let go of, and the device connects to
the new backend as it did at first; frames that were in flight are lost,
as on a cable pulled out and plugged in again, and the IP stack (its
address, ARP cache, sockets) goes on as it was.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hv.guest.ether import mac_from_str
from hv.guest.netstack import NetStack
from hv.guest.ring import RingEnd, shared_ring_init
from hv.guest.xenbus_probe import Gather, XenbusDevice, as_int, xs_write
from hv.public.io.netif import (
    NETIF_RSP_OKAY, RX_REQUEST, RX_RESPONSE, RX_SLOT, TX_REQUEST, TX_RESPONSE, TX_SLOT,
)
from hv.public.io.xenbus import (
    XenbusStateClosed, XenbusStateClosing, XenbusStateConnected, XenbusStateInitialising,
    XenbusStateInitWait,
)
from hv.public.memory import (
    XENMEM_decrease_reservation, XENMEM_populate_physmap, XenMemoryReservation,
)
from hv.public.xen import DOMID_SELF, HYPERVISOR_memory_op, PAGE_SIZE

if TYPE_CHECKING:
    from hv.xen.domain import VCPU

RX_BUFFERS = 64          # receive buffers kept posted
TX_PAGES = 64            # pages frames are sent from
# The frontend's CPU cost per frame it sends.
TX_PACKET_NS = 1_000
INVALID_P2M_ENTRY = (1 << 64) - 1
TIMER_SLACK = 1_000


class Netfront(XenbusDevice):
    devclass = "vif"

    def __init__(self, k, nodename, otherend, otherend_id):
        super().__init__(k, nodename, otherend, otherend_id)
        self.tx = RingEnd(front=True, entry_size=TX_SLOT)
        self.rx = RingEnd(front=True, entry_size=RX_SLOT)
        self.tx_pfn = self.rx_pfn = 0
        self.tx_ref = self.rx_ref = -1
        self.port = 0
        self.flip = False
        self.stack: NetStack | None = None
        self.tx_free: list[int] = []
        self.tx_inflight: dict[int, tuple[int, int]] = {}    # id -> (pfn, gref)
        self.rx_posted: dict[int, tuple[int, int]] = {}      # id -> (pfn, gref)
        self.rx_spare: list[int] = []                        # pages not posted
        self.pages: list[int] = []
        self.backlog: list[bytes] = []                       # frames waiting for a slot
        self.next_id = 0
        self.job = None
        self.failed = ""
        self.stats = {"tx_packets": 0, "tx_bytes": 0, "tx_errors": 0, "rx_packets": 0,
                      "rx_bytes": 0, "rx_errors": 0}

    @property
    def vdev(self) -> str:
        return f"eth{self.devid}"

    # ------------------------------------------------------------ xenbus
    def probe(self, v: "VCPU") -> None:
        Gather.read(self.k, v, {"mac": f"{self.nodename}/mac", "ip": f"{self.otherend}/ip"},
                    self._addresses)

    def _addresses(self, v: "VCPU", values: dict) -> None:
        try:
            mac = mac_from_str((values["mac"] or b"").decode())
        except ValueError:
            self.fatal(v, f"bad mac {values['mac']!r}")
            return
        ips = (values["ip"] or b"").decode(errors="replace").split()
        self.stack = NetStack(mac, ips[0] if ips else None)

    def otherend_changed(self, v: "VCPU", state: int) -> None:
        if state == XenbusStateInitWait and self.state == XenbusStateInitialising:
            be = self.otherend
            Gather.read(self.k, v, {"copy": f"{be}/feature-rx-copy", "flip": f"{be}/feature-rx-flip"},
                        self._talk_to_backend)
        elif state in (XenbusStateClosing, XenbusStateClosed) and self.state != XenbusStateClosed:
            self.close(v)
            self.failed = self.failed or "the backend closed the device"
            self.switch_state(v, XenbusStateClosed)

    def _talk_to_backend(self, v: "VCPU", features: dict) -> None:
        if self.removed or self.stack is None:
            return
        k = self.k
        can_flip = as_int(features["flip"], 0) == 1
        can_copy = as_int(features["copy"], 0) == 1
        self.flip = can_flip and (k.cmdline_has("xen_netfront.rx_flip=1") or not can_copy)
        self.pages = k.alloc_pages(2 + TX_PAGES + RX_BUFFERS)
        self.tx_pfn, self.rx_pfn = self.pages[:2]
        self.tx_free = self.pages[2:2 + TX_PAGES]
        self.rx_spare = self.pages[2 + TX_PAGES:]
        for pfn in (self.tx_pfn, self.rx_pfn):
            page = k.page(pfn)
            page[:] = bytes(PAGE_SIZE)
            shared_ring_init(page)
        self.tx = RingEnd(front=True, entry_size=TX_SLOT)
        self.rx = RingEnd(front=True, entry_size=RX_SLOT)
        be = self.otherend_id
        self.tx_ref = k.grant_access(v, be, self.tx_pfn, readonly=False)
        self.rx_ref = k.grant_access(v, be, self.rx_pfn, readonly=False)
        self.port = k.alloc_unbound(v, be)
        k.irqs[self.port] = self
        self._post_rx(v)
        node = self.nodename
        for name, value in (("tx-ring-ref", self.tx_ref), ("rx-ring-ref", self.rx_ref),
                            ("event-channel", self.port), ("request-rx-copy", 0 if self.flip else 1),
                            ("feature-rx-notify", 1), ("feature-sg", 0)):
            xs_write(k, v, f"{node}/{name}", value)
        self.switch_state(v, XenbusStateConnected)
        self.log(v, "connected", f"{self.vdev} {self.stack.ip or 'no address'}, "
                                 f"rx by {'flip' if self.flip else 'copy'}")

    def close(self, v: "VCPU") -> None:
        if self.port:
            self.k.close_port(v, self.port)
            self.port = 0
        self._release(v)

    def resume_driver(self, v: "VCPU") -> None:
        self.port = 0
        self.failed = ""
        self._release(v)

    def _release(self, v: "VCPU") -> None:
        k = self.k
        granted = {pfn: ref for pfn, ref in self.tx_inflight.values()}
        if self.tx_ref >= 0:
            granted[self.tx_pfn] = self.tx_ref
            granted[self.rx_pfn] = self.rx_ref
        for pfn, ref in granted.items():
            k.end_access(v, ref, pfn)
        frameless = []
        for pfn, ref in self.rx_posted.values():
            if self.flip:
                frame = k.gnttab.end_foreign_transfer(ref)
                self._refill(pfn, frame)
                if not frame:
                    frameless.append(pfn)
                k.free_pages([pfn])
            else:
                k.end_access(v, ref, pfn)
        if frameless:
            # Pages whose frames we gave up for flipping get frames again.
            done, out = k.hypercall(v, HYPERVISOR_memory_op, XENMEM_populate_physmap,
                                    XenMemoryReservation(extent_start=tuple(frameless),
                                                         nr_extents=len(frameless), domid=DOMID_SELF))
            for pfn, mfn in zip(frameless[:max(done, 0)], out.extent_start if done > 0 else ()):
                k.p2m_set(pfn, mfn)
        k.free_pages(self.tx_free + self.rx_spare)
        self.tx_inflight.clear()
        self.rx_posted.clear()
        self.tx_free, self.rx_spare, self.pages = [], [], []
        self.tx_ref = self.rx_ref = -1

    # ------------------------------------------------------------ receive buffers
    def _post_rx(self, v: "VCPU") -> None:
        """Keep the receive ring full of buffers."""
        if not self.rx_spare or self.tx_ref < 0:
            return
        k = self.k
        page = k.page(self.rx_pfn)
        room = self.rx.free()
        pfns = [self.rx_spare.pop() for _ in range(min(room, len(self.rx_spare)))]
        if self.flip:
            pfns = self._give_back(v, pfns)
        for pfn in pfns:
            req_id = self._new_id()
            if self.flip:
                ref = k.grant_table(v).grant_foreign_transfer(self.otherend_id, pfn)
            else:
                ref = k.grant_access(v, self.otherend_id, pfn, readonly=False)
            self.rx_posted[req_id] = (pfn, ref)
            self.rx.produce(page, RX_REQUEST.pack(req_id, ref))
        if pfns and self.rx.push(page):
            k.notify(v, self.port)

    def _give_back(self, v: "VCPU", pfns: list[int]) -> list[int]:
        """Flipping: each buffer's frame goes back to Xen before the buffer
        is posted; the pages whose frames Xen took."""
        k = self.k
        mfns = tuple(k.p2m_get(pfn) for pfn in pfns)
        done, _ = k.hypercall(v, HYPERVISOR_memory_op, XENMEM_decrease_reservation,
                              XenMemoryReservation(extent_start=mfns, nr_extents=len(mfns),
                                                   domid=DOMID_SELF))
        done = max(done, 0)
        for pfn in pfns[:done]:
            k.p2m_set(pfn, INVALID_P2M_ENTRY)
        self.rx_spare.extend(pfns[done:])
        return pfns[:done]

    def _refill(self, pfn: int, mfn: int) -> None:
        if mfn:
            self.k.p2m_set(pfn, mfn)

    def _new_id(self) -> int:
        """A request id not in use on either ring (a backend may sit on one
        for ever; the 16-bit ids must not wrap onto it)."""
        while True:
            self.next_id = (self.next_id + 1) & 0xFFFF
            if self.next_id not in self.tx_inflight and self.next_id not in self.rx_posted:
                return self.next_id

    # ------------------------------------------------------------ events
    def interrupt(self, v: "VCPU", port: int) -> None:
        if self.tx_ref < 0:
            return
        self._tx_done(v)
        if self.tx_ref >= 0:
            self._rx_done(v)
        self.send(v, [])

    def _tx_done(self, v: "VCPU") -> None:
        k = self.k
        page = k.page(self.tx_pfn)
        ring = self.tx
        while True:
            if ring.response_prod_overflow(page):
                self.fatal(v, "the backend's tx response producer ran past the ring")
                return
            while ring.unconsumed(page):
                req_id, status = TX_RESPONSE.unpack_from(ring.consume(page))
                sent = self.tx_inflight.pop(req_id, None)
                if sent is None:
                    self.stats["tx_errors"] += 1
                    continue
                pfn, ref = sent
                k.end_access(v, ref)
                self.tx_free.append(pfn)
                if status != NETIF_RSP_OKAY:
                    self.stats["tx_errors"] += 1
            if not ring.final_check(page):
                break

    def _rx_done(self, v: "VCPU") -> None:
        k = self.k
        page = k.page(self.rx_pfn)
        ring = self.rx
        now = k.now(v)
        replies = []
        while True:
            if ring.response_prod_overflow(page):
                self.fatal(v, "the backend's rx response producer ran past the ring")
                return
            while ring.unconsumed(page):
                req_id, offset, _flags, status = RX_RESPONSE.unpack_from(ring.consume(page))
                posted = self.rx_posted.pop(req_id, None)
                if posted is None:
                    self.stats["rx_errors"] += 1
                    continue
                pfn, ref = posted
                if self.flip:
                    mfn = k.gnttab.end_foreign_transfer(ref)
                    self._refill(pfn, mfn)
                    if not mfn:
                        # No frame came: the page is still given away; post it again.
                        self.rx_spare.append(pfn)
                        self.stats["rx_errors"] += 1
                        continue
                else:
                    k.end_access(v, ref)
                if status > 0 and offset + status <= PAGE_SIZE:
                    frame = bytes(k.page(pfn, False)[offset:offset + status])
                    self.stats["rx_packets"] += 1
                    self.stats["rx_bytes"] += status
                    replies += self.stack.receive(frame, now)
                else:
                    self.stats["rx_errors"] += 1
                self.rx_spare.append(pfn)
            if not ring.final_check(page):
                break
        self._post_rx(v)
        if replies:
            self.send(v, replies)

    # ------------------------------------------------------------ transmit
    def send(self, v: "VCPU", frames: list[bytes]) -> int:
        """Queue frames and put out as many as the ring and the pages take;
        the CPU time that cost."""
        self.backlog.extend(frames)
        if self.tx_ref < 0 or not self.backlog:
            return 0
        k = self.k
        page = k.page(self.tx_pfn)
        sent = 0
        while self.backlog and self.tx_free and not self.tx.full():
            frame = self.backlog.pop(0)
            if len(frame) > PAGE_SIZE:
                self.stats["tx_errors"] += 1
                continue
            pfn = self.tx_free.pop()
            k.page(pfn)[:len(frame)] = frame
            ref = k.grant_access(v, self.otherend_id, pfn, readonly=True)
            req_id = self._new_id()
            self.tx_inflight[req_id] = (pfn, ref)
            self.tx.produce(page, TX_REQUEST.pack(ref, 0, 0, req_id, len(frame)))
            self.stats["tx_packets"] += 1
            self.stats["tx_bytes"] += len(frame)
            sent += 1
        if sent and self.tx.push(page):
            k.notify(v, self.port)
        return sent * TX_PACKET_NS


# ---------------------------------------------------------------- programs
PING_PAYLOAD = 56
PING_WAIT_NS = 1_000_000_000      # how long ping waits for the last reply
UDP_BACKLOG = 64


class NetJob:
    """A program's network operation in progress: ping, or a UDP sender
    or echo server."""

    def __init__(self, kind: str, started: int, **kw):
        self.kind = kind
        self.started = started
        self.sent = 0
        self.received = 0
        self.seen = 0                 # echo replies already reported
        self.next_at = started
        self.rtts: list[int] = []
        self.last = started
        self.__dict__.update(kw)


def program_op(k, v: "VCPU", kind: str, *args):
    dev = k.device("vif", "eth0")
    if dev is None:
        return k.wait(v)
    if isinstance(dev, str):
        k.console_write(v, f"{kind}: eth0: {dev}\n")
        return 0, True
    if dev.stack is None or dev.stack.ip is None:
        k.console_write(v, f"{kind}: eth0 has no address (set ip= on the vif)\n")
        return 0, True
    # ARP's retries are due whenever the program looks.
    dev.send(v, dev.stack.poll(k.now(v) + TIMER_SLACK))
    return {"ping": _ping, "udp-send": _udp_send, "udp-echo": _udp_echo}[kind](k, v, dev, *args)


def _wait_until(k, v: "VCPU", dev: Netfront, when: int, cost: int):
    """Sleep until ``when`` (or the stack's next ARP retry) unless an event
    comes first."""
    if cost:
        return k.wait(v, cost)
    retry = dev.stack.next_deadline()
    if retry is not None:
        when = min(when, retry)
    from hv.public.xen import HYPERVISOR_set_timer_op
    k.hypercall(v, HYPERVISOR_set_timer_op, when)
    return k.wait(v)


def _ping(k, v: "VCPU", dev: Netfront, dst: str, count: int, interval: int):
    stack = dev.stack
    # A timer may fire a hair before the guest's own clock reads its deadline.
    now = k.now(v) + TIMER_SLACK
    job = dev.job
    if job is None:
        job = dev.job = NetJob("ping", now, dst=dst, count=count, interval=interval,
                               ident=(k.d.domid << 8 | dev.devid) & 0xFFFF, deadline=0)
        job.seen = len(stack.echo_replies)
        k.console_write(v, f"PING {dst} ({dst}) {PING_PAYLOAD}({PING_PAYLOAD + 28}) bytes of data.\n")
    for reply in stack.echo_replies[job.seen:]:
        if reply.ident == job.ident and reply.src_ip == dst:
            job.received += 1
            job.rtts.append(reply.rtt_ns)
            k.console_write(v, f"{reply.size + 8} bytes from {dst}: icmp_seq={reply.seq} "
                               f"ttl={reply.ttl} time={reply.rtt_ns / 1e6:.3f} ms\n")
    job.seen = len(stack.echo_replies)
    cost = 0
    if job.sent < count and now >= job.next_at:
        job.sent += 1
        payload = now.to_bytes(8, "little") + bytes(range(16, 16 + PING_PAYLOAD - 8))
        cost = dev.send(v, stack.send_echo(dst, job.ident, job.sent, payload, now))
        job.last = now
        job.next_at = now + interval
        job.deadline = now + PING_WAIT_NS
    if job.sent >= count and (job.received >= count or now >= job.deadline):
        dev.job = None
        _ping_summary(k, v, job, now)
        return 0, True
    return _wait_until(k, v, dev, job.next_at if job.sent < count else job.deadline, cost)


def _ping_summary(k, v: "VCPU", job: NetJob, now: int) -> None:
    loss = 100 * (job.sent - job.received) // job.sent if job.sent else 0
    elapsed_ms = (job.last - job.started) // 1_000_000
    lines = [f"--- {job.dst} ping statistics ---",
             f"{job.sent} packets transmitted, {job.received} received, {loss}% packet loss, "
             f"time {elapsed_ms}ms"]
    if job.rtts:
        ms = [r / 1e6 for r in job.rtts]
        avg = sum(ms) / len(ms)
        mdev = (sum((x - avg) ** 2 for x in ms) / len(ms)) ** 0.5
        lines.append(f"rtt min/avg/max/mdev = {min(ms):.3f}/{avg:.3f}/{max(ms):.3f}/{mdev:.3f} ms")
    k.console_write(v, "\n".join(lines) + "\n")


def _udp_send(k, v: "VCPU", dev: Netfront, dst: str, port: int, count: int, size: int):
    stack = dev.stack
    now = k.now(v)
    job = dev.job
    if job is None:
        sport = 40000 + dev.devid
        if sport not in stack.sockets:
            stack.udp_bind(sport)
        job = dev.job = NetJob("udp-send", now, dst=dst, port=port, count=count, size=size,
                               sport=sport)
    while stack.udp_recv(job.sport) is not None:
        job.received += 1
    cost = 0
    resolved = dst in stack.arp_cache
    while job.sent < count and len(dev.backlog) < UDP_BACKLOG and (resolved or not job.sent):
        payload = job.sent.to_bytes(4, "big") + bytes(max(0, size - 4))
        cost += dev.send(v, stack.udp_send(dst, job.sport, port, payload[:size], now))
        job.sent += 1
        job.last = now
    if job.sent >= count and not dev.backlog and not dev.tx_inflight and (
            job.received >= count or now >= job.last + PING_WAIT_NS):
        dev.job = None
        secs = max(now - job.started, 1) / 1e9
        k.console_write(v, f"udp-send: {job.sent} datagrams of {size} bytes to {dst}:{port} in "
                           f"{secs:.6g} s: {job.sent / secs:.0f} datagrams/s, "
                           f"{job.sent * size * 8 / secs / 1e6:.1f} Mbit/s; "
                           f"{job.received} came back\n")
        return 0, True
    return _wait_until(k, v, dev, now + PING_WAIT_NS, cost)


def _udp_echo(k, v: "VCPU", dev: Netfront, port: int, count: int):
    stack = dev.stack
    now = k.now(v)
    job = dev.job
    if job is None:
        if port not in stack.sockets:
            stack.udp_bind(port)
        job = dev.job = NetJob("udp-echo", now, port=port, count=count, first=0)
    cost = 0
    while len(dev.backlog) < UDP_BACKLOG:
        got = stack.udp_recv(port)
        if got is None:
            break
        if not job.received:
            job.first = got.received_ns
        job.received += 1
        job.last = got.received_ns
        cost += dev.send(v, stack.udp_send(got.src_ip, port, got.sport, got.payload, now))
    if job.received >= count:
        dev.job = None
        secs = max(job.last - job.first, 1) / 1e9
        k.console_write(v, f"udp-echo: {job.received} datagrams echoed on port {port} in "
                           f"{secs:.6g} s: {job.received / secs:.0f} datagrams/s\n")
        return 0, True
    return k.wait(v, cost)
