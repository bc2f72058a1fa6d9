"""Random hypercall sequences from several domains, with domains created,
shut down and destroyed along the way, guests running programs under the
scheduler, affinity and credit changes, and paused domains stepped: no
hypercall ever raises, every one returns an int, and the machine's
invariants hold after every step.

The suite runs a fixed set of examples (the "ci" profile) so that it gives
the same verdict every time; HYPOTHESIS_PROFILE=explore searches afresh."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings, strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine, initialize, invariant, precondition, rule,
)

from hv.guest.grant_table import GrantTableFull, GuestGrantTable
from hv.host import Host
from hv.public import event_channel as ev, grant_table as gt, memory as mem, sched as sc
from hv.public.domctl import (
    XEN_DOMCTL_INTERFACE_VERSION, XEN_DOMCTL_SCHEDOP_putinfo, XEN_DOMCTL_destroydomain,
    XEN_DOMCTL_pausedomain, XEN_DOMCTL_scheduler_op, XEN_DOMCTL_setvcpuaffinity,
    XEN_DOMCTL_unpausedomain, XEN_SCHEDULER_CREDIT, XenctlBitmap, XenDomctl,
    XenDomctlSchedCredit, XenDomctlSchedulerOp, XenDomctlVcpuaffinity,
)
from hv.public.vcpu import VCPUOP_down, VCPUOP_get_runstate_info, VCPUOP_initialise, VCPUOP_up
from hv.public.xen import (
    DOMID_SELF, HYPERVISOR_domctl, HYPERVISOR_event_channel_op, HYPERVISOR_grant_table_op,
    HYPERVISOR_memory_op, HYPERVISOR_mmu_update, HYPERVISOR_mmuext_op, HYPERVISOR_multicall,
    HYPERVISOR_sched_op, HYPERVISOR_set_gdt, HYPERVISOR_set_timer_op, HYPERVISOR_vcpu_op,
    MMU_MACHPHYS_UPDATE, MMU_NORMAL_PT_UPDATE, MMUEXT_PIN_L1_TABLE, MMUEXT_PIN_L2_TABLE,
    MMUEXT_UNPIN_TABLE, MmuextOp, MmuUpdate, MulticallEntry, NR_VIRQS, VcpuGuestContext,
)
from hv.xen.audit import audit
from hv.xen.hypervisor import MiB
from xl.dombuild import build_pv_domain
from xl.privcmd import HypercallError, Privcmd

u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)
small = st.integers(0, 40)
domid_ish = st.one_of(st.integers(0, 12), st.just(DOMID_SELF), u16)
WORKLOADS = (("burn 100%",), ("burn 30%",), ("compute 2ms", "sleep 3ms", "loop"),
             ("balloon 2M", "sleep 4ms", "balloon 4M", "sleep 4ms", "loop"),
             ("echo hi", "sleep 7ms", "loop"), ("sleep 20ms", "shutdown reboot"), ("crash",),
             ("idle",))


class Machine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.host = Host(cpus=2, memory=512 * MiB, dom0_memory=64 * MiB)
        self.xen = self.host.xen
        self.pc = Privcmd(self.xen)
        self.tables: dict[int, GuestGrantTable] = {}
        self.results: list[int] = []

    # ------------------------------------------------------------ helpers
    def live(self):
        return [d for d in self.xen.domains if not d.is_dying]

    def pick(self, data_index: int):
        """A domain that can run code: a caller."""
        live = self.live()
        return live[data_index % len(live)]

    def target(self, data_index: int):
        """Any domain the hypervisor still knows, dying ones included."""
        known = list(self.xen.domains)
        return known[data_index % len(known)]

    def call(self, d, nr, *args):
        rc, _ = self.xen.hypercall(d.vcpus[0], nr, *args)
        assert isinstance(rc, int)
        return rc

    def ports_of(self, d):
        return [c.port for c in d.evtchn.chans if c.state > 1] or [1]

    # ------------------------------------------------------------ lifecycle
    @initialize()
    def three_guests(self):
        for vcpus in (1, 2, 3):
            self.create_domain(vcpus)

    @precondition(lambda self: len(self.xen.domains) < 8)
    @rule(vcpus=st.integers(1, 3))
    def create_domain(self, vcpus):
        try:
            built = build_pv_domain(self.pc, memory_kib=4096, max_vcpus=vcpus)
        except HypercallError:
            return
        d = self.xen.domains.get(built.domid)
        self.tables[d.domid] = GuestGrantTable(self.xen, d.vcpus[0])

    @precondition(lambda self: len(self.xen.domains) < 8)
    @rule(workload=st.sampled_from(WORKLOADS), vcpus=st.integers(1, 3))
    def create_guest(self, workload, vcpus):
        try:
            built = build_pv_domain(self.pc, memory_kib=4096, max_vcpus=vcpus,
                                    workload=list(workload))
        except HypercallError:
            return
        d = self.xen.domains.get(built.domid)
        self.tables[d.domid] = GuestGrantTable(self.xen, d.vcpus[0])

    @rule(i=small, vcpu=st.integers(0, 3), hard=st.integers(0, 7), soft=st.integers(0, 7),
          flags=st.integers(0, 7))
    def affinity(self, i, vcpu, hard, soft, flags):
        d = self.target(i)
        u = XenDomctlVcpuaffinity(vcpu=vcpu, flags=flags,
                                  cpumap_hard=XenctlBitmap(bitmap=bytes([hard]), nr_bits=8),
                                  cpumap_soft=XenctlBitmap(bitmap=bytes([soft]), nr_bits=8))
        op = XenDomctl(cmd=XEN_DOMCTL_setvcpuaffinity,
                       interface_version=XEN_DOMCTL_INTERFACE_VERSION, domain=d.domid, u=u)
        self.call(self.xen.hardware_domain, HYPERVISOR_domctl, op)

    @rule(i=small, weight=st.integers(0, 70000), cap=st.integers(0, 0xFFFF))
    def credit(self, i, weight, cap):
        d = self.target(i)
        u = XenDomctlSchedulerOp(sched_id=XEN_SCHEDULER_CREDIT, cmd=XEN_DOMCTL_SCHEDOP_putinfo,
                                 u=XenDomctlSchedCredit(weight=weight & 0xFFFF, cap=cap))
        op = XenDomctl(cmd=XEN_DOMCTL_scheduler_op,
                       interface_version=XEN_DOMCTL_INTERFACE_VERSION, domain=d.domid, u=u)
        self.call(self.xen.hardware_domain, HYPERVISOR_domctl, op)

    @rule(i=small, vcpu=st.integers(0, 2))
    def step(self, i, vcpu):
        d = self.pick(i)
        if d.controller_pause_count and d.vcpu(vcpu) is not None:
            try:
                self.host.step_domain(d.domid, vcpu)
            except ValueError:
                pass                # no modelled kernel there, or that vCPU runs

    @precondition(lambda self: len(self.xen.domains) > 2)
    @rule(i=small)
    def destroy_domain(self, i):
        d = self.pick(i)
        op = XenDomctl(cmd=XEN_DOMCTL_destroydomain, interface_version=XEN_DOMCTL_INTERFACE_VERSION,
                       domain=d.domid)
        rc = self.call(self.xen.hardware_domain, HYPERVISOR_domctl, op)
        assert rc == (-22 if d.domid == 0 else 0)

    @rule(i=small, cmd=st.sampled_from([XEN_DOMCTL_pausedomain, XEN_DOMCTL_unpausedomain]))
    def pause_or_unpause(self, i, cmd):
        d = self.pick(i)
        op = XenDomctl(cmd=cmd, interface_version=XEN_DOMCTL_INTERFACE_VERSION, domain=d.domid)
        self.call(self.xen.hardware_domain, HYPERVISOR_domctl, op)

    @rule(i=small, reason=st.integers(0, 255))
    def shutdown(self, i, reason):
        d = self.pick(i)
        if d.domid:
            self.call(d, HYPERVISOR_sched_op, sc.SCHEDOP_shutdown, sc.SchedShutdown(reason=reason))

    @rule(ms=st.integers(0, 2000))
    def time_passes(self, ms):
        self.host.clock.run(until=self.host.clock.now + ms * 1_000_000)

    # ------------------------------------------------------------ event channels
    @rule(i=small, remote=domid_ish, dom=domid_ish)
    def alloc_unbound(self, i, remote, dom):
        d = self.pick(i)
        self.call(d, HYPERVISOR_event_channel_op, ev.EVTCHNOP_alloc_unbound,
                  ev.EvtchnAllocUnbound(dom=dom, remote_dom=remote))

    @rule(i=small, j=small, k=small)
    def bind_interdomain(self, i, j, k):
        d, r = self.pick(i), self.target(j)
        ports = self.ports_of(r)
        self.call(d, HYPERVISOR_event_channel_op, ev.EVTCHNOP_bind_interdomain,
                  ev.EvtchnBindInterdomain(remote_dom=r.domid, remote_port=ports[k % len(ports)]))

    @rule(i=small, virq=st.integers(0, NR_VIRQS + 2), vcpu=st.integers(0, 4))
    def bind_virq(self, i, virq, vcpu):
        self.call(self.pick(i), HYPERVISOR_event_channel_op, ev.EVTCHNOP_bind_virq,
                  ev.EvtchnBindVirq(virq=virq, vcpu=vcpu))

    @rule(i=small, vcpu=st.integers(0, 4))
    def bind_ipi(self, i, vcpu):
        self.call(self.pick(i), HYPERVISOR_event_channel_op, ev.EVTCHNOP_bind_ipi,
                  ev.EvtchnBindIpi(vcpu=vcpu))

    @rule(i=small, k=small, junk=u32,
          cmd=st.sampled_from([ev.EVTCHNOP_send, ev.EVTCHNOP_close, ev.EVTCHNOP_unmask]))
    def port_op(self, i, k, junk, cmd):
        d = self.pick(i)
        ports = self.ports_of(d) + [junk]
        port = ports[k % len(ports)]
        arg = {ev.EVTCHNOP_send: ev.EvtchnSend, ev.EVTCHNOP_close: ev.EvtchnClose,
               ev.EVTCHNOP_unmask: ev.EvtchnUnmask}[cmd](port=port)
        self.call(d, HYPERVISOR_event_channel_op, cmd, arg)

    @rule(i=small, k=small, vcpu=st.integers(0, 4))
    def bind_vcpu(self, i, k, vcpu):
        d = self.pick(i)
        ports = self.ports_of(d)
        self.call(d, HYPERVISOR_event_channel_op, ev.EVTCHNOP_bind_vcpu,
                  ev.EvtchnBindVcpu(port=ports[k % len(ports)], vcpu=vcpu))

    @rule(i=small, dom=domid_ish)
    def reset(self, i, dom):
        self.call(self.pick(i), HYPERVISOR_event_channel_op, ev.EVTCHNOP_reset,
                  ev.EvtchnReset(dom=dom))

    @rule(i=small, k=small, byte=st.integers(0, 255))
    def guest_masks_ports(self, i, k, byte):
        """A guest writes its own mask bits (its memory, its business)."""
        d = self.pick(i)
        d.shared_info[2560 + k % 64] = byte

    # ------------------------------------------------------------ grants
    @rule(i=small, j=small, gpfn=st.integers(0, 1100), ro=st.booleans())
    def grant_access(self, i, j, gpfn, ro):
        d, to = self.pick(i), self.pick(j)
        table = self.tables.get(d.domid)
        mfn = self.xen.p2m.lookup(d, gpfn)
        if table is None or mfn is None:
            return
        try:
            table.grant_foreign_access(to.domid, mfn, ro)
        except GrantTableFull:
            pass

    @rule(i=small, ref=st.integers(0, 40))
    def end_access(self, i, ref):
        table = self.tables.get(self.pick(i).domid)
        if table is not None and ref >= 8:
            table.end_foreign_access_ref(ref, False)

    @rule(i=small, j=small, ref=st.integers(0, 600), flags=st.integers(0, 31),
          addr=st.integers(0, 4) .map(lambda n: n * 0x1000))
    def map_grant(self, i, j, ref, flags, addr):
        d, g = self.pick(i), self.target(j)
        self.call(d, HYPERVISOR_grant_table_op, gt.GNTTABOP_map_grant_ref,
                  (gt.GnttabMapGrantRef(host_addr=addr, flags=flags, ref=ref, dom=g.domid),))

    @rule(i=small, k=small, addr=st.integers(0, 4).map(lambda n: n * 0x1000),
          dev=st.booleans())
    def unmap_grant(self, i, k, addr, dev):
        d = self.pick(i)
        handles = sorted(d.grant_table.maptrack) or [k]
        h = handles[k % len(handles)]
        m = d.grant_table.maptrack.get(h)
        dev_addr = (m.mfn << 12) if (m is not None and dev) else 0
        self.call(d, HYPERVISOR_grant_table_op, gt.GNTTABOP_unmap_grant_ref,
                  (gt.GnttabUnmapGrantRef(host_addr=addr, dev_bus_addr=dev_addr, handle=h),))

    @rule(i=small, j=small, gpfn=st.integers(0, 1100), ref=st.integers(0, 40), accept=st.booleans())
    def transfer(self, i, j, gpfn, ref, accept):
        d, to = self.pick(i), self.pick(j)
        table = self.tables.get(to.domid)
        if accept and table is not None:
            try:
                ref = table.grant_foreign_transfer(d.domid, gpfn)
            except GrantTableFull:
                pass
        mfn = self.xen.p2m.lookup(d, gpfn) or gpfn
        self.call(d, HYPERVISOR_grant_table_op, gt.GNTTABOP_transfer,
                  (gt.GnttabTransfer(mfn=mfn, domid=to.domid, ref=ref),))

    @rule(i=small, j=small, sref=st.integers(0, 40), dgpfn=st.integers(0, 1100),
          flags=st.integers(0, 3), off=st.integers(0, 4096), length=st.integers(0, 4096))
    def copy(self, i, j, sref, dgpfn, flags, off, length):
        d, g = self.pick(i), self.pick(j)
        dmfn = self.xen.p2m.lookup(d, dgpfn) or dgpfn
        op = gt.GnttabCopy(source=gt.GnttabCopyPtr(u=sref, domid=g.domid, offset=off),
                           dest=gt.GnttabCopyPtr(u=dmfn, domid=DOMID_SELF, offset=0),
                           len=length, flags=flags)
        self.call(d, HYPERVISOR_grant_table_op, gt.GNTTABOP_copy, (op,))

    @rule(i=small, dom=domid_ish, n=st.integers(0, 70))
    def setup_table(self, i, dom, n):
        self.call(self.pick(i), HYPERVISOR_grant_table_op, gt.GNTTABOP_setup_table,
                  (gt.GnttabSetupTable(dom=dom, nr_frames=n, frame_list=(0,) * n),))

    # ------------------------------------------------------------ memory
    @rule(i=small, gpfns=st.lists(st.integers(0, 1100), max_size=5), order=st.integers(0, 10),
          dom=domid_ish, cmd=st.sampled_from([mem.XENMEM_increase_reservation,
                                              mem.XENMEM_decrease_reservation,
                                              mem.XENMEM_populate_physmap]))
    def reservation(self, i, gpfns, order, dom, cmd):
        d = self.pick(i)
        if cmd == mem.XENMEM_decrease_reservation:
            gpfns = [self.xen.p2m.lookup(d, g) or g for g in gpfns]
        self.call(d, HYPERVISOR_memory_op, cmd, mem.XenMemoryReservation(
            extent_start=tuple(gpfns), nr_extents=len(gpfns), extent_order=order, domid=dom))

    @rule(i=small, gpfn=st.integers(0, 1100),
          cmd=st.sampled_from([MMUEXT_PIN_L1_TABLE, MMUEXT_PIN_L2_TABLE, MMUEXT_UNPIN_TABLE]))
    def pin_table(self, i, gpfn, cmd):
        d = self.pick(i)
        mfn = self.xen.p2m.lookup(d, gpfn) or gpfn
        self.call(d, HYPERVISOR_mmuext_op, (MmuextOp(cmd=cmd, arg1=mfn),), DOMID_SELF)

    @rule(i=small, gpfn=st.integers(0, 1100), slot=st.integers(0, 511),
          to=st.integers(0, 1100), flags=st.integers(0, 7),
          kind=st.sampled_from([MMU_NORMAL_PT_UPDATE, MMU_MACHPHYS_UPDATE]))
    def mmu_update(self, i, gpfn, slot, to, flags, kind):
        """Page-table writes (self-references included) and M2P updates."""
        d = self.pick(i)
        table = self.xen.p2m.lookup(d, gpfn) or gpfn
        pointee = self.xen.p2m.lookup(d, to) or to
        if kind == MMU_NORMAL_PT_UPDATE:
            req = MmuUpdate(ptr=(table << 12) + slot * 8, val=(pointee << 12) | flags)
        else:
            req = MmuUpdate(ptr=(pointee << 12) | MMU_MACHPHYS_UPDATE, val=to)
        self.call(d, HYPERVISOR_mmu_update, (req,), DOMID_SELF)

    @rule(i=small, gpfns=st.lists(st.integers(0, 1100), max_size=3), entries=st.integers(0, 1600))
    def set_gdt(self, i, gpfns, entries):
        d = self.pick(i)
        frames = tuple(self.xen.p2m.lookup(d, g) or g for g in gpfns)
        self.call(d, HYPERVISOR_set_gdt, frames, entries)

    # ------------------------------------------------------------ misc
    @rule(i=small, nr=st.integers(0, 60), a=u32, b=st.one_of(st.none(), u32, st.text(max_size=3)))
    def arbitrary(self, i, nr, a, b):
        """Any hypercall number with junk arguments: an errno, never a crash."""
        d = self.pick(i)
        if nr == HYPERVISOR_domctl and d.is_privileged:
            return   # dom0 may legitimately destroy things; covered above
        self.call(d, nr, a, b)

    @rule(i=small, timeout=st.integers(-5, 10**10))
    def timer(self, i, timeout):
        self.call(self.pick(i), HYPERVISOR_set_timer_op, timeout)

    @rule(i=small, vcpu=st.integers(0, 4), cmd=st.sampled_from(
        [VCPUOP_initialise, VCPUOP_up, VCPUOP_down, VCPUOP_get_runstate_info]))
    def vcpu_op(self, i, vcpu, cmd):
        arg = VcpuGuestContext() if cmd == VCPUOP_initialise else None
        self.call(self.pick(i), HYPERVISOR_vcpu_op, cmd, vcpu, arg)

    @rule(i=small, k=small, n=st.integers(0, 3), timeout=st.integers(0, 10**9))
    def poll(self, i, k, n, timeout):
        d = self.pick(i)
        ports = self.ports_of(d)
        chosen = tuple(ports[(k + j) % len(ports)] for j in range(n))
        self.call(d, HYPERVISOR_sched_op, sc.SCHEDOP_poll,
                  sc.SchedPoll(ports=chosen or None, nr_ports=n, timeout=timeout))

    @rule(i=small, cmd=st.integers(0, 70), j=small)
    def domctl_anything(self, i, cmd, j):
        """Any domctl number, with no payload, naming any known domain: from
        dom0 (privileged) and from a guest (refused)."""
        op = XenDomctl(cmd=cmd, interface_version=XEN_DOMCTL_INTERFACE_VERSION,
                       domain=self.target(j).domid)
        if cmd not in (1, 2):    # creation and destruction have their own rules
            self.call(self.xen.hardware_domain, HYPERVISOR_domctl, op)
        self.call(self.pick(i), HYPERVISOR_domctl, op)

    @rule(i=small, nr=st.integers(0, 60), junk=st.sampled_from(["x", 1.5, [1], b"", None]))
    def junk_scalars(self, i, nr, junk):
        """Non-integers where Xen reads a register."""
        d = self.pick(i)
        if nr == HYPERVISOR_domctl and d.is_privileged:
            return
        self.call(d, nr, junk, junk)
        self.call(d, nr, junk, None, junk)

    @rule(i=small, k=small)
    def multicall(self, i, k):
        d = self.pick(i)
        ports = self.ports_of(d)
        entries = (
            MulticallEntry(op=HYPERVISOR_event_channel_op,
                           args=(ev.EVTCHNOP_send, ev.EvtchnSend(port=ports[k % len(ports)]))),
            MulticallEntry(op=HYPERVISOR_sched_op, args=(sc.SCHEDOP_yield,)),
            MulticallEntry(op=HYPERVISOR_multicall, args=((),)),
        )
        self.call(d, HYPERVISOR_multicall, entries)

    @invariant()
    def machine_is_sound(self):
        self.xen.process_pending()
        problems = audit(self.xen)
        assert not problems, problems


settings.register_profile("ci", max_examples=100, stateful_step_count=50, deadline=None,
                          derandomize=True, database=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
settings.register_profile("explore", max_examples=2000, stateful_step_count=80, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
Machine.TestCase.settings = settings.get_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
TestMachine = Machine.TestCase
