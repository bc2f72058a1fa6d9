"""Event channels (the role of Xen's common/event_channel.c and event_2l.c).

Each domain has ports 0..max_evtchn_port (port 0 reserved), grown in buckets
of 64 as Xen does. A port is free, unbound (waiting for a named remote
domain), interdomain, or bound to a VIRQ, a PIRQ or an IPI.

Delivery is the two-level ABI on the bytes of the domain's shared_info page:
set the port's pending bit; unless the port is masked, set its word's bit in
the target vCPU's selector and raise evtchn_upcall_pending, then kick the
vCPU. A pending edge on a masked port is not signalled (the "lost edge");
unmasking re-raises it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hv.public.errno import (
    EAGAIN, EBUSY, EEXIST, EINVAL, ENOENT, ENOSPC, ENOSYS, EPERM, ESRCH,
)
from hv.public.event_channel import (
    EVTCHN_2L_NR_CHANNELS, EVTCHNOP_alloc_unbound, EVTCHNOP_bind_interdomain,
    EVTCHNOP_bind_ipi, EVTCHNOP_bind_pirq, EVTCHNOP_bind_vcpu, EVTCHNOP_bind_virq,
    EVTCHNOP_close, EVTCHNOP_expand_array, EVTCHNOP_init_control, EVTCHNOP_reset,
    EVTCHNOP_reset_cont,
    EVTCHNOP_send, EVTCHNOP_set_priority, EVTCHNOP_status, EVTCHNOP_unmask,
    EVTCHNSTAT_closed, EVTCHNSTAT_interdomain, EVTCHNSTAT_ipi, EVTCHNSTAT_pirq,
    EVTCHNSTAT_unbound, EVTCHNSTAT_virq, EvtchnAllocUnbound, EvtchnBindInterdomain,
    EvtchnBindIpi, EvtchnBindPirq, EvtchnBindVcpu, EvtchnBindVirq, EvtchnClose,
    EvtchnExpandArray, EvtchnInitControl, EvtchnReset, EvtchnSend, EvtchnSetPriority,
    EvtchnStatus, EvtchnStatusInterdomain, EvtchnStatusUnbound, EvtchnUnmask,
)
from hv.public.xen import (
    DOMID_SELF, NR_VIRQS, SHINFO_EVTCHN_MASK, SHINFO_EVTCHN_PENDING,
    VCPUINFO_PENDING_SEL, VCPUINFO_UPCALL_PENDING,
    VIRQ_DEBUG, VIRQ_DOM_EXC, VIRQ_NAMES, VIRQ_TIMER, VIRQ_XENOPROF, VIRQ_XENPMU,
)
from hv.xen.dispatch import SubOps
from hv.xen.errors import XenError

if TYPE_CHECKING:
    from hv.xen.domain import VCPU, Domain
    from hv.xen.hypervisor import Xen

ECS_FREE = 0
ECS_RESERVED = 1
ECS_UNBOUND = 2
ECS_INTERDOMAIN = 3
ECS_PIRQ = 4
ECS_VIRQ = 5
ECS_IPI = 6

ECS_NAMES = ("free", "reserved", "unbound", "interdomain", "pirq", "virq", "ipi")

EVTCHNS_PER_BUCKET = 64


def virq_is_global(virq: int) -> bool:
    """Per-vCPU VIRQs are bound on any vCPU; global ones only on vCPU 0."""
    # x86 has no per-vCPU architectural VIRQs: VIRQ_ARCH_* are global too.
    return virq not in (VIRQ_TIMER, VIRQ_DEBUG, VIRQ_XENOPROF, VIRQ_XENPMU)


class Evtchn:
    __slots__ = ("port", "state", "notify_vcpu_id", "remote_domid", "remote_dom",
                 "remote_port", "pirq", "virq")

    def __init__(self, port: int):
        self.port = port
        self.state = ECS_FREE
        self.notify_vcpu_id = 0
        self.remote_domid = 0      # unbound: who may bind
        self.remote_dom = None     # interdomain: the peer Domain
        self.remote_port = 0
        self.pirq = 0
        self.virq = 0

    def __repr__(self) -> str:
        return f"<evtchn {self.port} {ECS_NAMES[self.state]}>"


class EvtchnDomain:
    """A domain's event-channel state."""

    __slots__ = ("chans", "max_port", "active", "pirq_to_evtchn")

    def __init__(self, max_port: int):
        self.chans: list[Evtchn] = []
        self.max_port = max_port
        self.active = 0
        self.pirq_to_evtchn: dict[int, int] = {}

    @property
    def valid(self) -> int:
        return len(self.chans)

    def chan(self, port: int) -> Evtchn | None:
        """_evtchn_from_port(): None when the port is not valid."""
        return self.chans[port] if 0 <= port < len(self.chans) else None


class EventChannels:
    def __init__(self, xen: "Xen"):
        self.xen = xen
        # Which domain receives each global VIRQ (default: the hardware domain).
        self.global_virq_handlers: dict[int, "Domain"] = {}
        self._ops = SubOps({
            EVTCHNOP_alloc_unbound: (self.evtchn_alloc_unbound, EvtchnAllocUnbound),
            EVTCHNOP_bind_interdomain: (self.evtchn_bind_interdomain, EvtchnBindInterdomain),
            EVTCHNOP_bind_virq: (self.evtchn_bind_virq, EvtchnBindVirq),
            EVTCHNOP_bind_ipi: (self.evtchn_bind_ipi, EvtchnBindIpi),
            EVTCHNOP_bind_pirq: (self.evtchn_bind_pirq, EvtchnBindPirq),
            EVTCHNOP_close: (self.evtchn_close_op, EvtchnClose),
            EVTCHNOP_send: (self.evtchn_send_op, EvtchnSend),
            EVTCHNOP_status: (self.evtchn_status, EvtchnStatus),
            EVTCHNOP_bind_vcpu: (self.evtchn_bind_vcpu, EvtchnBindVcpu),
            EVTCHNOP_unmask: (self.evtchn_unmask, EvtchnUnmask),
            EVTCHNOP_reset: (self.evtchn_reset_op, EvtchnReset),
            EVTCHNOP_reset_cont: (self.evtchn_reset_cont, EvtchnReset),
            EVTCHNOP_init_control: (self.evtchn_fifo_unsupported, EvtchnInitControl),
            EVTCHNOP_expand_array: (self.evtchn_fifo_unsupported, EvtchnExpandArray),
            EVTCHNOP_set_priority: (self.evtchn_set_priority, EvtchnSetPriority),
        })

    # ------------------------------------------------------------ dispatch
    def do_event_channel_op(self, v: "VCPU", cmd: int, arg):
        """Returns (rc, arg as Xen leaves it)."""
        return self._ops.lookup(cmd, arg)(v, arg)

    # ------------------------------------------------------------ per domain
    def domain_init(self, d: "Domain", max_port: int) -> None:
        ed = d.evtchn = EvtchnDomain(min(max_port, 0x7FFFFFFF))
        self._grow(ed, 0)
        ed.chans[0].state = ECS_RESERVED

    def domain_destroy(self, d: "Domain") -> None:
        """Close every port (evtchn_destroy())."""
        ed = d.evtchn
        for port in range(ed.valid - 1, 0, -1):
            if ed.chans[port].state not in (ECS_FREE, ECS_RESERVED):
                self.evtchn_close(d, port)
        for virq, handler in list(self.global_virq_handlers.items()):
            if handler is d:
                del self.global_virq_handlers[virq]

    @staticmethod
    def _grow(ed: EvtchnDomain, port: int) -> None:
        while port >= len(ed.chans):
            base = len(ed.chans)
            ed.chans.extend(Evtchn(p) for p in range(base, base + EVTCHNS_PER_BUCKET))

    def _allocate_port(self, d: "Domain", port: int) -> int:
        ed = d.evtchn
        if port > ed.max_port or port >= EVTCHN_2L_NR_CHANNELS:
            return -ENOSPC
        chn = ed.chan(port)
        if chn is not None:
            if chn.state != ECS_FREE:
                return -EBUSY
        else:
            self._grow(ed, port)
        return 0

    def get_free_port(self, d: "Domain") -> int:
        if d.is_dying:
            raise XenError(EINVAL)
        ed = d.evtchn
        for chn in ed.chans:
            if chn.port > ed.max_port:
                raise XenError(ENOSPC)
            if chn.state == ECS_FREE:
                return chn.port
        port = ed.valid
        rc = self._allocate_port(d, port)
        if rc < 0:
            raise XenError(-rc)
        return port

    def _domain_by_any_id(self, v: "VCPU", domid: int) -> "Domain":
        d = self.xen.domains.by_any_id(v.domain, domid)
        if d is None:
            raise XenError(ESRCH)
        return d

    def _bind(self, d: "Domain", port: int, state: int, vcpu: int = 0) -> Evtchn:
        chn = d.evtchn.chans[port]
        chn.state = state
        chn.notify_vcpu_id = vcpu
        d.evtchn.active += 1
        return chn

    def evtchn_free(self, d: "Domain", chn: Evtchn) -> None:
        self.clear_pending(d, chn.port)
        d.evtchn.active -= 1
        chn.state = ECS_FREE
        chn.notify_vcpu_id = 0
        chn.remote_dom = None
        chn.remote_domid = chn.remote_port = chn.pirq = chn.virq = 0

    # ------------------------------------------------------------ sub-ops
    def evtchn_alloc_unbound(self, v: "VCPU", op: EvtchnAllocUnbound):
        d = self._domain_by_any_id(v, op.dom)
        port = self.get_free_port(d)
        self.xen.xsm.target(v.domain, d)
        chn = self._bind(d, port, ECS_UNBOUND)
        chn.remote_domid = v.domain.domid if op.remote_dom == DOMID_SELF else op.remote_dom
        return 0, EvtchnAllocUnbound(dom=op.dom, remote_dom=op.remote_dom, port=port)

    def evtchn_bind_interdomain(self, v: "VCPU", op: EvtchnBindInterdomain):
        ld = v.domain
        rd = self._domain_by_any_id(v, op.remote_dom)
        lport = self.get_free_port(ld)
        rchn = rd.evtchn.chan(op.remote_port)
        if rchn is None or rchn.state != ECS_UNBOUND or rchn.remote_domid != ld.domid:
            raise XenError(EINVAL)
        lchn = self._bind(ld, lport, ECS_INTERDOMAIN)
        lchn.remote_dom, lchn.remote_port = rd, op.remote_port
        rchn.state = ECS_INTERDOMAIN
        rchn.remote_dom, rchn.remote_port = ld, lport
        # Notifications sent while the remote port was unbound were dropped;
        # Xen makes up for them by always raising the new local port once.
        self.set_pending(ld, lchn.notify_vcpu_id, lport)
        return 0, EvtchnBindInterdomain(
            remote_dom=op.remote_dom, remote_port=op.remote_port, local_port=lport)

    def evtchn_bind_virq(self, v: "VCPU", op: EvtchnBindVirq):
        d = v.domain
        virq, vcpu_id = op.virq, op.vcpu
        if virq >= NR_VIRQS:
            raise XenError(EINVAL)
        if virq_is_global(virq) and vcpu_id != 0:
            raise XenError(EINVAL)
        target = d.vcpu(vcpu_id)
        if target is None:
            raise XenError(ENOENT)
        if target.virq_to_evtchn[virq]:
            raise XenError(EEXIST)
        port = self.get_free_port(d)
        chn = self._bind(d, port, ECS_VIRQ, vcpu_id)
        chn.virq = virq
        target.virq_to_evtchn[virq] = port
        return 0, EvtchnBindVirq(virq=virq, vcpu=vcpu_id, port=port)

    def evtchn_bind_ipi(self, v: "VCPU", op: EvtchnBindIpi):
        d = v.domain
        if d.vcpu(op.vcpu) is None:
            raise XenError(ENOENT)
        port = self.get_free_port(d)
        self._bind(d, port, ECS_IPI, op.vcpu)
        return 0, EvtchnBindIpi(vcpu=op.vcpu, port=port)

    def evtchn_bind_pirq(self, v: "VCPU", op: EvtchnBindPirq):
        d = v.domain
        ed = d.evtchn
        if op.pirq >= d.nr_pirqs:
            raise XenError(EINVAL)
        if not self.xen.xsm.pirq_access(d, op.pirq):
            raise XenError(EPERM)
        if op.pirq in ed.pirq_to_evtchn:
            raise XenError(EEXIST)
        port = self.get_free_port(d)
        chn = self._bind(d, port, ECS_PIRQ)
        chn.pirq = op.pirq
        ed.pirq_to_evtchn[op.pirq] = port
        return 0, EvtchnBindPirq(pirq=op.pirq, flags=op.flags, port=port)

    def evtchn_close_op(self, v: "VCPU", op: EvtchnClose):
        self.evtchn_close(v.domain, op.port)
        return 0, op

    def evtchn_close(self, d1: "Domain", port1: int) -> None:
        chn1 = d1.evtchn.chan(port1)
        if chn1 is None or chn1.state in (ECS_FREE, ECS_RESERVED):
            raise XenError(EINVAL)
        state = chn1.state
        if state == ECS_PIRQ:
            d1.evtchn.pirq_to_evtchn.pop(chn1.pirq, None)
        elif state == ECS_VIRQ:
            owner = d1.vcpus[0 if virq_is_global(chn1.virq) else chn1.notify_vcpu_id]
            owner.virq_to_evtchn[chn1.virq] = 0
        elif state == ECS_INTERDOMAIN:
            d2, port2 = chn1.remote_dom, chn1.remote_port
            chn2 = d2.evtchn.chans[port2]
            self.evtchn_free(d1, chn1)
            # The peer stays allocated, waiting for the closer to bind again.
            chn2.state = ECS_UNBOUND
            chn2.remote_dom = None
            chn2.remote_port = 0
            chn2.remote_domid = d1.domid
            self.xen.trace.emit("evtchn", d1.domid, -1, "close", port1, (d2.domid, port2))
            return
        self.evtchn_free(d1, chn1)
        self.xen.trace.emit("evtchn", d1.domid, -1, "close", port1, None)

    def evtchn_send_op(self, v: "VCPU", op: EvtchnSend):
        self.evtchn_send(v.domain, op.port)
        return 0, op

    def evtchn_send(self, ld: "Domain", lport: int) -> None:
        chans = ld.evtchn.chans
        if not 0 <= lport < len(chans):
            raise XenError(EINVAL)
        lchn = chans[lport]
        state = lchn.state
        if state == ECS_INTERDOMAIN:
            rd = lchn.remote_dom
            rchn = rd.evtchn.chans[lchn.remote_port]
            self.set_pending(rd, rchn.notify_vcpu_id, lchn.remote_port)
        elif state == ECS_IPI:
            self.set_pending(ld, lchn.notify_vcpu_id, lport)
        elif state != ECS_UNBOUND:  # unbound: silently dropped
            raise XenError(EINVAL)

    def evtchn_status(self, v: "VCPU", op: EvtchnStatus):
        d = self._domain_by_any_id(v, op.dom)
        chn = d.evtchn.chan(op.port)
        if chn is None:
            raise XenError(EINVAL)
        self.xen.xsm.target(v.domain, d)
        state = chn.state
        u = None
        if state in (ECS_FREE, ECS_RESERVED):
            status = EVTCHNSTAT_closed
        elif state == ECS_UNBOUND:
            status = EVTCHNSTAT_unbound
            u = EvtchnStatusUnbound(dom=chn.remote_domid)
        elif state == ECS_INTERDOMAIN:
            status = EVTCHNSTAT_interdomain
            u = EvtchnStatusInterdomain(dom=chn.remote_dom.domid, port=chn.remote_port)
        elif state == ECS_PIRQ:
            status, u = EVTCHNSTAT_pirq, chn.pirq
        elif state == ECS_VIRQ:
            status, u = EVTCHNSTAT_virq, chn.virq
        else:
            status = EVTCHNSTAT_ipi
        return 0, EvtchnStatus(dom=op.dom, port=op.port, status=status,
                               vcpu=chn.notify_vcpu_id, u=u)

    def evtchn_bind_vcpu(self, v: "VCPU", op: EvtchnBindVcpu):
        d = v.domain
        if d.vcpu(op.vcpu) is None:
            raise XenError(ENOENT)
        chn = d.evtchn.chan(op.port)
        if chn is None:
            raise XenError(EINVAL)
        if chn.state == ECS_VIRQ:
            if not virq_is_global(chn.virq):
                raise XenError(EINVAL)
        elif chn.state not in (ECS_UNBOUND, ECS_INTERDOMAIN, ECS_PIRQ):
            raise XenError(EINVAL)
        chn.notify_vcpu_id = op.vcpu
        return 0, op

    def evtchn_unmask(self, v: "VCPU", op: EvtchnUnmask):
        d = v.domain
        chn = d.evtchn.chan(op.port)
        if chn is None:
            raise XenError(EINVAL)
        self.unmask(d, chn)
        return 0, op

    def evtchn_reset_op(self, v: "VCPU", op: EvtchnReset):
        d = self._domain_by_any_id(v, op.dom)
        self.xen.xsm.target(v.domain, d)
        self.evtchn_reset(d, v.domain)
        return 0, op

    def evtchn_reset(self, d: "Domain", caller: "Domain") -> None:
        """Close every port of ``d``: the domain itself, or a paused one."""
        if d is not caller and not d.controller_pause_count:
            raise XenError(EINVAL)
        ed = d.evtchn
        for port in range(1, ed.valid):
            if ed.chans[port].state not in (ECS_FREE, ECS_RESERVED):
                self.evtchn_close(d, port)
        if ed.active:
            raise XenError(EAGAIN)

    def evtchn_reset_cont(self, v: "VCPU", op: EvtchnReset):
        """Xen continues a preempted reset with this op. Resets here finish
        in one go, so there is never one to continue."""
        d = self._domain_by_any_id(v, op.dom)
        self.xen.xsm.target(v.domain, d)
        raise XenError(EBUSY)

    def evtchn_set_priority(self, v: "VCPU", op: EvtchnSetPriority):
        """Priorities belong to the FIFO ABI; a two-level domain has none."""
        if v.domain.evtchn.chan(op.port) is None:
            raise XenError(EINVAL)
        raise XenError(ENOSYS)

    def evtchn_fifo_unsupported(self, v: "VCPU", op):
        """The FIFO ABI is not provided; guests keep the two-level ABI, as
        they do on a Xen whose FIFO setup fails."""
        raise XenError(ENOSYS)

    # ------------------------------------------------------------ delivery
    def set_pending(self, d: "Domain", vcpu_id: int, port: int) -> None:
        """evtchn_2l_set_pending() on the shared_info bytes. A domain whose
        vCPUs are not created yet (before XEN_DOMCTL_max_vcpus) only has
        the port marked pending; there is no vCPU to tell."""
        info = d.shared_info
        byte = port >> 3
        bit = 1 << (port & 7)
        pos = SHINFO_EVTCHN_PENDING + byte
        old = info[pos]
        if old & bit:
            self.xen.trace.emit("evtchn", d.domid, vcpu_id, "pending", port, "already")
            return
        info[pos] = old | bit
        vcpus = d.vcpus
        v = vcpus[vcpu_id] if vcpu_id < len(vcpus) else None
        if info[SHINFO_EVTCHN_MASK + byte] & bit:
            changed = "pending (masked)"
        elif v is None:
            changed = "pending (no vcpu)"
        else:
            changed = "pending" + self._raise_selector(v, port)
        self.xen.trace.emit("evtchn", d.domid, vcpu_id, "pending", port, changed)
        self.xen.sched_ops.wake_pollers(d, port)

    def _raise_selector(self, v: "VCPU", port: int) -> str:
        """Set the port's word in the vCPU's selector; the first time, raise
        evtchn_upcall_pending and kick the vCPU awake. Says what changed."""
        info = v.domain.shared_info
        word = port >> 6
        sel = v.vcpu_info_offset + VCPUINFO_PENDING_SEL + (word >> 3)
        sbit = 1 << (word & 7)
        if info[sel] & sbit:
            return ""
        info[sel] |= sbit
        pos = v.vcpu_info_offset + VCPUINFO_UPCALL_PENDING
        if info[pos]:
            return "+sel"
        info[pos] = 1
        self.xen.sched.vcpu_kick(v)
        return "+sel+upcall"

    def clear_pending(self, d: "Domain", port: int) -> None:
        info = d.shared_info
        pos = SHINFO_EVTCHN_PENDING + (port >> 3)
        info[pos] &= ~(1 << (port & 7)) & 0xFF

    def unmask(self, d: "Domain", chn: Evtchn) -> None:
        """evtchn_2l_unmask(): clear the mask; a pending port raises the
        upcall it could not raise while masked. Ports not in use are left
        alone (evtchn_usable())."""
        if chn.state in (ECS_FREE, ECS_RESERVED):
            return
        info = d.shared_info
        port = chn.port
        byte, bit = port >> 3, 1 << (port & 7)
        mpos = SHINFO_EVTCHN_MASK + byte
        if not info[mpos] & bit:
            return
        info[mpos] &= ~bit & 0xFF
        v = d.vcpu(chn.notify_vcpu_id)
        if info[SHINFO_EVTCHN_PENDING + byte] & bit and v is not None:
            changed = self._raise_selector(v, port)
            if changed:
                self.xen.trace.emit("evtchn", d.domid, v.vcpu_id, "unmask", port, changed[1:])

    def is_pending(self, d: "Domain", port: int) -> bool:
        return bool(d.shared_info[SHINFO_EVTCHN_PENDING + (port >> 3)] & (1 << (port & 7)))

    def is_masked(self, d: "Domain", port: int) -> bool:
        return bool(d.shared_info[SHINFO_EVTCHN_MASK + (port >> 3)] & (1 << (port & 7)))

    def port_poll(self, d: "Domain", port: int) -> bool:
        chn = d.evtchn.chan(port)
        if chn is None or chn.state in (ECS_FREE, ECS_RESERVED):
            raise XenError(EINVAL)
        return self.is_pending(d, port)

    # ------------------------------------------------------------ sources
    def send_guest_vcpu_virq(self, v: "VCPU", virq: int) -> None:
        port = v.virq_to_evtchn[virq]
        if port:
            self.set_pending(v.domain, v.vcpu_id, port)

    def send_guest_global_virq(self, d: "Domain | None", virq: int) -> None:
        if d is None or not d.vcpus or d.is_dying:
            return
        port = d.vcpus[0].virq_to_evtchn[virq]
        if port:
            chn = d.evtchn.chans[port]
            self.set_pending(d, chn.notify_vcpu_id, port)

    def send_global_virq(self, virq: int) -> None:
        d = self.global_virq_handlers.get(virq) or self.xen.hardware_domain
        self.send_guest_global_virq(d, virq)

    def send_global_virq_dom_exc(self) -> None:
        self.send_global_virq(VIRQ_DOM_EXC)

    def send_guest_pirq(self, d: "Domain", pirq: int) -> bool:
        """A physical interrupt for ``d``: False when no port is bound."""
        port = d.evtchn.pirq_to_evtchn.get(pirq)
        if port is None:
            return False
        chn = d.evtchn.chans[port]
        self.set_pending(d, chn.notify_vcpu_id, port)
        return True

    def set_global_virq_handler(self, d: "Domain", virq: int) -> None:
        if virq >= NR_VIRQS or not virq_is_global(virq):
            raise XenError(EINVAL)
        self.global_virq_handlers[virq] = d

    # ------------------------------------------------------------ views
    def describe(self, d: "Domain", chn: Evtchn) -> str:
        state = chn.state
        if state == ECS_UNBOUND:
            return f"unbound, for d{chn.remote_domid}"
        if state == ECS_INTERDOMAIN:
            return f"interdomain d{chn.remote_dom.domid}:{chn.remote_port}"
        if state == ECS_VIRQ:
            return f"virq {VIRQ_NAMES.get(chn.virq, chn.virq)}"
        if state == ECS_PIRQ:
            return f"pirq {chn.pirq}"
        return ECS_NAMES[state]

    def dump(self) -> str:
        """The 'e' debug key: every domain's ports with pending/mask/selector."""
        lines = ["'e' pressed -> dumping event-channel info"]
        for d in self.xen.domains:
            if d.evtchn is None:
                continue
            lines.append(f"Event channel information for domain {d.domid}:")
            lines.append("    port [p/m/s]")
            for chn in d.evtchn.chans:
                if chn.state in (ECS_FREE, ECS_RESERVED):
                    continue
                v = d.vcpu(chn.notify_vcpu_id)
                word = chn.port >> 6
                s = 0
                if v is not None:
                    sel = d.shared_info[v.vcpu_info_offset + VCPUINFO_PENDING_SEL + (word >> 3)]
                    s = int(bool(sel & (1 << (word & 7))))
                lines.append(
                    f"    {chn.port:4d} [{int(self.is_pending(d, chn.port))}/"
                    f"{int(self.is_masked(d, chn.port))}/{s}]: s={chn.state} "
                    f"n={chn.notify_vcpu_id} x=0 {self.describe(d, chn)}")
        return "\n".join(lines)
