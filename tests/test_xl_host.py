"""`xl info`, `xl uptime`, `xl dmesg` and `xl debug-keys`: what libxl reads
through sysctl, xen_version and xenstore, printed as xl_info.c prints it."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from hv.host import Host
from hv.xen.hypervisor import MiB
from xl.info import render_info, uptime_text
from xl.toolstack import Toolstack

NS = 1_000_000_000


@pytest.fixture(scope="module")
def ts():
    return Toolstack(Host(cpus=2, memory=2048 * MiB, dom0_memory=512 * MiB))


def test_info_fields_come_from_the_hypervisor(ts):
    fields = dict(ts.info()["fields"])
    xen = ts.host.xen
    assert list(dict(ts.info()["fields"]))[:4] == ["host", "release", "version", "machine"]
    assert fields["nr_cpus"] == "2" and fields["max_cpu_id"] == "1"
    assert fields["cpu_mhz"] == "3000.000"
    assert fields["total_memory"] == "2048"
    assert fields["free_memory"] == str(xen.heap.free_pages // 256)
    assert fields["virt_caps"] == " pv gnttab-v1"
    assert fields["xen_version"] == xen.version.version_string
    assert fields["xen_scheduler"] == "credit"
    assert fields["platform_params"] == "virt_start=0xffff800000000000"
    assert fields["xen_commandline"] == xen.cmdline
    assert list(fields)[-1] == "xend_config_format" and fields["xend_config_format"] == "4"
    before = int(fields["free_memory"])
    ts.create({"name": "sized", "memory": 64})
    assert before - int(dict(ts.info()["fields"])["free_memory"]) >= 64
    ts.destroy("sized")


def test_info_renders_as_maybe_printf_does(ts):
    fields = ts.info()["fields"]
    text = render_info(fields).splitlines()
    assert text[4] == "nr_cpus                : 2"
    assert "virt_caps              : pv gnttab-v1" in text
    assert "build_id               : " in text                 # empty, with its space
    # A name picks the values of every field it begins.
    assert render_info(fields, "xen_m").splitlines() == ["4", "17"]
    assert render_info(fields, "nr_cpus") == "2"
    assert render_info(fields, "nothing") == ""
    numa = ts.info(numa=True)
    lines = render_info(numa["fields"], None, numa["numa"]).splitlines()
    at = lines.index("cpu_topology           :")
    assert lines[at - 1].startswith("free_cpus")
    assert lines[at + 1:at + 4] == ["cpu:    core    socket     node",
                                    "  0:       0        0        0", "  1:       1        0        0"]
    assert lines[at + 9] == f"   0:      2048     {ts.host.xen.heap.free_pages >> 8:6d}      10"


def test_uptime_counts_from_the_start_time_libxl_wrote(ts):
    ts.host.run(until=ts.host.now + 5 * NS)
    domid = ts.create({"name": "timed", "memory": 32})
    vm = ts.xs.read(f"/local/domain/{domid}/vm").decode()
    started = float(ts.xs.read(f"{vm}/start_time").decode())
    assert started == pytest.approx(ts.host.xen.time.wallclock_ns() / NS, abs=0.01)
    ts.host.run(until=ts.host.now + 3725 * NS)
    rows = {r["name"]: r for r in ts.uptime()["domains"]}
    assert rows["timed"]["uptime_s"] == 3725
    assert rows["Domain-0"]["uptime_s"] == ts.host.now // NS
    assert [r["name"] for r in ts.uptime(["timed"])["domains"]] == ["timed"]
    assert uptime_text(3725, False) == " 1:02:05" and uptime_text(3725, True) == " 1:02"
    assert uptime_text(86400 * 2 + 61, False) == "2 days,  0:01:01"
    assert uptime_text(86400 + 60, True) == "1 day,  0:01"
    ts.destroy("timed")


def test_dmesg_reads_the_ring_by_sysctl_and_clears(ts):
    ts.dmesg(clear=True)
    ts.debug_keys("hq")
    ring = ts.dmesg(clear=False)
    assert ring.startswith("(XEN) 'h' pressed -> showing installed handlers\n")
    assert ts.dmesg(clear=True) == ring
    assert ts.dmesg(clear=False) == ""
    # A full ring: all of it comes, in order.
    for i in range(3000):
        ts.host.xen.console.printk(f"line {i:05d}")
    ring = ts.dmesg(clear=False)
    assert ring.endswith("(XEN) line 02999\n") and len(ring) == ts.host.xen.console.conring_size


XL = os.path.join(os.path.dirname(sys.executable), "xl")


def test_info_and_uptime_through_xl(tmp_path):
    env = {**os.environ, "XL_HOME": str(tmp_path / "state")}

    def xl(*args):
        return subprocess.run([XL, *args], capture_output=True, text=True, env=env, timeout=60)

    try:
        assert xl("host", "start", "--cpus", "3", "--memory", "2G").returncode == 0
        info = xl("info")
        assert info.returncode == 0 and "nr_cpus                : 3\n" in info.stdout
        assert "total_memory           : 2048\n" in info.stdout
        assert xl("info", "xen_scheduler").stdout == "credit\n"
        up = xl("uptime").stdout.splitlines()
        assert up[0] == "Name                                ID Uptime"
        assert up[1].startswith("Domain-0                             0  0:00:")
        assert xl("uptime", "-s").stdout.endswith(", Domain-0 (0)\n")
        bad = xl("uptime", "nosuch")
        assert bad.returncode == 1 and bad.stderr == "xl: nosuch is an invalid domain identifier\n"
    finally:
        xl("host", "stop")
