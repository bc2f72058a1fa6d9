"""memory_op (the role of Xen's common/memory.c): growing and shrinking a
domain's reservation, and asking about it.

The reservation operations never fail with an errno: they return how many
extents they completed, stopping at the first that could not be done
(including when the caller may not touch the domain), as Xen does.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from hv.public.errno import EFAULT, EINVAL, ENOSYS, ESRCH
from hv.public.memory import (
    MEMOP_CMD_MASK, MEMOP_EXTENT_SHIFT, XENMEM_current_reservation,
    XENMEM_decrease_reservation, XENMEM_increase_reservation, XENMEM_maximum_gpfn,
    XENMEM_maximum_ram_page, XENMEM_maximum_reservation, XENMEM_populate_physmap,
    XENMEMF_exact_node_request, XENMEMF_get_address_bits, XENMEMF_get_node,
    XENMEMF_populate_on_demand, XENMEMF_vnode, XenMemoryDomain, XenMemoryReservation,
)
from hv.public.xen import PAGE_SHIFT
from hv.public.xen import SharedInfo
from hv.xen.dispatch import copy_from_guest
from hv.xen.errors import XenError
from hv.xen.mm import DOMHEAP
from hv.xen.page_alloc import MAX_ORDER

if TYPE_CHECKING:
    from hv.xen.domain import VCPU, Domain
    from hv.xen.hypervisor import Xen

SHINFO_ARCH_MAX_PFN = SharedInfo.offsetof("arch")   # arch_shared_info.max_pfn comes first
_U64 = struct.Struct("<Q")

DOMU_MAX_ORDER = 9        # x86: PAGETABLE_ORDER
HWDOM_MAX_ORDER = 12
CTLDOM_MAX_ORDER = MAX_ORDER

# The machine is one NUMA node, node 0; Xen on x86 allows 64.
NUMA_NO_NODE = 0xFF
MAX_NUMNODES = 64
HOST_NODES = frozenset({0})


class MemopFlags:
    """What a reservation's mem_flags ask of the allocator (memflags)."""
    __slots__ = ("limit", "node", "exact_node")

    def __init__(self, limit: int | None, node: int, exact_node: bool):
        self.limit = limit              # every frame below this mfn
        self.node = node
        self.exact_node = exact_node    # that node or nothing


class Memory:
    def __init__(self, xen: "Xen"):
        self.xen = xen

    def max_order(self, d: "Domain") -> int:
        order = DOMU_MAX_ORDER
        if d.is_privileged:
            order = max(order, CTLDOM_MAX_ORDER)
        if d.is_hardware_domain:
            order = max(order, HWDOM_MAX_ORDER)
        return min(order, MAX_ORDER)

    def do_memory_op(self, v: "VCPU", cmd: int, arg):
        if not isinstance(cmd, int):
            raise XenError(EFAULT)
        start_extent = cmd >> MEMOP_EXTENT_SHIFT
        op = cmd & MEMOP_CMD_MASK
        if op in (XENMEM_increase_reservation, XENMEM_decrease_reservation,
                  XENMEM_populate_physmap):
            if type(arg) is not XenMemoryReservation:
                return start_extent, arg
            return self._reservation_op(v, op, start_extent, arg)
        if op == XENMEM_maximum_ram_page:
            if start_extent:
                raise XenError(EINVAL)
            return self.xen.ram.nr_frames, arg
        if op in (XENMEM_current_reservation, XENMEM_maximum_reservation, XENMEM_maximum_gpfn):
            if start_extent:
                raise XenError(EINVAL)
            copy_from_guest(arg, XenMemoryDomain)
            d = self.xen.domains.by_any_id(v.domain, arg.domid)
            if d is None:
                raise XenError(ESRCH)
            self.xen.xsm.target(v.domain, d)
            if op == XENMEM_current_reservation:
                return d.tot_pages, arg
            if op == XENMEM_maximum_reservation:
                return d.max_pages, arg
            # A PV guest states its size in its shared_info (arch.max_pfn,
            # a count of pfns), and Xen reports the highest pfn from that.
            max_pfn = _U64.unpack_from(d.shared_info, SHINFO_ARCH_MAX_PFN)[0]
            return (max_pfn or 1) - 1, arg
        raise XenError(ENOSYS)

    def _reservation_op(self, v: "VCPU", op: int, start: int, res: XenMemoryReservation):
        caller = v.domain
        if res.nr_extents > (0xFFFFFFFF >> MEMOP_EXTENT_SHIFT) or start >= res.nr_extents:
            return start, res
        d = self.xen.domains.by_any_id(caller, res.domid)
        if d is None or not self.xen.xsm.is_target(caller, d):
            return start, res
        extents = res.extent_start
        if extents is not None and (not isinstance(extents, tuple) or len(extents) < res.nr_extents):
            return start, res   # the guest's list is shorter than it says
        flags = self.construct_memop_flags(caller, res.mem_flags)
        if flags is None or res.extent_order > self.max_order(caller):
            return start, res
        if op == XENMEM_increase_reservation:
            done, out = self.increase_reservation(d, res, start, flags)
        elif op == XENMEM_decrease_reservation:
            if extents is None:
                return start, res
            done, out = self.decrease_reservation(d, res, start)
        else:
            if extents is None or res.mem_flags & XENMEMF_populate_on_demand:
                return start, res
            done, out = self.populate_physmap(d, res, start, flags)
        if out is not None:
            res = XenMemoryReservation(extent_start=out, nr_extents=res.nr_extents,
                                       extent_order=res.extent_order,
                                       mem_flags=res.mem_flags, domid=res.domid)
        return done, res

    def construct_memop_flags(self, caller: "Domain", mem_flags: int) -> MemopFlags | None:
        """Read mem_flags as construct_memop_from_reservation() does; None
        refuses the request. An address width at or above the machine's
        asks nothing; a node is only the control and hardware domains' to
        choose, and another domain asking for an exact one is refused.
        Domains have no virtual NUMA layout here, so a vnode is no hint."""
        limit = None
        bits = XENMEMF_get_address_bits(mem_flags)
        machine_bits = (self.xen.ram.nr_frames - 1).bit_length() + PAGE_SHIFT
        if bits and bits < machine_bits:
            if bits <= PAGE_SHIFT:
                return None
            limit = 1 << (bits - PAGE_SHIFT)
        node, exact = XENMEMF_get_node(mem_flags), bool(mem_flags & XENMEMF_exact_node_request)
        if mem_flags & XENMEMF_vnode or node == NUMA_NO_NODE:
            return MemopFlags(limit, NUMA_NO_NODE, False)
        if caller.is_hardware_domain or caller.is_privileged:
            if node >= MAX_NUMNODES:
                return None
            return MemopFlags(limit, node, exact)
        if exact:
            return None
        return MemopFlags(limit, NUMA_NO_NODE, False)

    def _alloc_extent(self, d: "Domain", order: int, flags: MemopFlags) -> int | None:
        if flags.exact_node and flags.node not in HOST_NODES:
            return None     # a node with no memory has nothing to give
        try:
            return self.xen.frames.alloc_domheap_pages(d, order, flags.limit)
        except XenError:
            return None

    def increase_reservation(self, d: "Domain", res: XenMemoryReservation, start: int,
                             flags: MemopFlags):
        """Allocate extents; report their MFNs. They join no gpfn until the
        guest says where (MMU_MACHPHYS_UPDATE)."""
        out = list(res.extent_start) if res.extent_start is not None else None
        i = start
        while i < res.nr_extents:
            mfn = self._alloc_extent(d, res.extent_order, flags)
            if mfn is None:
                break
            if out is not None:
                out[i] = mfn
            i += 1
        return i, tuple(out) if out is not None else None

    def decrease_reservation(self, d: "Domain", res: XenMemoryReservation, start: int):
        """Give extents back, named by GMFN (the machine frame, for PV). A
        frame another domain still maps is freed when it lets go."""
        i = start
        while i < res.nr_extents:
            gmfn = res.extent_start[i]
            if not isinstance(gmfn, int):
                break
            if any(not self.guest_remove_page(d, gmfn + j)
                   for j in range(1 << res.extent_order)):
                break
            i += 1
        return i, None

    def guest_remove_page(self, d: "Domain", mfn: int) -> bool:
        frames = self.xen.frames
        # Xen's own pages shared with the guest (shared_info, grant frames)
        # are not the guest's to give back. A frame already given back but
        # still mapped elsewhere is given back again: nothing more to do.
        if frames.pool(mfn) != DOMHEAP or not frames.get_page(mfn, d):
            return False
        gpfn = frames.gpfn(mfn)
        if gpfn is not None:
            self.xen.p2m.guest_physmap_remove_page(d, gpfn, mfn, 0)
        frames.put_page_alloc_ref(mfn)
        frames.put_page(mfn)
        return True

    def populate_physmap(self, d: "Domain", res: XenMemoryReservation, start: int,
                         flags: MemopFlags):
        """Allocate extents at the GPFNs given; report their MFNs back."""
        out = list(res.extent_start)
        i = start
        while i < res.nr_extents:
            gpfn = out[i]
            if not isinstance(gpfn, int) or gpfn < 0:
                break
            mfn = self._alloc_extent(d, res.extent_order, flags)
            if mfn is None:
                break
            self.xen.p2m.guest_physmap_add_page(d, gpfn, mfn, res.extent_order)
            out[i] = mfn
            i += 1
        return i, tuple(out)

