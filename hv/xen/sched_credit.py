"""The credit scheduler (the role of Xen's common/sched/credit.c).

Every vCPU holds credit. The accounting (every 30 ms timeslice) hands out
each pCPU's worth of credit to the active domains in proportion to their
weight, no more than a cap allows; running burns 10 credits a millisecond.
A vCPU with credit left is UNDER, one without is OVER, one just woken is
BOOST until the next tick finds it running. Each pCPU has its own run queue,
best priority first, its idle vCPU last; a pCPU whose best local choice is
OVER or idle looks for work on the others. A capped domain's vCPUs that
overspend are parked until their credit recovers.

The structures and steps follow credit.c closely, under the same names
(burn_credits, csched_acct, csched_tick, __runq_tickle, _csched_cpu_pick,
csched_load_balance, csched_schedule), so the two can be read side by side.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hv.public.domctl import (
    XEN_DOMCTL_SCHEDOP_getinfo, XEN_DOMCTL_SCHEDOP_putinfo, XEN_SCHEDULER_CREDIT,
    XenDomctlSchedCredit,
)
from hv.public.errno import EINVAL
from hv.xen import cpumask
from hv.xen.errors import XenError
from hv.xen.timer import NS_PER_MS, NS_PER_US

if TYPE_CHECKING:
    from hv.xen.domain import VCPU, Domain
    from hv.xen.schedule import Scheduler

CSCHED_DEFAULT_WEIGHT = 256
CSCHED_TICKS_PER_TSLICE = 3
CSCHED_DEFAULT_TSLICE_MS = 30
CSCHED_CREDITS_PER_MSEC = 10
SCHED_DEFAULT_RATELIMIT_US = 1000
# XEN_SYSCTL_SCHED_RATELIMIT_MIN: the shortest a rate-limited slice may be.
CSCHED_MIN_TIMER = 100 * NS_PER_US
XEN_SYSCTL_CSCHED_TSLICE_MIN, XEN_SYSCTL_CSCHED_TSLICE_MAX = 1, 1000
XEN_SYSCTL_SCHED_RATELIMIT_MIN, XEN_SYSCTL_SCHED_RATELIMIT_MAX = 100, 500000
XEN_SYSCTL_CSCHED_MGR_DLY_MAX_US = 100 * 1000

CSCHED_PRI_TS_BOOST = 0      # time-share, waking up
CSCHED_PRI_TS_UNDER = -1     # time-share, with credit
CSCHED_PRI_TS_OVER = -2      # time-share, without credit
CSCHED_PRI_IDLE = -64
PRI_NAMES = {CSCHED_PRI_TS_BOOST: "BOOST", CSCHED_PRI_TS_UNDER: "UNDER",
             CSCHED_PRI_TS_OVER: "OVER", CSCHED_PRI_IDLE: "IDLE"}

# svc.flags
CSCHED_FLAG_UNIT_PARKED = 1 << 0     # over its capped credit
CSCHED_FLAG_UNIT_YIELD = 1 << 1
CSCHED_FLAG_UNIT_MIGRATING = 1 << 2  # woken by a migration: no boost
CSCHED_FLAG_UNIT_PINNED = 1 << 3     # hard affinity of one pCPU

BALANCE_SOFT_AFFINITY, BALANCE_HARD_AFFINITY = 0, 1

# Timer priorities among events due at the same instant: accounting first,
# then each pCPU's tick (Xen's timers run in expiry order; the model needs
# a fixed order for the ones that coincide).
PRIO_ACCT, PRIO_TICK = 10, 11


class CreditPCPU:
    __slots__ = ("runq", "runq_sort_last", "idle_bias", "nr_runnable", "tick", "ticker")

    def __init__(self, runq_sort: int, idle_bias: int):
        self.runq: list[CreditVCPU] = []
        self.runq_sort_last = runq_sort
        self.idle_bias = idle_bias
        self.nr_runnable = 0
        self.tick = 0
        self.ticker = None


class CreditVCPU:
    __slots__ = ("vcpu", "sdom", "start_time", "flags", "pri", "credit", "residual",
                 "last_sched_time", "on_runq", "active")

    def __init__(self, vcpu: "VCPU", sdom: "CreditDomain | None", pri: int):
        self.vcpu = vcpu
        self.sdom = sdom
        self.start_time = 0      # when its credit was last burned up to
        self.flags = 0
        self.pri = pri
        self.credit = 0
        self.residual = 0        # part of a credit burned but not yet taken
        self.last_sched_time = 0
        self.on_runq = False
        self.active = False      # on its domain's active list (earning credit)


class CreditDomain:
    __slots__ = ("domain", "weight", "cap", "active_units", "active")

    def __init__(self, domain: "Domain"):
        self.domain = domain
        self.weight = CSCHED_DEFAULT_WEIGHT
        self.cap = 0
        self.active_units: list[CreditVCPU] = []
        self.active = False      # on the scheduler's active domain list


class CreditScheduler:
    sched_id = XEN_SCHEDULER_CREDIT
    name = "credit"
    opt_name = "SMP Credit Scheduler"

    def __init__(self, core: "Scheduler"):
        self.core = core
        self.idlers = 0
        self.cpus = 0
        self.ncpus = 0
        self.balance_bias = 0        # one NUMA node
        self.runq_sort = 0
        self.weight = 0              # of all active vCPUs
        self.credit = 0              # handed out per timeslice
        self.credit_balance = 0
        self.active_sdom: list[CreditDomain] = []
        self.master = 0
        self.master_ticker = None
        self.ratelimit = SCHED_DEFAULT_RATELIMIT_US * NS_PER_US
        self.unit_migr_delay = 0
        self.last_tickle_cpu: list[int] = []
        self._set_tslice(CSCHED_DEFAULT_TSLICE_MS)

    # ------------------------------------------------------------ parameters
    def _set_tslice(self, tslice_ms: int) -> None:
        self.tslice = tslice_ms * NS_PER_MS
        self.ticks_per_tslice = CSCHED_TICKS_PER_TSLICE if tslice_ms >= CSCHED_TICKS_PER_TSLICE else 1
        self.tick_period = tslice_ms * 1000 // self.ticks_per_tslice * NS_PER_US   # whole us
        self.credits_per_tslice = CSCHED_CREDITS_PER_MSEC * tslice_ms
        self.credit = self.credits_per_tslice * self.ncpus

    def set_params(self, tslice_ms: int, ratelimit_us: int, migration_delay_us: int = 0) -> None:
        """The host-wide knobs (XEN_SYSCTL_SCHEDOP_putinfo)."""
        if (not XEN_SYSCTL_CSCHED_TSLICE_MIN <= tslice_ms <= XEN_SYSCTL_CSCHED_TSLICE_MAX
                or (ratelimit_us and not XEN_SYSCTL_SCHED_RATELIMIT_MIN <= ratelimit_us
                    <= XEN_SYSCTL_SCHED_RATELIMIT_MAX)
                or ratelimit_us * NS_PER_US > tslice_ms * NS_PER_MS
                or not 0 <= migration_delay_us <= XEN_SYSCTL_CSCHED_MGR_DLY_MAX_US):
            raise XenError(EINVAL)
        self._set_tslice(tslice_ms)
        self.ratelimit = ratelimit_us * NS_PER_US
        self.unit_migr_delay = migration_delay_us * NS_PER_US

    def params(self) -> tuple[int, int, int]:
        """(tslice_ms, ratelimit_us, migration_delay_us)."""
        return (self.tslice // NS_PER_MS, self.ratelimit // NS_PER_US,
                self.unit_migr_delay // NS_PER_US)

    # ------------------------------------------------------------ set-up
    def init_pdata(self, cpu: int) -> None:
        core = self.core
        self.credit += self.credits_per_tslice
        self.ncpus += 1
        self.cpus |= cpumask.cpumask_of(cpu)
        self.last_tickle_cpu.append(0)
        now = core.clock.now
        if self.ncpus == 1:
            self.master = cpu
            self.master_ticker = core.clock.schedule(now + self.tslice, self.csched_acct,
                                                     priority=PRIO_ACCT)
        spc = CreditPCPU(self.runq_sort, core.nr_cpus - 1)
        core.pcpus[cpu].sched_priv = spc
        spc.ticker = core.clock.schedule(now + self.tick_period, self.csched_tick, cpu,
                                         priority=PRIO_TICK)
        self.idlers |= cpumask.cpumask_of(cpu)
        core.pcpus[cpu].idle.sched_priv = CreditVCPU(core.pcpus[cpu].idle, None, CSCHED_PRI_IDLE)

    def alloc_domdata(self, d: "Domain") -> None:
        d.sched = CreditDomain(d)

    def free_domdata(self, d: "Domain") -> None:
        d.sched = None

    def insert_vcpu(self, v: "VCPU") -> None:
        """A new vCPU joins, on the pCPU that suits it (csched_unit_insert())."""
        v.sched_priv = svc = CreditVCPU(v, v.domain.sched, CSCHED_PRI_TS_UNDER)
        v.processor = self.res_pick(v)
        if not svc.on_runq and v.runnable and not v.is_running:
            self.runq_insert(svc)

    def remove_vcpu(self, v: "VCPU") -> None:
        svc: CreditVCPU = v.sched_priv
        if svc.flags & CSCHED_FLAG_UNIT_PARKED:
            svc.flags &= ~CSCHED_FLAG_UNIT_PARKED
            self.core.vcpu_unpause_by_scheduler(v)
        if svc.active:
            self._acct_stop(svc)
        if svc.on_runq:
            self.runq_remove(svc)

    # ------------------------------------------------------------ run queues
    def _spc(self, cpu: int) -> CreditPCPU:
        return self.core.pcpus[cpu].sched_priv

    def _curr(self, cpu: int) -> CreditVCPU:
        return self.core.pcpus[cpu].curr.sched_priv

    def is_runq_idle(self, cpu: int) -> bool:
        runq = self._spc(cpu).runq
        return not runq or runq[0].vcpu.is_idle

    def __runq_insert(self, svc: CreditVCPU) -> None:
        """Behind every vCPU of its priority or better; a yielding vCPU
        goes one further back if it can."""
        runq = self._spc(svc.vcpu.processor).runq
        pri = svc.pri
        i = 0
        while i < len(runq) and runq[i].pri >= pri:
            i += 1
        if svc.flags & CSCHED_FLAG_UNIT_YIELD and i < len(runq) and runq[i].pri > CSCHED_PRI_IDLE:
            i += 1
        runq.insert(i, svc)
        svc.on_runq = True

    def __runq_remove(self, svc: CreditVCPU) -> None:
        self._spc(svc.vcpu.processor).runq.remove(svc)
        svc.on_runq = False

    def runq_insert(self, svc: CreditVCPU) -> None:
        self.__runq_insert(svc)
        self._spc(svc.vcpu.processor).nr_runnable += 1

    def runq_remove(self, svc: CreditVCPU) -> None:
        self._spc(svc.vcpu.processor).nr_runnable -= 1
        self.__runq_remove(svc)

    # ------------------------------------------------------------ credit
    @staticmethod
    def burn_credits(svc: CreditVCPU, now: int) -> None:
        delta = now - svc.start_time
        if delta <= 0:
            return
        val = delta * CSCHED_CREDITS_PER_MSEC + svc.residual
        credits, svc.residual = divmod(val, NS_PER_MS)
        svc.credit -= credits
        svc.start_time += credits * NS_PER_MS // CSCHED_CREDITS_PER_MSEC

    def _acct_start(self, svc: CreditVCPU) -> None:
        sdom = svc.sdom
        if not svc.active:
            svc.active = True
            sdom.active_units.insert(0, svc)
            self.weight += sdom.weight
            if not sdom.active:
                sdom.active = True
                self.active_sdom.insert(0, sdom)

    def _acct_stop(self, svc: CreditVCPU) -> None:
        sdom = svc.sdom
        svc.active = False
        sdom.active_units.remove(svc)
        self.weight -= sdom.weight
        if not sdom.active_units:
            sdom.active = False
            self.active_sdom.remove(sdom)

    def csched_unit_acct(self, cpu: int) -> None:
        """The tick found this vCPU running: it is using the CPU, so it
        loses its boost, pays for its time, and earns credit again if it
        had stopped; a vCPU that has run a while may be better elsewhere."""
        svc = self._curr(cpu)
        if svc.pri == CSCHED_PRI_TS_BOOST:
            svc.pri = CSCHED_PRI_TS_UNDER
        self.burn_credits(svc, self.core.clock.now)
        if not svc.active:
            self._acct_start(svc)
            return
        new_cpu = self._csched_cpu_pick(svc.vcpu, commit=False)
        if new_cpu != cpu:
            self.core.set_migrating(svc.vcpu)

    def csched_acct(self) -> None:
        """Every timeslice: share out the pCPUs' credit among the active
        domains by weight, clamp, cap, and set each vCPU's priority."""
        core = self.core
        weight_total = self.weight
        credit_total = self.credit
        if self.credit_balance < 0:
            credit_total -= self.credit_balance
        if weight_total == 0:
            self.credit_balance = 0
        else:
            self._share_credit(weight_total, credit_total)
            self.runq_sort += 1
        self.master_ticker = core.clock.schedule(core.clock.now + self.tslice, self.csched_acct,
                                                 priority=PRIO_ACCT)

    def _share_credit(self, weight_total: int, credit_total: int) -> None:
        weight_left = weight_total
        credit_balance = 0
        credit_xtra = False
        cpt = self.credits_per_tslice
        for sdom in list(self.active_sdom):
            count = len(sdom.active_units)
            weight_left -= sdom.weight * count
            # A domain may use at most all its active vCPUs for a whole
            # period, more only while the system-wide balance is negative.
            credit_peak = count * cpt
            if self.credit_balance < 0:
                credit_peak += (-self.credit_balance * sdom.weight * count
                                + weight_total - 1) // weight_total
            credit_cap = 0
            if sdom.cap:
                credit_cap = (sdom.cap * cpt + 99) // 100
                credit_peak = min(credit_peak, credit_cap)
                credit_cap = (credit_cap + count - 1) // count
            credit_fair = (credit_total * sdom.weight * count + weight_total - 1) // weight_total
            if credit_fair < credit_peak:
                credit_xtra = True
            else:
                if weight_left:
                    # What this domain cannot use goes to the others.
                    credit_total += ((credit_fair - credit_peak) * weight_total
                                     + weight_left - 1) // weight_left
                if credit_xtra:
                    # Domains that could use more stay at the head.
                    self.active_sdom.remove(sdom)
                    self.active_sdom.insert(0, sdom)
                credit_fair = credit_peak
            credit_fair = (credit_fair + count - 1) // count
            for svc in list(sdom.active_units):
                svc.credit += credit_fair
                credit = svc.credit
                if credit < 0:
                    svc.pri = CSCHED_PRI_TS_OVER
                    if (sdom.cap and credit < -credit_cap
                            and not svc.flags & CSCHED_FLAG_UNIT_PARKED):
                        svc.flags |= CSCHED_FLAG_UNIT_PARKED
                        self.core.vcpu_pause_by_scheduler(svc.vcpu)
                    if credit < -cpt:
                        credit = svc.credit = -cpt
                else:
                    svc.pri = CSCHED_PRI_TS_UNDER
                    if svc.flags & CSCHED_FLAG_UNIT_PARKED:
                        # Unpause before clearing the flag: waking here
                        # must not boost.
                        self.core.vcpu_unpause_by_scheduler(svc.vcpu)
                        svc.flags &= ~CSCHED_FLAG_UNIT_PARKED
                    if credit > cpt:
                        # Stops earning; starts again a little ahead.
                        self._acct_stop(svc)
                        credit = svc.credit = credit // 2
                credit_balance += credit
        self.credit_balance = credit_balance

    def csched_runq_sort(self, cpu: int) -> None:
        """Once per accounting period: UNDERs move ahead of OVERs."""
        spc = self._spc(cpu)
        if spc.runq_sort_last == self.runq_sort:
            return
        spc.runq_sort_last = self.runq_sort
        runq = spc.runq
        under = [s for s in runq if s.pri >= CSCHED_PRI_TS_UNDER]
        if under:
            rest = [s for s in runq if s.pri < CSCHED_PRI_TS_UNDER]
            runq[:] = under + rest

    def csched_tick(self, cpu: int) -> None:
        core = self.core
        core.this_cpu = cpu
        spc = self._spc(cpu)
        spc.tick += 1
        if not core.pcpus[cpu].curr.is_idle:
            self.csched_unit_acct(cpu)
        self.csched_runq_sort(cpu)
        spc.ticker = core.clock.schedule(core.clock.now + self.tick_period, self.csched_tick,
                                         cpu, priority=PRIO_TICK)

    # ------------------------------------------------------------ placement
    def _soft_effective(self, v: "VCPU") -> bool:
        hard, soft = v.hard_affinity, v.soft_affinity
        return bool(hard & ~soft) and bool(soft & hard)

    def has_soft_affinity(self, v: "VCPU") -> bool:
        return self._soft_effective(v) and bool(self.cpus & ~v.soft_affinity)

    @staticmethod
    def affinity_balance_cpumask(v: "VCPU", step: int) -> int:
        if step == BALANCE_SOFT_AFFINITY:
            return (v.soft_affinity & v.hard_affinity) or v.hard_affinity
        return v.hard_affinity

    def __runq_tickle(self, new: CreditVCPU) -> None:
        """Find pCPUs to run a newly runnable vCPU: an idle one it may use
        (one, taken in turn), or its own pCPU if it beats what runs there."""
        core = self.core
        v = new.vcpu
        cpu = v.processor
        cur = self._curr(cpu)
        idle_mask = self.idlers & self.cpus
        mask = 0
        if new.flags & CSCHED_FLAG_UNIT_PINNED and cpumask.test(cpu, idle_mask):
            mask = cpumask.cpumask_of(cpu)
        elif cur.pri == CSCHED_PRI_IDLE or (not idle_mask and new.pri > cur.pri):
            mask = cpumask.cpumask_of(cpu)
        elif idle_mask:
            for step in (BALANCE_SOFT_AFFINITY, BALANCE_HARD_AFFINITY):
                if step == BALANCE_SOFT_AFFINITY and not self.has_soft_affinity(v):
                    continue
                suitable = self.affinity_balance_cpumask(v, step) & idle_mask
                if not suitable and step == BALANCE_SOFT_AFFINITY:
                    continue
                if not suitable and new.pri > cur.pri:
                    if v.hard_affinity & idle_mask:
                        # cur may go to an idler; new takes its pCPU.
                        core.set_migrating(cur.vcpu)
                    mask |= cpumask.cpumask_of(cpu)
                elif suitable:
                    this = core.this_cpu
                    self.last_tickle_cpu[this] = cpumask.cycle(self.last_tickle_cpu[this], suitable)
                    mask |= cpumask.cpumask_of(self.last_tickle_cpu[this])
                if mask:
                    break
        for c in cpumask.cpus(mask):
            self.idlers &= ~cpumask.cpumask_of(c)
            core.raise_softirq(c)

    def _sibling_mask(self, cpu: int) -> int:
        return self.core.topology.siblings(cpu)

    def _core_mask(self, cpu: int) -> int:
        return self.core.topology.core_siblings(cpu)

    def _csched_cpu_pick(self, v: "VCPU", commit: bool) -> int:
        """The best pCPU for a vCPU: its own if that is idle, else an idle
        one where the most of its neighbours idle too (_csched_cpu_pick())."""
        online = self.cpus
        cpu = v.processor
        if not self.idlers & online and cpumask.test(cpu, v.hard_affinity & online):
            # No pCPU idles: the steps below would all keep it where it is.
            return cpu
        spc = None
        for step in (BALANCE_SOFT_AFFINITY, BALANCE_HARD_AFFINITY):
            cpus = self.affinity_balance_cpumask(v, step) & online
            if step == BALANCE_SOFT_AFFINITY and (not self.has_soft_affinity(v) or not cpus):
                continue
            cpu = v.processor if cpumask.test(v.processor, cpus) else cpumask.cycle(v.processor, cpus)
            idlers = self.idlers & online
            if v.processor == cpu and self.is_runq_idle(cpu):
                idlers |= cpumask.cpumask_of(cpu)
            cpus &= idlers
            if not cpumask.test(cpu, cpus) and cpus:
                cpu = cpumask.cycle(cpu, cpus)
            cpus &= ~cpumask.cpumask_of(cpu)
            while cpus:
                nxt = cpumask.cycle(cpu, cpus)
                if cpumask.test(cpu, self._core_mask(nxt)):
                    migrate_factor = 1
                    cpu_idlers = idlers & self._sibling_mask(cpu)
                    nxt_idlers = idlers & self._sibling_mask(nxt)
                else:
                    migrate_factor = 2
                    cpu_idlers = idlers & self._core_mask(cpu)
                    nxt_idlers = idlers & self._core_mask(nxt)
                if cpumask.weight(cpu_idlers) * migrate_factor < cpumask.weight(nxt_idlers):
                    nxt_idlers &= cpus
                    spc = self._spc(nxt)
                    cpu = cpumask.cycle(spc.idle_bias, nxt_idlers)
                    cpus &= ~self._sibling_mask(cpu)
                else:
                    cpus &= ~nxt_idlers
            if cpumask.test(cpu, idlers):
                break
        if commit and spc is not None:
            spc.idle_bias = cpu
        return cpu

    def res_pick(self, v: "VCPU") -> int:
        """Where a moving vCPU should go. It is marked as migrating so that
        the wake that follows does not boost it."""
        v.sched_priv.flags |= CSCHED_FLAG_UNIT_MIGRATING
        return self._csched_cpu_pick(v, commit=True)

    def aff_cntl(self, v: "VCPU", hard: int) -> None:
        svc: CreditVCPU = v.sched_priv
        if cpumask.weight(hard) == 1:
            svc.flags |= CSCHED_FLAG_UNIT_PINNED
        else:
            svc.flags &= ~CSCHED_FLAG_UNIT_PINNED

    # ------------------------------------------------------------ events
    def sleep(self, v: "VCPU") -> None:
        svc: CreditVCPU = v.sched_priv
        cpu = v.processor
        if self.core.pcpus[cpu].curr is v:
            self.core.raise_softirq(cpu)
        elif svc.on_runq:
            self.runq_remove(svc)

    def wake(self, v: "VCPU") -> None:
        """Queue a vCPU that became runnable, boosting it unless it only
        moved pCPU or is coming back from a cap."""
        svc: CreditVCPU = v.sched_priv
        if self.core.pcpus[v.processor].curr is v or svc.on_runq:
            return
        migrating = bool(svc.flags & CSCHED_FLAG_UNIT_MIGRATING)
        svc.flags &= ~CSCHED_FLAG_UNIT_MIGRATING
        if (not migrating and svc.pri == CSCHED_PRI_TS_UNDER
                and not svc.flags & CSCHED_FLAG_UNIT_PARKED):
            svc.pri = CSCHED_PRI_TS_BOOST
        self.runq_insert(svc)
        self.__runq_tickle(svc)

    def yield_vcpu(self, v: "VCPU") -> None:
        v.sched_priv.flags |= CSCHED_FLAG_UNIT_YIELD

    # ------------------------------------------------------------ choosing
    def _is_migrateable(self, v: "VCPU", dest_cpu: int, mask: int) -> bool:
        hot = (self.unit_migr_delay
               and self.core.clock.now - v.sched_priv.last_sched_time < self.unit_migr_delay)
        return not hot and cpumask.test(dest_cpu, mask)

    def csched_runq_steal(self, peer_cpu: int, cpu: int, pri: int, step: int) -> CreditVCPU | None:
        core = self.core
        if core.pcpus[peer_cpu].curr.is_idle:
            return None
        for speer in self._spc(peer_cpu).runq:
            if speer.pri <= pri:
                break
            v = speer.vcpu
            if v.is_running or (step == BALANCE_SOFT_AFFINITY and not self.has_soft_affinity(v)):
                continue
            if self._is_migrateable(v, cpu, self.affinity_balance_cpumask(v, step)):
                self.runq_remove(speer)
                v.processor = cpu
                self._spc(cpu).nr_runnable += 1
                return speer
        return None

    def csched_load_balance(self, cpu: int, snext: CreditVCPU) -> tuple[CreditVCPU, bool]:
        """Look on busy pCPUs for a vCPU better than ``snext``, the best
        local choice (OVER or idle); otherwise run ``snext``."""
        if cpumask.test(cpu, self.cpus):
            for step in (BALANCE_SOFT_AFFINITY, BALANCE_HARD_AFFINITY):
                workers = self.cpus & ~self.idlers & ~cpumask.cpumask_of(cpu)
                first_cpu = cpumask.cycle(self.balance_bias, workers)
                if first_cpu is None:
                    continue
                peer_cpu = first_cpu
                while True:
                    if self._spc(peer_cpu).nr_runnable > 1:
                        speer = self.csched_runq_steal(peer_cpu, cpu, snext.pri, step)
                        if speer is not None:
                            self.balance_bias = peer_cpu
                            return speer, True
                    peer_cpu = cpumask.cycle(peer_cpu, workers)
                    if peer_cpu == first_cpu:
                        break
        self.__runq_remove(snext)
        return snext, False

    def do_schedule(self, cpu: int, prev: "VCPU", now: int) -> tuple["VCPU", int, bool]:
        """csched_schedule(): (the vCPU to run next, how long it may run or
        -1 for no limit, whether it was taken from another pCPU)."""
        core = self.core
        spc = self._spc(cpu)
        scurr: CreditVCPU = prev.sched_priv
        runtime = max(0, now - prev.sched_entry_time)
        migrated = False
        if not prev.is_idle:
            self.burn_credits(scurr, now)
            scurr.start_time -= now
            scurr.last_sched_time = now
        else:
            scurr.pri = CSCHED_PRI_IDLE
        if (not scurr.flags & CSCHED_FLAG_UNIT_YIELD and self.ratelimit and prev.runnable
                and not prev.is_idle and runtime < self.ratelimit):
            # Too soon to switch: keep running, until the rate limit is up.
            snext = scurr
            snext.start_time += now
            tslice = self.ratelimit - runtime
            if runtime < CSCHED_MIN_TIMER:
                tslice = CSCHED_MIN_TIMER
        else:
            tslice = self.tslice
            if prev.runnable:
                self.__runq_insert(scurr)
            else:
                spc.nr_runnable -= 1
            scurr.flags &= ~CSCHED_FLAG_UNIT_YIELD
            while True:
                snext = spc.runq[0]
                if snext.pri > CSCHED_PRI_TS_OVER:
                    self.__runq_remove(snext)
                else:
                    snext, stolen = self.csched_load_balance(cpu, snext)
                    migrated = migrated or stolen
                if snext.vcpu.runnable:
                    break
            if snext.pri == CSCHED_PRI_IDLE:
                self.idlers |= cpumask.cpumask_of(cpu)
            else:
                self.idlers &= ~cpumask.cpumask_of(cpu)
            if not snext.vcpu.is_idle:
                snext.start_time += now
        nxt = snext.vcpu
        # The tick stops while the pCPU idles, and restarts on the tick grid.
        if not prev.is_idle and nxt.is_idle and spc.ticker is not None:
            spc.ticker.cancel()
            spc.ticker = None
        if prev.is_idle and not nxt.is_idle and spc.ticker is None:
            period = self.tick_period
            spc.ticker = core.clock.schedule(now + period - now % period, self.csched_tick, cpu,
                                             priority=PRIO_TICK)
        return nxt, (-1 if nxt.is_idle else tslice), migrated

    # ------------------------------------------------------------ domctl and views
    def dom_cntl(self, d: "Domain", cmd: int,
                 params: XenDomctlSchedCredit | None) -> XenDomctlSchedCredit:
        """getinfo returns the domain's weight and cap; putinfo changes the
        weight unless it is 0 and the cap unless it is 0xffff."""
        sdom: CreditDomain = d.sched
        if cmd == XEN_DOMCTL_SCHEDOP_putinfo:
            if not isinstance(params, XenDomctlSchedCredit):
                raise XenError(EINVAL)
            if params.weight != 0:
                if sdom.active:
                    self.weight += (params.weight - sdom.weight) * len(sdom.active_units)
                sdom.weight = params.weight
            if params.cap != 0xFFFF:
                sdom.cap = params.cap
        elif cmd != XEN_DOMCTL_SCHEDOP_getinfo:
            raise XenError(EINVAL)
        return XenDomctlSchedCredit(weight=sdom.weight, cap=sdom.cap)

    def vcpu_state(self, v: "VCPU") -> tuple[int, str, int]:
        """(credit, priority name, flags) of a vCPU, for the views."""
        svc: CreditVCPU = v.sched_priv
        return svc.credit, PRI_NAMES.get(svc.pri, str(svc.pri)), svc.flags

    def dump_unit(self, svc: CreditVCPU) -> str:
        v = svc.vcpu
        text = f"[{v.domain.domid}.{v.vcpu_id}] pri={svc.pri} flags={svc.flags:x} cpu={v.processor}"
        if svc.sdom is not None:
            text += f" credit={svc.credit} [w={svc.sdom.weight},cap={svc.sdom.cap}]"
        return text

    def dump_settings(self) -> list[str]:
        return ["info:", f"\tncpus              = {self.ncpus}",
                f"\tmaster             = {self.master}",
                f"\tcredit             = {self.credit}",
                f"\tcredit balance     = {self.credit_balance}",
                f"\tweight             = {self.weight}",
                f"\trunq_sort          = {self.runq_sort}",
                f"\tdefault-weight     = {CSCHED_DEFAULT_WEIGHT}",
                f"\ttslice             = {self.tslice // NS_PER_MS}ms",
                f"\tratelimit          = {self.ratelimit // NS_PER_US}us",
                f"\tcredits per msec   = {CSCHED_CREDITS_PER_MSEC}",
                f"\tticks per tslice   = {self.ticks_per_tslice}",
                f"\tmigration delay    = {self.unit_migr_delay // NS_PER_US}us"]

    def dump_pcpu(self, cpu: int) -> list[str]:
        spc = self._spc(cpu)
        lines = [f"CPU[{cpu:02d}] nr_run={spc.nr_runnable}, sort={spc.runq_sort_last}",
                 f"\trun: {self.dump_unit(self._curr(cpu))}"]
        lines += [f"\t{i + 1:3d}: {self.dump_unit(svc)}" for i, svc in enumerate(spc.runq)]
        return lines
