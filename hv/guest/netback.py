"""The network backend (Linux's drivers/net/xen-netback, and the vif
hotplug script's work): one vif per frontend, on a bridge in the backend
domain.

Transmit (guest to bridge): each request's data is copied out of the
guest's granted page into the backend's own memory with GNTTABOP_copy
before anything looks at it, so the guest can't change a header between
the check and the use. Then the vif's rules apply: the shaper (rate=),
anti-spoofing (the vif's MAC, and its ip= addresses), and logging rules;
what passes enters the bridge.

Receive (bridge to guest): a frame needs a buffer the guest posted on its
receive ring. With rx-copy the data is copied into the guest's granted
page (GNTTABOP_copy); with page flipping the backend puts the frame in a
page of its own and gives that page away (GNTTABOP_transfer into the
guest's GTF_accept_transfer entry), then asks Xen for a page to replace
it. A frame for a guest that posted no buffers is dropped, and a sender
whose frame reached no one hears NETIF_RSP_DROPPED.

Notifications are mitigated: receive responses are pushed once a batch
has built up or a short time has passed, whichever comes first.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hv.guest.bridge import Bridge
from hv.guest.ether import mac_from_str
from hv.guest.netfilter import LogRule, Shaper, SpoofRules, log_lines
from hv.guest.ring import RingEnd
from hv.guest.xenbus_probe import Gather, XenbusDevice, as_int, xs_write
from hv.public.grant_table import (
    GNTCOPY_dest_gref, GNTCOPY_source_gref, GNTST_bad_page, GNTST_okay, GNTTABOP_copy, GNTTABOP_transfer,
    GnttabCopy, GnttabCopyPtr, GnttabTransfer,
)
from hv.public.io.netif import (
    NETIF_RSP_DROPPED, NETIF_RSP_ERROR, NETIF_RSP_OKAY, NETRXF_data_validated,
    NETTXF_more_data, RX_REQUEST, RX_RESPONSE, RX_SLOT, TX_REQUEST, TX_RESPONSE, TX_SLOT,
    XEN_NETIF_NR_SLOTS_MIN,
)
from hv.public.io.xenbus import (
    XenbusStateConnected, XenbusStateInitWait,
)
from hv.public.memory import XENMEM_populate_physmap, XenMemoryReservation
from hv.public.xen import DOMID_SELF, HYPERVISOR_grant_table_op, HYPERVISOR_memory_op, PAGE_SIZE

if TYPE_CHECKING:
    from hv.xen.domain import VCPU

# Transmit requests handled per turn, and the pages a vif copies through
# (room for a batch of one-slot packets and one of the longest).
TX_BATCH = 64
BUFFERS = TX_BATCH + 32
# Receive notifications: pushed when this many responses wait, or when the
# transmit work that produced them is done for now.
RX_NOTIFY_BATCH = 32
# The backend's CPU cost per packet each way.
TX_PACKET_NS = 1_500
RX_PACKET_NS = 1_000
ETH_MIN = 14
# Linux netback's fatal_skb_slots: a packet this long is taken for an attack.
FATAL_SLOTS = 20
INVALID_P2M_ENTRY = (1 << 64) - 1
MAX_FRAME = 65535


class Network:
    """The backend domain's network: its bridges, and its vifs by name."""

    def __init__(self):
        self.bridges: dict[str, Bridge] = {}
        self.vifs: dict[str, "Netback"] = {}

    def bridge(self, name: str) -> Bridge:
        if name not in self.bridges:
            self.bridges[name] = Bridge(name)
        return self.bridges[name]


def network(k) -> Network:
    if getattr(k, "network", None) is None:
        k.network = Network()
    return k.network


class Netback(XenbusDevice):
    devclass = "vif"
    frontend = False

    def __init__(self, k, nodename, otherend, otherend_id):
        super().__init__(k, nodename, otherend, otherend_id)
        self.vifname = f"vif{otherend_id}.{self.devid}"
        self.bridge_name = ""
        self.mac = b""
        self.spoof = SpoofRules(self.vifname)
        self.log_rules: tuple[LogRule, ...] = ()
        self.shaper: Shaper | None = None
        self.tx = RingEnd(front=False, entry_size=TX_SLOT)
        self.rx = RingEnd(front=False, entry_size=RX_SLOT)
        self.tx_map = (-1, 0)            # (handle, mfn) of each ring
        self.rx_map = (-1, 0)
        self.port = 0
        self.rx_copy = True
        self.buffers: list[int] = []     # backend pages packets are copied into (pfns)
        self.buffer_mfns: list[int] = []
        self.rx_pending: list[tuple[int, int, int, int]] = []   # (id, gref, buffer, size)
        self.rx_unpushed = 0
        self.broken = False
        self.broken_why = ""             # closed once the batch that found it is answered
        self.flip_offered = True
        self.stats = {"tx_packets": 0, "tx_bytes": 0, "tx_errors": 0, "tx_dropped": 0,
                      "rx_packets": 0, "rx_bytes": 0, "rx_errors": 0, "rx_dropped": 0}

    # ------------------------------------------------------------ xenbus
    def probe(self, v: "VCPU") -> None:
        node = self.nodename
        Gather.read(self.k, v, {name: f"{node}/{name}" for name in
                                ("bridge", "mac", "ip", "rate", "log", "anti-spoof", "rx-flip")},
                    self._configured)

    def _configured(self, v: "VCPU", values: dict) -> None:
        if self.removed:
            return
        text = {key: (value or b"").decode(errors="replace") for key, value in values.items()}
        self.bridge_name = text["bridge"] or "xenbr0"
        try:
            self.mac = mac_from_str(text["mac"]) if text["mac"] else b""
            self.log_rules = tuple(LogRule.parse(rule) for rule in text["log"].split(";") if rule.strip())
        except ValueError as e:
            self.fatal(v, str(e))
            return
        if text["anti-spoof"] != "0":
            self.spoof = SpoofRules(self.vifname, (self.mac,) if self.mac else (),
                                    tuple(text["ip"].split()))
        rate = text["rate"].split(",")
        if len(rate) == 2 and all(part.isdigit() for part in rate) and int(rate[1]):
            self.shaper = Shaper(int(rate[0]), int(rate[1]) * 1000, self.k.xen.clock.now)
        # What a vif can do: rx-copy always; flipping unless switched off.
        self.flip_offered = text["rx-flip"] != "0"
        for name, value in (("feature-rx-copy", 1), ("feature-rx-flip", int(self.flip_offered)),
                            ("feature-sg", 0), ("feature-gso-tcpv4", 0),
                            ("feature-rx-notify", 1)):
            xs_write(self.k, v, f"{self.nodename}/{name}", value)
        self.wait_for_frontend(v)

    def otherend_changed(self, v: "VCPU", state: int) -> None:
        if state == XenbusStateConnected and self.state == XenbusStateInitWait:
            fe = self.otherend
            Gather.read(self.k, v, {"tx": f"{fe}/tx-ring-ref", "rx": f"{fe}/rx-ring-ref",
                                    "port": f"{fe}/event-channel",
                                    "copy": f"{fe}/request-rx-copy"}, self._connect)
        else:
            self.follow_frontend_closing(v, state)

    def _connect(self, v: "VCPU", values: dict) -> None:
        if self.removed or self.state != XenbusStateInitWait:
            return
        tx_ref, rx_ref, port = as_int(values["tx"]), as_int(values["rx"]), as_int(values["port"])
        if None in (tx_ref, rx_ref, port):
            self.fatal(v, "reading tx-ring-ref, rx-ring-ref and event-channel")
            return
        self.rx_copy = as_int(values["copy"], 0) == 1
        if not self.rx_copy and not self.flip_offered:
            self.fatal(v, "the frontend asks for page flipping, which this vif does not offer")
            return
        k = self.k
        rings = self.connect_rings(v, (tx_ref, rx_ref), port)
        if rings is None:
            return
        self.tx_map, self.rx_map = rings
        self.tx = RingEnd(front=False, entry_size=TX_SLOT)
        self.rx = RingEnd(front=False, entry_size=RX_SLOT)
        self.buffers = k.alloc_pages(BUFFERS)
        self.buffer_mfns = [k.p2m_get(pfn) for pfn in self.buffers]
        net = network(k)
        net.vifs[self.vifname] = self
        net.bridge(self.bridge_name).add_port(self.vifname)
        xs_write(k, v, f"{self.nodename}/hotplug-status", "connected")
        self.switch_state(v, XenbusStateConnected)
        self.log(v, "connected", f"{self.vifname} on {self.bridge_name}, "
                                 f"rx by {'copy' if self.rx_copy else 'flip'}")

    def close(self, v: "VCPU") -> None:
        k = self.k
        k.work.pop(self, None)
        k.driver_timers.pop(self, None)
        net = network(k)
        if net.vifs.get(self.vifname) is self:
            del net.vifs[self.vifname]
            net.bridge(self.bridge_name).remove_port(self.vifname)
        if self.port:
            k.close_port(v, self.port)
            self.port = 0
        k.unmap_grants(v, [h for h, _m in (self.tx_map, self.rx_map) if h >= 0])
        self.tx_map = self.rx_map = (-1, 0)
        self.rx_pending = []
        k.free_pages(self.buffers)
        self.buffers = []
        self.buffer_mfns = []

    # ------------------------------------------------------------ transmit
    def interrupt(self, v: "VCPU", port: int) -> None:
        if not self.broken:
            self.k.queue_work(self)

    def do_work(self, v: "VCPU") -> int:
        """A batch of transmit requests: their slots taken off the ring,
        all their data copied out of the guest in one grant-copy call, then
        each packet through the vif's rules into the bridge."""
        if self.broken_why and self.tx_map[0] >= 0:
            # Found broken while receiving: it closes on its own turn.
            why, self.broken_why = self.broken_why, ""
            self.fatal(v, why)
            return 0
        if self.tx_map[0] < 0 or self.broken:
            return 0
        k = self.k
        page = k.mapped(self.tx_map[1], True)
        ring = self.tx
        now = k.xen.clock.now
        packets = []                    # (requests, status, first copy, copies)
        copies = []                     # (gref, offset, size) into buffers[i]
        more = False
        while True:
            if len(packets) == TX_BATCH or len(self.buffers) - len(copies) < XEN_NETIF_NR_SLOTS_MIN:
                more = True
                break
            if ring.request_prod_overflow(page):
                self._fatal_tx(v, "the frontend's tx producer ran past the ring")
                more = False
                break
            if not ring.unconsumed(page):
                if not ring.final_check(page):
                    break
                continue
            first = TX_REQUEST.unpack_from(page, ring.slot(ring.cons))
            if self.shaper is not None and not self.shaper.admit(first[4], now):
                k.call_at(v, self.shaper.next_at(now), self)
                break
            taken = self._take_slots(v, page)
            if taken is None:
                more = False
                break
            requests, status, slots = taken
            packets.append((requests, status, len(copies), len(slots)))
            copies += slots
        statuses = self._copy_in(v, copies)
        touched: dict[str, Netback] = {}
        for requests, status, at, count in packets:
            if status == NETIF_RSP_OKAY:
                if all(s == GNTST_okay for s in statuses[at:at + count]):
                    frame = b"".join(bytes(k.page(self.buffers[i], False)[:copies[i][2]])
                                     for i in range(at, at + count))
                    status = self._transmit(v, frame, now, touched)
                else:
                    self.stats["tx_errors"] += 1
                    status = NETIF_RSP_ERROR
            for req_id in requests:
                ring.produce(page, TX_RESPONSE.pack(req_id, status))
        if ring.push(page):
            k.notify(v, self.port)
        cost = TX_PACKET_NS * len(packets)
        for vif in touched.values():
            cost += vif.flush_rx(v, final=not more)
        if self.broken_why:
            # Only now, with what came before answered, does the vif close.
            why, self.broken_why = self.broken_why, ""
            self.fatal(v, why)
        elif more and packets:
            k.queue_work(self)
        return cost

    def _take_slots(self, v: "VCPU", page):
        """One packet's slots off the ring: (the ids to answer, status, the
        copies that bring its data out), or None when the frontend broke
        the protocol and lost its vif."""
        ring = self.tx
        requests = []
        copies = []
        total = 0
        while True:
            if not ring.unconsumed(page):
                self._fatal_tx(v, "a packet's slots end before its last")
                return None
            gref, offset, flags, req_id, size = TX_REQUEST.unpack(ring.consume(page))
            requests.append(req_id)
            if len(requests) >= FATAL_SLOTS:
                self._fatal_tx(v, f"a packet of {FATAL_SLOTS} slots or more")
                return None
            if offset + min(size, PAGE_SIZE) > PAGE_SIZE or (len(requests) > 1 and size > PAGE_SIZE):
                self._fatal_tx(v, f"a slot crosses its page (offset {offset}, size {size})")
                return None
            copies.append((gref, offset, size))
            if len(requests) == 1:
                total = size
            if not flags & NETTXF_more_data:
                break
        # The first slot's size is the whole packet's; the rest say their own.
        # Past the slots a frontend is promised, the packet is dropped (and
        # past a few more, the vif is taken away, above).
        if len(requests) > XEN_NETIF_NR_SLOTS_MIN or total < ETH_MIN or total > MAX_FRAME:
            self.stats["tx_errors"] += 1
            return requests, NETIF_RSP_ERROR, []
        if len(copies) > 1:
            rest = sum(size for _g, _o, size in copies[1:])
            copies[0] = (copies[0][0], copies[0][1], total - rest)
            if total - rest <= 0 or total - rest > PAGE_SIZE:
                self.stats["tx_errors"] += 1
                return requests, NETIF_RSP_ERROR, []
        return requests, NETIF_RSP_OKAY, copies

    def _copy_in(self, v: "VCPU", copies) -> list[int]:
        """Xen copies the data from the guest's grants into our buffers
        (copies[i] into buffers[i]), and only then is it looked at; the
        status of each copy."""
        if not copies:
            return []
        k = self.k
        ops = tuple(GnttabCopy(source=GnttabCopyPtr(u=gref, domid=self.otherend_id, offset=offset),
                               dest=GnttabCopyPtr(u=self.buffer_mfns[i], domid=DOMID_SELF, offset=0),
                               len=size, flags=GNTCOPY_source_gref)
                    for i, (gref, offset, size) in enumerate(copies))
        rc, out = k.hypercall(v, HYPERVISOR_grant_table_op, GNTTABOP_copy, ops)
        if rc < 0:
            return [rc] * len(copies)
        return [op.status for op in out]

    def _transmit(self, v: "VCPU", frame: bytes, now: int, touched: dict) -> int:
        """The vif's rules, then the bridge: the status the sender hears."""
        self.stats["tx_packets"] += 1
        self.stats["tx_bytes"] += len(frame)
        for line in log_lines(self.log_rules, self.vifname, frame):
            self.k.kernel_log(v, line)
        refused = self.spoof.check(frame)
        if refused is not None:
            self.stats["tx_dropped"] += 1
            self.log(v, "spoofed", refused)
            return NETIF_RSP_OKAY           # gone into the firewall, as with ebtables
        net = network(self.k)
        bridge = net.bridge(self.bridge_name)
        delivered = False
        ports = bridge.forward(self.vifname, frame, now)
        for port in ports:
            vif = net.vifs.get(port)
            if vif is not None and vif.receive(v, frame):
                delivered = True
                touched[port] = vif
        return NETIF_RSP_OKAY if delivered or not ports else NETIF_RSP_DROPPED

    def _fatal_tx(self, v: "VCPU", why: str) -> None:
        """xenvif_fatal_tx_err(): the vif stops taking requests; only this
        guest loses it (it closes when the batch is over)."""
        self.broken = True
        self.broken_why = why
        self.stats["tx_errors"] += 1
        self.k.kernel_log(v, f"netback: {self.vifname}: fatal error: {why}")

    # ------------------------------------------------------------ receive
    def receive(self, v: "VCPU", frame: bytes) -> bool:
        """Put a frame into one of the guest's posted buffers; False (and
        dropped) when it left none. Copies wait to go in one call with the
        rest of the batch's."""
        if self.rx_map[0] < 0 or self.broken:
            return False
        k = self.k
        page = k.mapped(self.rx_map[1], True)
        ring = self.rx
        if not ring.unconsumed(page) or len(frame) > PAGE_SIZE:
            self.stats["rx_dropped"] += 1
            return False
        req_id, gref = RX_REQUEST.unpack(ring.consume(page))
        if self.rx_copy:
            staging = len(self.buffers) - 1 - len(self.rx_pending)
            k.page(self.buffers[staging])[:len(frame)] = frame
            self.rx_pending.append((req_id, gref, staging, len(frame)))
            if len(self.rx_pending) >= len(self.buffers) // 2:
                self._copy_out(v)
            return True
        ok = self._flip(v, frame, gref)
        self._respond_rx(page, req_id, len(frame) if ok else NETIF_RSP_ERROR)
        return ok

    def _respond_rx(self, page, req_id: int, status: int) -> None:
        if status > 0:
            self.stats["rx_packets"] += 1
            self.stats["rx_bytes"] += status
        else:
            self.stats["rx_errors"] += 1
        self.rx.produce(page, RX_RESPONSE.pack(req_id, 0, NETRXF_data_validated if status > 0 else 0,
                                               status))
        self.rx_unpushed += 1

    def _copy_out(self, v: "VCPU") -> None:
        """The waiting frames into the guest's granted buffers, one call."""
        pending, self.rx_pending = self.rx_pending, []
        if not pending:
            return
        k = self.k
        ops = tuple(GnttabCopy(source=GnttabCopyPtr(u=self.buffer_mfns[staging], domid=DOMID_SELF,
                                                    offset=0),
                               dest=GnttabCopyPtr(u=gref, domid=self.otherend_id, offset=0),
                               len=size, flags=GNTCOPY_dest_gref)
                    for _id, gref, staging, size in pending)
        rc, out = k.hypercall(v, HYPERVISOR_grant_table_op, GNTTABOP_copy, ops)
        page = k.mapped(self.rx_map[1], True)
        for i, (req_id, _gref, _staging, size) in enumerate(pending):
            ok = rc >= 0 and out[i].status == GNTST_okay
            self._respond_rx(page, req_id, size if ok else NETIF_RSP_ERROR)

    def _flip(self, v: "VCPU", frame: bytes, gref: int) -> bool:
        """Give the guest a page of ours holding the frame, and take a new
        page from Xen for the one given away."""
        k = self.k
        pfn = self.buffers[-1]
        k.page(pfn)[:] = frame + bytes(PAGE_SIZE - len(frame))
        mfn = self.buffer_mfns[-1]
        rc, (out,) = k.hypercall(v, HYPERVISOR_grant_table_op, GNTTABOP_transfer,
                                 (GnttabTransfer(mfn=mfn, domid=self.otherend_id, ref=gref),))
        if rc < 0:
            return False
        if out.status != GNTST_bad_page:
            # The frame left us whether or not the guest took it.
            done, got = k.hypercall(v, HYPERVISOR_memory_op, XENMEM_populate_physmap,
                                    XenMemoryReservation(extent_start=(pfn,), nr_extents=1,
                                                         domid=DOMID_SELF))
            if done == 1:
                k.p2m_set(pfn, got.extent_start[0])
                self.buffer_mfns[-1] = got.extent_start[0]
            else:
                # No page to replace it: this buffer is gone for good (its
                # pfn stays taken, with no frame behind it).
                k.p2m_set(self.buffers.pop(), INVALID_P2M_ENTRY)
                self.buffer_mfns.pop()
                k.kernel_log(v, f"netback: {self.vifname}: no memory to replace a flipped page")
                if len(self.buffers) < XEN_NETIF_NR_SLOTS_MIN + 1:
                    self.broken = True
                    self.broken_why = "too few pages left to receive into"
                    k.queue_work(self)
        return out.status == GNTST_okay

    def flush_rx(self, v: "VCPU", final: bool) -> int:
        """Push receive responses once enough have built up, or when the
        work that made them is over: the cost of delivering them."""
        self._copy_out(v)
        waiting = self.rx_unpushed
        if not waiting or self.rx_map[0] < 0:
            return 0
        if waiting >= RX_NOTIFY_BATCH or final:
            self.rx_unpushed = 0
            if self.rx.push(self.k.mapped(self.rx_map[1], True)):
                self.k.notify(v, self.port)
        return RX_PACKET_NS * waiting
