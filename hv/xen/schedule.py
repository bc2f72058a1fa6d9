"""Physical CPUs and what runs on them (the role of Xen's
common/sched/core.c): each pCPU runs one vCPU at a time, its idle vCPU when
there is nothing else; the scheduling policy (the credit scheduler) picks.

A vCPU's runstate is running exactly while it is some pCPU's current vCPU.
Waking and sleeping go through the policy; a pCPU that must choose again
has its schedule softirq raised, and the machine runs it before time moves
on (after the event or the hypercall that raised it, as Xen does on its way
back to a guest). A context switch moves runstates, stops the outgoing
vCPU's periodic timer, refreshes the incoming one's time info in its
vcpu_info and restarts its periodic timer, and tells the guest CPU (the
code the vCPU runs) that it is on again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hv.public.domctl import (
    XEN_VCPUAFFINITY_HARD, XEN_VCPUAFFINITY_SOFT, XenDomctlSchedulerOp,
)
from hv.public.errno import EBUSY, EFAULT, EINVAL
from hv.public.vcpu import (
    RUNSTATE_blocked, RUNSTATE_offline, RUNSTATE_runnable, RUNSTATE_running,
)
from hv.public.xen import DOMID_XEN, VCPUINFO_UPCALL_MASK, VCPUINFO_UPCALL_PENDING, VIRQ_TIMER
from hv.xen import cpumask
from hv.xen.domain import VPF_blocked, VPF_down, VPF_migrating
from hv.xen.errors import XenError
from hv.xen.sched_credit import CreditScheduler
from hv.xen.timer import NS_PER_MS

if TYPE_CHECKING:
    from hv.xen.domain import VCPU, Domain
    from hv.xen.hypervisor import Xen

# A set_timer_op deadline this far ahead (about 13 days) is taken for a
# wrapped value; Xen fires the timer in 100 ms instead.
SET_TIMER_OP_MAX_AHEAD = 1 << 50
# Affinity masks cover every pCPU Xen could have (CONFIG_NR_CPUS on x86).
NR_CPUS = 256
CPUMASK_ALL = cpumask.cpumask_all(NR_CPUS)
# A PV vCPU's periodic timer until its guest says otherwise (pv/domain.c).
DEFAULT_PERIODIC_PERIOD = 10 * NS_PER_MS
# Among events due at the same instant: the scheduler's slice timer before
# vCPU timers, so that a vCPU's tick lands on whoever runs after the switch.
PRIO_S_TIMER = -10


class PCPU:
    """One physical CPU (Xen's sched_resource and per-cpu data)."""

    __slots__ = ("cpu", "curr", "idle", "s_timer", "sched_priv")

    def __init__(self, cpu: int, idle: "VCPU"):
        self.cpu = cpu
        self.idle = idle
        self.curr = idle
        self.s_timer = None
        self.sched_priv = None

    def __repr__(self) -> str:
        return f"<pcpu {self.cpu} running {self.curr!r}>"


class Topology:
    """Which pCPUs share a core and a socket: one thread per core, all
    cores in one socket, unless told otherwise."""

    def __init__(self, nr_cpus: int, threads_per_core: int = 1):
        self.nr_cpus = nr_cpus
        self.threads_per_core = threads_per_core

    def siblings(self, cpu: int) -> int:
        base = cpu - cpu % self.threads_per_core
        return cpumask.cpumask_all(min(base + self.threads_per_core, self.nr_cpus)) & \
            ~cpumask.cpumask_all(base)

    def core_siblings(self, cpu: int) -> int:
        return cpumask.cpumask_all(self.nr_cpus)


class NullGuestCPU:
    """What runs inside a vCPU when no guest kernel is modelled: it uses
    the pCPU while it has it, and nothing else happens."""

    pending = False

    def switch_in(self, v: "VCPU") -> None:
        pass

    def switch_out(self, v: "VCPU") -> None:
        pass

    def kick(self, v: "VCPU") -> None:
        pass

    def vcpu_reset(self, v: "VCPU") -> None:
        pass

    def run_pending(self) -> bool:
        return False


class Scheduler:
    def __init__(self, xen: "Xen"):
        self.xen = xen
        self.clock = xen.clock
        self.nr_cpus = xen.nr_cpus
        self.topology = Topology(xen.nr_cpus)
        self.softirq = 0            # pCPUs with a schedule softirq raised
        self.this_cpu = 0           # the pCPU the current work runs on
        idle_domain = xen.domains.idle_domain
        self.pcpus = [PCPU(cpu, xen.domains.idle_vcpu_create(cpu)) for cpu in range(self.nr_cpus)]
        for pcpu in self.pcpus:
            pcpu.idle.processor = pcpu.cpu
            pcpu.idle.is_running = True
            pcpu.idle.runstate_change(RUNSTATE_running, self.clock.now)
        self.online = cpumask.cpumask_all(self.nr_cpus)
        self.policy = CreditScheduler(self)
        self.idle_domain = idle_domain
        for pcpu in self.pcpus:
            self.policy.init_pdata(pcpu.cpu)

    # ------------------------------------------------------------ domains and vCPUs
    def domain_init(self, d: "Domain") -> None:
        self.policy.alloc_domdata(d)

    def vcpu_init(self, v: "VCPU") -> None:
        """A new vCPU: free to run anywhere, on the pCPU after its
        predecessor's (sched_init_vcpu()), with a 10 ms periodic timer."""
        d = v.domain
        v.hard_affinity = v.soft_affinity = CPUMASK_ALL
        if v.vcpu_id == 0:
            v.processor = cpumask.first(self.online)
        else:
            v.processor = cpumask.cycle(d.vcpus[v.vcpu_id - 1].processor, self.online)
        v.periodic_period = DEFAULT_PERIODIC_PERIOD
        self.policy.insert_vcpu(v)

    def domain_kill(self, d: "Domain") -> None:
        """A dying domain's timers stop: none of its code runs again."""
        for v in d.vcpus:
            for timer in (v.singleshot_timer, v.periodic_timer):
                if timer is not None:
                    timer.cancel()
            v.singleshot_timer = v.periodic_timer = None

    def domain_destroy(self, d: "Domain") -> None:
        """The scheduler lets the domain go only when it is finally gone;
        until then it can still be asked about."""
        for v in d.vcpus:
            self.policy.remove_vcpu(v)
        self.policy.free_domdata(d)

    # ------------------------------------------------------------ runstates
    def vcpu_wake(self, v: "VCPU") -> None:
        if v.runnable:
            if v.runstate >= RUNSTATE_blocked:
                v.runstate_change(RUNSTATE_runnable, self.clock.now)
            self.policy.wake(v)
        elif not v.pause_flags & VPF_blocked and v.runstate == RUNSTATE_blocked:
            v.runstate_change(RUNSTATE_offline, self.clock.now)

    def vcpu_sleep(self, v: "VCPU") -> None:
        """vcpu_sleep_nosync(): a vCPU that may no longer run leaves its run
        queue, or its pCPU is told to choose again."""
        if not v.runnable:
            if v.runstate == RUNSTATE_runnable:
                v.runstate_change(RUNSTATE_offline, self.clock.now)
            self.policy.sleep(v)

    def vcpu_unblock(self, v: "VCPU") -> None:
        if v.pause_flags & VPF_blocked:
            v.pause_flags &= ~VPF_blocked
            # Whatever woke it, a poll ends when the vCPU is unblocked.
            if v.polling:
                self.xen.sched_ops.end_poll(v)
            self.vcpu_wake(v)

    def vcpu_kick(self, v: "VCPU") -> None:
        """An event for ``v``: wake it, or if it is running, have it look
        at once (Xen's event-check IPI)."""
        running = v.is_running
        self.vcpu_unblock(v)
        if running:
            self.xen.guest_cpu.kick(v)

    def vcpu_block(self, v: "VCPU") -> bool:
        """Sleep until an event arrives, unless one already waits. Returns
        whether it blocked."""
        v.pause_flags |= VPF_blocked
        if self.events_need_delivery(v):
            v.pause_flags &= ~VPF_blocked
            return False
        self.vcpu_sleep(v)
        return True

    def vcpu_up(self, v: "VCPU") -> None:
        if v.pause_flags & VPF_down:
            v.pause_flags &= ~VPF_down
            self.vcpu_wake(v)

    def vcpu_down(self, v: "VCPU") -> None:
        if not v.pause_flags & VPF_down:
            v.pause_flags |= VPF_down
            self.vcpu_sleep(v)

    def vcpu_yield(self, v: "VCPU") -> None:
        self.policy.yield_vcpu(v)
        self.raise_softirq(v.processor)

    def set_migrating(self, v: "VCPU") -> None:
        """Move a running vCPU: it stops now, and wakes on the pCPU the
        policy picks once it has been switched out (_VPF_migrating)."""
        v.pause_flags |= VPF_migrating
        self.raise_softirq(v.processor)

    def vcpu_pause_by_scheduler(self, v: "VCPU") -> None:
        self.xen.domains.vcpu_pause_nosync(v)

    def vcpu_unpause_by_scheduler(self, v: "VCPU") -> None:
        self.xen.domains.vcpu_unpause(v)

    @staticmethod
    def events_need_delivery(v: "VCPU") -> bool:
        """local_events_need_delivery(): an upcall is pending and not masked."""
        info = v.domain.shared_info
        off = v.vcpu_info_offset
        return bool(info[off + VCPUINFO_UPCALL_PENDING]) and not info[off + VCPUINFO_UPCALL_MASK]

    # ------------------------------------------------------------ choosing
    def raise_softirq(self, cpu: int) -> None:
        self.softirq |= 1 << cpu

    def do_softirqs(self) -> None:
        """Run every pCPU's raised schedule softirq, lowest pCPU first."""
        while self.softirq:
            cpu = cpumask.first(self.softirq)
            self.softirq &= ~(1 << cpu)
            self.schedule(cpu)

    def schedule(self, cpu: int) -> None:
        pcpu = self.pcpus[cpu]
        self.this_cpu = cpu
        if pcpu.s_timer is not None:
            pcpu.s_timer.cancel()
            pcpu.s_timer = None
        now = self.clock.now
        prev = pcpu.curr
        nxt, next_time, _migrated = self.policy.do_schedule(cpu, prev, now)
        if next_time >= 0:
            pcpu.s_timer = self.clock.schedule(now + next_time, self._s_timer_fn, cpu,
                                               priority=PRIO_S_TIMER)
        if nxt is not prev:
            self._context_switch(pcpu, prev, nxt, now)

    def _s_timer_fn(self, cpu: int) -> None:
        self.pcpus[cpu].s_timer = None
        self.raise_softirq(cpu)

    def _context_switch(self, pcpu: PCPU, prev: "VCPU", nxt: "VCPU", now: int) -> None:
        cpu = pcpu.cpu
        guest_cpu = self.xen.guest_cpu
        if not prev.is_idle:
            guest_cpu.switch_out(prev)
            if prev.periodic_timer is not None:
                prev.periodic_timer.cancel()
                prev.periodic_timer = None
        pcpu.curr = nxt
        nxt.processor = cpu
        nxt.is_running = True
        nxt.sched_entry_time = now
        state = (RUNSTATE_blocked if prev.pause_flags & VPF_blocked
                 else RUNSTATE_runnable if prev.runnable else RUNSTATE_offline)
        prev.runstate_change(state, now)
        prev.is_running = False
        nxt.runstate_change(RUNSTATE_running, now)
        self.xen.trace.emit("sched", DOMID_XEN, -1, "switch", (cpu, _label(prev), _label(nxt)),
                            None)
        if not nxt.is_idle:
            self.xen.time.update_vcpu_system_time(nxt)
            if nxt.periodic_period:
                self._periodic_work(nxt)
        if prev.pause_flags & VPF_migrating:
            self._migrate_finish(prev)
        if not nxt.is_idle:
            guest_cpu.switch_in(nxt)

    def _migrate_finish(self, v: "VCPU") -> None:
        """A vCPU switched out to move: it goes where the policy says and
        wakes there."""
        v.processor = self.policy.res_pick(v)
        v.pause_flags &= ~VPF_migrating
        self.vcpu_wake(v)

    # ------------------------------------------------------------ affinity
    def _migrate(self, v: "VCPU") -> None:
        """Have the policy place a vCPU again (sched_unit_migrate_start()
        and _finish()): a running one moves once switched out, any other
        at once."""
        v.pause_flags |= VPF_migrating
        self.vcpu_sleep(v)
        if not v.is_running:
            self._migrate_finish(v)

    def vcpu_set_affinity(self, v: "VCPU", hard: int | None, soft: int | None) -> None:
        """Pin a vCPU (hard: only these pCPUs) or say where it would like
        to run (soft), as asked: the masks are kept as given and met with
        the online pCPUs where used. A hard mask with no online pCPU is
        -EINVAL; while a temporary pin is in force, -EBUSY. The vCPU is
        placed again either way."""
        if hard is not None and not hard & self.online:
            raise XenError(EINVAL)
        if v.affinity_overridden:
            raise XenError(EBUSY)
        if hard is not None:
            v.hard_affinity = hard
            self.policy.aff_cntl(v, hard)
        if soft is not None:
            v.soft_affinity = soft
        self._migrate(v)

    def vcpu_affinity_domctl(self, v: "VCPU", flags: int, hard: int | None,
                             soft: int | None) -> tuple[int | None, int | None]:
        """XEN_DOMCTL_setvcpuaffinity: set what ``flags`` names, hard first;
        a soft mask that fails puts the hard one back. Returns the masks
        now in force (within the online pCPUs, soft within hard too), None
        for the one not set."""
        if not flags & (XEN_VCPUAFFINITY_HARD | XEN_VCPUAFFINITY_SOFT):
            raise XenError(EINVAL)
        if (flags & XEN_VCPUAFFINITY_HARD and hard is None) or \
                (flags & XEN_VCPUAFFINITY_SOFT and soft is None):
            raise XenError(EFAULT)
        hard_now = soft_now = None
        if flags & XEN_VCPUAFFINITY_HARD:
            old = v.hard_affinity
            self.vcpu_set_affinity(v, hard, None)
            hard_now = hard & self.online
        if flags & XEN_VCPUAFFINITY_SOFT:
            try:
                self.vcpu_set_affinity(v, None, soft)
            except XenError:
                if flags & XEN_VCPUAFFINITY_HARD:
                    self.vcpu_set_affinity(v, old, None)
                raise
            soft_now = soft & v.hard_affinity & self.online
        return hard_now, soft_now

    def vcpu_temporary_affinity(self, v: "VCPU", cpu: int | None) -> None:
        """Pin a vCPU to one pCPU for a while, or (``cpu`` None) end that
        and give back the hard affinity it had (vcpu_temporary_affinity()
        for VCPU_AFFINITY_OVERRIDE). Only one at a time: -EBUSY."""
        if cpu is None:
            if not v.affinity_overridden:
                raise XenError(EINVAL)
            v.affinity_overridden = False
            v.hard_affinity = v.saved_hard_affinity
        else:
            if v.affinity_overridden:
                raise XenError(EBUSY)
            if not cpumask.test(cpu, self.online):
                raise XenError(EINVAL)
            v.saved_hard_affinity = v.hard_affinity
            v.hard_affinity = cpumask.cpumask_of(cpu)
            v.affinity_overridden = True
        self.policy.aff_cntl(v, v.hard_affinity)
        if not cpumask.test(v.processor, v.hard_affinity):
            self._migrate(v)

    # ------------------------------------------------------------ vCPU timers
    def do_set_timer_op(self, v: "VCPU", timeout) -> int:
        """A one-shot VIRQ_TIMER at system time ``timeout`` ns; 0 cancels it.
        With SCHEDOP_block after it, a guest blocks with a timeout."""
        if not isinstance(timeout, int) or not -(1 << 63) <= timeout < 1 << 63:
            raise XenError(EFAULT)
        if timeout == 0:
            self.set_singleshot(v, None)
            return 0
        now = self.clock.now
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
            v.singleshot_timer = self.clock.schedule(when, self._singleshot_fired, v)

    def _singleshot_fired(self, v: "VCPU") -> None:
        v.singleshot_timer = None
        self.this_cpu = v.processor
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
        now = self.clock.now
        due = v.periodic_last_event + v.periodic_period
        if now >= due:
            v.periodic_last_event = now
            due = now + v.periodic_period
            self.send_timer_event(v)
        if v.periodic_timer is not None:
            v.periodic_timer.cancel()
        v.periodic_timer = self.clock.schedule(due, self._periodic_fired, v)

    def _periodic_fired(self, v: "VCPU") -> None:
        v.periodic_timer = None
        self.this_cpu = v.processor
        self._periodic_work(v)

    def send_timer_event(self, v: "VCPU") -> None:
        self.xen.evtchn.send_guest_vcpu_virq(v, VIRQ_TIMER)

    # ------------------------------------------------------------ domctl and views
    def sched_adjust(self, d: "Domain", op: XenDomctlSchedulerOp) -> XenDomctlSchedulerOp:
        if op.sched_id != self.policy.sched_id:
            raise XenError(EINVAL)
        params = self.policy.dom_cntl(d, op.cmd, op.u if not isinstance(op.u, bytes) else None)
        return XenDomctlSchedulerOp(sched_id=op.sched_id, cmd=op.cmd, u=params)

    def dump(self) -> str:
        """The 'r' debug key: the scheduler's settings and every pCPU's queue."""
        policy = self.policy
        lines = [f"Scheduler: {policy.opt_name} ({policy.name})"]
        lines += policy.dump_settings()
        lines.append(f"idlers: {cpumask.format_list(policy.idlers, self.nr_cpus)}")
        for pcpu in self.pcpus:
            lines += policy.dump_pcpu(pcpu.cpu)
        return "\n".join(lines)


def _label(v: "VCPU") -> str:
    return "idle" if v.is_idle else f"d{v.domain.domid}v{v.vcpu_id}"


