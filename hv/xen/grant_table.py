"""Grant tables, version 1 (the role of Xen's common/grant_table.c).

A domain's grant table lives in frames Xen shares with it: 512 entries of
(flags, domid, frame) per page, written by the granting guest. Xen reads an
entry when another domain uses the reference, and keeps its own per-entry
"active" state (the pin counts and the frame) plus, for the mapping domain, a
maptrack table of handles. GTF_reading and GTF_writing in the shared entry
tell the granter its page is in use; it may not revoke the grant until they
clear.
"""

from __future__ import annotations

import struct
from collections import deque
from typing import TYPE_CHECKING

from hv.public.errno import EFAULT, EINVAL, ENOMEM, EPERM, ESRCH
from hv.public.grant_table import (
    GNTCOPY_dest_gref, GNTCOPY_source_gref, GNTMAP_contains_pte, GNTMAP_device_map,
    GNTMAP_host_map, GNTMAP_readonly, GNTST_bad_copy_arg, GNTST_bad_dev_addr,
    GNTST_bad_domain, GNTST_bad_gntref, GNTST_bad_handle, GNTST_bad_page,
    GNTST_general_error, GNTST_no_space, GNTST_okay, GNTST_permission_denied,
    GNTTABOP_copy, GNTTABOP_dump_table,
    GNTTABOP_get_version, GNTTABOP_map_grant_ref, GNTTABOP_query_size,
    GNTTABOP_setup_table, GNTTABOP_transfer, GNTTABOP_unmap_grant_ref,
    GRANT_ENTRIES_PER_PAGE_V1, GRANT_ENTRY_V1_SIZE, GTF_accept_transfer, GTF_permit_access,
    GTF_readonly, GTF_reading, GTF_sub_page, GTF_transfer_committed,
    GTF_transfer_completed, GTF_type_mask, GTF_writing, GnttabCopy, GnttabDumpTable, GrantEntryV1,
    GnttabGetVersion, GnttabMapGrantRef, GnttabQuerySize, GnttabSetupTable,
    GnttabTransfer, GnttabUnmapGrantRef,
)
from hv.public.xen import DOMID_SELF, PAGE_SHIFT, PAGE_SIZE
from hv.xen.dispatch import SubOps
from hv.xen.errors import XenError
from hv.xen.mm import PGT_writable_page

if TYPE_CHECKING:
    from hv.xen.domain import VCPU, Domain
    from hv.xen.hypervisor import Xen

OPT_MAX_GRANT_FRAMES = 64
OPT_MAX_MAPTRACK_FRAMES = 1024
INITIAL_NR_GRANT_FRAMES = 1
MAPTRACK_PER_PAGE = PAGE_SIZE // 16   # sizeof(struct grant_mapping)
INVALID_MAPTRACK_HANDLE = 0xFFFFFFFF

# The pin count packs four 8-bit counters, as Xen's GNTPIN_* do.
GNTPIN_hstw_inc = 1 << 0
GNTPIN_hstr_inc = 1 << 8
GNTPIN_devw_inc = 1 << 16
GNTPIN_devr_inc = 1 << 24
GNTPIN_hstw_mask = 0xFF << 0
GNTPIN_hstr_mask = 0xFF << 8
GNTPIN_devw_mask = 0xFF << 16
GNTPIN_devr_mask = 0xFF << 24
GNTPIN_write_mask = GNTPIN_hstw_mask | GNTPIN_devw_mask

# grant_entry_v1: flags, domid, frame.
_ENTRY = struct.Struct("<HHI")
_FLAGS = struct.Struct("<H")
_FRAME = struct.Struct("<I")
_FRAME_OFFSET = GrantEntryV1.offsetof("frame")


def _overflow_mask(pin_incr: int) -> int:
    """The top bit of each counter this increment touches."""
    return (pin_incr & 0x01010101) * 0x80


class ActiveEntry:
    __slots__ = ("pin", "domid", "mfn", "frame")

    def __init__(self) -> None:
        self.pin = 0
        self.domid = 0     # the domain holding the pins
        self.mfn = 0
        self.frame = 0     # the frame the entry named when first pinned

    def __repr__(self) -> str:
        return f"<active pin={self.pin:#010x} d{self.domid} mfn={self.mfn:#x}>"


class Mapping:
    """A maptrack entry: one grant mapped by this domain."""

    __slots__ = ("ref", "domid", "flags", "host_addr", "mfn")

    def __init__(self, ref: int, domid: int, flags: int, host_addr: int, mfn: int):
        self.ref = ref
        self.domid = domid
        self.flags = flags
        self.host_addr = host_addr
        self.mfn = mfn

    def __repr__(self) -> str:
        return f"<map d{self.domid} ref {self.ref} flags {self.flags:#x} mfn {self.mfn:#x}>"


class GrantTable:
    """One domain's grant table: what it grants, and what it maps."""

    def __init__(self, max_grant_frames: int, max_maptrack_frames: int):
        self.max_grant_frames = max_grant_frames
        self.max_maptrack_frames = max_maptrack_frames
        self.frames: list[int] = []            # mfns of the shared frames
        self.pages: list[bytearray] = []
        self.nr_entries = 0
        self.active: dict[int, ActiveEntry] = {}
        self.maptrack: dict[int, Mapping] = {}
        self.maptrack_limit = 0
        self._free_handles: deque[int] = deque()

    @property
    def nr_grant_frames(self) -> int:
        return len(self.frames)

    @property
    def nr_maptrack_frames(self) -> int:
        return self.maptrack_limit // MAPTRACK_PER_PAGE

    def locate(self, ref: int) -> tuple[bytearray, int]:
        """The grant frame holding entry ``ref``, and the entry's offset."""
        return (self.pages[ref // GRANT_ENTRIES_PER_PAGE_V1],
                (ref % GRANT_ENTRIES_PER_PAGE_V1) * GRANT_ENTRY_V1_SIZE)

    def entry(self, ref: int) -> tuple[int, int, int]:
        """(flags, domid, frame) as the guest wrote them."""
        return _ENTRY.unpack_from(*self.locate(ref))

    def set_flags(self, ref: int, set_bits: int = 0, clear_bits: int = 0) -> None:
        page, off = self.locate(ref)
        flags = _FLAGS.unpack_from(page, off)[0]
        _FLAGS.pack_into(page, off, (flags | set_bits) & ~clear_bits & 0xFFFF)

    def set_frame(self, ref: int, frame: int) -> None:
        page, off = self.locate(ref)
        _FRAME.pack_into(page, off + _FRAME_OFFSET, frame & 0xFFFFFFFF)

    def get_maptrack_handle(self) -> int:
        """Xen's free list always keeps one entry, its tail; a new maptrack
        frame's handles go to the front of it. So with every frame in use
        one handle per frame short of the limit is the most there can be."""
        free = self._free_handles
        if len(free) > 1:
            return free.popleft()
        if self.nr_maptrack_frames >= self.max_maptrack_frames:
            return INVALID_MAPTRACK_HANDLE
        base = self.maptrack_limit
        self.maptrack_limit += MAPTRACK_PER_PAGE
        free.extendleft(reversed(range(base + 1, base + MAPTRACK_PER_PAGE)))
        return base

    def put_maptrack_handle(self, handle: int) -> None:
        self.maptrack.pop(handle, None)
        self._free_handles.append(handle)


class GrantTables:
    def __init__(self, xen: "Xen"):
        self.xen = xen
        # cmd: (handler, op type, batched)
        shapes = {
            GNTTABOP_map_grant_ref: (self.gnttab_map_grant_ref, GnttabMapGrantRef, True),
            GNTTABOP_unmap_grant_ref: (self.gnttab_unmap_grant_ref, GnttabUnmapGrantRef, True),
            GNTTABOP_setup_table: (self.gnttab_setup_table, GnttabSetupTable, False),
            GNTTABOP_dump_table: (self.gnttab_dump_table, GnttabDumpTable, False),
            GNTTABOP_transfer: (self.gnttab_transfer, GnttabTransfer, True),
            GNTTABOP_copy: (self.gnttab_copy, GnttabCopy, True),
            GNTTABOP_query_size: (self.gnttab_query_size, GnttabQuerySize, False),
            GNTTABOP_get_version: (self.gnttab_get_version, GnttabGetVersion, False),
        }
        # The table finds a sub-op's whole shape; its array is checked here.
        self._ops = SubOps({cmd: (shape, None) for cmd, shape in shapes.items()})

    # ------------------------------------------------------------ dispatch
    def do_grant_table_op(self, v: "VCPU", cmd: int, uops):
        """``uops`` is the guest's array of op structures; each comes back
        with its status. Returns (rc, ops as Xen leaves them)."""
        handler, op_type, batched = self._ops.lookup(cmd, None)
        if not isinstance(uops, (tuple, list)):
            raise XenError(EFAULT)
        if len(uops) == 1:          # the usual case, quickly
            op = uops[0]
            if type(op) is not op_type:
                raise XenError(EFAULT)
            return 0, (handler(v, op),)
        for op in uops:
            if type(op) is not op_type:
                raise XenError(EFAULT)
        if not batched:
            raise XenError(EINVAL)
        return 0, tuple([handler(v, op) for op in uops])

    # ------------------------------------------------------------ per domain
    def domain_init(self, d: "Domain", max_grant_frames: int, max_maptrack_frames: int) -> None:
        if max_grant_frames < 0:
            max_grant_frames = OPT_MAX_GRANT_FRAMES
        if max_maptrack_frames < 0:
            max_maptrack_frames = OPT_MAX_MAPTRACK_FRAMES
        if (max_grant_frames < INITIAL_NR_GRANT_FRAMES or max_grant_frames > OPT_MAX_GRANT_FRAMES
                or max_maptrack_frames > OPT_MAX_MAPTRACK_FRAMES):
            raise XenError(EINVAL)
        d.grant_table = GrantTable(max_grant_frames, max_maptrack_frames)
        if not self._grow_table(d, INITIAL_NR_GRANT_FRAMES):
            raise XenError(ENOMEM)

    def _grow_table(self, d: "Domain", nr_frames: int) -> bool:
        """All the frames asked for, or none (gnttab_grow_table())."""
        gt = d.grant_table
        frames = self.xen.frames
        new: list[int] = []
        while gt.nr_grant_frames + len(new) < nr_frames:
            mfn = frames.alloc_xenheap_page(d)
            if mfn is None:
                for got in new:
                    frames.free_xenheap_page(d, got)
                return False
            new.append(mfn)
        gt.frames.extend(new)
        gt.pages.extend(self.xen.ram.frame(mfn) for mfn in new)
        gt.nr_entries = len(gt.frames) * GRANT_ENTRIES_PER_PAGE_V1
        return True

    def domain_destroy(self, d: "Domain") -> None:
        """Undo every mapping the dying domain holds of other domains'
        grants (gnttab_release_mappings()). Its own table stays until the
        domain is finally gone, for those still mapping its grants."""
        gt = d.grant_table
        for handle in sorted(gt.maptrack, reverse=True):
            m = gt.maptrack[handle]
            rd = self.xen.domains.get(m.domid)
            if rd is not None:
                self._release_mapping(d, rd, m, m.flags)
            gt.put_maptrack_handle(handle)

    # ------------------------------------------------------------ map
    def gnttab_map_grant_ref(self, v: "VCPU", op: GnttabMapGrantRef) -> GnttabMapGrantRef:
        ld = v.domain
        flags = op.flags
        readonly = bool(flags & GNTMAP_readonly)
        pin_incr = 0
        if flags & GNTMAP_device_map:
            pin_incr += GNTPIN_devr_inc if readonly else GNTPIN_devw_inc
        if flags & GNTMAP_host_map:
            pin_incr += GNTPIN_hstr_inc if readonly else GNTPIN_hstw_inc
        status, handle, mfn = self._map(ld, op, pin_incr, readonly)
        if status != GNTST_okay:
            return op.replace(status=status)
        return op.replace(status=GNTST_okay, handle=handle, dev_bus_addr=mfn << PAGE_SHIFT)

    def _map(self, ld: "Domain", op: GnttabMapGrantRef, pin_incr: int, readonly: bool):
        if not pin_incr:
            return GNTST_bad_gntref, 0, 0
        if op.flags & GNTMAP_contains_pte:
            # Mapping through a PTE's machine address needs guest page tables
            # with grant entries, which this model does not keep.
            return GNTST_general_error, 0, 0
        rd = self.xen.domains.get(op.dom)
        if rd is None:
            return GNTST_bad_domain, 0, 0
        lgt, rgt = ld.grant_table, rd.grant_table
        handle = lgt.get_maptrack_handle()
        if handle == INVALID_MAPTRACK_HANDLE:
            return GNTST_no_space, 0, 0
        ref = op.ref
        status, act, have_ref = self._acquire(rd, ref, ld.domid, pin_incr, readonly, mapping=True)
        if status != GNTST_okay:
            lgt.put_maptrack_handle(handle)
            return status, 0, 0
        frames = self.xen.frames
        mfn = act.mfn

        # References: one for the mapping, one more if both kinds are made;
        # a writable type reference for each writable kind. The frame must
        # still be the granter's.
        refs = 1 if have_ref else 0
        types = 0
        ok = have_ref or frames.get_page(mfn, rd)
        if ok and not have_ref:
            refs = 1
        if ok and op.flags & GNTMAP_device_map and not readonly:
            ok = frames.get_page_type(mfn, PGT_writable_page)
            types += ok
        if ok and op.flags & GNTMAP_host_map:
            if op.flags & GNTMAP_device_map:
                ok = frames.get_page(mfn, rd)
                refs += ok
            if ok and not readonly:
                ok = frames.get_page_type(mfn, PGT_writable_page)
                types += ok
        if not ok:
            for _ in range(types):
                frames.put_page_type(mfn)
            for _ in range(refs):
                frames.put_page(mfn)
            self._release(rgt, ref, act, pin_incr, readonly)
            lgt.put_maptrack_handle(handle)
            return GNTST_general_error, 0, 0
        if op.flags & GNTMAP_host_map:
            frames.create_grant_host_mapping(ld, mfn, readonly)
        lgt.maptrack[handle] = Mapping(ref, rd.domid, op.flags, op.host_addr, mfn)
        return GNTST_okay, handle, mfn

    def _acquire(self, rd: "Domain", ref: int, ldomid: int, pin_incr: int, readonly: bool,
                 mapping: bool) -> tuple[int, ActiveEntry | None, bool]:
        """Pin ``rd``'s grant ``ref`` for domain ``ldomid``: what
        map_grant_ref() and acquire_grant_for_copy() share. The first pin
        reads the entry and takes a reference on its frame. Returns (status,
        the active entry, whether that reference was taken here)."""
        gt = rd.grant_table
        if ref >= gt.nr_entries:
            return GNTST_bad_gntref, None, False
        act = gt.active.get(ref) or ActiveEntry()
        if act.pin and (act.domid != ldomid or act.pin & _overflow_mask(pin_incr)):
            return GNTST_general_error, None, False
        took_ref = False
        if not act.pin or (not readonly and not act.pin & GNTPIN_write_mask):
            status, frame = self._set_status(gt, ref, act, readonly, ldomid, mapping)
            if status != GNTST_okay:
                return status, None, False
            if not act.pin:
                if not self.xen.frames.get_page(frame, rd):   # PV: the frame is an mfn
                    self._reduce_status_for_pin(gt, ref, act, readonly)
                    return GNTST_bad_page, None, False
                took_ref = True
                act.domid, act.mfn, act.frame = ldomid, frame, frame
        act.pin += pin_incr
        gt.active[ref] = act
        return GNTST_okay, act, took_ref

    def _release(self, gt: GrantTable, ref: int, act: ActiveEntry, pin_incr: int,
                 readonly: bool) -> None:
        act.pin -= pin_incr
        self._reduce_status_for_pin(gt, ref, act, readonly)
        if not act.pin:
            gt.active.pop(ref, None)

    def _set_status(self, rgt: GrantTable, ref: int, act: ActiveEntry, readonly: bool,
                    ldomid: int, mapping: bool) -> tuple[int, int]:
        """Check the granter's entry allows ``ldomid`` in and mark it in use
        (_set_status_v1()). Returns (status, the entry's frame)."""
        page, off = rgt.locate(ref)
        flags, domid, frame = _ENTRY.unpack_from(page, off)
        mask = GTF_type_mask | (GTF_sub_page if mapping else 0)
        if not act.pin and ((flags & mask) != GTF_permit_access or domid != ldomid):
            return GNTST_general_error, 0
        if not readonly and flags & GTF_readonly:
            return GNTST_general_error, 0
        _FLAGS.pack_into(page, off, flags | GTF_reading | (0 if readonly else GTF_writing))
        return GNTST_okay, frame

    @staticmethod
    def _reduce_status_for_pin(rgt: GrantTable, ref: int, act: ActiveEntry, readonly: bool) -> None:
        clear = 0 if act.pin else GTF_reading
        if not readonly and not act.pin & GNTPIN_write_mask:
            clear |= GTF_writing
        if clear:
            rgt.set_flags(ref, clear_bits=clear)

    # ------------------------------------------------------------ unmap
    def gnttab_unmap_grant_ref(self, v: "VCPU", op: GnttabUnmapGrantRef) -> GnttabUnmapGrantRef:
        ld = v.domain
        return op.replace(status=self._unmap(ld, op))

    def _unmap(self, ld: "Domain", op: GnttabUnmapGrantRef) -> int:
        lgt = ld.grant_table
        if op.handle >= lgt.maptrack_limit:
            return GNTST_bad_handle
        m = lgt.maptrack.get(op.handle)
        if m is None or not m.flags:
            return GNTST_bad_handle
        rd = self.xen.domains.get(m.domid)
        if rd is None:
            return GNTST_bad_handle
        if m.ref >= rd.grant_table.nr_entries:
            return GNTST_bad_handle
        done = 0
        if op.dev_bus_addr and m.flags & GNTMAP_device_map and op.dev_bus_addr != m.mfn << PAGE_SHIFT:
            return GNTST_bad_dev_addr
        if op.host_addr and m.flags & GNTMAP_host_map:
            if op.host_addr != m.host_addr:
                # No PTE at that address maps this grant.
                return GNTST_general_error
            done |= GNTMAP_host_map
        if op.dev_bus_addr and m.flags & GNTMAP_device_map:
            done |= GNTMAP_device_map
        if not done:
            return GNTST_okay
        self._release_mapping(ld, rd, m, done)
        m.flags &= ~done
        if not m.flags & (GNTMAP_device_map | GNTMAP_host_map):
            lgt.put_maptrack_handle(op.handle)
        return GNTST_okay

    def _release_mapping(self, ld: "Domain", rd: "Domain", m: Mapping, kinds: int) -> None:
        """Drop the pins, references and type references that the ``kinds``
        (device and/or host) of mapping ``m`` hold (unmap_common_complete())."""
        frames = self.xen.frames
        rgt = rd.grant_table
        act = rgt.active[m.ref]
        readonly = bool(m.flags & GNTMAP_readonly)
        mfn = m.mfn
        # Both kinds share the frame; the last put may free it, so take the
        # host mapping off the mapper's view before letting go.
        if kinds & GNTMAP_host_map:
            frames.destroy_grant_host_mapping(ld, mfn, readonly)
        if kinds & GNTMAP_device_map:
            act.pin -= GNTPIN_devr_inc if readonly else GNTPIN_devw_inc
        if kinds & GNTMAP_host_map:
            act.pin -= GNTPIN_hstr_inc if readonly else GNTPIN_hstw_inc
        self._reduce_status_for_pin(rgt, m.ref, act, readonly)
        if not act.pin:
            del rgt.active[m.ref]
        if kinds & GNTMAP_device_map:
            if not readonly:
                frames.put_page_type(mfn)
            frames.put_page(mfn)
        if kinds & GNTMAP_host_map:
            if not readonly:
                frames.put_page_type(mfn)
            frames.put_page(mfn)

    # ------------------------------------------------------------ setup/query
    def _target_domain(self, v: "VCPU", domid: int) -> tuple["Domain | None", int]:
        """The domain a table operation names, and the status when the
        caller may not have it."""
        d = self.xen.domains.by_any_id(v.domain, domid)
        if d is None:
            return None, GNTST_bad_domain
        if not self.xen.xsm.is_target(v.domain, d):
            return None, GNTST_permission_denied
        return d, GNTST_okay

    def gnttab_setup_table(self, v: "VCPU", op: GnttabSetupTable) -> GnttabSetupTable:
        buf = op.frame_list
        if op.nr_frames and (not isinstance(buf, tuple) or len(buf) < op.nr_frames):
            raise XenError(EFAULT)
        d, status = self._target_domain(v, op.dom)
        if d is None:
            return op.replace(status=status)
        gt = d.grant_table
        if op.nr_frames > gt.max_grant_frames:
            return op.replace(status=GNTST_general_error)
        if op.nr_frames > gt.nr_grant_frames and not self._grow_table(d, op.nr_frames):
            return op.replace(status=GNTST_general_error)
        frames = tuple(gt.frames[:op.nr_frames]) + tuple(buf[op.nr_frames:] if buf else ())
        return op.replace(status=GNTST_okay, frame_list=frames)

    def gnttab_query_size(self, v: "VCPU", op: GnttabQuerySize) -> GnttabQuerySize:
        d, status = self._target_domain(v, op.dom)
        if d is None:
            return op.replace(status=status)
        gt = d.grant_table
        return op.replace(status=GNTST_okay, nr_frames=gt.nr_grant_frames,
                        max_nr_frames=gt.max_grant_frames)

    def gnttab_get_version(self, v: "VCPU", op: GnttabGetVersion) -> GnttabGetVersion:
        d = self.xen.domains.by_any_id(v.domain, op.dom)
        if d is None:
            raise XenError(ESRCH)
        if not self.xen.xsm.is_target(v.domain, d):
            raise XenError(EPERM)
        return op.replace(version=1)

    def gnttab_dump_table(self, v: "VCPU", op: GnttabDumpTable) -> GnttabDumpTable:
        """The manual's debugging operation: print the table to the
        hypervisor console."""
        d, status = self._target_domain(v, op.dom)
        if d is None:
            return op.replace(status=status)
        for line in self.usage_lines(d):
            self.xen.console.printk(line)
        return op.replace(status=GNTST_okay)

    # ------------------------------------------------------------ transfer
    def gnttab_transfer(self, v: "VCPU", op: GnttabTransfer) -> GnttabTransfer:
        return op.replace(status=self._transfer(v.domain, op))

    def _transfer(self, d: "Domain", op: GnttabTransfer) -> int:
        frames = self.xen.frames
        mfn = op.mfn                       # PV: the guest names machine frames
        if frames.owner(mfn) is not d:
            return GNTST_bad_page
        gpfn = frames.gpfn(mfn)
        try:
            frames.steal_page(d, mfn)
        except XenError:
            return GNTST_bad_page
        if gpfn is not None:
            self.xen.p2m.forget(d, gpfn, mfn)
        # From here the frame belongs to no one: on failure it is freed, and
        # the sender has lost it, as on Xen.
        e = self.xen.domains.get(op.domid)
        if e is None:
            frames.free_stolen_page(mfn)
            return GNTST_bad_domain
        if e.is_dying or e.tot_pages >= e.max_pages:
            frames.free_stolen_page(mfn)
            return GNTST_general_error
        egt = e.grant_table
        ref = op.ref
        if ref >= egt.nr_entries:
            frames.free_stolen_page(mfn)
            return GNTST_general_error
        flags, domid, frame = egt.entry(ref)
        if flags != GTF_accept_transfer or domid != d.domid:
            frames.free_stolen_page(mfn)
            return GNTST_general_error
        egt.set_flags(ref, GTF_transfer_committed)
        frames.assign_pages(e, mfn, 1)
        self.xen.p2m.guest_physmap_add_page(e, frame, mfn, 0)
        egt.set_frame(ref, mfn)
        egt.set_flags(ref, GTF_transfer_completed)
        return GNTST_okay

    # ------------------------------------------------------------ copy
    def gnttab_copy(self, v: "VCPU", op: GnttabCopy) -> GnttabCopy:
        return op.replace(status=self._copy(v.domain, op))

    def _copy(self, ld: "Domain", op: GnttabCopy) -> int:
        src_gref = bool(op.flags & GNTCOPY_source_gref)
        dst_gref = bool(op.flags & GNTCOPY_dest_gref)
        # Each side in turn: only DOMID_SELF may name a frame directly, and
        # the domain must exist (gnttab_copy_lock_domains()).
        domains = self.xen.domains
        sides = []
        for ptr, is_gref in ((op.source, src_gref), (op.dest, dst_gref)):
            if ptr.domid != DOMID_SELF and not is_gref:
                return GNTST_permission_denied
            d = domains.by_any_id(ld, ptr.domid)
            if d is None:
                return GNTST_bad_domain
            sides.append(d)
        sd, dd = sides
        claims = []
        try:
            rc, src = self._claim(ld, sd, op.source.u, src_gref, True, claims)
            if rc != GNTST_okay:
                return rc
            rc, dst = self._claim(ld, dd, op.dest.u, dst_gref, False, claims)
            if rc != GNTST_okay:
                return rc
            if op.source.offset + op.len > PAGE_SIZE or op.dest.offset + op.len > PAGE_SIZE:
                return GNTST_bad_copy_arg
            mem = self.xen.ram
            data = bytes(mem.peek(src)[op.source.offset:op.source.offset + op.len])
            mem.frame(dst)[op.dest.offset:op.dest.offset + op.len] = data
            return GNTST_okay
        finally:
            for undo in reversed(claims):
                undo()

    def _claim(self, ld: "Domain", d: "Domain", ptr: int, is_gref: bool,
               readonly: bool, claims: list) -> tuple[int, int]:
        """Pin a copy's source or destination for the length of the copy
        (acquire_grant_for_copy() or get_paged_frame()); the undo goes on
        ``claims``."""
        frames = self.xen.frames
        if is_gref:
            ref = ptr & 0xFFFFFFFF
            pin_incr = GNTPIN_hstr_inc if readonly else GNTPIN_hstw_inc
            status, act, took_ref = self._acquire(d, ref, ld.domid, pin_incr, readonly,
                                                  mapping=False)
            if status != GNTST_okay:
                return status, 0
            mfn = act.mfn
            claims.append(lambda: self._release(d.grant_table, ref, act, pin_incr, readonly))
        else:
            mfn, took_ref = ptr, False
        if not took_ref and not frames.get_page(mfn, d):
            return GNTST_bad_page, 0
        claims.append(lambda: frames.put_page(mfn))
        if not readonly:
            if not frames.get_page_type(mfn, PGT_writable_page):
                return GNTST_general_error, 0
            claims.append(lambda: frames.put_page_type(mfn))
        return GNTST_okay, mfn

    # ------------------------------------------------------------ views
    def usage_lines(self, d: "Domain") -> list[str]:
        """The 'g' debug key's report for one domain."""
        gt = d.grant_table
        lines = [
            "      -------- active --------       -------- shared --------",
            "[ref] localdom mfn      pin          localdom gmfn     flags",
            f"grant-table for remote d{d.domid} (v1)",
            f"  {gt.nr_grant_frames} frames ({gt.max_grant_frames} max), "
            f"{gt.nr_maptrack_frames} maptrack frames ({gt.max_maptrack_frames} max)",
        ]
        for ref in sorted(gt.active):
            act = gt.active[ref]
            flags, domid, frame = gt.entry(ref)
            lines.append(f"[0x{ref:03x}]  {act.domid:5d} 0x{act.mfn:x} 0x{act.pin:08x}"
                         f"      {domid:5d} 0x{frame:06x} 0x{flags:02x}")
        if not gt.active:
            lines.append("no active grant table entries")
        return lines

    def dump(self) -> str:
        lines = ["'g' pressed -> dumping grant table info"]
        for d in self.xen.domains:
            if d.grant_table is not None:
                lines.extend(self.usage_lines(d))
        return "\n".join(lines)

    def final_destroy(self, d: "Domain") -> None:
        """The domain is gone: so is its table (its frames are Xen's own
        pages shared with it, freed with the rest of those)."""
        d.grant_table = None

