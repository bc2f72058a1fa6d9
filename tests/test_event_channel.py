"""EVTCHNOP_*: every rule of the manual's "Event Channels" chapter, checked
for the exact errno Xen 4.17 returns and in the order common/event_channel.c
makes its checks."""

from __future__ import annotations

import pytest

from hv.public.domctl import (
    XEN_DOMCTL_INTERFACE_VERSION, XEN_DOMCTL_createdomain, XEN_DOMCTL_irq_permission,
    XEN_DOMCTL_max_vcpus,
    XEN_DOMCTL_pausedomain, XEN_DOMCTL_setvcpucontext, XEN_DOMCTL_unpausedomain,
    XenDomctl, XenDomctlCreatedomain, XenDomctlIrqPermission, XenDomctlMaxVcpus,
    XenDomctlVcpucontext,
)
from hv.public.errno import (
    EBUSY, EEXIST, EFAULT, EINVAL, ENOENT, ENOSPC, ENOSYS, EPERM, ESRCH,
)
from hv.public.event_channel import (
    EVTCHNOP_alloc_unbound, EVTCHNOP_bind_interdomain, EVTCHNOP_bind_ipi,
    EVTCHNOP_bind_pirq, EVTCHNOP_bind_vcpu, EVTCHNOP_bind_virq, EVTCHNOP_close,
    EVTCHNOP_expand_array, EVTCHNOP_init_control, EVTCHNOP_reset, EVTCHNOP_send,
    EVTCHNOP_set_priority, EVTCHNOP_status, EVTCHNOP_unmask,
    EVTCHNSTAT_closed, EVTCHNSTAT_interdomain, EVTCHNSTAT_ipi, EVTCHNSTAT_pirq,
    EVTCHNSTAT_unbound, EVTCHNSTAT_virq,
    EvtchnAllocUnbound, EvtchnBindInterdomain, EvtchnBindIpi, EvtchnBindPirq,
    EvtchnBindVcpu, EvtchnBindVirq, EvtchnClose, EvtchnExpandArray, EvtchnInitControl,
    EvtchnReset, EvtchnSend, EvtchnSetPriority, EvtchnStatus, EvtchnStatusInterdomain,
    EvtchnStatusUnbound, EvtchnUnmask,
)
from hv.public.sched import SCHEDOP_shutdown, SHUTDOWN_poweroff, SchedShutdown
from hv.public.xen import (
    DOMID_SELF, HYPERVISOR_domctl, HYPERVISOR_sched_op, HYPERVISOR_event_channel_op, NR_VIRQS,
    SHINFO_EVTCHN_MASK, SHINFO_EVTCHN_PENDING, VGCF_online, VIRQ_CONSOLE, VIRQ_DEBUG,
    VIRQ_DOM_EXC, VIRQ_TIMER, SharedInfo, VcpuGuestContext,
)
from hv.xen.event_channel import ECS_FREE
from tests.conftest import evtchn, hypercall, ok
from tests.calls import domctl
from xl.dombuild import MAX_GRANT_FRAMES, MAX_MAPTRACK_FRAMES, destroy_domain

# A domid nobody has (the fixtures create at most a handful of domains).
NO_SUCH_DOMID = 0x7000
# Far beyond any domain's valid ports (the 2-level ABI's limit is 4096).
BAD_PORT = 5000


# ---------------------------------------------------------------- helpers
def alloc(xen, who, dom=DOMID_SELF, remote=DOMID_SELF) -> int:
    return ok(evtchn(xen, who, EVTCHNOP_alloc_unbound,
                     EvtchnAllocUnbound(dom=dom, remote_dom=remote))).port


def bind_interdomain(xen, who, remote_dom, remote_port) -> int:
    return ok(evtchn(xen, who, EVTCHNOP_bind_interdomain,
                     EvtchnBindInterdomain(remote_dom=remote_dom,
                                           remote_port=remote_port))).local_port


def bind_virq(xen, who, virq, vcpu=0) -> int:
    return ok(evtchn(xen, who, EVTCHNOP_bind_virq, EvtchnBindVirq(virq=virq, vcpu=vcpu))).port


def bind_ipi(xen, who, vcpu=0) -> int:
    return ok(evtchn(xen, who, EVTCHNOP_bind_ipi, EvtchnBindIpi(vcpu=vcpu))).port


def bind_pirq(xen, who, pirq) -> int:
    return ok(evtchn(xen, who, EVTCHNOP_bind_pirq, EvtchnBindPirq(pirq=pirq))).port


def status(xen, who, port, dom=DOMID_SELF):
    return evtchn(xen, who, EVTCHNOP_status, EvtchnStatus(dom=dom, port=port))


def close(xen, who, port) -> int:
    return evtchn(xen, who, EVTCHNOP_close, EvtchnClose(port=port))[0]


def send(xen, who, port) -> int:
    return evtchn(xen, who, EVTCHNOP_send, EvtchnSend(port=port))[0]


def small_domain(xen, dom0, max_evtchn_port, vcpus=1):
    """A domain whose event-channel space ends at ``max_evtchn_port``, its
    vCPU 0 up and running, created the way a toolstack does."""
    out = ok(domctl(xen, dom0, XEN_DOMCTL_createdomain, 0, XenDomctlCreatedomain(
        max_vcpus=vcpus, max_evtchn_port=max_evtchn_port, max_grant_frames=MAX_GRANT_FRAMES,
        max_maptrack_frames=MAX_MAPTRACK_FRAMES, grant_opts=1)))
    ok(domctl(xen, dom0, XEN_DOMCTL_max_vcpus, out.domain, XenDomctlMaxVcpus(max=vcpus)))
    ok(domctl(xen, dom0, XEN_DOMCTL_setvcpucontext, out.domain, XenDomctlVcpucontext(
        vcpu=0, ctxt=VcpuGuestContext(flags=VGCF_online))))
    ok(domctl(xen, dom0, XEN_DOMCTL_unpausedomain, out.domain))
    return xen.domains.get(out.domain)


def full_domain(xen, dom0, max_evtchn_port=3):
    """A running domain with every port up to its limit allocated."""
    d = small_domain(xen, dom0, max_evtchn_port)
    for _ in range(max_evtchn_port):
        alloc(xen, d)
    assert evtchn(xen, d, EVTCHNOP_alloc_unbound, EvtchnAllocUnbound(
        dom=DOMID_SELF, remote_dom=DOMID_SELF))[0] == -ENOSPC
    return d


def pending(d, port) -> bool:
    return bool(d.shared_info[SHINFO_EVTCHN_PENDING + port // 8] & (1 << port % 8))


def masked(d, port) -> bool:
    return bool(d.shared_info[SHINFO_EVTCHN_MASK + port // 8] & (1 << port % 8))


def mask(d, port) -> None:
    d.shared_info[SHINFO_EVTCHN_MASK + port // 8] |= 1 << port % 8


def grant_irq(xen, dom0, d, pirq, allow=1):
    return domctl(xen, dom0, XEN_DOMCTL_irq_permission, d.domid,
                  XenDomctlIrqPermission(pirq=pirq, allow_access=allow))[0]


@pytest.fixture
def domu(make_domu):
    """A guest as xl builds it: ports 1 (xenstore) and 2 (console) are
    unbound for dom0, so its own allocations start at 3."""
    return make_domu()


@pytest.fixture
def domu2(make_domu):
    return make_domu(vcpus=2)


# ================================================================ alloc_unbound
@pytest.mark.parametrize("caller", ["dom0", "domu"])
@pytest.mark.parametrize("domid", [NO_SUCH_DOMID, 0x7FEF])
def test_alloc_unbound_specified_domain_must_exist(xen, dom0, domu, caller, domid):
    who = dom0 if caller == "dom0" else domu
    assert evtchn(xen, who, EVTCHNOP_alloc_unbound,
                  EvtchnAllocUnbound(dom=domid, remote_dom=0)) == (-ESRCH, None)


def test_alloc_unbound_needs_a_free_port_in_that_domain(xen, dom0):
    d = small_domain(xen, dom0, max_evtchn_port=3)
    assert [alloc(xen, dom0, dom=d.domid, remote=0) for _ in range(3)] == [1, 2, 3]
    assert evtchn(xen, dom0, EVTCHNOP_alloc_unbound,
                  EvtchnAllocUnbound(dom=d.domid, remote_dom=0)) == (-ENOSPC, None)
    # The domain itself is out of ports too.
    assert evtchn(xen, d, EVTCHNOP_alloc_unbound,
                  EvtchnAllocUnbound(dom=DOMID_SELF, remote_dom=0)) == (-ENOSPC, None)
    # Freeing one makes exactly that one available again.
    assert close(xen, d, 2) == 0
    assert alloc(xen, d) == 2


def test_alloc_unbound_max_port_zero_domain_has_no_ports(xen, dom0):
    d = small_domain(xen, dom0, max_evtchn_port=0)
    assert evtchn(xen, d, EVTCHNOP_alloc_unbound,
                  EvtchnAllocUnbound(dom=DOMID_SELF, remote_dom=0)) == (-ENOSPC, None)


@pytest.mark.parametrize("target", ["dom0", "other_domu"])
def test_alloc_unbound_unprivileged_may_not_allocate_for_another_domain(
        xen, dom0, domu, make_domu, target):
    other = dom0 if target == "dom0" else make_domu()
    before = [chn.state for chn in other.evtchn.chans]
    assert evtchn(xen, domu, EVTCHNOP_alloc_unbound,
                  EvtchnAllocUnbound(dom=other.domid, remote_dom=domu.domid)) == (-EPERM, None)
    # The port Xen picked before its XSM check is handed back.
    assert [chn.state for chn in other.evtchn.chans] == before


def test_alloc_unbound_unprivileged_may_name_itself_by_domid(xen, domu):
    out = ok(evtchn(xen, domu, EVTCHNOP_alloc_unbound,
                    EvtchnAllocUnbound(dom=domu.domid, remote_dom=0)))
    assert out == EvtchnAllocUnbound(dom=domu.domid, remote_dom=0, port=3)


def test_alloc_unbound_full_domain_is_enospc_before_the_privilege_check(xen, dom0, domu):
    # evtchn_alloc_unbound() takes a port first and asks XSM second.
    full = full_domain(xen, dom0)
    assert evtchn(xen, domu, EVTCHNOP_alloc_unbound,
                  EvtchnAllocUnbound(dom=full.domid, remote_dom=domu.domid)) == (-ENOSPC, None)


def test_alloc_unbound_dom0_may_allocate_in_a_domu(xen, dom0, domu):
    out = ok(evtchn(xen, dom0, EVTCHNOP_alloc_unbound,
                    EvtchnAllocUnbound(dom=domu.domid, remote_dom=0)))
    assert out == EvtchnAllocUnbound(dom=domu.domid, remote_dom=0, port=3)
    assert ok(status(xen, domu, 3)) == EvtchnStatus(
        dom=DOMID_SELF, port=3, status=EVTCHNSTAT_unbound, vcpu=0, u=EvtchnStatusUnbound(dom=0))
    # The port is the domU's, not dom0's.
    assert ok(status(xen, dom0, 3)).status == EVTCHNSTAT_closed


def test_alloc_unbound_remote_domid_self_means_the_caller(xen, dom0, domu):
    own = alloc(xen, domu, remote=DOMID_SELF)
    assert ok(status(xen, domu, own)).u == EvtchnStatusUnbound(dom=domu.domid)
    # dom0 allocating in the domU: DOMID_SELF names dom0, not the domU.
    theirs = alloc(xen, dom0, dom=domu.domid, remote=DOMID_SELF)
    assert ok(status(xen, domu, theirs)).u == EvtchnStatusUnbound(dom=0)


def test_alloc_unbound_remote_domain_need_not_exist(xen, domu):
    port = alloc(xen, domu, remote=NO_SUCH_DOMID)
    assert ok(status(xen, domu, port)).u == EvtchnStatusUnbound(dom=NO_SUCH_DOMID)


def test_alloc_unbound_never_hands_out_port_zero_and_goes_lowest_first(xen, dom0):
    d = small_domain(xen, dom0, max_evtchn_port=10)
    assert [alloc(xen, d) for _ in range(5)] == [1, 2, 3, 4, 5]
    assert close(xen, d, 2) == 0 and close(xen, d, 4) == 0
    assert [alloc(xen, d) for _ in range(3)] == [2, 4, 6]
    assert ok(status(xen, d, 0)).status == EVTCHNSTAT_closed


def test_alloc_unbound_grows_past_the_first_bucket(xen, dom0):
    d = small_domain(xen, dom0, max_evtchn_port=100)
    assert evtchn(xen, d, EVTCHNOP_status, EvtchnStatus(dom=DOMID_SELF, port=64))[0] == -EINVAL
    ports = [alloc(xen, d) for _ in range(64)]
    assert ports == list(range(1, 65))
    assert ok(status(xen, d, 64)).status == EVTCHNSTAT_unbound


# ================================================================ bind_interdomain
def test_bind_interdomain_remote_domain_must_exist(xen, domu):
    assert evtchn(xen, domu, EVTCHNOP_bind_interdomain, EvtchnBindInterdomain(
        remote_dom=NO_SUCH_DOMID, remote_port=1)) == (-ESRCH, None)


def test_bind_interdomain_missing_remote_domain_is_esrch_even_without_a_free_port(xen, dom0):
    full = full_domain(xen, dom0)
    assert evtchn(xen, full, EVTCHNOP_bind_interdomain, EvtchnBindInterdomain(
        remote_dom=NO_SUCH_DOMID, remote_port=1)) == (-ESRCH, None)


def test_bind_interdomain_caller_needs_a_free_port(xen, dom0):
    full = full_domain(xen, dom0)
    offered = alloc(xen, dom0, remote=full.domid)
    assert evtchn(xen, full, EVTCHNOP_bind_interdomain, EvtchnBindInterdomain(
        remote_dom=0, remote_port=offered)) == (-ENOSPC, None)
    assert ok(status(xen, dom0, offered)).u == EvtchnStatusUnbound(dom=full.domid)


@pytest.mark.parametrize("remote_port", [0, 40, 63, 64, BAD_PORT, 0xFFFFFFFF])
def test_bind_interdomain_remote_port_must_be_allocated(xen, domu, remote_port):
    # dom0's ports 0 (reserved) and 40/63 (free) exist but are not unbound;
    # 64 and beyond lie past its valid ports.
    assert evtchn(xen, domu, EVTCHNOP_bind_interdomain, EvtchnBindInterdomain(
        remote_dom=0, remote_port=remote_port)) == (-EINVAL, None)
    # The port picked for the caller was given back.
    assert alloc(xen, domu) == 3


def test_bind_interdomain_remote_port_must_be_unbound(xen, dom0, domu, make_domu):
    other = make_domu()
    offered = alloc(xen, dom0, remote=domu.domid)
    bind_interdomain(xen, domu, 0, offered)
    # Already connected: even the domain it was offered to cannot bind again.
    assert evtchn(xen, domu, EVTCHNOP_bind_interdomain, EvtchnBindInterdomain(
        remote_dom=0, remote_port=offered)) == (-EINVAL, None)
    virq_port = bind_virq(xen, dom0, VIRQ_CONSOLE)
    assert evtchn(xen, other, EVTCHNOP_bind_interdomain, EvtchnBindInterdomain(
        remote_dom=0, remote_port=virq_port)) == (-EINVAL, None)


def test_bind_interdomain_remote_port_must_expect_the_caller(xen, dom0, domu, make_domu):
    other = make_domu()
    offered = alloc(xen, dom0, remote=other.domid)
    assert evtchn(xen, domu, EVTCHNOP_bind_interdomain, EvtchnBindInterdomain(
        remote_dom=0, remote_port=offered)) == (-EINVAL, None)
    assert ok(status(xen, dom0, offered)).u == EvtchnStatusUnbound(dom=other.domid)
    # The domain it does expect may bind it.
    assert bind_interdomain(xen, other, 0, offered) == 3


def test_bind_interdomain_pairs_both_ends(xen, dom0, domu):
    offered = alloc(xen, domu, remote=0)
    out = ok(evtchn(xen, dom0, EVTCHNOP_bind_interdomain,
                    EvtchnBindInterdomain(remote_dom=domu.domid, remote_port=offered)))
    local = out.local_port
    assert out == EvtchnBindInterdomain(remote_dom=domu.domid, remote_port=offered,
                                        local_port=local)
    assert ok(status(xen, dom0, local)) == EvtchnStatus(
        dom=DOMID_SELF, port=local, status=EVTCHNSTAT_interdomain, vcpu=0,
        u=EvtchnStatusInterdomain(dom=domu.domid, port=offered))
    assert ok(status(xen, domu, offered)) == EvtchnStatus(
        dom=DOMID_SELF, port=offered, status=EVTCHNSTAT_interdomain, vcpu=0,
        u=EvtchnStatusInterdomain(dom=0, port=local))


def test_bind_interdomain_sets_the_new_local_port_pending(xen, dom0, domu):
    offered = alloc(xen, domu, remote=0)
    local = bind_interdomain(xen, dom0, domu.domid, offered)
    # Notifications sent while the port was unbound were dropped; Xen makes
    # up for them on the binder's side only.
    assert pending(dom0, local)
    assert not pending(domu, offered)


def test_bind_interdomain_loopback_through_domid_self(xen, domu):
    a = alloc(xen, domu, remote=DOMID_SELF)
    b = bind_interdomain(xen, domu, DOMID_SELF, a)
    assert (a, b) == (3, 4)
    assert ok(status(xen, domu, a)).u == EvtchnStatusInterdomain(dom=domu.domid, port=b)
    assert ok(status(xen, domu, b)).u == EvtchnStatusInterdomain(dom=domu.domid, port=a)
    assert pending(domu, b) and not pending(domu, a)


# ================================================================ bind_virq
@pytest.mark.parametrize("virq", [NR_VIRQS, NR_VIRQS + 1, 0x7FFFFFFF, 0xFFFFFFFF])
def test_bind_virq_must_be_valid(xen, domu, virq):
    assert evtchn(xen, domu, EVTCHNOP_bind_virq,
                  EvtchnBindVirq(virq=virq, vcpu=0)) == (-EINVAL, None)


@pytest.mark.parametrize("virq", [VIRQ_CONSOLE, VIRQ_DOM_EXC, 5, 16, 23])
@pytest.mark.parametrize("vcpu", [1, 31, 0xFFFFFFFF])
def test_bind_virq_global_only_on_vcpu0(xen, domu2, virq, vcpu):
    # Checked before the vCPU's existence: vCPU 31 does not exist, yet EINVAL.
    assert evtchn(xen, domu2, EVTCHNOP_bind_virq,
                  EvtchnBindVirq(virq=virq, vcpu=vcpu)) == (-EINVAL, None)
    port = bind_virq(xen, domu2, virq, 0)
    assert ok(status(xen, domu2, port)) == EvtchnStatus(
        dom=DOMID_SELF, port=port, status=EVTCHNSTAT_virq, vcpu=0, u=virq)


@pytest.mark.parametrize("virq", [VIRQ_TIMER, VIRQ_DEBUG])
@pytest.mark.parametrize("vcpu", [2, 32, 0xFFFFFFFF])
def test_bind_virq_vcpu_must_exist(xen, domu2, virq, vcpu):
    assert evtchn(xen, domu2, EVTCHNOP_bind_virq,
                  EvtchnBindVirq(virq=virq, vcpu=vcpu)) == (-ENOENT, None)


@pytest.mark.parametrize("virq,vcpu", [(VIRQ_TIMER, 0), (VIRQ_TIMER, 1), (VIRQ_DOM_EXC, 0)])
def test_bind_virq_not_already_bound_on_that_vcpu(xen, domu2, virq, vcpu):
    first = bind_virq(xen, domu2, virq, vcpu)
    assert evtchn(xen, domu2, EVTCHNOP_bind_virq,
                  EvtchnBindVirq(virq=virq, vcpu=vcpu)) == (-EEXIST, None)
    assert domu2.vcpus[vcpu].virq_to_evtchn[virq] == first


def test_bind_virq_global_already_bound_stays_eexist_after_moving_it(xen, domu2):
    port = bind_virq(xen, domu2, VIRQ_DOM_EXC, 0)
    assert evtchn(xen, domu2, EVTCHNOP_bind_vcpu, EvtchnBindVcpu(port=port, vcpu=1)) == (
        0, EvtchnBindVcpu(port=port, vcpu=1))
    # The global binding is recorded on vCPU 0 whatever vCPU it notifies.
    assert evtchn(xen, domu2, EVTCHNOP_bind_virq,
                  EvtchnBindVirq(virq=VIRQ_DOM_EXC, vcpu=0)) == (-EEXIST, None)


def test_bind_virq_timer_once_per_vcpu(xen, domu2):
    p0 = bind_virq(xen, domu2, VIRQ_TIMER, 0)
    p1 = bind_virq(xen, domu2, VIRQ_TIMER, 1)
    assert (p0, p1) == (3, 4)
    assert ok(status(xen, domu2, p0)) == EvtchnStatus(
        dom=DOMID_SELF, port=p0, status=EVTCHNSTAT_virq, vcpu=0, u=VIRQ_TIMER)
    assert ok(status(xen, domu2, p1)) == EvtchnStatus(
        dom=DOMID_SELF, port=p1, status=EVTCHNSTAT_virq, vcpu=1, u=VIRQ_TIMER)
    for vcpu in (0, 1):
        assert evtchn(xen, domu2, EVTCHNOP_bind_virq,
                      EvtchnBindVirq(virq=VIRQ_TIMER, vcpu=vcpu)) == (-EEXIST, None)


def test_bind_virq_caller_needs_a_free_port(xen, dom0):
    full = full_domain(xen, dom0)
    assert evtchn(xen, full, EVTCHNOP_bind_virq,
                  EvtchnBindVirq(virq=VIRQ_TIMER, vcpu=0)) == (-ENOSPC, None)
    assert full.vcpus[0].virq_to_evtchn[VIRQ_TIMER] == 0


def test_bind_virq_already_bound_is_eexist_before_enospc(xen, dom0):
    d = small_domain(xen, dom0, max_evtchn_port=2)
    bind_virq(xen, d, VIRQ_TIMER)
    alloc(xen, d)
    assert evtchn(xen, d, EVTCHNOP_bind_virq,
                  EvtchnBindVirq(virq=VIRQ_TIMER, vcpu=0)) == (-EEXIST, None)
    assert evtchn(xen, d, EVTCHNOP_bind_virq,
                  EvtchnBindVirq(virq=VIRQ_DEBUG, vcpu=0)) == (-ENOSPC, None)


def test_bind_virq_returns_the_binding(xen, domu):
    out = ok(evtchn(xen, domu, EVTCHNOP_bind_virq, EvtchnBindVirq(virq=VIRQ_TIMER, vcpu=0)))
    assert out == EvtchnBindVirq(virq=VIRQ_TIMER, vcpu=0, port=3)


# ================================================================ bind_ipi
@pytest.mark.parametrize("vcpu", [2, 32, 0xFFFFFFFF])
def test_bind_ipi_vcpu_must_exist(xen, domu2, vcpu):
    assert evtchn(xen, domu2, EVTCHNOP_bind_ipi, EvtchnBindIpi(vcpu=vcpu)) == (-ENOENT, None)


def test_bind_ipi_caller_needs_a_free_port(xen, dom0):
    full = full_domain(xen, dom0)
    assert evtchn(xen, full, EVTCHNOP_bind_ipi, EvtchnBindIpi(vcpu=0)) == (-ENOSPC, None)


def test_bind_ipi_send_raises_it_on_the_bound_vcpu(xen, domu2):
    out = ok(evtchn(xen, domu2, EVTCHNOP_bind_ipi, EvtchnBindIpi(vcpu=1)))
    port = out.port
    assert out == EvtchnBindIpi(vcpu=1, port=3)
    assert ok(status(xen, domu2, port)) == EvtchnStatus(
        dom=DOMID_SELF, port=port, status=EVTCHNSTAT_ipi, vcpu=1, u=None)
    assert send(xen, domu2, port) == 0
    info = SharedInfo.unpack(bytes(domu2.shared_info))
    assert info.evtchn_pending[0] == 1 << port
    assert info.vcpu_info[1].evtchn_pending_sel == 1
    assert info.vcpu_info[1].evtchn_upcall_pending == 1
    assert info.vcpu_info[0].evtchn_pending_sel == 0
    assert info.vcpu_info[0].evtchn_upcall_pending == 0


# ================================================================ bind_pirq
def test_bind_pirq_must_be_in_range(xen, dom0, domu):
    nr = dom0.nr_pirqs
    for pirq in (nr, nr + 1, 0xFFFFFFFF):
        assert evtchn(xen, dom0, EVTCHNOP_bind_pirq, EvtchnBindPirq(pirq=pirq)) == (-EINVAL, None)
    # The range check comes before the privilege check.
    assert evtchn(xen, domu, EVTCHNOP_bind_pirq,
                  EvtchnBindPirq(pirq=domu.nr_pirqs)) == (-EINVAL, None)


@pytest.mark.parametrize("pirq", [0, 9, 255])
def test_bind_pirq_needs_physical_device_privilege(xen, domu, pirq):
    assert evtchn(xen, domu, EVTCHNOP_bind_pirq, EvtchnBindPirq(pirq=pirq)) == (-EPERM, None)
    assert domu.evtchn.pirq_to_evtchn == {}


def test_bind_pirq_dom0_may_bind(xen, dom0):
    out = ok(evtchn(xen, dom0, EVTCHNOP_bind_pirq, EvtchnBindPirq(pirq=9, flags=1)))
    assert out == EvtchnBindPirq(pirq=9, flags=1, port=out.port)
    assert ok(status(xen, dom0, out.port)) == EvtchnStatus(
        dom=DOMID_SELF, port=out.port, status=EVTCHNSTAT_pirq, vcpu=0, u=9)


def test_bind_pirq_domain_granted_the_irq_may_bind_it(xen, dom0, domu):
    assert grant_irq(xen, dom0, domu, 11) == 0
    port = bind_pirq(xen, domu, 11)
    assert port == 3
    assert ok(status(xen, domu, port)).u == 11
    # Only the IRQ it was granted.
    assert evtchn(xen, domu, EVTCHNOP_bind_pirq, EvtchnBindPirq(pirq=12)) == (-EPERM, None)


def test_bind_pirq_permission_can_only_come_from_dom0(xen, domu, make_domu):
    other = make_domu()
    rc, _ = hypercall(xen, domu, HYPERVISOR_domctl, XenDomctl(
        cmd=XEN_DOMCTL_irq_permission, interface_version=XEN_DOMCTL_INTERFACE_VERSION,
        domain=other.domid, u=XenDomctlIrqPermission(pirq=11, allow_access=1)))
    assert rc == -EPERM
    assert evtchn(xen, other, EVTCHNOP_bind_pirq, EvtchnBindPirq(pirq=11)) == (-EPERM, None)


def test_bind_pirq_revoked_permission_refuses_binding(xen, dom0, domu):
    assert grant_irq(xen, dom0, domu, 11) == 0
    assert grant_irq(xen, dom0, domu, 11, allow=0) == 0
    assert evtchn(xen, domu, EVTCHNOP_bind_pirq, EvtchnBindPirq(pirq=11)) == (-EPERM, None)


def test_bind_pirq_one_binding_per_pirq(xen, dom0):
    port = bind_pirq(xen, dom0, 9)
    assert evtchn(xen, dom0, EVTCHNOP_bind_pirq, EvtchnBindPirq(pirq=9)) == (-EEXIST, None)
    assert dom0.evtchn.pirq_to_evtchn == {9: port}


def test_bind_pirq_caller_needs_a_free_port(xen, dom0):
    full = full_domain(xen, dom0)
    assert grant_irq(xen, dom0, full, 11) == 0
    assert evtchn(xen, full, EVTCHNOP_bind_pirq, EvtchnBindPirq(pirq=11)) == (-ENOSPC, None)
    assert full.evtchn.pirq_to_evtchn == {}


def test_bind_pirq_interrupt_is_delivered(xen, dom0, domu):
    assert grant_irq(xen, dom0, domu, 11) == 0
    port = bind_pirq(xen, domu, 11)
    assert xen.evtchn.send_guest_pirq(domu, 11) is True
    info = SharedInfo.unpack(bytes(domu.shared_info))
    assert info.evtchn_pending[0] == 1 << port
    assert info.vcpu_info[0].evtchn_pending_sel == 1
    assert info.vcpu_info[0].evtchn_upcall_pending == 1
    # An IRQ with no port bound goes nowhere.
    assert xen.evtchn.send_guest_pirq(domu, 12) is False


# ================================================================ close
@pytest.mark.parametrize("port", [0, 3, 63, 64, BAD_PORT, 0xFFFFFFFF])
def test_close_port_must_be_allocated(xen, domu, port):
    assert evtchn(xen, domu, EVTCHNOP_close, EvtchnClose(port=port)) == (-EINVAL, None)


def test_close_twice_is_einval(xen, domu):
    port = alloc(xen, domu)
    assert close(xen, domu, port) == 0
    assert close(xen, domu, port) == -EINVAL
    assert ok(status(xen, domu, port)).status == EVTCHNSTAT_closed


@pytest.mark.parametrize("closer", ["offerer", "binder"])
def test_close_interdomain_leaves_the_peer_unbound_for_the_closer(xen, dom0, domu, closer):
    offered = alloc(xen, domu, remote=0)
    local = bind_interdomain(xen, dom0, domu.domid, offered)
    if closer == "offerer":
        (cd, cport), (pd, pport) = (domu, offered), (dom0, local)
    else:
        (cd, cport), (pd, pport) = (dom0, local), (domu, offered)
    assert close(xen, cd, cport) == 0
    assert ok(status(xen, cd, cport)) == EvtchnStatus(
        dom=DOMID_SELF, port=cport, status=EVTCHNSTAT_closed, vcpu=0, u=None)
    assert ok(status(xen, pd, pport)) == EvtchnStatus(
        dom=DOMID_SELF, port=pport, status=EVTCHNSTAT_unbound, vcpu=0,
        u=EvtchnStatusUnbound(dom=cd.domid))
    # The closer may bind the leftover end again.
    again = bind_interdomain(xen, cd, pd.domid, pport)
    assert ok(status(xen, pd, pport)).u == EvtchnStatusInterdomain(dom=cd.domid, port=again)


def test_destroying_a_domain_leaves_its_peers_unbound_for_it(xen, dom0, domu, privcmd):
    # evtchn_destroy() closes every port of the dying domain as a close would.
    offered = alloc(xen, domu, remote=0)
    local = bind_interdomain(xen, dom0, domu.domid, offered)
    domid = domu.domid
    destroy_domain(privcmd, domid)
    assert ok(status(xen, dom0, local)) == EvtchnStatus(
        dom=DOMID_SELF, port=local, status=EVTCHNSTAT_unbound, vcpu=0,
        u=EvtchnStatusUnbound(dom=domid))
    # Nobody is at the other end: a send is dropped.
    assert send(xen, dom0, local) == 0


def test_close_clears_the_pending_bit(xen, dom0, domu):
    offered = alloc(xen, domu, remote=0)
    local = bind_interdomain(xen, dom0, domu.domid, offered)
    assert send(xen, dom0, local) == 0
    assert pending(domu, offered) and pending(dom0, local)
    assert close(xen, domu, offered) == 0
    assert not pending(domu, offered)
    # Only the closed end's bit: the peer's is the peer's business.
    assert pending(dom0, local)


def test_close_virq_frees_it_for_rebinding(xen, domu2):
    port = bind_virq(xen, domu2, VIRQ_TIMER, 1)
    assert close(xen, domu2, port) == 0
    assert domu2.vcpus[1].virq_to_evtchn[VIRQ_TIMER] == 0
    assert bind_virq(xen, domu2, VIRQ_TIMER, 1) == port


def test_close_global_virq_moved_to_another_vcpu_frees_it(xen, domu2):
    port = bind_virq(xen, domu2, VIRQ_DOM_EXC, 0)
    ok(evtchn(xen, domu2, EVTCHNOP_bind_vcpu, EvtchnBindVcpu(port=port, vcpu=1)))
    assert close(xen, domu2, port) == 0
    assert bind_virq(xen, domu2, VIRQ_DOM_EXC, 0) == port


def test_close_pirq_frees_it_for_rebinding(xen, dom0):
    port = bind_pirq(xen, dom0, 9)
    assert close(xen, dom0, port) == 0
    assert dom0.evtchn.pirq_to_evtchn == {}
    assert xen.evtchn.send_guest_pirq(dom0, 9) is False
    assert bind_pirq(xen, dom0, 9) == port


def test_close_ipi_and_unbound_ports(xen, domu):
    ipi, unbound = bind_ipi(xen, domu), alloc(xen, domu)
    assert close(xen, domu, ipi) == 0 and close(xen, domu, unbound) == 0
    assert [domu.evtchn.chans[p].state for p in (ipi, unbound)] == [ECS_FREE, ECS_FREE]


# ================================================================ send
@pytest.mark.parametrize("port", [0, 3, 63, 64, BAD_PORT, 0xFFFFFFFF])
def test_send_port_must_be_valid(xen, domu, port):
    assert evtchn(xen, domu, EVTCHNOP_send, EvtchnSend(port=port)) == (-EINVAL, None)


def test_send_on_unbound_port_is_silently_dropped(xen, dom0, domu):
    port = alloc(xen, domu, remote=0)
    before = (bytes(domu.shared_info), bytes(dom0.shared_info))
    assert evtchn(xen, domu, EVTCHNOP_send, EvtchnSend(port=port)) == (0, EvtchnSend(port=port))
    assert (bytes(domu.shared_info), bytes(dom0.shared_info)) == before


def test_send_on_virq_port_is_einval(xen, domu):
    port = bind_virq(xen, domu, VIRQ_TIMER)
    assert send(xen, domu, port) == -EINVAL
    assert not pending(domu, port)


def test_send_on_pirq_port_is_einval(xen, dom0):
    port = bind_pirq(xen, dom0, 9)
    assert send(xen, dom0, port) == -EINVAL
    assert not pending(dom0, port)


def test_send_interdomain_raises_the_remote_end_only(xen, dom0, domu):
    offered = alloc(xen, domu, remote=0)
    local = bind_interdomain(xen, dom0, domu.domid, offered)
    dom0.shared_info[SHINFO_EVTCHN_PENDING + local // 8] &= ~(1 << local % 8) & 0xFF
    assert send(xen, domu, offered) == 0
    assert pending(dom0, local)
    assert not pending(domu, offered)


# ================================================================ status
def test_status_unprivileged_only_own_ports(xen, dom0, domu, make_domu):
    other = make_domu()
    assert status(xen, domu, 1, dom=0) == (-EPERM, None)
    assert status(xen, domu, 1, dom=other.domid) == (-EPERM, None)
    # Its own, by id or as DOMID_SELF.
    assert ok(status(xen, domu, 1, dom=domu.domid)).status == EVTCHNSTAT_unbound


def test_status_privileged_may_query_any_port(xen, dom0, domu):
    assert ok(status(xen, dom0, 1, dom=domu.domid)) == EvtchnStatus(
        dom=domu.domid, port=1, status=EVTCHNSTAT_unbound, vcpu=0, u=EvtchnStatusUnbound(dom=0))


@pytest.mark.parametrize("caller", ["dom0", "domu"])
def test_status_missing_domain_is_esrch(xen, dom0, domu, caller):
    who = dom0 if caller == "dom0" else domu
    assert status(xen, who, 1, dom=NO_SUCH_DOMID) == (-ESRCH, None)


@pytest.mark.parametrize("port", [64, BAD_PORT, 0xFFFFFFFF])
def test_status_invalid_port_is_einval(xen, domu, port):
    assert status(xen, domu, port) == (-EINVAL, None)


def test_status_invalid_port_of_another_domain_is_einval_before_eperm(xen, domu):
    assert status(xen, domu, BAD_PORT, dom=0) == (-EINVAL, None)


@pytest.mark.parametrize("port", [0, 3, 63])
def test_status_free_or_reserved_port_is_closed(xen, domu, port):
    assert ok(status(xen, domu, port)) == EvtchnStatus(
        dom=DOMID_SELF, port=port, status=EVTCHNSTAT_closed, vcpu=0, u=None)


def test_status_closed_port_is_closed_again(xen, domu2):
    port = bind_ipi(xen, domu2, 1)
    assert close(xen, domu2, port) == 0
    # Freeing resets the notify vCPU to 0.
    assert ok(status(xen, domu2, port)) == EvtchnStatus(
        dom=DOMID_SELF, port=port, status=EVTCHNSTAT_closed, vcpu=0, u=None)


def test_status_each_variant_decodes(xen, dom0, domu2):
    offered = alloc(xen, domu2, remote=0)                       # 3
    local = bind_interdomain(xen, dom0, domu2.domid, offered)
    unbound = alloc(xen, domu2, remote=NO_SUCH_DOMID)          # 4
    virq = bind_virq(xen, domu2, VIRQ_TIMER, 1)                 # 5
    ipi = bind_ipi(xen, domu2, 1)                               # 6
    assert grant_irq(xen, dom0, domu2, 200) == 0
    pirq = bind_pirq(xen, domu2, 200)                           # 7
    expected = {
        offered: (EVTCHNSTAT_interdomain, 0, EvtchnStatusInterdomain(dom=0, port=local)),
        unbound: (EVTCHNSTAT_unbound, 0, EvtchnStatusUnbound(dom=NO_SUCH_DOMID)),
        virq: (EVTCHNSTAT_virq, 1, VIRQ_TIMER),
        ipi: (EVTCHNSTAT_ipi, 1, None),
        pirq: (EVTCHNSTAT_pirq, 0, 200),
        8: (EVTCHNSTAT_closed, 0, None),
    }
    for port, (stat, vcpu, u) in expected.items():
        out = ok(status(xen, domu2, port))
        assert (out.status, out.vcpu, out.u) == (stat, vcpu, u), port
        # What the guest reads back from its buffer decodes to the same.
        assert EvtchnStatus.unpack(out.pack()) == out


def test_status_vcpu_follows_bind_vcpu(xen, domu2):
    port = alloc(xen, domu2)
    ok(evtchn(xen, domu2, EVTCHNOP_bind_vcpu, EvtchnBindVcpu(port=port, vcpu=1)))
    assert ok(status(xen, domu2, port)).vcpu == 1


# ================================================================ bind_vcpu
@pytest.mark.parametrize("vcpu", [2, 32, 0xFFFFFFFF])
def test_bind_vcpu_vcpu_must_exist(xen, domu2, vcpu):
    port = alloc(xen, domu2)
    assert evtchn(xen, domu2, EVTCHNOP_bind_vcpu,
                  EvtchnBindVcpu(port=port, vcpu=vcpu)) == (-ENOENT, None)
    # Checked before the port.
    assert evtchn(xen, domu2, EVTCHNOP_bind_vcpu,
                  EvtchnBindVcpu(port=BAD_PORT, vcpu=vcpu)) == (-ENOENT, None)


@pytest.mark.parametrize("port", [64, BAD_PORT, 0xFFFFFFFF])
def test_bind_vcpu_port_must_be_valid(xen, domu2, port):
    assert evtchn(xen, domu2, EVTCHNOP_bind_vcpu,
                  EvtchnBindVcpu(port=port, vcpu=1)) == (-EINVAL, None)


@pytest.mark.parametrize("kind", ["unbound", "interdomain", "pirq", "global_virq"])
def test_bind_vcpu_allowed_kinds(xen, dom0, domu2, kind):
    if kind == "unbound":
        port = alloc(xen, domu2)
    elif kind == "interdomain":
        port = alloc(xen, domu2, remote=0)
        bind_interdomain(xen, dom0, domu2.domid, port)
    elif kind == "pirq":
        assert grant_irq(xen, dom0, domu2, 11) == 0
        port = bind_pirq(xen, domu2, 11)
    else:
        port = bind_virq(xen, domu2, VIRQ_DOM_EXC, 0)
    assert evtchn(xen, domu2, EVTCHNOP_bind_vcpu, EvtchnBindVcpu(port=port, vcpu=1)) == (
        0, EvtchnBindVcpu(port=port, vcpu=1))
    assert ok(status(xen, domu2, port)).vcpu == 1


@pytest.mark.parametrize("kind", ["ipi", "timer_virq", "debug_virq", "free", "reserved"])
def test_bind_vcpu_refused_kinds(xen, domu2, kind):
    port = {
        "ipi": lambda: bind_ipi(xen, domu2, 0),
        "timer_virq": lambda: bind_virq(xen, domu2, VIRQ_TIMER, 0),
        "debug_virq": lambda: bind_virq(xen, domu2, VIRQ_DEBUG, 0),
        "free": lambda: 10,
        "reserved": lambda: 0,
    }[kind]()
    assert evtchn(xen, domu2, EVTCHNOP_bind_vcpu,
                  EvtchnBindVcpu(port=port, vcpu=1)) == (-EINVAL, None)
    assert ok(status(xen, domu2, port)).vcpu == 0


def test_bind_vcpu_moves_delivery_to_the_new_vcpu(xen, dom0, domu2):
    offered = alloc(xen, domu2, remote=0)
    local = bind_interdomain(xen, dom0, domu2.domid, offered)
    ok(evtchn(xen, domu2, EVTCHNOP_bind_vcpu, EvtchnBindVcpu(port=offered, vcpu=1)))
    assert send(xen, dom0, local) == 0
    info = SharedInfo.unpack(bytes(domu2.shared_info))
    assert info.evtchn_pending[0] == 1 << offered
    assert (info.vcpu_info[1].evtchn_pending_sel, info.vcpu_info[1].evtchn_upcall_pending) == (1, 1)
    assert (info.vcpu_info[0].evtchn_pending_sel, info.vcpu_info[0].evtchn_upcall_pending) == (0, 0)


def test_bind_vcpu_moves_a_global_virq(xen, dom0, domu2):
    port = bind_virq(xen, dom0, VIRQ_DOM_EXC, 0)
    ok(evtchn(xen, dom0, EVTCHNOP_bind_vcpu, EvtchnBindVcpu(port=port, vcpu=1)))
    # A domU shutting down raises VIRQ_DOM_EXC in dom0.
    assert hypercall(xen, domu2, HYPERVISOR_sched_op, SCHEDOP_shutdown,
                     SchedShutdown(reason=SHUTDOWN_poweroff))[0] == 0
    info = SharedInfo.unpack(bytes(dom0.shared_info))
    word = port // 64
    assert info.evtchn_pending[word] == 1 << port % 64
    assert info.vcpu_info[1].evtchn_pending_sel == 1 << word
    assert info.vcpu_info[1].evtchn_upcall_pending == 1
    assert info.vcpu_info[0].evtchn_pending_sel == 0


# ================================================================ unmask
@pytest.mark.parametrize("port", [64, BAD_PORT, 0xFFFFFFFF])
def test_unmask_invalid_port_is_einval(xen, domu, port):
    assert evtchn(xen, domu, EVTCHNOP_unmask, EvtchnUnmask(port=port)) == (-EINVAL, None)


def test_unmask_clears_the_mask_bit(xen, domu):
    port = alloc(xen, domu)
    mask(domu, port)
    assert evtchn(xen, domu, EVTCHNOP_unmask, EvtchnUnmask(port=port)) == (
        0, EvtchnUnmask(port=port))
    assert not masked(domu, port)


@pytest.mark.parametrize("port", [0, 10])
def test_unmask_of_an_unused_port_does_nothing(xen, domu, port):
    # evtchn_port_unmask() acts only on a usable (allocated) channel.
    mask(domu, port)
    assert evtchn(xen, domu, EVTCHNOP_unmask, EvtchnUnmask(port=port)) == (
        0, EvtchnUnmask(port=port))
    assert masked(domu, port)


# ================================================================ reset
def test_reset_self_closes_everything(xen, dom0, domu):
    offered = alloc(xen, domu, remote=0)
    local = bind_interdomain(xen, dom0, domu.domid, offered)
    virq = bind_virq(xen, domu, VIRQ_TIMER)
    ipi = bind_ipi(xen, domu)
    assert evtchn(xen, domu, EVTCHNOP_reset, EvtchnReset(dom=DOMID_SELF)) == (
        0, EvtchnReset(dom=DOMID_SELF))
    for port in (1, 2, offered, virq, ipi):
        assert ok(status(xen, domu, port)).status == EVTCHNSTAT_closed
    assert domu.evtchn.active == 0
    # The remote end waits for the domain that reset.
    assert ok(status(xen, dom0, local)).u == EvtchnStatusUnbound(dom=domu.domid)
    assert ok(status(xen, dom0, local)).status == EVTCHNSTAT_unbound
    # Everything can be set up afresh, lowest ports first.
    assert bind_virq(xen, domu, VIRQ_TIMER) == 1


def test_reset_self_by_domid(xen, domu):
    port = alloc(xen, domu)
    assert evtchn(xen, domu, EVTCHNOP_reset, EvtchnReset(dom=domu.domid))[0] == 0
    assert ok(status(xen, domu, port)).status == EVTCHNSTAT_closed


def test_reset_of_a_running_domain_by_dom0_is_einval(xen, dom0, domu):
    assert evtchn(xen, dom0, EVTCHNOP_reset, EvtchnReset(dom=domu.domid)) == (-EINVAL, None)
    assert ok(status(xen, domu, 1)).status == EVTCHNSTAT_unbound


def test_reset_of_a_paused_domain_by_dom0(xen, dom0, domu):
    assert domctl(xen, dom0, XEN_DOMCTL_pausedomain, domu.domid)[0] == 0
    assert evtchn(xen, dom0, EVTCHNOP_reset, EvtchnReset(dom=domu.domid))[0] == 0
    assert ok(status(xen, domu, 1)).status == EVTCHNSTAT_closed
    assert ok(status(xen, domu, 2)).status == EVTCHNSTAT_closed


def test_reset_unprivileged_on_another_domain_is_eperm(xen, dom0, domu, make_domu):
    other = make_domu()
    assert evtchn(xen, domu, EVTCHNOP_reset, EvtchnReset(dom=other.domid)) == (-EPERM, None)
    assert evtchn(xen, domu, EVTCHNOP_reset, EvtchnReset(dom=0)) == (-EPERM, None)
    # Even when the target is paused (the privilege check comes first).
    assert domctl(xen, dom0, XEN_DOMCTL_pausedomain, other.domid)[0] == 0
    assert evtchn(xen, domu, EVTCHNOP_reset, EvtchnReset(dom=other.domid)) == (-EPERM, None)
    assert ok(status(xen, other, 1)).status == EVTCHNSTAT_unbound


def test_reset_missing_domain_is_esrch(xen, domu):
    assert evtchn(xen, domu, EVTCHNOP_reset, EvtchnReset(dom=NO_SUCH_DOMID)) == (-ESRCH, None)


# ================================================================ the rest of the ABI
@pytest.mark.parametrize("cmd,arg", [
    (EVTCHNOP_init_control, EvtchnInitControl(control_gfn=0x100, offset=0, vcpu=0)),
    (EVTCHNOP_expand_array, EvtchnExpandArray(array_gfn=0x101)),
])
def test_fifo_setup_is_enosys(xen, domu, cmd, arg):
    assert evtchn(xen, domu, cmd, arg) == (-ENOSYS, None)


def test_set_priority_on_a_2level_port_is_enosys(xen, domu):
    port = alloc(xen, domu)
    assert evtchn(xen, domu, EVTCHNOP_set_priority,
                  EvtchnSetPriority(port=port, priority=3)) == (-ENOSYS, None)


def test_set_priority_checks_the_port_first(xen, domu):
    # evtchn_set_priority(): an invalid port is -EINVAL before the ABI is asked.
    assert evtchn(xen, domu, EVTCHNOP_set_priority,
                  EvtchnSetPriority(port=BAD_PORT, priority=3)) == (-EINVAL, None)


@pytest.mark.parametrize("cmd", [15, 16, 99, 0x7FFFFFFF])
def test_unknown_cmd_is_enosys(xen, domu, cmd):
    assert evtchn(xen, domu, cmd, EvtchnSend(port=1)) == (-ENOSYS, None)


def test_reset_continuation_cmd_without_a_reset_in_progress_is_ebusy(xen, domu):
    # EVTCHNOP_reset_cont (14) is Xen's own continuation of EVTCHNOP_reset;
    # do_event_channel_op() accepts it from a guest like reset, and
    # evtchn_reset(d, resuming=true) finds no reset to resume.
    assert evtchn(xen, domu, 14, EvtchnReset(dom=DOMID_SELF)) == (-EBUSY, None)
    assert ok(status(xen, domu, 1)).status == EVTCHNSTAT_unbound


ALL_OPS = [
    (EVTCHNOP_bind_interdomain, EvtchnBindInterdomain),
    (EVTCHNOP_bind_virq, EvtchnBindVirq),
    (EVTCHNOP_bind_pirq, EvtchnBindPirq),
    (EVTCHNOP_close, EvtchnClose),
    (EVTCHNOP_send, EvtchnSend),
    (EVTCHNOP_status, EvtchnStatus),
    (EVTCHNOP_alloc_unbound, EvtchnAllocUnbound),
    (EVTCHNOP_bind_ipi, EvtchnBindIpi),
    (EVTCHNOP_bind_vcpu, EvtchnBindVcpu),
    (EVTCHNOP_unmask, EvtchnUnmask),
    (EVTCHNOP_reset, EvtchnReset),
    (EVTCHNOP_init_control, EvtchnInitControl),
    (EVTCHNOP_expand_array, EvtchnExpandArray),
    (EVTCHNOP_set_priority, EvtchnSetPriority),
]


@pytest.mark.parametrize("cmd,arg_type", ALL_OPS, ids=[t.__name__ for _, t in ALL_OPS])
@pytest.mark.parametrize("wrong", ["other_struct", "none", "bytes"])
def test_wrong_argument_type_is_efault(xen, domu, cmd, arg_type, wrong):
    bad = {
        "other_struct": EvtchnUnmask(port=1) if arg_type is not EvtchnUnmask else EvtchnClose(port=1),
        "none": None,
        "bytes": b"\0" * 16,
    }[wrong]
    before = bytes(domu.shared_info)
    assert evtchn(xen, domu, cmd, bad) == (-EFAULT, None)
    assert bytes(domu.shared_info) == before
    assert ok(status(xen, domu, 3)).status == EVTCHNSTAT_closed


def test_missing_argument_is_efault(xen, domu):
    assert hypercall(xen, domu, HYPERVISOR_event_channel_op, EVTCHNOP_send) == (-EFAULT, None)
