"""The frame table: ownership, reference and type counts, page-table pinning
and validated updates (mmu_update, mmuext_op), and what a guest may touch."""

import struct

import pytest

from hv.public.errno import EACCES, EBUSY, EFAULT, EINVAL, ENOSYS, EPERM, ESRCH
from hv.public.xen import (
    DOMID_IO, DOMID_SELF, DOMID_XEN, HYPERVISOR_mmu_update, HYPERVISOR_mmuext_op, MMU_MACHPHYS_UPDATE,
    MMU_NORMAL_PT_UPDATE, MMUEXT_CLEAR_PAGE, MMUEXT_COPY_PAGE, MMUEXT_PIN_L1_TABLE,
    MMUEXT_TLB_FLUSH_LOCAL, MMUEXT_UNPIN_TABLE, MmuextOp, MmuUpdate,
)
from hv.xen.errors import XenError
from hv.xen.mm import (
    DOMHEAP, PGT_l1_page_table, PGT_l2_page_table, PGT_none, PGT_writable_page, XENHEAP,
)

from tests.conftest import hypercall
from tests.calls import PRESENT, RW, mmu_update, mmuext, pin, pte, write_entries



def test_every_frame_has_one_owner_and_counts_start_at_one(xen, make_domu):
    d = make_domu(16)
    mfn = xen.p2m.lookup(d, 0)
    assert xen.frames.owner(mfn) is d and xen.frames.pool(mfn) == DOMHEAP
    assert xen.frames.count(mfn) == 1 and xen.frames.type_of(mfn) == (PGT_none, 0, False)
    assert xen.frames.owner(d.shared_info_mfn) is d
    assert xen.frames.pool(d.shared_info_mfn) == XENHEAP
    assert xen.frames.gpfn(mfn) == 0


def test_pinning_an_l1_takes_references_on_every_mapped_frame(xen, make_domu):
    d = make_domu(16)
    table, data, rw = (xen.p2m.lookup(d, g) for g in (1, 2, 3))
    write_entries(xen, d, table, {0: pte(data), 1: pte(rw, PRESENT | RW)})
    assert pin(xen, d, 1, table) == (0, 1)
    assert xen.frames.type_of(table) == (PGT_l1_page_table, 1, True)
    assert xen.frames.count(table) == 2
    assert xen.frames.count(data) == 2 and xen.frames.type_of(data)[0] == PGT_none
    assert xen.frames.count(rw) == 2 and xen.frames.type_of(rw) == (PGT_writable_page, 1, False)
    rc, done = hypercall(xen, d, HYPERVISOR_mmuext_op,
                         (MmuextOp(cmd=MMUEXT_UNPIN_TABLE, arg1=table),), DOMID_SELF)
    assert (rc, done) == (0, 1)
    assert [xen.frames.count(m) for m in (table, data, rw)] == [1, 1, 1]
    assert xen.frames.type_of(rw) == (PGT_none, 0, False)


def test_a_page_table_can_never_be_mapped_writable(xen, make_domu):
    """The manual's example: a PT page can't also be RW."""
    d = make_domu(16)
    table, other = xen.p2m.lookup(d, 1), xen.p2m.lookup(d, 2)
    write_entries(xen, d, other, {})
    assert pin(xen, d, 1, other) == (0, 1)
    # An L1 mapping the pinned table writably fails validation: nothing pinned.
    write_entries(xen, d, table, {0: pte(other, PRESENT | RW)})
    # get_page_from_l1e's could_not_pin: the frame's type can't be taken.
    assert pin(xen, d, 1, table) == (-EBUSY, 0)
    assert xen.frames.type_of(table) == (PGT_none, 0, False)
    assert xen.frames.count(other) == 2          # only its own pin
    # The guest itself is refused a writable view of it.
    with pytest.raises(XenError) as e:
        xen.frames.map_domain_page(d, other, writable=True)
    assert e.value.errno == EPERM
    assert xen.frames.map_domain_page(d, other, writable=False) is not None


def test_an_l2_validates_its_l1s_recursively(xen, make_domu):
    d = make_domu(16)
    l2, l1, data = (xen.p2m.lookup(d, g) for g in (4, 5, 6))
    write_entries(xen, d, l1, {3: pte(data, PRESENT | RW)})
    write_entries(xen, d, l2, {0: pte(l1)})
    assert pin(xen, d, 2, l2) == (0, 1)
    assert xen.frames.type_of(l2) == (PGT_l2_page_table, 1, True)
    assert xen.frames.type_of(l1) == (PGT_l1_page_table, 1, False)
    assert xen.frames.type_of(data) == (PGT_writable_page, 1, False)
    # An L1 already in use can't be pinned as an L2 as well.
    assert pin(xen, d, 2, l1) == (-EINVAL, 0)


def test_pinning_twice_and_unpinning_an_unpinned_frame_fail(xen, make_domu):
    d = make_domu(16)
    table = xen.p2m.lookup(d, 7)
    assert pin(xen, d, 1, table) == (0, 1)
    assert pin(xen, d, 1, table) == (-EINVAL, 0)
    other = xen.p2m.lookup(d, 8)
    rc, done = hypercall(xen, d, HYPERVISOR_mmuext_op,
                         (MmuextOp(cmd=MMUEXT_UNPIN_TABLE, arg1=other),), DOMID_SELF)
    assert (rc, done) == (-EINVAL, 0)


def test_a_table_may_only_map_its_own_domains_frames(xen, make_domu):
    a, b = make_domu(16), make_domu(16)
    table = xen.p2m.lookup(a, 1)
    write_entries(xen, a, table, {0: pte(xen.p2m.lookup(b, 1))})
    # A reference can't be taken on a frame pg_owner doesn't own: could_not_pin.
    assert pin(xen, a, 1, table) == (-EBUSY, 0)
    # Nor may it pin a frame of another domain.
    assert pin(xen, a, 1, xen.p2m.lookup(b, 2)) == (-EINVAL, 0)


def test_mmu_update_validates_entries_of_a_live_table(xen, make_domu):
    d = make_domu(16)
    table, data, pinned_l1 = (xen.p2m.lookup(d, g) for g in (1, 2, 3))
    assert pin(xen, d, 1, table) == (0, 1)
    assert pin(xen, d, 1, pinned_l1) == (0, 1)
    ok = MmuUpdate(ptr=(table << 12) + 8 * 5 | MMU_NORMAL_PT_UPDATE, val=pte(data, PRESENT | RW))
    bad = MmuUpdate(ptr=(table << 12) + 8 * 6 | MMU_NORMAL_PT_UPDATE, val=pte(pinned_l1, PRESENT | RW))
    assert hypercall(xen, d, HYPERVISOR_mmu_update, (ok, bad), DOMID_SELF) == (-EBUSY, 1)
    assert xen.frames.entries(table)[5] == pte(data, PRESENT | RW)
    assert xen.frames.entries(table)[6] == 0
    assert xen.frames.type_of(data) == (PGT_writable_page, 1, False)
    # Replacing the entry drops the old one's references.
    clear = MmuUpdate(ptr=(table << 12) + 8 * 5, val=0)
    assert hypercall(xen, d, HYPERVISOR_mmu_update, (clear,), DOMID_SELF) == (0, 1)
    assert xen.frames.count(data) == 1 and xen.frames.type_of(data)[1] == 0


def test_mmu_update_on_another_domains_frame_fails(xen, make_domu):
    a, b = make_domu(16), make_domu(16)
    target = xen.p2m.lookup(b, 1)
    req = MmuUpdate(ptr=target << 12, val=0x1234)
    assert hypercall(xen, a, HYPERVISOR_mmu_update, (req,), DOMID_SELF) == (-EINVAL, 0)
    assert xen.ram.peek(target)[:8] == bytes(8)


def test_machphys_update_moves_a_frame_in_the_p2m(xen, make_domu):
    d = make_domu(16)
    mfn = xen.p2m.lookup(d, 9)
    req = MmuUpdate(ptr=(mfn << 12) | MMU_MACHPHYS_UPDATE, val=0x5000)
    assert hypercall(xen, d, HYPERVISOR_mmu_update, (req,), DOMID_SELF) == (0, 1)
    assert xen.frames.gpfn(mfn) == 0x5000 and xen.p2m.lookup(d, 0x5000) == mfn
    assert xen.p2m.lookup(d, 9) is None


def test_machphys_update_of_a_foreign_frame_is_refused(xen, make_domu):
    a, b = make_domu(16), make_domu(16)
    mfn = xen.p2m.lookup(b, 1)
    req = MmuUpdate(ptr=(mfn << 12) | MMU_MACHPHYS_UPDATE, val=7)
    assert hypercall(xen, a, HYPERVISOR_mmu_update, (req,), DOMID_SELF) == (-EINVAL, 0)
    assert xen.frames.gpfn(mfn) == 1


def test_only_the_control_domain_acts_on_a_foreign_domains_memory(xen, dom0, make_domu):
    a, b = make_domu(16), make_domu(16)
    mfn = xen.p2m.lookup(b, 1)
    pin_b = (MmuextOp(cmd=MMUEXT_PIN_L1_TABLE, arg1=mfn),)
    assert hypercall(xen, a, HYPERVISOR_mmuext_op, pin_b, b.domid) == (-EPERM, None)
    assert hypercall(xen, dom0, HYPERVISOR_mmuext_op, pin_b, b.domid) == (0, 1)
    assert xen.frames.type_of(mfn) == (PGT_l1_page_table, 1, True)


def test_clear_and_copy_page(xen, make_domu):
    d = make_domu(16)
    src, dst = xen.p2m.lookup(d, 1), xen.p2m.lookup(d, 2)
    xen.frames.map_domain_page(d, src, writable=True)[:4] = b"data"
    xen.frames.map_domain_page(d, dst, writable=True)[100] = 9
    ops = (MmuextOp(cmd=MMUEXT_CLEAR_PAGE, arg1=dst),
           MmuextOp(cmd=MMUEXT_COPY_PAGE, arg1=dst, arg2=src),
           MmuextOp(cmd=MMUEXT_TLB_FLUSH_LOCAL))
    assert hypercall(xen, d, HYPERVISOR_mmuext_op, ops, DOMID_SELF) == (0, 3)
    assert xen.ram.peek(dst)[:4] == b"data" and xen.ram.peek(dst)[100] == 0


def test_unknown_mmuext_command_and_bad_arguments(xen, make_domu):
    d = make_domu(16)
    assert hypercall(xen, d, HYPERVISOR_mmuext_op, (MmuextOp(cmd=99),), DOMID_SELF) == (-ENOSYS, 0)
    # Each op is read when its turn comes: the ones before a bad one are done.
    assert hypercall(xen, d, HYPERVISOR_mmuext_op, ("junk",), DOMID_SELF) == (-EFAULT, 0)
    flush = MmuextOp(cmd=MMUEXT_TLB_FLUSH_LOCAL)
    assert hypercall(xen, d, HYPERVISOR_mmuext_op, (flush, "junk"), DOMID_SELF) == (-EFAULT, 1)
    assert hypercall(xen, d, HYPERVISOR_mmuext_op, "junk", DOMID_SELF) == (-EFAULT, None)


def test_a_guest_sees_only_its_own_frames(xen, make_domu):
    a, b = make_domu(16), make_domu(16)
    with pytest.raises(XenError) as e:
        xen.frames.map_domain_page(a, xen.p2m.lookup(b, 0), writable=False)
    assert e.value.errno == EFAULT
    # The control domain may map any frame (how a toolstack builds guests).
    view = xen.frames.map_domain_page(xen.hardware_domain, xen.p2m.lookup(b, 0), writable=True)
    view[0] = 42
    assert xen.frames.map_domain_page(b, xen.p2m.lookup(b, 0), writable=False)[0] == 42


def test_freed_frames_are_scrubbed(xen, make_domu, privcmd):
    from xl.dombuild import destroy_domain
    d = make_domu(16)
    mfn = xen.p2m.lookup(d, 3)
    xen.frames.map_domain_page(d, mfn, writable=True)[:6] = b"secret"
    destroy_domain(privcmd, d.domid)
    assert xen.frames.owner(mfn) is None and xen.ram.peek(mfn)[:6] == bytes(6)


def test_destroy_unpins_tables_and_frees_everything(xen, make_domu, privcmd):
    from xl.dombuild import destroy_domain
    d = make_domu(16)
    l2, l1, data = (xen.p2m.lookup(d, g) for g in (4, 5, 6))
    write_entries(xen, d, l1, {0: pte(data, PRESENT | RW)})
    write_entries(xen, d, l2, {0: pte(l1)})
    assert pin(xen, d, 2, l2) == (0, 1)
    free_before = xen.free_pages
    destroy_domain(privcmd, d.domid)
    assert xen.domains.get(d.domid) is None
    assert xen.free_pages == free_before + 16 * 256 + 2  # memory, shared_info, grant frame
    assert all(xen.frames.owner(m) is None for m in (l2, l1, data))


# ---------------------------------------------------------------- the GDT
def gdt(xen, d, frames, entries):
    from hv.public.xen import HYPERVISOR_set_gdt
    return hypercall(xen, d, HYPERVISOR_set_gdt, tuple(frames), entries)[0]


def descriptor(low: int, high: int) -> bytes:
    return struct.pack("<II", low, high)


def test_set_gdt_types_its_frames_and_fixes_the_privilege_level(xen, make_domu):
    from hv.xen.mm import PGT_gdt_page
    d = make_domu(16)
    frame = xen.p2m.lookup(d, 20)
    page = xen.frames.map_domain_page(d, frame, writable=True)
    page[8:16] = descriptor(0x0000FFFF, 0x00AF9A00)     # present 64-bit code segment, DPL 0
    assert gdt(xen, d, [frame], 16) == 0
    assert xen.frames.type_of(frame) == (PGT_gdt_page, 1, False)
    assert xen.frames.count(frame) == 2
    # Xen raised the DPL to the guest kernel's ring (3), in place.
    assert struct.unpack_from("<II", xen.ram.peek(frame), 8) == (0x0000FFFF, 0x00AFFA00)
    # The guest may read its GDT but never write it.
    with pytest.raises(XenError):
        xen.frames.map_domain_page(d, frame, writable=True)
    assert d.vcpus[0].gdt_frames == (frame,) and d.vcpus[0].gdt_ents == 16


def test_a_gdt_with_a_system_descriptor_is_refused_whole(xen, make_domu):
    d = make_domu(16)
    good, bad = xen.p2m.lookup(d, 21), xen.p2m.lookup(d, 22)
    xen.frames.map_domain_page(d, bad, writable=True)[0:8] = descriptor(0, 0x00008900)  # a TSS
    assert gdt(xen, d, [good, bad], 1024) == -EINVAL
    assert [xen.frames.count(m) for m in (good, bad)] == [1, 1]
    assert xen.frames.type_of(good) == (PGT_none, 0, False)


def test_a_new_gdt_replaces_the_old_and_too_many_entries_are_refused(xen, make_domu):
    d = make_domu(16)
    first, second = xen.p2m.lookup(d, 23), xen.p2m.lookup(d, 24)
    assert gdt(xen, d, [first], 1) == 0
    assert gdt(xen, d, [second], 1) == 0
    assert xen.frames.count(first) == 1 and xen.frames.count(second) == 2
    assert gdt(xen, d, [second] * 15, 14 * 512 + 1) == -EINVAL
    assert gdt(xen, d, [], 600) == -EFAULT       # the list is shorter than 2 frames
    assert d.vcpus[0].gdt_frames == (second,)


def test_a_page_table_cannot_be_a_gdt(xen, make_domu):
    d = make_domu(16)
    table = xen.p2m.lookup(d, 25)
    assert pin(xen, d, 1, table) == (0, 1)
    assert gdt(xen, d, [table], 8) == -EINVAL


def test_call_gates_must_lead_to_a_guest_code_selector(xen, make_domu):
    from hv.xen.descriptor_tables import check_descriptor
    gate = 0x00008C00 | (3 << 13)                          # present call gate, DPL 3
    assert check_descriptor((0x0010 << 16) | 0x1234, gate) == ((0x0013 << 16) | 0x1234, 0x00008C00)
    assert check_descriptor((0xE0B0 << 16), gate) is None  # a selector in Xen's own GDT pages
    assert check_descriptor(0, 0x00008C01 | (3 << 13)) is None   # reserved bits set
    assert check_descriptor(123, 0x00000000) == (123, 0)   # not present: left alone


def test_destroy_lets_go_of_the_gdt(xen, make_domu, privcmd):
    from xl.dombuild import destroy_domain
    free = xen.free_pages
    d = make_domu(16)
    assert gdt(xen, d, [xen.p2m.lookup(d, 26)], 8) == 0
    destroy_domain(privcmd, d.domid)
    assert xen.domains.get(d.domid) is None and xen.free_pages == free


# ---------------------------------------------------------------- whose pages, whose tables
def test_only_l1_entries_may_map_the_named_foreign_domains_frames(xen, dom0, make_domu):
    d = make_domu(16)
    frames = xen.frames
    l2, l1 = xen.p2m.lookup(dom0, 400), xen.p2m.lookup(dom0, 401)
    write_entries(xen, dom0, l2, {})
    assert pin(xen, dom0, 2, l2) == (0, 1)
    assert pin(xen, dom0, 1, l1) == (0, 1)
    # dom0 maps a frame of d's through its own L1, naming d as pg_owner.
    target = xen.p2m.lookup(d, 5)
    assert mmu_update(xen, dom0, MmuUpdate(ptr=l1 << 12, val=pte(target)),
                      foreigndom=d.domid) == (0, 1)
    assert frames.count(target) == 2
    # An L2 entry may not be written on another domain's behalf.
    assert mmu_update(xen, dom0, MmuUpdate(ptr=l2 << 12, val=pte(l1)),
                      foreigndom=d.domid) == (-EINVAL, 0)
    assert mmu_update(xen, dom0, MmuUpdate(ptr=l2 << 12, val=pte(l1))) == (0, 1)
    # The high half names whose tables: d's tables are not dom0's to name
    # as its own, and a domain that does not exist is -ESRCH.
    assert mmu_update(xen, dom0, foreigndom=(77 + 1) << 16 | DOMID_SELF) == (-ESRCH, None)
    d_table = xen.p2m.lookup(d, 6)
    assert pin(xen, d, 1, d_table) == (0, 1)
    req = MmuUpdate(ptr=d_table << 12, val=pte(xen.p2m.lookup(d, 7)))
    assert mmu_update(xen, dom0, req) == (-EINVAL, 0)
    assert mmu_update(xen, dom0, req, foreigndom=(d.domid + 1) << 16 | d.domid) == (0, 1)
    assert frames.entries(d_table)[0] == req.val
    # A domU may not name dom0's tables.
    assert mmu_update(xen, d, req, foreigndom=1 << 16 | DOMID_SELF) == (-EPERM, 0)


def test_io_memory_is_the_hardware_domains_to_map(xen, dom0, make_domu):
    """Frames beyond RAM and the first MiB are I/O memory: dom0 may map
    them (and they hold no reference); a domU is refused with -EPERM, or
    -EINVAL for the all-ones frame."""
    d = make_domu(16)
    mmio = xen.ram.nr_frames + 100
    l1 = xen.p2m.lookup(dom0, 402)
    assert pin(xen, dom0, 1, l1) == (0, 1)
    for slot, mfn in enumerate((mmio, 5)):
        req = MmuUpdate(ptr=(l1 << 12) + 8 * slot, val=pte(mfn, PRESENT | RW))
        assert mmu_update(xen, dom0, req) == (0, 1)
    assert mmu_update(xen, dom0, MmuUpdate(ptr=l1 << 12, val=0)) == (0, 1)
    table = xen.p2m.lookup(d, 8)
    assert pin(xen, d, 1, table) == (0, 1)
    for mfn, errno in ((mmio, EPERM), (5, EPERM), ((1 << 40) - 1, EINVAL)):
        req = MmuUpdate(ptr=table << 12, val=pte(mfn))
        assert mmu_update(xen, d, req) == (-errno, 0)


def test_the_hardware_domain_may_choose_cache_attributes_but_not_for_xens_pages(xen, dom0,
                                                                              make_domu):
    d = make_domu(16)
    pcd = 0x010
    l1 = xen.p2m.lookup(dom0, 403)
    assert pin(xen, dom0, 1, l1) == (0, 1)
    data = xen.p2m.lookup(dom0, 404)
    assert mmu_update(xen, dom0, MmuUpdate(ptr=l1 << 12, val=pte(data, PRESENT | pcd))) == (0, 1)
    req = MmuUpdate(ptr=(l1 << 12) + 8, val=pte(dom0.shared_info_mfn, PRESENT | pcd))
    assert mmu_update(xen, dom0, req) == (-EACCES, 0)
    assert xen.frames.count(dom0.shared_info_mfn) == 1
    table = xen.p2m.lookup(d, 9)
    assert pin(xen, d, 1, table) == (0, 1)
    req = MmuUpdate(ptr=table << 12, val=pte(xen.p2m.lookup(d, 10), PRESENT | pcd))
    assert mmu_update(xen, d, req) == (-EINVAL, 0)


def test_pseudo_domains_as_page_owners(xen, dom0, make_domu):
    """DOMID_IO and DOMID_XEN name Xen's pseudo-domains: a domU may not act
    for them; dom0 may, but has no TLB of theirs to flush; mmu_update lets
    anyone name I/O memory, checked entry by entry."""
    d = make_domu(16)
    flush = MmuextOp(cmd=MMUEXT_TLB_FLUSH_LOCAL)
    assert mmuext(xen, d, flush, foreigndom=DOMID_IO) == (-EPERM, None)
    assert mmuext(xen, dom0, flush, foreigndom=DOMID_XEN) == (-EPERM, 0)
    assert mmu_update(xen, d, foreigndom=DOMID_IO) == (0, 0)
    assert mmuext(xen, d, flush, foreigndom=999) == (-ESRCH, None)


def test_clear_and_copy_work_on_xens_pages_shared_with_the_guest(xen, make_domu):
    d = make_domu(16)
    si = d.shared_info_mfn
    src = xen.p2m.lookup(d, 11)
    xen.frames.map_domain_page(d, src, writable=True)[:4] = b"copy"
    assert mmuext(xen, d, MmuextOp(cmd=MMUEXT_COPY_PAGE, arg1=si, arg2=src)) == (0, 1)
    assert d.shared_info[:4] == b"copy"
    assert mmuext(xen, d, MmuextOp(cmd=MMUEXT_CLEAR_PAGE, arg1=si)) == (0, 1)
    assert d.shared_info[:4] == bytes(4)


def test_machphys_update_of_a_shared_xen_page_changes_only_the_m2p(xen, make_domu):
    d = make_domu(16)
    si = d.shared_info_mfn
    req = MmuUpdate(ptr=(si << 12) | MMU_MACHPHYS_UPDATE, val=0x9000)
    assert mmu_update(xen, d, req) == (0, 1)
    assert xen.frames.gpfn(si) == 0x9000 and xen.p2m.lookup(d, 0x9000) is None
