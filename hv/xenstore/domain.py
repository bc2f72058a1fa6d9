"""xenstored's domains (the C daemon's xenstored_domain.c): each introduced
domain's connection over the xenstore_domain_interface page it shares, the
event channel to it, what it owns and may still open, and what happens
when it shuts down or dies.

xenstored is a process in dom0. It reaches Xen the way such a process
does: hypercalls made by dom0 (mapping the domain's store page through
its reserved grant entry, binding its store event channel, learning of
domains' deaths through VIRQ_DOM_EXC), and it hears events through dom0's
kernel, whose event-channel device hands it the ports it bound."""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from hv.public.domctl import (
    XEN_DOMCTL_INTERFACE_VERSION, XEN_DOMCTL_getdomaininfo, XEN_DOMINF_dying,
    XEN_DOMINF_shutdown, XenDomctl,
)
from hv.public.errno import EINVAL, ENOENT
from hv.public.event_channel import (
    EVTCHNOP_bind_interdomain, EVTCHNOP_bind_virq, EVTCHNOP_close, EVTCHNOP_send,
    EvtchnBindInterdomain, EvtchnBindVirq, EvtchnClose, EvtchnSend,
)
from hv.public.grant_table import (
    GNTMAP_host_map, GNTST_okay, GNTTAB_RESERVED_XENSTORE, GNTTABOP_map_grant_ref,
    GNTTABOP_unmap_grant_ref, GnttabMapGrantRef, GnttabUnmapGrantRef,
)
from hv.public.io.xs_wire import (
    XENSTORE_CONNECTED, XENSTORE_ERROR_PROTO, XENSTORE_ERROR_RINGIDX, XENSTORE_RECONNECT,
    XS_ERROR, XSD_TYPE_NAMES, XenstoreDomainInterface,
)
from hv.public.xen import (
    DOMID_FIRST_RESERVED, HYPERVISOR_domctl, HYPERVISOR_event_channel_op,
    HYPERVISOR_grant_table_op, PAGE_SHIFT, PAGE_SIZE, VIRQ_DOM_EXC,
)
from hv.xenstore import ring
from hv.xenstore import paths
from hv.xenstore.errors import XsError
from hv.xenstore.perms import Perm
from hv.xenstore.protocol import OK, Parser, ProtocolError, atoi, get_strings, onearg

if TYPE_CHECKING:
    from hv.xen.domain import VCPU
    from hv.xen.hypervisor import Xen
    from hv.xenstore.connection import Connection
    from hv.xenstore.xenstored import Xenstored

_IDX = struct.Struct("<IIII")
_U32 = struct.Struct("<I")
CONNECTION_OFF = XenstoreDomainInterface.offsetof("connection")
ERROR_OFF = XenstoreDomainInterface.offsetof("error")
# Where xenstored's mappings of store pages sit in its address space.
MAP_BASE = 0x7F00_0000_0000


class XsDomain:
    """A domain xenstored knows of: introduced (with a connection) or only
    counted as the owner of nodes."""

    def __init__(self, domid: int, generation: int):
        self.domid = domid
        self.generation = generation
        self.introduced = False
        self.conn: "Connection | None" = None
        self.port = 0                 # xenstored's end of the store channel
        self.mfn = 0                  # the store page
        self.handle = -1              # the grant mapping of it
        self.shutdown = False
        self.nbentry = 0
        self.nbwatch = 0
        self.nboutstanding = 0
        self.parser = Parser()
        self.partial = 0              # bytes of the first queued message already out


class DomainManager:
    def __init__(self, xen: "Xen", xenstored: "Xenstored"):
        self.xen = xen
        self.xenstored = xenstored
        self.domains: dict[int, XsDomain] = {}
        self.by_port: dict[int, XsDomain] = {}
        self.busy = False
        self.dirty: dict[int, XsDomain] = {}
        xenstored.domains = self
        dom0 = xen.hardware_domain
        self.dom0 = dom0
        rc, out = self._call(None, HYPERVISOR_event_channel_op, EVTCHNOP_bind_virq,
                             EvtchnBindVirq(virq=VIRQ_DOM_EXC, vcpu=0))
        if rc < 0:
            raise RuntimeError(f"xenstored: can't bind VIRQ_DOM_EXC ({rc})")
        self.virq_port = out.port
        self._listen(self.virq_port)
        d0 = self.domain_struct(0)
        d0.introduced = True
        xenstored.observers.append(self.trace_request)
        kernel = dom0.guest
        if kernel is not None and kernel.xsd is not None:
            self.connect_dom0(d0, *kernel.xsd)

    def connect_dom0(self, d0: XsDomain, mfn: int, port: int) -> None:
        """dom0_init(): dom0's kernel made its own store page and channel
        (/proc/xen/xsd_kva and xsd_port); xenstored maps the page, binds
        the channel, and serves dom0's kernel through that ring, with
        dom0's privilege."""
        rc, out = self._call(None, HYPERVISOR_event_channel_op, EVTCHNOP_bind_interdomain,
                             EvtchnBindInterdomain(remote_dom=0, remote_port=port))
        if rc < 0:
            raise RuntimeError(f"xenstored: can't bind dom0's store channel ({rc})")
        d0.mfn = mfn
        d0.port = out.local_port
        self.by_port[d0.port] = d0
        self._listen(d0.port)
        d0.conn = self.xenstored.connect("domain", 0, d0, on_output=self._on_output)
        self.handle_input(d0)
        self.flush()

    def trace_request(self, conn, msg, reply_type: int, payload: bytes) -> None:
        """Each request a domain makes through its ring, and its answer, in
        the machine's trace (socket clients' are not: they come from
        outside the machine, at no virtual time of theirs)."""
        if conn.kind != "domain":
            return
        first = msg.payload.split(b"\0", 1)[0][:80].decode("latin-1")
        answer = (payload.rstrip(b"\0").decode("latin-1") if reply_type == XS_ERROR
                  else "OK")
        self.xen.trace.emit("xenstore", conn.id, -1, XSD_TYPE_NAMES.get(msg.type, str(msg.type)),
                            first, answer)

    # ------------------------------------------------------------ to Xen
    def _call(self, v: "VCPU | None", nr: int, *args):
        return self.xen.hypercall(v or self.dom0.vcpus[0], nr, *args)

    def _listen(self, port: int) -> None:
        """Ask dom0's kernel to hand this port's events to xenstored (what
        binding through /dev/xen/evtchn does)."""
        kernel = self.dom0.guest
        if kernel is not None:
            kernel.listeners[port] = self.on_event

    def _unlisten(self, port: int) -> None:
        kernel = self.dom0.guest
        if kernel is not None:
            kernel.listeners.pop(port, None)

    def domain_info(self, domid: int):
        """xc_domain_getinfo() for one domain: its info, or None."""
        if not 0 <= domid < DOMID_FIRST_RESERVED:
            # Ids from the wire are 32 bits; a domid_t is 16, and no domain
            # has a reserved one. C asks for the truncated id, and the
            # answer's domid then differs from the one asked for.
            return None
        op = XenDomctl(cmd=XEN_DOMCTL_getdomaininfo, interface_version=XEN_DOMCTL_INTERFACE_VERSION,
                       domain=domid)
        rc, out = self._call(None, HYPERVISOR_domctl, op)
        if rc < 0 or out.domain != domid:
            return None
        return out.u

    def alloc_existing(self, domid: int) -> bool:
        """find_or_alloc_existing_domain(): known, or alive in Xen and now
        known."""
        if domid in self.domains:
            return True
        if self.domain_info(domid) is None:
            return False
        self.domain_struct(domid)
        return True

    def page(self, d: XsDomain) -> bytearray:
        return self.xen.frames.map_domain_page(self.dom0, d.mfn, writable=True)

    def notify(self, d: XsDomain, v: "VCPU | None" = None) -> None:
        if d.port:
            self._call(v, HYPERVISOR_event_channel_op, EVTCHNOP_send, EvtchnSend(port=d.port))

    # ------------------------------------------------------------ accounting
    def domain_struct(self, domid: int) -> XsDomain:
        d = self.domains.get(domid)
        if d is None:
            d = self.domains[domid] = XsDomain(domid, self.xenstored.db.generation)
        return d

    def generation_of(self, domid: int) -> int | None:
        d = self.domains.get(domid)
        if d is None:
            return 0 if domid == 0 else None
        return d.generation

    def entries(self, domid: int) -> int:
        d = self.domains.get(domid)
        return d.nbentry if d is not None else 0

    def entry_change(self, domid: int, delta: int) -> None:
        if self.alloc_existing(domid):
            d = self.domains[domid]
            d.nbentry = max(0, d.nbentry + delta)

    def is_introduced(self, domid: int) -> bool:
        d = self.domains.get(domid)
        return d is not None and d.introduced

    def quota_report(self, domid: int) -> str:
        d = self.domains.get(domid)
        if d is None:
            raise XsError(ENOENT)
        transactions = len(d.conn.transactions) if d.conn is not None else 0
        lines = [f"Domain {domid}:"]
        for name, value in (("nodes", d.nbentry), ("watches", d.nbwatch),
                            ("transactions", transactions), ("outstanding", d.nboutstanding),
                            ("memory", 0)):
            lines.append(f"{name:<16}: {value:8d}")
        return "\n".join(lines) + "\n"

    # ------------------------------------------------------------ requests
    def do_introduce(self, conn, payload):
        strings = get_strings(payload)
        if len(strings) < 3:
            raise XsError(EINVAL)
        domid = atoi(strings[0])
        port = atoi(strings[2])
        if port == 0 or port & 0x80000000:
            raise XsError(EINVAL)
        d = self.introduce_domain(domid, port)
        if d.conn is None or domid == 0:
            # Dom0's kernel keeps its ring: resetting it under requests in
            # flight would lose them (C resets it and answers OK).
            return OK
        self.conn_reset(d)
        page = self.page(d)
        if _U32.unpack_from(page, CONNECTION_OFF)[0] == XENSTORE_RECONNECT:
            _U32.pack_into(page, CONNECTION_OFF, XENSTORE_CONNECTED)
            self.notify(d)
        return OK

    def introduce_domain(self, domid: int, port: int) -> XsDomain:
        known = domid in self.domains
        d = self.domain_struct(domid)
        if not d.introduced:
            try:
                self.map_interface(d)
                rc, out = self._call(None, HYPERVISOR_event_channel_op, EVTCHNOP_bind_interdomain,
                                     EvtchnBindInterdomain(remote_dom=domid, remote_port=port))
                if rc < 0:
                    self.unmap_interface(d)
                    raise XsError(-rc)
            except XsError:
                # A failed introduction leaves nothing behind (C allocates
                # the domain on the request's context).
                if not known:
                    del self.domains[domid]
                raise
            d.port = out.local_port
            d.introduced = True
            d.shutdown = False
            self.by_port[d.port] = d
            self._listen(d.port)
            d.conn = self.xenstored.connect("domain", domid, d, on_output=self._on_output)
            self.xenstored.fire_watches(None, b"@introduceDomain", None, exact=True)
        else:
            # Introducing again rebinds the store channel.
            self._close_port(d)
            rc, out = self._call(None, HYPERVISOR_event_channel_op, EVTCHNOP_bind_interdomain,
                                 EvtchnBindInterdomain(remote_dom=domid, remote_port=port))
            d.port = out.local_port if rc >= 0 else 0
            if d.port:
                self.by_port[d.port] = d
                self._listen(d.port)
        return d

    def map_interface(self, d: XsDomain) -> None:
        """The store page, through the grant entry every domain's builder
        reserves for xenstored."""
        if not 0 <= d.domid < DOMID_FIRST_RESERVED:
            # No domain has such an id (a domid_t is 16 bits): no page to map.
            raise XsError(EINVAL)
        _, (m,) = self._call(None, HYPERVISOR_grant_table_op, GNTTABOP_map_grant_ref,
                             (GnttabMapGrantRef(host_addr=MAP_BASE + d.domid * PAGE_SIZE,
                                                flags=GNTMAP_host_map, ref=GNTTAB_RESERVED_XENSTORE,
                                                dom=d.domid),))
        if m.status != GNTST_okay:
            raise XsError(ENOENT if m.status == -1 else EINVAL)
        d.handle = m.handle
        d.mfn = m.dev_bus_addr >> PAGE_SHIFT

    def unmap_interface(self, d: XsDomain) -> None:
        if d.handle < 0:
            return
        self._call(None, HYPERVISOR_grant_table_op, GNTTABOP_unmap_grant_ref,
                   (GnttabUnmapGrantRef(host_addr=MAP_BASE + d.domid * PAGE_SIZE, handle=d.handle),))
        d.handle = -1
        d.mfn = 0

    def _close_port(self, d: XsDomain) -> None:
        if d.port:
            self._unlisten(d.port)
            self.by_port.pop(d.port, None)
            self._call(None, HYPERVISOR_event_channel_op, EVTCHNOP_close, EvtchnClose(port=d.port))
            d.port = 0

    def conn_reset(self, d: XsDomain) -> None:
        """domain_conn_reset(): a fresh start for the ring."""
        conn = d.conn
        self.xenstored.delete_all_watches(conn)
        conn.transactions.clear()
        conn.clear_output()
        d.nboutstanding = 0
        d.parser = Parser()
        d.partial = 0
        _IDX.pack_into(self.page(d), ring.IDX_OFF, 0, 0, 0, 0)

    def _connected(self, conn, payload, dom0_ok: bool = False) -> XsDomain:
        """find_connected_domain(), from a request's argument; RELEASE and
        RESUME refuse dom0 (onearg_domain()), SET_TARGET does not."""
        arg = onearg(payload)
        if arg is None:
            raise XsError(EINVAL)
        domid = atoi(arg)
        if domid == 0:
            if not dom0_ok:
                raise XsError(EINVAL)
            return self.domains[0]
        d = self.domains.get(domid)
        if d is None or not d.introduced:
            raise XsError(ENOENT)
        if d.conn is None:
            raise XsError(EINVAL)
        return d

    def do_release(self, conn, payload):
        self.destroy_domain(self._connected(conn, payload))
        return OK

    def do_resume(self, conn, payload):
        self._connected(conn, payload).shutdown = False
        return OK

    def do_set_target(self, conn, payload):
        strings = get_strings(payload)
        if len(strings) < 2:
            raise XsError(EINVAL)
        d = self._connected(conn, strings[0] + b"\0", dom0_ok=True)
        target = self._connected(conn, strings[1] + b"\0", dom0_ok=True)
        if d.conn is not None:          # dom0's tools use sockets: nothing to mark
            d.conn.target = target.domid
        return OK

    # ------------------------------------------------------------ death
    def destroy_domain(self, d: XsDomain) -> None:
        """The connection goes and the domain with it: its nodes anywhere
        in the tree are removed, its channel closed, its page unmapped,
        and @releaseDomain fires."""
        conn = d.conn
        if conn is not None:
            self.xenstored.disconnect(conn)
            d.conn = None
        self.domain_tree_remove(d)
        self.domains.pop(d.domid, None)
        self.dirty.pop(d.domid, None)
        if not d.introduced:
            return
        self._close_port(d)
        self.unmap_interface(d)
        self.xenstored.fire_watches(None, b"@releaseDomain", None, exact=True)

    def domain_tree_remove(self, d: XsDomain) -> None:
        """The dead domain's nodes go, wherever they are: depth first from
        /, in child order, a removed node's subtree with it (as the C
        daemon's walk does, so watchers see the same order). It loses its
        place in the special watches' permissions too."""
        store = self.xenstored
        stack = [b"/"]
        while stack:
            name = stack.pop()
            node = store.db.nodes.get(name)
            if node is None:
                continue
            if name != b"/" and node.perms[0].domid == d.domid:
                store.rm_node(None, name)
                continue
            stack.extend(paths.child_name(name, c) for c in reversed(node.children))
        for special, perms in store.special_perms.items():
            owner = perms[0] if perms[0].domid != d.domid else Perm(perms[0].perms, 0)
            store.special_perms[special] = (owner,) + tuple(p for p in perms[1:]
                                                            if p.domid != d.domid)

    def check_domains(self) -> None:
        """After VIRQ_DOM_EXC: a domain that shut down or crashed fires
        @releaseDomain once; one that is dying or gone loses its
        connection."""
        notify = False
        for d in list(self.domains.values()):
            if d.domid == 0:
                continue
            info = self.domain_info(d.domid)
            if not d.introduced:
                if info is None:
                    self.destroy_domain(d)      # known only as an owner: its nodes go
                continue
            if info is not None:
                if info.flags & XEN_DOMINF_shutdown and not d.shutdown:
                    d.shutdown = True
                    notify = True
                if not info.flags & XEN_DOMINF_dying:
                    continue
            self.destroy_domain(d)
            notify = False
        if notify:
            self.xenstored.fire_watches(None, b"@releaseDomain", None, exact=True)

    # ------------------------------------------------------------ the ring
    def on_event(self, v: "VCPU", port: int) -> None:
        """An event on one of xenstored's ports."""
        if port == self.virq_port:
            self.check_domains()
            self.flush(v)
            return
        d = self.by_port.get(port)
        if d is None or d.conn is None:
            return
        self.busy = True
        try:
            self.handle_input(d)
        finally:
            self.busy = False
        self.flush(v)

    def handle_input(self, d: XsDomain) -> None:
        conn = d.conn
        store = self.xenstored
        page = self.page(d)
        quota = store.quotas.outstanding
        moved = False
        while not conn.ignored:
            self.write_output(d, page)
            if not conn.privileged and d.nboutstanding >= quota:
                break
            avail = ring.available(page, ring.REQ)
            if avail is None:
                self.bad_client(d, XENSTORE_ERROR_RINGIDX)
                break
            want = min(avail, d.parser.wants())
            if not want:
                break
            data = ring.take(page, ring.REQ, want)
            moved = True
            try:
                messages = d.parser.feed(data)
            except ProtocolError:
                self.bad_client(d, XENSTORE_ERROR_PROTO)
                break
            for msg in messages:
                store.process(conn, msg)
        if moved:
            self.dirty[d.domid] = d

    def write_output(self, d: XsDomain, page: bytearray) -> bool:
        """Put what is queued for the domain into its response ring, as
        much as fits; a reply fully out is no longer outstanding."""
        conn = d.conn
        wrote = False
        while conn.out:
            data, is_reply = conn.out[0]
            sent = ring.put(page, ring.RSP, data[d.partial:])
            if sent is None:
                self.bad_client(d, XENSTORE_ERROR_RINGIDX)
                return wrote
            if not sent:
                break
            wrote = True
            d.partial += sent
            if d.partial < len(data):
                break
            conn.pop_first()
            d.partial = 0
            if is_reply and d.nboutstanding:
                d.nboutstanding -= 1
        if wrote:
            self.dirty[d.domid] = d
        return wrote

    def bad_client(self, d: XsDomain, error: int) -> None:
        """ignore_connection(): a guest that broke the ring or the protocol
        loses its own connection, with the reason in the page."""
        _U32.pack_into(self.page(d), ERROR_OFF, error)
        self.xenstored.ignore(d.conn)

    def flush(self, v: "VCPU | None" = None) -> None:
        """Write out what waits and notify each domain whose ring moved."""
        while self.dirty:
            _, d = self.dirty.popitem()
            if d.conn is not None and not d.conn.ignored and d.conn.out:
                self.write_output(d, self.page(d))
                self.dirty.pop(d.domid, None)
            self.notify(d, v)

    def _on_output(self, conn: "Connection") -> None:
        d = conn.domain
        self.dirty[d.domid] = d
        if not self.busy:
            self.flush()
