"""Time (the role of Xen's common/time.c and arch/x86/time.c).

System time is the machine's virtual nanoseconds since boot; nothing here
reads a real clock. Xen keeps the wall time at which system time was zero
(wc_sec, wc_nsec) and writes it into every domain's shared_info, plus the
domain's own offset. Each vCPU's vcpu_info carries a time record a guest
turns its TSC into system time with: a TSC stamp, the system time at that
stamp, and the TSC's scale. Xen stamps each pCPU once a second and rewrites
a vCPU's record when it is scheduled in (or when its pCPU is stamped while
it runs). Both records are written under the version protocol: the version
is made odd before the write and even after, so a guest that reads an odd
version, or two different versions around its read, knows to read again.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from hv.public.errno import EACCES, EFAULT, EINVAL, ENOSYS
from hv.public.platform import XENPF_INTERFACE_VERSION, XENPF_settime64, XenPlatformOp
from hv.public.xen import (
    DOMID_XEN, SHINFO_WC_NSEC, SHINFO_WC_SEC, SHINFO_WC_SEC_HI, SHINFO_WC_VERSION,
    VCPUINFO_TIME, VcpuTimeInfo,
)
from hv.xen.dispatch import copy_from_guest
from hv.xen.errors import XenError
from hv.xen.timer import NS_PER_S

if TYPE_CHECKING:
    from hv.xen.domain import VCPU, Domain
    from hv.xen.hypervisor import Xen

_U32 = struct.Struct("<I")
# vcpu_time_info after its version: pad0, tsc_timestamp, system_time,
# tsc_to_system_mul, tsc_shift, flags, pad1.
_TIME_BODY = struct.Struct("<IQQIbB2x")
_TIME_BODY_OFFSET = VcpuTimeInfo.offsetof("pad0")
# How often Xen re-stamps each pCPU's time (arch/x86/time.c's EPOCH).
EPOCH = NS_PER_S
PRIO_CALIBRATE = 5


def set_time_scale(ticks_per_sec: int) -> tuple[int, int]:
    """(tsc_to_system_mul, tsc_shift) for a counter of this frequency:
    ns = ((ticks << shift, or >> -shift) * mul) >> 32 (set_time_scale())."""
    tps64, shift = ticks_per_sec, 0
    while tps64 > 2 * NS_PER_S:
        tps64 >>= 1
        shift -= 1
    tps32 = tps64 & 0xFFFFFFFF
    while tps32 <= NS_PER_S:
        tps32 <<= 1
        shift += 1
    return (NS_PER_S << 32) // tps32, shift




def version_update_begin(version: int) -> int:
    return ((version + 1) | 1) & 0xFFFFFFFF


def version_update_end(version: int) -> int:
    return (version + 1) & 0xFFFFFFFF


class Time:
    def __init__(self, xen: "Xen", boot_wallclock_ns: int):
        self.xen = xen
        self.wc_sec, self.wc_nsec = divmod(boot_wallclock_ns, NS_PER_S)
        self.tsc_khz = xen.cpu_khz
        self.tsc_scale = set_time_scale(self.tsc_khz * 1000)
        # Each pCPU's last stamp: (its TSC, system time) when calibrated.
        self.stamps = [(0, 0)] * xen.nr_cpus
        xen.clock.schedule(EPOCH, self.time_calibration, priority=PRIO_CALIBRATE)

    # ------------------------------------------------------------ system time
    def tsc_at(self, stime: int) -> int:
        """The TSC at a system time: every pCPU's counts at tsc_khz from 0
        at boot, in step."""
        return stime * self.tsc_khz // 1_000_000

    def time_calibration(self) -> None:
        """Once a second: stamp every pCPU, and give the vCPUs running now
        their new record."""
        xen = self.xen
        now = xen.clock.now
        self.stamps = [(self.tsc_at(now), now)] * xen.nr_cpus
        for pcpu in xen.sched.pcpus:
            if not pcpu.curr.is_idle:
                self.update_vcpu_system_time(pcpu.curr)
        xen.clock.schedule(now + EPOCH, self.time_calibration, priority=PRIO_CALIBRATE)

    def update_vcpu_system_time(self, v: "VCPU", force: bool = False) -> None:
        """Write the vCPU's time record from its pCPU's stamp, if it changed."""
        info = v.domain.shared_info
        if info is None:
            return
        tsc, stime = self.stamps[v.processor]
        mul, shift = self.tsc_scale
        body = _TIME_BODY.pack(0, tsc, stime, mul, shift, 0)
        at = v.vcpu_info_offset + VCPUINFO_TIME
        start = at + _TIME_BODY_OFFSET
        if not force and info[start:start + len(body)] == body:
            return
        version = version_update_begin(_U32.unpack_from(info, at)[0])
        _U32.pack_into(info, at, version)
        info[start:start + len(body)] = body
        _U32.pack_into(info, at, version_update_end(version))

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
