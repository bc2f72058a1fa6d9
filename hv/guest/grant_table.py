"""A guest kernel's side of its grant table (the role of Linux's
drivers/xen/grant-table.c): granting pages by writing the entries' bytes in
the table frames Xen shares with the guest, and taking grants back only when
Xen reports them unused."""

from __future__ import annotations

import struct
from collections import deque
from typing import TYPE_CHECKING

from hv.public.grant_table import (
    GNTTAB_NR_RESERVED_ENTRIES, GNTTABOP_setup_table, GNTST_okay,
    GRANT_ENTRIES_PER_PAGE_V1, GTF_accept_transfer, GTF_permit_access, GTF_readonly,
    GTF_reading, GTF_transfer_committed, GTF_transfer_completed, GTF_writing,
    GnttabSetupTable,
)
from hv.public.xen import DOMID_SELF, HYPERVISOR_grant_table_op

if TYPE_CHECKING:
    from hv.xen.domain import VCPU
    from hv.xen.hypervisor import Xen

_FLAGS = struct.Struct("<H")
_DOMID_FRAME = struct.Struct("<HI")


class GrantTableFull(Exception):
    pass


class GuestGrantTable:
    def __init__(self, xen: "Xen", vcpu: "VCPU", nr_frames: int = 1):
        self.xen = xen
        self.vcpu = vcpu
        self.pages: list[bytearray] = []
        self.frames: list[int] = []
        self._free: deque[int] = deque()
        self.expand(nr_frames)

    @property
    def nr_entries(self) -> int:
        return len(self.pages) * GRANT_ENTRIES_PER_PAGE_V1

    def expand(self, nr_frames: int) -> None:
        """Ask Xen for a table of ``nr_frames`` frames and map the new ones."""
        old = self.nr_entries
        rc, (op,) = self.xen.hypercall(
            self.vcpu, HYPERVISOR_grant_table_op, GNTTABOP_setup_table,
            (GnttabSetupTable(dom=DOMID_SELF, nr_frames=nr_frames, frame_list=(0,) * nr_frames),))
        if rc < 0 or op.status != GNTST_okay:
            raise GrantTableFull(f"setup_table: rc {rc}, status {op.status if rc == 0 else '-'}")
        mapper = self.xen.frames.map_domain_page
        for mfn in op.frame_list[len(self.frames):nr_frames]:
            self.frames.append(mfn)
            self.pages.append(mapper(self.vcpu.domain, mfn, writable=True))
        first = max(old, GNTTAB_NR_RESERVED_ENTRIES)
        self._free.extend(range(first, self.nr_entries))

    def remap(self, vcpu: "VCPU") -> None:
        """gnttab_resume() in a new domain: a table of as many frames as
        before, every entry in it empty. The references the kernel holds
        are still its own to end (ending an empty entry succeeds)."""
        self.vcpu = vcpu
        nr_frames = len(self.frames)
        rc, (op,) = self.xen.hypercall(
            vcpu, HYPERVISOR_grant_table_op, GNTTABOP_setup_table,
            (GnttabSetupTable(dom=DOMID_SELF, nr_frames=nr_frames, frame_list=(0,) * nr_frames),))
        if rc < 0 or op.status != GNTST_okay:
            raise GrantTableFull(f"setup_table: rc {rc}, status {op.status if rc == 0 else '-'}")
        self.frames = list(op.frame_list[:nr_frames])
        self.pages = [self.xen.frames.map_domain_page(vcpu.domain, mfn, writable=True)
                      for mfn in self.frames]

    # ------------------------------------------------------------ entries
    def _where(self, ref: int) -> tuple[bytearray, int]:
        return self.pages[ref // GRANT_ENTRIES_PER_PAGE_V1], (ref % GRANT_ENTRIES_PER_PAGE_V1) * 8

    def flags(self, ref: int) -> int:
        page, off = self._where(ref)
        return _FLAGS.unpack_from(page, off)[0]

    def entry(self, ref: int) -> tuple[int, int, int]:
        page, off = self._where(ref)
        flags = _FLAGS.unpack_from(page, off)[0]
        domid, frame = _DOMID_FRAME.unpack_from(page, off + 2)
        return flags, domid, frame

    def _write(self, ref: int, domid: int, frame: int, flags: int) -> None:
        page, off = self._where(ref)
        _DOMID_FRAME.pack_into(page, off + 2, domid, frame & 0xFFFFFFFF)
        # The flags go last: Xen must never see them before the entry is whole.
        _FLAGS.pack_into(page, off, flags)

    def claim_ref(self) -> int:
        if not self._free:
            raise GrantTableFull("no free grant references")
        return self._free.popleft()

    def release_ref(self, ref: int) -> None:
        self._free.append(ref)

    # ------------------------------------------------------------ access
    def grant_foreign_access_ref(self, ref: int, domid: int, frame: int, readonly: bool) -> None:
        self._write(ref, domid, frame, GTF_permit_access | (GTF_readonly if readonly else 0))

    def grant_foreign_access(self, domid: int, frame: int, readonly: bool) -> int:
        ref = self.claim_ref()
        self.grant_foreign_access_ref(ref, domid, frame, readonly)
        return ref

    def end_foreign_access_ref(self, ref: int, readonly: bool) -> bool:
        """Revoke a grant unless the grantee is using it (GTF_reading or
        GTF_writing set by Xen): then nothing changes and False says so."""
        page, off = self._where(ref)
        flags = _FLAGS.unpack_from(page, off)[0]
        if flags & (GTF_reading | GTF_writing):
            return False
        _FLAGS.pack_into(page, off, 0)
        return True

    def end_foreign_access(self, ref: int, readonly: bool) -> bool:
        if not self.end_foreign_access_ref(ref, readonly):
            return False
        self.release_ref(ref)
        return True

    # ------------------------------------------------------------ transfer
    def grant_foreign_transfer_ref(self, ref: int, domid: int, pfn: int) -> None:
        """Accept a frame from ``domid``, to be placed at ``pfn``."""
        self._write(ref, domid, pfn, GTF_accept_transfer)

    def grant_foreign_transfer(self, domid: int, pfn: int) -> int:
        ref = self.claim_ref()
        self.grant_foreign_transfer_ref(ref, domid, pfn)
        return ref

    def end_foreign_transfer_ref(self, ref: int) -> int:
        """The frame a completed transfer delivered, or 0 when none came (the
        entry is then cleared so no transfer can start)."""
        page, off = self._where(ref)
        flags = _FLAGS.unpack_from(page, off)[0]
        if not flags & GTF_transfer_committed:
            _FLAGS.pack_into(page, off, 0)
            return 0
        # Xen completes a transfer within the hypercall that commits it.
        assert flags & GTF_transfer_completed
        frame = _DOMID_FRAME.unpack_from(page, off + 2)[1]
        _FLAGS.pack_into(page, off, 0)
        return frame

    def end_foreign_transfer(self, ref: int) -> int:
        frame = self.end_foreign_transfer_ref(ref)
        self.release_ref(ref)
        return frame
