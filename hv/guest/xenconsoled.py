"""xenconsoled: the console daemon in dom0 (tools/console/daemon/io.c),
the backend of every guest's PV console.

It is a process in dom0, and reaches the rest of the machine as one: by
hypercalls made by dom0 (mapping a guest's console page through the grant
entry the domain builder reserves for it, binding the guest's console
event channel, asking Xen which domains exist), through xenstore (a
client connection of its own: it watches @introduceDomain and
@releaseDomain, and each domain's console directory), and through dom0's
kernel, whose event-channel device hands it the events on its ports.

Where xenconsoled copies output to a pty for `xl console` to attach to,
this one keeps it: each domain's output is a buffer holding the last
``console/limit`` bytes (1 MiB when the node is missing, no bound when it
is 0), and offsets into it count every byte ever received, so a follower
that falls behind the discarded part just resumes at the oldest byte
kept. No pty also means no ``console/tty`` node. Typed input goes into
the guest's ``in`` ring, as much as fits. With ``log_dir``, output is also
appended to ``<log_dir>/guest-<name>.log``, as ``--log=guest`` does; the
file is opened for each write, so the daemon holds no open files.

When a domain dies its page is unmapped and its channel closed (a mapping
would keep the dead domain from being freed), but its output stays
readable until ``forget()``, or until a new domain takes its id. Not
modelled: the rate limit on events, and mapping the page by its frame
number when the grant map fails (the daemon logs the failure and leaves
that console alone).

Everything here is plain data, so a snapshot of the host carries it.
"""

from __future__ import annotations

import os
import struct
from typing import TYPE_CHECKING

from hv.public.domctl import (
    XEN_DOMCTL_INTERFACE_VERSION, XEN_DOMCTL_getdomaininfo, XEN_DOMINF_dying, XenDomctl,
)
from hv.public.event_channel import (
    EVTCHNOP_bind_interdomain, EVTCHNOP_close, EVTCHNOP_send, EVTCHNOP_status,
    EVTCHNSTAT_interdomain, EvtchnBindInterdomain, EvtchnClose, EvtchnSend, EvtchnStatus,
)
from hv.public.grant_table import (
    GNTMAP_host_map, GNTST_okay, GNTTAB_RESERVED_CONSOLE, GNTTABOP_map_grant_ref,
    GNTTABOP_unmap_grant_ref, GnttabMapGrantRef, GnttabUnmapGrantRef,
)
from hv.public.io.console import XenconsInterface
from hv.public.xen import (
    DOMID_FIRST_RESERVED, DOMID_SELF, HYPERVISOR_domctl, HYPERVISOR_event_channel_op,
    HYPERVISOR_grant_table_op, PAGE_SHIFT, PAGE_SIZE,
)
from hv.xenstore.client import XsClient
from hv.xenstore.errors import XsError

if TYPE_CHECKING:
    from hv.xen.domain import VCPU
    from hv.xen.hypervisor import Xen
    from hv.xenstore.connection import Connection
    from hv.xenstore.xenstored import Xenstored

# Where the daemon's mappings of console pages sit in its address space.
MAP_BASE = 0x7E00_0000_0000
# The buffer's bound when the toolstack wrote no console/limit.
DEFAULT_LIMIT = 1 << 20
DOMLIST_TOKEN = b"domlist"

IN_OFF = XenconsInterface.offsetof("in_")
OUT_OFF = XenconsInterface.offsetof("out")
IDX_OFF = XenconsInterface.offsetof("in_cons")
IN_SIZE = 1024
OUT_SIZE = 2048
_IDX = struct.Struct("<IIII")
_U32 = struct.Struct("<I")
_IN_PROD_OFF = IDX_OFF + 4
_OUT_CONS_OFF = IDX_OFF + 8
_RING_IDX_MASK = 0xFFFFFFFF


class ConsoleNotFound(LookupError):
    """The daemon has no console for that domain."""


class ConsoleDomain:
    """One domain's console as the daemon holds it."""

    def __init__(self, domid: int, xspath: bytes):
        self.domid = domid
        self.xspath = xspath              # /local/domain/<id>/console
        self.handle = -1                  # the grant mapping of the console page
        self.mfn = 0
        self.local_port = 0               # the daemon's end of the console channel
        self.remote_port = -1
        self.buffer = bytearray()
        self.dropped = 0                  # bytes discarded from the front of the buffer
        self.limit: int | None = None     # read when the ring is first connected
        self.log_path: str | None = None
        self.is_dead = False
        self.last_seen = 0                # the enumeration that last found the domain

    @property
    def received(self) -> int:
        return self.dropped + len(self.buffer)

    @property
    def connected(self) -> bool:
        return not self.is_dead and self.handle >= 0 and bool(self.local_port)


class Xenconsoled:
    def __init__(self, xen: "Xen", xenstored: "Xenstored", log_dir: str | None = None):
        self.xen = xen
        self.dom0 = xen.hardware_domain
        self.log_dir = log_dir
        self.domains: dict[int, ConsoleDomain] = {}
        self.by_port: dict[int, ConsoleDomain] = {}
        self.enum_pass = 0
        self.messages: list[str] = []     # what the daemon would send to syslog
        self.busy = False
        if log_dir is not None:
            os.makedirs(log_dir, exist_ok=True)
        self.xs = XsClient(xenstored)
        self.xs.conn.on_output = self._store_output
        self.busy = True
        try:
            self.xs.watch("@releaseDomain", DOMLIST_TOKEN)
            self.xs.watch("@introduceDomain", DOMLIST_TOKEN)
            self.enum_domains()
        finally:
            self.busy = False
        self._handle_store_events()

    # ------------------------------------------------------------ the toolstack's side
    def output(self, domid: int) -> bytes:
        """Everything of the domain's output still kept."""
        return bytes(self._console(domid).buffer)

    def read_new(self, domid: int, offset: int) -> tuple[bytes, int]:
        """Output from ``offset`` on (an offset a previous call returned, or
        0 for all that is kept), and the offset to ask from next time."""
        dom = self._console(domid)
        start = max(offset, dom.dropped) - dom.dropped
        return bytes(dom.buffer[start:]), dom.received

    def write_input(self, domid: int, data: bytes) -> int:
        """Type ``data`` into the domain's console: as much as its ``in``
        ring has room for. Returns how many bytes went in."""
        dom = self._console(domid)
        if not dom.connected or not data:
            return 0
        if self._domain_info(domid) is None:
            # The domain went since the daemon last looked.
            self.shutdown_domain(dom)
            return 0
        page = self._page(dom)
        in_cons, in_prod, _, _ = _IDX.unpack_from(page, IDX_OFF)
        used = (in_prod - in_cons) & _RING_IDX_MASK
        if used > IN_SIZE:
            return 0                      # the guest broke its ring: leave it alone
        count = min(len(data), IN_SIZE - used)
        if not count:
            return 0
        for i in range(count):
            page[IN_OFF + ((in_prod + i) & (IN_SIZE - 1))] = data[i]
        _U32.pack_into(page, _IN_PROD_OFF, (in_prod + count) & _RING_IDX_MASK)
        self._notify(dom)
        return count

    def forget(self, domid: int) -> None:
        """Let go of a dead domain's kept output."""
        dom = self._console(domid)
        if not dom.is_dead:
            raise ValueError(f"domain {domid}'s console is still connected")
        del self.domains[domid]

    def _console(self, domid: int) -> ConsoleDomain:
        dom = self.domains.get(domid)
        if dom is None:
            raise ConsoleNotFound(f"no console for domain {domid}")
        return dom

    # ------------------------------------------------------------ xenstore
    def reattach(self) -> None:
        """After a restore: xenstored's snapshot keeps only the domains'
        connections, so put the daemon's back where it was among them,
        with the watches it carries."""
        xenstored = self.xs.xenstored
        if self.xs.conn not in xenstored.connections:
            xenstored.connections.insert(min(self.conn_index, len(xenstored.connections)),
                                         self.xs.conn)

    def __getstate__(self):
        state = self.__dict__.copy()
        connections = self.xs.xenstored.connections
        before = (connections[:connections.index(self.xs.conn)] if self.xs.conn in connections
                  else connections)
        state["conn_index"] = sum(1 for c in before if c.kind == "domain")
        return state

    def _store_output(self, conn: "Connection") -> None:
        """Something was queued on the daemon's connection: a watch event
        (its own requests' replies come while it is busy, and wait)."""
        if not self.busy:
            self._handle_store_events()

    def _handle_store_events(self) -> None:
        self.busy = True
        try:
            while True:
                events = self.xs.poll_events()
                if not events:
                    return
                for path, token in events:
                    self.watch_fired(path, token)
        finally:
            self.busy = False

    def watch_fired(self, path: bytes, token: bytes) -> None:
        """handle_xs(): the domain list changed, or a domain's console
        directory did."""
        if token == DOMLIST_TOKEN:
            self.enum_domains()
        elif token.startswith(b"dom") and token[3:].isdigit():
            dom = self.domains.get(int(token[3:]))
            # Watches fire for domains that just went too.
            if dom is not None and not dom.is_dead:
                self.create_ring(dom)

    def _read(self, path: bytes) -> bytes | None:
        try:
            return self.xs.read(path)
        except XsError:
            return None

    # ------------------------------------------------------------ domains
    def enum_domains(self) -> None:
        """Every domain Xen has, from 1 up: a new one gets a console, a
        dying one loses it; one that vanished unseen loses it too."""
        self.enum_pass += 1
        domid = 1
        while True:
            found = self._next_domain(domid)
            if found is None:
                break
            domid, flags = found
            dom = self.domains.get(domid)
            if dom is not None and dom.is_dead and not flags & XEN_DOMINF_dying:
                dom = None                # a new domain with a dead one's id
            if flags & XEN_DOMINF_dying:
                if dom is not None and not dom.is_dead:
                    self.shutdown_domain(dom)
            elif dom is None:
                dom = self.create_domain(domid)
            if dom is not None:
                dom.last_seen = self.enum_pass
            domid += 1
        for dom in list(self.domains.values()):
            if not dom.is_dead and dom.last_seen != self.enum_pass:
                self.shutdown_domain(dom)

    def create_domain(self, domid: int) -> ConsoleDomain | None:
        try:
            home = self.xs.get_domain_path(domid)
        except XsError:
            return None
        dom = ConsoleDomain(domid, home + b"/console")
        try:
            self.xs.watch(dom.xspath, b"dom%d" % domid)
        except XsError as e:
            self.log(f"domain {domid}: can't watch {dom.xspath.decode()}: {e}")
            return None
        self.domains[domid] = dom
        self.create_ring(dom)
        return dom

    def create_ring(self, dom: ConsoleDomain) -> None:
        """console_create_ring(): map the page and bind the channel the
        domain's console directory names, unless already done; a domain
        without them (or whose console is served by someone else) is
        left alone until they appear."""
        ring_ref = self._read(dom.xspath + b"/ring-ref")
        port = self._read(dom.xspath + b"/port")
        if ring_ref is None or port is None:
            return
        try:
            remote_port = int(port)
            int(ring_ref)
        except ValueError:
            return
        kind = self._read(dom.xspath + b"/type")
        if kind is not None and kind != b"xenconsoled":
            return
        if dom.handle < 0 and not self.map_interface(dom):
            return
        if remote_port == dom.remote_port and self._still_bound(dom):
            return
        self._close_port(dom)
        rc, out = self._call(None, HYPERVISOR_event_channel_op, EVTCHNOP_bind_interdomain,
                             EvtchnBindInterdomain(remote_dom=dom.domid, remote_port=remote_port))
        if rc < 0:
            self.log(f"domain {dom.domid}: can't bind console port {remote_port} ({rc})")
            return
        dom.local_port = out.local_port
        dom.remote_port = remote_port
        self.by_port[dom.local_port] = dom
        self._listen(dom.local_port)
        if dom.limit is None:
            dom.limit = self._limit(dom)
        if self.log_dir is not None and dom.log_path is None:
            name = self._read(b"/local/domain/%d/name" % dom.domid)
            if name:
                dom.log_path = os.path.join(self.log_dir,
                                            f"guest-{name.decode(errors='replace')}.log")
        self.buffer_append(dom)

    def _limit(self, dom: ConsoleDomain) -> int:
        value = self._read(dom.xspath + b"/limit")
        if value is None:
            return DEFAULT_LIMIT
        try:
            return max(0, int(value, 0))
        except ValueError:
            return DEFAULT_LIMIT

    def map_interface(self, dom: ConsoleDomain) -> bool:
        """The console page, through the grant entry the builder reserves
        for the console backend."""
        if not 0 < dom.domid < DOMID_FIRST_RESERVED:
            return False
        _, (m,) = self._call(None, HYPERVISOR_grant_table_op, GNTTABOP_map_grant_ref,
                             (GnttabMapGrantRef(host_addr=self._map_addr(dom), flags=GNTMAP_host_map,
                                                ref=GNTTAB_RESERVED_CONSOLE, dom=dom.domid),))
        if m.status != GNTST_okay:
            self.log(f"domain {dom.domid}: can't map the console page ({m.status})")
            return False
        dom.handle = m.handle
        dom.mfn = m.dev_bus_addr >> PAGE_SHIFT
        return True

    def unmap_interface(self, dom: ConsoleDomain) -> None:
        if dom.handle < 0:
            return
        self._call(None, HYPERVISOR_grant_table_op, GNTTABOP_unmap_grant_ref,
                   (GnttabUnmapGrantRef(host_addr=self._map_addr(dom), handle=dom.handle),))
        dom.handle = -1
        dom.mfn = 0

    @staticmethod
    def _map_addr(dom: ConsoleDomain) -> int:
        return MAP_BASE + dom.domid * PAGE_SIZE

    def shutdown_domain(self, dom: ConsoleDomain) -> None:
        """The domain is dying or gone: what it wrote last is taken, then
        the page and the channel are let go. The output stays."""
        dom.is_dead = True
        try:
            self.xs.unwatch(dom.xspath, b"dom%d" % dom.domid)
        except XsError:
            pass
        if dom.handle >= 0:
            self.buffer_append(dom, notify=False)
        self.unmap_interface(dom)
        self._close_port(dom)

    # ------------------------------------------------------------ event channels
    def _call(self, v: "VCPU | None", nr: int, *args):
        return self.xen.hypercall(v or self.dom0.vcpus[0], nr, *args)

    def _domain_info(self, domid: int):
        op = XenDomctl(cmd=XEN_DOMCTL_getdomaininfo, interface_version=XEN_DOMCTL_INTERFACE_VERSION,
                       domain=domid)
        rc, out = self._call(None, HYPERVISOR_domctl, op)
        if rc < 0 or out.domain != domid:
            return None
        return out.u

    def _next_domain(self, domid: int) -> tuple[int, int] | None:
        """The first domain at or above ``domid``, and its flags."""
        if domid >= DOMID_FIRST_RESERVED:
            return None
        op = XenDomctl(cmd=XEN_DOMCTL_getdomaininfo, interface_version=XEN_DOMCTL_INTERFACE_VERSION,
                       domain=domid)
        rc, out = self._call(None, HYPERVISOR_domctl, op)
        if rc < 0:
            return None
        return out.domain, out.u.flags

    def _still_bound(self, dom: ConsoleDomain) -> bool:
        if not dom.local_port:
            return False
        rc, out = self._call(None, HYPERVISOR_event_channel_op, EVTCHNOP_status,
                             EvtchnStatus(dom=DOMID_SELF, port=dom.local_port))
        return rc == 0 and out.status == EVTCHNSTAT_interdomain

    def _listen(self, port: int) -> None:
        """Ask dom0's kernel to hand this port's events to the daemon (what
        binding through /dev/xen/evtchn does)."""
        kernel = self.dom0.guest
        if kernel is not None:
            kernel.listeners[port] = self.on_event

    def _close_port(self, dom: ConsoleDomain) -> None:
        if not dom.local_port:
            return
        kernel = self.dom0.guest
        if kernel is not None:
            kernel.listeners.pop(dom.local_port, None)
        self.by_port.pop(dom.local_port, None)
        self._call(None, HYPERVISOR_event_channel_op, EVTCHNOP_close,
                   EvtchnClose(port=dom.local_port))
        dom.local_port = 0
        dom.remote_port = -1

    def _notify(self, dom: ConsoleDomain, v: "VCPU | None" = None) -> None:
        self._call(v, HYPERVISOR_event_channel_op, EVTCHNOP_send, EvtchnSend(port=dom.local_port))

    # ------------------------------------------------------------ the ring
    def on_event(self, v: "VCPU", port: int) -> None:
        """The guest moved its console ring."""
        dom = self.by_port.get(port)
        if dom is not None and dom.connected:
            self.buffer_append(dom, v)

    def _page(self, dom: ConsoleDomain) -> bytearray:
        return self.xen.frames.map_domain_page(self.dom0, dom.mfn, writable=True)

    def buffer_append(self, dom: ConsoleDomain, v: "VCPU | None" = None,
                      notify: bool = True) -> None:
        """Take what the guest wrote to its ``out`` ring and tell it there
        is room again. Indices further apart than the ring is long are a
        guest's mistake: xenconsoled then reads nothing at all."""
        page = self._page(dom)
        _, _, cons, prod = _IDX.unpack_from(page, IDX_OFF)
        size = (prod - cons) & _RING_IDX_MASK
        if not size or size > OUT_SIZE:
            return
        start = cons & (OUT_SIZE - 1)
        first = min(size, OUT_SIZE - start)
        data = bytes(page[OUT_OFF + start:OUT_OFF + start + first]) + \
            bytes(page[OUT_OFF:OUT_OFF + size - first])
        _U32.pack_into(page, _OUT_CONS_OFF, prod)
        # Kept before the guest hears of the room: it may write again at
        # once, and that comes after this.
        self.keep(dom, data)
        if notify:
            self._notify(dom, v)

    def keep(self, dom: ConsoleDomain, data: bytes) -> None:
        dom.buffer += data
        if dom.limit and len(dom.buffer) > dom.limit:
            over = len(dom.buffer) - dom.limit
            del dom.buffer[:over]
            dom.dropped += over
        if dom.log_path is not None:
            try:
                with open(dom.log_path, "ab") as f:
                    f.write(data)
            except OSError as e:
                self.log(f"domain {dom.domid}: write to {dom.log_path} failed: {e}; "
                         f"no more logging for it")
                dom.log_path = None

    def log(self, message: str) -> None:
        self.messages.append(message)
