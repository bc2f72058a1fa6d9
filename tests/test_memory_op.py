"""memory_op: a domain's current and maximum allocation, and the
reservation operations a balloon driver and a domain builder use."""

import pytest

from hv.public.errno import EFAULT, EINVAL, ENOSYS, EPERM, ESRCH
from hv.public.grant_table import GNTMAP_host_map, GNTTABOP_map_grant_ref, GnttabMapGrantRef
from hv.public.memory import (
    MEMOP_EXTENT_SHIFT, XENMEM_current_reservation, XENMEM_decrease_reservation,
    XENMEM_increase_reservation, XENMEM_maximum_ram_page, XENMEM_maximum_reservation,
    XENMEM_populate_physmap, XENMEMF_address_bits, XENMEMF_exact_node, XENMEMF_node,
    XenMemoryDomain,
)
from hv.public.xen import (
    DOMID_SELF, HYPERVISOR_grant_table_op, HYPERVISOR_mmu_update,
    MMU_MACHPHYS_UPDATE, MmuUpdate,
)
from hv.guest.grant_table import GuestGrantTable

from tests.conftest import hypercall
from tests.calls import memop, reservation


def test_current_and_maximum_reservation(xen, make_domu):
    d = make_domu(16)
    assert memop(xen, d, XENMEM_current_reservation, XenMemoryDomain(domid=DOMID_SELF))[0] == 4096
    # The builder's limit is the memory plus libxl's 1 MiB of slack.
    assert memop(xen, d, XENMEM_maximum_reservation, XenMemoryDomain(domid=DOMID_SELF))[0] == 4096 + 256


@pytest.mark.parametrize("cmd", [XENMEM_current_reservation, XENMEM_maximum_reservation])
def test_reservation_queries_of_other_domains(xen, dom0, make_domu, cmd):
    a, b = make_domu(16), make_domu(16)
    assert memop(xen, a, cmd, XenMemoryDomain(domid=b.domid)) == (-EPERM, None)
    assert memop(xen, dom0, cmd, XenMemoryDomain(domid=b.domid))[0] > 0
    assert memop(xen, dom0, cmd, XenMemoryDomain(domid=999))[0] == -ESRCH
    assert memop(xen, a, cmd, "not a struct")[0] == -EFAULT


def test_maximum_ram_page_is_the_machine_size(xen, dom0):
    assert memop(xen, dom0, XENMEM_maximum_ram_page, None)[0] == xen.ram.nr_frames
    assert memop(xen, dom0, XENMEM_maximum_ram_page | (1 << MEMOP_EXTENT_SHIFT), None)[0] == -EINVAL


def test_decrease_reservation_gives_frames_back(xen, make_domu):
    d = make_domu(16)
    free = xen.free_pages
    mfns = tuple(xen.p2m.lookup(d, g) for g in (100, 101, 102))
    done, _ = memop(xen, d, XENMEM_decrease_reservation,
                    reservation(extent_start=mfns, nr_extents=3))
    assert done == 3
    assert d.tot_pages == 4096 - 3 and xen.free_pages == free + 3
    assert all(xen.frames.owner(m) is None for m in mfns)
    assert xen.p2m.lookup(d, 100) is None


def test_decrease_stops_at_the_first_frame_not_its_own(xen, make_domu):
    a, b = make_domu(16), make_domu(16)
    theirs = xen.p2m.lookup(b, 5)
    mine = xen.p2m.lookup(a, 5)
    done, _ = memop(xen, a, XENMEM_decrease_reservation,
                    reservation(extent_start=(mine, theirs, xen.p2m.lookup(a, 6)), nr_extents=3))
    assert done == 1
    assert xen.frames.owner(theirs) is b and a.tot_pages == 4095


def test_a_frame_still_mapped_elsewhere_is_freed_only_when_unmapped(xen, make_domu):
    """A frame that is mapped or referenced can't be freed."""
    front, back = make_domu(16), make_domu(16)
    mfn = xen.p2m.lookup(front, 20)
    ref = GuestGrantTable(xen, front.vcpus[0]).grant_foreign_access(back.domid, mfn, readonly=True)
    _, (m,) = hypercall(xen, back, HYPERVISOR_grant_table_op, GNTTABOP_map_grant_ref,
                        (GnttabMapGrantRef(host_addr=0x1000, flags=GNTMAP_host_map | 4,
                                           ref=ref, dom=front.domid),))
    assert m.status == 0
    done, _ = memop(xen, front, XENMEM_decrease_reservation,
                    reservation(extent_start=(mfn,), nr_extents=1))
    assert done == 1
    # Gone from the guest's physmap, still owned and counted until unmapped.
    assert xen.p2m.lookup(front, 20) is None
    assert xen.frames.owner(mfn) is front and front.tot_pages == 4096
    assert not xen.frames.is_allocated(mfn) and xen.frames.count(mfn) == 1
    from hv.public.grant_table import GNTTABOP_unmap_grant_ref, GnttabUnmapGrantRef
    hypercall(xen, back, HYPERVISOR_grant_table_op, GNTTABOP_unmap_grant_ref,
              (GnttabUnmapGrantRef(host_addr=0x1000, handle=m.handle),))
    assert xen.frames.owner(mfn) is None and front.tot_pages == 4095


def test_populate_physmap_fills_gpfns_and_reports_mfns(xen, make_domu):
    d = make_domu(16)
    done, _ = memop(xen, d, XENMEM_decrease_reservation,
                    reservation(extent_start=tuple(xen.p2m.lookup(d, g) for g in range(512, 1024)),
                                nr_extents=512))
    assert done == 512
    done, out = memop(xen, d, XENMEM_populate_physmap,
                      reservation(extent_start=(512,), nr_extents=1, extent_order=9))
    assert done == 1
    mfn = out.extent_start[0]
    assert mfn % 512 == 0                       # an order-9 extent is aligned
    assert [xen.p2m.lookup(d, 512 + i) for i in (0, 511)] == [mfn, mfn + 511]
    assert xen.frames.gpfn(mfn + 7) == 519 and d.tot_pages == 4096


def test_allocation_stops_at_max_pages(xen, make_domu):
    d = make_domu(16)                           # 4096 pages, limit 4352
    done, out = memop(xen, d, XENMEM_increase_reservation,
                      reservation(extent_start=(0,) * 400, nr_extents=400))
    assert done == 256 and d.tot_pages == d.max_pages
    assert all(xen.frames.owner(m) is d for m in out.extent_start[:256])
    assert out.extent_start[256:] == (0,) * 144


def test_increased_frames_join_the_physmap_through_machphys_update(xen, make_domu):
    d = make_domu(16)
    done, out = memop(xen, d, XENMEM_increase_reservation,
                      reservation(extent_start=(0,), nr_extents=1))
    mfn = out.extent_start[0]
    assert done == 1 and xen.frames.gpfn(mfn) is None
    rc, _ = hypercall(xen, d, HYPERVISOR_mmu_update,
                      (MmuUpdate(ptr=(mfn << 12) | MMU_MACHPHYS_UPDATE, val=0x10000),), DOMID_SELF)
    assert rc == 0 and xen.p2m.lookup(d, 0x10000) == mfn


def test_a_guest_may_not_use_extents_above_its_max_order(xen, make_domu):
    d = make_domu(16)
    memop(xen, d, XENMEM_decrease_reservation,
          reservation(extent_start=tuple(xen.p2m.lookup(d, g) for g in range(1024, 2048)),
                      nr_extents=1024))
    done, _ = memop(xen, d, XENMEM_populate_physmap,
                    reservation(extent_start=(1024,), nr_extents=1, extent_order=10))
    assert done == 0 and d.tot_pages == 3072


def test_an_address_width_keeps_every_extent_below_it(xen, dom0, make_domu):
    """XENMEMF_address_bits(29) on a 1 GiB machine: frames below 512 MiB
    only; once those run out the request stops, with memory left above."""
    d = make_domu(16)
    d.max_pages = 1 << 20
    limit = 1 << (29 - 12)
    done, out = memop(xen, dom0, XENMEM_increase_reservation, reservation(
        extent_start=(0,) * 1024, nr_extents=1024, extent_order=9,
        mem_flags=XENMEMF_address_bits(29), domid=d.domid))
    assert 0 < done < 1024
    assert all(m + 512 <= limit for m in out.extent_start[:done])
    assert xen.free_pages >= 512
    more, out = memop(xen, dom0, XENMEM_increase_reservation, reservation(
        extent_start=(0,), nr_extents=1, extent_order=9, domid=d.domid))
    assert more == 1 and out.extent_start[0] >= limit
    # A width at or above the machine's asks nothing.
    assert memop(xen, dom0, XENMEM_increase_reservation, reservation(
        extent_start=(0,), nr_extents=1, mem_flags=XENMEMF_address_bits(30), domid=d.domid))[0] == 1


def test_only_the_control_domain_chooses_a_numa_node(xen, dom0, make_domu):
    """This machine is one node, node 0: dom0 may ask for it exactly, gets
    nothing from an exact node with no memory, and is refused one beyond
    Xen's 64; a domU's node is only a hint, and asking exactly is refused."""
    d = make_domu(16)
    def inc(caller, flags):
        return memop(xen, caller, XENMEM_increase_reservation, reservation(
            extent_start=(0,), nr_extents=1, mem_flags=flags, domid=d.domid))[0]
    assert inc(dom0, XENMEMF_exact_node(0)) == 1
    assert inc(dom0, XENMEMF_exact_node(3)) == 0
    assert inc(dom0, XENMEMF_node(64)) == 0
    assert inc(dom0, XENMEMF_node(3)) == 1
    assert inc(d, XENMEMF_node(3)) == 1
    assert inc(d, XENMEMF_exact_node(0)) == 0


def test_reservation_ops_report_nothing_done_instead_of_errors(xen, dom0, make_domu):
    """Xen's reservation ops never return an errno: a caller that may not
    act, a bad domain or a short list all give 0 extents done."""
    a, b = make_domu(16), make_domu(16)
    cases = [
        (a, reservation(extent_start=(0,), nr_extents=1, domid=b.domid)),       # not its domain
        (dom0, reservation(extent_start=(0,), nr_extents=1, domid=555)),        # no such domain
        (a, reservation(extent_start=(0,), nr_extents=2)),                      # list too short
        (a, reservation(extent_start=None, nr_extents=1)),                      # decrease needs a list
    ]
    for caller, res in cases:
        assert memop(xen, caller, XENMEM_decrease_reservation, res)[0] == 0
    assert memop(xen, a, XENMEM_populate_physmap, "junk")[0] == 0
    assert b.tot_pages == 4096 and a.tot_pages == 4096


def test_a_continuation_starts_at_its_extent(xen, make_domu):
    d = make_domu(16)
    mfns = tuple(xen.p2m.lookup(d, g) for g in (200, 201, 202, 203))
    cmd = XENMEM_decrease_reservation | (2 << MEMOP_EXTENT_SHIFT)
    done, _ = memop(xen, d, cmd, reservation(extent_start=mfns, nr_extents=4))
    assert done == 4
    assert xen.p2m.lookup(d, 200) is not None and xen.p2m.lookup(d, 202) is None


def test_dom0_populates_a_domu(xen, dom0, make_domu):
    d = make_domu(16)
    memop(xen, d, XENMEM_decrease_reservation,
          reservation(extent_start=(xen.p2m.lookup(d, 3000),), nr_extents=1))
    done, out = memop(xen, dom0, XENMEM_populate_physmap,
                      reservation(extent_start=(3000,), nr_extents=1, domid=d.domid))
    assert done == 1 and xen.p2m.lookup(d, 3000) == out.extent_start[0]


def test_unknown_memory_op_is_enosys(xen, dom0):
    assert memop(xen, dom0, 63, None)[0] == -ENOSYS


def test_maximum_gpfn_is_what_a_pv_guest_states_in_its_shared_info(xen, make_domu):
    """domain_get_maximum_gpfn(): (arch.max_pfn ?: 1) - 1 for PV guests."""
    from hv.public.memory import XENMEM_maximum_gpfn
    d = make_domu(16)
    assert memop(xen, d, XENMEM_maximum_gpfn, XenMemoryDomain(domid=DOMID_SELF))[0] == 0
    d.shared_info[3088:3096] = (4096).to_bytes(8, "little")   # the guest's own page
    assert memop(xen, d, XENMEM_maximum_gpfn, XenMemoryDomain(domid=DOMID_SELF))[0] == 4095


def test_a_dying_domain_loses_its_physmap_even_for_frames_still_mapped(xen, dom0, make_domu, privcmd):
    from hv.public.grant_table import GNTMAP_device_map
    from xl.dombuild import destroy_domain
    d = make_domu(16)
    # Dom0 maps the console page the builder granted it (ref 0).
    _, (m,) = hypercall(xen, dom0, HYPERVISOR_grant_table_op, GNTTABOP_map_grant_ref,
                        (GnttabMapGrantRef(flags=GNTMAP_device_map, ref=0, dom=d.domid),))
    assert m.status == 0
    destroy_domain(privcmd, d.domid)
    assert xen.domains.get(d.domid) is d and d.tot_pages == 1
    assert d.p2m.nr_runs() == 0 and xen.frames.gpfn(m.dev_bus_addr >> 12) is None
