"""Hypercalls as the scenario tests make them: one small helper per call,
shared by every test file that makes it."""

from __future__ import annotations

import struct

from hv.public.domctl import (
    XEN_DOMCTL_INTERFACE_VERSION, XEN_DOMCTL_createdomain, XEN_DOMCTL_getdomaininfo,
    XenDomctl, XenDomctlCreatedomain, XenDomctlGetdomaininfo,
)
from hv.public.memory import XenMemoryReservation
from hv.public.platform import (
    XENPF_INTERFACE_VERSION, XENPF_settime64, XenpfSettime64, XenPlatformOp,
)
from hv.public.xen import (
    DOMID_SELF, HYPERVISOR_domctl, HYPERVISOR_memory_op, HYPERVISOR_mmu_update,
    HYPERVISOR_mmuext_op, HYPERVISOR_platform_op, HYPERVISOR_sched_op, MMUEXT_PIN_L1_TABLE,
    MMUEXT_PIN_L2_TABLE, MMUEXT_UNPIN_TABLE, MmuextOp,
)

from hv.xen.timer import NS_PER_MS
from tests.conftest import hypercall
from xl.dombuild import BuiltDomain, build_pv_domain
from xl.privcmd import Privcmd

PRESENT, RW = 0x1, 0x2


# ---------------------------------------------------------------- guests
def boot_guest(host, workload, vcpus=1, memory_mib=16, settle=NS_PER_MS) -> tuple:
    """Build a domain running the modelled kernel with this program, and
    give it ``settle`` ns to boot: (its Domain, what the builder made)."""
    built: BuiltDomain = build_pv_domain(Privcmd(host.xen), memory_kib=memory_mib * 1024,
                                         max_vcpus=vcpus, workload=list(workload))
    if settle:
        host.run(until=host.now + settle)
    return host.xen.domains.get(built.domid), built


# ---------------------------------------------------------------- domctl
def domctl(xen, caller, cmd, domid=0, u=None, version=XEN_DOMCTL_INTERFACE_VERSION):
    op = XenDomctl(cmd=cmd, interface_version=version, domain=domid, u=u)
    return hypercall(xen, caller, HYPERVISOR_domctl, op)


def create(xen, dom0, domid=0, **kw):
    """(rc, new domid) of a createdomain with what xl would ask for."""
    kw.setdefault("max_vcpus", 1)
    kw.setdefault("grant_opts", 1)
    kw.setdefault("max_grant_frames", -1)
    kw.setdefault("max_maptrack_frames", -1)
    rc, out = domctl(xen, dom0, XEN_DOMCTL_createdomain, domid, XenDomctlCreatedomain(**kw))
    return rc, (out.domain if out is not None else None)


def domaininfo(xen, caller, domid) -> XenDomctlGetdomaininfo:
    rc, out = domctl(xen, caller, XEN_DOMCTL_getdomaininfo, domid)
    assert rc == 0
    return out.u


# ---------------------------------------------------------------- memory
def memop(xen, who, cmd, arg):
    return hypercall(xen, who, HYPERVISOR_memory_op, cmd, arg)


def reservation(**kw) -> XenMemoryReservation:
    kw.setdefault("domid", DOMID_SELF)
    return XenMemoryReservation(**kw)


# ---------------------------------------------------------------- page tables
def pte(mfn: int, flags: int = PRESENT) -> int:
    return (mfn << 12) | flags


def write_entries(xen, d, table_mfn, entries):
    """The guest fills a page it will pin as a table (it is still plain
    writable memory then)."""
    page = xen.frames.map_domain_page(d, table_mfn, writable=True)
    for i, e in entries.items():
        struct.pack_into("<Q", page, i * 8, e)


def mmuext(xen, who, *ops, foreigndom=DOMID_SELF):
    return hypercall(xen, who, HYPERVISOR_mmuext_op, tuple(ops), foreigndom)


def pin(xen, d, level, mfn, foreigndom=DOMID_SELF):
    cmd = {1: MMUEXT_PIN_L1_TABLE, 2: MMUEXT_PIN_L2_TABLE}[level]
    return mmuext(xen, d, MmuextOp(cmd=cmd, arg1=mfn), foreigndom=foreigndom)


def unpin(xen, d, mfn):
    return mmuext(xen, d, MmuextOp(cmd=MMUEXT_UNPIN_TABLE, arg1=mfn))


def mmu_update(xen, who, *reqs, foreigndom=DOMID_SELF):
    return hypercall(xen, who, HYPERVISOR_mmu_update, tuple(reqs), foreigndom)


# ---------------------------------------------------------------- sched, time
def sched(xen, who, cmd, arg=None) -> int:
    return hypercall(xen, who, HYPERVISOR_sched_op, cmd, arg)[0]


def settime(xen, caller, secs, nsecs=0, system_time=0, mbz=0, cmd=XENPF_settime64,
            version=XENPF_INTERFACE_VERSION) -> int:
    op = XenPlatformOp(cmd=cmd, interface_version=version, u=XenpfSettime64(
        secs=secs, nsecs=nsecs, mbz=mbz, system_time=system_time))
    return hypercall(xen, caller, HYPERVISOR_platform_op, op)[0]
