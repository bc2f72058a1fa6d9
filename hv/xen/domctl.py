"""The domain-control hypercall (the role of Xen's common/domctl.c): what a
toolstack in the control domain uses to create, pause, inspect, size and
destroy domains."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hv.public.domctl import (
    DOMCTL_PAYLOAD, XEN_DOMCTL_CDF_hap, XEN_DOMCTL_CDF_hvm, XEN_DOMCTL_CDF_iommu,
    XEN_DOMCTL_CDF_nested_virt, XEN_DOMCTL_CDF_oos_off, XEN_DOMCTL_CDF_s3_integrity,
    XEN_DOMCTL_CDF_vpmu, XEN_DOMCTL_CDF_xs_domain, XEN_DOMCTL_GRANT_version_mask,
    XEN_DOMCTL_INTERFACE_VERSION, XEN_DOMCTL_createdomain, XEN_DOMCTL_destroydomain,
    XEN_DOMCTL_getdomaininfo, XEN_DOMCTL_getvcpuinfo, XEN_DOMCTL_irq_permission,
    XEN_DOMCTL_max_mem, XEN_DOMCTL_max_vcpus, XEN_DOMCTL_pausedomain,
    XEN_DOMCTL_getvcpuaffinity, XEN_DOMCTL_resumedomain, XEN_DOMCTL_scheduler_op,
    XEN_DOMCTL_sendtrigger, XEN_DOMCTL_SENDTRIGGER_NMI, XEN_DOMCTL_SENDTRIGGER_POWER,
    XEN_DOMCTL_SENDTRIGGER_SLEEP,
    XEN_DOMCTL_setdomainhandle, XEN_DOMCTL_set_virq_handler, XEN_DOMCTL_setvcpuaffinity,
    XEN_DOMCTL_getvcpucontext, XEN_DOMCTL_setvcpucontext, XEN_DOMCTL_settimeoffset,
    XEN_VCPUAFFINITY_HARD,
    XEN_VCPUAFFINITY_SOFT,
    XEN_DOMCTL_unpausedomain, XEN_DOMINF_blocked, XEN_DOMINF_dying, XEN_DOMINF_paused,
    XEN_DOMINF_running, XEN_DOMINF_shutdown, XEN_DOMINF_shutdownshift,
    XEN_DOMINF_xs_domain, XEN_INVALID_MAX_VCPU_ID, XenDomctl, XenDomctlCreatedomain,
    XenDomctlGetdomaininfo, XenDomctlGetvcpuinfo, XenctlBitmap,
)
from hv.public.errno import EACCES, EFAULT, EINVAL, ENODATA, ENOSYS, ESRCH
from hv.public.vcpu import RUNSTATE_running
from hv.public.callback import CALLBACKTYPE_event, CALLBACKTYPE_failsafe, CALLBACKTYPE_syscall
from hv.public.xen import DOMID_FIRST_RESERVED, PAGE_SHIFT, VGCF_online, VcpuGuestContext
from hv.xen.domain import DOMDYING_dead, VPF_blocked, VPF_down
from hv.xen.dispatch import copy_from_guest
from hv.xen.errors import XenError

if TYPE_CHECKING:
    from hv.xen.domain import VCPU, Domain
    from hv.xen.hypervisor import Xen

_KNOWN_CDF = (XEN_DOMCTL_CDF_hvm | XEN_DOMCTL_CDF_hap | XEN_DOMCTL_CDF_s3_integrity
              | XEN_DOMCTL_CDF_oos_off | XEN_DOMCTL_CDF_xs_domain | XEN_DOMCTL_CDF_iommu
              | XEN_DOMCTL_CDF_nested_virt | XEN_DOMCTL_CDF_vpmu)
# This machine runs PV guests only, with no IOMMU and no vPMU: asking for
# those is refused as a Xen without them refuses it.
_UNAVAILABLE_CDF = (XEN_DOMCTL_CDF_hvm | XEN_DOMCTL_CDF_hap | XEN_DOMCTL_CDF_iommu
                    | XEN_DOMCTL_CDF_nested_virt | XEN_DOMCTL_CDF_vpmu)
GNTTAB_MAX_VERSION = 1


def bitmap_to_cpumask(bitmap: XenctlBitmap) -> int:
    """A caller's xenctl_bitmap as a cpumask: its first nr_bits bits
    (xenctl_bitmap_to_bitmap()); bytes it does not have are -EFAULT."""
    nbytes = (bitmap.nr_bits + 7) // 8
    data = bitmap.bitmap
    if nbytes and (not isinstance(data, (bytes, tuple)) or len(data) < nbytes):
        raise XenError(EFAULT)
    mask = int.from_bytes(bytes(data[:nbytes]), "little") if nbytes else 0
    return mask & ((1 << bitmap.nr_bits) - 1)


def cpumask_to_bitmap(bitmap: XenctlBitmap, mask: int) -> XenctlBitmap:
    """A cpumask written into the caller's bitmap of nr_bits bits."""
    nbytes = (bitmap.nr_bits + 7) // 8
    if nbytes and (not isinstance(bitmap.bitmap, (bytes, tuple)) or len(bitmap.bitmap) < nbytes):
        raise XenError(EFAULT)
    data = (mask & ((1 << (nbytes * 8)) - 1)).to_bytes(nbytes, "little")
    return bitmap.replace(bitmap=data + bytes(bitmap.bitmap[nbytes:]) if nbytes else bitmap.bitmap)


class Domctl:
    def __init__(self, xen: "Xen"):
        self.xen = xen
        self._ops = {
            XEN_DOMCTL_destroydomain: self.destroydomain,
            XEN_DOMCTL_pausedomain: self.pausedomain,
            XEN_DOMCTL_unpausedomain: self.unpausedomain,
            XEN_DOMCTL_resumedomain: self.resumedomain,
            XEN_DOMCTL_max_mem: self.max_mem,
            XEN_DOMCTL_setvcpucontext: self.setvcpucontext,
            XEN_DOMCTL_getvcpucontext: self.getvcpucontext,
            XEN_DOMCTL_max_vcpus: self.max_vcpus,
            XEN_DOMCTL_getvcpuinfo: self.getvcpuinfo,
            XEN_DOMCTL_scheduler_op: self.scheduler_op,
            XEN_DOMCTL_setdomainhandle: self.setdomainhandle,
            XEN_DOMCTL_irq_permission: self.irq_permission,
            XEN_DOMCTL_sendtrigger: self.sendtrigger,
            XEN_DOMCTL_settimeoffset: self.settimeoffset,
            XEN_DOMCTL_set_virq_handler: self.set_virq_handler,
            XEN_DOMCTL_setvcpuaffinity: self.setvcpuaffinity,
            XEN_DOMCTL_getvcpuaffinity: self.getvcpuaffinity,
        }

    def do_domctl(self, v: "VCPU", op):
        """Xen's order: the structure, its interface version, the domain it
        names (any command but create and getdomaininfo needs one), then
        getdomaininfo with its own, wider check (the xenstore domain may
        ask too), then the caller's privilege, and only then the command."""
        copy_from_guest(op, XenDomctl)
        if op.interface_version != XEN_DOMCTL_INTERFACE_VERSION:
            raise XenError(EACCES)
        cmd = op.cmd
        d = None
        if cmd != XEN_DOMCTL_createdomain:
            d = self.xen.domains.get(op.domain)
            if d is None and cmd != XEN_DOMCTL_getdomaininfo:
                raise XenError(ESRCH)
        if cmd == XEN_DOMCTL_getdomaininfo:
            return self.getdomaininfo(v, op, d)
        self.xen.xsm.priv(v.domain)
        if cmd not in DOMCTL_PAYLOAD:
            raise XenError(ENOSYS)
        payload = DOMCTL_PAYLOAD[cmd]
        if payload is not None:
            copy_from_guest(op.u, payload)
        if cmd == XEN_DOMCTL_createdomain:
            return self.createdomain(v, op)
        rc, u = self._ops[cmd](v, d, op.u)
        return rc, op.replace(u=u)

    # ------------------------------------------------------------ sub-ops
    def createdomain(self, v: "VCPU", op: XenDomctl):
        """The id comes first: a taken one is refused before the
        configuration is looked at, and an id the rover picks is passed
        over next time even if the domain then cannot be built."""
        cfg: XenDomctlCreatedomain = op.u
        domains = self.xen.domains
        dom = op.domain if 0 < op.domain < DOMID_FIRST_RESERVED else 0
        domid = domains.allocate_domid(dom)
        if cfg.flags & ~_KNOWN_CDF or cfg.flags & _UNAVAILABLE_CDF:
            raise XenError(EINVAL)
        if cfg.grant_opts & ~XEN_DOMCTL_GRANT_version_mask:
            raise XenError(EINVAL)
        version = cfg.grant_opts & XEN_DOMCTL_GRANT_version_mask
        if not 1 <= version <= GNTTAB_MAX_VERSION:
            raise XenError(EINVAL)
        if cfg.iommu_opts or cfg.vmtrace_size or cfg.max_vcpus < 1:
            raise XenError(EINVAL)
        d = domains.domain_create(
            domid, cfg.max_vcpus, max_evtchn_port=cfg.max_evtchn_port,
            max_grant_frames=cfg.max_grant_frames,
            max_maptrack_frames=cfg.max_maptrack_frames,
            handle=bytes(cfg.handle).ljust(16, b"\0"), ssidref=cfg.ssidref)
        d.is_xenstore_domain = bool(cfg.flags & XEN_DOMCTL_CDF_xs_domain)
        return 0, op.replace(domain=domid)

    def getdomaininfo(self, v: "VCPU", op: XenDomctl, d: "Domain | None"):
        """Information on the domain, or when there is none with that id, on
        the next one above it (how toolstacks list domains)."""
        if d is None:
            if op.domain >= DOMID_FIRST_RESERVED:
                raise XenError(EINVAL)
            d = self.xen.domains.first_from(op.domain)
            if d is None:
                raise XenError(ESRCH)
        self.xen.xsm.xs_priv(v.domain)
        info = self.domain_info(d)
        return 0, op.replace(domain=d.domid, u=info)

    def domain_info(self, d: "Domain") -> XenDomctlGetdomaininfo:
        now = self.xen.clock.now
        flags = XEN_DOMINF_blocked
        cpu_time = 0
        online = 0
        max_vcpu_id = XEN_INVALID_MAX_VCPU_ID
        for vc in d.vcpus:
            cpu_time += vc.runstate_snapshot(now)[2][RUNSTATE_running]
            max_vcpu_id = vc.vcpu_id
            if not vc.pause_flags & VPF_down:
                if not vc.pause_flags & VPF_blocked:
                    flags &= ~XEN_DOMINF_blocked
                if vc.is_running:
                    flags |= XEN_DOMINF_running
                online += 1
        flags = (flags if online else 0)
        flags |= XEN_DOMINF_dying if d.is_dying == DOMDYING_dead else 0
        flags |= XEN_DOMINF_shutdown if d.is_shut_down else 0
        flags |= XEN_DOMINF_paused if d.controller_pause_count > 0 else 0
        flags |= XEN_DOMINF_xs_domain if d.is_xenstore_domain else 0
        # As on Xen, a domain never shut down carries its ~0 code here too.
        flags = (flags | d.shutdown_code << XEN_DOMINF_shutdownshift) & 0xFFFFFFFF
        return XenDomctlGetdomaininfo(
            domain=d.domid, flags=flags, tot_pages=d.tot_pages, max_pages=d.max_pages,
            shared_info_frame=d.shared_info_mfn, cpu_time=cpu_time, nr_online_vcpus=online,
            max_vcpu_id=max_vcpu_id, ssidref=d.ssidref, handle=tuple(d.handle),
            cpupool=0, gpaddr_bits=52)

    def destroydomain(self, v, d, u):
        self.xen.domains.domain_kill(d, v.domain)
        return 0, u

    def pausedomain(self, v, d, u):
        if d is v.domain:
            raise XenError(EINVAL)
        self.xen.domains.pause_by_systemcontroller(d)
        return 0, u

    def unpausedomain(self, v, d, u):
        self.xen.domains.unpause_by_systemcontroller(d)
        return 0, u

    def resumedomain(self, v, d, u):
        if d is v.domain:
            raise XenError(EINVAL)
        self.xen.domains.domain_resume(d)
        return 0, u

    def max_mem(self, v, d, u):
        """Lowering the limit below what the domain holds is allowed: it then
        gets no more until it is under again."""
        d.max_pages = min(u.max_memkb >> (PAGE_SHIFT - 10), 0xFFFFFFFF)
        return 0, u

    def setvcpucontext(self, v, d, u):
        """Set where a vCPU of another domain starts; VGCF_online in the
        context's flags brings it up, its absence takes it down. No context
        at all resets the vCPU."""
        vc = d.vcpu(u.vcpu)
        if d is v.domain or vc is None:
            raise XenError(EINVAL)
        if u.ctxt is None:
            self.xen.domains.vcpu_reset(vc)
            return 0, u
        self.xen.domains.arch_set_info_guest(vc, copy_from_guest(u.ctxt, VcpuGuestContext))
        if u.ctxt.flags & VGCF_online:
            self.xen.sched.vcpu_up(vc)
        else:
            self.xen.sched.vcpu_down(vc)
        return 0, u

    def getvcpucontext(self, v, d, u):
        """A vCPU's context as arch_get_info_guest() gives it: its registers
        as it last left them where Xen keeps them (as it was started, or
        as they were at its suspend hypercall), the callbacks it has
        registered, and VGCF_online while it is up. A vCPU never started
        has none (ENODATA)."""
        vc = d.vcpu(u.vcpu)
        if vc is None or vc is v:
            raise XenError(EINVAL)
        if not vc.is_initialised or vc.context is None:
            raise XenError(ENODATA)
        ctxt = vc.context
        online = ctxt.flags | VGCF_online if not vc.pause_flags & VPF_down else ctxt.flags & ~VGCF_online
        return 0, u.replace(ctxt=ctxt.replace(
            flags=online,
            event_callback_eip=vc.callbacks.get(CALLBACKTYPE_event, 0),
            failsafe_callback_eip=vc.callbacks.get(CALLBACKTYPE_failsafe, 0),
            syscall_callback_eip=vc.callbacks.get(CALLBACKTYPE_syscall, 0)))

    def max_vcpus(self, v, d, u):
        """Create the vCPUs: the number was fixed at creation and must be
        given again."""
        if d is v.domain or u.max != d.max_vcpus:
            raise XenError(EINVAL)
        self.xen.domains.domain_pause(d)
        self.xen.domains.vcpus_create(d)
        self.xen.domains.domain_unpause(d)
        return 0, u

    def getvcpuinfo(self, v, d, u):
        if u.vcpu >= d.max_vcpus:
            raise XenError(EINVAL)
        vc = d.vcpu(u.vcpu)
        if vc is None:
            raise XenError(ESRCH)
        times = vc.runstate_snapshot(self.xen.clock.now)[2]
        return 0, XenDomctlGetvcpuinfo(
            vcpu=u.vcpu, online=int(not vc.pause_flags & VPF_down),
            blocked=int(bool(vc.pause_flags & VPF_blocked)), running=int(vc.is_running),
            cpu_time=times[RUNSTATE_running], cpu=vc.processor)

    def setvcpuaffinity(self, v, d, u):
        """Pin a vCPU (hard affinity) or say where it would rather run
        (soft); the masks now in force come back: what was asked, within
        the online pCPUs."""
        vc = self._affinity_vcpu(d, u)
        hard = bitmap_to_cpumask(u.cpumap_hard) if u.flags & XEN_VCPUAFFINITY_HARD else None
        soft = bitmap_to_cpumask(u.cpumap_soft) if u.flags & XEN_VCPUAFFINITY_SOFT else None
        return 0, self._affinity_out(u, *self.xen.sched.vcpu_affinity_domctl(vc, u.flags, hard,
                                                                                soft))

    def getvcpuaffinity(self, v, d, u):
        vc = self._affinity_vcpu(d, u)
        if not u.flags & (XEN_VCPUAFFINITY_HARD | XEN_VCPUAFFINITY_SOFT):
            raise XenError(EINVAL)
        return 0, self._affinity_out(u, vc.hard_affinity, vc.soft_affinity)

    @staticmethod
    def _affinity_vcpu(d, u):
        if u.vcpu >= d.max_vcpus:
            raise XenError(EINVAL)
        vc = d.vcpu(u.vcpu)
        if vc is None:
            raise XenError(ESRCH)
        return vc

    @staticmethod
    def _affinity_out(u, hard: int | None, soft: int | None):
        """The masks written back into the bitmaps the caller asked about."""
        return u.replace(
            cpumap_hard=cpumask_to_bitmap(u.cpumap_hard, hard)
            if u.flags & XEN_VCPUAFFINITY_HARD and hard is not None else u.cpumap_hard,
            cpumap_soft=cpumask_to_bitmap(u.cpumap_soft, soft)
            if u.flags & XEN_VCPUAFFINITY_SOFT and soft is not None else u.cpumap_soft)

    def scheduler_op(self, v, d, u):
        return 0, self.xen.sched.sched_adjust(d, u)

    def setdomainhandle(self, v, d, u):
        d.handle = bytes(u.handle).ljust(16, b"\0")
        return 0, u

    def settimeoffset(self, v, d, u):
        """A domain's wallclock may run ahead of or behind Xen's."""
        self.xen.time.domain_set_time_offset(d, u.time_offset_seconds)
        return 0, u

    def set_virq_handler(self, v, d, u):
        """Send a global VIRQ (say VIRQ_DOM_EXC) to this domain instead of the
        hardware domain: how a xenstore domain learns of domain deaths."""
        self.xen.evtchn.set_global_virq_handler(d, u.virq)
        return 0, u

    def sendtrigger(self, v, d, u):
        """An NMI for one of the domain's vCPUs; the ACPI buttons are for
        HVM guests (-EINVAL for PV ones), and RESET and INIT are not
        triggers x86 Xen sends (-ENOSYS)."""
        if u.vcpu >= len(d.vcpus):
            raise XenError(ESRCH)
        target = d.vcpus[u.vcpu]
        if u.trigger == XEN_DOMCTL_SENDTRIGGER_NMI:
            if not target.nmi_pending:
                target.nmi_pending = True
                self.xen.sched.vcpu_kick(target)
            return 0, u
        if u.trigger in (XEN_DOMCTL_SENDTRIGGER_POWER, XEN_DOMCTL_SENDTRIGGER_SLEEP):
            raise XenError(EINVAL)
        raise XenError(ENOSYS)

    def irq_permission(self, v, d, u):
        """Grant or revoke a physical interrupt: what makes a driver domain."""
        if u.pirq >= v.domain.nr_pirqs:
            raise XenError(EINVAL)
        if u.allow_access:
            d.irq_caps.add(u.pirq)
        else:
            d.irq_caps.discard(u.pirq)
        return 0, u

