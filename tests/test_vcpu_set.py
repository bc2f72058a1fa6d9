"""`xl vcpu-set` and maxvcpus: the toolstack writes cpu/N/availability, the
guest's kernel takes vCPUs down (each one itself, by VCPUOP_down, after an
IPI) and brings them back (VCPUOP_up), as Linux's cpu_hotplug.c does."""

from __future__ import annotations

import pytest

from hv.host import Host
from hv.public.vcpu import RUNSTATE_running
from hv.xen.audit import audit
from hv.xen.domain import VPF_down
from hv.xen.hypervisor import MiB
from xl.toolstack import Toolstack, ToolstackError

NS = 1_000_000_000


def online(ts, name):
    return {r["name"]: r["vcpus"] for r in ts.list_domains()}[name]


@pytest.fixture
def ts():
    return Toolstack(Host(cpus=4, memory=2048 * MiB, dom0_memory=512 * MiB))


def test_maxvcpus_beyond_vcpus_boots_with_the_rest_offline(ts):
    domid = ts.create({"name": "hp", "memory": 32, "vcpus": 2, "maxvcpus": 4, "workload": ["burn 100%"]})
    ts.host.run(until=ts.host.now + NS // 10)
    d = ts.host.xen.domains.get(domid)
    assert len(d.vcpus) == 4 and online(ts, "hp") == 2
    assert [ts.xs.read(f"/local/domain/{domid}/cpu/{n}/availability") for n in range(4)] == \
        [b"online", b"online", b"offline", b"offline"]
    assert [bool(v.pause_flags & VPF_down) for v in d.vcpus] == [False, False, True, True]
    assert ts.list_long("hp")[0]["config"]["b_info"]["max_vcpus"] == 4
    assert ts.list_long("hp")[0]["config"]["b_info"]["avail_vcpus"] == [0, 1]


def test_vcpu_set_brings_vcpus_up_and_takes_busy_ones_down(ts):
    domid = ts.create({"name": "hp", "memory": 32, "vcpus": 1, "maxvcpus": 3, "workload": ["burn 100%"]})
    ts.host.run(until=ts.host.now + NS // 10)
    ts.vcpu_set("hp", 3)
    ts.host.run(until=ts.host.now + NS // 10)
    assert online(ts, "hp") == 3
    rows = ts.vcpu_list("hp")
    assert all(r["state"] == "r--" for r in rows)          # all three burn
    burnt = [r["time_s"] for r in rows]
    ts.vcpu_set("hp", 1)                   # vCPUs 1 and 2 are mid-compute
    ts.host.run(until=ts.host.now + NS // 10)
    assert online(ts, "hp") == 1
    rows = ts.vcpu_list("hp")
    assert [r["state"] for r in rows] == ["r--", "--p", "--p"]
    assert rows[0]["time_s"] > burnt[0]
    # Down vCPUs use no more time.
    d = ts.host.xen.domains.get(domid)
    used = [v.runstate_snapshot(ts.host.now)[2][RUNSTATE_running] for v in d.vcpus[1:]]
    ts.host.run(until=ts.host.now + NS // 10)
    assert [v.runstate_snapshot(ts.host.now)[2][RUNSTATE_running] for v in d.vcpus[1:]] == used
    console = ts.console_output("hp")
    assert "smpboot: CPU 1 is now offline" in console and "smpboot: CPU 2 is now online" in console
    assert audit(ts.host.xen) == []
    ts.vcpu_set("hp", 2)
    ts.host.run(until=ts.host.now + NS // 10)
    assert [r["state"] for r in ts.vcpu_list("hp")] == ["r--", "r--", "--p"]


def test_vcpu_set_refuses_as_libxl_and_xl_do(ts):
    ts.create({"name": "small", "memory": 32, "vcpus": 1, "maxvcpus": 2})
    before = ts.xs.read(f"/local/domain/{ts.domid_of('small')}/cpu/1/availability")
    with pytest.raises(ToolstackError, match=r"^Requested 0 VCPUs!$"):
        ts.vcpu_set("small", 0)
    with pytest.raises(ToolstackError, match=r"^Requested 3 VCPUs, however maxcpus is 2!$"):
        ts.vcpu_set("small", 3)
    with pytest.raises(ToolstackError, match=r"^You are overcommmitting! You have 4 physical CPUs "
                                             r"and want 5 vCPUs! Aborting, use --ignore-host to continue$"):
        ts.vcpu_set("small", 5)
    with pytest.raises(ToolstackError, match="however maxcpus is 2"):
        ts.vcpu_set("small", 5, check_host=False)
    with pytest.raises(ToolstackError, match="invalid domain identifier"):
        ts.vcpu_set("nosuch", 1)
    assert ts.xs.read(f"/local/domain/{ts.domid_of('small')}/cpu/1/availability") == before
