"""xen/include/public/sysctl.h: host-wide control operations a toolstack in
the control domain uses (interface version 0x15, Xen 4.17). The machine has
the few `xl info`, `xl dmesg` and `xl debug-keys` need."""

from hv.public.abi import (
    decode_by_cmd, domid_t, handle, uint8_t, uint32_t, uint64_aligned_t, union, xenstruct,
)

XEN_SYSCTL_INTERFACE_VERSION = 0x00000015

XEN_SYSCTL_readconsole = 1
XEN_SYSCTL_physinfo = 3
XEN_SYSCTL_sched_id = 4
XEN_SYSCTL_getdomaininfolist = 6
XEN_SYSCTL_debug_keys = 7

XEN_SYSCTL_PHYSCAP_hvm = 1 << 0
XEN_SYSCTL_PHYSCAP_pv = 1 << 1
XEN_SYSCTL_PHYSCAP_directio = 1 << 2
XEN_SYSCTL_PHYSCAP_hap = 1 << 3
XEN_SYSCTL_PHYSCAP_shadow = 1 << 4
XEN_SYSCTL_PHYSCAP_iommu_hap_pt_share = 1 << 5
XEN_SYSCTL_PHYSCAP_vmtrace = 1 << 6
XEN_SYSCTL_PHYSCAP_vpmu = 1 << 7
XEN_SYSCTL_PHYSCAP_gnttab_v1 = 1 << 8
XEN_SYSCTL_PHYSCAP_gnttab_v2 = 1 << 9


@xenstruct
class XenSysctlReadconsole:
    """``buffer`` is where the text goes: on the way out it holds the
    bytes read (``count`` of them)."""
    clear: uint8_t
    incremental: uint8_t
    pad0: uint8_t
    pad1: uint8_t
    index: uint32_t
    buffer: handle("char")
    count: uint32_t


@xenstruct
class XenSysctlPhysinfo:
    threads_per_core: uint32_t
    cores_per_socket: uint32_t
    nr_cpus: uint32_t
    max_cpu_id: uint32_t
    nr_nodes: uint32_t
    max_node_id: uint32_t
    cpu_khz: uint32_t
    capabilities: uint32_t
    arch_capabilities: uint32_t
    pad: uint32_t
    total_pages: uint64_aligned_t
    free_pages: uint64_aligned_t
    scrub_pages: uint64_aligned_t
    outstanding_pages: uint64_aligned_t
    max_mfn: uint64_aligned_t
    hw_cap: uint32_t[8]


@xenstruct
class XenSysctlSchedId:
    sched_id: uint32_t


@xenstruct
class XenSysctlGetdomaininfolist:
    """``buffer`` comes back holding the domains' XenDomctlGetdomaininfo."""
    first_domain: domid_t
    max_domains: uint32_t
    buffer: handle("xen_domctl_getdomaininfo_t")
    num_domains: uint32_t


@xenstruct
class XenSysctlDebugKeys:
    """``keys`` carries the key presses themselves (a str or bytes)."""
    keys: handle("const_char")
    nr_keys: uint32_t


@xenstruct
class XenSysctl:
    """struct xen_sysctl. ``u`` is the sub-op's structure."""
    cmd: uint32_t
    interface_version: uint32_t
    u: union(XenSysctlReadconsole, XenSysctlPhysinfo, XenSysctlSchedId, XenSysctlGetdomaininfolist,
             XenSysctlDebugKeys, uint8_t[128])

    @classmethod
    def _decode(cls, values):
        return decode_by_cmd(values, SYSCTL_PAYLOAD)


SYSCTL_PAYLOAD = {
    XEN_SYSCTL_readconsole: XenSysctlReadconsole,
    XEN_SYSCTL_physinfo: XenSysctlPhysinfo,
    XEN_SYSCTL_sched_id: XenSysctlSchedId,
    XEN_SYSCTL_getdomaininfolist: XenSysctlGetdomaininfolist,
    XEN_SYSCTL_debug_keys: XenSysctlDebugKeys,
}
