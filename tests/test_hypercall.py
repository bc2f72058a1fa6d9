"""The hypercall door and the smaller hypercalls: the table, multicall,
xen_version, console_io, vcpu_op, sched_op's watchdogs and timers, the trace
and the debug keys."""

import pytest

from hv.public.errno import E2BIG, EEXIST, EFAULT, EINVAL, ENOENT, ENOSPC, ENOSYS, EPERM
from hv.public.event_channel import (
    EVTCHNOP_alloc_unbound, EVTCHNOP_bind_interdomain, EVTCHNOP_bind_virq, EVTCHNOP_send,
    EvtchnAllocUnbound, EvtchnBindInterdomain, EvtchnBindVirq, EvtchnSend,
)
from hv.public.sched import (
    SCHEDOP_block, SCHEDOP_shutdown, SCHEDOP_watchdog, SCHEDOP_yield, SHUTDOWN_poweroff, SHUTDOWN_watchdog,
    SchedShutdown, SchedWatchdog,
)
from hv.public.vcpu import (
    RUNSTATE_blocked, RUNSTATE_offline, RUNSTATE_running, VCPUOP_down,
    VCPUOP_get_runstate_info, VCPUOP_initialise, VCPUOP_is_up, VCPUOP_set_periodic_timer,
    VCPUOP_set_singleshot_timer, VCPUOP_stop_periodic_timer, VCPUOP_up, VcpuSetPeriodicTimer,
    VcpuSetSingleshotTimer,
)
from hv.public.version import (
    XENFEAT_dom0, XENVER_capabilities, XENVER_commandline, XENVER_extraversion,
    XENVER_get_features, XENVER_guest_handle, XENVER_pagesize, XENVER_version,
    XenCapabilitiesInfo, XenCommandline, XenDomainHandle, XenExtraversion, XenFeatureInfo,
)
from hv.public.xen import (
    CONSOLEIO_read, CONSOLEIO_write, DOMID_SELF, HYPERVISOR_console_io,
    HYPERVISOR_event_channel_op, HYPERVISOR_multicall, HYPERVISOR_sched_op,
    HYPERVISOR_set_timer_op, HYPERVISOR_vcpu_op, HYPERVISOR_xen_version, MulticallEntry,
    SHINFO_EVTCHN_PENDING, VCPUINFO_PENDING_SEL, VCPUINFO_UPCALL_PENDING, VIRQ_TIMER,
    VcpuGuestContext,
)
from hv.xen.timer import NS_PER_MS, NS_PER_S

from tests.conftest import hypercall, make_host
from xl.dombuild import build_pv_domain
from xl.privcmd import Privcmd


# ---------------------------------------------------------------- the door
def test_an_unknown_hypercall_is_enosys_and_traced(xen, dom0):
    assert hypercall(xen, dom0, 47) == (-ENOSYS, None)
    last = list(xen.trace)[-1]
    assert (last.kind, last.name, last.result) == ("hypercall", "#47", -ENOSYS)


@pytest.mark.parametrize("nr, args", [
    (HYPERVISOR_event_channel_op, ()),
    (HYPERVISOR_event_channel_op, (EVTCHNOP_send, EvtchnSend(port=1), "extra")),
    (HYPERVISOR_event_channel_op, (EVTCHNOP_send, "not a struct")),
    (HYPERVISOR_event_channel_op, (EVTCHNOP_send, None)),
    (HYPERVISOR_vcpu_op, (VCPUOP_up, "zero")),
    (HYPERVISOR_console_io, (CONSOLEIO_write, 5, b"ab")),
    (HYPERVISOR_set_timer_op, ("soon",)),
])
def test_arguments_that_could_not_come_from_guest_memory_are_efault(xen, dom0, nr, args):
    assert hypercall(xen, dom0, nr, *args)[0] == -EFAULT


def test_every_call_is_traced_before_what_it_causes(xen, make_domu):
    b = make_domu(16)
    _, alloc = hypercall(xen, b, HYPERVISOR_event_channel_op, EVTCHNOP_alloc_unbound,
                         EvtchnAllocUnbound(dom=DOMID_SELF, remote_dom=DOMID_SELF))
    mark = xen.trace.seq
    hypercall(xen, b, HYPERVISOR_event_channel_op, 0, _bind(b, alloc.port))
    records = xen.trace.since(mark)
    assert [(r.kind, r.name) for r in records] == [
        ("hypercall", "event_channel_op:bind_interdomain"), ("evtchn", "pending")]
    assert records[0].result == 0 and records[0].seq < records[1].seq


def _bind(d, port):
    from hv.public.event_channel import EvtchnBindInterdomain
    return EvtchnBindInterdomain(remote_dom=d.domid, remote_port=port)


def test_the_trace_is_bounded():
    from tests.conftest import make_host
    host = make_host(trace_capacity=8)
    for _ in range(20):
        hypercall(host.xen, host.dom0, HYPERVISOR_sched_op, SCHEDOP_yield)
    records = list(host.xen.trace)
    assert len(records) == 8 and records[-1].seq == host.xen.trace.seq
    assert host.xen.trace.since(records[-3].seq) == records[-2:]


# ---------------------------------------------------------------- multicall
def test_multicall_runs_each_entry_with_its_own_result(xen, dom0):
    entries = (
        MulticallEntry(op=HYPERVISOR_event_channel_op,
                       args=(EVTCHNOP_alloc_unbound, EvtchnAllocUnbound(dom=DOMID_SELF))),
        MulticallEntry(op=HYPERVISOR_event_channel_op, args=(EVTCHNOP_send, EvtchnSend(port=999))),
        MulticallEntry(op=HYPERVISOR_xen_version, args=(XENVER_version,)),
        MulticallEntry(op=44, args=()),
    )
    rc, results = hypercall(xen, dom0, HYPERVISOR_multicall, entries)
    assert rc == 0
    (rc0, out0), (rc1, _), (rc2, _), (rc3, _) = results
    assert rc0 == 0 and out0.port == 1
    assert (rc1, rc2, rc3) == (-EINVAL, 0x40011, -ENOSYS)


def test_a_multicall_inside_a_multicall_is_refused(xen, dom0):
    inner = MulticallEntry(op=HYPERVISOR_multicall, args=((),))
    rc, results = hypercall(xen, dom0, HYPERVISOR_multicall, (inner,))
    assert rc == 0 and results[0][0] == -EINVAL
    assert hypercall(xen, dom0, HYPERVISOR_multicall, ("junk",)) == (-EFAULT, None)


def test_multicall_entries_pack_to_the_abi_layout():
    entry = MulticallEntry(op=HYPERVISOR_event_channel_op, result=7, args=(4, EvtchnSend(port=3)))
    raw = entry.pack()
    assert len(raw) == 64 and raw[:8] == (32).to_bytes(8, "little")
    assert raw[16:24] == (4).to_bytes(8, "little") and raw[24:32] == bytes(8)


# ---------------------------------------------------------------- xen_version
def test_xen_version_answers(xen, make_domu, dom0):
    d = make_domu(16)
    assert hypercall(xen, d, HYPERVISOR_xen_version, XENVER_version)[0] == (4 << 16) | 17
    assert hypercall(xen, d, HYPERVISOR_xen_version, XENVER_pagesize)[0] == 4096
    rc, extra = hypercall(xen, d, HYPERVISOR_xen_version, XENVER_extraversion, XenExtraversion())
    assert rc == 0 and extra.extraversion == b".0-xenlab"
    rc, caps = hypercall(xen, d, HYPERVISOR_xen_version, XENVER_capabilities, XenCapabilitiesInfo())
    assert caps.info == b"xen-3.0-x86_64"
    rc, h = hypercall(xen, d, HYPERVISOR_xen_version, XENVER_guest_handle, XenDomainHandle())
    assert bytes(h.handle) == d.handle
    _, f_dom0 = hypercall(xen, dom0, HYPERVISOR_xen_version, XENVER_get_features, XenFeatureInfo())
    _, f_domu = hypercall(xen, d, HYPERVISOR_xen_version, XENVER_get_features, XenFeatureInfo())
    assert f_dom0.submap & (1 << XENFEAT_dom0) and not f_domu.submap & (1 << XENFEAT_dom0)
    # x86 has one submap; asking for another is an error.
    assert hypercall(xen, d, HYPERVISOR_xen_version, XENVER_get_features,
                     XenFeatureInfo(submap_idx=1))[0] == -EINVAL


def test_only_the_control_domain_reads_xens_command_line(xen, dom0, make_domu):
    d = make_domu(16)
    # Others are answered, with "<denied>" (common/kernel.c, xen_deny()).
    assert hypercall(xen, d, HYPERVISOR_xen_version, XENVER_commandline,
                     XenCommandline()) == (0, XenCommandline(cmdline=b"<denied>"))
    rc, out = hypercall(xen, dom0, HYPERVISOR_xen_version, XENVER_commandline, XenCommandline())
    assert rc == 0 and out.cmdline == b"dom0_mem=128M"
    assert hypercall(xen, dom0, HYPERVISOR_xen_version, 99)[0] == -ENOSYS
    assert hypercall(xen, dom0, HYPERVISOR_xen_version, XENVER_extraversion, "x")[0] == -EFAULT


# ---------------------------------------------------------------- console_io
def test_dom0_writes_to_the_physical_console(xen, dom0):
    assert hypercall(xen, dom0, HYPERVISOR_console_io, CONSOLEIO_write, 6, b"hello\nX") == (0, None)
    assert xen.console.serial.endswith(b"hello\n")
    assert b"hello" not in xen.console.read_ring()


def test_other_domains_may_not_use_console_io(xen, make_domu):
    d = make_domu(16)
    assert hypercall(xen, d, HYPERVISOR_console_io, CONSOLEIO_write, 2, b"hi")[0] == -EPERM
    assert hypercall(xen, d, HYPERVISOR_console_io, CONSOLEIO_read, 2, None)[0] == -EPERM
    # The privilege check comes before the command is looked at.
    assert hypercall(xen, d, HYPERVISOR_console_io, 7, 0, None)[0] == -EPERM
    assert hypercall(xen, xen.hardware_domain, HYPERVISOR_console_io, 7, 0, None)[0] == -ENOSYS


def test_a_debug_build_lets_any_guest_write_its_lines_to_the_ring():
    """A domU's writes go to the ring a line at a time, "(dN) " first,
    with only printable characters (Latin-1's included, as Xen's ctype
    has them). Xen copies 127 bytes at a time and keeps at most 198 of
    an unfinished line: the chunk that would overflow it goes out with it."""
    host = make_host(debug_build=True)
    xen, pc = host.xen, Privcmd(host.xen)
    d = xen.domains.get(build_pv_domain(pc, memory_kib=16 * 1024).domid)
    def write(data):
        return hypercall(xen, d, HYPERVISOR_console_io, CONSOLEIO_write, len(data), data)[0]
    xen.console.read_ring(clear=True)
    assert write(b"boot\x07ing \xe9t\xe9") == 0
    assert xen.console.read_ring() == b""               # no newline yet
    assert write(b"!\nnext") == 0
    assert xen.console.read_ring(clear=True) == b"(d%d) booting \xe9t\xe9!\n" % d.domid
    assert write(b"x" * 400) == 0
    # "next" + 127 is kept; the next 127 would pass 198, so all goes out.
    assert xen.console.read_ring(clear=True) == b"(d%d) next" % d.domid + b"x" * 254 + b"\n"
    assert write(b"\n") == 0
    assert xen.console.read_ring(clear=True) == b"(d%d) " % d.domid + b"x" * 146 + b"\n"
    # Reading stays dom0's.
    assert hypercall(xen, d, HYPERVISOR_console_io, CONSOLEIO_read, 1, None)[0] == -EPERM


def test_console_io_counts_are_unsigned_ints(xen, dom0):
    xen.console.feed_input(b"ab")
    assert hypercall(xen, dom0, HYPERVISOR_console_io, CONSOLEIO_read, -1, None)[0] == -E2BIG
    assert hypercall(xen, dom0, HYPERVISOR_console_io, CONSOLEIO_read, (1 << 32) + 1, None) == (1, b"a")


def test_console_input_reaches_dom0_with_virq_console(xen, dom0):
    from hv.public.xen import VIRQ_CONSOLE
    _, bound = hypercall(xen, dom0, HYPERVISOR_event_channel_op, EVTCHNOP_bind_virq,
                         EvtchnBindVirq(virq=VIRQ_CONSOLE, vcpu=0))
    xen.console.feed_input(b"ls\n")
    assert xen.evtchn.is_pending(dom0, bound.port)
    assert hypercall(xen, dom0, HYPERVISOR_console_io, CONSOLEIO_read, 2, None) == (2, b"ls")
    assert hypercall(xen, dom0, HYPERVISOR_console_io, CONSOLEIO_read, 10, None) == (1, b"\n")
    assert hypercall(xen, dom0, HYPERVISOR_console_io, CONSOLEIO_read, 10, None) == (0, b"")


def test_the_console_ring_keeps_the_newest_bytes_and_clears(xen):
    xen.console.read_ring(clear=True)
    for i in range(2000):
        xen.console.printk(f"line {i:04d}")
    ring = xen.console.read_ring()
    assert len(ring) == xen.console.conring_size
    assert ring.endswith(b"(XEN) line 1999\n") and b"line 0000" not in ring
    assert xen.console.read_ring(clear=True) == ring
    assert xen.console.read_ring() == b""
    xen.console.printk("after")
    assert xen.console.read_ring() == b"(XEN) after\n"


# ---------------------------------------------------------------- vcpu_op
def test_vcpus_come_up_only_once_initialised(xen, make_domu):
    d = make_domu(16, vcpus=2)
    assert hypercall(xen, d, HYPERVISOR_vcpu_op, VCPUOP_is_up, 1)[0] == 0
    assert hypercall(xen, d, HYPERVISOR_vcpu_op, VCPUOP_up, 1)[0] == -EINVAL
    ctxt = VcpuGuestContext()
    assert hypercall(xen, d, HYPERVISOR_vcpu_op, VCPUOP_initialise, 1, ctxt)[0] == 0
    assert hypercall(xen, d, HYPERVISOR_vcpu_op, VCPUOP_initialise, 1, ctxt)[0] == -EEXIST
    assert hypercall(xen, d, HYPERVISOR_vcpu_op, VCPUOP_up, 1)[0] == 0
    assert hypercall(xen, d, HYPERVISOR_vcpu_op, VCPUOP_is_up, 1)[0] == 1
    assert d.vcpus[1].runstate == RUNSTATE_running       # on the idle pCPU
    assert hypercall(xen, d, HYPERVISOR_vcpu_op, VCPUOP_down, 1)[0] == 0
    assert d.vcpus[1].runstate == RUNSTATE_offline
    assert hypercall(xen, d, HYPERVISOR_vcpu_op, VCPUOP_is_up, 7)[0] == -ENOENT


def test_taking_the_last_vcpu_down_powers_the_domain_off(xen, make_domu):
    d = make_domu(16)
    assert hypercall(xen, d, HYPERVISOR_vcpu_op, VCPUOP_down, 0)[0] == 0
    assert d.is_shut_down and d.shutdown_code == SHUTDOWN_poweroff


def test_runstate_times_add_up_to_the_time_since_creation(host, xen, make_domu):
    d = make_domu(16)
    start = d.created_at
    host.clock.run(until=host.clock.now + 5 * NS_PER_MS)
    from hv.public.sched import SCHEDOP_block
    hypercall(xen, d, HYPERVISOR_sched_op, SCHEDOP_block)
    host.clock.run(until=host.clock.now + 7 * NS_PER_MS)
    rc, info = hypercall(xen, d, HYPERVISOR_vcpu_op, VCPUOP_get_runstate_info, 0)
    assert rc == 0 and info.state == RUNSTATE_blocked
    assert info.time[RUNSTATE_blocked] == 7 * NS_PER_MS
    assert sum(info.time) == host.clock.now - start


def test_periodic_timer_period_bounds(xen, make_domu):
    d = make_domu(16)
    def set_period(ns):
        return hypercall(xen, d, HYPERVISOR_vcpu_op, VCPUOP_set_periodic_timer, 0,
                         VcpuSetPeriodicTimer(period_ns=ns))[0]
    assert set_period(NS_PER_MS - 1) == -EINVAL
    assert set_period(10 * NS_PER_MS) == 0 and d.vcpus[0].periodic_period == 10 * NS_PER_MS


def test_a_periodic_timer_ticks_every_period_until_stopped(host, xen, make_domu):
    d = make_domu(16)
    _, bound = hypercall(xen, d, HYPERVISOR_event_channel_op, EVTCHNOP_bind_virq,
                         EvtchnBindVirq(virq=VIRQ_TIMER, vcpu=0))
    port, period = bound.port, 4 * NS_PER_MS
    pending_at = []

    def consume():
        if xen.evtchn.is_pending(d, port):
            pending_at.append(host.clock.now)
            d.shared_info[SHINFO_EVTCHN_PENDING + port // 8] &= ~(1 << port % 8) & 0xFF

    host.clock.run(until=host.clock.now + 50 * NS_PER_MS)
    start = host.clock.now
    assert hypercall(xen, d, HYPERVISOR_vcpu_op, VCPUOP_set_periodic_timer, 0,
                     VcpuSetPeriodicTimer(period_ns=period))[0] == 0
    consume()       # a period has passed since the last periodic event: one now
    for tick in range(1, 4):
        host.clock.run(until=start + tick * period - 1)
        consume()
        host.clock.run(until=start + tick * period)
        consume()
    assert pending_at == [start + k * period for k in range(4)]
    assert hypercall(xen, d, HYPERVISOR_vcpu_op, VCPUOP_stop_periodic_timer, 0)[0] == 0
    host.clock.run(until=start + 10 * period)
    consume()
    assert len(pending_at) == 4


def test_a_periodic_timer_runs_only_while_its_vcpu_runs(host, xen, dom0, make_domu):
    """Xen stops the periodic timer when the vCPU is switched out and
    catches up when it is switched in: a blocked vCPU is not woken by it,
    and a shut-down domain's timers leave the machine idle."""
    d = make_domu(16)
    v = d.vcpus[0]
    _, bound = hypercall(xen, d, HYPERVISOR_event_channel_op, EVTCHNOP_bind_virq,
                         EvtchnBindVirq(virq=VIRQ_TIMER, vcpu=0))
    port, period = bound.port, 10 * NS_PER_MS
    host.clock.run(until=host.clock.now + period)
    assert hypercall(xen, d, HYPERVISOR_vcpu_op, VCPUOP_set_periodic_timer, 0,
                     VcpuSetPeriodicTimer(period_ns=period))[0] == 0
    # The guest's upcall handler takes the first tick.
    d.shared_info[SHINFO_EVTCHN_PENDING + port // 8] &= ~(1 << port % 8) & 0xFF
    d.shared_info[v.vcpu_info_offset + VCPUINFO_UPCALL_PENDING] = 0
    d.shared_info[v.vcpu_info_offset + VCPUINFO_PENDING_SEL:
                  v.vcpu_info_offset + VCPUINFO_PENDING_SEL + 8] = bytes(8)
    assert hypercall(xen, d, HYPERVISOR_sched_op, SCHEDOP_block)[0] == 0
    host.clock.run(until=host.clock.now + 5 * period)
    assert v.runstate == RUNSTATE_blocked and not xen.evtchn.is_pending(d, port)
    # Woken by something else, it gets the overdue tick at once.
    _, unbound = hypercall(xen, dom0, HYPERVISOR_event_channel_op, EVTCHNOP_alloc_unbound,
                           EvtchnAllocUnbound(dom=DOMID_SELF, remote_dom=d.domid))
    _, other = hypercall(xen, d, HYPERVISOR_event_channel_op, EVTCHNOP_bind_interdomain,
                         EvtchnBindInterdomain(remote_dom=0, remote_port=unbound.port))
    assert v.runstate == RUNSTATE_running and xen.evtchn.is_pending(d, port)
    # A domain that has shut down has nothing left ticking.
    assert hypercall(xen, d, HYPERVISOR_sched_op, SCHEDOP_shutdown,
                     SchedShutdown(reason=SHUTDOWN_poweroff))[0] == 0
    d.shared_info[SHINFO_EVTCHN_PENDING + port // 8] &= ~(1 << port % 8) & 0xFF
    host.clock.run(until=host.clock.now + 5 * period)
    assert v.periodic_timer is None and v.runstate == RUNSTATE_offline
    assert not xen.evtchn.is_pending(d, port)


def test_singleshot_timer_is_only_for_the_calling_vcpu(host, xen, make_domu):
    d = make_domu(16, vcpus=2)
    assert hypercall(xen, d, HYPERVISOR_vcpu_op, VCPUOP_stop_periodic_timer, 0)[0] == 0
    _, bound = hypercall(xen, d, HYPERVISOR_event_channel_op, EVTCHNOP_bind_virq,
                         EvtchnBindVirq(virq=VIRQ_TIMER, vcpu=0))
    later = host.clock.now + 3 * NS_PER_MS
    assert hypercall(xen, d, HYPERVISOR_vcpu_op, VCPUOP_set_singleshot_timer, 1,
                     VcpuSetSingleshotTimer(timeout_abs_ns=later))[0] == -EINVAL
    assert hypercall(xen, d, HYPERVISOR_vcpu_op, VCPUOP_set_singleshot_timer, 0,
                     VcpuSetSingleshotTimer(timeout_abs_ns=later))[0] == 0
    host.clock.run(until=later - 1)
    assert not xen.evtchn.is_pending(d, bound.port)
    host.clock.run(until=later)
    assert xen.evtchn.is_pending(d, bound.port)


def test_a_wrapped_timer_deadline_fires_after_100ms(host, xen, make_domu):
    d = make_domu(16)
    assert hypercall(xen, d, HYPERVISOR_vcpu_op, VCPUOP_stop_periodic_timer, 0)[0] == 0
    _, bound = hypercall(xen, d, HYPERVISOR_event_channel_op, EVTCHNOP_bind_virq,
                         EvtchnBindVirq(virq=VIRQ_TIMER, vcpu=0))
    now = host.clock.now
    assert hypercall(xen, d, HYPERVISOR_set_timer_op, -5)[0] == 0
    host.clock.run(until=now + 100 * NS_PER_MS - 1)
    assert not xen.evtchn.is_pending(d, bound.port)
    host.clock.run(until=now + 100 * NS_PER_MS)
    assert xen.evtchn.is_pending(d, bound.port)


# ---------------------------------------------------------------- watchdogs
def test_watchdogs(host, xen, make_domu):
    d = make_domu(16)
    def wd(i, t):
        return hypercall(xen, d, HYPERVISOR_sched_op, SCHEDOP_watchdog,
                         SchedWatchdog(id=i, timeout=t))[0]
    assert wd(0, 30) == 1 and wd(0, 30) == 2 and wd(0, 30) == -ENOSPC
    assert wd(3, 10) == -EINVAL
    assert wd(2, 0) == 0                         # stop the second
    assert wd(2, 5) == -EINVAL                   # it is gone
    host.clock.run(until=host.clock.now + 20 * NS_PER_S)
    assert wd(1, 30) == 0                        # kicked in time
    assert not d.is_shut_down
    host.clock.run(until=host.clock.now + 31 * NS_PER_S)
    assert d.is_shut_down and d.shutdown_code == SHUTDOWN_watchdog
    assert b"Watchdog timer fired for domain %d" % d.domid in xen.console.read_ring()


def test_a_shut_down_domain_ignores_its_watchdog(host, xen, make_domu):
    d = make_domu(16)
    hypercall(xen, d, HYPERVISOR_sched_op, SCHEDOP_watchdog, SchedWatchdog(id=0, timeout=1))
    hypercall(xen, d, HYPERVISOR_sched_op, SCHEDOP_shutdown, SchedShutdown(reason=SHUTDOWN_poweroff))
    host.clock.run(until=host.clock.now + 2 * NS_PER_S)
    assert d.shutdown_code == SHUTDOWN_poweroff


def test_unknown_sched_op(xen, dom0):
    assert hypercall(xen, dom0, HYPERVISOR_sched_op, 42)[0] == -ENOSYS
    assert hypercall(xen, dom0, HYPERVISOR_sched_op, SCHEDOP_shutdown, "x")[0] == -EFAULT


# ---------------------------------------------------------------- debug keys
@pytest.mark.parametrize("key, expect", [
    ("h", "key 'e' (ascii '65') => dump evtchn info"),
    ("q", "General information for domain 0:"),
    ("e", "Event channel information for domain 0:"),
    ("g", "grant-table for remote d0 (v1)"),
    ("r", "Scheduler: SMP Credit Scheduler (credit)"),
])
def test_debug_keys_dump_into_the_console_ring(xen, key, expect):
    report = xen.debug_key(key)
    assert expect in report
    assert expect.encode() in xen.console.read_ring()


def test_debug_key_q_notifies_guests_with_virq_debug(xen, make_domu):
    from hv.public.xen import VIRQ_DEBUG
    d = make_domu(16, vcpus=2)
    _, bound = hypercall(xen, d, HYPERVISOR_event_channel_op, EVTCHNOP_bind_virq,
                         EvtchnBindVirq(virq=VIRQ_DEBUG, vcpu=1))
    report = xen.debug_key("q")
    assert f"Notifying guest {d.domid}:1 (virq 1, port {bound.port})" in report
    assert f"Notifying guest {d.domid}:0 (virq 1, port 0)" in report
    assert xen.evtchn.is_pending(d, bound.port)
