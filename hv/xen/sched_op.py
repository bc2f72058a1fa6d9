"""The scheduler hypercall (the role of do_sched_op() and its helpers in
Xen's common/sched/core.c): yield, block, shutdown, poll, the domain
watchdogs and temporary pinning."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hv.public.errno import EFAULT, EINVAL, ENOSPC, EPERM, ESRCH
from hv.public.sched import (
    SCHEDOP_POLL_MAX_PORTS, SCHEDOP_block, SCHEDOP_pin_override, SCHEDOP_poll,
    SCHEDOP_remote_shutdown, SCHEDOP_shutdown, SCHEDOP_shutdown_code,
    SCHEDOP_watchdog, SCHEDOP_yield, SHUTDOWN_watchdog,
    SchedPinOverride, SchedPoll, SchedRemoteShutdown, SchedShutdown, SchedWatchdog,
)
from hv.public.xen import VCPUINFO_UPCALL_MASK
from hv.xen.dispatch import SubOps, copy_from_guest
from hv.xen.domain import SHUTDOWN_CODE_INVALID, VPF_blocked
from hv.xen.errors import XenError
from hv.xen.schedule import NR_CPUS
from hv.xen.timer import NS_PER_S

if TYPE_CHECKING:
    from hv.xen.domain import VCPU, Domain
    from hv.xen.hypervisor import Xen

NR_DOMAIN_WATCHDOG_TIMERS = 2


class SchedOps:
    def __init__(self, xen: "Xen"):
        self.xen = xen
        self._sched_ops = SubOps({
            SCHEDOP_yield: (self.sched_yield, None),
            SCHEDOP_block: (self.sched_block, None),
            SCHEDOP_shutdown: (self.sched_shutdown, SchedShutdown),
            SCHEDOP_shutdown_code: (self.sched_shutdown_code, SchedShutdown),
            SCHEDOP_poll: (self.sched_poll, SchedPoll),
            SCHEDOP_remote_shutdown: (self.sched_remote_shutdown, SchedRemoteShutdown),
            SCHEDOP_watchdog: (self.sched_watchdog, SchedWatchdog),
            SCHEDOP_pin_override: (self.sched_pin_override, None),
        })

    def domain_init(self, d: "Domain") -> None:
        d.watchdog_inuse = [False] * NR_DOMAIN_WATCHDOG_TIMERS
        d.watchdog_timers = [None] * NR_DOMAIN_WATCHDOG_TIMERS

    def domain_kill(self, d: "Domain") -> None:
        """A dying domain's polls and watchdogs stop."""
        for v in d.vcpus:
            if v.poll_timer is not None:
                v.poll_timer.cancel()
                v.poll_timer = None
        for timer in d.watchdog_timers:
            if timer is not None:
                timer.cancel()

    def do_sched_op(self, v: "VCPU", cmd: int, arg=None, third=0):
        rc = self._sched_ops.lookup(cmd, arg)(v, arg)
        if cmd == SCHEDOP_shutdown:
            self._keep_registers(v, rc, third)
        return rc, arg

    @staticmethod
    def _keep_registers(v: "VCPU", rc: int, third) -> None:
        """Xen ignores a shutdown's third argument, but it stays in the
        vCPU's rdx, with the result in rax, where the toolstack reads them
        (XEN_DOMCTL_getvcpucontext): a PV kernel suspending puts its
        start_info's frame there for the toolstack to find, and a
        toolstack cancelling the suspend writes 1 over the 0 in rax
        (libxc's modify_returncode) for the kernel to find when it runs
        again. The model keeps no other registers."""
        if v.context is None or not isinstance(third, int):
            return
        regs = v.context.user_regs.replace(rax=rc & 0xFFFFFFFFFFFFFFFF,
                                           rdx=third & 0xFFFFFFFFFFFFFFFF)
        v.context = v.context.replace(user_regs=regs)

    def sched_yield(self, v: "VCPU", arg) -> int:
        self.xen.sched.vcpu_yield(v)
        return 0

    def sched_block(self, v: "VCPU", arg) -> int:
        """Enable event delivery, then sleep until an event arrives (at once
        if one already waits)."""
        d = v.domain
        d.shared_info[v.vcpu_info_offset + VCPUINFO_UPCALL_MASK] = 0
        if self.xen.sched.vcpu_block(v):
            self.xen.trace.emit("vcpu", d.domid, v.vcpu_id, "block")
        return 0

    def sched_shutdown(self, v: "VCPU", arg: SchedShutdown) -> int:
        self.xen.domains.domain_shutdown(v.domain, arg.reason & 0xFF)
        return 0

    def sched_shutdown_code(self, v: "VCPU", arg: SchedShutdown) -> int:
        d = v.domain
        if d.shutdown_code == SHUTDOWN_CODE_INVALID:
            d.shutdown_code = arg.reason & 0xFF
        return 0

    def sched_remote_shutdown(self, v: "VCPU", arg: SchedRemoteShutdown) -> int:
        d = self.xen.domains.get(arg.domain_id)
        if d is None:
            raise XenError(ESRCH)
        self.xen.xsm.dm_priv(v.domain)
        self.xen.domains.domain_shutdown(d, arg.reason & 0xFF)
        return 0

    def sched_pin_override(self, v: "VCPU", arg) -> int:
        """The hardware domain pins the calling vCPU to a pCPU for a while
        (a negative pCPU ends it): what dom0 does around firmware calls
        (vcpu_temporary_affinity() with VCPU_AFFINITY_OVERRIDE)."""
        if not v.domain.is_hardware_domain:
            raise XenError(EPERM)
        arg = copy_from_guest(arg, SchedPinOverride)
        if arg.pcpu >= NR_CPUS:
            raise XenError(EINVAL)
        self.xen.sched.vcpu_temporary_affinity(v, None if arg.pcpu < 0 else arg.pcpu)
        return 0

    def sched_poll(self, v: "VCPU", arg: SchedPoll) -> int:
        """Wait for one of a set of ports to become pending, or a timeout
        (do_poll()). Returns at once if one already is."""
        if arg.nr_ports > SCHEDOP_POLL_MAX_PORTS:
            raise XenError(EINVAL)
        ports = arg.ports if arg.ports is not None else ()
        if not isinstance(ports, tuple) or len(ports) < arg.nr_ports:
            raise XenError(EFAULT)
        d = v.domain
        if self.xen.sched.events_need_delivery(v):
            return 0
        for port in ports[:arg.nr_ports]:
            if not isinstance(port, int) or not 0 <= port < 1 << 32:
                raise XenError(EFAULT)
            pending = self.xen.evtchn.port_poll(d, port)   # raises EINVAL
            if pending:
                return 0
        v.pause_flags |= VPF_blocked
        if not v.polling:
            v.polling = True
            v.domain.pollers += 1
        v.poll_evtchn = ports[0] if arg.nr_ports == 1 else -1
        if v.poll_timer is not None:
            v.poll_timer.cancel()
            v.poll_timer = None
        if arg.timeout:
            v.poll_timer = self.xen.clock.schedule(arg.timeout, self._poll_timeout, v)
        self.xen.sched.vcpu_sleep(v)
        self.xen.trace.emit("vcpu", d.domid, v.vcpu_id, "poll", tuple(ports[:arg.nr_ports]))
        return 0

    def wake_pollers(self, d: "Domain", port: int) -> None:
        """evtchn_check_pollers(): a port went pending. A vCPU polling
        several ports is woken by any port of its domain, as on Xen."""
        if not d.pollers:
            return
        for v in d.vcpus:
            if v.polling and (v.poll_evtchn <= 0 or v.poll_evtchn == port):
                self.xen.sched.vcpu_unblock(v)

    def _poll_timeout(self, v: "VCPU") -> None:
        v.poll_timer = None
        if v.polling:
            self.xen.sched.vcpu_unblock(v)

    def end_poll(self, v: "VCPU") -> None:
        if v.polling:
            v.polling = False
            v.domain.pollers -= 1
        v.poll_evtchn = 0
        if v.poll_timer is not None:
            v.poll_timer.cancel()
            v.poll_timer = None

    def sched_watchdog(self, v: "VCPU", arg: SchedWatchdog) -> int:
        """Ids 1 and 2: 0 asks for a new watchdog; a zero timeout stops one;
        otherwise the watchdog is kicked (domain_watchdog())."""
        d = v.domain
        wid, timeout = arg.id, arg.timeout
        if wid > NR_DOMAIN_WATCHDOG_TIMERS:
            raise XenError(EINVAL)
        if wid == 0:
            for i, inuse in enumerate(d.watchdog_inuse):
                if not inuse:
                    d.watchdog_inuse[i] = True
                    self._arm_watchdog(d, i, timeout)
                    return i + 1
            raise XenError(ENOSPC)
        i = wid - 1
        if not d.watchdog_inuse[i]:
            raise XenError(EINVAL)
        if timeout == 0:
            self._arm_watchdog(d, i, None)
            d.watchdog_inuse[i] = False
        else:
            self._arm_watchdog(d, i, timeout)
        return 0

    def _arm_watchdog(self, d: "Domain", i: int, seconds: int | None) -> None:
        timer = d.watchdog_timers[i]
        if timer is not None:
            timer.cancel()
        d.watchdog_timers[i] = None if seconds is None else self.xen.clock.after(
            seconds * NS_PER_S, self._watchdog_fired, d, i)

    def _watchdog_fired(self, d: "Domain", i: int) -> None:
        """A watchdog that fires stays allocated: a resumed domain may kick it."""
        d.watchdog_timers[i] = None
        if d.is_shutting_down or d.is_dying:
            return
        self.xen.console.printk(f"Watchdog timer fired for domain {d.domid}")
        self.xen.domains.domain_shutdown(d, SHUTDOWN_watchdog)
