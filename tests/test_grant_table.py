"""Grant tables (version 1), checked against Xen 4.17's common/grant_table.c:
the status each GNTTABOP gives, the GTF_reading/GTF_writing bits Xen sets in
the granter's entry, the reference and type counts a mapping holds, and what
the mapping domain can see of the frame."""

from __future__ import annotations

import struct

import pytest

import xl.dombuild
from hv.guest.grant_table import GuestGrantTable
from hv.public.domctl import (
    XEN_DOMCTL_INTERFACE_VERSION, XEN_DOMCTL_max_mem, XenDomctl, XenDomctlMaxMem,
)
from hv.public.errno import EINVAL
from hv.public.grant_table import (
    GNTCOPY_dest_gref, GNTCOPY_source_gref, GNTMAP_device_map, GNTMAP_host_map,
    GNTMAP_readonly, GNTST_bad_copy_arg, GNTST_bad_dev_addr, GNTST_bad_domain,
    GNTST_bad_gntref, GNTST_bad_handle, GNTST_bad_page, GNTST_general_error,
    GNTST_no_space, GNTST_okay, GNTST_permission_denied, GNTTABOP_copy,
    GNTTABOP_dump_table, GNTTABOP_map_grant_ref, GNTTABOP_query_size,
    GNTTABOP_setup_table, GNTTABOP_transfer, GNTTABOP_unmap_grant_ref,
    GTF_accept_transfer, GTF_permit_access, GTF_readonly, GTF_reading, GTF_sub_page,
    GTF_transfer_committed, GTF_transfer_completed, GTF_writing, GnttabCopy,
    GnttabCopyPtr, GnttabDumpTable, GnttabMapGrantRef, GnttabQuerySize,
    GnttabSetupTable, GnttabTransfer, GnttabUnmapGrantRef,
)
from hv.public.xen import (
    DOMID_SELF, HYPERVISOR_domctl, HYPERVISOR_grant_table_op, HYPERVISOR_mmuext_op,
    MMUEXT_PIN_L1_TABLE, MmuextOp,
)
from hv.xen.errors import XenError
from hv.xen.mm import PGT_l1_page_table, PGT_none, PGT_writable_page
from tests.conftest import hypercall
from xl.dombuild import destroy_domain

# Where the mapper asks Xen to put a host mapping (a PV kernel address).
HOST_ADDR = 0xFFFFC90000000000
NO_DOMAIN = 999
NO_TYPE = (PGT_none, 0, False)
ENTRY = struct.Struct("<HHI")


# ---------------------------------------------------------------- helpers
def gnttab(xen, dom, cmd, *ops):
    return hypercall(xen, dom, HYPERVISOR_grant_table_op, cmd, tuple(ops))


def map_ref(xen, mapper, granter, ref, flags=GNTMAP_host_map, host_addr=HOST_ADDR):
    rc, (op,) = gnttab(xen, mapper, GNTTABOP_map_grant_ref,
                       GnttabMapGrantRef(host_addr=host_addr, flags=flags, ref=ref,
                                         dom=granter if isinstance(granter, int) else granter.domid))
    assert rc == 0
    return op


def unmap(xen, mapper, handle, host_addr=HOST_ADDR, dev_bus_addr=0):
    rc, (op,) = gnttab(xen, mapper, GNTTABOP_unmap_grant_ref,
                       GnttabUnmapGrantRef(host_addr=host_addr, dev_bus_addr=dev_bus_addr,
                                           handle=handle))
    assert rc == 0
    return op.status


def raw_entry(xen, d, ref):
    """(flags, domid, frame) as the bytes of d's table frame hold them."""
    mfn = d.grant_table.frames[ref // 512]
    return ENTRY.unpack_from(xen.ram.peek(mfn), (ref % 512) * 8)


def flags_of(xen, d, ref):
    return raw_entry(xen, d, ref)[0]


def mfn_of(xen, d, pfn):
    return xen.p2m.lookup(d, pfn)


def can_see(xen, d, mfn, writable):
    try:
        xen.frames.map_domain_page(d, mfn, writable)
    except XenError:
        return False
    return True


def copy_op(src, dst, length, flags, src_off=0, dst_off=0):
    """src/dst are (u, domid)."""
    return GnttabCopy(source=GnttabCopyPtr(u=src[0], domid=src[1], offset=src_off),
                      dest=GnttabCopyPtr(u=dst[0], domid=dst[1], offset=dst_off),
                      len=length, flags=flags)


@pytest.fixture
def trio(xen, make_domu):
    """Granter a (with its guest-side table), grantee b, bystander c."""
    a, b, c = make_domu(), make_domu(), make_domu()
    return a, GuestGrantTable(xen, a.vcpus[0]), b, c


@pytest.fixture
def granted(xen, trio):
    """a grants its pfn 0 writable to b: (a, gtab, b, c, ref, mfn)."""
    a, gtab, b, c = trio
    mfn = mfn_of(xen, a, 0)
    ref = gtab.grant_foreign_access(b.domid, mfn, readonly=False)
    return a, gtab, b, c, ref, mfn


# ---------------------------------------------------------------- guest side
@pytest.mark.parametrize("readonly", [False, True])
def test_grant_foreign_access_writes_entry_bytes(xen, trio, readonly):
    a, gtab, b, _ = trio
    mfn = mfn_of(xen, a, 3)
    ref = gtab.grant_foreign_access(b.domid, mfn, readonly)
    assert ref == 8        # refs 0-7 are reserved (GNTTAB_NR_RESERVED_ENTRIES)
    expect_flags = GTF_permit_access | (GTF_readonly if readonly else 0)
    assert raw_entry(xen, a, ref) == (expect_flags, b.domid, mfn)
    assert gtab.entry(ref) == (expect_flags, b.domid, mfn)
    assert gtab.grant_foreign_access(b.domid, mfn, readonly) == 9


def test_end_foreign_access_refused_while_mapped(xen, granted):
    a, gtab, b, _, ref, mfn = granted
    op = map_ref(xen, b, a, ref)
    assert op.status == GNTST_okay
    before = raw_entry(xen, a, ref)
    assert gtab.end_foreign_access_ref(ref, readonly=False) is False
    assert raw_entry(xen, a, ref) == before
    assert unmap(xen, b, op.handle) == GNTST_okay
    assert gtab.end_foreign_access_ref(ref, readonly=False) is True
    assert flags_of(xen, a, ref) == 0
    # Revoked: Xen refuses the next map.
    assert map_ref(xen, b, a, ref).status == GNTST_general_error


# ---------------------------------------------------------------- map
@pytest.mark.parametrize("flags", [0, GNTMAP_readonly])
def test_map_without_host_or_device_map_is_bad_gntref(xen, granted, flags):
    a, _, b, _, ref, mfn = granted
    assert map_ref(xen, b, a, ref, flags=flags).status == GNTST_bad_gntref
    assert flags_of(xen, a, ref) == GTF_permit_access
    assert xen.frames.count(mfn) == 1


@pytest.mark.parametrize("dom", [NO_DOMAIN, DOMID_SELF])
def test_map_unknown_domain_is_bad_domain(xen, granted, dom):
    # rcu_lock_domain_by_id(): DOMID_SELF names no domain here.
    _, _, b, _, ref, _ = granted
    assert map_ref(xen, b, dom, ref).status == GNTST_bad_domain


@pytest.mark.parametrize("ref", [512, 0xFFFFFFFF])
def test_map_ref_beyond_table_is_bad_gntref(xen, granted, ref):
    a, _, b, _, _, _ = granted
    assert map_ref(xen, b, a, ref).status == GNTST_bad_gntref


@pytest.mark.parametrize("entry_flags, to_b", [
    (0, True),                                   # GTF_invalid
    (GTF_accept_transfer, True),
    (GTF_permit_access | GTF_sub_page, True),    # sub-page grants can't be mapped
    (GTF_permit_access, False),                  # granted to someone else
])
def test_map_of_entry_not_permitting_mapper_is_general_error(xen, trio, entry_flags, to_b):
    a, gtab, b, c = trio
    mfn = mfn_of(xen, a, 0)
    ref = gtab.claim_ref()
    gtab._write(ref, b.domid if to_b else c.domid, mfn, entry_flags)
    before = raw_entry(xen, a, ref)
    assert map_ref(xen, b, a, ref).status == GNTST_general_error
    assert raw_entry(xen, a, ref) == before
    assert xen.frames.count(mfn) == 1
    assert ref not in a.grant_table.active


def test_writable_map_of_readonly_grant_is_general_error(xen, trio):
    a, gtab, b, _ = trio
    mfn = mfn_of(xen, a, 0)
    ref = gtab.grant_foreign_access(b.domid, mfn, readonly=True)
    assert map_ref(xen, b, a, ref).status == GNTST_general_error
    assert flags_of(xen, a, ref) == GTF_permit_access | GTF_readonly
    assert xen.frames.count(mfn) == 1
    assert xen.frames.type_of(mfn) == NO_TYPE


@pytest.mark.parametrize("grant_ro, map_flags, expect", [
    (False, GNTMAP_host_map | GNTMAP_readonly, GTF_reading),
    (False, GNTMAP_host_map, GTF_reading | GTF_writing),
    (True, GNTMAP_host_map | GNTMAP_readonly, GTF_reading),
])
def test_map_marks_entry_reading_and_writing(xen, trio, grant_ro, map_flags, expect):
    a, gtab, b, _ = trio
    mfn = mfn_of(xen, a, 0)
    ref = gtab.grant_foreign_access(b.domid, mfn, readonly=grant_ro)
    assert map_ref(xen, b, a, ref, flags=map_flags).status == GNTST_okay
    base = GTF_permit_access | (GTF_readonly if grant_ro else 0)
    assert raw_entry(xen, a, ref) == (base | expect, b.domid, mfn)


def test_second_domain_mapping_a_pinned_entry_is_general_error(xen, granted):
    a, gtab, b, c, ref, mfn = granted
    op = map_ref(xen, b, a, ref)
    assert op.status == GNTST_okay
    # The granter re-points the entry at c while b still holds it: Xen goes
    # by the active entry's pin, not the shared entry.
    gtab.grant_foreign_access_ref(ref, c.domid, mfn, readonly=False)
    assert map_ref(xen, c, a, ref).status == GNTST_general_error
    assert a.grant_table.active[ref].domid == b.domid
    assert xen.frames.count(mfn) == 2
    assert unmap(xen, b, op.handle) == GNTST_okay
    op_c = map_ref(xen, c, a, ref)
    assert op_c.status == GNTST_okay
    assert unmap(xen, c, op_c.handle) == GNTST_okay


@pytest.mark.parametrize("whose", ["other domain", "no frame"])
def test_map_of_frame_granter_does_not_own_is_bad_page(xen, trio, whose):
    a, gtab, b, c = trio
    frame = mfn_of(xen, c, 0) if whose == "other domain" else 0xFFFFFFF
    ref = gtab.grant_foreign_access(b.domid, frame, readonly=False)
    assert map_ref(xen, b, a, ref).status == GNTST_bad_page
    # The flags Xen set while trying are taken back (reduce_status_for_pin).
    assert flags_of(xen, a, ref) == GTF_permit_access
    assert ref not in a.grant_table.active
    if whose == "other domain":
        assert xen.frames.count(frame) == 1


def test_map_handles_are_allocated_in_order_and_freed_to_the_tail(xen, granted):
    a, _, b, _, ref, _ = granted
    handles = [map_ref(xen, b, a, ref).handle for _ in range(3)]
    assert handles == [0, 1, 2]
    assert unmap(xen, b, 1) == GNTST_okay
    # put_maptrack_handle() appends to the free list's tail.
    assert map_ref(xen, b, a, ref).handle == 3
    for h in (0, 2, 3):
        assert unmap(xen, b, h) == GNTST_okay


def test_map_dev_bus_addr_is_machine_address(xen, granted):
    a, _, b, _, ref, mfn = granted
    op = map_ref(xen, b, a, ref, flags=GNTMAP_device_map | GNTMAP_host_map)
    assert op.status == GNTST_okay
    assert op.dev_bus_addr == mfn << 12


@pytest.mark.parametrize("flags, refs, type_", [
    (GNTMAP_host_map | GNTMAP_readonly, 1, NO_TYPE),
    (GNTMAP_host_map, 1, (PGT_writable_page, 1, False)),
    (GNTMAP_device_map | GNTMAP_readonly, 1, NO_TYPE),
    (GNTMAP_device_map, 1, (PGT_writable_page, 1, False)),
    (GNTMAP_device_map | GNTMAP_host_map | GNTMAP_readonly, 2, NO_TYPE),
    (GNTMAP_device_map | GNTMAP_host_map, 2, (PGT_writable_page, 2, False)),
])
def test_map_takes_a_reference_per_kind_and_type_per_writable_kind(xen, granted, flags, refs,
                                                                   type_):
    a, _, b, _, ref, mfn = granted
    op = map_ref(xen, b, a, ref, flags=flags)
    assert op.status == GNTST_okay
    assert xen.frames.count(mfn) == 1 + refs
    assert xen.frames.type_of(mfn) == type_
    host = bool(flags & GNTMAP_host_map)
    writable = not flags & GNTMAP_readonly
    assert can_see(xen, b, mfn, writable=False) is host
    assert can_see(xen, b, mfn, writable=True) is (host and writable)
    assert unmap(xen, b, op.handle, dev_bus_addr=op.dev_bus_addr) == GNTST_okay
    assert xen.frames.count(mfn) == 1
    assert xen.frames.type_of(mfn) == NO_TYPE
    assert not can_see(xen, b, mfn, writable=False)


def test_pinned_page_table_is_mapped_readonly_only(xen, trio):
    a, gtab, b, _ = trio
    mfn = mfn_of(xen, a, 5)      # never written: an empty, valid L1 table
    rc, _ = hypercall(xen, a, HYPERVISOR_mmuext_op, (MmuextOp(cmd=MMUEXT_PIN_L1_TABLE, arg1=mfn),),
                      DOMID_SELF)
    assert rc == 0
    assert xen.frames.type_of(mfn) == (PGT_l1_page_table, 1, True)
    ref = gtab.grant_foreign_access(b.domid, mfn, readonly=False)
    assert map_ref(xen, b, a, ref).status == GNTST_general_error
    assert flags_of(xen, a, ref) == GTF_permit_access
    assert xen.frames.count(mfn) == 2          # allocation + pin
    assert xen.frames.type_of(mfn) == (PGT_l1_page_table, 1, True)
    op = map_ref(xen, b, a, ref, flags=GNTMAP_host_map | GNTMAP_readonly)
    assert op.status == GNTST_okay
    assert flags_of(xen, a, ref) == GTF_permit_access | GTF_reading
    assert xen.frames.count(mfn) == 3
    assert can_see(xen, b, mfn, writable=False)
    assert not can_see(xen, b, mfn, writable=True)
    # Upgrading to writable while the readonly pin is held fails the same way,
    # and takes back only the GTF_writing it set.
    assert map_ref(xen, b, a, ref).status == GNTST_general_error
    assert flags_of(xen, a, ref) == GTF_permit_access | GTF_reading
    assert xen.frames.count(mfn) == 3
    assert unmap(xen, b, op.handle) == GNTST_okay


def test_map_host_and_device_in_one_op(xen, granted):
    a, _, b, _, ref, mfn = granted
    op = map_ref(xen, b, a, ref, flags=GNTMAP_device_map | GNTMAP_host_map)
    assert op.status == GNTST_okay
    assert xen.frames.count(mfn) == 3
    assert xen.frames.type_of(mfn) == (PGT_writable_page, 2, False)
    # Undo one kind at a time: the handle lives until both are gone.
    assert unmap(xen, b, op.handle, host_addr=HOST_ADDR) == GNTST_okay
    assert xen.frames.count(mfn) == 2
    assert xen.frames.type_of(mfn) == (PGT_writable_page, 1, False)
    assert not can_see(xen, b, mfn, writable=False)
    assert flags_of(xen, a, ref) == GTF_permit_access | GTF_reading | GTF_writing
    assert unmap(xen, b, op.handle, host_addr=0, dev_bus_addr=op.dev_bus_addr) == GNTST_okay
    assert xen.frames.count(mfn) == 1
    assert flags_of(xen, a, ref) == GTF_permit_access
    assert unmap(xen, b, op.handle, host_addr=0, dev_bus_addr=op.dev_bus_addr) == GNTST_bad_handle


def test_maptrack_exhaustion_is_no_space(xen, monkeypatch, make_domu):
    a = make_domu()
    gtab = GuestGrantTable(xen, a.vcpus[0])
    monkeypatch.setattr(xl.dombuild, "MAX_MAPTRACK_FRAMES", 1)
    b = make_domu()
    # Several refs: one entry's 8-bit pin counter stops at 128 mappings.
    refs = [gtab.grant_foreign_access(b.domid, mfn_of(xen, a, i), readonly=True)
            for i in range(3)]
    ops = [GnttabMapGrantRef(host_addr=HOST_ADDR, flags=GNTMAP_host_map | GNTMAP_readonly,
                             ref=refs[i % 3], dom=a.domid) for i in range(256)]
    # One maptrack frame holds 256 entries; with one vCPU, Xen keeps one of
    # them as its free list's tail sentinel (_get_maptrack_handle()), so 255
    # can be in use.
    rc, out = gnttab(xen, b, GNTTABOP_map_grant_ref, *ops)
    assert rc == 0
    assert [op.status for op in out[:255]] == [GNTST_okay] * 255
    assert [op.handle for op in out[:255]] == list(range(255))
    assert out[255].status == GNTST_no_space
    assert a.grant_table.active[refs[0]].pin == 85 << 8
    # A freed handle lets exactly one more mapping in: the old sentinel.
    assert unmap(xen, b, 7) == GNTST_okay
    again = map_ref(xen, b, a, refs[0], flags=GNTMAP_host_map | GNTMAP_readonly)
    assert (again.status, again.handle) == (GNTST_okay, 255)
    assert map_ref(xen, b, a, refs[0],
                   flags=GNTMAP_host_map | GNTMAP_readonly).status == GNTST_no_space


def test_map_pin_counter_overflow_is_general_error(xen, granted):
    # GNTPIN_incr2oflow_mask(): a counter may not reach its top bit.
    a, _, b, _, ref, mfn = granted
    ro = GnttabMapGrantRef(host_addr=HOST_ADDR, flags=GNTMAP_host_map | GNTMAP_readonly,
                           ref=ref, dom=a.domid)
    rc, out = gnttab(xen, b, GNTTABOP_map_grant_ref, *[ro] * 129)
    assert [op.status for op in out] == [GNTST_okay] * 128 + [GNTST_general_error]
    assert xen.frames.count(mfn) == 129
    # Another counter of the same entry still has room.
    rw = map_ref(xen, b, a, ref)
    assert rw.status == GNTST_okay
    assert a.grant_table.active[ref].pin == (128 << 8) | 1


# ---------------------------------------------------------------- unmap
@pytest.mark.parametrize("case", ["never mapped", "no maptrack yet", "beyond limit",
                                  "max handle", "already unmapped"])
def test_unmap_bad_handle(xen, granted, case):
    a, _, b, _, ref, mfn = granted
    handle = {"never mapped": 5, "no maptrack yet": 0, "beyond limit": 256,
              "max handle": 0xFFFFFFFF, "already unmapped": 0}[case]
    if case != "no maptrack yet":
        op = map_ref(xen, b, a, ref)
        if case == "already unmapped":
            assert unmap(xen, b, op.handle) == GNTST_okay
    before = (xen.frames.count(mfn), flags_of(xen, a, ref))
    assert unmap(xen, b, handle) == GNTST_bad_handle
    assert (xen.frames.count(mfn), flags_of(xen, a, ref)) == before


def test_unmap_wrong_host_addr_is_general_error_and_changes_nothing(xen, granted):
    a, _, b, _, ref, mfn = granted
    op = map_ref(xen, b, a, ref)
    assert unmap(xen, b, op.handle, host_addr=HOST_ADDR + 0x1000) == GNTST_general_error
    assert flags_of(xen, a, ref) == GTF_permit_access | GTF_reading | GTF_writing
    assert xen.frames.count(mfn) == 2
    assert xen.frames.type_of(mfn) == (PGT_writable_page, 1, False)
    assert can_see(xen, b, mfn, writable=True)
    assert unmap(xen, b, op.handle) == GNTST_okay


def test_unmap_with_no_address_does_nothing(xen, granted):
    a, _, b, _, ref, mfn = granted
    op = map_ref(xen, b, a, ref)
    assert unmap(xen, b, op.handle, host_addr=0, dev_bus_addr=0) == GNTST_okay
    assert xen.frames.count(mfn) == 2
    assert unmap(xen, b, op.handle) == GNTST_okay


def test_unmap_dev_bus_addr_mismatch_is_bad_dev_addr(xen, granted):
    a, _, b, _, ref, mfn = granted
    op = map_ref(xen, b, a, ref, flags=GNTMAP_device_map)
    assert unmap(xen, b, op.handle, host_addr=0,
                 dev_bus_addr=(mfn + 1) << 12) == GNTST_bad_dev_addr
    assert xen.frames.count(mfn) == 2
    assert flags_of(xen, a, ref) == GTF_permit_access | GTF_reading | GTF_writing
    assert unmap(xen, b, op.handle, host_addr=0, dev_bus_addr=mfn << 12) == GNTST_okay
    assert xen.frames.count(mfn) == 1


def test_unmap_host_mapping_ignores_dev_bus_addr(xen, granted):
    # The bus address is only compared for a device mapping.
    a, _, b, _, ref, mfn = granted
    op = map_ref(xen, b, a, ref)
    assert unmap(xen, b, op.handle, dev_bus_addr=(mfn + 1) << 12) == GNTST_okay
    assert xen.frames.count(mfn) == 1


@pytest.mark.parametrize("flags", [GNTMAP_host_map, GNTMAP_host_map | GNTMAP_readonly])
def test_unmap_of_last_mapping_clears_flags_and_counts(xen, granted, flags):
    a, gtab, b, _, ref, mfn = granted
    op = map_ref(xen, b, a, ref, flags=flags)
    assert can_see(xen, b, mfn, writable=False)
    assert unmap(xen, b, op.handle) == GNTST_okay
    assert raw_entry(xen, a, ref) == (GTF_permit_access, b.domid, mfn)
    assert ref not in a.grant_table.active
    assert xen.frames.count(mfn) == 1
    assert xen.frames.type_of(mfn) == NO_TYPE
    with pytest.raises(XenError):
        xen.frames.map_domain_page(b, mfn, False)
    assert gtab.end_foreign_access_ref(ref, readonly=False) is True


def test_unmap_writable_while_readonly_remains_clears_only_writing(xen, granted):
    a, _, b, _, ref, mfn = granted
    ro = map_ref(xen, b, a, ref, flags=GNTMAP_host_map | GNTMAP_readonly)
    rw = map_ref(xen, b, a, ref, host_addr=HOST_ADDR + 0x1000)
    assert flags_of(xen, a, ref) == GTF_permit_access | GTF_reading | GTF_writing
    assert xen.frames.count(mfn) == 3
    assert unmap(xen, b, rw.handle, host_addr=HOST_ADDR + 0x1000) == GNTST_okay
    assert flags_of(xen, a, ref) == GTF_permit_access | GTF_reading
    assert xen.frames.count(mfn) == 2
    assert xen.frames.type_of(mfn) == NO_TYPE
    assert can_see(xen, b, mfn, writable=False)
    assert not can_see(xen, b, mfn, writable=True)
    assert unmap(xen, b, ro.handle) == GNTST_okay
    assert flags_of(xen, a, ref) == GTF_permit_access


def test_unmap_readonly_while_writable_remains_keeps_both_flags(xen, granted):
    a, _, b, _, ref, mfn = granted
    rw = map_ref(xen, b, a, ref)
    ro = map_ref(xen, b, a, ref, flags=GNTMAP_host_map | GNTMAP_readonly,
                 host_addr=HOST_ADDR + 0x1000)
    assert unmap(xen, b, ro.handle, host_addr=HOST_ADDR + 0x1000) == GNTST_okay
    assert flags_of(xen, a, ref) == GTF_permit_access | GTF_reading | GTF_writing
    assert unmap(xen, b, rw.handle) == GNTST_okay


def test_unmap_batch_gives_per_element_status(xen, granted):
    a, _, b, _, ref, mfn = granted
    h0 = map_ref(xen, b, a, ref).handle
    h1 = map_ref(xen, b, a, ref, host_addr=HOST_ADDR + 0x1000).handle
    rc, out = gnttab(xen, b, GNTTABOP_unmap_grant_ref,
                     GnttabUnmapGrantRef(host_addr=HOST_ADDR, handle=h0),
                     GnttabUnmapGrantRef(host_addr=HOST_ADDR, handle=77),
                     GnttabUnmapGrantRef(host_addr=HOST_ADDR + 0x1000, handle=h1))
    assert rc == 0
    assert [op.status for op in out] == [GNTST_okay, GNTST_bad_handle, GNTST_okay]
    assert xen.frames.count(mfn) == 1
    assert flags_of(xen, a, ref) == GTF_permit_access


# ---------------------------------------------------------------- setup_table
def setup(xen, caller, dom, nr):
    rc, (op,) = gnttab(xen, caller, GNTTABOP_setup_table,
                       GnttabSetupTable(dom=dom, nr_frames=nr, frame_list=(0,) * nr))
    assert rc == 0
    return op


def query(xen, caller, dom):
    rc, (op,) = gnttab(xen, caller, GNTTABOP_query_size, GnttabQuerySize(dom=dom))
    assert rc == 0
    return op


def test_setup_table_above_max_is_general_error(xen, make_domu):
    a = make_domu()
    assert setup(xen, a, DOMID_SELF, 33).status == GNTST_general_error
    assert query(xen, a, DOMID_SELF).nr_frames == 1


def test_setup_table_grows_the_table(xen, make_domu):
    a = make_domu()
    first = a.grant_table.frames[0]
    op = setup(xen, a, DOMID_SELF, 4)
    assert op.status == GNTST_okay
    assert len(op.frame_list) == 4 and op.frame_list[0] == first
    assert list(op.frame_list) == a.grant_table.frames
    assert all(xen.frames.owner(m) is a for m in op.frame_list)
    assert len(set(op.frame_list)) == 4
    assert (query(xen, a, DOMID_SELF).nr_frames, query(xen, a, DOMID_SELF).max_nr_frames) == (4, 32)
    # Asking for fewer frames never shrinks it.
    assert setup(xen, a, DOMID_SELF, 2).frame_list == op.frame_list[:2]
    assert query(xen, a, DOMID_SELF).nr_frames == 4


def test_setup_table_frames_are_the_entries_the_guest_writes(xen, make_domu):
    a, b = make_domu(), make_domu()
    gtab = GuestGrantTable(xen, a.vcpus[0], nr_frames=2)
    assert gtab.frames == a.grant_table.frames
    mfn = mfn_of(xen, a, 0)
    ref = 600                              # in the second frame
    gtab.grant_foreign_access_ref(ref, b.domid, mfn, readonly=True)
    assert a.grant_table.entry(ref) == (GTF_permit_access | GTF_readonly, b.domid, mfn)
    op = map_ref(xen, b, a, ref, flags=GNTMAP_host_map | GNTMAP_readonly)
    assert op.status == GNTST_okay
    assert gtab.flags(ref) == GTF_permit_access | GTF_readonly | GTF_reading
    assert unmap(xen, b, op.handle) == GNTST_okay


def test_setup_table_for_another_domain_needs_privilege(xen, make_domu):
    a, b = make_domu(), make_domu()
    assert setup(xen, a, b.domid, 2).status == GNTST_permission_denied
    assert query(xen, b, DOMID_SELF).nr_frames == 1


def test_dom0_may_setup_a_domu_table(xen, dom0, make_domu):
    a = make_domu()
    op = setup(xen, dom0, a.domid, 3)
    assert op.status == GNTST_okay
    assert list(op.frame_list) == a.grant_table.frames
    assert all(xen.frames.owner(m) is a for m in op.frame_list)
    assert query(xen, a, DOMID_SELF).nr_frames == 3


def test_setup_table_missing_domain_is_bad_domain(xen, dom0):
    assert setup(xen, dom0, NO_DOMAIN, 1).status == GNTST_bad_domain


@pytest.mark.parametrize("cmd, op", [
    (GNTTABOP_setup_table, GnttabSetupTable(dom=DOMID_SELF, nr_frames=1, frame_list=(0,))),
    (GNTTABOP_query_size, GnttabQuerySize(dom=DOMID_SELF)),
    (GNTTABOP_dump_table, GnttabDumpTable(dom=DOMID_SELF)),
])
@pytest.mark.parametrize("count", [0, 2])
def test_single_op_commands_want_count_one(xen, make_domu, cmd, op, count):
    a = make_domu()
    rc, _ = gnttab(xen, a, cmd, *[op] * count)
    assert rc == -EINVAL


# ---------------------------------------------------------------- query_size
def test_query_size_values(xen, dom0, make_domu):
    a = make_domu()
    own = query(xen, a, DOMID_SELF)
    assert (own.status, own.nr_frames, own.max_nr_frames) == (GNTST_okay, 1, 32)
    by_dom0 = query(xen, dom0, a.domid)
    assert (by_dom0.status, by_dom0.nr_frames, by_dom0.max_nr_frames) == (GNTST_okay, 1, 32)


@pytest.mark.parametrize("target, status", [
    ("other", GNTST_permission_denied), ("missing", GNTST_bad_domain)])
def test_query_size_refusals(xen, make_domu, target, status):
    a, b = make_domu(), make_domu()
    dom = b.domid if target == "other" else NO_DOMAIN
    assert query(xen, a, dom).status == status


# ---------------------------------------------------------------- transfer
# A pfn above the receiver's memory, free to receive a frame.
RECV_PFN = 4096 + 10


def transfer(xen, sender, mfn, domid, ref):
    rc, (op,) = gnttab(xen, sender, GNTTABOP_transfer, GnttabTransfer(mfn=mfn, domid=domid, ref=ref))
    assert rc == 0
    return op.status


@pytest.fixture
def flip(xen, make_domu):
    """Receiver r accepts a frame from sender s at RECV_PFN:
    (s, r, r's guest table, ref, the sender's frame)."""
    s, r = make_domu(), make_domu()
    rtab = GuestGrantTable(xen, r.vcpus[0])
    ref = rtab.grant_foreign_transfer(s.domid, RECV_PFN)
    return s, r, rtab, ref, mfn_of(xen, s, 20)


def test_transfer_moves_the_frame_to_the_receiver(xen, flip):
    s, r, rtab, ref, mfn = flip
    xen.frames.map_domain_page(s, mfn, True)[:5] = b"flip!"
    s_pages, r_pages = s.tot_pages, r.tot_pages
    assert transfer(xen, s, mfn, r.domid, ref) == GNTST_okay
    assert xen.frames.owner(mfn) is r
    assert xen.p2m.lookup(r, RECV_PFN) == mfn
    assert raw_entry(xen, r, ref) == (
        GTF_accept_transfer | GTF_transfer_committed | GTF_transfer_completed, s.domid, mfn)
    assert (s.tot_pages, r.tot_pages) == (s_pages - 1, r_pages + 1)
    assert bytes(xen.frames.map_domain_page(r, mfn, False)[:5]) == b"flip!"
    assert not can_see(xen, s, mfn, writable=False)
    assert rtab.end_foreign_transfer_ref(ref) == mfn
    assert flags_of(xen, r, ref) == 0


@pytest.mark.parametrize("whose", ["receiver's", "bystander's", "no frame",
                                   "sender's grant-table frame"])
def test_transfer_of_frame_not_the_senders_is_bad_page(xen, flip, make_domu, whose):
    # steal_page() takes only an ordinary (not a shared Xen) page of the sender.
    s, r, _, ref, _ = flip
    mfn = {"receiver's": lambda: mfn_of(xen, r, 0),
           "bystander's": lambda: mfn_of(xen, make_domu(), 0),
           "no frame": lambda: 0xFFFFFFF,
           "sender's grant-table frame": lambda: s.grant_table.frames[0]}[whose]()
    owner = xen.frames.owner(mfn)
    s_pages, r_pages = s.tot_pages, r.tot_pages
    assert transfer(xen, s, mfn, r.domid, ref) == GNTST_bad_page
    assert xen.frames.owner(mfn) is owner
    assert (s.tot_pages, r.tot_pages) == (s_pages, r_pages)
    assert flags_of(xen, r, ref) == GTF_accept_transfer


def test_transfer_of_a_mapped_frame_is_bad_page(xen, flip, make_domu):
    # steal_page() wants exactly the allocation reference.
    s, r, _, ref, mfn = flip
    m = make_domu()
    stab = GuestGrantTable(xen, s.vcpus[0])
    gref = stab.grant_foreign_access(m.domid, mfn, readonly=True)
    op = map_ref(xen, m, s, gref, flags=GNTMAP_host_map | GNTMAP_readonly)
    assert xen.frames.count(mfn) == 2
    s_pages = s.tot_pages
    assert transfer(xen, s, mfn, r.domid, ref) == GNTST_bad_page
    assert xen.frames.owner(mfn) is s and s.tot_pages == s_pages
    assert xen.frames.count(mfn) == 2
    assert flags_of(xen, r, ref) == GTF_accept_transfer
    assert unmap(xen, m, op.handle) == GNTST_okay


def assert_frame_lost(xen, s, mfn, s_pages):
    """Xen steals the frame before it looks at the receiver: on failure the
    sender has lost it and it is back in the heap."""
    assert xen.frames.owner(mfn) is None
    assert s.tot_pages == s_pages - 1


def test_transfer_to_unknown_domain_is_bad_domain_and_loses_the_frame(xen, flip):
    s, r, _, ref, mfn = flip
    s_pages = s.tot_pages
    assert transfer(xen, s, mfn, NO_DOMAIN, ref) == GNTST_bad_domain
    assert_frame_lost(xen, s, mfn, s_pages)


@pytest.mark.parametrize("entry", ["permit_access", "for another domain", "invalid",
                                   "ref beyond table"])
def test_transfer_without_accepting_entry_is_general_error_and_loses_the_frame(xen, flip, entry):
    s, r, rtab, ref, mfn = flip
    if entry == "permit_access":
        rtab.grant_foreign_access_ref(ref, s.domid, RECV_PFN, readonly=False)
    elif entry == "for another domain":
        rtab.grant_foreign_transfer_ref(ref, 0, RECV_PFN)
    elif entry == "invalid":
        rtab.end_foreign_transfer_ref(ref)
    else:
        ref = 512
    before = raw_entry(xen, r, ref) if ref < 512 else None
    s_pages, r_pages = s.tot_pages, r.tot_pages
    assert transfer(xen, s, mfn, r.domid, ref) == GNTST_general_error
    assert_frame_lost(xen, s, mfn, s_pages)
    assert r.tot_pages == r_pages
    assert xen.p2m.lookup(r, RECV_PFN) is None
    if before is not None:
        assert raw_entry(xen, r, ref) == before


def test_transfer_to_receiver_at_max_pages_is_general_error(xen, flip, privcmd):
    s, r, _, ref, mfn = flip
    privcmd.hypercall(HYPERVISOR_domctl, XenDomctl(
        cmd=XEN_DOMCTL_max_mem, interface_version=XEN_DOMCTL_INTERFACE_VERSION, domain=r.domid,
        u=XenDomctlMaxMem(max_memkb=r.tot_pages * 4)))
    s_pages, r_pages = s.tot_pages, r.tot_pages
    assert transfer(xen, s, mfn, r.domid, ref) == GNTST_general_error
    assert_frame_lost(xen, s, mfn, s_pages)
    assert r.tot_pages == r_pages
    assert flags_of(xen, r, ref) == GTF_accept_transfer


# ---------------------------------------------------------------- copy
def copy(xen, caller, *ops):
    rc, out = gnttab(xen, caller, GNTTABOP_copy, *ops)
    assert rc == 0
    return [op.status for op in out]


def test_copy_frame_to_gref_moves_bytes(xen, granted):
    a, _, b, _, ref, mfn = granted
    src = mfn_of(xen, b, 1)
    xen.frames.map_domain_page(b, src, True)[100:111] = b"hello grant"
    assert copy(xen, b, copy_op((src, DOMID_SELF), (ref, a.domid), 11, GNTCOPY_dest_gref,
                                src_off=100, dst_off=4000)) == [GNTST_okay]
    assert bytes(xen.ram.peek(mfn)[4000:4011]) == b"hello grant"
    assert bytes(xen.ram.peek(mfn)[3999:4000]) == b"\0"


def test_copy_gref_to_frame_moves_bytes(xen, trio):
    a, gtab, b, _ = trio
    mfn = mfn_of(xen, a, 0)
    xen.frames.map_domain_page(a, mfn, True)[:4] = b"data"
    ref = gtab.grant_foreign_access(b.domid, mfn, readonly=True)
    dst = mfn_of(xen, b, 1)
    assert copy(xen, b, copy_op((ref, a.domid), (dst, DOMID_SELF), 4, GNTCOPY_source_gref,
                                dst_off=8)) == [GNTST_okay]
    assert bytes(xen.ram.peek(dst)[8:12]) == b"data"


@pytest.mark.parametrize("src_off, dst_off, length", [
    (4000, 0, 97), (0, 4095, 2), (0, 0, 4097)])
def test_copy_crossing_a_page_is_bad_copy_arg(xen, granted, src_off, dst_off, length):
    a, _, b, _, ref, mfn = granted
    src = mfn_of(xen, b, 1)
    assert copy(xen, b, copy_op((src, DOMID_SELF), (ref, a.domid), length, GNTCOPY_dest_gref,
                                src_off=src_off, dst_off=dst_off)) == [GNTST_bad_copy_arg]
    assert flags_of(xen, a, ref) == GTF_permit_access
    assert xen.frames.count(mfn) == 1


@pytest.mark.parametrize("side", ["source", "dest"])
def test_copy_naming_another_domains_frame_is_permission_denied(xen, granted, side):
    # Only DOMID_SELF may name a frame directly, even one the caller could
    # legitimately reach.
    a, _, b, _, ref, mfn = granted
    own = mfn_of(xen, b, 1)
    if side == "source":
        op = copy_op((mfn, a.domid), (own, DOMID_SELF), 8, 0)
    else:
        op = copy_op((own, DOMID_SELF), (own, b.domid), 8, 0)
    assert copy(xen, b, op) == [GNTST_permission_denied]


def test_copy_of_frame_not_owned_is_bad_page(xen, granted):
    a, _, b, _, ref, mfn = granted
    assert copy(xen, b, copy_op((mfn, DOMID_SELF), (ref, a.domid), 8,
                                GNTCOPY_dest_gref)) == [GNTST_bad_page]
    assert flags_of(xen, a, ref) == GTF_permit_access
    assert xen.frames.count(mfn) == 1


@pytest.mark.parametrize("side", ["source", "dest"])
def test_copy_bad_gref_is_bad_gntref(xen, granted, side):
    a, _, b, _, _, _ = granted
    own = mfn_of(xen, b, 1)
    if side == "source":
        op = copy_op((512, a.domid), (own, DOMID_SELF), 8, GNTCOPY_source_gref)
    else:
        op = copy_op((own, DOMID_SELF), (512, a.domid), 8, GNTCOPY_dest_gref)
    assert copy(xen, b, op) == [GNTST_bad_gntref]


def test_copy_to_readonly_gref_is_general_error(xen, trio):
    a, gtab, b, _ = trio
    mfn = mfn_of(xen, a, 0)
    ref = gtab.grant_foreign_access(b.domid, mfn, readonly=True)
    src = mfn_of(xen, b, 1)
    xen.frames.map_domain_page(b, src, True)[:4] = b"nope"
    assert copy(xen, b, copy_op((src, DOMID_SELF), (ref, a.domid), 4,
                                GNTCOPY_dest_gref)) == [GNTST_general_error]
    assert bytes(xen.ram.peek(mfn)[:4]) == bytes(4)
    assert flags_of(xen, a, ref) == GTF_permit_access | GTF_readonly


@pytest.mark.parametrize("side", ["source", "dest"])
def test_copy_with_unknown_domain_is_bad_domain(xen, granted, side):
    _, _, b, _, ref, _ = granted
    own = mfn_of(xen, b, 1)
    if side == "source":
        op = copy_op((ref, NO_DOMAIN), (own, DOMID_SELF), 8, GNTCOPY_source_gref)
    else:
        op = copy_op((own, DOMID_SELF), (ref, NO_DOMAIN), 8, GNTCOPY_dest_gref)
    assert copy(xen, b, op) == [GNTST_bad_domain]


def test_copy_checks_the_source_domain_before_the_dest(xen, granted):
    # gnttab_copy_lock_domains() locks the source (and fails on it) before
    # it looks at the destination at all.
    _, _, b, c, ref, _ = granted
    op = copy_op((ref, NO_DOMAIN), (mfn_of(xen, c, 0), c.domid), 8, GNTCOPY_source_gref)
    assert copy(xen, b, op) == [GNTST_bad_domain]


@pytest.mark.parametrize("ok", [True, False])
def test_copy_leaves_no_pin_flag_or_count_behind(xen, granted, ok):
    a, _, b, _, ref, mfn = granted
    src = mfn_of(xen, b, 1)
    length = 16 if ok else 4097
    status = copy(xen, b, copy_op((src, DOMID_SELF), (ref, a.domid), length, GNTCOPY_dest_gref))
    assert status == [GNTST_okay if ok else GNTST_bad_copy_arg]
    assert ref not in a.grant_table.active
    assert flags_of(xen, a, ref) == GTF_permit_access
    for m in (mfn, src):
        assert xen.frames.count(m) == 1
        assert xen.frames.type_of(m) == NO_TYPE


def test_copy_while_mapped_keeps_the_mapping_pins(xen, granted):
    a, _, b, _, ref, mfn = granted
    op = map_ref(xen, b, a, ref, flags=GNTMAP_host_map | GNTMAP_readonly)
    src = mfn_of(xen, b, 1)
    assert copy(xen, b, copy_op((src, DOMID_SELF), (ref, a.domid), 16,
                                GNTCOPY_dest_gref)) == [GNTST_okay]
    assert a.grant_table.active[ref].pin == 1 << 8
    assert flags_of(xen, a, ref) == GTF_permit_access | GTF_reading
    assert xen.frames.count(mfn) == 2
    assert xen.frames.type_of(mfn) == NO_TYPE
    assert unmap(xen, b, op.handle) == GNTST_okay


def test_copy_batch_has_per_element_status(xen, granted):
    a, _, b, _, ref, mfn = granted
    src = mfn_of(xen, b, 1)
    xen.frames.map_domain_page(b, src, True)[:8] = b"ABCDEFGH"
    statuses = copy(
        xen, b,
        copy_op((src, DOMID_SELF), (ref, a.domid), 2, GNTCOPY_dest_gref, 0, 0),
        copy_op((src, DOMID_SELF), (ref, a.domid), 2, GNTCOPY_dest_gref, 4095, 0),
        copy_op((src, DOMID_SELF), (600, a.domid), 2, GNTCOPY_dest_gref, 2, 2),
        copy_op((src, DOMID_SELF), (ref, a.domid), 2, GNTCOPY_dest_gref, 4, 4),
        copy_op((src, a.domid), (ref, a.domid), 2, GNTCOPY_dest_gref, 6, 6),
    )
    assert statuses == [GNTST_okay, GNTST_bad_copy_arg, GNTST_bad_gntref, GNTST_okay,
                        GNTST_permission_denied]
    assert bytes(xen.ram.peek(mfn)[:8]) == b"AB\0\0EF\0\0"
    assert ref not in a.grant_table.active
    assert flags_of(xen, a, ref) == GTF_permit_access


# ---------------------------------------------------------------- dump_table
def dump(xen, caller, dom):
    rc, (op,) = gnttab(xen, caller, GNTTABOP_dump_table, GnttabDumpTable(dom=dom))
    assert rc == 0
    return op.status


def test_dump_table_prints_to_the_console(xen, dom0, granted):
    a, _, b, _, ref, mfn = granted
    op = map_ref(xen, b, a, ref)
    xen.console.read_ring(clear=True)
    assert dump(xen, a, DOMID_SELF) == GNTST_okay
    text = xen.console.read_ring(clear=True).decode()
    assert f"grant-table for remote d{a.domid} (v1)" in text
    assert "1 frames (32 max)" in text
    assert f"[0x{ref:03x}]" in text and f"0x{mfn:x}" in text
    assert dump(xen, dom0, a.domid) == GNTST_okay
    assert f"grant-table for remote d{a.domid}" in xen.console.read_ring().decode()
    assert unmap(xen, b, op.handle) == GNTST_okay


@pytest.mark.parametrize("target, status", [
    ("other", GNTST_permission_denied), ("missing", GNTST_bad_domain)])
def test_dump_table_refusals(xen, make_domu, target, status):
    a, b = make_domu(), make_domu()
    xen.console.read_ring(clear=True)
    assert dump(xen, a, b.domid if target == "other" else NO_DOMAIN) == status
    assert "grant-table" not in xen.console.read_ring().decode()


# ---------------------------------------------------------------- domain death
def test_destroying_the_mapper_releases_its_mappings(xen, privcmd, granted):
    a, gtab, b, _, ref, mfn = granted
    map_ref(xen, b, a, ref, flags=GNTMAP_host_map | GNTMAP_device_map)
    map_ref(xen, b, a, ref, flags=GNTMAP_host_map | GNTMAP_readonly, host_addr=HOST_ADDR + 0x1000)
    assert xen.frames.count(mfn) == 4
    destroy_domain(privcmd, b.domid)
    assert xen.domains.get(b.domid) is None
    assert raw_entry(xen, a, ref) == (GTF_permit_access, b.domid, mfn)
    assert ref not in a.grant_table.active
    assert xen.frames.count(mfn) == 1
    assert xen.frames.type_of(mfn) == NO_TYPE
    assert gtab.end_foreign_access_ref(ref, readonly=False) is True


def test_destroying_the_granter_while_mapped_leaves_a_zombie(xen, privcmd, granted):
    a, _, b, _, ref, mfn = granted
    other = mfn_of(xen, a, 1)
    op = map_ref(xen, b, a, ref)
    destroy_domain(privcmd, a.domid)
    assert xen.domains.get(a.domid) is a
    assert a.is_dying
    assert xen.frames.owner(mfn) is a
    assert xen.frames.count(mfn) == 1            # the mapping's; the allocation is gone
    assert xen.frames.owner(other) is None
    assert can_see(xen, b, mfn, writable=True)
    assert unmap(xen, b, op.handle) == GNTST_okay
    assert xen.domains.get(a.domid) is None
    assert xen.frames.owner(mfn) is None
    assert not can_see(xen, b, mfn, writable=False)


def test_a_table_that_cannot_grow_fully_does_not_grow_at_all():
    """gnttab_grow_table() frees what it got when an allocation fails."""
    from tests.conftest import make_host
    from xl.dombuild import build_pv_domain
    from xl.privcmd import Privcmd
    host = make_host(memory=64 << 20, dom0_memory=32 << 20)
    xen = host.xen
    d = xen.domains.get(build_pv_domain(Privcmd(xen), memory_kib=4096).domid)
    leftover = xen.free_pages
    # Take all but three free frames away from the heap.
    hog = [xen.heap.alloc(0) for _ in range(leftover - 3)]
    op = GnttabSetupTable(dom=DOMID_SELF, nr_frames=6, frame_list=(0,) * 6)
    rc, (out,) = hypercall(xen, d, HYPERVISOR_grant_table_op, GNTTABOP_setup_table, (op,))
    assert (rc, out.status) == (0, GNTST_general_error)
    assert d.grant_table.nr_grant_frames == 1 and xen.free_pages == 3
    for mfn in hog:
        xen.heap.free(mfn, 0)
