"""`xl sysrq` (control/sysrq and the guest kernel's handle_sysrq) and
`xl trigger` (XEN_DOMCTL_sendtrigger: an NMI a PV guest takes through the
callback it registered; the ACPI buttons refused as for any PV guest)."""

from __future__ import annotations

import pytest

from hv.host import Host
from hv.public.callback import CALLBACKTYPE_nmi
from hv.public.domctl import (
    XEN_DOMCTL_SENDTRIGGER_NMI, XEN_DOMCTL_sendtrigger, XenDomctlSendtrigger,
)
from hv.public.errno import EINVAL, ENOSYS, EPERM, ESRCH
from hv.xen.hypervisor import MiB
from tests.calls import domctl
from xl.toolstack import Toolstack, ToolstackError

NS = 1_000_000_000


@pytest.fixture
def ts():
    return Toolstack(Host(cpus=2, memory=2048 * MiB, dom0_memory=512 * MiB))


def run(ts, ns=NS // 10):
    ts.host.run(until=ts.host.now + ns)


def states(ts):
    return {d["name"]: d["state"] for d in ts.list_domains()}


def test_sysrq_keys_reach_the_kernel_which_empties_the_node(ts):
    domid = ts.create({"name": "g", "memory": 32, "workload": ["sleep 10ms", "idle"]})
    run(ts)
    ts.sysrq("g", "s")
    run(ts)
    assert ts.xs.read(f"/local/domain/{domid}/control/sysrq") == b""
    ts.sysrq("g", "m")
    run(ts)
    ts.sysrq("g", "t")
    run(ts)
    ts.sysrq("g", "h")
    run(ts)
    console = ts.console_output("g").splitlines()
    assert console[1:3] == ["sysrq: Emergency Sync", "Emergency Sync complete"]
    assert console[3] == "sysrq: Show Memory"
    assert console[4].startswith("8192 pages RAM, 8192 pages held, 0 pages ballooned out")
    assert console[5:8] == ["sysrq: Show State", "CPU0: idle", "program: finished"]
    assert console[8] == ("sysrq: HELP : reboot(b) crash(c) show-memory-usage(m) poweroff(o) "
                          "sync(s) show-task-states(t)")


@pytest.mark.parametrize("key, letters, action", [("o", "---s--", "on_poweroff"),
                                                  ("b", "---sr-", "on_reboot"),
                                                  ("c", "---sc-", "on_crash")])
def test_sysrq_shutdown_keys_shut_the_domain_down(ts, key, letters, action):
    ts.create({"name": "g", "memory": 32, action: "preserve"})
    run(ts)
    ts.sysrq("g", key)
    run(ts)
    assert states(ts)["g"] == letters


def test_sysrq_takes_one_key(ts):
    ts.create({"name": "g", "memory": 32})
    with pytest.raises(ToolstackError, match=r"^Invalid sysrq\.$"):
        ts.sysrq("g", "ab")


def test_trigger_nmi_enters_the_kernels_nmi_callback(ts):
    domid = ts.create({"name": "g", "memory": 32, "workload": ["burn 100%"]})
    run(ts)
    v0 = ts.host.xen.domains.get(domid).vcpus[0]
    assert CALLBACKTYPE_nmi in v0.callbacks
    mark = ts.host.xen.trace.seq
    ts.trigger("g", "nmi")
    run(ts)
    assert "Uhhuh. NMI received for unknown reason 00 on CPU 0." in ts.console_output("g")
    assert [r for r in ts.host.xen.trace.since(mark) if (r.kind, r.name) == ("guest", "nmi")]
    assert not v0.nmi_pending and not v0.nmi_masked
    assert states(ts)["g"][0] == "r"                     # it carries on burning


def test_an_nmi_wakes_a_blocked_vcpu(ts):
    ts.create({"name": "g", "memory": 32, "workload": ["idle"]})
    run(ts)
    assert states(ts)["g"] == "-b----"
    ts.trigger("g", "nmi")
    run(ts)
    assert ts.console_output("g").count("NMI received") == 1


@pytest.mark.parametrize("name, reason", [("power", ": Invalid argument"), ("sleep", ": Invalid argument"),
                                          ("reset", ": Function not implemented"),
                                          ("init", ": Function not implemented"),
                                          ("s3resume", ", rc=-6")])
def test_hvm_triggers_fail_for_a_pv_guest(ts, name, reason):
    domid = ts.create({"name": "g", "memory": 32})
    assert ts.trigger("g", name) == {"domid": domid, "failed": f"Send trigger '{name}' failed{reason}"}


def test_trigger_names_and_vcpus_are_checked(ts):
    ts.create({"name": "g", "memory": 32})
    with pytest.raises(ToolstackError, match=r'^Invalid trigger "bogus"$'):
        ts.trigger("g", "bogus")
    assert ts.trigger("g", "nmi", vcpu=3)["failed"] == "Send trigger 'nmi' failed: No such process"
    with pytest.raises(ToolstackError, match="out of range"):
        ts.trigger("g", "nmi", vcpu=1 << 32)


def test_sendtrigger_checks_in_xens_order(ts):
    domid = ts.create({"name": "g", "memory": 32})
    other = ts.create({"name": "h", "memory": 32})
    xen = ts.host.xen
    u = XenDomctlSendtrigger(trigger=XEN_DOMCTL_SENDTRIGGER_NMI, vcpu=0)
    assert domctl(xen, xen.domains.get(other), XEN_DOMCTL_sendtrigger, domid, u)[0] == -EPERM
    assert domctl(xen, ts.host.dom0, XEN_DOMCTL_sendtrigger, 999, u)[0] == -ESRCH
    assert domctl(xen, ts.host.dom0, XEN_DOMCTL_sendtrigger, domid,
                  XenDomctlSendtrigger(trigger=9))[0] == -ENOSYS
    assert domctl(xen, ts.host.dom0, XEN_DOMCTL_sendtrigger, domid,
                  XenDomctlSendtrigger(trigger=3))[0] == -EINVAL


def test_an_nmi_before_the_kernel_registered_its_callback_is_dropped(ts):
    domid = ts.create({"name": "g", "memory": 32, "paused": True})
    ts.trigger("g", "nmi")
    ts.unpause("g")
    run(ts)
    assert "NMI received" not in ts.console_output("g")
    assert not ts.host.xen.domains.get(domid).vcpus[0].nmi_pending
    ts.trigger("g", "nmi")                  # a later one is taken
    run(ts)
    assert ts.console_output("g").count("NMI received") == 1


def test_every_vcpu_takes_nmis(ts):
    domid = ts.create({"name": "g", "memory": 32, "vcpus": 2, "workload": ["burn 100%"]})
    run(ts)
    assert all(CALLBACKTYPE_nmi in v.callbacks for v in ts.host.xen.domains.get(domid).vcpus)
    ts.trigger("g", "nmi", vcpu=1)
    run(ts)
    assert "Uhhuh. NMI received for unknown reason 00 on CPU 1." in ts.console_output("g")
