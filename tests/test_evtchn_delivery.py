"""Two-level event delivery on the bytes of shared_info (common/event_2l.c),
and what waits for it: SCHEDOP_block, SCHEDOP_poll, set_timer_op, and
VIRQ_DOM_EXC in dom0 (common/sched/core.c, common/domain.c)."""

from __future__ import annotations

import pytest

from hv.public.errno import EINVAL
from hv.public.event_channel import (
    EVTCHNOP_alloc_unbound, EVTCHNOP_bind_interdomain, EVTCHNOP_bind_virq, EVTCHNOP_send,
    EVTCHNOP_unmask, EvtchnAllocUnbound, EvtchnBindInterdomain, EvtchnBindVirq, EvtchnSend,
    EvtchnUnmask,
)
from hv.public.grant_table import (
    GNTMAP_host_map, GNTTABOP_map_grant_ref, GNTTABOP_unmap_grant_ref, GNTST_okay,
    GnttabMapGrantRef, GnttabUnmapGrantRef,
)
from hv.public.sched import (
    SCHEDOP_block, SCHEDOP_poll, SCHEDOP_remote_shutdown, SCHEDOP_shutdown, SHUTDOWN_crash,
    SHUTDOWN_poweroff, SHUTDOWN_reboot, SHUTDOWN_suspend, SchedPoll, SchedRemoteShutdown,
    SchedShutdown,
)
from hv.public.vcpu import (
    RUNSTATE_blocked, RUNSTATE_runnable, RUNSTATE_running, VCPUOP_stop_periodic_timer,
)
from hv.public.xen import (
    DOMID_SELF, HYPERVISOR_grant_table_op, HYPERVISOR_set_timer_op, HYPERVISOR_vcpu_op,
    SHINFO_EVTCHN_MASK, SHINFO_EVTCHN_PENDING, SHINFO_VCPU_INFO, VCPU_INFO_SIZE, VCPUINFO_PENDING_SEL, VCPUINFO_UPCALL_MASK, VCPUINFO_UPCALL_PENDING,
    VIRQ_DOM_EXC, VIRQ_TIMER, SharedInfo,
)
from hv.guest.grant_table import GuestGrantTable
from hv.xen.domain import VPF_blocked
from hv.xen.timer import NS_PER_MS
from tests.conftest import evtchn, hypercall, ok
from tests.calls import sched
from xl.dombuild import destroy_domain

MS = NS_PER_MS


# ---------------------------------------------------------------- helpers
def set_timer(xen, who, when):
    return hypercall(xen, who, HYPERVISOR_set_timer_op, when)[0]


def poll(xen, who, ports, timeout=0, nr_ports=None):
    ports = tuple(ports)
    return sched(xen, who, SCHEDOP_poll, SchedPoll(
        ports=ports, nr_ports=len(ports) if nr_ports is None else nr_ports, timeout=timeout))


def send(xen, who, port):
    return evtchn(xen, who, EVTCHNOP_send, EvtchnSend(port=port))[0]


def unmask(xen, who, port):
    return evtchn(xen, who, EVTCHNOP_unmask, EvtchnUnmask(port=port))[0]


def bind_virq(xen, who, virq, vcpu=0):
    return ok(evtchn(xen, who, EVTCHNOP_bind_virq, EvtchnBindVirq(virq=virq, vcpu=vcpu))).port


def info(d) -> SharedInfo:
    return SharedInfo.unpack(bytes(d.shared_info))


def pending_words(d) -> dict[int, int]:
    """The non-zero words of evtchn_pending."""
    return {i: w for i, w in enumerate(info(d).evtchn_pending) if w}


def vcpu_bits(d, vcpu=0) -> tuple[int, int]:
    """(evtchn_pending_sel, evtchn_upcall_pending) of one vCPU."""
    vi = info(d).vcpu_info[vcpu]
    return vi.evtchn_pending_sel, vi.evtchn_upcall_pending


def mask(d, port):
    d.shared_info[SHINFO_EVTCHN_MASK + port // 8] |= 1 << port % 8


def guest_clear_upcall(d, vcpu=0):
    """What a guest's upcall handler does first: clear upcall_pending and
    take the selector."""
    base = SHINFO_VCPU_INFO + vcpu * VCPU_INFO_SIZE
    d.shared_info[base + VCPUINFO_UPCALL_PENDING] = 0
    d.shared_info[base + VCPUINFO_PENDING_SEL:base + VCPUINFO_PENDING_SEL + 8] = bytes(8)


def guest_clear_pending(d, port):
    d.shared_info[SHINFO_EVTCHN_PENDING + port // 8] &= ~(1 << port % 8) & 0xFF


def upcall_mask(d, vcpu=0) -> int:
    return d.shared_info[SHINFO_VCPU_INFO + vcpu * VCPU_INFO_SIZE + VCPUINFO_UPCALL_MASK]


def is_blocked(v) -> bool:
    return bool(v.pause_flags & VPF_blocked) and v.runstate == RUNSTATE_blocked


def is_awake(v) -> bool:
    """Not blocked, and running or waiting for a pCPU."""
    return not v.pause_flags & VPF_blocked and v.runstate in (RUNSTATE_running, RUNSTATE_runnable)


def oneshot_timer_port(xen, d) -> int:
    """VIRQ_TIMER bound, with the 10 ms periodic timer stopped, as a
    tickless kernel runs: the port goes pending only for one-shot timers."""
    assert hypercall(xen, d, HYPERVISOR_vcpu_op, VCPUOP_stop_periodic_timer, 0)[0] == 0
    return bind_virq(xen, d, VIRQ_TIMER)


def offer(xen, dom0, domu, at=None) -> tuple[int, int]:
    """Connect a domU port (the lowest free one, or ``at``) to dom0: returns
    (domU port, dom0 port). dom0 sending on its port raises the domU's."""
    while True:
        port = ok(evtchn(xen, domu, EVTCHNOP_alloc_unbound,
                         EvtchnAllocUnbound(dom=DOMID_SELF, remote_dom=0))).port
        if at is None or port == at:
            break
        assert port < at
    local = ok(evtchn(xen, dom0, EVTCHNOP_bind_interdomain, EvtchnBindInterdomain(
        remote_dom=domu.domid, remote_port=port))).local_port
    return port, local


def evtchn_records(xen, since):
    return [(r.domid, r.vcpu, r.args, r.result) for r in xen.trace.since(since)
            if r.kind == "evtchn" and r.name == "pending"]


@pytest.fixture
def domu(make_domu):
    return make_domu()


@pytest.fixture
def chan(xen, dom0, domu):
    """domU port 3, raised by dom0 sending on its end."""
    return offer(xen, dom0, domu)


# ================================================================ the two levels
def test_send_sets_the_pending_bit(xen, dom0, domu, chan):
    uport, dport = chan
    assert uport == 3
    assert send(xen, dom0, dport) == 0
    assert domu.shared_info[SHINFO_EVTCHN_PENDING] == 1 << 3
    assert pending_words(domu) == {0: 1 << 3}
    assert xen.evtchn.is_pending(domu, uport)


def test_unmasked_port_raises_selector_and_upcall(xen, dom0, domu, chan):
    uport, dport = chan
    assert send(xen, dom0, dport) == 0
    assert vcpu_bits(domu) == (1 << (uport // 64), 1)
    # Raised even while the guest has upcalls masked: the mask only holds
    # off the callback, not the flag.
    assert upcall_mask(domu) == 1


def test_masked_port_sets_only_the_pending_bit(xen, dom0, domu, chan):
    uport, dport = chan
    mask(domu, uport)
    assert send(xen, dom0, dport) == 0
    assert pending_words(domu) == {0: 1 << uport}
    assert vcpu_bits(domu) == (0, 0)


def test_second_send_while_pending_changes_nothing(xen, dom0, domu, chan):
    uport, dport = chan
    assert send(xen, dom0, dport) == 0
    guest_clear_upcall(domu)
    before = bytes(domu.shared_info)
    # The pending bit is still set: an edge only on 0 -> 1.
    assert send(xen, dom0, dport) == 0
    assert bytes(domu.shared_info) == before
    assert vcpu_bits(domu) == (0, 0)


def test_unmask_of_a_pending_port_raises_selector_and_upcall(xen, dom0, domu, chan):
    uport, dport = chan
    mask(domu, uport)
    assert send(xen, dom0, dport) == 0
    assert unmask(xen, domu, uport) == 0
    assert not xen.evtchn.is_masked(domu, uport)
    assert vcpu_bits(domu) == (1, 1)
    assert pending_words(domu) == {0: 1 << uport}


def test_unmask_of_a_port_not_pending_raises_nothing(xen, domu, chan):
    uport, _ = chan
    mask(domu, uport)
    assert unmask(xen, domu, uport) == 0
    assert not xen.evtchn.is_masked(domu, uport)
    assert vcpu_bits(domu) == (0, 0)
    assert pending_words(domu) == {}


def test_unmask_with_the_selector_already_set_raises_no_upcall(xen, dom0, domu):
    a, da = offer(xen, dom0, domu)
    b, db = offer(xen, dom0, domu)
    mask(domu, b)
    assert send(xen, dom0, db) == 0
    assert send(xen, dom0, da) == 0
    # The guest has taken the upcall but not yet scanned the selector's word.
    domu.shared_info[SHINFO_VCPU_INFO + VCPUINFO_UPCALL_PENDING] = 0
    assert unmask(xen, domu, b) == 0
    assert vcpu_bits(domu) == (1, 0)


def test_ports_in_different_words_set_different_selector_bits(xen, dom0, domu):
    low, dlow = offer(xen, dom0, domu)
    high, dhigh = offer(xen, dom0, domu, at=70)
    assert (low, high) == (3, 70)
    assert send(xen, dom0, dlow) == 0
    assert vcpu_bits(domu) == (0b01, 1)
    assert send(xen, dom0, dhigh) == 0
    assert vcpu_bits(domu) == (0b11, 1)
    assert pending_words(domu) == {0: 1 << 3, 1: 1 << (70 - 64)}


def test_word_of_a_high_port_alone(xen, dom0, domu):
    high, dhigh = offer(xen, dom0, domu, at=70)
    assert send(xen, dom0, dhigh) == 0
    assert vcpu_bits(domu) == (0b10, 1)
    assert domu.shared_info[SHINFO_EVTCHN_PENDING + 8] == 1 << 6


def test_guest_clearing_the_bits_lets_the_next_send_raise_again(xen, dom0, domu, chan):
    uport, dport = chan
    assert send(xen, dom0, dport) == 0
    guest_clear_upcall(domu)
    guest_clear_pending(domu, uport)
    assert pending_words(domu) == {} and vcpu_bits(domu) == (0, 0)
    assert send(xen, dom0, dport) == 0
    assert pending_words(domu) == {0: 1 << uport}
    assert vcpu_bits(domu) == (1, 1)


def test_guest_clearing_only_pending_raises_pending_but_no_new_upcall(xen, dom0, domu, chan):
    uport, dport = chan
    assert send(xen, dom0, dport) == 0
    guest_clear_pending(domu, uport)
    domu.shared_info[SHINFO_VCPU_INFO + VCPUINFO_UPCALL_PENDING] = 0
    # The selector bit is still set, so the word is already flagged.
    assert send(xen, dom0, dport) == 0
    assert pending_words(domu) == {0: 1 << uport}
    assert vcpu_bits(domu) == (1, 0)


# ================================================================ SCHEDOP_block
def test_block_enables_upcalls_and_blocks(xen, domu):
    v = domu.vcpus[0]
    assert upcall_mask(domu) == 1
    assert sched(xen, domu, SCHEDOP_block) == 0
    assert upcall_mask(domu) == 0
    assert is_blocked(v)


def test_event_wakes_a_blocked_vcpu(xen, dom0, domu, chan):
    uport, dport = chan
    v = domu.vcpus[0]
    assert sched(xen, domu, SCHEDOP_block) == 0
    assert is_blocked(v)
    assert send(xen, dom0, dport) == 0
    assert is_awake(v)
    assert vcpu_bits(domu) == (1, 1)


def test_masked_port_does_not_wake_a_blocked_vcpu(xen, dom0, domu, chan):
    uport, dport = chan
    mask(domu, uport)
    v = domu.vcpus[0]
    assert sched(xen, domu, SCHEDOP_block) == 0
    assert send(xen, dom0, dport) == 0
    assert is_blocked(v)
    assert pending_words(domu) == {0: 1 << uport}
    assert vcpu_bits(domu) == (0, 0)


def test_block_with_an_event_already_pending_returns_at_once(xen, dom0, domu, chan):
    uport, dport = chan
    v = domu.vcpus[0]
    assert send(xen, dom0, dport) == 0
    assert sched(xen, domu, SCHEDOP_block) == 0
    assert is_awake(v)
    assert upcall_mask(domu) == 0


def test_block_with_only_a_masked_port_pending_blocks(xen, dom0, domu, chan):
    uport, dport = chan
    mask(domu, uport)
    assert send(xen, dom0, dport) == 0
    assert sched(xen, domu, SCHEDOP_block) == 0
    assert is_blocked(domu.vcpus[0])


# ================================================================ SCHEDOP_poll
def test_poll_returns_at_once_when_a_listed_port_is_pending(xen, dom0, domu):
    a, da = offer(xen, dom0, domu)
    b, db = offer(xen, dom0, domu)
    mask(domu, b)                       # pending, yet no upcall
    assert send(xen, dom0, db) == 0
    assert poll(xen, domu, [a, b]) == 0
    assert is_awake(domu.vcpus[0])


@pytest.mark.parametrize("bad", [64, 5000, 0xFFFFFFFF])
def test_poll_port_beyond_the_valid_ones_is_einval(xen, dom0, domu, chan, bad):
    uport, _ = chan
    assert poll(xen, domu, [uport, bad]) == -EINVAL
    assert is_awake(domu.vcpus[0])


@pytest.mark.parametrize("bad", [0, 10])
def test_poll_port_not_in_use_is_einval(xen, domu, chan, bad):
    # evtchn_port_poll(): -EINVAL unless the channel is usable, so the
    # reserved port 0 and a free port are refused like a missing one.
    uport, _ = chan
    assert poll(xen, domu, [uport, bad]) == -EINVAL
    assert is_awake(domu.vcpus[0])


def test_poll_more_than_128_ports_is_einval(xen, dom0, domu, chan):
    uport, dport = chan
    assert send(xen, dom0, dport) == 0
    # Refused before a single port is looked at, though this one is pending.
    assert poll(xen, domu, [uport] * 129) == -EINVAL
    assert poll(xen, domu, [uport] * 128) == 0
    assert is_awake(domu.vcpus[0])


def test_poll_blocks_until_a_listed_port_goes_pending_even_masked(xen, dom0, domu, chan):
    uport, dport = chan
    mask(domu, uport)
    v = domu.vcpus[0]
    assert poll(xen, domu, [uport]) == 0
    assert is_blocked(v)
    assert send(xen, dom0, dport) == 0
    assert is_awake(v)
    assert vcpu_bits(domu) == (0, 0)


def test_poll_does_not_change_the_upcall_mask(xen, domu, chan):
    uport, _ = chan
    assert poll(xen, domu, [uport]) == 0
    assert upcall_mask(domu) == 1


def test_single_port_poll_ignores_another_masked_port(xen, dom0, domu):
    a, _ = offer(xen, dom0, domu)
    b, db = offer(xen, dom0, domu)
    mask(domu, b)
    assert poll(xen, domu, [a]) == 0
    assert send(xen, dom0, db) == 0
    assert is_blocked(domu.vcpus[0])


def test_multi_port_poll_wakes_on_any_port_going_pending(xen, dom0, domu):
    # evtchn_check_pollers(): a vCPU polling several ports has poll_evtchn
    # -1 and is woken by any port of its domain going pending.
    a, _ = offer(xen, dom0, domu)
    b, _ = offer(xen, dom0, domu)
    c, dc = offer(xen, dom0, domu)
    mask(domu, c)
    assert poll(xen, domu, [a, b]) == 0
    assert send(xen, dom0, dc) == 0
    assert is_awake(domu.vcpus[0])


def test_poll_timeout_wakes_at_the_absolute_deadline(host, xen, domu, chan):
    uport, _ = chan
    v = domu.vcpus[0]
    host.run(until=5 * MS)
    deadline = 7 * MS
    assert poll(xen, domu, [uport], timeout=deadline) == 0
    host.run(until=deadline - 1)
    assert is_blocked(v)
    host.run(until=deadline)
    assert is_awake(v)
    assert pending_words(domu) == {}


def test_poll_without_a_timeout_stays_blocked(host, xen, domu, chan):
    uport, _ = chan
    assert poll(xen, domu, [uport]) == 0
    host.run(until=10_000 * MS)
    assert is_blocked(domu.vcpus[0])


def test_poll_ended_by_an_upcall_leaves_no_timeout_behind(host, xen, dom0, domu):
    # An upcall on another port kicks the poller awake (vcpu_unblock() ends
    # the poll); the poll's timer must not wake the vCPU's next block.
    a, _ = offer(xen, dom0, domu)
    b, db = offer(xen, dom0, domu)
    v = domu.vcpus[0]
    assert poll(xen, domu, [a], timeout=5 * MS) == 0
    assert send(xen, dom0, db) == 0
    assert is_awake(v)
    guest_clear_upcall(domu)
    guest_clear_pending(domu, b)
    assert sched(xen, domu, SCHEDOP_block) == 0
    assert is_blocked(v)
    host.run(until=10 * MS)
    assert is_blocked(v)


# ================================================================ timers
def test_set_timer_then_block_is_block_with_timeout(host, xen, domu):
    port = oneshot_timer_port(xen, domu)
    v = domu.vcpus[0]
    deadline = 3 * MS
    assert set_timer(xen, domu, deadline) == 0
    assert sched(xen, domu, SCHEDOP_block) == 0
    host.run(until=deadline - 1)
    assert is_blocked(v)
    assert pending_words(domu) == {}
    mark = xen.trace.seq
    host.run(until=deadline)
    assert is_awake(v)
    assert pending_words(domu) == {0: 1 << port}
    assert vcpu_bits(domu) == (1, 1)
    assert evtchn_records(xen, mark) == [(domu.domid, 0, port, "pending+sel+upcall")]


def test_set_timer_zero_cancels(host, xen, domu):
    port = oneshot_timer_port(xen, domu)
    assert set_timer(xen, domu, 2 * MS) == 0
    assert set_timer(xen, domu, 0) == 0
    host.run(until=50 * MS)
    assert not xen.evtchn.is_pending(domu, port)


def test_set_timer_again_replaces_the_deadline(host, xen, domu):
    port = oneshot_timer_port(xen, domu)
    assert set_timer(xen, domu, 2 * MS) == 0
    assert set_timer(xen, domu, 6 * MS) == 0
    host.run(until=6 * MS - 1)
    assert not xen.evtchn.is_pending(domu, port)
    host.run(until=6 * MS)
    assert xen.evtchn.is_pending(domu, port)


def test_set_timer_in_the_past_fires_on_the_next_clock_step(host, xen, domu):
    port = oneshot_timer_port(xen, domu)
    host.run(until=10 * MS)
    assert set_timer(xen, domu, 5 * MS) == 0
    # Not inside the hypercall: on the timer softirq after it.
    assert not xen.evtchn.is_pending(domu, port)
    assert host.step() is True
    assert host.clock.now == 10 * MS
    assert xen.evtchn.is_pending(domu, port)


@pytest.mark.parametrize("how", ["negative", "beyond_2_pow_50"])
def test_set_timer_wild_deadline_fires_in_100ms(host, xen, domu, how):
    port = oneshot_timer_port(xen, domu)
    host.run(until=1 * MS)
    when = -1 if how == "negative" else host.clock.now + (1 << 50)
    assert set_timer(xen, domu, when) == 0
    host.run(until=101 * MS - 1)
    assert not xen.evtchn.is_pending(domu, port)
    host.run(until=101 * MS)
    assert xen.evtchn.is_pending(domu, port)


def test_set_timer_without_a_timer_virq_raises_nothing(host, xen, domu):
    assert set_timer(xen, domu, 1 * MS) == 0
    before = bytes(domu.shared_info)
    host.run(until=2 * MS)
    assert bytes(domu.shared_info) == before


# ================================================================ VIRQ_DOM_EXC
@pytest.mark.parametrize("reason", [SHUTDOWN_poweroff, SHUTDOWN_reboot, SHUTDOWN_suspend,
                                    SHUTDOWN_crash])
def test_dom_exc_reaches_dom0_when_a_domu_shuts_down(xen, dom0, domu, reason):
    port = bind_virq(xen, dom0, VIRQ_DOM_EXC, 0)
    assert not xen.evtchn.is_pending(dom0, port)
    mark = xen.trace.seq
    assert sched(xen, domu, SCHEDOP_shutdown, SchedShutdown(reason=reason)) == 0
    assert pending_words(dom0) == {port // 64: 1 << port % 64}
    assert vcpu_bits(dom0) == (1 << port // 64, 1)
    assert evtchn_records(xen, mark) == [(0, 0, port, "pending+sel+upcall")]


def test_dom_exc_reaches_dom0_when_a_domu_crashes(xen, dom0, domu):
    port = bind_virq(xen, dom0, VIRQ_DOM_EXC, 0)
    xen.domains.domain_crash(domu)
    assert xen.evtchn.is_pending(dom0, port)
    assert domu.shutdown_code == SHUTDOWN_crash


def test_dom_exc_reaches_dom0_when_a_domu_is_destroyed(xen, dom0, domu, privcmd):
    port = bind_virq(xen, dom0, VIRQ_DOM_EXC, 0)
    destroy_domain(privcmd, domu.domid)
    assert xen.domains.get(domu.domid) is None
    assert xen.evtchn.is_pending(dom0, port)
    assert vcpu_bits(dom0) == (1 << port // 64, 1)


def test_dom_exc_only_once_for_a_domain_already_shut_down(xen, dom0, domu):
    port = bind_virq(xen, dom0, VIRQ_DOM_EXC, 0)
    assert sched(xen, domu, SCHEDOP_shutdown, SchedShutdown(reason=SHUTDOWN_poweroff)) == 0
    guest_clear_pending(dom0, port)
    guest_clear_upcall(dom0)
    assert sched(xen, dom0, SCHEDOP_remote_shutdown,
                 SchedRemoteShutdown(domain_id=domu.domid, reason=SHUTDOWN_reboot)) == 0
    assert not xen.evtchn.is_pending(dom0, port)
    assert domu.shutdown_code == SHUTDOWN_poweroff


def test_dom_exc_not_bound_goes_nowhere(xen, dom0, domu):
    before = bytes(dom0.shared_info)
    assert sched(xen, domu, SCHEDOP_shutdown, SchedShutdown(reason=SHUTDOWN_poweroff)) == 0
    assert bytes(dom0.shared_info) == before


def _lingering_domain(xen, dom0, domu, privcmd):
    """Destroy a domU while dom0 still maps one of its pages: it stays,
    dying, until dom0 unmaps. Returns the unmap to call."""
    mfn = xen.p2m.lookup(domu, 16)
    ref = GuestGrantTable(xen, domu.vcpus[0]).grant_foreign_access(0, mfn, readonly=False)
    host_addr = 0xFFFFC90000000000
    rc, (mapped,) = hypercall(xen, dom0, HYPERVISOR_grant_table_op, GNTTABOP_map_grant_ref, (
        GnttabMapGrantRef(host_addr=host_addr, flags=GNTMAP_host_map, ref=ref, dom=domu.domid),))
    assert (rc, mapped.status) == (0, GNTST_okay)
    destroy_domain(privcmd, domu.domid)
    assert xen.domains.get(domu.domid) is domu and domu.is_dying

    def unmap():
        rc, (op,) = hypercall(xen, dom0, HYPERVISOR_grant_table_op, GNTTABOP_unmap_grant_ref, (
            GnttabUnmapGrantRef(host_addr=host_addr, handle=mapped.handle),))
        assert (rc, op.status) == (0, GNTST_okay)
    return unmap


def test_dom_exc_again_when_a_dying_domain_is_finally_destroyed(xen, dom0, domu, privcmd):
    # domain_kill() raises it once the domain is dead; complete_domain_destroy()
    # raises it again when the domain is finally gone (how xenstored learns
    # it may release the domain's id).
    port = bind_virq(xen, dom0, VIRQ_DOM_EXC, 0)
    unmap = _lingering_domain(xen, dom0, domu, privcmd)
    assert xen.evtchn.is_pending(dom0, port)
    guest_clear_pending(dom0, port)
    guest_clear_upcall(dom0)
    unmap()
    assert xen.domains.get(domu.domid) is None
    assert xen.evtchn.is_pending(dom0, port)
    assert vcpu_bits(dom0) == (1 << port // 64, 1)


def test_no_new_port_in_a_dying_domain(xen, dom0, domu, privcmd):
    unmap = _lingering_domain(xen, dom0, domu, privcmd)
    # get_free_port() refuses a dying domain.
    assert evtchn(xen, dom0, EVTCHNOP_alloc_unbound,
                  EvtchnAllocUnbound(dom=domu.domid, remote_dom=0)) == (-EINVAL, None)
    unmap()


# ================================================================ the trace
def test_trace_records_each_delivery_with_what_changed(xen, dom0, domu):
    a, da = offer(xen, dom0, domu)
    b, db = offer(xen, dom0, domu)
    c, dc = offer(xen, dom0, domu)
    mask(domu, c)
    mark = xen.trace.seq
    assert send(xen, dom0, da) == 0           # first in its word, upcall raised
    assert send(xen, dom0, da) == 0           # already pending
    assert send(xen, dom0, dc) == 0           # masked
    domu.shared_info[SHINFO_VCPU_INFO + VCPUINFO_UPCALL_PENDING] = 0
    assert send(xen, dom0, db) == 0           # selector already set
    guest_clear_upcall(domu)
    domu.shared_info[SHINFO_VCPU_INFO + VCPUINFO_UPCALL_PENDING] = 1
    guest_clear_pending(domu, a)
    assert send(xen, dom0, da) == 0           # selector raised, upcall already up
    d = domu.domid
    assert evtchn_records(xen, mark) == [
        (d, 0, a, "pending+sel+upcall"),
        (d, 0, a, "already"),
        (d, 0, c, "pending (masked)"),
        (d, 0, b, "pending"),
        (d, 0, a, "pending+sel"),
    ]


def test_trace_records_the_compensating_pending_of_bind_interdomain(xen, dom0, domu):
    port = ok(evtchn(xen, domu, EVTCHNOP_alloc_unbound,
                     EvtchnAllocUnbound(dom=DOMID_SELF, remote_dom=0))).port
    mark = xen.trace.seq
    local = ok(evtchn(xen, dom0, EVTCHNOP_bind_interdomain, EvtchnBindInterdomain(
        remote_dom=domu.domid, remote_port=port))).local_port
    # dom0 had nothing pending before: its first port raises everything.
    assert local == 1
    assert evtchn_records(xen, mark) == [(0, 0, local, "pending+sel+upcall")]


def test_trace_records_an_unmask_that_raises(xen, dom0, domu, chan):
    uport, dport = chan
    mask(domu, uport)
    assert send(xen, dom0, dport) == 0
    mark = xen.trace.seq
    assert unmask(xen, domu, uport) == 0
    records = [(r.kind, r.name, r.domid, r.vcpu, r.args, r.result)
               for r in xen.trace.since(mark) if r.kind == "evtchn"]
    assert records == [("evtchn", "unmask", domu.domid, 0, uport, "sel+upcall")]


def test_an_event_for_a_domain_without_vcpus_yet_waits_as_pending(xen, dom0, privcmd):
    """Between createdomain and max_vcpus a domain has no vCPU to tell: the
    port goes pending and nothing else, and the event is still there for
    its vCPU 0 once created."""
    from hv.public.domctl import XEN_DOMCTL_createdomain, XEN_DOMCTL_max_vcpus
    from hv.public.domctl import XenDomctlCreatedomain, XenDomctlMaxVcpus
    from xl.dombuild import _domctl
    domid = _domctl(privcmd, XEN_DOMCTL_createdomain, 0, XenDomctlCreatedomain(
        max_vcpus=1, max_evtchn_port=63, max_grant_frames=1, max_maptrack_frames=1,
        grant_opts=1)).domain
    d = xen.domains.get(domid)
    port = ok(evtchn(xen, dom0, EVTCHNOP_alloc_unbound,
                     EvtchnAllocUnbound(dom=domid, remote_dom=0))).port
    local = ok(evtchn(xen, dom0, EVTCHNOP_bind_interdomain,
                      EvtchnBindInterdomain(remote_dom=domid, remote_port=port))).local_port
    mark = xen.trace.seq
    assert send(xen, dom0, local) == 0
    assert evtchn_records(xen, mark) == [(domid, 0, port, "pending (no vcpu)")]
    _domctl(privcmd, XEN_DOMCTL_max_vcpus, domid, XenDomctlMaxVcpus(max=1))
    assert len(d.vcpus) == 1 and xen.evtchn.is_pending(d, port)
    # Unmasking with the vCPU there now raises its upcall.
    d.shared_info[SHINFO_EVTCHN_MASK + port // 8] |= 1 << port % 8
    assert unmask(xen, d, port) == 0
    assert d.shared_info[SHINFO_VCPU_INFO + VCPUINFO_UPCALL_PENDING] == 1
    destroy_domain(privcmd, domid)
