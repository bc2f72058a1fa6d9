"""The PV memory-management hypercalls (the role of do_mmu_update() and
do_mmuext_op() in Xen's arch/x86/mm.c): page-table updates Xen validates,
M2P updates, and pinning frames as page tables."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hv.public.errno import EFAULT, EINVAL, ENOSYS, EPERM, ESRCH
from hv.public.xen import (
    DOMID_SELF, MMU_MACHPHYS_UPDATE, MMU_NORMAL_PT_UPDATE, MMU_PT_UPDATE_PRESERVE_AD,
    MMUEXT_CLEAR_PAGE, MMUEXT_COPY_PAGE, MMUEXT_FLUSH_CACHE, MMUEXT_INVLPG_ALL,
    MMUEXT_INVLPG_LOCAL, MMUEXT_PIN_L1_TABLE, MMUEXT_PIN_L2_TABLE,
    MMUEXT_PIN_L3_TABLE, MMUEXT_PIN_L4_TABLE, MMUEXT_TLB_FLUSH_ALL,
    MMUEXT_TLB_FLUSH_LOCAL, MMUEXT_UNPIN_TABLE, PAGE_SHIFT, PAGE_SIZE, MmuextOp,
    MmuUpdate,
)
from hv.xen.errors import XenError

if TYPE_CHECKING:
    from hv.xen.domain import VCPU, Domain
    from hv.xen.hypervisor import Xen

_PIN_LEVEL = {
    MMUEXT_PIN_L1_TABLE: 1, MMUEXT_PIN_L2_TABLE: 2,
    MMUEXT_PIN_L3_TABLE: 3, MMUEXT_PIN_L4_TABLE: 4,
}
# Flushes have nothing to flush in this machine, but are accepted as Xen does.
_FLUSHES = (MMUEXT_TLB_FLUSH_LOCAL, MMUEXT_INVLPG_LOCAL, MMUEXT_TLB_FLUSH_ALL,
            MMUEXT_INVLPG_ALL, MMUEXT_FLUSH_CACHE)


class MMU:
    def __init__(self, xen: "Xen"):
        self.xen = xen

    def _pg_owner(self, v: "VCPU", foreigndom) -> "Domain":
        if not isinstance(foreigndom, int):
            raise XenError(EFAULT)
        if foreigndom == DOMID_SELF or foreigndom == v.domain.domid:
            return v.domain
        if not v.domain.is_privileged:
            raise XenError(EPERM)
        d = self.xen.domains.get(foreigndom)
        if d is None:
            raise XenError(ESRCH)
        return d

    def do_mmu_update(self, v: "VCPU", reqs, foreigndom=DOMID_SELF):
        """Apply updates in order; stop at the first that fails. Returns
        (rc, how many were done)."""
        if not isinstance(reqs, (tuple, list)) or any(type(r) is not MmuUpdate for r in reqs):
            raise XenError(EFAULT)
        pg_owner = self._pg_owner(v, foreigndom)
        d = v.domain
        frames = self.xen.frames
        for done, req in enumerate(reqs):
            cmd = req.ptr & 7
            try:
                if cmd in (MMU_NORMAL_PT_UPDATE, MMU_PT_UPDATE_PRESERVE_AD):
                    frames.update_entry(d, req.ptr - cmd, req.val)
                elif cmd == MMU_MACHPHYS_UPDATE:
                    mfn = req.ptr >> PAGE_SHIFT
                    if not frames.get_page(mfn, pg_owner):
                        raise XenError(EINVAL)
                    self.xen.p2m.set_machphys(pg_owner, mfn, req.val)
                    frames.put_page(mfn)
                else:
                    raise XenError(ENOSYS)
            except XenError as e:
                return -e.errno, done
        return 0, len(reqs)

    def do_mmuext_op(self, v: "VCPU", ops, foreigndom=DOMID_SELF):
        if not isinstance(ops, (tuple, list)) or any(type(o) is not MmuextOp for o in ops):
            raise XenError(EFAULT)
        pg_owner = self._pg_owner(v, foreigndom)
        frames = self.xen.frames
        for done, op in enumerate(ops):
            try:
                if op.cmd in _PIN_LEVEL:
                    frames.pin_table(pg_owner, op.arg1, _PIN_LEVEL[op.cmd])
                elif op.cmd == MMUEXT_UNPIN_TABLE:
                    frames.unpin_table(pg_owner, op.arg1)
                elif op.cmd == MMUEXT_CLEAR_PAGE:
                    frames.map_domain_page(v.domain, op.arg1, writable=True)[:] = bytes(PAGE_SIZE)
                elif op.cmd == MMUEXT_COPY_PAGE:
                    src = bytes(frames.map_domain_page(v.domain, op.arg2, writable=False))
                    frames.map_domain_page(v.domain, op.arg1, writable=True)[:] = src
                elif op.cmd not in _FLUSHES:
                    raise XenError(ENOSYS)
            except XenError as e:
                return -e.errno, done
        return 0, len(ops)
