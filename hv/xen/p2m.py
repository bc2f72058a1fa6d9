"""Each domain's physical-to-machine map (the role of Xen's
arch/x86/mm/p2m.c), kept in step with the M2P.

For a PV guest the P2M is the guest's own list; Xen keeps only the M2P. Here
the hypervisor keeps both, updated by every operation that moves a frame in
or out of a domain's pseudo-physical space (populate_physmap,
decrease_reservation, MMU_MACHPHYS_UPDATE, grant transfer), so that views,
the audit and save/restore read one truth.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hv.xen.mm import DOMHEAP

if TYPE_CHECKING:
    from hv.xen.domain import Domain
    from hv.xen.mm import FrameTable


class P2M:
    def __init__(self, frames: "FrameTable"):
        self.frames = frames

    @staticmethod
    def lookup(d: "Domain", gpfn: int) -> int | None:
        hit = d.p2m.get(gpfn)
        return None if hit is None else hit[0]

    def guest_physmap_add_page(self, d: "Domain", gpfn: int, mfn: int, order: int) -> None:
        """Map 2^order frames from ``mfn`` at ``gpfn``. Frames those gpfns
        held before, and gpfns these frames held before, are unmapped."""
        count = 1 << order
        frames = self.frames
        for run in list(d.p2m.runs(gpfn, gpfn + count)):
            frames.set_m2p(run.value, run.length, None)
        for run in list(frames.m2p.runs(mfn, mfn + count)):
            if run.value is not None:
                d.p2m.clear(run.value, run.length)
        d.p2m.set(gpfn, count, mfn)
        frames.set_m2p(mfn, count, gpfn)

    def guest_physmap_remove_page(self, d: "Domain", gpfn: int, mfn: int, order: int) -> None:
        count = 1 << order
        d.p2m.clear(gpfn, count)
        self.frames.set_m2p(mfn, count, None)

    def forget(self, d: "Domain", gpfn: int, mfn: int) -> None:
        """Drop ``gpfn`` from the P2M of a frame that has already left ``d``."""
        if self.lookup(d, gpfn) == mfn:
            d.p2m.clear(gpfn, 1)

    def set_machphys(self, d: "Domain", mfn: int, gpfn: int) -> None:
        """MMU_MACHPHYS_UPDATE: the guest says frame ``mfn`` is its ``gpfn``.
        For a page Xen shares with it only the M2P changes: such pages are
        never part of the guest's memory that the P2M mirrors."""
        if self.frames.pool(mfn) != DOMHEAP:
            self.frames.set_m2p(mfn, 1, gpfn)
            return
        old = self.frames.gpfn(mfn)
        if old is not None and self.lookup(d, old) == mfn:
            d.p2m.clear(old, 1)
        self.guest_physmap_add_page(d, gpfn, mfn, 0)
