"""Wallclock time (the role of Xen's common/time.c).

Xen keeps the wall time at which system time was zero (wc_sec, wc_nsec) and
writes it into every domain's shared_info, plus the domain's own offset, under
the version protocol: the version is made odd before the write and even after,
so a guest that reads an odd version, or two different versions around its
read, knows to read again. System time itself is the machine's virtual
nanoseconds since boot; nothing here reads a real clock.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from hv.public.errno import EACCES, EFAULT, EINVAL, ENOSYS
from hv.public.platform import XENPF_INTERFACE_VERSION, XENPF_settime64, XenPlatformOp
from hv.public.xen import (
    DOMID_XEN, SHINFO_WC_NSEC, SHINFO_WC_SEC, SHINFO_WC_SEC_HI, SHINFO_WC_VERSION,
)
from hv.xen.dispatch import copy_from_guest
from hv.xen.errors import XenError
from hv.xen.timer import NS_PER_S

if TYPE_CHECKING:
    from hv.xen.domain import VCPU, Domain
    from hv.xen.hypervisor import Xen

_U32 = struct.Struct("<I")


def version_update_begin(version: int) -> int:
    return ((version + 1) | 1) & 0xFFFFFFFF


def version_update_end(version: int) -> int:
    return (version + 1) & 0xFFFFFFFF


class Time:
    def __init__(self, xen: "Xen", boot_wallclock_ns: int):
        self.xen = xen
        self.wc_sec, self.wc_nsec = divmod(boot_wallclock_ns, NS_PER_S)

    def wallclock_ns(self) -> int:
        """Wall time now, in ns since the epoch."""
        return self.wc_sec * NS_PER_S + self.wc_nsec + self.xen.clock.now

    def update_domain_wallclock_time(self, d: "Domain") -> None:
        info = d.shared_info
        version = version_update_begin(_U32.unpack_from(info, SHINFO_WC_VERSION)[0])
        _U32.pack_into(info, SHINFO_WC_VERSION, version)
        sec = self.wc_sec + d.time_offset_seconds
        _U32.pack_into(info, SHINFO_WC_SEC, sec & 0xFFFFFFFF)
        _U32.pack_into(info, SHINFO_WC_NSEC, self.wc_nsec)
        _U32.pack_into(info, SHINFO_WC_SEC_HI, (sec >> 32) & 0xFFFFFFFF)
        _U32.pack_into(info, SHINFO_WC_VERSION, version_update_end(version))

    def do_settime(self, secs: int, nsecs: int, system_time_base: int) -> None:
        """The clock reads secs.nsecs when system time is system_time_base.
        Xen does this sum in unsigned 64 bits: a base past the time wraps."""
        since_boot = (secs * NS_PER_S + nsecs - system_time_base) & 0xFFFFFFFFFFFFFFFF
        self.wc_sec, self.wc_nsec = divmod(since_boot, NS_PER_S)
        for d in self.xen.domains:
            if d.shared_info is not None:
                self.update_domain_wallclock_time(d)
        self.xen.trace.emit("domain", DOMID_XEN, -1, "settime", (self.wc_sec, self.wc_nsec))

    def domain_set_time_offset(self, d: "Domain", seconds: int) -> None:
        d.time_offset_seconds = seconds
        self.update_domain_wallclock_time(d)

    def do_platform_op(self, v: "VCPU", op):
        copy_from_guest(op, XenPlatformOp)
        if op.interface_version != XENPF_INTERFACE_VERSION:
            raise XenError(EACCES)
        self.xen.xsm.priv(v.domain)
        if op.cmd != XENPF_settime64:
            raise XenError(ENOSYS)
        t = op.u
        if t is None or isinstance(t, (int, bytes)):
            raise XenError(EFAULT)
        if t.mbz:
            raise XenError(EINVAL)
        self.do_settime(t.secs, t.nsecs, t.system_time)
        return 0, op
