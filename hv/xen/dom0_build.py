"""Building the initial domain (the role of Xen's arch/x86/pv/dom0_build.c).

Xen builds dom0 itself, before any toolstack exists: the domain, its memory,
its start_info page, its first vCPU. Dom0 is the control domain (privileged)
and the hardware domain (physical devices, global VIRQs).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hv.public.xen import (
    PAGE_SHIFT, SIF_INITDOMAIN, SIF_PRIVILEGED, START_INFO_MAGIC, StartInfo,
    VcpuGuestContext,
)
from hv.public.event_channel import EVTCHN_2L_NR_CHANNELS
from hv.public.errno import ENOMEM
from hv.xen.errors import XenError

if TYPE_CHECKING:
    from hv.xen.domain import Domain
    from hv.xen.hypervisor import Xen

# Where dom0's start_info sits in its pseudo-physical space.
DOM0_START_INFO_PFN = 1
# The order of the extents dom0's memory is built from (1 GiB).
DOM0_EXTENT_ORDER = 18


def construct_dom0(xen: "Xen", nr_pages: int, max_vcpus: int, cmdline: str = "") -> "Domain":
    domains = xen.domains
    d = domains.domain_create(0, max_vcpus, privileged=True, hardware=True,
                              max_evtchn_port=EVTCHN_2L_NR_CHANNELS - 1)
    domains.vcpus_create(d)
    d.max_pages = nr_pages
    xen.hardware_domain = d
    frames, p2m = xen.frames, xen.p2m
    gpfn = 0
    while gpfn < nr_pages:
        order = min(DOM0_EXTENT_ORDER, (nr_pages - gpfn).bit_length() - 1)
        mfn = frames.alloc_domheap_pages(d, order)
        if mfn is None:
            raise XenError(ENOMEM)      # the host is smaller than dom0
        p2m.guest_physmap_add_page(d, gpfn, mfn, order)
        gpfn += 1 << order
    write_start_info(xen, d, DOM0_START_INFO_PFN, StartInfo(
        magic=START_INFO_MAGIC, nr_pages=nr_pages,
        shared_info=d.shared_info_mfn << PAGE_SHIFT,
        flags=SIF_PRIVILEGED | SIF_INITDOMAIN, cmd_line=cmdline.encode()[:1023]))
    v0 = d.vcpus[0]
    v0.context = VcpuGuestContext()
    v0.is_initialised = True
    xen.sched.vcpu_up(v0)
    xen.console.printk(f"Dom0 has maximum {max_vcpus} VCPUs, {nr_pages} pages")
    domains.unpause_by_systemcontroller(d)
    return d


def write_start_info(xen: "Xen", d: "Domain", gpfn: int, info: StartInfo) -> int:
    """Write ``info`` into the guest page at ``gpfn``; return its mfn."""
    mfn = xen.p2m.lookup(d, gpfn)
    page = xen.ram.frame(mfn)
    page[:StartInfo.SIZE] = info.pack()
    return mfn
