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
    HYPERVISOR_domctl, SHINFO_WC_SEC, VCPUINFO_TIME, SharedInfo, VcpuTimeInfo,
    pvclock_scale_delta,
)
from hv.xen.hypervisor import BOOT_WALLCLOCK_NS
from hv.xen.timer import NS_PER_S

from tests.conftest import hypercall, make_host
from tests.calls import boot_guest, settime

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


# ---------------------------------------------------------------- vcpu_time_info
def time_info(v) -> VcpuTimeInfo:
    return VcpuTimeInfo.unpack(v.domain.shared_info, v.vcpu_info_offset + VCPUINFO_TIME)


def test_the_tsc_scale_turns_a_3ghz_tsc_into_nanoseconds():
    mul, shift = xentime.set_time_scale(3_000_000_000)
    assert (mul, shift) == (2863311530, -1)
    assert pvclock_scale_delta(3_000_000_000, mul, shift) == pytest.approx(NS_PER_S, abs=1)


def test_a_vcpu_gets_its_time_record_when_scheduled_in_and_each_second(host, xen, make_domu):
    d = make_domu(16)
    v = d.vcpus[0]
    t = time_info(v)
    assert t.version % 2 == 0 and t.version > 0          # written at switch-in, even
    mul, shift = xen.time.tsc_scale
    assert (t.tsc_to_system_mul, t.tsc_shift) == (mul, shift)
    host.run(until=NS_PER_S + 1)
    later = time_info(v)
    # The pCPU was stamped at 1 s: the record says so, two versions on.
    assert later.system_time == NS_PER_S and later.tsc_timestamp == xen.time.tsc_at(NS_PER_S)
    assert later.version == t.version + 2


def test_a_guest_reading_its_record_and_tsc_gets_system_time():
    host = make_host(cpus=2)
    d, _ = boot_guest(host, ["burn 100%"])
    for until in (1_234_567_891, 2_500_000_003, 7 * NS_PER_S + 17):
        host.run(until=until)
        assert d.guest.now(d.vcpus[0]) == pytest.approx(host.now, abs=10)


def test_the_record_is_only_rewritten_when_it_changes(host, xen, make_domu):
    d = make_domu(16)
    v = d.vcpus[0]
    before = time_info(v).version
    xen.time.update_vcpu_system_time(v)
    assert time_info(v).version == before
    xen.time.update_vcpu_system_time(v, force=True)
    assert time_info(v).version == before + 2
