"""vcpu_op (the role of common_vcpu_op() in Xen's common/domain.c): start
vCPUs, take them up and down, and read their runstate."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hv.public.errno import EEXIST, EFAULT, EINVAL, ENOENT
from hv.public.sched import SHUTDOWN_poweroff
from hv.public.vcpu import (
    VCPUOP_down, VCPUOP_get_runstate_info, VCPUOP_initialise, VCPUOP_is_up,
    VCPUOP_set_periodic_timer, VCPUOP_set_singleshot_timer, VCPUOP_stop_periodic_timer,
    VCPUOP_stop_singleshot_timer, VCPUOP_up, VcpuRunstateInfo, VcpuSetPeriodicTimer,
    VcpuSetSingleshotTimer,
)
from hv.public.xen import VcpuGuestContext
from hv.xen.domain import VPF_down
from hv.xen.dispatch import SubOps, copy_from_guest
from hv.xen.errors import XenError
from hv.xen.timer import NS_PER_MS, STIME_DELTA_MAX

if TYPE_CHECKING:
    from hv.xen.domain import VCPU
    from hv.xen.hypervisor import Xen


class VcpuOps:
    def __init__(self, xen: "Xen"):
        self.xen = xen
        self._ops = SubOps({
            VCPUOP_initialise: (self.vcpu_initialise, VcpuGuestContext),
            VCPUOP_up: (self.vcpu_up, None),
            VCPUOP_down: (self.vcpu_down, None),
            VCPUOP_is_up: (self.vcpu_is_up, None),
            VCPUOP_get_runstate_info: (self.vcpu_get_runstate_info, None),
            VCPUOP_set_periodic_timer: (self.vcpu_set_periodic_timer, VcpuSetPeriodicTimer),
            VCPUOP_stop_periodic_timer: (self.vcpu_stop_periodic_timer, None),
            VCPUOP_set_singleshot_timer: (self.vcpu_set_singleshot_timer, None),
            VCPUOP_stop_singleshot_timer: (self.vcpu_stop_singleshot_timer, None),
        })

    def do_vcpu_op(self, current: "VCPU", cmd: int, vcpuid, arg=None):
        if not isinstance(vcpuid, int):
            raise XenError(EFAULT)
        v = current.domain.vcpu(vcpuid)
        if v is None:
            raise XenError(ENOENT)
        return self._ops.lookup(cmd, arg)(current, v, arg)

    def vcpu_initialise(self, current, v: "VCPU", ctxt: VcpuGuestContext):
        """Give a vCPU that has never run its starting context."""
        if v.is_initialised:
            raise XenError(EEXIST)
        self.xen.domains.arch_set_info_guest(v, ctxt)
        return 0, ctxt

    def vcpu_up(self, current, v: "VCPU", arg):
        if not v.is_initialised:
            raise XenError(EINVAL)
        self.xen.sched.vcpu_up(v)
        self.xen.trace.emit("vcpu", v.domain.domid, v.vcpu_id, "up")
        return 0, arg

    def vcpu_down(self, current, v: "VCPU", arg):
        d = v.domain
        if not any(o is not v and not o.pause_flags & VPF_down for o in d.vcpus):
            # The last vCPU going down powers the domain off.
            self.xen.domains.domain_shutdown(d, SHUTDOWN_poweroff)
            return 0, arg
        self.xen.sched.vcpu_down(v)
        self.xen.trace.emit("vcpu", d.domid, v.vcpu_id, "down")
        return 0, arg

    def vcpu_is_up(self, current, v: "VCPU", arg):
        return int(not v.pause_flags & VPF_down), arg

    def vcpu_get_runstate_info(self, current, v: "VCPU", arg):
        state, entry, times = v.runstate_snapshot(self.xen.clock.now)
        return 0, VcpuRunstateInfo(state=state, state_entry_time=entry, time=times)

    def vcpu_set_periodic_timer(self, current, v: "VCPU", arg: VcpuSetPeriodicTimer):
        if arg.period_ns < NS_PER_MS or arg.period_ns > STIME_DELTA_MAX:
            raise XenError(EINVAL)
        self.xen.sched.set_periodic(v, arg.period_ns)
        return 0, arg

    def vcpu_stop_periodic_timer(self, current, v: "VCPU", arg):
        self.xen.sched.set_periodic(v, 0)
        return 0, arg

    def vcpu_set_singleshot_timer(self, current, v: "VCPU", arg):
        if v is not current:
            raise XenError(EINVAL)
        arg = copy_from_guest(arg, VcpuSetSingleshotTimer)
        sched = self.xen.sched
        if arg.timeout_abs_ns < self.xen.clock.now:
            sched.set_singleshot(v, None)
            sched.send_timer_event(v)
        else:
            sched.set_singleshot(v, arg.timeout_abs_ns)
        return 0, arg

    def vcpu_stop_singleshot_timer(self, current, v: "VCPU", arg):
        if v is not current:
            raise XenError(EINVAL)
        self.xen.sched.set_singleshot(v, None)
        return 0, arg
