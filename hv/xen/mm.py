"""The frame table (the role of Xen's arch/x86/mm.c and struct page_info).

Every machine frame is free in the heap or owned by exactly one domain. An
owned frame has:

- a reference count (``count_info``): one reference while it is allocated to
  its owner (PGC_allocated), plus one per mapping or other user. It is freed
  when the count reaches zero, so a frame that is mapped or referenced can't
  be freed or change owner;
- a type with a type count (``type_info``): none, writable, L1-L4 page table,
  GDT or LDT. A frame holds one type at a time; the type can change only when
  its type count is zero. That is how Xen keeps a writable mapping of a page
  table from ever existing.

State is sparse: ownership and the M2P (mfn -> gpfn) are runs in a RangeMap;
counts and types are stored only for frames that differ from the default
(count 1, no type).
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Iterator

from hv.public.errno import E2BIG, EACCES, EBUSY, EFAULT, EINVAL, EPERM
from hv.public.xen import (
    DOMID_IO, PAGE_SHIFT, PTE_MFN_MASK, _PAGE_PRESENT, _PAGE_RW,
)
from hv.xen.errors import XenError
from hv.xen.page_alloc import MachineMemory, PageAllocator
from hv.xen.rangemap import RangeMap

if TYPE_CHECKING:
    from hv.xen.domain import Domain

# Page types (type_info & PGT_type_mask).
PGT_none = 0
PGT_l1_page_table = 1
PGT_l2_page_table = 2
PGT_l3_page_table = 3
PGT_l4_page_table = 4
PGT_gdt_page = 5
PGT_ldt_page = 6
PGT_writable_page = 7

PGT_NAMES = {
    PGT_none: "none", PGT_l1_page_table: "l1", PGT_l2_page_table: "l2",
    PGT_l3_page_table: "l3", PGT_l4_page_table: "l4", PGT_gdt_page: "gdt",
    PGT_ldt_page: "ldt", PGT_writable_page: "writable",
}
PAGE_TABLE_TYPES = (PGT_l1_page_table, PGT_l2_page_table, PGT_l3_page_table, PGT_l4_page_table)

# Which pool a frame came from: a domain's own memory (counted in tot_pages),
# or a hypervisor page shared with it (shared_info, grant-table frames).
DOMHEAP = "domheap"
XENHEAP = "xenheap"

_PTE = struct.Struct("<512Q")

# Flags a 64-bit PV guest may set in an entry: present, R/W, user, accessed,
# dirty, the three available bits, the eleven high available bits and NX.
# Everything else (write-through, cache-disable, PSE/PAT, global, ...) is
# refused (Xen's base_disallow_mask). An L1 entry may also be global; a
# domain with I/O memory (the hardware domain) may set cache attributes in
# one; and a debug build of Xen keeps pte bit 62 for its own grant mappings.
_PAGE_USER, _PAGE_ACCESSED, _PAGE_DIRTY, _PAGE_GLOBAL = 0x004, 0x020, 0x040, 0x100
_PAGE_PWT, _PAGE_PCD, _PAGE_PAT = 0x008, 0x010, 0x080
PAGE_CACHE_ATTRS = _PAGE_PWT | _PAGE_PCD | _PAGE_PAT
_PAGE_AVAIL = 0xE00
_PAGE_AVAIL_HIGH = 0x7FF << 12
_PAGE_GNTTAB = 1 << 22
_PAGE_NX = 1 << 23
_ALLOWED = (_PAGE_PRESENT | _PAGE_RW | _PAGE_USER | _PAGE_ACCESSED | _PAGE_DIRTY
            | _PAGE_AVAIL | _PAGE_AVAIL_HIGH | _PAGE_NX)
BASE_DISALLOW_MASK = ~_ALLOWED & 0xFFFFFFFF
L1_DISALLOW_MASK = BASE_DISALLOW_MASK & ~_PAGE_GLOBAL

# Machine frames that are I/O memory, not RAM: the first MiB (x86's legacy
# hole, which Xen gives to dom_io) and everything above the end of RAM.
LOW_IO_FRAMES = 256
# The all-ones frame number of a 52-bit physical address (INVALID_MFN's twin).
PADDR_MFN_LIMIT = (1 << 40) - 1


def pte_flags(entry: int) -> int:
    """An entry's flags as Xen reads them: bits 0-11, and 52-63 as 12-23."""
    return ((entry >> 40) & ~0xFFF & 0xFFFFFFFF) | (entry & 0xFFF)


class TypeInfo:
    __slots__ = ("type", "count", "pinned", "validating")

    def __init__(self, type_: int):
        self.type = type_
        self.count = 0
        self.pinned = False
        # Set while the frame's entries are checked: the type is already
        # claimed, so an entry that points back at the frame itself asks
        # for a type it cannot have (Xen marks the type before validating).
        self.validating = False

    def __repr__(self) -> str:
        pin = " pinned" if self.pinned else ""
        return f"<{PGT_NAMES[self.type]} x{self.count}{pin}>"


class FrameTable:
    def __init__(self, mem: MachineMemory, heap: PageAllocator, debug_build: bool = False):
        self.mem = mem
        self.heap = heap
        self.l1_disallow_mask = L1_DISALLOW_MASK | (_PAGE_GNTTAB if debug_build else 0)
        # mfn -> gpfn (the M2P), tagged with (owner, pool).
        self.m2p = RangeMap()
        self._count: dict[int, int] = {}        # reference counts other than 1
        self._alloc_dropped: set[int] = set()   # owned, PGC_allocated released
        self._type: dict[int, TypeInfo] = {}    # frames with a type reference
        # Domains whose every released frame someone wants to hear about
        # (dying domains, whose last frame ends them), and who to tell.
        self.watched: set["Domain"] = set()
        self.on_release = None
        # Checks a frame's descriptors before it may become a GDT page
        # (descriptor_tables.validate_segdesc_page).
        self.validate_segdesc = None

    # ------------------------------------------------------------ queries
    def owner(self, mfn: int) -> "Domain | None":
        hit = self.m2p.get(mfn)
        return None if hit is None else hit[1][0]

    def pool(self, mfn: int) -> str | None:
        hit = self.m2p.get(mfn)
        return None if hit is None else hit[1][1]

    def gpfn(self, mfn: int) -> int | None:
        hit = self.m2p.get(mfn)
        return None if hit is None else hit[0]

    def count(self, mfn: int) -> int:
        if self.m2p.find(mfn) is None:
            return 0
        return self._count.get(mfn, 1)

    def is_allocated(self, mfn: int) -> bool:
        """Owned, with its PGC_allocated reference still held."""
        return self.m2p.find(mfn) is not None and mfn not in self._alloc_dropped

    def type_of(self, mfn: int) -> tuple[int, int, bool]:
        """(type, type count, pinned)."""
        t = self._type.get(mfn)
        return (PGT_none, 0, False) if t is None else (t.type, t.count, t.pinned)

    def frames_of(self, d: "Domain") -> Iterator[tuple[int, int, str]]:
        """(first mfn, count, pool) of each run of frames ``d`` owns."""
        for run in d.frames:
            yield run.start, run.length, run.tag

    def special_frames(self) -> dict[int, tuple[int, TypeInfo | None, bool]]:
        """Frames whose count, type or allocation differs from the default:
        mfn -> (count, type info, PGC_allocated released)."""
        keys = set(self._count) | set(self._type) | self._alloc_dropped
        return {m: (self.count(m), self._type.get(m), m in self._alloc_dropped)
                for m in sorted(keys)}

    # ------------------------------------------------------------ ownership
    def assign_pages(self, d: "Domain", mfn: int, count: int, pool: str = DOMHEAP) -> None:
        """Give ``count`` free frames from ``mfn`` to ``d`` (assign_pages())."""
        if d.is_dying:
            raise XenError(EINVAL)
        if pool == DOMHEAP and d.tot_pages + count > d.max_pages:
            raise XenError(E2BIG)
        self.m2p.set(mfn, count, None, (d, pool))
        d.frames.set(mfn, count, None, pool)
        if pool == DOMHEAP:
            d.tot_pages += count
        else:
            d.xenheap_pages += count

    def alloc_domheap_pages(self, d: "Domain", order: int, limit: int | None = None) -> int | None:
        """Allocate 2^order frames to ``d``, below mfn ``limit`` if given;
        None when the heap has none. Raises when ``d`` may not take them."""
        if d.is_dying:
            raise XenError(EINVAL)
        if d.tot_pages + (1 << order) > d.max_pages:
            raise XenError(E2BIG)
        mfn = self.heap.alloc(order, limit)
        if mfn is not None:
            self.assign_pages(d, mfn, 1 << order)
        return mfn

    def alloc_xenheap_page(self, d: "Domain") -> int | None:
        """A hypervisor page shared with ``d`` (share_xen_page_with_guest()).
        It is writable memory for good: it holds a writable type reference
        of its own, so it can never become a page table."""
        mfn = self.heap.alloc(0)
        if mfn is not None:
            self.m2p.set(mfn, 1, None, (d, XENHEAP))
            d.frames.set(mfn, 1, None, XENHEAP)
            d.xenheap_pages += 1
            t = self._type[mfn] = TypeInfo(PGT_writable_page)
            t.count = 1
        return mfn

    # ------------------------------------------------------------ references
    def get_page(self, mfn: int, d: "Domain") -> bool:
        """Take a reference on a frame ``d`` owns (get_page())."""
        run = self.m2p.find(mfn)
        if run is None or run.tag[0] is not d:
            return False
        self._count[mfn] = self._count.get(mfn, 1) + 1
        return True

    def put_page(self, mfn: int) -> None:
        count = self._count.get(mfn, 1) - 1
        if count == 0:
            self._count.pop(mfn, None)
            self._free_frame(mfn)
            return
        if count == 1 and mfn not in self._alloc_dropped:
            del self._count[mfn]
        else:
            self._count[mfn] = count
        if self.watched:
            owner = self.owner(mfn)
            if owner in self.watched:
                self.on_release(owner)

    def put_page_alloc_ref(self, mfn: int) -> None:
        """Release the PGC_allocated reference: the owner gives the frame up;
        it is freed now, or when its last other user lets go."""
        if mfn in self._alloc_dropped:
            return
        self._alloc_dropped.add(mfn)
        self.put_page(mfn)

    def steal_page(self, d: "Domain", mfn: int) -> None:
        """Take a frame from ``d`` for transfer to another domain: it must be
        an ordinary page of ``d`` with no reference but its allocation and no
        type (steal_page())."""
        hit = self.m2p.get(mfn)
        if (hit is None or hit[1] != (d, DOMHEAP) or mfn in self._alloc_dropped
                or self._count.get(mfn, 1) != 1 or mfn in self._type):
            raise XenError(EINVAL)
        self.m2p.clear(mfn, 1)
        d.frames.clear(mfn, 1)
        d.tot_pages -= 1

    def free_stolen_page(self, mfn: int) -> None:
        """A stolen frame nobody received goes back to the heap."""
        self.heap.free(mfn, 0)
        self.mem.scrub(mfn)

    def _free_frame(self, mfn: int) -> None:
        run = self.m2p.find(mfn)
        d, pool = run.tag
        self.m2p.clear(mfn, 1)
        d.frames.clear(mfn, 1)
        self._alloc_dropped.discard(mfn)
        self._type.pop(mfn, None)
        if pool == DOMHEAP:
            d.tot_pages -= 1
        else:
            d.xenheap_pages -= 1
        self.heap.free(mfn, 0)
        self.mem.scrub(mfn)
        if d in self.watched:
            self.on_release(d)

    def relinquish(self, d: "Domain") -> None:
        """Drop the allocation reference of every page of ``d``'s own memory.
        Pages no one else holds are freed at once, in bulk; pages still
        mapped by another domain stay until it lets go (relinquish_memory()).
        Pinned page tables are unpinned first, which drops the references
        their entries hold. Hypervisor pages shared with ``d`` stay until
        the domain is finally destroyed."""
        for mfn in [m for m, t in self._type.items() if t.pinned and self.owner(m) is d]:
            if self._type.get(mfn) is not None and self._type[mfn].pinned:
                self.unpin_table(d, mfn)
        # A dying domain has no pseudo-physical space any more, even for the
        # frames it cannot free yet.
        for run in list(d.frames):
            self.set_m2p(run.start, run.length, None)
        d.p2m.clear(0, 1 << 64)
        held = {m for m in self._count if self.owner(m) is d}
        for start, length, pool in list(self.frames_of(d)):
            if pool != DOMHEAP:
                continue
            pos = start
            for mfn in sorted(m for m in held if start <= m < start + length):
                self._free_run(d, pos, mfn - pos, pool)
                self.put_page_alloc_ref(mfn)
                pos = mfn + 1
            self._free_run(d, pos, start + length - pos, pool)

    def xenheap_in_use(self, d: "Domain") -> bool:
        """Does anyone hold a reference to a hypervisor page shared with d?"""
        return any(self.owner(m) is d and self.pool(m) == XENHEAP for m in self._count)

    def free_xenheap_page(self, d: "Domain", mfn: int) -> None:
        self._free_run(d, mfn, 1, XENHEAP)

    def free_xenheap_pages(self, d: "Domain") -> None:
        for start, length, pool in list(self.frames_of(d)):
            if pool == XENHEAP:
                self._free_run(d, start, length, pool)

    def _free_run(self, d: "Domain", mfn: int, count: int, pool: str) -> None:
        if count <= 0:
            return
        for m in [m for m in self._type if mfn <= m < mfn + count]:
            del self._type[m]
        self.m2p.clear(mfn, count)
        d.frames.clear(mfn, count)
        if pool == DOMHEAP:
            d.tot_pages -= count
        else:
            d.xenheap_pages -= count
        self.heap.free_range(mfn, count)
        self.mem.scrub(mfn, count)

    # ------------------------------------------------------------ M2P
    def set_m2p(self, mfn: int, count: int, gpfn: int | None) -> None:
        """Point frames at gpfns from ``gpfn`` on (or at none), keeping each
        frame's owner and pool: the one writer of the M2P's values."""
        run = self.m2p.find(mfn)
        if run is not None and mfn + count <= run.start + run.length:   # the usual case
            self.m2p.set(mfn, count, gpfn, run.tag)
            return
        for run in list(self.m2p.runs(mfn, mfn + count)):
            value = None if gpfn is None else gpfn + (run.start - mfn)
            self.m2p.set(run.start, run.length, value, run.tag)

    # ------------------------------------------------------------ types
    def get_page_type(self, mfn: int, type_: int) -> bool:
        """Take a type reference: the frame takes ``type_`` if it has no
        type in use, and fails if it holds another (get_page_type())."""
        return self._get_page_type(mfn, type_) == 0

    def _get_page_type(self, mfn: int, type_: int) -> int:
        """As get_page_type(), but 0 or the -errno Xen gives: -EINVAL for a
        type conflict, whatever validation found for a table."""
        t = self._type.get(mfn)
        if t is None or (t.count == 0 and not t.validating):
            t = self._type[mfn] = TypeInfo(type_)
            if type_ in PAGE_TABLE_TYPES or type_ == PGT_gdt_page:
                t.validating = True
                if type_ == PGT_gdt_page:
                    rc = 0 if self.validate_segdesc(self.mem.frame(mfn)) else -EINVAL
                else:
                    rc = self._validate_table(mfn, type_)
                t.validating = False
                if rc:
                    del self._type[mfn]
                    return rc
        elif t.type != type_ or t.validating:
            return -EINVAL
        t.count += 1
        return 0

    def put_page_type(self, mfn: int) -> None:
        t = self._type[mfn]
        t.count -= 1
        if t.count == 0 and not t.pinned:
            del self._type[mfn]
            if t.type in PAGE_TABLE_TYPES:
                self._devalidate_table(mfn, t.type)

    def get_page_and_type(self, mfn: int, d: "Domain", type_: int) -> bool:
        return self._get_page_and_type(mfn, d, type_) == 0

    def _get_page_and_type(self, mfn: int, d: "Domain", type_: int) -> int:
        if not self.get_page(mfn, d):
            return -EINVAL
        rc = self._get_page_type(mfn, type_)
        if rc:
            self.put_page(mfn)
        return rc

    def put_page_and_type(self, mfn: int) -> None:
        self.put_page_type(mfn)
        self.put_page(mfn)

    # ------------------------------------------------------------ page tables
    def pin_table(self, d: "Domain", mfn: int, level: int) -> None:
        """MMUEXT_PIN_Ln_TABLE: validate the frame as a level-n table and keep
        the type until unpinned."""
        type_ = PAGE_TABLE_TYPES[level - 1]
        t = self._type.get(mfn)
        if t is not None and t.pinned:
            raise XenError(EINVAL)
        rc = self._get_page_and_type(mfn, d, type_)
        if rc:
            raise XenError(-rc)
        self._type[mfn].pinned = True

    def unpin_table(self, d: "Domain", mfn: int) -> None:
        t = self._type.get(mfn)
        if self.owner(mfn) is not d or t is None or not t.pinned:
            raise XenError(EINVAL)
        t.pinned = False
        self.put_page_and_type(mfn)

    def entries(self, mfn: int) -> tuple[int, ...]:
        return _PTE.unpack(self.mem.peek(mfn))

    def _validate_table(self, mfn: int, type_: int) -> int:
        """Take the references every present entry needs; undo and fail if
        any entry may not be mapped (promote_lN_table())."""
        d = self.owner(mfn)
        taken: list[int] = []
        for entry in self.entries(mfn):
            if not entry & _PAGE_PRESENT:
                continue
            rc = self._get_entry_refs(d, d, entry, type_)
            if rc:
                for done in reversed(taken):
                    self._put_entry_refs(done, type_)
                return rc
            taken.append(entry)
        return 0

    def _devalidate_table(self, mfn: int, type_: int) -> None:
        for entry in self.entries(mfn):
            if entry & _PAGE_PRESENT:
                self._put_entry_refs(entry, type_)

    def is_io_frame(self, mfn: int) -> bool:
        return mfn < LOW_IO_FRAMES or mfn >= self.mem.nr_frames

    def _get_entry_refs(self, d: "Domain", pg_owner: "Domain", entry: int, type_: int) -> int:
        """The references a present entry of ``d``'s table holds, taken, or
        Xen's errno (get_page_from_l1e() and its kin): a flag a PV guest may
        not set is -EINVAL; I/O memory is the hardware domain's to map and
        holds no reference (-EPERM for anyone else); an L1 entry for a frame
        that is not ``pg_owner``'s, or that cannot be writable, is -EBUSY;
        Xen's own pages shared with a guest take no cache attributes."""
        target = (entry & PTE_MFN_MASK) >> PAGE_SHIFT
        flags = pte_flags(entry)
        if type_ == PGT_l1_page_table:
            io_caps = d.is_hardware_domain
            if flags & (self.l1_disallow_mask & ~PAGE_CACHE_ATTRS if io_caps
                        else self.l1_disallow_mask):
                return -EINVAL
            if self.is_io_frame(target):
                if pg_owner.is_hardware_domain or (pg_owner.domid == DOMID_IO and io_caps):
                    return 0
                return -EINVAL if target == PADDR_MFN_LIMIT else -EPERM
            if not self.get_page(target, pg_owner):
                return -EBUSY
            if entry & _PAGE_RW and not self.get_page_type(target, PGT_writable_page):
                self.put_page(target)
                return -EBUSY
            if flags & PAGE_CACHE_ATTRS and self.pool(target) == XENHEAP:
                if entry & _PAGE_RW:
                    self.put_page_type(target)
                self.put_page(target)
                return -EACCES
            return 0
        if flags & BASE_DISALLOW_MASK:
            return -EINVAL
        return self._get_page_and_type(target, d, type_ - 1)

    def _put_entry_refs(self, entry: int, type_: int) -> None:
        target = (entry & PTE_MFN_MASK) >> PAGE_SHIFT
        if type_ == PGT_l1_page_table:
            if self.is_io_frame(target):
                return
            if entry & _PAGE_RW:
                self.put_page_type(target)
            self.put_page(target)
        else:
            self.put_page_and_type(target)

    def update_entry(self, d: "Domain", pg_owner: "Domain", pte_maddr: int, new: int) -> None:
        """MMU_NORMAL_PT_UPDATE: write one 8-byte entry of a frame ``d`` owns.
        In a page table in use the new entry is validated first (only an L1
        entry may name ``pg_owner``'s frames: how dom0 maps a guest's memory)
        and the old one's references are dropped after; elsewhere the frame
        must be able to be writable, and it is a plain write."""
        mfn, offset = pte_maddr >> PAGE_SHIFT, pte_maddr & 0xFFF
        if offset & 7 or self.owner(mfn) is not d:
            raise XenError(EINVAL)
        page = self.mem.frame(mfn)
        t = self._type.get(mfn)
        if t is not None and t.type in PAGE_TABLE_TYPES and (t.count or t.pinned):
            if t.type != PGT_l1_page_table and pg_owner is not d:
                raise XenError(EINVAL)
            old = struct.unpack_from("<Q", page, offset)[0]
            if new & _PAGE_PRESENT:
                rc = self._get_entry_refs(d, pg_owner, new, t.type)
                if rc:
                    raise XenError(-rc)
            struct.pack_into("<Q", page, offset, new)
            if old & _PAGE_PRESENT:
                self._put_entry_refs(old, t.type)
            return
        if not self.get_page_type(mfn, PGT_writable_page):
            raise XenError(EINVAL)
        struct.pack_into("<Q", page, offset, new)
        self.put_page_type(mfn)

    # ------------------------------------------------------------ guest access
    def create_grant_host_mapping(self, d: "Domain", mfn: int, readonly: bool) -> None:
        """``d`` now maps a frame another domain granted it: what its page
        tables would hold on Xen (create_grant_host_mapping())."""
        maps = d.foreign_maps.setdefault(mfn, [0, 0])
        maps[0 if readonly else 1] += 1

    def destroy_grant_host_mapping(self, d: "Domain", mfn: int, readonly: bool) -> None:
        maps = d.foreign_maps[mfn]
        maps[0 if readonly else 1] -= 1
        if maps == [0, 0]:
            del d.foreign_maps[mfn]

    def map_domain_page(self, d: "Domain", mfn: int, writable: bool) -> bytearray:
        """The bytes of a frame as ``d`` may see them: its own frames, frames
        it has mapped through a grant, or (for a privileged domain) any
        allocated frame. A PV guest never gets a writable view of its page
        tables or descriptor tables.

        A view stands for the guest's own page-table mapping of the frame,
        which this model does not keep; so a view taken earlier is not
        counted, and does not stop the frame becoming a page table later."""
        owner = self.owner(mfn)
        if owner is None:
            raise XenError(EFAULT)
        if owner is not d and not d.is_privileged:
            maps = d.foreign_maps.get(mfn)
            if maps is None or (writable and not maps[1]):
                raise XenError(EFAULT)
        if writable:
            t = self._type.get(mfn)
            if t is not None and t.type != PGT_writable_page and (t.count or t.pinned):
                raise XenError(EPERM)
        return self.mem.frame(mfn)
