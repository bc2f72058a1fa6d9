"""xen/include/public/domctl.h: the domain-control operations a toolstack
uses (interface version 0x15, Xen 4.17)."""

from hv.public.abi import (
    char, decode_by_cmd, domid_t, handle, int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t,
    uint64_aligned_t, union, xenstruct,
)

XEN_DOMCTL_INTERFACE_VERSION = 0x00000015

XEN_DOMCTL_createdomain = 1
XEN_DOMCTL_destroydomain = 2
XEN_DOMCTL_pausedomain = 3
XEN_DOMCTL_unpausedomain = 4
XEN_DOMCTL_getdomaininfo = 5
XEN_DOMCTL_setvcpuaffinity = 9
XEN_DOMCTL_max_mem = 11
XEN_DOMCTL_setvcpucontext = 12
XEN_DOMCTL_getvcpucontext = 13
XEN_DOMCTL_getvcpuinfo = 14
XEN_DOMCTL_max_vcpus = 15
XEN_DOMCTL_scheduler_op = 16
XEN_DOMCTL_setdomainhandle = 17
XEN_DOMCTL_irq_permission = 19
XEN_DOMCTL_settimeoffset = 24
XEN_DOMCTL_set_virq_handler = 66
XEN_DOMCTL_getvcpuaffinity = 25
XEN_DOMCTL_resumedomain = 27
XEN_DOMCTL_sendtrigger = 28

XEN_DOMCTL_SENDTRIGGER_NMI = 0
XEN_DOMCTL_SENDTRIGGER_RESET = 1
XEN_DOMCTL_SENDTRIGGER_INIT = 2
XEN_DOMCTL_SENDTRIGGER_POWER = 3
XEN_DOMCTL_SENDTRIGGER_SLEEP = 4

XEN_DOMCTL_CDF_hvm = 1 << 0
XEN_DOMCTL_CDF_hap = 1 << 1
XEN_DOMCTL_CDF_s3_integrity = 1 << 2
XEN_DOMCTL_CDF_oos_off = 1 << 3
XEN_DOMCTL_CDF_xs_domain = 1 << 4
XEN_DOMCTL_CDF_iommu = 1 << 5
XEN_DOMCTL_CDF_nested_virt = 1 << 6
XEN_DOMCTL_CDF_vpmu = 1 << 7
XEN_DOMCTL_CDF_MAX = XEN_DOMCTL_CDF_vpmu

XEN_DOMCTL_GRANT_version_mask = 0xF

XEN_DOMINF_dying = 1 << 0
XEN_DOMINF_hvm_guest = 1 << 1
XEN_DOMINF_shutdown = 1 << 2
XEN_DOMINF_paused = 1 << 3
XEN_DOMINF_blocked = 1 << 4
XEN_DOMINF_running = 1 << 5
XEN_DOMINF_debugged = 1 << 6
XEN_DOMINF_xs_domain = 1 << 7
XEN_DOMINF_hap = 1 << 8
XEN_DOMINF_shutdownmask = 255
XEN_DOMINF_shutdownshift = 16

XEN_INVALID_MAX_VCPU_ID = 0xFFFFFFFF

XEN_SCHEDULER_CREDIT = 5
XEN_SCHEDULER_CREDIT2 = 6
XEN_SCHEDULER_ARINC653 = 7
XEN_SCHEDULER_RTDS = 8
XEN_SCHEDULER_NULL = 9

XEN_DOMCTL_SCHEDOP_putinfo = 0
XEN_DOMCTL_SCHEDOP_getinfo = 1
XEN_DOMCTL_SCHEDOP_putvcpuinfo = 2
XEN_DOMCTL_SCHEDOP_getvcpuinfo = 3

XEN_VCPUAFFINITY_HARD = 1 << 0
XEN_VCPUAFFINITY_SOFT = 1 << 1
XEN_VCPUAFFINITY_FORCE = 1 << 2


@xenstruct
class XenArchDomainconfig:
    emulation_flags: uint32_t
    misc_flags: uint32_t


@xenstruct
class XenDomctlCreatedomain:
    ssidref: uint32_t
    handle: uint8_t[16]
    flags: uint32_t
    iommu_opts: uint32_t
    max_vcpus: uint32_t
    max_evtchn_port: uint32_t
    max_grant_frames: int32_t
    max_maptrack_frames: int32_t
    grant_opts: uint32_t
    vmtrace_size: uint32_t
    cpupool_id: uint32_t
    arch: XenArchDomainconfig


@xenstruct
class XenDomctlGetdomaininfo:
    domain: domid_t
    pad1: uint16_t
    flags: uint32_t
    tot_pages: uint64_aligned_t
    max_pages: uint64_aligned_t
    outstanding_pages: uint64_aligned_t
    shr_pages: uint64_aligned_t
    paged_pages: uint64_aligned_t
    shared_info_frame: uint64_aligned_t
    cpu_time: uint64_aligned_t
    nr_online_vcpus: uint32_t
    max_vcpu_id: uint32_t
    ssidref: uint32_t
    handle: uint8_t[16]
    cpupool: uint32_t
    gpaddr_bits: uint8_t
    pad2: uint8_t[7]
    arch_config: XenArchDomainconfig


@xenstruct
class XenDomctlMaxMem:
    max_memkb: uint64_aligned_t


@xenstruct
class XenDomctlVcpucontext:
    """``ctxt`` holds the VcpuGuestContext (None resets the vCPU)."""
    vcpu: uint32_t
    ctxt: handle("vcpu_guest_context_t")


@xenstruct
class XenDomctlMaxVcpus:
    max: uint32_t


@xenstruct
class XenDomctlGetvcpuinfo:
    vcpu: uint32_t
    online: uint8_t                 # OUT
    blocked: uint8_t                # OUT
    running: uint8_t                # OUT
    cpu_time: uint64_aligned_t      # OUT
    cpu: uint32_t                   # OUT


@xenstruct
class XenctlBitmap:
    """``bitmap`` holds the bitmap bytes (the guest array)."""
    bitmap: handle("uint8")
    nr_bits: uint32_t


@xenstruct
class XenDomctlVcpuaffinity:
    vcpu: uint32_t
    flags: uint32_t
    cpumap_hard: XenctlBitmap
    cpumap_soft: XenctlBitmap


@xenstruct
class XenDomctlSchedCredit:
    weight: uint16_t
    cap: uint16_t


@xenstruct
class XenDomctlSchedRtds:
    period: uint32_t
    budget: uint32_t
    flags: uint32_t


@xenstruct
class XenDomctlSchedVcpus:
    vcpus: handle("xen_domctl_schedparam_vcpu_t")
    nr_vcpus: uint32_t
    padding: uint32_t


@xenstruct
class XenDomctlSchedulerOp:
    """``u`` is a XenDomctlSchedCredit for the credit scheduler."""
    sched_id: uint32_t
    cmd: uint32_t
    u: union(XenDomctlSchedCredit, XenDomctlSchedRtds, XenDomctlSchedVcpus)

    @classmethod
    def _decode(cls, values):
        if values["sched_id"] in (XEN_SCHEDULER_CREDIT, XEN_SCHEDULER_CREDIT2):
            values["u"] = XenDomctlSchedCredit.unpack(values["u"])
        return values


@xenstruct
class XenDomctlSetdomainhandle:
    handle: uint8_t[16]


@xenstruct
class XenDomctlSettimeoffset:
    time_offset_seconds: int64_t


@xenstruct
class XenDomctlSetVirqHandler:
    virq: uint32_t


@xenstruct
class XenDomctlSendtrigger:
    trigger: uint32_t
    vcpu: uint32_t


@xenstruct
class XenDomctlIrqPermission:
    pirq: uint32_t
    allow_access: uint8_t
    pad: uint8_t[3]


@xenstruct
class XenDomctl:
    """struct xen_domctl. ``u`` is the sub-op's structure (or None when the
    sub-op takes none: destroy, pause, unpause)."""
    cmd: uint32_t
    interface_version: uint32_t
    domain: domid_t
    _pad: uint16_t[3]
    u: union(
        XenDomctlCreatedomain, XenDomctlGetdomaininfo, XenDomctlVcpuaffinity,
        XenDomctlMaxMem, XenDomctlVcpucontext, XenDomctlGetvcpuinfo, XenDomctlMaxVcpus,
        XenDomctlSchedulerOp, XenDomctlSetdomainhandle, XenDomctlIrqPermission,
        XenDomctlSettimeoffset, XenDomctlSetVirqHandler, XenDomctlSendtrigger,
        uint64_t, char[128],
    )

    @classmethod
    def _decode(cls, values):
        return decode_by_cmd(values, DOMCTL_PAYLOAD)


DOMCTL_PAYLOAD = {
    XEN_DOMCTL_createdomain: XenDomctlCreatedomain,
    XEN_DOMCTL_destroydomain: None,
    XEN_DOMCTL_pausedomain: None,
    XEN_DOMCTL_unpausedomain: None,
    XEN_DOMCTL_resumedomain: None,
    XEN_DOMCTL_getdomaininfo: XenDomctlGetdomaininfo,
    XEN_DOMCTL_max_mem: XenDomctlMaxMem,
    XEN_DOMCTL_setvcpucontext: XenDomctlVcpucontext,
    XEN_DOMCTL_getvcpucontext: XenDomctlVcpucontext,
    XEN_DOMCTL_setvcpuaffinity: XenDomctlVcpuaffinity,
    XEN_DOMCTL_getvcpuaffinity: XenDomctlVcpuaffinity,
    XEN_DOMCTL_getvcpuinfo: XenDomctlGetvcpuinfo,
    XEN_DOMCTL_max_vcpus: XenDomctlMaxVcpus,
    XEN_DOMCTL_scheduler_op: XenDomctlSchedulerOp,
    XEN_DOMCTL_setdomainhandle: XenDomctlSetdomainhandle,
    XEN_DOMCTL_irq_permission: XenDomctlIrqPermission,
    XEN_DOMCTL_settimeoffset: XenDomctlSettimeoffset,
    XEN_DOMCTL_set_virq_handler: XenDomctlSetVirqHandler,
    XEN_DOMCTL_sendtrigger: XenDomctlSendtrigger,
}
