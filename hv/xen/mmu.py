"""The PV memory-management hypercalls (the role of do_mmu_update() and
do_mmuext_op() in Xen's arch/x86/mm.c): page-table updates Xen validates,
M2P updates, pinning frames as page tables, and the page helpers."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hv.public.errno import EACCES, EFAULT, EINVAL, ENOSYS, EPERM, ESRCH
from hv.public.xen import (
    DOMID_IO, DOMID_SELF, DOMID_XEN, MMU_MACHPHYS_UPDATE, MMU_NORMAL_PT_UPDATE,
    MMU_PT_UPDATE_NO_TRANSLATE, MMU_PT_UPDATE_PRESERVE_AD, MMUEXT_CLEAR_PAGE, MMUEXT_COPY_PAGE, MMUEXT_FLUSH_CACHE,
    MMUEXT_INVLPG_ALL, MMUEXT_INVLPG_LOCAL, MMUEXT_PIN_L1_TABLE, MMUEXT_PIN_L2_TABLE,
    MMUEXT_PIN_L3_TABLE, MMUEXT_PIN_L4_TABLE, MMUEXT_TLB_FLUSH_ALL, MMUEXT_TLB_FLUSH_LOCAL,
    MMUEXT_UNPIN_TABLE, PAGE_SHIFT, PAGE_SIZE, MmuextOp, MmuUpdate,
)
from hv.xen.errors import XenError
from hv.xen.mm import PGT_writable_page

if TYPE_CHECKING:
    from hv.xen.domain import VCPU, Domain
    from hv.xen.hypervisor import Xen

_PIN_LEVEL = {
    MMUEXT_PIN_L1_TABLE: 1, MMUEXT_PIN_L2_TABLE: 2,
    MMUEXT_PIN_L3_TABLE: 3, MMUEXT_PIN_L4_TABLE: 4,
}
# TLB flushes have nothing to flush in this machine; they are accepted for
# the caller's own address space only, as Xen accepts them.
_TLB_FLUSHES = (MMUEXT_TLB_FLUSH_LOCAL, MMUEXT_INVLPG_LOCAL, MMUEXT_TLB_FLUSH_ALL,
                MMUEXT_INVLPG_ALL)
_PT_UPDATES = (MMU_NORMAL_PT_UPDATE, MMU_PT_UPDATE_PRESERVE_AD, MMU_PT_UPDATE_NO_TRANSLATE)


class MMU:
    def __init__(self, xen: "Xen"):
        self.xen = xen

    def get_pg_owner(self, v: "VCPU", domid: int) -> "Domain":
        """Whose pages the requests name (get_pg_owner()): the caller
        (DOMID_SELF), I/O memory (DOMID_IO), Xen's own pages (DOMID_XEN), or
        another domain, which a caller may not name by its own id."""
        domains = self.xen.domains
        if domid == DOMID_SELF:
            return v.domain
        if domid == DOMID_IO:
            return domains.dom_io
        if domid == DOMID_XEN:
            return domains.dom_xen
        d = domains.get(domid) if domid != v.domain.domid else None
        if d is None:
            raise XenError(ESRCH)
        return d

    def do_mmu_update(self, v: "VCPU", reqs, foreigndom=DOMID_SELF):
        """Apply updates in order; stop at the first that fails. Returns
        (rc, how many were done). ``foreigndom`` names whose pages the
        entries map in its low 16 bits and, in the high 16 bits plus one,
        whose page tables are updated."""
        if not isinstance(reqs, (tuple, list)) or not isinstance(foreigndom, int):
            raise XenError(EFAULT)
        d = v.domain
        foreigndom &= 0xFFFFFFFF
        pt_owner = d
        if foreigndom >> 16:
            pt_owner = self.xen.domains.get((foreigndom >> 16) - 1)
            if pt_owner is None:
                raise XenError(ESRCH)
            if pt_owner is not d and not pt_owner.vcpus:
                raise XenError(EINVAL)
        pg_owner = self.get_pg_owner(v, foreigndom & 0xFFFF)
        for done, req in enumerate(reqs):
            if type(req) is not MmuUpdate:
                return -EFAULT, done
            try:
                self._mmu_update_one(d, pt_owner, pg_owner, req)
            except XenError as e:
                return -e.errno, done
        return 0, len(reqs)

    def _mmu_update_one(self, d: "Domain", pt_owner: "Domain", pg_owner: "Domain",
                        req: MmuUpdate) -> None:
        cmd = req.ptr & 7
        frames = self.xen.frames
        xsm = self.xen.xsm
        if cmd in _PT_UPDATES:
            # Permission is asked per request, for what the request names.
            xsm.mmu_update(d, pt_owner, pg_owner)
            frames.update_entry(pt_owner, pg_owner, req.ptr - cmd, req.val)
            return
        if cmd != MMU_MACHPHYS_UPDATE:
            raise XenError(ENOSYS)
        if d is not pt_owner:
            raise XenError(EPERM)
        xsm.mmu_update(d, None, pg_owner)
        mfn = req.ptr >> PAGE_SHIFT
        if not frames.get_page(mfn, pg_owner):
            raise XenError(EINVAL)
        self.xen.p2m.set_machphys(pg_owner, mfn, req.val)
        frames.put_page(mfn)

    def do_mmuext_op(self, v: "VCPU", ops, foreigndom=DOMID_SELF):
        if not isinstance(ops, (tuple, list)) or not isinstance(foreigndom, int):
            raise XenError(EFAULT)
        pg_owner = self.get_pg_owner(v, foreigndom & 0xFFFF)
        self.xen.xsm.target(v.domain, pg_owner)
        for done, op in enumerate(ops):
            if type(op) is not MmuextOp:
                return -EFAULT, done
            try:
                self._mmuext_one(v.domain, pg_owner, op)
            except XenError as e:
                return -e.errno, done
        return 0, len(ops)

    def _mmuext_one(self, d: "Domain", pg_owner: "Domain", op: MmuextOp) -> None:
        frames = self.xen.frames
        cmd = op.cmd
        if cmd in _PIN_LEVEL:
            frames.pin_table(pg_owner, op.arg1, _PIN_LEVEL[cmd])
        elif cmd == MMUEXT_UNPIN_TABLE:
            frames.unpin_table(pg_owner, op.arg1)
        elif cmd in _TLB_FLUSHES:
            if d is not pg_owner:
                raise XenError(EPERM)
        elif cmd == MMUEXT_FLUSH_CACHE:
            if d is not pg_owner:
                raise XenError(EPERM)
            if not d.is_hardware_domain:        # cache_flush_permitted()
                raise XenError(EACCES)
        elif cmd == MMUEXT_CLEAR_PAGE:
            with self._writable(pg_owner, op.arg1) as page:
                page[:] = bytes(PAGE_SIZE)
        elif cmd == MMUEXT_COPY_PAGE:
            if not self._ram_page(pg_owner, op.arg2):
                raise XenError(EINVAL)
            try:
                src = bytes(self.xen.ram.peek(op.arg2))
                with self._writable(pg_owner, op.arg1) as page:
                    page[:] = src
            finally:
                frames.put_page(op.arg2)
        else:
            raise XenError(ENOSYS)

    def _ram_page(self, pg_owner: "Domain", mfn: int) -> bool:
        """get_page_from_gfn() for a PV owner: a reference on any page it
        owns, Xen's pages shared with it included."""
        return self.xen.frames.get_page(mfn, pg_owner)

    def _writable(self, pg_owner: "Domain", mfn: int):
        """The frame held writable for one operation, or -EINVAL."""
        mmu = self

        class Held:
            def __enter__(self):
                frames = mmu.xen.frames
                if not mmu._ram_page(pg_owner, mfn):
                    raise XenError(EINVAL)
                if not frames.get_page_type(mfn, PGT_writable_page):
                    frames.put_page(mfn)
                    raise XenError(EINVAL)
                return mmu.xen.ram.frame(mfn)

            def __exit__(self, *exc):
                mmu.xen.frames.put_page_and_type(mfn)
                return False
        return Held()
