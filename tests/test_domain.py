"""Domains and vCPUs through the domain-control hypercall: create, pause,
shut down, inspect, destroy; who may do it; the info pages byte for byte."""

import struct

import pytest

from hv.public.domctl import (
    XEN_DOMCTL_CDF_hvm, XEN_DOMCTL_SCHEDOP_getinfo,
    XEN_DOMCTL_SCHEDOP_putinfo, XEN_DOMCTL_destroydomain,
    XEN_DOMCTL_getdomaininfo, XEN_DOMCTL_getvcpuinfo, XEN_DOMCTL_irq_permission,
    XEN_DOMCTL_max_mem, XEN_DOMCTL_max_vcpus, XEN_DOMCTL_pausedomain,
    XEN_DOMCTL_resumedomain, XEN_DOMCTL_scheduler_op, XEN_DOMCTL_setdomainhandle,
    XEN_DOMCTL_setvcpucontext, XEN_DOMCTL_unpausedomain, XEN_DOMINF_blocked,
    XEN_DOMINF_paused, XEN_DOMINF_shutdown, XEN_DOMINF_shutdownshift,
    XEN_INVALID_MAX_VCPU_ID, XEN_SCHEDULER_CREDIT, XenDomctlGetvcpuinfo, XenDomctlIrqPermission, XenDomctlMaxMem, XenDomctlMaxVcpus,
    XenDomctlSchedCredit, XenDomctlSchedulerOp, XenDomctlSetdomainhandle,
    XenDomctlVcpucontext,
)
from hv.public.errno import (
    EACCES, EEXIST, EFAULT, EINVAL, ENOSYS, EOVERFLOW, EPERM, ESRCH,
)
from hv.public.sched import (
    SCHEDOP_remote_shutdown, SCHEDOP_shutdown, SHUTDOWN_crash, SHUTDOWN_poweroff,
    SHUTDOWN_reboot, SHUTDOWN_suspend, SHUTDOWN_watchdog, SchedRemoteShutdown, SchedShutdown,
)
from hv.public.vcpu import RUNSTATE_offline, RUNSTATE_running
from hv.public.xen import (
    DOMID_SELF, HYPERVISOR_sched_op, PAGE_SHIFT, SIF_INITDOMAIN,
    SIF_PRIVILEGED, START_INFO_MAGIC, StartInfo, VGCF_online, VcpuGuestContext, VcpuInfo,
)
from hv.xen.domain import DOMDYING_dead
from hv.xen.dom0_build import DOM0_START_INFO_PFN

from tests.conftest import hypercall, make_host
from hv.guest.image import va_to_pfn
from tests.calls import create, domaininfo, domctl


# ---------------------------------------------------------------- creation
def test_domids_are_handed_out_in_turn_and_never_reused_at_once(xen, dom0):
    ids = [create(xen, dom0)[1] for _ in range(3)]
    assert ids == [1, 2, 3]
    assert domctl(xen, dom0, XEN_DOMCTL_destroydomain, 2)[0] == 0
    assert create(xen, dom0)[1] == 4          # the rover moves on, as Xen's does


def test_an_explicit_domid_must_be_free(xen, dom0):
    assert create(xen, dom0, domid=42) == (0, 42)
    assert create(xen, dom0, domid=42)[0] == -EEXIST


@pytest.mark.parametrize("field, value", [
    ("max_vcpus", 0), ("max_vcpus", 33), ("flags", XEN_DOMCTL_CDF_hvm), ("flags", 1 << 20),
    ("grant_opts", 0), ("grant_opts", 2), ("grant_opts", 0x11),
    ("max_grant_frames", 65), ("max_grant_frames", 0),
])
def test_createdomain_refuses_what_this_xen_cannot_provide(xen, dom0, field, value):
    before = len(xen.domains)
    assert create(xen, dom0, **{field: value})[0] == -EINVAL
    assert len(xen.domains) == before


def test_a_new_domain_is_paused_with_vcpus_down_and_no_memory(xen, dom0):
    domid = create(xen, dom0, max_vcpus=3)[1]
    i = domaininfo(xen, dom0, domid)
    assert i.flags & XEN_DOMINF_paused and i.tot_pages == 0 and i.max_pages == 0
    # Its vCPUs come with XEN_DOMCTL_max_vcpus, all down.
    assert i.nr_online_vcpus == 0 and i.max_vcpu_id == XEN_INVALID_MAX_VCPU_ID
    assert domctl(xen, dom0, XEN_DOMCTL_max_vcpus, domid, XenDomctlMaxVcpus(max=3))[0] == 0
    i = domaininfo(xen, dom0, domid)
    assert i.nr_online_vcpus == 0 and i.max_vcpu_id == 2
    d = xen.domains.get(domid)
    assert [v.runstate for v in d.vcpus] == [RUNSTATE_offline] * 3


def test_guests_start_with_event_upcalls_masked(xen, make_domu):
    d = make_domu(16, vcpus=2)
    for v in d.vcpus:
        vi = VcpuInfo.unpack(d.shared_info, v.vcpu_info_offset)
        assert vi.evtchn_upcall_mask == 1 and vi.evtchn_upcall_pending == 0


# ---------------------------------------------------------------- privilege
def test_only_the_control_domain_may_use_domctl(xen, make_domu):
    a, b = make_domu(16), make_domu(16)
    assert domctl(xen, a, XEN_DOMCTL_pausedomain, b.domid) == (-EPERM, None)
    assert domctl(xen, a, XEN_DOMCTL_getdomaininfo, a.domid) == (-EPERM, None)
    assert create(xen, a)[0] == -EPERM
    assert b.controller_pause_count == 0


def test_a_mismatched_interface_version_is_refused(xen, dom0):
    assert domctl(xen, dom0, XEN_DOMCTL_getdomaininfo, 0, version=0x14) == (-EACCES, None)


def test_unknown_domain_and_unknown_op(xen, dom0):
    assert domctl(xen, dom0, XEN_DOMCTL_pausedomain, 77) == (-ESRCH, None)
    assert domctl(xen, dom0, 200, 0) == (-ENOSYS, None)
    assert domctl(xen, dom0, XEN_DOMCTL_max_mem, 0, u=XenDomctlMaxVcpus(max=1)) == (-EFAULT, None)


def test_remote_shutdown_is_for_the_control_domain(xen, dom0, make_domu):
    a, b = make_domu(16), make_domu(16)
    req = SchedRemoteShutdown(domain_id=b.domid, reason=SHUTDOWN_poweroff)
    assert hypercall(xen, a, HYPERVISOR_sched_op, SCHEDOP_remote_shutdown, req)[0] == -EPERM
    assert not b.is_shut_down
    missing = SchedRemoteShutdown(domain_id=500, reason=SHUTDOWN_poweroff)
    assert hypercall(xen, dom0, HYPERVISOR_sched_op, SCHEDOP_remote_shutdown, missing)[0] == -ESRCH
    assert hypercall(xen, dom0, HYPERVISOR_sched_op, SCHEDOP_remote_shutdown, req)[0] == 0
    assert b.is_shut_down and b.shutdown_code == SHUTDOWN_poweroff


def test_irq_permission_makes_a_driver_domain(xen, dom0, make_domu):
    d = make_domu(16)
    assert not d.has_physdev
    assert domctl(xen, dom0, XEN_DOMCTL_irq_permission, d.domid,
                  XenDomctlIrqPermission(pirq=11, allow_access=1))[0] == 0
    assert d.has_physdev and d.irq_caps == {11}
    assert domctl(xen, dom0, XEN_DOMCTL_irq_permission, d.domid,
                  XenDomctlIrqPermission(pirq=11, allow_access=0))[0] == 0
    assert not d.has_physdev
    assert domctl(xen, dom0, XEN_DOMCTL_irq_permission, d.domid,
                  XenDomctlIrqPermission(pirq=4096, allow_access=1))[0] == -EINVAL


# ---------------------------------------------------------------- pausing
def test_pauses_are_counted(xen, dom0, make_domu):
    d = make_domu(16)
    for _ in range(3):
        assert domctl(xen, dom0, XEN_DOMCTL_pausedomain, d.domid)[0] == 0
    assert d.controller_pause_count == 3 and d.vcpus[0].runstate == RUNSTATE_offline
    for _ in range(2):
        domctl(xen, dom0, XEN_DOMCTL_unpausedomain, d.domid)
    assert domaininfo(xen, dom0, d.domid).flags & XEN_DOMINF_paused
    domctl(xen, dom0, XEN_DOMCTL_unpausedomain, d.domid)
    assert not domaininfo(xen, dom0, d.domid).flags & XEN_DOMINF_paused
    assert d.vcpus[0].runstate == RUNSTATE_running      # a pCPU was idle
    assert domctl(xen, dom0, XEN_DOMCTL_unpausedomain, d.domid)[0] == -EINVAL


def test_the_pause_count_stops_at_255(xen, dom0, make_domu):
    d = make_domu(16)
    for _ in range(255):
        domctl(xen, dom0, XEN_DOMCTL_pausedomain, d.domid)
    assert domctl(xen, dom0, XEN_DOMCTL_pausedomain, d.domid)[0] == -EOVERFLOW
    assert d.controller_pause_count == 255


def test_a_domain_may_not_pause_or_destroy_itself(xen, dom0):
    assert domctl(xen, dom0, XEN_DOMCTL_pausedomain, 0)[0] == -EINVAL
    assert domctl(xen, dom0, XEN_DOMCTL_destroydomain, 0)[0] == -EINVAL
    assert domctl(xen, dom0, XEN_DOMCTL_resumedomain, 0)[0] == -EINVAL
    assert dom0.controller_pause_count == 0 and not dom0.is_dying


# ---------------------------------------------------------------- shutdown
@pytest.mark.parametrize("reason, letter", [
    (SHUTDOWN_poweroff, "-"), (SHUTDOWN_reboot, "r"), (SHUTDOWN_suspend, "s"),
    (SHUTDOWN_crash, "c"), (SHUTDOWN_watchdog, "w"),
])
def test_shutdown_reasons_show_in_domaininfo_and_xl_letters(xen, dom0, make_domu, reason, letter):
    d = make_domu(16)
    assert hypercall(xen, d, HYPERVISOR_sched_op, SCHEDOP_shutdown, SchedShutdown(reason=reason))[0] == 0
    i = domaininfo(xen, dom0, d.domid)
    assert i.flags & XEN_DOMINF_shutdown
    assert (i.flags >> XEN_DOMINF_shutdownshift) & 0xFF == reason
    assert d.state_letters() == f"---s{letter}-"
    assert d.vcpus[0].runstate == RUNSTATE_offline


def test_the_first_shutdown_reason_sticks(xen, make_domu):
    d = make_domu(16)
    hypercall(xen, d, HYPERVISOR_sched_op, SCHEDOP_shutdown, SchedShutdown(reason=SHUTDOWN_reboot))
    hypercall(xen, d, HYPERVISOR_sched_op, SCHEDOP_shutdown, SchedShutdown(reason=SHUTDOWN_crash))
    assert d.shutdown_code == SHUTDOWN_reboot


def test_resume_undoes_a_suspend(xen, dom0, make_domu):
    d = make_domu(16)
    hypercall(xen, d, HYPERVISOR_sched_op, SCHEDOP_shutdown, SchedShutdown(reason=SHUTDOWN_suspend))
    assert domctl(xen, dom0, XEN_DOMCTL_resumedomain, d.domid)[0] == 0
    assert not d.is_shut_down and d.vcpus[0].runstate == RUNSTATE_running
    assert not domaininfo(xen, dom0, d.domid).flags & XEN_DOMINF_shutdown


# ---------------------------------------------------------------- info
def test_getdomaininfo_of_a_missing_id_gives_the_next_domain(xen, dom0, make_domu):
    d = make_domu(16)
    rc, out = domctl(xen, dom0, XEN_DOMCTL_getdomaininfo, d.domid - 1 if d.domid > 1 else 1)
    assert rc == 0 and out.domain == d.domid == out.u.domain
    assert domctl(xen, dom0, XEN_DOMCTL_getdomaininfo, d.domid + 1)[0] == -ESRCH
    assert domctl(xen, dom0, XEN_DOMCTL_getdomaininfo, DOMID_SELF)[0] == -EINVAL


def test_domaininfo_reports_memory_vcpus_and_blocked_state(xen, dom0, make_domu):
    d = make_domu(32, vcpus=2)
    i = domaininfo(xen, dom0, d.domid)
    assert i.tot_pages == 32 * 256 and i.max_pages == 32 * 256 + 256
    assert i.nr_online_vcpus == 1 and i.max_vcpu_id == 1
    assert i.shared_info_frame == d.shared_info_mfn
    assert not i.flags & XEN_DOMINF_blocked
    from hv.public.sched import SCHEDOP_block
    hypercall(xen, d, HYPERVISOR_sched_op, SCHEDOP_block)
    assert domaininfo(xen, dom0, d.domid).flags & XEN_DOMINF_blocked


def test_max_mem_sets_the_limit_in_kib(xen, dom0, make_domu):
    d = make_domu(16)
    assert domctl(xen, dom0, XEN_DOMCTL_max_mem, d.domid, XenDomctlMaxMem(max_memkb=8192))[0] == 0
    assert d.max_pages == 2048 and d.tot_pages == 4096   # over the limit: no more allocations
    from hv.public.memory import XENMEM_increase_reservation, XenMemoryReservation
    from hv.public.xen import HYPERVISOR_memory_op
    done, _ = hypercall(xen, d, HYPERVISOR_memory_op, XENMEM_increase_reservation,
                        XenMemoryReservation(extent_start=(0,), nr_extents=1, domid=DOMID_SELF))
    assert done == 0


def test_max_vcpus_must_repeat_the_number_given_at_creation(xen, dom0, make_domu):
    d = make_domu(16, vcpus=2)
    v0 = d.vcpus[0]
    assert domctl(xen, dom0, XEN_DOMCTL_max_vcpus, d.domid, XenDomctlMaxVcpus(max=2))[0] == 0
    assert d.vcpus[0] is v0 and len(d.vcpus) == 2        # made once, kept
    assert domctl(xen, dom0, XEN_DOMCTL_max_vcpus, d.domid, XenDomctlMaxVcpus(max=4))[0] == -EINVAL


def test_vcpus_made_after_a_shutdown_are_paused_for_it(xen, dom0):
    domid = create(xen, dom0, max_vcpus=2)[1]
    req = SchedRemoteShutdown(domain_id=domid, reason=SHUTDOWN_suspend)
    assert hypercall(xen, dom0, HYPERVISOR_sched_op, SCHEDOP_remote_shutdown, req)[0] == 0
    assert domctl(xen, dom0, XEN_DOMCTL_max_vcpus, domid, XenDomctlMaxVcpus(max=2))[0] == 0
    assert domctl(xen, dom0, XEN_DOMCTL_setvcpucontext, domid, XenDomctlVcpucontext(
        vcpu=0, ctxt=VcpuGuestContext(flags=VGCF_online)))[0] == 0
    assert domctl(xen, dom0, XEN_DOMCTL_unpausedomain, domid)[0] == 0
    v = xen.domains.get(domid).vcpus[0]
    assert v.paused_for_shutdown and not v.runnable and v.runstate == RUNSTATE_offline


def test_setvcpucontext_brings_a_vcpu_online(xen, dom0, make_domu):
    d = make_domu(16, vcpus=2)
    v1 = d.vcpus[1]
    ctxt = VcpuGuestContext(flags=VGCF_online)
    assert domctl(xen, dom0, XEN_DOMCTL_setvcpucontext, d.domid,
                  XenDomctlVcpucontext(vcpu=1, ctxt=ctxt))[0] == 0
    # Online and given the idle pCPU at once.
    assert v1.is_initialised and v1.context is ctxt and v1.runstate == RUNSTATE_running
    assert domctl(xen, dom0, XEN_DOMCTL_setvcpucontext, d.domid,
                  XenDomctlVcpucontext(vcpu=5, ctxt=ctxt))[0] == -EINVAL
    rc, out = domctl(xen, dom0, XEN_DOMCTL_getvcpuinfo, d.domid, XenDomctlGetvcpuinfo(vcpu=1))
    assert rc == 0 and out.u.online == 1 and out.u.blocked == 0
    assert domctl(xen, dom0, XEN_DOMCTL_getvcpuinfo, d.domid, XenDomctlGetvcpuinfo(vcpu=2))[0] == -EINVAL


def test_credit_scheduler_parameters(xen, dom0, make_domu):
    d = make_domu(16)

    def sched(cmd, weight=0, cap=0, sched_id=XEN_SCHEDULER_CREDIT):
        return domctl(xen, dom0, XEN_DOMCTL_scheduler_op, d.domid, XenDomctlSchedulerOp(
            sched_id=sched_id, cmd=cmd, u=XenDomctlSchedCredit(weight=weight, cap=cap)))

    rc, out = sched(XEN_DOMCTL_SCHEDOP_getinfo)
    assert rc == 0 and (out.u.u.weight, out.u.u.cap) == (256, 0)
    assert sched(XEN_DOMCTL_SCHEDOP_putinfo, weight=512, cap=50)[0] == 0
    # weight 0 and cap 0xffff leave a parameter alone.
    assert sched(XEN_DOMCTL_SCHEDOP_putinfo, weight=0, cap=0xFFFF)[0] == 0
    rc, out = sched(XEN_DOMCTL_SCHEDOP_getinfo)
    assert (out.u.u.weight, out.u.u.cap) == (512, 50)
    assert sched(XEN_DOMCTL_SCHEDOP_getinfo, sched_id=6)[0] == -EINVAL
    assert sched(7)[0] == -EINVAL


def test_setdomainhandle(xen, dom0, make_domu):
    d = make_domu(16)
    uuid = tuple(range(16))
    assert domctl(xen, dom0, XEN_DOMCTL_setdomainhandle, d.domid,
                  XenDomctlSetdomainhandle(handle=uuid))[0] == 0
    assert domaininfo(xen, dom0, d.domid).handle == uuid


# ---------------------------------------------------------------- destruction
def test_destroy_releases_every_frame_port_and_grant_frame(xen, dom0, make_domu):
    free = xen.free_pages
    d = make_domu(16)
    assert xen.free_pages < free
    assert domctl(xen, dom0, XEN_DOMCTL_destroydomain, d.domid)[0] == 0
    assert xen.domains.get(d.domid) is None and xen.free_pages == free
    assert d.is_dying == DOMDYING_dead and d.evtchn.active == 0


def test_destroying_a_destroyed_domain(xen, dom0, make_domu):
    d = make_domu(16)
    domctl(xen, dom0, XEN_DOMCTL_destroydomain, d.domid)
    assert domctl(xen, dom0, XEN_DOMCTL_destroydomain, d.domid)[0] == -ESRCH


# ---------------------------------------------------------------- info pages
def test_dom0_start_info_byte_for_byte(host):
    xen, d0 = host.xen, host.dom0
    raw = bytes(xen.ram.peek(xen.p2m.lookup(d0, DOM0_START_INFO_PFN))[:StartInfo.SIZE])
    assert raw[:32] == START_INFO_MAGIC.ljust(32, b"\0")
    nr_pages, shared_info, flags = struct.unpack_from("<QQI", raw, 32)
    assert nr_pages == d0.tot_pages
    assert shared_info == d0.shared_info_mfn << PAGE_SHIFT
    assert flags == SIF_PRIVILEGED | SIF_INITDOMAIN
    assert raw[StartInfo.offsetof("cmd_line"):].startswith(b"console=hvc0\0")
    assert xen.version.commandline == "dom0_mem=128M"   # Xen's own command line


def test_a_guest_start_info_names_its_store_and_console(xen, make_domu):
    d = make_domu(16)
    v0 = d.vcpus[0]
    start_info_pfn = va_to_pfn(v0.context.user_regs.rsi)     # the kernel's direct map
    si = StartInfo.unpack(xen.ram.peek(xen.p2m.lookup(d, start_info_pfn)))
    assert si.magic.rstrip(b"\0") == START_INFO_MAGIC and si.flags == 0
    assert si.nr_pages == 4096 and si.shared_info == d.shared_info_mfn << PAGE_SHIFT
    assert xen.frames.owner(si.store_mfn) is d and xen.frames.owner(si.console_mfn) is d
    assert d.evtchn.chans[si.store_evtchn].remote_domid == 0
    assert d.evtchn.chans[si.console_evtchn].remote_domid == 0


def test_a_smaller_machine_than_dom0_cannot_boot():
    from hv.host import Host
    from hv.xen.errors import XenError
    with pytest.raises(XenError):
        Host(memory=64 << 20, dom0_memory=128 << 20)


def test_two_hosts_from_the_same_config_are_identical():
    a, b = make_host(), make_host()
    def formatted(h):
        return [r.format() for r in h.xen.trace]
    assert formatted(a) == formatted(b) and a.xen.free_pages == b.xen.free_pages


def test_a_missing_domain_is_esrch_before_privilege_is_checked(xen, make_domu):
    """do_domctl() looks the domain up before asking XSM."""
    d = make_domu(16)
    assert domctl(xen, d, XEN_DOMCTL_pausedomain, 900) == (-ESRCH, None)
    assert domctl(xen, d, 200, 900) == (-ESRCH, None)


def test_set_virq_handler_routes_a_global_virq_to_another_domain(xen, dom0, make_domu):
    from hv.public.domctl import XEN_DOMCTL_set_virq_handler, XenDomctlSetVirqHandler
    from hv.public.event_channel import EVTCHNOP_bind_virq, EvtchnBindVirq
    from hv.public.xen import HYPERVISOR_event_channel_op, VIRQ_DOM_EXC, VIRQ_TIMER
    xs, victim = make_domu(16), make_domu(16)
    _, bound = hypercall(xen, xs, HYPERVISOR_event_channel_op, EVTCHNOP_bind_virq,
                         EvtchnBindVirq(virq=VIRQ_DOM_EXC, vcpu=0))
    assert domctl(xen, dom0, XEN_DOMCTL_set_virq_handler, xs.domid,
                  XenDomctlSetVirqHandler(virq=VIRQ_DOM_EXC))[0] == 0
    assert domctl(xen, dom0, XEN_DOMCTL_set_virq_handler, xs.domid,
                  XenDomctlSetVirqHandler(virq=VIRQ_TIMER))[0] == -EINVAL
    hypercall(xen, victim, HYPERVISOR_sched_op, SCHEDOP_shutdown,
              SchedShutdown(reason=SHUTDOWN_crash))
    assert xen.evtchn.is_pending(xs, bound.port)
    # The handler's own death hands the VIRQ back to the hardware domain.
    domctl(xen, dom0, XEN_DOMCTL_destroydomain, xs.domid)
    assert xen.evtchn.global_virq_handlers == {}
