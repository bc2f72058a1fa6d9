"""Wallclock time in every domain's shared_info, under the version
protocol; setting it from dom0 (platform_op) and per domain (settimeoffset)."""

import struct

import pytest

import hv.xen.time as xentime
from hv.public.domctl import (
    XEN_DOMCTL_INTERFACE_VERSION, XEN_DOMCTL_settimeoffset, XenDomctl, XenDomctlSettimeoffset,
)
from hv.public.errno import EACCES, EINVAL, ENOSYS, EPERM
from hv.public.platform import (
    XENPF_settime32,
)
from hv.public.xen import (
    HYPERVISOR_domctl, SHINFO_WC_SEC, SharedInfo,
)
from hv.xen.hypervisor import BOOT_WALLCLOCK_NS
from hv.xen.timer import NS_PER_S

from tests.conftest import hypercall
from tests.calls import settime

BOOT_SEC = BOOT_WALLCLOCK_NS // NS_PER_S


def wallclock(d):
    si = SharedInfo.unpack(d.shared_info)
    return si.wc_version, si.wc_sec | si.wc_sec_hi << 32, si.wc_nsec


def test_every_domain_starts_with_the_boot_wallclock(host, make_domu):
    d = make_domu(16)
    assert wallclock(d) == (2, BOOT_SEC, 0)
    assert wallclock(host.dom0) == (2, BOOT_SEC, 0)


def test_the_version_is_odd_while_the_wallclock_is_written(monkeypatch, xen, dom0, make_domu):
    d = make_domu(16)
    seen = []
    real = xentime._U32

    class Spy:
        def unpack_from(self, buf, off):
            return real.unpack_from(buf, off)

        def pack_into(self, buf, off, value):
            if off == SHINFO_WC_SEC:
                seen.append(real.unpack_from(buf, 3072)[0])
            real.pack_into(buf, off, value)

    monkeypatch.setattr(xentime, "_U32", Spy())
    assert settime(xen, dom0, BOOT_SEC + 100) == 0
    assert seen and all(v % 2 == 1 for v in seen)
    assert wallclock(d)[0] == 4


def test_dom0_sets_the_clock_for_everyone(host, xen, dom0, make_domu):
    d = make_domu(16)
    host.clock.run(until=5 * NS_PER_S)
    # "It is 2030-01-01T00:00:00.25 now" (system time 5 s): the base moves.
    assert settime(xen, dom0, 1_893_456_000, 250_000_000, system_time=5 * NS_PER_S) == 0
    assert wallclock(d) == (4, 1_893_455_995, 250_000_000)
    assert wallclock(dom0)[1:] == (1_893_455_995, 250_000_000)
    assert xen.time.wallclock_ns() == 1_893_456_000 * NS_PER_S + 250_000_000


@pytest.mark.parametrize("kw, errno", [
    ({"mbz": 1}, EINVAL),
    ({"version": 0x03000000}, EACCES),
    ({"cmd": XENPF_settime32}, ENOSYS),
])
def test_settime_refuses_bad_requests(xen, dom0, make_domu, kw, errno):
    d = make_domu(16)
    assert settime(xen, dom0, BOOT_SEC + 1, **kw) == -errno
    assert wallclock(d) == (2, BOOT_SEC, 0)


def test_only_the_control_domain_sets_the_clock(xen, make_domu):
    d = make_domu(16)
    assert settime(xen, d, 0) == -EPERM
    assert wallclock(d) == (2, BOOT_SEC, 0)


def test_a_domain_may_have_its_own_offset(xen, dom0, make_domu):
    a, b = make_domu(16), make_domu(16)
    op = XenDomctl(cmd=XEN_DOMCTL_settimeoffset, interface_version=XEN_DOMCTL_INTERFACE_VERSION,
                   domain=a.domid, u=XenDomctlSettimeoffset(time_offset_seconds=-3600))
    assert hypercall(xen, dom0, HYPERVISOR_domctl, op)[0] == 0
    assert wallclock(a) == (4, BOOT_SEC - 3600, 0)
    assert wallclock(b) == (2, BOOT_SEC, 0)
    settime(xen, dom0, BOOT_SEC + 10)
    assert wallclock(a)[1] == BOOT_SEC + 10 - 3600


def test_seconds_beyond_32_bits_go_to_wc_sec_hi(xen, dom0, make_domu):
    d = make_domu(16)
    settime(xen, dom0, (1 << 32) + 7)
    raw = bytes(d.shared_info[3072:3088])
    assert struct.unpack("<IIII", raw)[1:] == (7, 0, 1)
