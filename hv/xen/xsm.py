"""Who may do what (the role of Xen's XSM dummy policy, xsm/dummy.h).

One module, one place for every privilege check:

- the control domain (dom0) is privileged: it may act on any domain;
- a driver domain holds physical-device privilege only: the interrupts it
  was granted (what Xen 2.0 called DF_PHYSDEV, meant for backend domains);
- every other domain acts only on itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hv.public.errno import EPERM
from hv.public.xen import CONSOLEIO_write, DOMID_IO
from hv.xen.errors import XenError

if TYPE_CHECKING:
    from hv.xen.domain import Domain


class XSM:
    def __init__(self, verbose_debug: bool = False):
        self.verbose_debug = verbose_debug

    @staticmethod
    def is_target(src: "Domain", target: "Domain") -> bool:
        """XSM_TARGET: a domain on itself, or a privileged one on any."""
        return src is target or src.is_privileged

    def target(self, src: "Domain", target: "Domain") -> None:
        if not self.is_target(src, target):
            raise XenError(EPERM)

    @staticmethod
    def priv(src: "Domain") -> None:
        """XSM_PRIV: the control domain only."""
        if not src.is_privileged:
            raise XenError(EPERM)

    @staticmethod
    def xs_priv(src: "Domain") -> None:
        """XSM_XS_PRIV: the control domain or the xenstore domain."""
        if not (src.is_privileged or src.is_xenstore_domain):
            raise XenError(EPERM)

    def mmu_update(self, src: "Domain", pt_owner: "Domain | None", pg_owner: "Domain") -> None:
        """xsm_mmu_update(): the caller acts on the pages' owner (I/O memory
        is checked entry by entry instead) and on the tables' owner."""
        if pg_owner.domid != DOMID_IO:
            self.target(src, pg_owner)
        if pt_owner is not None:
            self.target(src, pt_owner)

    def dm_priv(self, src: "Domain") -> None:
        """XSM_DM_PRIV: the control domain, or a device model acting for its
        target; there are no device models here."""
        self.priv(src)

    @staticmethod
    def pirq_access(d: "Domain", pirq: int) -> bool:
        """pirq_access_permitted(): the hardware domain, or a domain granted
        this interrupt."""
        return d.is_hardware_domain or pirq in d.irq_caps

    def console_io(self, d: "Domain", cmd: int) -> None:
        """Release builds of Xen let only the control domain use console_io;
        debug builds let any domain write (CONFIG_VERBOSE_DEBUG)."""
        if self.verbose_debug and cmd == CONSOLEIO_write:
            return
        self.priv(d)
