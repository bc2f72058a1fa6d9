"""Building the initial domain (the role of Xen's arch/x86/pv/dom0_build.c).

Xen builds dom0 itself, before any toolstack exists: the domain, its memory,
its start_info page, its first vCPU. Dom0 is the control domain (privileged)
and the hardware domain (physical devices, global VIRQs).

The boot loader hands Xen dom0's kernel: where it starts, and its initrd.
With a kernel, dom0 also gets its P2M list, and the initrd, just after
start_info; vCPU 0 starts at the entry with rsi pointing at start_info in
the kernel's direct map.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from hv.public.xen import (
    PAGE_SHIFT, PAGE_SIZE, SIF_INITDOMAIN, SIF_MOD_START_PFN, SIF_PRIVILEGED,
    START_INFO_MAGIC, CpuUserRegs, StartInfo, VcpuGuestContext,
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
# Where the kernel's direct map puts pseudo-physical page 0.
DIRECT_MAP_BASE = 0xFFFF880000000000


def construct_dom0(xen: "Xen", nr_pages: int, max_vcpus: int, cmdline: str = "",
                   entry: int = 0, initrd: bytes = b"") -> "Domain":
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
    info = StartInfo(
        magic=START_INFO_MAGIC, nr_pages=nr_pages,
        shared_info=d.shared_info_mfn << PAGE_SHIFT,
        flags=SIF_PRIVILEGED | SIF_INITDOMAIN, cmd_line=cmdline.encode()[:1023])
    if entry:
        info = _place_kernel_data(xen, d, info, nr_pages, initrd)
    write_start_info(xen, d, DOM0_START_INFO_PFN, info)
    v0 = d.vcpus[0]
    start_info_va = DIRECT_MAP_BASE + (DOM0_START_INFO_PFN << PAGE_SHIFT)
    domains.arch_set_info_guest(v0, VcpuGuestContext(
        user_regs=CpuUserRegs(rip=entry, rsi=start_info_va)))
    xen.sched.vcpu_up(v0)
    xen.console.printk(f"Dom0 has maximum {max_vcpus} VCPUs, {nr_pages} pages")
    domains.unpause_by_systemcontroller(d)
    return d


def _place_kernel_data(xen: "Xen", d: "Domain", info: StartInfo, nr_pages: int,
                      initrd: bytes) -> StartInfo:
    """Dom0's P2M list, then its initrd, in the pages after start_info."""
    p2m = b"".join(struct.pack(f"<{run.length}Q", *range(run.value, run.value + run.length))
                   for run in d.p2m)
    p2m_pfn = DOM0_START_INFO_PFN + 1
    initrd_pfn = p2m_pfn + (len(p2m) + PAGE_SIZE - 1) // PAGE_SIZE
    for pfn, data in ((p2m_pfn, p2m), (initrd_pfn, initrd)):
        for i in range(0, len(data), PAGE_SIZE):
            chunk = data[i:i + PAGE_SIZE]
            xen.ram.frame(xen.p2m.lookup(d, pfn + i // PAGE_SIZE))[:len(chunk)] = chunk
    flags = info.flags | (SIF_MOD_START_PFN if initrd else 0)
    return info.replace(flags=flags, mfn_list=DIRECT_MAP_BASE + (p2m_pfn << PAGE_SHIFT),
                        mod_start=initrd_pfn if initrd else 0, mod_len=len(initrd))


def write_start_info(xen: "Xen", d: "Domain", gpfn: int, info: StartInfo) -> int:
    """Write ``info`` into the guest page at ``gpfn``; return its mfn."""
    mfn = xen.p2m.lookup(d, gpfn)
    page = xen.ram.frame(mfn)
    page[:StartInfo.SIZE] = info.pack()
    return mfn
