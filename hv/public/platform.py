"""xen/include/public/platform.h: the control domain's platform operations
(the ones this machine has: setting the wallclock)."""

from hv.public.abi import char, decode_by_cmd, uint32_t, uint64_t, union, xenstruct

XENPF_INTERFACE_VERSION = 0x03000001
XENPF_settime32 = 17
XENPF_settime64 = 62


@xenstruct
class XenpfSettime64:
    """Set the clock so it would read secs.nsecs (since the epoch, UTC) when
    system time was ``system_time``."""
    secs: uint64_t
    nsecs: uint32_t
    mbz: uint32_t
    system_time: uint64_t


@xenstruct
class XenPlatformOp:
    cmd: uint32_t
    interface_version: uint32_t
    u: union(XenpfSettime64, uint64_t, char[128])

    @classmethod
    def _decode(cls, values):
        return decode_by_cmd(values, {XENPF_settime64: XenpfSettime64})
