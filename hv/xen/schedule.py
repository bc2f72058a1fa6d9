"""vCPU states, blocking and timers (the role of Xen's common/sched/core.c):
sched_op, set_timer_op, poll, the domain watchdogs, and the runstate each
vCPU moves through."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hv.public.domctl import XenDomctlSchedulerOp
from hv.public.errno import EBUSY, EFAULT, EINVAL, ENOSPC, EPERM, ESRCH
from hv.public.sched import (
    SCHEDOP_POLL_MAX_PORTS, SCHEDOP_block, SCHEDOP_pin_override, SCHEDOP_poll,
    SCHEDOP_remote_shutdown, SCHEDOP_shutdown, SCHEDOP_shutdown_code,
    SCHEDOP_watchdog, SCHEDOP_yield, SHUTDOWN_watchdog,
    SchedPinOverride, SchedPoll, SchedRemoteShutdown, SchedShutdown, SchedWatchdog,
)
from hv.public.vcpu import RUNSTATE_blocked, RUNSTATE_offline, RUNSTATE_runnable
from hv.public.xen import VCPUINFO_UPCALL_MASK, VCPUINFO_UPCALL_PENDING, VIRQ_TIMER
from hv.xen.domain import SHUTDOWN_CODE_INVALID, VPF_blocked, VPF_down
from hv.xen.dispatch import SubOps, copy_from_guest
from hv.xen.errors import XenError
from hv.xen.sched_credit import CreditScheduler
from hv.xen.timer import NS_PER_MS, NS_PER_S

if TYPE_CHECKING:
    from hv.xen.domain import VCPU, Domain
    from hv.xen.hypervisor import Xen

NR_DOMAIN_WATCHDOG_TIMERS = 2
# A set_timer_op deadline this far ahead (about 13 days) is taken for a
# wrapped value; Xen fires the timer in 100 ms instead.
SET_TIMER_OP_MAX_AHEAD = 1 << 50


class Scheduler:
    def __init__(self, xen: "Xen"):
        self.xen = xen
        self.policy = CreditScheduler()
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

    # ------------------------------------------------------------ per domain
    def domain_init(self, d: "Domain") -> None:
        self.policy.init_domain(d)
        d.watchdog_inuse = [False] * NR_DOMAIN_WATCHDOG_TIMERS
        d.watchdog_timers = [None] * NR_DOMAIN_WATCHDOG_TIMERS

    def domain_kill(self, d: "Domain") -> None:
        """A dying domain's timers stop: none of its code runs again."""
        for v in d.vcpus:
            for timer in (v.singleshot_timer, v.periodic_timer, v.poll_timer):
                if timer is not None:
                    timer.cancel()
            v.singleshot_timer = v.periodic_timer = v.poll_timer = None
        for timer in d.watchdog_timers:
            if timer is not None:
                timer.cancel()

    def domain_destroy(self, d: "Domain") -> None:
        """The scheduler lets the domain go only when it is finally gone;
        until then it can still be asked about."""
        self.policy.destroy_domain(d)

    # ------------------------------------------------------------ run states
    # Until vCPUs share pCPUs, a runnable vCPU counts as running: waking is
    # its switch-in and sleeping its switch-out, which is where Xen starts
    # and stops its periodic timer.
    def vcpu_wake(self, v: "VCPU") -> None:
        if v.runnable and v.runstate in (RUNSTATE_blocked, RUNSTATE_offline):
            v.runstate_change(RUNSTATE_runnable, self.xen.clock.now)
            if v.periodic_period:
                self._periodic_work(v)

    def vcpu_sleep(self, v: "VCPU") -> None:
        if not v.runnable and v.runstate not in (RUNSTATE_blocked, RUNSTATE_offline):
            state = RUNSTATE_blocked if v.pause_flags & VPF_blocked else RUNSTATE_offline
            v.is_running = False
            v.runstate_change(state, self.xen.clock.now)
            if v.periodic_timer is not None:
                v.periodic_timer.cancel()
                v.periodic_timer = None

    def vcpu_unblock(self, v: "VCPU") -> None:
        if v.pause_flags & VPF_blocked:
            v.pause_flags &= ~VPF_blocked
            # Whatever woke it, a poll ends when the vCPU is unblocked.
            if v.polling:
                self.end_poll(v)
            self.vcpu_wake(v)

    def vcpu_up(self, v: "VCPU") -> None:
        if v.pause_flags & VPF_down:
            v.pause_flags &= ~VPF_down
            self.vcpu_wake(v)

    def vcpu_down(self, v: "VCPU") -> None:
        if not v.pause_flags & VPF_down:
            v.pause_flags |= VPF_down
            self.vcpu_sleep(v)
            if v.runstate != RUNSTATE_offline:
                v.runstate_change(RUNSTATE_offline, self.xen.clock.now)

    @staticmethod
    def events_need_delivery(v: "VCPU") -> bool:
        """local_events_need_delivery(): an upcall is pending and not masked."""
        info = v.domain.shared_info
        off = v.vcpu_info_offset
        return bool(info[off + VCPUINFO_UPCALL_PENDING]) and not info[off + VCPUINFO_UPCALL_MASK]

    # ------------------------------------------------------------ sched_op
    def do_sched_op(self, v: "VCPU", cmd: int, arg=None):
        return self._sched_ops.lookup(cmd, arg)(v, arg), arg

    def sched_yield(self, v: "VCPU", arg) -> int:
        return 0

    def sched_block(self, v: "VCPU", arg) -> int:
        """Enable event delivery, then sleep until an event arrives (at once
        if one already waits)."""
        d = v.domain
        d.shared_info[v.vcpu_info_offset + VCPUINFO_UPCALL_MASK] = 0
        v.pause_flags |= VPF_blocked
        if self.events_need_delivery(v):
            v.pause_flags &= ~VPF_blocked
        else:
            self.vcpu_sleep(v)
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
        if arg.pcpu >= self.xen.nr_cpus:
            raise XenError(EINVAL)
        if arg.pcpu < 0:
            if not v.affinity_overridden:
                raise XenError(EINVAL)
            v.affinity_overridden = False
            return 0
        if v.affinity_overridden:
            raise XenError(EBUSY)
        v.affinity_overridden = True
        v.processor = arg.pcpu
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
        if self.events_need_delivery(v):
            return 0
        for port in ports[:arg.nr_ports]:
            if not isinstance(port, int) or not 0 <= port < 1 << 32:
                raise XenError(EFAULT)
            pending = self.xen.evtchn.port_poll(d, port)   # raises EINVAL
            if pending:
                return 0
        v.pause_flags |= VPF_blocked
        v.polling = True
        v.poll_evtchn = ports[0] if arg.nr_ports == 1 else -1
        if v.poll_timer is not None:
            v.poll_timer.cancel()
            v.poll_timer = None
        if arg.timeout:
            v.poll_timer = self.xen.clock.schedule(arg.timeout, self._poll_timeout, v)
        self.vcpu_sleep(v)
        self.xen.trace.emit("vcpu", d.domid, v.vcpu_id, "poll", tuple(ports[:arg.nr_ports]))
        return 0

    def wake_pollers(self, d: "Domain", port: int) -> None:
        """evtchn_check_pollers(): a port went pending. A vCPU polling
        several ports is woken by any port of its domain, as on Xen."""
        for v in d.vcpus:
            if v.polling and (v.poll_evtchn <= 0 or v.poll_evtchn == port):
                self.vcpu_unblock(v)

    def _poll_timeout(self, v: "VCPU") -> None:
        v.poll_timer = None
        if v.polling:
            self.vcpu_unblock(v)

    def end_poll(self, v: "VCPU") -> None:
        v.polling = False
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

    # ------------------------------------------------------------ timers
    def do_set_timer_op(self, v: "VCPU", timeout) -> int:
        """A one-shot VIRQ_TIMER at system time ``timeout`` ns; 0 cancels it.
        With SCHEDOP_block after it, a guest blocks with a timeout."""
        if not isinstance(timeout, int) or not -(1 << 63) <= timeout < 1 << 63:
            raise XenError(EFAULT)
        if timeout == 0:
            self.set_singleshot(v, None)
            return 0
        now = self.xen.clock.now
        if timeout < 0 or timeout - now >= SET_TIMER_OP_MAX_AHEAD:
            timeout = now + 100 * NS_PER_MS
        self.set_singleshot(v, timeout)
        return 0

    def set_singleshot(self, v: "VCPU", when: int | None) -> None:
        """(Re)arm the vCPU's one-shot timer for ``when``, or stop it. A time
        already past fires at once."""
        if v.singleshot_timer is not None:
            v.singleshot_timer.cancel()
            v.singleshot_timer = None
        if when is not None:
            v.singleshot_timer = self.xen.clock.schedule(when, self._singleshot_fired, v)

    def _singleshot_fired(self, v: "VCPU") -> None:
        v.singleshot_timer = None
        self.send_timer_event(v)

    def set_periodic(self, v: "VCPU", period: int) -> None:
        """A VIRQ_TIMER every ``period`` ns while the vCPU runs, 0 for none
        (vcpu_set_periodic_timer()). A period already over since the last
        periodic event sends one at once. The timer is armed even for a
        vCPU not running, as Xen arms it; it stops when the vCPU next stops."""
        if v.periodic_timer is not None:
            v.periodic_timer.cancel()
            v.periodic_timer = None
        v.periodic_period = period
        if period:
            self._periodic_work(v)

    def _periodic_work(self, v: "VCPU") -> None:
        """vcpu_periodic_timer_work(): send the event if it is due, then
        arm the timer for the next. The event may wake the vCPU, which
        comes back here: the last event is noted first, and one timer is
        left armed."""
        now = self.xen.clock.now
        due = v.periodic_last_event + v.periodic_period
        if now >= due:
            v.periodic_last_event = now
            due = now + v.periodic_period
            self.send_timer_event(v)
        if v.periodic_timer is not None:
            v.periodic_timer.cancel()
        v.periodic_timer = self.xen.clock.schedule(due, self._periodic_fired, v)

    def _periodic_fired(self, v: "VCPU") -> None:
        v.periodic_timer = None
        self._periodic_work(v)

    def send_timer_event(self, v: "VCPU") -> None:
        self.xen.evtchn.send_guest_vcpu_virq(v, VIRQ_TIMER)

    # ------------------------------------------------------------ domctl
    def sched_adjust(self, d: "Domain", op: XenDomctlSchedulerOp) -> XenDomctlSchedulerOp:
        if op.sched_id != self.policy.sched_id:
            raise XenError(EINVAL)
        params = self.policy.dom_cntl(d, op.cmd, op.u if not isinstance(op.u, bytes) else None)
        return XenDomctlSchedulerOp(sched_id=op.sched_id, cmd=op.cmd, u=params)

    def dump(self) -> str:
        lines = [f"Scheduler: {self.policy.opt_name} ({self.policy.name})"]
        for d in self.xen.domains:
            if d.sched is not None:
                lines.append(f"  d{d.domid}: {self.policy.dump_domain(d)}")
        return "\n".join(lines)
