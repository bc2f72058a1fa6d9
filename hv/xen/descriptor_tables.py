"""A PV guest's GDT (the role of Xen's arch/x86/pv/descriptor-tables.c).

A guest hands Xen up to 14 of its own frames as its GDT. Each frame becomes
a descriptor-table page (its type in the frame table), which Xen checks
descriptor by descriptor, and from then on the guest may only read it. The
checks a 64-bit PV guest's descriptors get: code and data segments are fine
once their privilege level is raised to the guest kernel's ring 3; a call
gate must lead to a guest code selector; nothing else is allowed.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from hv.public.errno import EFAULT, EINVAL
from hv.public.xen import FIRST_RESERVED_GDT_ENTRY, FLAT_KERNEL_CS
from hv.xen.errors import XenError
from hv.xen.mm import PGT_gdt_page

if TYPE_CHECKING:
    from hv.xen.domain import VCPU
    from hv.xen.hypervisor import Xen

_SEGMENT_TYPE = 0xF << 8
_SEGMENT_S = 1 << 12
_SEGMENT_DPL = 3 << 13
_SEGMENT_P = 1 << 15
GUEST_KERNEL_RPL = 3          # 64-bit PV kernels run in ring 3
ENTRIES_PER_PAGE = 512
_DESC = struct.Struct("<II")


def _gate_selector_okay(sel: int) -> bool:
    return (sel >> 3) < FIRST_RESERVED_GDT_ENTRY or sel == FLAT_KERNEL_CS or bool(sel & 4)


def check_descriptor(a: int, b: int) -> tuple[int, int] | None:
    """The descriptor as Xen lets it stand (low word a, high word b), or None
    when it may not be used (check_descriptor())."""
    if not b & _SEGMENT_P:
        return a, b                       # a not-present descriptor always faults
    dpl = max((b >> 13) & 3, GUEST_KERNEL_RPL)
    b = (b & ~_SEGMENT_DPL) | (dpl << 13)
    if b & _SEGMENT_S:
        return a, b                       # code and data: no base or limit checks
    if b & _SEGMENT_TYPE == 0:
        return a, b                       # the second half of a call gate
    if b & _SEGMENT_TYPE != 0xC00:
        return None                       # only call gates among system types
    cs = a >> 16
    if not _gate_selector_okay(cs):
        return None
    # The gate's DPL goes to 0, so using it faults into Xen for emulation;
    # the DPL the guest wanted is kept in the selector's RPL.
    b &= ~_SEGMENT_DPL
    a = (a & 0xFFFF) | (((cs & ~3) | dpl) << 16)
    if b & 0xFF:
        return None
    return a, b


def validate_segdesc_page(page: bytearray) -> bool:
    """Check all 512 descriptors, fixing them up in place as Xen does."""
    fixed = []
    for i in range(ENTRIES_PER_PAGE):
        checked = check_descriptor(*_DESC.unpack_from(page, i * 8))
        if checked is None:
            return False
        fixed.append(checked)
    for i, (a, b) in enumerate(fixed):
        _DESC.pack_into(page, i * 8, a, b)
    return True


class DescriptorTables:
    def __init__(self, xen: "Xen"):
        self.xen = xen

    def do_set_gdt(self, v: "VCPU", frame_list, entries):
        """Give vCPU ``v`` a GDT of ``entries`` descriptors in the frames
        listed (PV: machine frames). All of them become descriptor-table
        pages, or none does and the old GDT stays."""
        if not isinstance(entries, int) or not 0 <= entries < 1 << 32:
            raise XenError(EFAULT)
        if entries > FIRST_RESERVED_GDT_ENTRY:
            raise XenError(EINVAL)
        nr_frames = -(-entries // ENTRIES_PER_PAGE)
        if not isinstance(frame_list, tuple) or len(frame_list) < nr_frames or any(
                not isinstance(f, int) for f in frame_list[:nr_frames]):
            raise XenError(EFAULT)
        frames = self.xen.frames
        d = v.domain
        taken: list[int] = []
        for mfn in frame_list[:nr_frames]:
            if not frames.get_page_and_type(mfn, d, PGT_gdt_page):
                for done in taken:
                    frames.put_page_and_type(done)
                raise XenError(EINVAL)
            taken.append(mfn)
        self.destroy_gdt(v)
        v.gdt_frames = tuple(taken)
        v.gdt_ents = entries
        return 0, None

    def destroy_gdt(self, v: "VCPU") -> None:
        for mfn in v.gdt_frames:
            self.xen.frames.put_page_and_type(mfn)
        v.gdt_frames = ()
        v.gdt_ents = 0

    def domain_kill(self, d) -> None:
        for v in d.vcpus:
            self.destroy_gdt(v)
