"""The credit scheduler, measured over simulated time: CPU shares follow
weights, a cap holds, pinning holds, no pCPU idles while work it may run
waits, and a vCPU that wakes gets the CPU ahead of CPU hogs."""

from __future__ import annotations

import pytest

from hv.public.domctl import (
    XEN_DOMCTL_SCHEDOP_getinfo, XEN_DOMCTL_SCHEDOP_putinfo, XEN_DOMCTL_getvcpuaffinity,
    XEN_DOMCTL_scheduler_op, XEN_DOMCTL_setvcpuaffinity, XEN_SCHEDULER_CREDIT,
    XEN_VCPUAFFINITY_HARD, XEN_VCPUAFFINITY_SOFT, XenctlBitmap, XenDomctlSchedCredit,
    XenDomctlSchedulerOp, XenDomctlVcpuaffinity,
)
from hv.public.errno import EBUSY, EINVAL, ESRCH
from hv.public.vcpu import RUNSTATE_running
from hv.xen import cpumask
from hv.xen.timer import NS_PER_MS, NS_PER_S
from tests.calls import boot_guest, domctl
from tests.conftest import make_host

HOG = ["burn 100%"]


def guest(host, workload, vcpus=1):
    return boot_guest(host, workload, vcpus=vcpus, settle=0)[0]


def set_credit(host, d, weight=0, cap=0xFFFF):
    op = XenDomctlSchedulerOp(sched_id=XEN_SCHEDULER_CREDIT, cmd=XEN_DOMCTL_SCHEDOP_putinfo,
                              u=XenDomctlSchedCredit(weight=weight, cap=cap))
    return domctl(host.xen, host.dom0, XEN_DOMCTL_scheduler_op, d.domid, op)


def cpu_time(host, d) -> int:
    return sum(v.runstate_snapshot(host.now)[2][RUNSTATE_running] for v in d.vcpus)


def switches(host, since=0):
    """(time, pCPU, outgoing, incoming) of every context switch."""
    return [(r.time, *r.args) for r in host.xen.trace.since(since)
            if r.kind == "sched" and r.name == "switch"]


# ---------------------------------------------------------------- shares
def test_weights_512_and_256_share_one_pcpu_two_to_one():
    host = make_host(cpus=1)
    a, b = guest(host, HOG), guest(host, HOG)
    assert set_credit(host, a, weight=512)[0] == 0
    start_a, start_b, start = cpu_time(host, a), cpu_time(host, b), host.now
    host.run(until=start + 10 * NS_PER_S)
    ta, tb = cpu_time(host, a) - start_a, cpu_time(host, b) - start_b
    assert ta + tb == pytest.approx(10 * NS_PER_S, rel=0.001)    # the pCPU never idled
    assert ta / tb == pytest.approx(2.0, rel=0.03)


def test_equal_weights_share_equally_across_pcpus():
    host = make_host(cpus=2)
    doms = [guest(host, HOG) for _ in range(4)]
    start = host.now
    host.run(until=start + 10 * NS_PER_S)
    shares = [cpu_time(host, d) / (host.now - start) for d in doms]
    assert sum(shares) == pytest.approx(2.0, rel=0.001)
    assert all(s == pytest.approx(0.5, rel=0.03) for s in shares)


def test_a_cap_of_50_holds_a_hog_at_half_a_pcpu():
    host = make_host(cpus=2)
    d = guest(host, HOG)
    assert set_credit(host, d, cap=50)[0] == 0
    host.run(until=host.now + NS_PER_S)             # let the cap take hold
    before, start = cpu_time(host, d), host.now
    host.run(until=start + 10 * NS_PER_S)
    assert (cpu_time(host, d) - before) / (host.now - start) == pytest.approx(0.5, rel=0.02)


def test_credit_parameters_read_back_and_zero_means_unchanged(xen, dom0, make_domu):
    d = make_domu(16)
    get = XenDomctlSchedulerOp(sched_id=XEN_SCHEDULER_CREDIT, cmd=XEN_DOMCTL_SCHEDOP_getinfo)
    assert domctl(xen, dom0, XEN_DOMCTL_scheduler_op, d.domid, get)[1].u.u == \
        XenDomctlSchedCredit(weight=256, cap=0)
    put = XenDomctlSchedulerOp(sched_id=XEN_SCHEDULER_CREDIT, cmd=XEN_DOMCTL_SCHEDOP_putinfo,
                               u=XenDomctlSchedCredit(weight=1000, cap=0xFFFF))
    assert domctl(xen, dom0, XEN_DOMCTL_scheduler_op, d.domid, put)[0] == 0
    put = put.replace(u=XenDomctlSchedCredit(weight=0, cap=20))
    assert domctl(xen, dom0, XEN_DOMCTL_scheduler_op, d.domid, put)[1].u.u == \
        XenDomctlSchedCredit(weight=1000, cap=20)
    wrong = get.replace(sched_id=XEN_SCHEDULER_CREDIT + 1)
    assert domctl(xen, dom0, XEN_DOMCTL_scheduler_op, d.domid, wrong)[0] == -EINVAL


def test_a_light_guest_gets_all_it_asks_for_next_to_a_hog():
    """Computing 1 ms in every 20 is 5% of the pCPU: the hog must not take
    any of it, and gets the rest."""
    host = make_host(cpus=1)
    hog, light = guest(host, HOG), guest(host, ["compute 1ms", "sleep 19ms", "loop"])
    host.run(until=host.now + NS_PER_S)
    t_hog, t_light, start = cpu_time(host, hog), cpu_time(host, light), host.now
    host.run(until=start + 4 * NS_PER_S)
    light_share = (cpu_time(host, light) - t_light) / (host.now - start)
    hog_share = (cpu_time(host, hog) - t_hog) / (host.now - start)
    assert light_share == pytest.approx(0.05, rel=0.05)
    assert hog_share == pytest.approx(0.95, rel=0.01)


# ---------------------------------------------------------------- affinity
def affinity(host, d, vcpu, hard=None, soft=None, cmd=XEN_DOMCTL_setvcpuaffinity):
    flags = (XEN_VCPUAFFINITY_HARD if hard is not None else 0) | \
        (XEN_VCPUAFFINITY_SOFT if soft is not None else 0)
    u = XenDomctlVcpuaffinity(
        vcpu=vcpu, flags=flags,
        cpumap_hard=XenctlBitmap(bitmap=bytes([hard or 0]), nr_bits=8),
        cpumap_soft=XenctlBitmap(bitmap=bytes([soft or 0]), nr_bits=8))
    return domctl(host.xen, host.dom0, cmd, d.domid, u)


def test_a_pinned_vcpu_never_runs_elsewhere():
    host = make_host(cpus=4)
    doms = [guest(host, HOG, vcpus=2) for _ in range(5)]
    pinned = doms[2].vcpus[1]
    rc, out = affinity(host, doms[2], 1, hard=cpumask.cpumask_of(2))
    assert rc == 0 and out.u.cpumap_hard.bitmap == bytes([0b0100])
    mark = host.xen.trace.seq
    host.run(until=host.now + 2 * NS_PER_S)
    label = f"d{doms[2].domid}v1"
    ran_on = {cpu for _t, cpu, _prev, nxt in switches(host, mark) if nxt == label}
    assert ran_on == {2} and pinned.processor == 2
    assert cpu_time(host, doms[2]) > 0
    # Others still use pCPU 2 too: the pin is the vCPU's, not the pCPU's.
    assert {nxt for _t, cpu, _p, nxt in switches(host, mark) if cpu == 2} - {label, "idle"}


def test_affinity_reads_back_and_refuses_an_empty_hard_mask():
    host = make_host(cpus=4)
    d = guest(host, HOG, vcpus=2)
    assert affinity(host, d, 0, hard=0b0011, soft=0b0010)[0] == 0
    rc, out = affinity(host, d, 0, hard=0, soft=0, cmd=XEN_DOMCTL_getvcpuaffinity)
    assert rc == 0
    assert (out.u.cpumap_hard.bitmap, out.u.cpumap_soft.bitmap) == (bytes([0b0011]), bytes([0b0010]))
    # Only pCPUs 4-7 asked for: none of them exists.
    assert affinity(host, d, 0, hard=0b11110000)[0] == -EINVAL
    assert affinity(host, d, 5, hard=0b1)[0] == -EINVAL
    assert d.vcpus[0].hard_affinity == 0b0011
    host.run(until=host.now + NS_PER_S)
    assert d.vcpus[0].processor in (0, 1)


def test_vcpu_affinity_of_a_domain_without_vcpus_yet_is_esrch(xen, dom0):
    from tests.calls import create
    domid = create(xen, dom0, max_vcpus=2)[1]
    u = XenDomctlVcpuaffinity(vcpu=0, flags=XEN_VCPUAFFINITY_HARD,
                              cpumap_hard=XenctlBitmap(bitmap=b"\x01", nr_bits=8))
    assert domctl(xen, dom0, XEN_DOMCTL_setvcpuaffinity, domid, u)[0] == -ESRCH


# ---------------------------------------------------------------- placement
def test_no_pcpu_idles_for_a_tick_while_work_it_may_run_waits():
    """Sampled every 100 us over 3 s of a mixed load: whenever a pCPU runs
    its idle vCPU while a runnable vCPU allowed there waits, that state
    ends within one tick (10 ms)."""
    host = make_host(cpus=4)
    for _ in range(3):
        guest(host, HOG)
    for _ in range(2):
        guest(host, ["burn 40%"], vcpus=2)
    for _ in range(3):
        guest(host, ["compute 3ms", "sleep 7ms", "loop"])
    pinned = guest(host, HOG)
    affinity(host, pinned, 0, hard=cpumask.cpumask_of(3))
    sched = host.xen.sched
    doms = list(host.xen.domains)
    since: dict[int, int] = {}
    worst = [0]

    def probe():
        now = host.now
        waiting = [v for d in doms for v in d.vcpus if v.runnable and not v.is_running]
        for pcpu in sched.pcpus:
            starved = pcpu.curr.is_idle and any(v.hard_affinity >> pcpu.cpu & 1 for v in waiting)
            if starved:
                since.setdefault(pcpu.cpu, now)
                worst[0] = max(worst[0], now - since[pcpu.cpu])
            else:
                since.pop(pcpu.cpu, None)
        if now < end:
            host.clock.schedule(now + 100_000, probe, priority=100)

    end = host.now + 3 * NS_PER_S
    host.clock.schedule(host.now, probe, priority=100)
    host.run(until=end)
    assert worst[0] <= 10 * NS_PER_MS


def test_a_waking_vcpu_gets_the_cpu_ahead_of_hogs():
    """An I/O-like guest that wakes every 20 ms is boosted past two hogs
    sharing its pCPU: nearly every wake runs within the rate limit (1 ms),
    where otherwise a 30 ms slice would stand in its way. (Now and then
    credit accounting finds it with less than nothing and it waits as OVER,
    as on Xen: it started with no credit and earns only while active.)"""
    host = make_host(cpus=1)
    guest(host, HOG)
    guest(host, HOG)
    io = guest(host, ["compute 100us", "sleep 20ms", "loop"])
    host.run(until=host.now + 5 * NS_PER_S)              # booted, credit settled
    timer_port = io.vcpus[0].virq_to_evtchn[0]
    mark = host.xen.trace.seq
    host.run(until=host.now + 3 * NS_PER_S)
    label = f"d{io.domid}v0"
    waits, woke_at = [], None
    for r in host.xen.trace.since(mark):
        if r.kind == "evtchn" and r.domid == io.domid and r.args == timer_port \
                and "upcall" in str(r.result) and woke_at is None:
            woke_at = r.time
        elif r.kind == "sched" and r.args[2] == label and woke_at is not None:
            waits.append(r.time - woke_at)
            woke_at = None
    assert len(waits) > 100
    prompt = [w for w in waits if w <= 1 * NS_PER_MS]
    assert len(prompt) >= 0.95 * len(waits)


# ---------------------------------------------------------------- re-placing and pinning
def test_a_soft_affinity_change_moves_a_running_vcpu_at_once():
    host = make_host(cpus=2)
    d = guest(host, HOG)
    host.run(until=host.now + 5 * NS_PER_MS)
    v = d.vcpus[0]
    target = 1 - v.processor
    assert affinity(host, d, 0, soft=cpumask.cpumask_of(target))[0] == 0
    assert v.processor == target and v.is_running


def test_affinity_reads_back_as_given_and_a_default_is_every_cpu():
    host = make_host(cpus=2)
    d = guest(host, HOG)
    rc, out = affinity(host, d, 0, hard=0, soft=0, cmd=XEN_DOMCTL_getvcpuaffinity)
    assert rc == 0 and out.u.cpumap_hard.bitmap == out.u.cpumap_soft.bitmap == b"\xff"
    rc, out = affinity(host, d, 0, hard=0b1111, soft=0b1000)
    # Set reports what is in force: hard within the online pCPUs, soft within that.
    assert out.u.cpumap_hard.bitmap == b"\x03" and out.u.cpumap_soft.bitmap == b"\x00"
    rc, out = affinity(host, d, 0, hard=0, soft=0, cmd=XEN_DOMCTL_getvcpuaffinity)
    assert (out.u.cpumap_hard.bitmap, out.u.cpumap_soft.bitmap) == (b"\x0f", b"\x08")


def test_pin_override_pins_and_gives_the_affinity_back(xen, dom0, host):
    from hv.public.sched import SCHEDOP_pin_override, SchedPinOverride
    from tests.calls import sched
    v = dom0.vcpus[0]
    assert sched(xen, dom0, SCHEDOP_pin_override, SchedPinOverride(pcpu=1)) == 0
    assert v.hard_affinity == 0b10 and v.processor == 1
    # While it holds, the toolstack may not change the vCPU's affinity.
    assert affinity(host, dom0, 0, hard=0b01)[0] == -EBUSY
    assert sched(xen, dom0, SCHEDOP_pin_override, SchedPinOverride(pcpu=-1)) == 0
    assert v.hard_affinity == cpumask.cpumask_all(256)
    assert sched(xen, dom0, SCHEDOP_pin_override, SchedPinOverride(pcpu=7)) == -EINVAL


def test_two_vcpus_of_one_guest_on_one_pcpu_take_turns():
    """vCPU 0 wakes its sibling (an IPI) on the pCPU it runs on: the boosted
    sibling preempts it, and both then share the pCPU."""
    host = make_host(cpus=1)
    d = guest(host, ["sleep 1ms", "compute 15ms", "burn 100%"], vcpus=2)
    host.run(until=host.now + 2 * NS_PER_S)
    used = [v.runstate_snapshot(host.now)[2][RUNSTATE_running] for v in d.vcpus]
    assert all(u > 0.8 * NS_PER_S for u in used)
    assert sum(used) == pytest.approx(host.now - d.created_at, rel=0.02)
