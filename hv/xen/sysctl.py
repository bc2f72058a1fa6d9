"""The system-control hypercall (the role of Xen's common/sysctl.c): what
the control domain's toolstack asks of the host as a whole. The machine
has the operations `xl info`, `xl dmesg` and `xl debug-keys` make."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hv.public.errno import EACCES, EFAULT
from hv.public.sysctl import (
    XEN_SYSCTL_INTERFACE_VERSION, XEN_SYSCTL_PHYSCAP_gnttab_v1, XEN_SYSCTL_PHYSCAP_pv,
    XEN_SYSCTL_debug_keys, XEN_SYSCTL_getdomaininfolist, XEN_SYSCTL_physinfo,
    XEN_SYSCTL_readconsole, XEN_SYSCTL_sched_id, XenSysctl, XenSysctlDebugKeys,
    XenSysctlGetdomaininfolist, XenSysctlPhysinfo, XenSysctlReadconsole, XenSysctlSchedId,
)
from hv.xen.dispatch import SubOps, copy_from_guest
from hv.xen.errors import XenError

if TYPE_CHECKING:
    from hv.xen.domain import VCPU
    from hv.xen.hypervisor import Xen

# One NUMA node, one socket, one thread per core (MAX_NUMNODES is 64 on x86).
MAX_NUMNODES = 64


class Sysctl:
    def __init__(self, xen: "Xen"):
        self.xen = xen
        self._ops = SubOps({
            XEN_SYSCTL_readconsole: (self.readconsole, XenSysctlReadconsole),
            XEN_SYSCTL_physinfo: (self.physinfo, XenSysctlPhysinfo),
            XEN_SYSCTL_sched_id: (self.sched_id, XenSysctlSchedId),
            XEN_SYSCTL_getdomaininfolist: (self.getdomaininfolist, XenSysctlGetdomaininfolist),
            XEN_SYSCTL_debug_keys: (self.debug_keys, XenSysctlDebugKeys),
        })

    def do_sysctl(self, v: "VCPU", op):
        """Xen's order: the structure, its interface version, the caller's
        privilege (XSM_PRIV), then the command."""
        copy_from_guest(op, XenSysctl)
        if op.interface_version != XEN_SYSCTL_INTERFACE_VERSION:
            raise XenError(EACCES)
        self.xen.xsm.priv(v.domain)
        handler = self._ops.lookup(op.cmd, op.u)
        return 0, op.replace(u=handler(op.u))

    def readconsole(self, rc: XenSysctlReadconsole) -> XenSysctlReadconsole:
        data, index = self.xen.console.read_console_ring(
            rc.count, incremental=bool(rc.incremental), index=rc.index, clear=bool(rc.clear))
        return rc.replace(buffer=data, count=len(data), index=index)

    def physinfo(self, _pi: XenSysctlPhysinfo) -> XenSysctlPhysinfo:
        xen = self.xen
        return XenSysctlPhysinfo(
            threads_per_core=1, cores_per_socket=xen.nr_cpus, nr_cpus=xen.nr_cpus,
            max_cpu_id=xen.nr_cpus - 1, nr_nodes=1, max_node_id=MAX_NUMNODES - 1,
            cpu_khz=xen.cpu_khz, capabilities=XEN_SYSCTL_PHYSCAP_pv | XEN_SYSCTL_PHYSCAP_gnttab_v1,
            total_pages=xen.ram.nr_frames, free_pages=xen.free_pages,
            max_mfn=xen.ram.nr_frames - 1)

    def sched_id(self, _si: XenSysctlSchedId) -> XenSysctlSchedId:
        return XenSysctlSchedId(sched_id=self.xen.sched.policy.sched_id)

    def getdomaininfolist(self, gl: XenSysctlGetdomaininfolist) -> XenSysctlGetdomaininfolist:
        """Up to max_domains domains' getdomaininfo, from first_domain up,
        in one call (what libxl_list_domain() asks, 1024 at a time)."""
        infos = []
        domain_info = self.xen.domctl.domain_info
        for d in sorted(self.xen.domains, key=lambda d: d.domid):
            if d.domid < gl.first_domain:
                continue
            if len(infos) == gl.max_domains:
                break
            infos.append(domain_info(d))
        return gl.replace(buffer=tuple(infos), num_domains=len(infos))

    def debug_keys(self, dk: XenSysctlDebugKeys) -> XenSysctlDebugKeys:
        """Each key is copied in and pressed in turn: a buffer shorter than
        nr_keys faults at the first key it does not have."""
        keys = dk.keys.encode() if isinstance(dk.keys, str) else dk.keys
        if not isinstance(keys, (bytes, bytearray)):
            keys = b""
        for i in range(dk.nr_keys):
            if i >= len(keys):
                raise XenError(EFAULT)
            self.xen.debug_key(chr(keys[i]))
        return dk
