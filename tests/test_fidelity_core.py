"""Fidelity of the hypervisor core to Xen 4.17, rule by rule, where the rule
is observable through hypercalls: the exact errno, which of two checks comes
first, what is left behind after a failure, counts, and what the guest gets
back. Each test names the Xen source (under xen/) that makes the rule."""

import struct

import pytest

from hv.guest.grant_table import GuestGrantTable
from hv.public.domctl import (
    XEN_INVALID_MAX_VCPU_ID,
    XEN_DOMCTL_CDF_xs_domain,
    XEN_DOMCTL_destroydomain,
    XEN_DOMCTL_getdomaininfo,
    XEN_DOMCTL_getvcpuinfo,
    XEN_DOMCTL_max_mem,
    XEN_DOMCTL_max_vcpus,
    XEN_DOMCTL_pausedomain,
    XEN_DOMCTL_resumedomain,
    XEN_DOMCTL_setvcpucontext,
    XEN_DOMINF_blocked,
    XEN_DOMINF_paused,
    XEN_DOMINF_running,
    XEN_DOMINF_shutdown,
    XEN_DOMINF_shutdownshift,
    XenDomctlGetvcpuinfo,
    XenDomctlMaxMem,
    XenDomctlMaxVcpus,
    XenDomctlVcpucontext,
)
from hv.public.errno import (
    E2BIG,
    EACCES,
    EBUSY,
    EEXIST,
    EFAULT,
    EINVAL,
    ENOENT,
    ENOSYS,
    EPERM,
    ESRCH,
)
from hv.public.event_channel import (
    EvtchnAllocUnbound,
    EvtchnBindVirq,
    EVTCHNOP_alloc_unbound,
    EVTCHNOP_bind_virq,
    EVTCHNOP_send,
    EvtchnSend,
)
from hv.public.grant_table import (
    GNTMAP_host_map,
    GNTMAP_readonly,
    GnttabMapGrantRef,
    GNTTABOP_map_grant_ref,
    GNTTABOP_unmap_grant_ref,
    GnttabUnmapGrantRef,
)
from hv.public.memory import (
    MEMOP_EXTENT_SHIFT,
    XENMEM_decrease_reservation,
    XENMEM_increase_reservation,
    XENMEM_maximum_gpfn,
    XENMEM_populate_physmap,
    XENMEMF_address_bits,
    XENMEMF_exact_node_request,
    XENMEMF_node,
    XENMEMF_populate_on_demand,
    XenMemoryDomain,
)
from hv.public.sched import (
    SCHEDOP_block,
    SCHEDOP_pin_override,
    SchedPinOverride,
    SCHEDOP_remote_shutdown,
    SCHEDOP_shutdown,
    SCHEDOP_shutdown_code,
    SCHEDOP_watchdog,
    SchedRemoteShutdown,
    SchedShutdown,
    SchedWatchdog,
    SHUTDOWN_crash,
    SHUTDOWN_poweroff,
    SHUTDOWN_suspend,
    SHUTDOWN_watchdog,
)
from hv.public.vcpu import (
    VCPUOP_initialise,
    VCPUOP_is_up,
    VCPUOP_set_periodic_timer,
    VCPUOP_set_singleshot_timer,
    VcpuSetPeriodicTimer,
)
from hv.public.version import (
    XenCommandline,
    XENFEAT_dom0,
    XENFEAT_gnttab_map_avail_bits,
    XENFEAT_highmem_assist,
    XENFEAT_mmu_pt_update_preserve_ad,
    XENFEAT_pae_pgdir_above_4gb,
    XenFeatureInfo,
    XenPlatformParameters,
    XENVER_commandline,
    XENVER_get_features,
    XENVER_pagesize,
    XENVER_platform_parameters,
    XENVER_version,
)
from hv.public.xen import (
    DOMID_SELF,
    MMU_NORMAL_PT_UPDATE,
    MMU_PT_UPDATE_NO_TRANSLATE,
    MMUEXT_CLEAR_PAGE,
    MMUEXT_COPY_PAGE,
    MMUEXT_FLUSH_CACHE,
    MMUEXT_INVLPG_ALL,
    MMUEXT_INVLPG_LOCAL,
    MMUEXT_TLB_FLUSH_ALL,
    MMUEXT_TLB_FLUSH_LOCAL,
    SHINFO_WC_NSEC,
    SHINFO_WC_SEC,
    SHINFO_WC_SEC_HI,
    VIRQ_TIMER,
    ArchSharedInfo,
    CONSOLEIO_read,
    CONSOLEIO_write,
    HYPERVISOR_console_io,
    HYPERVISOR_event_channel_op,
    HYPERVISOR_grant_table_op,
    HYPERVISOR_multicall,
    HYPERVISOR_sched_op,
    HYPERVISOR_set_timer_op,
    HYPERVISOR_vcpu_op,
    HYPERVISOR_xen_version,
    MmuextOp,
    MmuUpdate,
    MulticallEntry,
    SharedInfo,
    VcpuGuestContext,
)
from hv.xen.event_channel import ECS_UNBOUND
from hv.xen.hypervisor import GiB
from hv.xen.mm import PGT_l1_page_table, PGT_none
from hv.xen.timer import NS_PER_MS, NS_PER_S
from xl.dombuild import build_pv_domain
from xl.privcmd import Privcmd
from tests.conftest import hypercall, make_host
from tests.calls import (
    PRESENT, RW, create, domaininfo, domctl, memop, mmu_update, mmuext, pin, pte,
    reservation, sched, settime, unpin, write_entries,
)

_PAGE_PWT, _PAGE_PCD, _PAGE_PSE, _PAGE_GLOBAL = 0x008, 0x010, 0x080, 0x100
U64 = (1 << 64) - 1


# ---------------------------------------------------------------- helpers
def bind_timer(xen, d, vcpu=0):
    rc, out = hypercall(xen, d, HYPERVISOR_event_channel_op, EVTCHNOP_bind_virq,
                        EvtchnBindVirq(virq=VIRQ_TIMER, vcpu=vcpu))
    assert rc == 0
    return out.port


# ================================================================ memory.c
def test_increase_reservation_above_the_callers_max_order_does_nothing(xen, make_domu):
    # common/memory.c increase_reservation() l.121: extent_order >
    # max_order(current->domain) returns with nr_done untouched; x86
    # CONFIG_DOMU_MAX_ORDER is PAGETABLE_ORDER (9).
    d = make_domu(16)
    domctl(xen, xen.hardware_domain, XEN_DOMCTL_max_mem, d.domid, XenDomctlMaxMem(max_memkb=64 << 10))
    free = xen.free_pages
    done, out = memop(xen, d, XENMEM_increase_reservation,
                      reservation(extent_start=(0,), nr_extents=1, extent_order=10))
    assert done == 0 and out.extent_start == (0,)
    assert d.tot_pages == 4096 and xen.free_pages == free
    # Order 9 is within a domU's limit.
    done, _ = memop(xen, d, XENMEM_increase_reservation,
                    reservation(extent_start=(0,), nr_extents=1, extent_order=9))
    assert done == 1 and d.tot_pages == 4096 + 512


def test_decrease_reservation_above_the_callers_max_order_frees_nothing(xen, make_domu):
    # common/memory.c decrease_reservation() l.456-459: the order check
    # returns before any page is looked at.
    d = make_domu(16)
    mfn = xen.p2m.lookup(d, 1024)
    done, _ = memop(xen, d, XENMEM_decrease_reservation,
                    reservation(extent_start=(mfn,), nr_extents=1, extent_order=10))
    assert done == 0 and d.tot_pages == 4096 and xen.frames.owner(mfn) is d


def test_the_order_limit_is_the_callers_not_the_targets(xen, dom0, make_domu):
    # common/memory.c populate_physmap() l.170: the limit is
    # max_order(curr_d); for the control domain it is ctldom_max_order.
    d = make_domu(16)
    mfns = tuple(xen.p2m.lookup(d, g) for g in range(2048, 3072))
    assert memop(xen, d, XENMEM_decrease_reservation,
                 reservation(extent_start=mfns, nr_extents=1024))[0] == 1024
    big = reservation(extent_start=(2048,), nr_extents=1, extent_order=10)
    assert memop(xen, d, XENMEM_populate_physmap, big)[0] == 0
    assert memop(xen, dom0, XENMEM_populate_physmap, big.replace(domid=d.domid))[0] == 1
    assert d.tot_pages == 4096 and xen.p2m.lookup(d, 3071) is not None


def test_the_control_domains_extent_order_stops_at_x86_max_order_18():
    # common/memory.c max_order(): min(order, MAX_ORDER); x86
    # asm/config.h l.26: CONFIG_PAGEALLOC_MAX_ORDER is 2 * PAGETABLE_ORDER
    # (18), so an order-19 extent is refused even to dom0.
    host = make_host(memory=4 * GiB)
    xen, dom0 = host.xen, host.dom0
    rc, domid = create(xen, dom0)
    assert rc == 0
    assert domctl(xen, dom0, XEN_DOMCTL_max_mem, domid, XenDomctlMaxMem(max_memkb=4 << 20))[0] == 0
    done, _ = memop(xen, dom0, XENMEM_increase_reservation,
                    reservation(extent_start=(0,), nr_extents=1, extent_order=19, domid=domid))
    assert done == 0 and xen.domains.get(domid).tot_pages == 0
    domctl(xen, dom0, XEN_DOMCTL_destroydomain, domid)


@pytest.mark.parametrize("mem_flags", [
    XENMEMF_address_bits(1), XENMEMF_address_bits(12),
], ids=["address_bits_1", "address_bits_12"])
def test_address_bits_at_or_below_page_shift_refuse_the_request(xen, make_domu, mem_flags):
    # common/memory.c construct_memop_from_reservation() l.1035: an
    # address width of PAGE_SHIFT bits or less is -EINVAL, which
    # do_memory_op() l.1422 turns into "start_extent done".
    d = make_domu(16)
    done, _ = memop(xen, d, XENMEM_increase_reservation,
                    reservation(extent_start=(0,), nr_extents=1, mem_flags=mem_flags))
    assert done == 0 and d.tot_pages == 4096


def test_an_exact_node_request_from_a_domu_is_refused(xen, make_domu):
    # common/memory.c propagate_node() l.541: a domain that is neither the
    # hardware nor the control domain may not ask for an exact node.
    d = make_domu(16)
    done, _ = memop(xen, d, XENMEM_increase_reservation, reservation(
        extent_start=(0,), nr_extents=1, mem_flags=XENMEMF_node(0) | XENMEMF_exact_node_request))
    assert done == 0 and d.tot_pages == 4096
    # Without "exact" the node is only a hint and is ignored for a domU.
    done, _ = memop(xen, d, XENMEM_increase_reservation,
                    reservation(extent_start=(0,), nr_extents=1, mem_flags=XENMEMF_node(0)))
    assert done == 1


def test_start_extent_at_or_past_nr_extents_returns_start_extent(xen, make_domu):
    # common/memory.c do_memory_op() l.1414: start_extent >= nr_extents
    # returns start_extent itself, which may exceed nr_extents.
    d = make_domu(16)
    cmd = XENMEM_increase_reservation | (5 << MEMOP_EXTENT_SHIFT)
    assert memop(xen, d, cmd, reservation(extent_start=(0,) * 3, nr_extents=3))[0] == 5
    assert d.tot_pages == 4096


def test_nr_extents_too_large_to_encode_a_continuation_does_nothing(xen, make_domu):
    # common/memory.c do_memory_op() l.1411: nr_extents > UINT_MAX >> 6.
    d = make_domu(16)
    n = (0xFFFFFFFF >> MEMOP_EXTENT_SHIFT) + 1
    assert memop(xen, d, XENMEM_increase_reservation,
                 reservation(extent_start=None, nr_extents=n))[0] == 0
    assert d.tot_pages == 4096


def test_decrease_of_an_own_frame_not_in_the_physmap(xen, make_domu):
    # common/memory.c guest_remove_page(): for a PV guest get_gfn_query()
    # is the identity and guest_physmap_remove_page() does nothing, so a
    # frame from increase_reservation never given a gpfn is freed all the same.
    d = make_domu(16)
    _, out = memop(xen, d, XENMEM_increase_reservation,
                   reservation(extent_start=(0,), nr_extents=1))
    mfn = out.extent_start[0]
    assert xen.frames.gpfn(mfn) is None and d.tot_pages == 4097
    done, _ = memop(xen, d, XENMEM_decrease_reservation,
                    reservation(extent_start=(mfn,), nr_extents=1))
    assert done == 1 and d.tot_pages == 4096 and xen.frames.owner(mfn) is None


def test_decreasing_again_a_frame_another_domain_still_maps_counts_as_done(xen, make_domu):
    # common/memory.c guest_remove_page(): get_page() succeeds while the
    # grant mapping holds a reference (arch/x86/mm.c
    # page_get_owner_and_reference()), and put_page_alloc_ref() l.435 is a
    # no-op once PGC_allocated is already clear; the extent is done (0).
    front, back = make_domu(16), make_domu(16)
    mfn = xen.p2m.lookup(front, 20)
    ref = GuestGrantTable(xen, front.vcpus[0]).grant_foreign_access(back.domid, mfn, readonly=True)
    _, (m,) = hypercall(xen, back, HYPERVISOR_grant_table_op, GNTTABOP_map_grant_ref,
                        (GnttabMapGrantRef(host_addr=0x1000, flags=GNTMAP_host_map | GNTMAP_readonly,
                                           ref=ref, dom=front.domid),))
    assert m.status == 0
    res = reservation(extent_start=(mfn,), nr_extents=1)
    assert memop(xen, front, XENMEM_decrease_reservation, res)[0] == 1
    second = memop(xen, front, XENMEM_decrease_reservation, res)[0]
    hypercall(xen, back, HYPERVISOR_grant_table_op, GNTTABOP_unmap_grant_ref,
              (GnttabUnmapGrantRef(host_addr=0x1000, handle=m.handle),))
    assert second == 1
    assert xen.frames.owner(mfn) is None and front.tot_pages == 4095


def test_a_half_done_extent_is_not_counted_but_its_freed_pages_stay_freed(xen, make_domu):
    # common/memory.c decrease_reservation() l.500-513: the pages of an
    # extent are removed one by one; the first failure ends the call with
    # nr_done = i, the pages already removed staying removed.
    d = make_domu(16)
    frames = xen.frames
    mfn = next(run.end - 1 for run in d.frames
               if run.tag == "domheap" and frames.owner(run.end) is not d)
    done, _ = memop(xen, d, XENMEM_decrease_reservation,
                    reservation(extent_start=(mfn,), nr_extents=1, extent_order=1))
    assert done == 0
    assert frames.owner(mfn) is None and d.tot_pages == 4095


def test_populate_physmap_at_a_populated_gpfn_allocates_another_frame(xen, make_domu):
    # arch/x86/mm/p2m.c guest_physmap_add_page(): for a PV guest it only
    # sets the M2P of the new frame; the frame already at that gpfn stays
    # the domain's. (Xen also leaves the old frame's M2P entry; the model
    # keeps a one-to-one P2M and clears it, see the report.)
    d = make_domu(16)
    old = xen.p2m.lookup(d, 7)
    done, out = memop(xen, d, XENMEM_populate_physmap,
                      reservation(extent_start=(7,), nr_extents=1))
    new = out.extent_start[0]
    assert done == 1 and new != old
    assert d.tot_pages == 4097
    assert xen.frames.owner(old) is d and xen.frames.owner(new) is d
    assert xen.frames.gpfn(new) == 7


def test_populate_on_demand_into_oneself_is_refused(xen, make_domu):
    # common/memory.c populate_physmap() l.211: "Disallow populating PoD
    # pages on oneself"; an order up to MAX_ORDER gets that far (l.170).
    d = make_domu(16)
    for order in (0, 10):
        done, _ = memop(xen, d, XENMEM_populate_physmap, reservation(
            extent_start=(9000,), nr_extents=1, extent_order=order,
            mem_flags=XENMEMF_populate_on_demand))
        assert done == 0
    assert d.tot_pages == 4096


def test_maximum_gpfn_of_a_pv_guest_is_what_it_wrote_in_shared_info(xen, make_domu):
    # arch/x86/mm.c domain_get_maximum_gpfn() l.490: for PV it is
    # (shared_info->arch.max_pfn ?: 1) - 1, the guest's own figure.
    d = make_domu(16)
    max_pfn_at = SharedInfo.offsetof("arch") + ArchSharedInfo.offsetof("max_pfn")
    struct.pack_into("<Q", d.shared_info, max_pfn_at, 0)
    assert memop(xen, d, XENMEM_maximum_gpfn, XenMemoryDomain(domid=DOMID_SELF))[0] == 0
    struct.pack_into("<Q", d.shared_info, max_pfn_at, 0x12345)
    assert memop(xen, d, XENMEM_maximum_gpfn, XenMemoryDomain(domid=DOMID_SELF))[0] == 0x12344


# ================================================================ arch/x86/mm.c
def test_clear_page_of_a_page_table_is_einval(xen, make_domu):
    # arch/x86/mm.c do_mmuext_op() MMUEXT_CLEAR_PAGE l.3854: a frame that
    # can't take a PGT_writable_page type reference is -EINVAL.
    d = make_domu(16)
    table = xen.p2m.lookup(d, 3)
    assert pin(xen, d, 1, table) == (0, 1)
    assert mmuext(xen, d, MmuextOp(cmd=MMUEXT_CLEAR_PAGE, arg1=table)) == (-EINVAL, 0)
    assert xen.frames.type_of(table) == (PGT_l1_page_table, 1, True)


def test_copy_page_into_a_page_table_is_einval_but_out_of_one_is_fine(xen, make_domu):
    # arch/x86/mm.c MMUEXT_COPY_PAGE l.3879: the source needs only a
    # general reference, the destination a writable type reference.
    d = make_domu(16)
    table, plain = xen.p2m.lookup(d, 3), xen.p2m.lookup(d, 4)
    write_entries(xen, d, table, {5: 0x123400})
    assert pin(xen, d, 1, table) == (0, 1)
    into = MmuextOp(cmd=MMUEXT_COPY_PAGE, arg1=table, arg2=plain)
    out_of = MmuextOp(cmd=MMUEXT_COPY_PAGE, arg1=plain, arg2=table)
    assert mmuext(xen, d, into) == (-EINVAL, 0)
    assert mmuext(xen, d, out_of) == (0, 1)
    assert xen.ram.peek(plain)[40:48] == (0x123400).to_bytes(8, "little")


def test_clear_page_acts_on_the_page_owners_frames_not_the_callers(xen, dom0, make_domu):
    # arch/x86/mm.c MMUEXT_CLEAR_PAGE: get_page_from_gfn(pg_owner, ...);
    # with foreigndom DOMID_SELF the page owner is dom0, which does not
    # own a domU frame: -EINVAL, the frame untouched.
    d = make_domu(16)
    mfn = xen.p2m.lookup(d, 30)
    xen.frames.map_domain_page(d, mfn, writable=True)[:4] = b"keep"
    op = MmuextOp(cmd=MMUEXT_CLEAR_PAGE, arg1=mfn)
    assert mmuext(xen, dom0, op) == (-EINVAL, 0)
    assert xen.ram.peek(mfn)[:4] == b"keep"
    assert mmuext(xen, dom0, op, foreigndom=d.domid) == (0, 1)
    assert xen.ram.peek(mfn)[:4] == bytes(4)


def test_clear_page_of_a_frame_nobody_owns_is_einval(xen, make_domu):
    # arch/x86/mm.c MMUEXT_CLEAR_PAGE: get_page_from_gfn() fails -> -EINVAL.
    d = make_domu(16)
    free_mfn = xen.ram.nr_frames - 1
    assert xen.frames.owner(free_mfn) is None
    assert mmuext(xen, d, MmuextOp(cmd=MMUEXT_CLEAR_PAGE, arg1=free_mfn)) == (-EINVAL, 0)


@pytest.mark.parametrize("low_bits", [4, 5, 6, 7])
def test_mmu_update_pointer_low_bits_4_to_7_are_unknown_commands(xen, make_domu, low_bits):
    # arch/x86/mm.c do_mmu_update() l.4065: cmd = ptr & 7; only 0-3 exist
    # (default: -ENOSYS), so a pointer not 8-byte aligned never writes.
    d = make_domu(16)
    mfn = xen.p2m.lookup(d, 40)
    req = MmuUpdate(ptr=(mfn << 12) + 8 + low_bits, val=0xABCD)
    assert mmu_update(xen, d, req) == (-ENOSYS, 0)
    assert xen.ram.peek(mfn)[:16] == bytes(16)


def test_mmu_pt_update_no_translate_is_a_normal_update_for_pv(xen, make_domu):
    # arch/x86/mm.c do_mmu_update() l.4076: MMU_PT_UPDATE_NO_TRANSLATE
    # shares the MMU_NORMAL_PT_UPDATE path (it only skips gfn translation).
    d = make_domu(16)
    mfn = xen.p2m.lookup(d, 40)
    req = MmuUpdate(ptr=(mfn << 12) + 16 + MMU_PT_UPDATE_NO_TRANSLATE, val=0xABCD)
    assert mmu_update(xen, d, req) == (0, 1)
    assert xen.ram.peek(mfn)[16:24] == (0xABCD).to_bytes(8, "little")


@pytest.mark.parametrize("call", ["mmu_update", "mmuext_op"])
def test_naming_oneself_by_domid_as_the_foreign_domain_is_esrch(xen, make_domu, call):
    # common/page_alloc.c get_pg_owner() l.2669: domid == current's id
    # -> NULL ("Cannot specify itself as foreign domain") -> -ESRCH.
    d = make_domu(16)
    mfn = xen.p2m.lookup(d, 40)
    if call == "mmu_update":
        rc = mmu_update(xen, d, MmuUpdate(ptr=mfn << 12, val=1), foreigndom=d.domid)[0]
    else:
        rc = mmuext(xen, d, MmuextOp(cmd=MMUEXT_TLB_FLUSH_LOCAL), foreigndom=d.domid)[0]
    assert rc == -ESRCH
    assert xen.ram.peek(mfn)[:8] == bytes(8)


@pytest.mark.parametrize("call", ["mmu_update", "mmuext_op"])
def test_an_unknown_foreign_domain_is_esrch_before_any_permission_check(xen, make_domu, call):
    # arch/x86/mm.c do_mmu_update() l.4045 / do_mmuext_op() l.3485:
    # get_pg_owner() fails (-ESRCH) before XSM is asked anything.
    d = make_domu(16)
    if call == "mmu_update":
        rc = mmu_update(xen, d, MmuUpdate(ptr=0, val=0), foreigndom=999)[0]
    else:
        rc = mmuext(xen, d, MmuextOp(cmd=MMUEXT_TLB_FLUSH_LOCAL), foreigndom=999)[0]
    assert rc == -ESRCH


def test_mmu_update_asks_permission_per_request(xen, make_domu):
    # arch/x86/mm.c do_mmu_update() l.4093: xsm_mmu_update() runs inside the
    # loop, for each kind of request; an empty batch naming another domain
    # asks nothing and succeeds. mmuext_op asks up front (l.3494).
    a, b = make_domu(16), make_domu(16)
    assert mmu_update(xen, a, foreigndom=b.domid)[0] == 0
    assert mmuext(xen, a, foreigndom=b.domid)[0] == -EPERM


@pytest.mark.parametrize("cmd", [
    MMUEXT_TLB_FLUSH_LOCAL, MMUEXT_INVLPG_LOCAL, MMUEXT_TLB_FLUSH_ALL, MMUEXT_INVLPG_ALL,
    MMUEXT_FLUSH_CACHE,
])
def test_flushes_for_a_foreign_page_owner_are_eperm(xen, dom0, make_domu, cmd):
    # arch/x86/mm.c do_mmuext_op() l.3746-3803: every flush checks
    # currd == pg_owner first, -EPERM otherwise.
    d = make_domu(16)
    assert mmuext(xen, dom0, MmuextOp(cmd=cmd), foreigndom=d.domid) == (-EPERM, 0)


def test_flush_cache_needs_io_memory_or_port_access(xen, dom0, make_domu):
    # arch/x86/mm.c MMUEXT_FLUSH_CACHE l.3796: !cache_flush_permitted(currd)
    # -> -EACCES; a plain domU has no iomem/ioport capability, the hardware
    # domain has.
    d = make_domu(16)
    assert mmuext(xen, d, MmuextOp(cmd=MMUEXT_FLUSH_CACHE)) == (-EACCES, 0)
    assert mmuext(xen, dom0, MmuextOp(cmd=MMUEXT_FLUSH_CACHE)) == (0, 1)


def test_pinning_an_l1_that_maps_another_domains_frame_is_ebusy(xen, make_domu):
    # arch/x86/mm.c get_page_from_l1e() l.992: real_pg_owner != pg_owner
    # with pg_owner == l1e_owner -> could_not_pin -> -EBUSY, which
    # promote_l1_table() and the pin return. Nothing is left held.
    a, b = make_domu(16), make_domu(16)
    table, theirs = xen.p2m.lookup(a, 1), xen.p2m.lookup(b, 1)
    write_entries(xen, a, table, {0: pte(theirs)})
    assert pin(xen, a, 1, table) == (-EBUSY, 0)
    assert xen.frames.count(theirs) == 1 and xen.frames.type_of(table) == (PGT_none, 0, False)


def test_pinning_an_l1_that_maps_itself_writably_is_ebusy(xen, make_domu):
    # arch/x86/mm.c get_page_from_l1e() l.1015: while the frame is being
    # validated as an L1 it can't take a writable type -> -EBUSY.
    d = make_domu(16)
    table = xen.p2m.lookup(d, 1)
    write_entries(xen, d, table, {0: pte(table, PRESENT | RW)})
    assert pin(xen, d, 1, table) == (-EBUSY, 0)
    assert xen.frames.count(table) == 1 and xen.frames.type_of(table) == (PGT_none, 0, False)


def test_pinning_an_l2_whose_l1_maps_a_foreign_frame_passes_the_ebusy_up(xen, make_domu):
    # arch/x86/mm.c get_page_from_l2e() l.1142: only -EINVAL falls back to
    # the linear-table check; the L1's -EBUSY is the pin's result.
    a, b = make_domu(16), make_domu(16)
    l2, l1 = xen.p2m.lookup(a, 4), xen.p2m.lookup(a, 5)
    write_entries(xen, a, l1, {0: pte(xen.p2m.lookup(b, 1))})
    write_entries(xen, a, l2, {0: pte(l1)})
    assert pin(xen, a, 2, l2) == (-EBUSY, 0)
    assert xen.frames.type_of(l1) == (PGT_none, 0, False)


def test_an_l2_entry_mapping_the_l2_itself_writably_is_einval(xen, make_domu):
    # arch/x86/mm.c get_l2_linear_pagetable() l.696: a linear (self)
    # mapping with _PAGE_RW is refused, so the -EINVAL of the L1 type
    # check stands; nothing is left pinned or typed.
    d = make_domu(16)
    l2 = xen.p2m.lookup(d, 4)
    write_entries(xen, d, l2, {0: pte(l2, PRESENT | RW)})
    assert pin(xen, d, 2, l2) == (-EINVAL, 0)
    assert xen.frames.count(l2) == 1 and xen.frames.type_of(l2) == (PGT_none, 0, False)


@pytest.mark.parametrize("flag", [_PAGE_PWT, _PAGE_PCD, 0x080], ids=["PWT", "PCD", "PAT"])
def test_l1_entries_with_disallowed_flags_are_einval(xen, make_domu, flag):
    # arch/x86/mm.c get_page_from_l1e() l.875 and l1_disallow_mask() l.182:
    # a PV domU without I/O capabilities may not set cache attributes.
    d = make_domu(16)
    table, data = xen.p2m.lookup(d, 1), xen.p2m.lookup(d, 2)
    write_entries(xen, d, table, {0: pte(data, PRESENT | flag)})
    assert pin(xen, d, 1, table) == (-EINVAL, 0)
    assert xen.frames.count(data) == 1


@pytest.mark.parametrize("debug_build, rc", [(False, (0, 1)), (True, (-EINVAL, 0))],
                         ids=["release", "debug"])
def test_pte_bit_62_is_xens_only_in_a_debug_build(debug_build, rc):
    # arch/x86/include/asm/page.h l.347-352: release builds define
    # _PAGE_GNTTAB as 0, so bit 62 is one of the guest's available bits;
    # debug builds add it to L1_DISALLOW_MASK (arch/x86/mm.c l.173).
    host = make_host(debug_build=debug_build)
    xen = host.xen
    d = xen.domains.get(build_pv_domain(Privcmd(xen), memory_kib=16 * 1024).domid)
    table, data = xen.p2m.lookup(d, 1), xen.p2m.lookup(d, 2)
    write_entries(xen, d, table, {0: pte(data, PRESENT | 1 << 62)})
    assert pin(xen, d, 1, table) == rc


def test_an_l1_entry_with_the_global_bit_is_allowed(xen, make_domu):
    # arch/x86/mm.c L1_DISALLOW_MASK l.173 takes _PAGE_GLOBAL out of the mask.
    d = make_domu(16)
    table, data = xen.p2m.lookup(d, 1), xen.p2m.lookup(d, 2)
    write_entries(xen, d, table, {0: pte(data, PRESENT | _PAGE_GLOBAL)})
    assert pin(xen, d, 1, table) == (0, 1)
    assert xen.frames.count(data) == 2


def test_mmu_update_with_disallowed_l1_flags_leaves_the_entry(xen, make_domu):
    # arch/x86/mm.c mod_l1_entry() l.2157: the flags are checked before
    # anything else; the old entry stays.
    d = make_domu(16)
    table, data = xen.p2m.lookup(d, 1), xen.p2m.lookup(d, 2)
    assert pin(xen, d, 1, table) == (0, 1)
    req = MmuUpdate(ptr=(table << 12) + 8 | MMU_NORMAL_PT_UPDATE, val=pte(data, PRESENT | _PAGE_PCD))
    assert mmu_update(xen, d, req) == (-EINVAL, 0)
    assert xen.frames.entries(table)[1] == 0 and xen.frames.count(data) == 1


def test_an_l2_entry_with_pse_is_einval(xen, make_domu):
    # arch/x86/mm.c get_page_from_l2e() l.1132: _PAGE_PSE is in
    # L2_DISALLOW_MASK (no superpages for PV guests).
    d = make_domu(16)
    l2, l1 = xen.p2m.lookup(d, 4), xen.p2m.lookup(d, 5)
    write_entries(xen, d, l2, {0: pte(l1, PRESENT | _PAGE_PSE)})
    assert pin(xen, d, 2, l2) == (-EINVAL, 0)
    assert xen.frames.type_of(l1) == (PGT_none, 0, False)


def test_mmu_update_mapping_a_foreign_frame_into_a_live_l1_is_ebusy(xen, make_domu):
    # arch/x86/mm.c mod_l1_entry() returns get_page_from_l1e()'s -EBUSY
    # (could_not_pin, l.992) as the request's result.
    a, b = make_domu(16), make_domu(16)
    table, theirs = xen.p2m.lookup(a, 1), xen.p2m.lookup(b, 1)
    assert pin(xen, a, 1, table) == (0, 1)
    req = MmuUpdate(ptr=table << 12, val=pte(theirs))
    assert mmu_update(xen, a, req) == (-EBUSY, 0)
    assert xen.frames.entries(table)[0] == 0 and xen.frames.count(theirs) == 1


def test_the_control_domain_maps_a_guest_frame_through_foreigndom(xen, dom0, make_domu):
    # arch/x86/mm.c do_mmu_update() passes pg_owner (the foreign domain) to
    # mod_l1_entry(); get_page_from_l1e() accepts a frame whose real owner
    # is pg_owner and takes a reference on it (how privcmd maps guests).
    d = make_domu(16)
    table = xen.p2m.lookup(dom0, 2000)
    theirs = xen.p2m.lookup(d, 50)
    assert pin(xen, dom0, 1, table) == (0, 1)
    rc = mmu_update(xen, dom0, MmuUpdate(ptr=table << 12, val=pte(theirs)), foreigndom=d.domid)
    held = xen.frames.count(theirs)
    mmu_update(xen, dom0, MmuUpdate(ptr=table << 12, val=0))
    assert unpin(xen, dom0, table) == (0, 1)
    assert rc == (0, 1) and held == 2
    assert xen.frames.count(theirs) == 1


def test_mapping_a_guest_frame_without_naming_its_owner_is_ebusy(xen, dom0, make_domu):
    # arch/x86/mm.c get_page_from_l1e() l.992: with foreigndom DOMID_SELF
    # pg_owner is dom0 itself (== l1e_owner), the frame is someone else's
    # -> could_not_pin -> -EBUSY, even for the control domain.
    d = make_domu(16)
    table = xen.p2m.lookup(dom0, 2000)
    theirs = xen.p2m.lookup(d, 50)
    assert pin(xen, dom0, 1, table) == (0, 1)
    rc = mmu_update(xen, dom0, MmuUpdate(ptr=table << 12, val=pte(theirs)))
    assert unpin(xen, dom0, table) == (0, 1)
    assert rc == (-EBUSY, 0) and xen.frames.count(theirs) == 1


def test_the_shared_info_frame_can_never_become_a_page_table(xen, make_domu):
    # arch/x86/mm.c share_xen_page_with_guest() l.507: a shared Xen page
    # keeps a PGT_writable_page type reference for good, so
    # _get_page_type() to an L1 fails -> -EINVAL.
    d = make_domu(16)
    assert pin(xen, d, 1, d.shared_info_mfn) == (-EINVAL, 0)
    assert xen.frames.type_of(d.shared_info_mfn)[0] != PGT_l1_page_table


# ================================================================ domctl.c / domain.c
def test_createdomain_with_a_taken_domid_is_eexist_before_the_config_is_checked(xen, dom0):
    # common/domctl.c do_domctl() XEN_DOMCTL_createdomain l.672-676: the
    # explicit domid is checked (-EEXIST) before domain_create() runs
    # sanitise_domain_config().
    assert create(xen, dom0, domid=42) == (0, 42)
    assert create(xen, dom0, domid=42, max_vcpus=0)[0] == -EEXIST


def test_a_failed_createdomain_still_moves_the_domid_rover(xen, dom0):
    # common/domctl.c XEN_DOMCTL_createdomain l.689: "rover = dom" is set
    # before domain_create() can fail, so the id it picked is skipped.
    rc, first = create(xen, dom0)
    assert rc == 0
    assert create(xen, dom0, flags=1 << 20)[0] == -EINVAL
    assert create(xen, dom0) == (0, first + 2)


@pytest.mark.parametrize("cmd, domid, errno", [
    (XEN_DOMCTL_pausedomain, 999, ESRCH),
    (XEN_DOMCTL_getdomaininfo, 0x7FEF, ESRCH),
    (XEN_DOMCTL_getdomaininfo, DOMID_SELF, EINVAL),
    (200, 999, ESRCH),
])
def test_domctl_looks_up_the_domain_before_asking_xsm(xen, make_domu, cmd, domid, errno):
    # common/domctl.c do_domctl() l.350-357: rcu_lock_domain_by_id() fails
    # with -ESRCH (any sub-op but getdomaininfo); getdomaininfo answers
    # -EINVAL / -ESRCH (l.366-380) before xsm_getdomaininfo(); the general
    # xsm_domctl() comes only at l.590. So a domU learns -ESRCH, not -EPERM.
    d = make_domu(16)
    assert domctl(xen, d, cmd, domid)[0] == -errno


def test_an_unknown_domctl_on_a_missing_domain_is_esrch(xen, dom0):
    # common/domctl.c do_domctl() l.355: the lookup comes before the
    # sub-op switch whose default (arch_do_domctl) gives -ENOSYS.
    assert domctl(xen, dom0, 200, 999)[0] == -ESRCH
    assert domctl(xen, dom0, 200, 0)[0] == -ENOSYS


def test_the_xenstore_domain_may_read_domain_info(xen, dom0):
    # common/domctl.c XEN_DOMCTL_getdomaininfo l.383: xsm_getdomaininfo()
    # is XSM_XS_PRIV, which admits the xenstore domain (xsm/dummy.h).
    rc, domid = create(xen, dom0, flags=XEN_DOMCTL_CDF_xs_domain)
    assert rc == 0
    assert domctl(xen, dom0, XEN_DOMCTL_max_vcpus, domid, XenDomctlMaxVcpus(max=1))[0] == 0
    xs = xen.domains.get(domid)
    rc, out = domctl(xen, xs, XEN_DOMCTL_getdomaininfo, 0)
    assert rc == 0 and out.u.domain == 0
    assert domctl(xen, xs, XEN_DOMCTL_pausedomain, 0)[0] == -EPERM


def test_vcpus_exist_only_once_max_vcpus_has_created_them(xen, dom0):
    # common/domain.c domain_create() l.615 only allocates d->vcpu[];
    # common/domctl.c XEN_DOMCTL_max_vcpus l.740 calls vcpu_create().
    # Before that getdomaininfo() (domctl.c l.75) has no vCPU to report
    # and getvcpuinfo finds d->vcpu[i] NULL (l.865): -ESRCH.
    rc, domid = create(xen, dom0, max_vcpus=2)
    assert rc == 0
    info = domaininfo(xen, dom0, domid)
    assert info.max_vcpu_id == XEN_INVALID_MAX_VCPU_ID and info.nr_online_vcpus == 0
    assert domctl(xen, dom0, XEN_DOMCTL_getvcpuinfo, domid, XenDomctlGetvcpuinfo(vcpu=0))[0] == -ESRCH
    assert domctl(xen, dom0, XEN_DOMCTL_getvcpuinfo, domid, XenDomctlGetvcpuinfo(vcpu=2))[0] == -EINVAL
    assert domctl(xen, dom0, XEN_DOMCTL_max_vcpus, domid, XenDomctlMaxVcpus(max=2))[0] == 0
    assert domaininfo(xen, dom0, domid).max_vcpu_id == 1


def test_domaininfo_of_a_domain_whose_vcpus_are_all_down(xen, dom0, make_domu):
    # common/domctl.c getdomaininfo() l.97: with no online vCPU the
    # running/blocked part of the flags is 0; the shutdown field still
    # carries SHUTDOWN_CODE_INVALID (~0u << 16, truncated to 32 bits).
    d = make_domu(16)
    assert domctl(xen, dom0, XEN_DOMCTL_setvcpucontext, d.domid,
                  XenDomctlVcpucontext(vcpu=0, ctxt=None))[0] == 0
    info = domaininfo(xen, dom0, d.domid)
    assert info.nr_online_vcpus == 0
    assert info.flags & (XEN_DOMINF_blocked | XEN_DOMINF_running | XEN_DOMINF_shutdown) == 0
    assert info.flags >> XEN_DOMINF_shutdownshift == 0xFFFF


def test_resetting_a_blocked_vcpu_clears_its_blocked_state(xen, dom0, make_domu):
    # common/domain.c vcpu_reset() l.1445 (XEN_DOMCTL_setvcpucontext with a
    # NULL context, domctl.c l.620) sets _VPF_down and clears _VPF_blocked
    # (l.1470), so a vCPU reset while blocked is not left blocked.
    d = make_domu(16)
    assert sched(xen, d, SCHEDOP_block) == 0
    assert domctl(xen, dom0, XEN_DOMCTL_setvcpucontext, d.domid,
                  XenDomctlVcpucontext(vcpu=0, ctxt=None))[0] == 0
    _, out = domctl(xen, dom0, XEN_DOMCTL_getvcpuinfo, d.domid, XenDomctlGetvcpuinfo(vcpu=0))
    assert (out.u.online, out.u.blocked) == (0, 0)


def test_a_shutdown_code_given_first_is_the_shutdown_reason(xen, dom0, make_domu):
    # common/sched/core.c SCHEDOP_shutdown_code l.1916 sets the code only if
    # none is set; common/domain.c domain_shutdown() l.1030-1032 then keeps
    # it ("reason = d->shutdown_code").
    d = make_domu(16)
    assert sched(xen, d, SCHEDOP_shutdown_code, SchedShutdown(reason=SHUTDOWN_crash)) == 0
    assert sched(xen, d, SCHEDOP_shutdown_code, SchedShutdown(reason=SHUTDOWN_suspend)) == 0
    info = domaininfo(xen, dom0, d.domid)
    # The code shows even before any shutdown (getdomaininfo() l.104).
    assert not info.flags & XEN_DOMINF_shutdown
    assert (info.flags >> XEN_DOMINF_shutdownshift) & 0xFF == SHUTDOWN_crash
    assert sched(xen, d, SCHEDOP_shutdown, SchedShutdown(reason=SHUTDOWN_poweroff)) == 0
    info = domaininfo(xen, dom0, d.domid)
    assert info.flags & XEN_DOMINF_shutdown
    assert (info.flags >> XEN_DOMINF_shutdownshift) & 0xFF == SHUTDOWN_crash


@pytest.mark.parametrize("reason", [0x103, 0xFFFFFF04])
def test_shutdown_reasons_are_truncated_to_8_bits(xen, dom0, make_domu, reason):
    # common/sched/core.c SCHEDOP_shutdown l.1907 passes (u8)reason; the
    # remote form passes the unsigned int to domain_shutdown(d, u8 reason).
    a, b = make_domu(16), make_domu(16)
    assert sched(xen, a, SCHEDOP_shutdown, SchedShutdown(reason=reason)) == 0
    assert sched(xen, dom0, SCHEDOP_remote_shutdown,
                 SchedRemoteShutdown(domain_id=b.domid, reason=reason)) == 0
    assert a.shutdown_code == b.shutdown_code == reason & 0xFF


def test_remote_shutdown_of_a_missing_domain_is_esrch_even_unprivileged(xen, make_domu):
    # common/sched/core.c SCHEDOP_remote_shutdown l.1947-1953: the domain
    # lookup (-ESRCH) comes before xsm_schedop_shutdown() (-EPERM).
    d = make_domu(16)
    assert sched(xen, d, SCHEDOP_remote_shutdown,
                 SchedRemoteShutdown(domain_id=500, reason=SHUTDOWN_poweroff)) == -ESRCH


def test_resuming_a_domain_that_is_not_shut_down(xen, dom0, make_domu):
    # common/domain.c domain_resume() l.1065: no check that the domain is
    # shut down; it clears the shutdown code, balances its own pause, and
    # XEN_DOMCTL_resumedomain returns 0.
    d = make_domu(16)
    sched(xen, d, SCHEDOP_shutdown_code, SchedShutdown(reason=SHUTDOWN_crash))
    assert domctl(xen, dom0, XEN_DOMCTL_resumedomain, d.domid)[0] == 0
    info = domaininfo(xen, dom0, d.domid)
    assert info.flags >> XEN_DOMINF_shutdownshift == 0xFFFF
    assert not info.flags & XEN_DOMINF_paused and d.pause_count == 0


def test_destroying_a_domain_that_is_still_dying_succeeds(xen, dom0, make_domu):
    # common/domain.c domain_kill() l.989: DOMDYING_dead just breaks with
    # rc 0 while another domain's mapping keeps the domain around.
    front, back = make_domu(16), make_domu(16)
    mfn = xen.p2m.lookup(front, 20)
    ref = GuestGrantTable(xen, front.vcpus[0]).grant_foreign_access(back.domid, mfn, readonly=True)
    _, (m,) = hypercall(xen, back, HYPERVISOR_grant_table_op, GNTTABOP_map_grant_ref,
                        (GnttabMapGrantRef(host_addr=0x1000, flags=GNTMAP_host_map | GNTMAP_readonly,
                                           ref=ref, dom=front.domid),))
    assert m.status == 0
    assert domctl(xen, dom0, XEN_DOMCTL_destroydomain, front.domid)[0] == 0
    assert xen.domains.get(front.domid) is front
    assert domctl(xen, dom0, XEN_DOMCTL_destroydomain, front.domid)[0] == 0
    hypercall(xen, back, HYPERVISOR_grant_table_op, GNTTABOP_unmap_grant_ref,
              (GnttabUnmapGrantRef(host_addr=0x1000, handle=m.handle),))
    assert xen.domains.get(front.domid) is None


def test_max_mem_is_capped_at_the_width_of_max_pages(xen, dom0, make_domu):
    # common/domctl.c XEN_DOMCTL_max_mem l.884: min(new_max, (typeof
    # d->max_pages)-1), max_pages being an unsigned int.
    d = make_domu(16)
    assert domctl(xen, dom0, XEN_DOMCTL_max_mem, d.domid, XenDomctlMaxMem(max_memkb=U64))[0] == 0
    assert domaininfo(xen, dom0, d.domid).max_pages == 0xFFFFFFFF


# ================================================================ sched/core.c
def test_pin_override_checks_the_hardware_domain_before_reading_its_argument(xen, make_domu):
    # common/sched/core.c SCHEDOP_pin_override l.1984-1990: -EPERM for a
    # non-hardware domain comes before copy_from_guest() (-EFAULT).
    d = make_domu(16)
    assert sched(xen, d, SCHEDOP_pin_override, None) == -EPERM


def test_pin_override_pins_once_and_unpins_once(xen, dom0):
    # common/sched/core.c vcpu_temporary_affinity() l.1612-1662: ending an
    # override not in force is -EINVAL, a second override -EBUSY; a pCPU
    # beyond the machine's is -EINVAL.
    def po(pcpu):
        return sched(xen, dom0, SCHEDOP_pin_override, SchedPinOverride(pcpu=pcpu))
    assert po(-1) == -EINVAL
    assert po(xen.nr_cpus) == -EINVAL
    assert po(1) == 0 and dom0.vcpus[0].processor == 1
    assert po(0) == -EBUSY
    assert po(-1) == 0
    assert po(-1) == -EINVAL


def test_a_watchdog_armed_with_timeout_zero_fires_at_once(host, xen, make_domu):
    # common/sched/core.c domain_watchdog() l.1551: set_timer(NOW() +
    # SECONDS(0)) -- the new watchdog expires immediately.
    d = make_domu(16)
    assert sched(xen, d, SCHEDOP_watchdog, SchedWatchdog(id=0, timeout=0)) == 1
    host.clock.run(until=host.clock.now)
    assert d.is_shut_down and d.shutdown_code == SHUTDOWN_watchdog


def test_a_watchdog_that_fired_stays_allocated(host, xen, dom0, make_domu):
    # common/sched/core.c domain_watchdog_timeout() l.1530 shuts the
    # domain down but never clears watchdog_inuse_map; after a resume the
    # guest can still kick id 1, and a new watchdog gets id 2.
    d = make_domu(16)
    assert sched(xen, d, SCHEDOP_watchdog, SchedWatchdog(id=0, timeout=1)) == 1
    host.clock.run(until=host.clock.now + 2 * NS_PER_S)
    assert d.shutdown_code == SHUTDOWN_watchdog
    assert domctl(xen, dom0, XEN_DOMCTL_resumedomain, d.domid)[0] == 0
    assert sched(xen, d, SCHEDOP_watchdog, SchedWatchdog(id=1, timeout=30)) == 0
    assert sched(xen, d, SCHEDOP_watchdog, SchedWatchdog(id=0, timeout=30)) == 2


def test_set_timer_op_with_a_time_already_past_fires_at_once(host, xen, make_domu):
    # common/sched/core.c do_set_timer_op() l.2014: a positive timeout in
    # the past is neither 0 nor "huge", so set_timer() at that time: due now.
    d = make_domu(16)
    port = bind_timer(xen, d)
    host.clock.run(until=50 * NS_PER_MS)
    assert hypercall(xen, d, HYPERVISOR_set_timer_op, 1)[0] == 0
    host.clock.run(until=host.clock.now)
    assert xen.evtchn.is_pending(d, port)


@pytest.mark.parametrize("ahead, fires_after", [
    ((1 << 50) - 1, (1 << 50) - 1),      # kept as given
    (1 << 50, 100 * NS_PER_MS),          # "huge": 100 ms instead
])
def test_set_timer_op_huge_timeout_boundary(host, xen, make_domu, ahead, fires_after):
    # common/sched/core.c do_set_timer_op() l.2023: offset > 0 and
    # (uint32_t)(offset >> 50) != 0 means a timeout 2^50 ns or more ahead.
    # (Thirteen days of a running machine are too many events to simulate:
    # the test reads the deadline the one-shot timer was armed with.)
    d = make_domu(16)
    now = host.clock.now
    assert hypercall(xen, d, HYPERVISOR_set_timer_op, now + ahead)[0] == 0
    assert d.vcpus[0].singleshot_timer.when == now + fires_after


# ================================================================ vcpu_op (common/domain.c)
def test_vcpu_op_can_only_name_the_callers_own_vcpus(xen, make_domu):
    # arch/x86/domain.c do_vcpu_op() l.1501: domain_vcpu(current->domain,
    # vcpuid), so another domain's vCPU can't even be named; a missing id
    # is -ENOENT before the command is looked at (-ENOSYS).
    a, b = make_domu(16, vcpus=1), make_domu(16, vcpus=2)
    assert hypercall(xen, b, HYPERVISOR_vcpu_op, VCPUOP_is_up, 1)[0] == 0
    assert hypercall(xen, a, HYPERVISOR_vcpu_op, VCPUOP_is_up, 1)[0] == -ENOENT
    assert hypercall(xen, a, HYPERVISOR_vcpu_op, VCPUOP_is_up, 0xFFFFFFFF)[0] == -ENOENT
    assert hypercall(xen, a, HYPERVISOR_vcpu_op, 99, 1)[0] == -ENOENT
    assert hypercall(xen, a, HYPERVISOR_vcpu_op, 99, 0)[0] == -ENOSYS


def test_initialise_reads_the_context_before_refusing_an_initialised_vcpu(xen, make_domu):
    # common/domain.c default_initialise_vcpu() l.1595-1601: copy_from_guest()
    # (-EFAULT) comes before the is_initialised check (-EEXIST).
    d = make_domu(16)
    assert hypercall(xen, d, HYPERVISOR_vcpu_op, VCPUOP_initialise, 0, None)[0] == -EFAULT
    assert hypercall(xen, d, HYPERVISOR_vcpu_op, VCPUOP_initialise, 0,
                     VcpuGuestContext())[0] == -EEXIST


def test_singleshot_timer_of_another_vcpu_is_einval_before_reading_its_argument(xen, make_domu):
    # common/domain.c common_vcpu_op() VCPUOP_set_singleshot_timer l.1716:
    # v != current -> -EINVAL comes before copy_from_guest() (-EFAULT).
    d = make_domu(16, vcpus=2)
    assert hypercall(xen, d, HYPERVISOR_vcpu_op, VCPUOP_set_singleshot_timer, 1, None)[0] == -EINVAL


@pytest.mark.parametrize("period, rc", [
    (1 << 51, 0), ((1 << 62) - 1, 0), (1 << 62, -EINVAL),
])
def test_periodic_timer_period_may_reach_stime_delta_max(xen, make_domu, period, rc):
    # common/domain.c VCPUOP_set_periodic_timer l.1699: period_ns >
    # STIME_DELTA_MAX is -EINVAL; include/xen/time.h l.62 defines it as
    # ~0ull >> 2 (2^62 - 1).
    d = make_domu(16)
    assert hypercall(xen, d, HYPERVISOR_vcpu_op, VCPUOP_set_periodic_timer, 0,
                     VcpuSetPeriodicTimer(period_ns=period))[0] == rc


def test_setting_a_periodic_timer_raises_virq_timer_at_once(host, xen, make_domu):
    # common/sched/core.c vcpu_set_periodic_timer() l.2145 runs
    # vcpu_periodic_timer_work_locked(): now >= periodic_last_event (0) +
    # period, so send_timer_event() before returning.
    d = make_domu(16)
    port = bind_timer(xen, d)
    host.clock.run(until=host.clock.now + 50 * NS_PER_MS)
    assert hypercall(xen, d, HYPERVISOR_vcpu_op, VCPUOP_set_periodic_timer, 0,
                     VcpuSetPeriodicTimer(period_ns=10 * NS_PER_MS))[0] == 0
    assert xen.evtchn.is_pending(d, port)


# ================================================================ multicall.c
def test_a_failed_entry_does_not_stop_the_multicall(xen, dom0):
    # common/multicall.c do_multicall() l.54-107: each entry's result goes
    # to its own result field and the loop goes on; the multicall itself
    # returns 0.
    entries = (
        MulticallEntry(op=HYPERVISOR_event_channel_op,
                       args=(EVTCHNOP_send, EvtchnSend(port=4000))),
        MulticallEntry(op=HYPERVISOR_event_channel_op,
                       args=(EVTCHNOP_alloc_unbound, EvtchnAllocUnbound(dom=DOMID_SELF))),
        MulticallEntry(op=HYPERVISOR_sched_op, args=(SCHEDOP_pin_override + 100,)),
        MulticallEntry(op=HYPERVISOR_event_channel_op,
                       args=(EVTCHNOP_alloc_unbound, EvtchnAllocUnbound(dom=DOMID_SELF))),
    )
    rc, results = hypercall(xen, dom0, HYPERVISOR_multicall, entries)
    assert rc == 0 and [r[0] for r in results] == [-EINVAL, 0, -ENOSYS, 0]
    ports = (results[1][1].port, results[3][1].port)
    assert ports == (1, 2)
    assert all(dom0.evtchn.chans[p].state == ECS_UNBOUND for p in ports)


def test_an_empty_multicall_succeeds(xen, dom0):
    # common/multicall.c do_multicall(): nr_calls 0 runs no entry, rc 0.
    assert hypercall(xen, dom0, HYPERVISOR_multicall, ())[0] == 0


# ================================================================ kernel.c
def test_get_features_beyond_submap_0_is_einval(xen, make_domu):
    # common/kernel.c XENVER_get_features l.590: submap_idx other than 0
    # -> -EINVAL.
    d = make_domu(16)
    assert hypercall(xen, d, HYPERVISOR_xen_version, XENVER_get_features,
                     XenFeatureInfo(submap_idx=1))[0] == -EINVAL


def test_get_features_of_a_pv_guest(xen, dom0, make_domu):
    # common/kernel.c XENVER_get_features l.555-589: a PV guest has
    # memory_op_vnode_supported (13), mmu_pt_update_preserve_ad,
    # highmem_assist, gnttab_map_avail_bits and direct_mapped (17, not
    # translated); the hardware domain also XENFEAT_dom0.
    expected = ((1 << 13) | (1 << XENFEAT_mmu_pt_update_preserve_ad)
                | (1 << XENFEAT_highmem_assist) | (1 << XENFEAT_gnttab_map_avail_bits)
                | (1 << 17))
    d = make_domu(16)
    _, fd = hypercall(xen, d, HYPERVISOR_xen_version, XENVER_get_features, XenFeatureInfo())
    _, f0 = hypercall(xen, dom0, HYPERVISOR_xen_version, XENVER_get_features, XenFeatureInfo())
    ignore = 1 << XENFEAT_pae_pgdir_above_4gb        # follows the guest's vm_assist
    assert fd.submap & ~ignore == expected
    assert f0.submap & ~ignore == expected | (1 << XENFEAT_dom0)


def test_pagesize_with_an_argument_is_einval(xen, make_domu):
    # common/kernel.c XENVER_pagesize l.598: a non-NULL handle is -EINVAL.
    d = make_domu(16)
    assert hypercall(xen, d, HYPERVISOR_xen_version, XENVER_pagesize)[0] == 4096
    assert hypercall(xen, d, HYPERVISOR_xen_version, XENVER_pagesize,
                     XenFeatureInfo())[0] == -EINVAL


def test_an_unprivileged_domain_reads_denied_for_the_command_line(xen, make_domu):
    # common/kernel.c XENVER_commandline l.616-625: with xsm denying
    # (XSM_PRIV in xsm/dummy.h xsm_xen_version) the guest gets xen_deny(),
    # "<denied>" (common/version.c l.68), and rc 0 -- not -EPERM.
    d = make_domu(16)
    rc, out = hypercall(xen, d, HYPERVISOR_xen_version, XENVER_commandline, XenCommandline())
    assert rc == 0 and out.cmdline.rstrip(b"\0") == b"<denied>"


def test_platform_parameters_and_version_need_no_privilege(xen, make_domu):
    # common/kernel.c l.485 and l.526; xsm/dummy.h xsm_xen_version()
    # lets XENVER_version/platform_parameters through unconditionally.
    d = make_domu(16)
    assert hypercall(xen, d, HYPERVISOR_xen_version, XENVER_version)[0] == 0x40011
    rc, out = hypercall(xen, d, HYPERVISOR_xen_version, XENVER_platform_parameters,
                        XenPlatformParameters())
    assert rc == 0 and out.virt_start == 0xFFFF800000000000


# ================================================================ drivers/char/console.c
def test_console_io_asks_xsm_before_looking_at_the_command(xen, make_domu):
    # drivers/char/console.c do_console_io() l.684: xsm_console_io() runs
    # first, so an unprivileged domain gets -EPERM even for an unknown cmd.
    d = make_domu(16)
    assert hypercall(xen, d, HYPERVISOR_console_io, 7, 0, None)[0] == -EPERM


def test_console_write_returns_zero_and_writes_exactly_count_bytes(xen, dom0):
    # drivers/char/console.c guest_console_write() returns 0, not a count,
    # and writes the hardware domain's bytes unfiltered in 127-byte chunks.
    before = len(xen.console.serial)
    assert hypercall(xen, dom0, HYPERVISOR_console_io, CONSOLEIO_write, 0, b"zz")[0] == 0
    assert len(xen.console.serial) == before
    data = (bytes(range(256)) * 2)[:300]
    assert hypercall(xen, dom0, HYPERVISOR_console_io, CONSOLEIO_write, 300, data + b"X")[0] == 0
    assert bytes(xen.console.serial[before:]) == data


def test_console_write_faults_after_the_chunks_already_written(xen, dom0):
    # drivers/char/console.c guest_console_write() l.604-612: chunks of
    # up to 127 bytes are copied and written one by one; a fault on the
    # second chunk returns -EFAULT with the first already on the console.
    before = len(xen.console.serial)
    rc = hypercall(xen, dom0, HYPERVISOR_console_io, CONSOLEIO_write, 300, b"q" * 200)[0]
    assert rc == -EFAULT
    assert bytes(xen.console.serial[before:]) == b"q" * 127


def test_console_read_count_above_int_max_is_e2big(xen, dom0):
    # drivers/char/console.c do_console_io() CONSOLEIO_read l.699: the
    # count must fit the (positive) return value.
    xen.console.feed_input(b"k")
    assert hypercall(xen, dom0, HYPERVISOR_console_io, CONSOLEIO_read, 1 << 31, None)[0] == -E2BIG
    assert hypercall(xen, dom0, HYPERVISOR_console_io, CONSOLEIO_read, 10, None) == (1, b"k")


def test_console_input_waits_in_a_128_byte_ring(xen, dom0):
    # drivers/char/console.c __serial_rx() l.515: input for dom0 is kept
    # only while serial_rx_prod - serial_rx_cons != SERIAL_RX_SIZE (128).
    xen.console.feed_input(bytes(range(200)))
    rc, data = hypercall(xen, dom0, HYPERVISOR_console_io, CONSOLEIO_read, 1000, None)
    assert rc == 128 and data == bytes(range(128))


# ================================================================ time.c / platform_op
def shared_wallclock(d):
    sec_lo, nsec, sec_hi = (struct.unpack_from("<I", d.shared_info, off)[0]
                            for off in (SHINFO_WC_SEC, SHINFO_WC_NSEC, SHINFO_WC_SEC_HI))
    return sec_hi << 32 | sec_lo, nsec


def test_settime_nanoseconds_beyond_a_second_carry_into_seconds(xen, dom0, make_domu):
    # common/time.c do_settime() l.112-114: x = SECONDS(secs) + nsecs -
    # base; nsecs is not range-checked, do_div() splits the sum.
    d = make_domu(16)
    assert settime(xen, dom0, 2_000_000_000, nsecs=2_500_000_000) == 0
    assert shared_wallclock(d) == (2_000_000_002, 500_000_000)


def test_settime_arithmetic_wraps_in_64_bits(xen, dom0, make_domu):
    # common/time.c do_settime() l.112: u64 x = SECONDS(secs) + nsecs -
    # system_time_base; a base past the time given wraps modulo 2^64, and
    # update_domain_wallclock_time() stores the u64 seconds split in two.
    d = make_domu(16)
    base = 5 * NS_PER_S
    assert settime(xen, dom0, 0, system_time=base) == 0
    x = (0 - base) & U64
    assert shared_wallclock(d) == (x // NS_PER_S, x % NS_PER_S)
