"""The modelled PV kernel: how it boots, takes events, and runs its program,
seen through the machine's bytes and the trace."""

from __future__ import annotations

import struct

import pytest

from hv.guest.image import EVENT_CALLBACK, KERNEL_ENTRY, SECONDARY_ENTRY
from hv.guest.kernel import INVALID_P2M_ENTRY
from hv.public.callback import CALLBACKTYPE_event, CALLBACKTYPE_failsafe
from hv.public.event_channel import (
    EVTCHNOP_alloc_unbound, EVTCHNOP_bind_interdomain, EVTCHNOP_bind_virq, EVTCHNOP_send,
    EvtchnAllocUnbound, EvtchnBindInterdomain, EvtchnBindVirq, EvtchnSend,
)
from hv.public.io.console import XenconsInterface
from hv.public.sched import SHUTDOWN_crash, SHUTDOWN_poweroff, SHUTDOWN_reboot
from hv.public.vcpu import RUNSTATE_blocked, RUNSTATE_running
from hv.public.xen import (
    DOMID_SELF, SHINFO_EVTCHN_MASK, SHINFO_EVTCHN_PENDING, VCPUINFO_PENDING_SEL,
    VCPUINFO_UPCALL_MASK, VCPUINFO_UPCALL_PENDING, VIRQ_DOM_EXC, VIRQ_TIMER,
)
from hv.xen.timer import NS_PER_MS, NS_PER_S
from tests.calls import boot_guest as boot
from tests.conftest import evtchn, make_host, ok
from xl.dombuild import build_pv_domain
from xl.privcmd import Privcmd


@pytest.fixture
def host():
    return make_host(cpus=4, memory=2 << 30)


def console_text(host, built) -> bytes:
    ring = host.xen.ram.peek(built.console_mfn)
    out_cons, out_prod = struct.unpack_from("<II", ring, XenconsInterface.offsetof("out_cons"))
    out = XenconsInterface.offsetof("out")
    return bytes(ring[out + i % 2048] for i in range(out_cons, out_prod))


def guest_ops(host, d, since=0):
    return [(r.vcpu, r.name) for r in host.xen.trace.since(since)
            if r.kind == "guest" and r.domid == d.domid]


# ---------------------------------------------------------------- boot
def test_boot_follows_the_manual(host):
    mark = host.xen.trace.seq
    d, built = boot(host, ["idle"], vcpus=2)
    ops = [name for vcpu, name in guest_ops(host, d, mark) if vcpu == 0]
    assert ops[:10] == ["start_info", "callbacks", "shared_info", "bind_timer", "bind_timer",
                        "bind_ipi", "bind_ipi", "up", "enable_events", "banner"]
    v0, v1 = d.vcpus
    assert v0.callbacks[CALLBACKTYPE_event] == EVENT_CALLBACK and CALLBACKTYPE_failsafe in v0.callbacks
    # Its own vCPU 1 came up at the secondary entry, with the callbacks.
    assert v1.context.user_regs.rip == SECONDARY_ENTRY and v1.callbacks[CALLBACKTYPE_event] == EVENT_CALLBACK
    assert v0.context.user_regs.rip == KERNEL_ENTRY
    assert v0.virq_to_evtchn[VIRQ_TIMER] and v1.virq_to_evtchn[VIRQ_TIMER]
    info = d.shared_info
    assert info[v0.vcpu_info_offset + VCPUINFO_UPCALL_MASK] == 0     # events open
    assert console_text(host, built).startswith(b"xenlab PV kernel: domain %d" % d.domid)
    # With nothing to do, both vCPUs block.
    host.run(until=host.now + 50 * NS_PER_MS)
    assert v0.runstate == v1.runstate == RUNSTATE_blocked


def test_a_domain_without_the_kernel_runs_unmodelled_code(host):
    built = build_pv_domain(Privcmd(host.xen), memory_kib=16 * 1024)
    d = host.xen.domains.get(built.domid)
    host.run(until=host.now + 20 * NS_PER_MS)
    assert d.guest is None and d.vcpus[0].runstate == RUNSTATE_running
    assert not d.vcpus[0].virq_to_evtchn[VIRQ_TIMER]


def test_a_workload_the_kernel_cannot_read_panics_it(host):
    d, built = boot(host, ["jump 3"])
    assert d.is_shut_down and d.shutdown_code == SHUTDOWN_crash
    assert b"Kernel panic - not syncing: workload line 1, column 1: unknown operation 'jump'" \
        in console_text(host, built)


# ---------------------------------------------------------------- events
def offer_port(host, d) -> tuple[int, int]:
    """A channel from dom0 to the guest: (guest port, dom0 port)."""
    xen = host.xen
    port = ok(evtchn(xen, d, EVTCHNOP_alloc_unbound,
                     EvtchnAllocUnbound(dom=DOMID_SELF, remote_dom=0))).port
    local = ok(evtchn(xen, host.dom0, EVTCHNOP_bind_interdomain,
                      EvtchnBindInterdomain(remote_dom=d.domid, remote_port=port))).local_port
    return port, local


def test_an_event_wakes_the_kernel_which_takes_it_by_upcall(host):
    d, _ = boot(host, ["idle"])
    v = d.vcpus[0]
    host.run(until=host.now + 10 * NS_PER_MS)
    port, local = offer_port(host, d)
    host.run(until=host.now + NS_PER_MS)
    assert v.runstate == RUNSTATE_blocked
    mark = host.xen.trace.seq
    assert evtchn(host.xen, host.dom0, EVTCHNOP_send, EvtchnSend(port=local))[0] == 0
    upcalls = [r.args for r in host.xen.trace.since(mark) if r.kind == "guest" and r.name == "upcall"]
    # One upcall: the port, and the timer tick a vCPU gets on waking when
    # its 10 ms period has gone by.
    assert upcalls == [tuple(sorted((port, v.virq_to_evtchn[VIRQ_TIMER])))]
    said = [r.result for r in host.xen.trace.since(mark) if r.name == "upcall"][0]
    assert said == (f"cleared upcall_pending, selector 0x1, pending ports "
                    f"{','.join(map(str, upcalls[0]))}")
    info = d.shared_info
    assert not info[SHINFO_EVTCHN_PENDING + port // 8] & (1 << port % 8)
    assert info[v.vcpu_info_offset + VCPUINFO_UPCALL_PENDING] == 0
    assert struct.unpack_from("<Q", info, v.vcpu_info_offset + VCPUINFO_PENDING_SEL)[0] == 0
    assert info[v.vcpu_info_offset + VCPUINFO_UPCALL_MASK] == 0
    assert v.runstate == RUNSTATE_blocked          # nothing to do: blocked again


def test_a_masked_port_stays_pending_and_unhandled(host):
    d, _ = boot(host, ["idle"])
    port, local = offer_port(host, d)
    d.shared_info[SHINFO_EVTCHN_MASK + port // 8] |= 1 << port % 8
    mark = host.xen.trace.seq
    evtchn(host.xen, host.dom0, EVTCHNOP_send, EvtchnSend(port=local))
    host.run(until=host.now + NS_PER_MS)
    assert not [r for r in host.xen.trace.since(mark) if r.kind == "guest" and r.name == "upcall"]
    assert d.shared_info[SHINFO_EVTCHN_PENDING + port // 8] & (1 << port % 8)


def test_a_running_kernel_takes_its_timer_tick_every_10ms(host):
    d, _ = boot(host, ["burn 100%"])
    ticks = d.guest.vcpus[0].ticks
    host.run(until=host.now + 100 * NS_PER_MS)
    assert d.guest.vcpus[0].ticks - ticks == pytest.approx(10, abs=1)


# ---------------------------------------------------------------- the program
def test_echo_fills_the_console_ring_and_notifies(host):
    d, built = boot(host, ["echo hello", "echo world"])
    host.run(until=host.now + NS_PER_MS)
    assert console_text(host, built).endswith(b"hello\nworld\n")
    console_port = built.console_port
    assert host.xen.evtchn.is_pending(d, console_port) is False       # the send went to dom0's end
    sends = [r for r in host.xen.trace if r.domid == d.domid and r.name == "event_channel_op:send"]
    # The only other channel it sends on is the store's (its xenbus starting).
    assert any(r.args[1].port == console_port for r in sends)
    assert all(r.args[1].port in (console_port, built.store_port) for r in sends)


def test_dom0_echoes_through_xens_console():
    host = make_host(cpus=2, dom0_workload=["echo dom0 says hi"])
    host.run(until=host.now + NS_PER_MS)
    assert b"dom0 says hi\n" in bytes(host.xen.console.serial)


def test_sleep_blocks_for_its_time(host):
    d, built = boot(host, ["sleep 100ms", "echo woke"])
    start = host.now
    host.run(until=start + 99 * NS_PER_MS)
    assert b"woke" not in console_text(host, built)
    host.run(until=start + 102 * NS_PER_MS)
    assert b"woke" in console_text(host, built)
    blocked = d.vcpus[0].runstate_snapshot(host.now)[2][RUNSTATE_blocked]
    assert blocked >= 99 * NS_PER_MS


def test_loop_repeats_and_compute_takes_cpu_time(host):
    d, built = boot(host, ["compute 5ms", "echo tick", "sleep 5ms", "loop"])
    start_cpu = d.vcpus[0].runstate_snapshot(host.now)[2][RUNSTATE_running]
    host.run(until=host.now + 200 * NS_PER_MS)
    assert console_text(host, built).count(b"tick\n") == pytest.approx(20, abs=2)
    used = d.vcpus[0].runstate_snapshot(host.now)[2][RUNSTATE_running] - start_cpu
    assert used == pytest.approx(100 * NS_PER_MS, rel=0.05)


def test_burn_at_a_duty_cycle_on_every_vcpu(host):
    d, _ = boot(host, ["burn 50%"], vcpus=2)
    host.run(until=host.now + 100 * NS_PER_MS)
    before = [v.runstate_snapshot(host.now)[2][RUNSTATE_running] for v in d.vcpus]
    host.run(until=host.now + 2 * NS_PER_S)
    used = [v.runstate_snapshot(host.now)[2][RUNSTATE_running] - b for v, b in zip(d.vcpus, before)]
    assert all(u / (2 * NS_PER_S) == pytest.approx(0.5, rel=0.03) for u in used)


@pytest.mark.parametrize("reason, code", [("poweroff", SHUTDOWN_poweroff),
                                          ("reboot", SHUTDOWN_reboot)])
def test_shutdown_with_a_reason_tells_dom0(host, reason, code):
    port = ok(evtchn(host.xen, host.dom0, EVTCHNOP_bind_virq,
                     EvtchnBindVirq(virq=VIRQ_DOM_EXC, vcpu=0))).port
    d, _ = boot(host, ["sleep 10ms", f"shutdown {reason}"])
    host.run(until=host.now + 20 * NS_PER_MS)
    assert d.is_shut_down and d.shutdown_code == code
    assert host.xen.evtchn.is_pending(host.dom0, port)


def test_crash_panics_on_the_console(host):
    d, built = boot(host, ["echo about to", "crash"])
    host.run(until=host.now + NS_PER_MS)
    assert d.shutdown_code == SHUTDOWN_crash
    assert b"about to\nKernel panic - not syncing: crash requested by the workload\n" in \
        console_text(host, built)


def test_balloon_gives_memory_back_and_takes_it_again(host):
    d, _ = boot(host, ["balloon 8M", "echo small", "sleep 10ms", "balloon 16M", "echo big"],
                memory_mib=16)
    host.run(until=host.now + 5 * NS_PER_MS)
    k = d.guest
    assert d.tot_pages == 4096 - 2048 and len(k.ballooned) == 2048
    given = k.ballooned[0]
    assert k.p2m_get(given) == INVALID_P2M_ENTRY and host.xen.p2m.lookup(d, given) is None
    host.run(until=host.now + 20 * NS_PER_MS)
    assert d.tot_pages == 4096 and not k.ballooned
    assert k.p2m_get(given) == host.xen.p2m.lookup(d, given)


def test_each_vcpu_takes_only_its_own_ports(host):
    """Both vCPUs' timer ports sit in selector word 0; each vCPU's upcall
    handles its own, as Linux's per-CPU binding mask has it."""
    d, _ = boot(host, ["burn 100%"], vcpus=2)
    mark = host.xen.trace.seq
    host.run(until=host.now + 200 * NS_PER_MS)
    own = {v.vcpu_id: {v.virq_to_evtchn[VIRQ_TIMER], d.guest.vcpus[v.vcpu_id].ipi_port}
           for v in d.vcpus}
    own[0] |= {d.guest.start_info.console_evtchn}
    for r in host.xen.trace.since(mark):
        if r.kind == "guest" and r.name == "upcall" and r.domid == d.domid:
            assert set(r.args) <= own[r.vcpu]
    ticks = [st.ticks for st in d.guest.vcpus]
    assert all(t >= 18 for t in ticks)


def test_a_zero_compute_is_done_at_once(host):
    d, built = boot(host, ["echo a", "compute 0ms", "echo b"])
    host.run(until=host.now + NS_PER_MS)
    assert console_text(host, built).endswith(b"a\nb\n") and not d.is_shut_down


def test_resetting_a_vcpu_in_the_middle_of_a_compute_forgets_it(host):
    from hv.public.domctl import XEN_DOMCTL_setvcpucontext, XenDomctlVcpucontext
    from tests.calls import domctl
    d, _ = boot(host, ["burn 50%"], vcpus=2)
    host.run(until=host.now + 3 * NS_PER_MS)
    for vcpu in (1, 0):
        assert domctl(host.xen, host.dom0, XEN_DOMCTL_setvcpucontext, d.domid,
                      XenDomctlVcpucontext(vcpu=vcpu, ctxt=None))[0] == 0
        host.run(until=host.now + 20 * NS_PER_MS)
    assert d.guest is None and all(not v.is_running for v in d.vcpus)


def test_a_fault_in_a_modelled_kernel_is_raised_or_contained_as_the_host_says():
    """A Python error inside a guest's kernel is a fault of the model: in
    tests it is raised; a host that contains faults (the host service's)
    crashes that domain alone and runs on."""
    import pytest as _pytest
    from hv.host import Host
    from hv.xen.hypervisor import MiB
    from xl.toolstack import Toolstack

    def broken(self, v, text):
        raise IndexError("a bug in the model")

    for contain in (False, True):
        ts = Toolstack(Host(cpus=2, memory=1024 * MiB, dom0_memory=256 * MiB))
        ts.host.xen.contain_guest_faults = contain
        ts.create({"name": "healthy", "memory": 16, "workload": ["sleep 5ms", "echo fine", "idle"]})
        ts.create({"name": "faulty", "memory": 16, "workload": ["sleep 1ms", "echo boom", "idle"]})
        ts.host.run(until=ts.host.now + 100_000)          # booted, asleep
        kernel = ts.host.xen.domains.get(ts.domid_of("faulty")).guest
        kernel.op_echo = broken.__get__(kernel)
        if not contain:
            with _pytest.raises(IndexError, match="a bug in the model"):
                ts.host.run(until=ts.host.now + 20_000_000)
            continue
        ts.host.run(until=ts.host.now + 20_000_000)
        states = {d["name"]: d["state"] for d in ts.list_domains()}
        assert states["faulty"] == "---sc-" and states["healthy"] != "---sc-"
        assert "fine" in ts.console_output("healthy")
        assert "guest kernel fault: IndexError: a bug in the model" in ts.dmesg(False)
