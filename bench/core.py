"""Benchmarks of the hypervisor core, side by side in one run.

    python bench/core.py [--quick]

Figures (aims from the project's plan):
  event-channel send+deliver per second      aim >= 300k
  grant map+unmap pairs per second           aim >= 100k
  domain create+destroy (256 MiB) per second aim >= 500
  resident memory, 1 TiB host, 1000 x 512 MiB domains   aim <= 500 MiB
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from common import print_table, repeat  # noqa: E402  (puts the repository on the path)

from hv.guest.grant_table import GuestGrantTable  # noqa: E402
from hv.host import Host  # noqa: E402
from hv.public.event_channel import (  # noqa: E402
    EVTCHNOP_alloc_unbound, EVTCHNOP_bind_interdomain, EVTCHNOP_send,
    EvtchnAllocUnbound, EvtchnBindInterdomain, EvtchnSend,
)
from hv.public.grant_table import (  # noqa: E402
    GNTMAP_host_map, GNTST_okay, GNTTABOP_map_grant_ref, GNTTABOP_unmap_grant_ref,
    GnttabMapGrantRef, GnttabUnmapGrantRef,
)
from hv.public.xen import (  # noqa: E402
    DOMID_SELF, HYPERVISOR_event_channel_op, HYPERVISOR_grant_table_op,
    SHINFO_EVTCHN_PENDING, VCPUINFO_PENDING_SEL, VCPUINFO_UPCALL_PENDING,
)
from hv.xen.hypervisor import GiB, MiB  # noqa: E402
from xl.dombuild import build_pv_domain, destroy_domain  # noqa: E402
from xl.privcmd import Privcmd  # noqa: E402


def _two_guests():
    host = Host(cpus=4, memory=4 * GiB, dom0_memory=512 * MiB)
    pc = Privcmd(host.xen)
    a = host.xen.domains.get(build_pv_domain(pc, memory_kib=64 * 1024).domid)
    b = host.xen.domains.get(build_pv_domain(pc, memory_kib=64 * 1024).domid)
    return host, a, b


def bench_evtchn(n: int) -> float:
    """Sends from one guest to another; the receiver acknowledges each event
    the way a guest's upcall handler does (clear upcall, selector, pending),
    so every send is a full delivery."""
    host, a, b = _two_guests()
    xen = host.xen
    va, vb = a.vcpus[0], b.vcpus[0]
    _, alloc = xen.hypercall(vb, HYPERVISOR_event_channel_op, EVTCHNOP_alloc_unbound,
                             EvtchnAllocUnbound(dom=DOMID_SELF, remote_dom=a.domid))
    _, bind = xen.hypercall(va, HYPERVISOR_event_channel_op, EVTCHNOP_bind_interdomain,
                            EvtchnBindInterdomain(remote_dom=b.domid, remote_port=alloc.port))
    send = EvtchnSend(port=bind.local_port)
    info = b.shared_info
    port = alloc.port
    pend = SHINFO_EVTCHN_PENDING + port // 8
    sel = vb.vcpu_info_offset + VCPUINFO_PENDING_SEL + (port // 64) // 8
    upcall = vb.vcpu_info_offset + VCPUINFO_UPCALL_PENDING
    call = xen.hypercall
    nr = HYPERVISOR_event_channel_op
    delivered = 0
    t0 = time.perf_counter()
    for _ in range(n):
        call(va, nr, EVTCHNOP_send, send)
        if info[pend]:
            delivered += 1
        info[upcall] = 0
        info[sel] = 0
        info[pend] = 0
    elapsed = time.perf_counter() - t0
    assert delivered == n, (delivered, n)
    return n / elapsed


def bench_grant(n: int) -> float:
    """One guest grants a page; the other maps and unmaps it, one
    hypercall each."""
    host, a, b = _two_guests()
    xen = host.xen
    va, vb = a.vcpus[0], b.vcpus[0]
    gt = GuestGrantTable(xen, va)
    ref = gt.grant_foreign_access(b.domid, xen.p2m.lookup(a, 10), readonly=False)
    addr = 0xFFFFC90000000000
    map_op = (GnttabMapGrantRef(host_addr=addr, flags=GNTMAP_host_map, ref=ref, dom=a.domid),)
    call = xen.hypercall
    nr = HYPERVISOR_grant_table_op
    t0 = time.perf_counter()
    for _ in range(n):
        _, (m,) = call(vb, nr, GNTTABOP_map_grant_ref, map_op)
        _, (u,) = call(vb, nr, GNTTABOP_unmap_grant_ref,
                       (GnttabUnmapGrantRef(host_addr=addr, handle=m.handle),))
    elapsed = time.perf_counter() - t0
    assert m.status == GNTST_okay and u.status == GNTST_okay
    return n / elapsed


def bench_create_destroy(n: int) -> float:
    host = Host(cpus=4, memory=16 * GiB, dom0_memory=1 * GiB)
    pc = Privcmd(host.xen)
    t0 = time.perf_counter()
    for _ in range(n):
        built = build_pv_domain(pc, memory_kib=256 * 1024)
        destroy_domain(pc, built.domid)
    elapsed = time.perf_counter() - t0
    assert len(host.xen.domains) == 1
    return n / elapsed


def rss_1tib_1000_domains(count: int) -> dict:
    """In a fresh process: a 1 TiB host with ``count`` domains of 512 MiB;
    resident memory after building them all."""
    code = f"""
import json, resource, sys, time
sys.path.insert(0, {os.path.dirname(os.path.dirname(os.path.abspath(__file__)))!r})
from hv.host import Host
from hv.xen.hypervisor import GiB
from xl.dombuild import build_pv_domain
from xl.privcmd import Privcmd
t0 = time.perf_counter()
host = Host(cpus=64, memory=1024 * GiB, dom0_memory=4 * GiB)
pc = Privcmd(host.xen)
for _ in range({count}):
    build_pv_domain(pc, memory_kib=512 * 1024)
built = time.perf_counter() - t0
with open("/proc/self/status") as f:
    rss = next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))
print(json.dumps({{"rss_mib": rss / 1024, "domains": len(host.xen.domains) - 1,
                   "build_s": built,
                   "frames_materialised": host.xen.ram.resident_frames}}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer iterations")
    parser.add_argument("--repeat", type=int, default=5, help="runs per figure (default 5)")
    args = parser.parse_args()
    scale = 10 if args.quick else 1
    rows = [
        ("event-channel send+deliver /s", repeat(bench_evtchn, 100_000 // scale, args.repeat),
         300_000, ">="),
        ("grant map+unmap pairs /s", repeat(bench_grant, 40_000 // scale, args.repeat),
         100_000, ">="),
        ("domain create+destroy (256 MiB) /s",
         repeat(bench_create_destroy, 400 // scale, args.repeat), 500, ">="),
    ]
    rss = rss_1tib_1000_domains(1000 // scale)
    rows.append((f"RSS, 1 TiB host, {rss['domains']} x 512 MiB (MiB)",
                 (rss["rss_mib"],) * 3, 500, "<="))
    print_table("xenlab core benchmarks", args.repeat, rows)
    print(f"(building the {rss['domains']} domains took {rss['build_s']:.2f} s; "
          f"{rss['frames_materialised']} frames hold bytes)")


if __name__ == "__main__":
    main()
