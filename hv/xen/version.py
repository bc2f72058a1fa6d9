"""xen_version (the role of Xen's common/kernel.c)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hv.public.version import (
    XENFEAT_direct_mapped, XENFEAT_dom0, XENFEAT_gnttab_map_avail_bits,
    XENFEAT_highmem_assist, XENFEAT_memory_op_vnode_supported,
    XENFEAT_mmu_pt_update_preserve_ad, XENVER_capabilities, XENVER_changeset,
    XENVER_commandline, XENVER_compile_info, XENVER_extraversion,
    XENVER_get_features, XENVER_guest_handle, XENVER_pagesize,
    XENVER_platform_parameters, XENVER_version, XenCapabilitiesInfo,
    XenChangesetInfo, XenCommandline, XenCompileInfo, XenDomainHandle,
    XenExtraversion, XenFeatureInfo, XenPlatformParameters,
)
from hv.public.xen import PAGE_SIZE
from hv.public.errno import EINVAL
from hv.xen.dispatch import SubOps
from hv.xen.errors import XenError

if TYPE_CHECKING:
    from hv.xen.domain import VCPU
    from hv.xen.hypervisor import Xen

XEN_MAJOR = 4
XEN_MINOR = 17
XEN_EXTRA = ".0-xenlab"
XEN_CAPABILITIES = "xen-3.0-x86_64"
XEN_CHANGESET = "xenlab model of Xen 4.17"
HYPERVISOR_VIRT_START = 0xFFFF800000000000
XEN_DENY = b"<denied>"
COMPILE_INFO = XenCompileInfo(
    compiler=b"xenlab", compile_by=b"xenlab", compile_domain=b"localdomain",
    compile_date=b"Thu Jan  1 00:00:00 UTC 1970")


class Version:
    def __init__(self, xen: "Xen", commandline: str = ""):
        self.xen = xen
        self.commandline = commandline
        self._ops = SubOps({
            XENVER_version: (self._version, None),
            XENVER_extraversion: (self._extraversion, XenExtraversion),
            XENVER_compile_info: (self._compile_info, XenCompileInfo),
            XENVER_capabilities: (self._capabilities, XenCapabilitiesInfo),
            XENVER_changeset: (self._changeset, XenChangesetInfo),
            XENVER_platform_parameters: (self._platform_parameters, XenPlatformParameters),
            XENVER_get_features: (self._get_features, XenFeatureInfo),
            XENVER_pagesize: (self._pagesize, None),
            XENVER_guest_handle: (self._guest_handle, XenDomainHandle),
            XENVER_commandline: (self._commandline, XenCommandline),
        })

    @property
    def version_string(self) -> str:
        return f"{XEN_MAJOR}.{XEN_MINOR}{XEN_EXTRA}"

    def do_xen_version(self, v: "VCPU", cmd: int, arg=None):
        return self._ops.lookup(cmd, arg)(v, arg)

    def _version(self, v, arg):
        return (XEN_MAJOR << 16) | XEN_MINOR, None

    def _extraversion(self, v, arg):
        return 0, XenExtraversion(extraversion=XEN_EXTRA.encode())

    def _compile_info(self, v, arg):
        return 0, COMPILE_INFO

    def _capabilities(self, v, arg):
        return 0, XenCapabilitiesInfo(info=XEN_CAPABILITIES.encode())

    def _changeset(self, v, arg):
        return 0, XenChangesetInfo(info=XEN_CHANGESET.encode())

    def _platform_parameters(self, v, arg):
        return 0, XenPlatformParameters(virt_start=HYPERVISOR_VIRT_START)

    def _get_features(self, v, arg: XenFeatureInfo):
        """What a PV guest on x86 is told (there is one submap). A PV
        guest's memory is machine memory: it is "direct mapped"."""
        if arg.submap_idx != 0:
            raise XenError(EINVAL)
        submap = ((1 << XENFEAT_memory_op_vnode_supported)
                  | (1 << XENFEAT_mmu_pt_update_preserve_ad) | (1 << XENFEAT_highmem_assist)
                  | (1 << XENFEAT_gnttab_map_avail_bits) | (1 << XENFEAT_direct_mapped))
        if v.domain.is_hardware_domain:
            submap |= 1 << XENFEAT_dom0
        return 0, XenFeatureInfo(submap_idx=0, submap=submap)

    def _pagesize(self, v, arg):
        if arg is not None:
            raise XenError(EINVAL)
        return PAGE_SIZE, None

    def _guest_handle(self, v, arg):
        return 0, XenDomainHandle(handle=tuple(v.domain.handle))

    def _commandline(self, v, arg):
        """Only the control domain sees Xen's command line; anyone else is
        told "<denied>", not refused (xsm_xen_version())."""
        if not v.domain.is_privileged:
            return 0, XenCommandline(cmdline=XEN_DENY)
        return 0, XenCommandline(cmdline=self.commandline.encode()[:1023])
