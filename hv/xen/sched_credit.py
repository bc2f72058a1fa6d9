"""The credit scheduler (the role of Xen's common/sched/credit.c): each
domain's weight and cap, set and read through XEN_DOMCTL_scheduler_op."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hv.public.domctl import (
    XEN_DOMCTL_SCHEDOP_getinfo, XEN_DOMCTL_SCHEDOP_putinfo, XEN_SCHEDULER_CREDIT,
    XenDomctlSchedCredit,
)
from hv.public.errno import EINVAL
from hv.xen.errors import XenError

if TYPE_CHECKING:
    from hv.xen.domain import Domain

CSCHED_DEFAULT_WEIGHT = 256
CSCHED_TSLICE_MS = 30
CSCHED_TICKS_PER_TSLICE = 3
CSCHED_RATELIMIT_US = 1000
CSCHED_MIGRATION_DELAY_US = 0


class CreditDomain:
    __slots__ = ("weight", "cap")

    def __init__(self) -> None:
        self.weight = CSCHED_DEFAULT_WEIGHT
        self.cap = 0


class CreditScheduler:
    sched_id = XEN_SCHEDULER_CREDIT
    name = "credit"
    opt_name = "SMP Credit Scheduler"

    def __init__(self) -> None:
        self.tslice_ms = CSCHED_TSLICE_MS
        self.ratelimit_us = CSCHED_RATELIMIT_US

    def init_domain(self, d: "Domain") -> None:
        d.sched = CreditDomain()

    def destroy_domain(self, d: "Domain") -> None:
        d.sched = None

    def dom_cntl(self, d: "Domain", cmd: int,
                 params: XenDomctlSchedCredit | None) -> XenDomctlSchedCredit:
        """getinfo returns the domain's weight and cap; putinfo changes the
        weight unless it is 0 and the cap unless it is 0xffff."""
        sdom: CreditDomain = d.sched
        if cmd == XEN_DOMCTL_SCHEDOP_putinfo:
            if not isinstance(params, XenDomctlSchedCredit):
                raise XenError(EINVAL)
            if params.weight != 0:
                sdom.weight = params.weight
            if params.cap != 0xFFFF:
                sdom.cap = params.cap
        elif cmd != XEN_DOMCTL_SCHEDOP_getinfo:
            raise XenError(EINVAL)
        return XenDomctlSchedCredit(weight=sdom.weight, cap=sdom.cap)

    def dump_domain(self, d: "Domain") -> str:
        return f"weight={d.sched.weight} cap={d.sched.cap}"
