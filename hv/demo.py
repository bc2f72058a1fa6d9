"""A short tour of the machine: boot a host, build two guests, connect them
with an event channel and a granted page, and watch every step in the trace.

Run with `python -m hv.demo`."""

from __future__ import annotations

import sys

from hv.host import Host
from hv.public.event_channel import (
    EVTCHNOP_alloc_unbound, EVTCHNOP_bind_interdomain, EVTCHNOP_send,
    EvtchnAllocUnbound, EvtchnBindInterdomain, EvtchnSend,
)
from hv.public.grant_table import (
    GNTMAP_host_map, GNTTABOP_map_grant_ref, GNTTABOP_unmap_grant_ref,
    GnttabMapGrantRef, GnttabUnmapGrantRef,
)
from hv.public.xen import (
    DOMID_SELF, HYPERVISOR_event_channel_op, HYPERVISOR_grant_table_op,
)
from hv.guest.grant_table import GuestGrantTable
from hv.xen.audit import audit
from hv.xen.hypervisor import MiB
from xl.dombuild import build_pv_domain
from xl.privcmd import Privcmd


def main(out=sys.stdout) -> int:
    host = Host(cpus=4, memory=4096 * MiB, dom0_memory=512 * MiB)
    xen = host.xen
    pc = Privcmd(xen)
    front = build_pv_domain(pc, memory_kib=64 * 1024, cmdline="frontend")
    back = build_pv_domain(pc, memory_kib=64 * 1024, cmdline="backend")
    fd, bd = xen.domains.get(front.domid), xen.domains.get(back.domid)
    fv, bv = fd.vcpus[0], bd.vcpus[0]
    mark = xen.trace.seq

    # The frontend offers a port to the backend and grants it one page.
    _, alloc = xen.hypercall(fv, HYPERVISOR_event_channel_op, EVTCHNOP_alloc_unbound,
                             EvtchnAllocUnbound(dom=DOMID_SELF, remote_dom=bd.domid))
    gnttab = GuestGrantTable(xen, fv)
    ring_gfn = 16
    ring_mfn = xen.p2m.lookup(fd, ring_gfn)
    ref = gnttab.grant_foreign_access(bd.domid, ring_mfn, readonly=False)
    page = xen.frames.map_domain_page(fd, ring_mfn, writable=True)
    page[:5] = b"hello"

    # The backend binds the port, maps the page, reads it, and signals back.
    _, bind = xen.hypercall(bv, HYPERVISOR_event_channel_op, EVTCHNOP_bind_interdomain,
                            EvtchnBindInterdomain(remote_dom=fd.domid, remote_port=alloc.port))
    host_addr = 0xFFFFC90000000000
    _, (mapped,) = xen.hypercall(bv, HYPERVISOR_grant_table_op, GNTTABOP_map_grant_ref,
                                 (GnttabMapGrantRef(host_addr=host_addr, flags=GNTMAP_host_map,
                                                    ref=ref, dom=fd.domid),))
    seen = bytes(xen.frames.map_domain_page(bd, mapped.dev_bus_addr >> 12, writable=False)[:5])
    xen.hypercall(bv, HYPERVISOR_event_channel_op, EVTCHNOP_send, EvtchnSend(port=bind.local_port))
    xen.hypercall(bv, HYPERVISOR_grant_table_op, GNTTABOP_unmap_grant_ref,
                  (GnttabUnmapGrantRef(host_addr=host_addr, handle=mapped.handle),))
    revoked = gnttab.end_foreign_access_ref(ref, readonly=False)

    print(f"xenlab: {xen.nr_cpus} pCPUs, {xen.total_pages >> 8} MiB, Xen "
          f"{xen.version.version_string}", file=out)
    for d in xen.domains:
        print(f"  d{d.domid}: {d.tot_pages >> 8:5d} MiB  {len(d.vcpus)} vCPU  "
              f"{d.state_letters()}", file=out)
    print(f"\nThe backend read {seen!r} through grant ref {ref}; the frontend "
          f"{'revoked' if revoked else 'could not revoke'} it after the unmap.\n", file=out)
    print("Trace:", file=out)
    for record in xen.trace.since(mark):
        print("  " + record.format(), file=out)
    problems = audit(xen)
    print(f"\nAudit: {'clean' if not problems else problems}", file=out)
    return 0 if not problems and seen == b"hello" and revoked else 1


if __name__ == "__main__":
    sys.exit(main())
