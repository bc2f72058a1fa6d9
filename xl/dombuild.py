"""Building a PV domain (the role of libxenguest's xc_dom_* and the build
step of libxl): everything through hypercalls from dom0 and dom0's foreign
mappings, as a real toolstack does it.

The new domain gets its memory, a start_info page, a xenstore page and a
console page at the top of its pseudo-physical space, an event channel for
each (unbound, waiting for dom0), grant references 0 and 1 seeded for the
console and xenstore backends, and vCPU 0 ready to run.

Given a workload, the domain also gets the machine's PV kernel: its program
as the initrd and its P2M list (pfn -> mfn, what a PV kernel needs to give
memory back), both just below start_info, and vCPU 0 starts at the
kernel's entry. Without one, vCPU 0 runs code the machine does not model.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, replace

from hv.public.domctl import (
    XEN_DOMCTL_INTERFACE_VERSION, XEN_DOMCTL_createdomain, XEN_DOMCTL_destroydomain,
    XEN_DOMCTL_max_mem, XEN_DOMCTL_max_vcpus, XEN_DOMCTL_setvcpucontext,
    XEN_DOMCTL_unpausedomain, XenDomctl, XenDomctlCreatedomain, XenDomctlMaxMem,
    XenDomctlMaxVcpus, XenDomctlVcpucontext,
)
from hv.public.event_channel import EVTCHNOP_alloc_unbound, EvtchnAllocUnbound
from hv.public.errno import EINVAL, ENOMEM
from hv.public.grant_table import (
    GNTST_NAMES, GNTST_okay, GNTTAB_RESERVED_CONSOLE, GNTTAB_RESERVED_XENSTORE,
    GNTTABOP_setup_table,
    GTF_permit_access, GrantEntryV1, GnttabSetupTable,
)
from hv.public.memory import XENMEM_populate_physmap, XenMemoryReservation
from hv.guest.image import KERNEL_ENTRY, pfn_to_va, workload_module
from hv.public.xen import (
    HYPERVISOR_domctl, HYPERVISOR_event_channel_op, HYPERVISOR_grant_table_op,
    HYPERVISOR_memory_op, PAGE_SHIFT, PAGE_SIZE, SIF_MOD_START_PFN, START_INFO_MAGIC,
    VGCF_in_kernel, VGCF_online, CpuUserRegs, StartInfo, VcpuGuestContext,
)
from xl.device import device_add, remove_devices
from xl.domain_store import make_domain_entries, remove_domain_entries
from xl.info import start_time_text
from xl.privcmd import HypercallError, Privcmd

# libxl's defaults.
MAXMEM_SLACK_KIB = 1024            # LIBXL_MAXMEM_CONSTANT
MAX_GRANT_FRAMES = 32
MAX_MAPTRACK_FRAMES = 1024
MAX_EVTCHN_PORT = 1023
SUPERPAGE_ORDER = 9                # 2 MiB extents where they fit


@dataclass(frozen=True)
class BuiltDomain:
    domid: int
    nr_pages: int
    start_info_pfn: int
    store_mfn: int
    store_port: int
    console_mfn: int
    console_port: int


def _domctl(pc: Privcmd, cmd: int, domid: int, u=None, what: str = "domctl") -> XenDomctl:
    op = XenDomctl(cmd=cmd, interface_version=XEN_DOMCTL_INTERFACE_VERSION, domain=domid, u=u)
    return pc.hypercall(HYPERVISOR_domctl, op, what=what)[1]


def build_pv_domain(pc: Privcmd, *, memory_kib: int, max_vcpus: int = 1,
                    maxmem_kib: int | None = None, handle: bytes = bytes(16),
                    cmdline: str = "", domid: int = 0, store_domid: int = 0,
                    console_domid: int = 0, unpause: bool = True,
                    workload: list[str] | None = None) -> BuiltDomain:
    """Create and build a domain; destroy it again if any step fails.
    ``workload`` is the program its kernel runs (None: no modelled kernel)."""
    created = _domctl(pc, XEN_DOMCTL_createdomain, domid, XenDomctlCreatedomain(
        handle=tuple(handle), max_vcpus=max_vcpus, max_evtchn_port=MAX_EVTCHN_PORT,
        max_grant_frames=MAX_GRANT_FRAMES, max_maptrack_frames=MAX_MAPTRACK_FRAMES,
        grant_opts=1), what="createdomain")
    domid = created.domain
    try:
        return _build(pc, domid, memory_kib, maxmem_kib or memory_kib, max_vcpus, cmdline,
                      store_domid, console_domid, unpause, workload)
    except Exception:
        _domctl(pc, XEN_DOMCTL_destroydomain, domid, what="destroydomain")
        raise


def _build(pc: Privcmd, domid: int, memory_kib: int, maxmem_kib: int, max_vcpus: int,
           cmdline: str, store_domid: int, console_domid: int, unpause: bool,
           workload: list[str] | None) -> BuiltDomain:
    nr_pages = memory_kib >> (PAGE_SHIFT - 10)
    if nr_pages < 4:
        raise ValueError("a PV domain needs at least 16 KiB of memory")
    _domctl(pc, XEN_DOMCTL_max_vcpus, domid, XenDomctlMaxVcpus(max=max_vcpus), what="max_vcpus")
    _domctl(pc, XEN_DOMCTL_max_mem, domid,
            XenDomctlMaxMem(max_memkb=maxmem_kib + MAXMEM_SLACK_KIB), what="max_mem")
    runs = _populate(pc, domid, nr_pages)
    mfn_of = _lookup(runs)
    start_info_pfn, store_pfn, console_pfn = nr_pages - 3, nr_pages - 2, nr_pages - 1
    store_port = _alloc_unbound(pc, domid, store_domid)
    console_port = _alloc_unbound(pc, domid, console_domid)
    store_mfn, console_mfn = mfn_of(store_pfn), mfn_of(console_pfn)
    _seed_grants(pc, domid, {GNTTAB_RESERVED_CONSOLE: (console_domid, console_mfn),
                             GNTTAB_RESERVED_XENSTORE: (store_domid, store_mfn)})
    shared_info_mfn = pc.xen.domains.get(domid).shared_info_mfn
    info = StartInfo(
        magic=START_INFO_MAGIC, nr_pages=nr_pages, shared_info=shared_info_mfn << PAGE_SHIFT,
        store_mfn=store_mfn, store_evtchn=store_port, console_mfn=console_mfn,
        console_evtchn=console_port, cmd_line=cmdline.encode()[:1023])
    entry = 0
    if workload is not None:
        info = _load_kernel(pc, info, runs, nr_pages, start_info_pfn, workload)
        entry = KERNEL_ENTRY
    page = pc.map_foreign(mfn_of(start_info_pfn))
    page[:StartInfo.SIZE] = info.pack()
    ctxt = VcpuGuestContext(
        flags=VGCF_in_kernel | VGCF_online,
        user_regs=CpuUserRegs(rip=entry, rsi=pfn_to_va(start_info_pfn)))
    _domctl(pc, XEN_DOMCTL_setvcpucontext, domid, XenDomctlVcpucontext(vcpu=0, ctxt=ctxt),
            what="setvcpucontext")
    if unpause:
        _domctl(pc, XEN_DOMCTL_unpausedomain, domid, what="unpausedomain")
    return BuiltDomain(domid, nr_pages, start_info_pfn, store_mfn, store_port,
                       console_mfn, console_port)


def _load_kernel(pc: Privcmd, info: StartInfo, runs, nr_pages: int, below_pfn: int,
                 workload: list[str]) -> StartInfo:
    """Place the program and the P2M list in the pages below ``below_pfn``;
    the start_info that tells the kernel where they are."""
    module = workload_module(workload)
    p2m = b"".join(struct.pack(f"<{count}Q", *range(mfn, mfn + count))
                   for _first, count, mfn in runs)
    module_pfn = below_pfn - _pages(len(module))
    p2m_pfn = module_pfn - _pages(len(p2m))
    if p2m_pfn < 1:
        raise ValueError(f"{nr_pages} pages are too few for the kernel's P2M list and program")
    mfn_of = _lookup(runs)
    for pfn, data in ((module_pfn, module), (p2m_pfn, p2m)):
        for i in range(0, len(data), PAGE_SIZE):
            page = pc.map_foreign(mfn_of(pfn + i // PAGE_SIZE))
            chunk = data[i:i + PAGE_SIZE]
            page[:len(chunk)] = chunk
    return info.replace(flags=info.flags | SIF_MOD_START_PFN, mod_start=module_pfn,
                        mod_len=len(module), mfn_list=pfn_to_va(p2m_pfn))


def _pages(nbytes: int) -> int:
    return (nbytes + PAGE_SIZE - 1) // PAGE_SIZE


def _lookup(runs):
    def mfn_of(target: int) -> int:
        for first, count, mfn in runs:
            if first <= target < first + count:
                return mfn + target - first
        raise KeyError(target)
    return mfn_of


def _populate(pc: Privcmd, domid: int, nr_pages: int) -> list[tuple[int, int, int]]:
    """Give the domain its memory in 2 MiB extents, then 4 KiB pages for
    the rest; return the runs (first pfn, count, first mfn)."""
    runs: list[tuple[int, int, int]] = []  # (first pfn, count, first mfn)
    pfn = 0
    for order in (SUPERPAGE_ORDER, 0):
        count = (nr_pages - pfn) >> order
        if not count:
            continue
        gpfns = tuple(pfn + (i << order) for i in range(count))
        done, out = pc.hypercall(HYPERVISOR_memory_op, XENMEM_populate_physmap,
                                 XenMemoryReservation(extent_start=gpfns, nr_extents=count,
                                                      extent_order=order, domid=domid),
                                 what="populate_physmap")
        if done != count:
            raise HypercallError("populate_physmap", ENOMEM,
                                 f"{done} of {count} extents of order {order}")
        runs.extend((g, 1 << order, m) for g, m in zip(gpfns, out.extent_start))
        pfn += count << order
    return runs


def _alloc_unbound(pc: Privcmd, domid: int, remote: int) -> int:
    _, out = pc.hypercall(HYPERVISOR_event_channel_op, EVTCHNOP_alloc_unbound,
                          EvtchnAllocUnbound(dom=domid, remote_dom=remote),
                          what="alloc_unbound")
    return out.port


def _seed_grants(pc: Privcmd, domid: int, entries: dict[int, tuple[int, int]]) -> None:
    """Write the reserved grant entries into the new domain's table, through
    a foreign mapping of its first grant frame (xc_dom_gnttab_seed())."""
    _, (op,) = pc.hypercall(HYPERVISOR_grant_table_op, GNTTABOP_setup_table,
                            (GnttabSetupTable(dom=domid, nr_frames=1, frame_list=(0,)),),
                            what="setup_table")
    if op.status != GNTST_okay:
        raise HypercallError("setup_table", EINVAL, GNTST_NAMES[op.status])
    page = pc.map_foreign(op.frame_list[0])
    for ref, (grantee, mfn) in entries.items():
        entry = GrantEntryV1(flags=GTF_permit_access, domid=grantee, frame=mfn)
        page[ref * GrantEntryV1.SIZE:(ref + 1) * GrantEntryV1.SIZE] = entry.pack()


def create_pv_domain(pc: Privcmd, xs, *, name: str, uuid: bytes = bytes(16),
                     memory_kib: int, max_vcpus: int = 1, maxmem_kib: int | None = None,
                     cmdline: str = "", workload: list[str] | None = None,
                     domid: int = 0, devices=(), vcpus: int | None = None,
                     unpause: bool = True) -> BuiltDomain:
    """Build a domain (``domid`` 0: Xen picks its id), give it its xenstore
    entries, introduce it to xenstored, add its ``devices`` (their domid is
    filled in) and start it (libxl's order: the store must know a domain
    and its devices before its kernel first looks). Of its ``max_vcpus``
    the first ``vcpus`` are online (the rest are the kernel's to take
    down, as cpu/N/availability tells it)."""
    built = build_pv_domain(pc, memory_kib=memory_kib, max_vcpus=max_vcpus,
                            maxmem_kib=maxmem_kib, handle=uuid, cmdline=cmdline,
                            unpause=False, workload=workload, domid=domid)
    try:
        make_domain_entries(xs, built.domid, name=name, uuid=uuid_text(uuid),
                            memory_kib=memory_kib, maxmem_kib=maxmem_kib or memory_kib,
                            vcpus=max_vcpus, store_port=built.store_port,
                            store_mfn=built.store_mfn, console_port=built.console_port,
                            console_mfn=built.console_mfn, start_time=start_time_text(pc),
                            online_vcpus=vcpus)
        xs.introduce(built.domid, built.store_mfn, built.store_port)
        for dev in devices:
            device_add(xs, replace(dev, domid=built.domid))
    except Exception:
        remove_domain_entries(xs, built.domid, uuid_text(uuid))
        _domctl(pc, XEN_DOMCTL_destroydomain, built.domid, what="destroydomain")
        raise
    if unpause:
        _domctl(pc, XEN_DOMCTL_unpausedomain, built.domid, what="unpausedomain")
    return built


def uuid_text(raw: bytes) -> str:
    """LIBXL_UUID_FMT."""
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def destroy_domain(pc: Privcmd, domid: int, xs=None) -> None:
    """Destroy a domain; given the store, its devices go first, so every
    backend lets go of it (libxl's order)."""
    if xs is not None:
        remove_devices(xs, domid)
    _domctl(pc, XEN_DOMCTL_destroydomain, domid, what="destroydomain")
