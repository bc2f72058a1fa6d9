"""Backends outside dom0 (seed 002): a driver domain, given physical-device
privilege, serves a guest's network and disk; the frontend names it as its
backend, and the two meet exactly as they would with dom0."""

from __future__ import annotations

from hv.guest.blkfront import pattern
from hv.guest.netback import network
from hv.public.domctl import (
    XEN_DOMCTL_INTERFACE_VERSION, XEN_DOMCTL_irq_permission, XenDomctl, XenDomctlIrqPermission,
)
from hv.public.io.xenbus import XenbusStateConnected
from hv.public.xen import HYPERVISOR_domctl
from hv.xen.audit import audit
from tests.devices import console, device_host, guest, image, settle, vbd
from xl.device import Device
from xl.privcmd import Privcmd


def grant_device_privilege(host, domid: int) -> None:
    """What passing a physical device through gives a driver domain: its
    interrupt (here, pirq 16)."""
    Privcmd(host.xen).hypercall(HYPERVISOR_domctl, XenDomctl(
        cmd=XEN_DOMCTL_irq_permission, interface_version=XEN_DOMCTL_INTERFACE_VERSION, domain=domid,
        u=XenDomctlIrqPermission(pirq=16, allow_access=1)))


def vif(n: int, backend: int) -> Device:
    mac = f"00:16:3e:00:01:{n:02x}"
    return Device("vif", 0, 0, backend, back={"bridge": "ddbr0", "mac": mac, "ip": f"10.1.0.{n}"},
                  front={"mac": mac})


def test_a_driver_domain_serves_network_and_disk(tmp_path):
    host, xs = device_host()
    dd, _ = guest(host, xs, "netdd", ["idle"], memory_mib=64)
    grant_device_privilege(host, dd.domid)
    path = image(tmp_path)
    a, ba = guest(host, xs, "alpha", ["sleep 10ms", "ping 10.1.0.2 -c 3 -i 0.1",
                                      "dd write xvda 256k", "dd verify xvda 256k"],
                  [vif(1, dd.domid), vbd(path, backend_domid=dd.domid)])
    b, _ = guest(host, xs, "beta", ["idle"], [vif(2, dd.domid)])
    settle(host, 1500)
    out = console(host, ba)
    assert "3 packets transmitted, 3 received, 0% packet loss" in out
    assert out.rstrip().endswith("verify ok")
    # The devices live in the driver domain's home, and the frontends say so.
    be = f"/local/domain/{dd.domid}/backend/vif/{a.domid}/0"
    assert int(xs.read(f"{be}/state")) == XenbusStateConnected
    assert xs.read(f"/local/domain/{a.domid}/device/vif/0/backend-id") == str(dd.domid).encode()
    assert xs.read(f"/local/domain/{a.domid}/device/vbd/51712/backend") == \
        f"/local/domain/{dd.domid}/backend/vbd/{a.domid}/51712".encode()
    # Its bridge, not dom0's, carried the frames; dom0 has no vif at all.
    assert set(network(dd.guest).bridge("ddbr0").ports) == {f"vif{a.domid}.0", f"vif{b.domid}.0"}
    assert not getattr(host.dom0.guest, "network", None) or not host.dom0.guest.network.vifs
    # The guest's grants are mapped by the driver domain, not by dom0.
    assert [m for m in dd.grant_table.maptrack.values() if m.flags and m.domid == a.domid]
    assert not [m for m in host.dom0.grant_table.maptrack.values()
                if m.flags and m.domid == a.domid and m.ref > 1]      # beyond console and store
    assert open(path, "rb").read(512) == pattern("alpha", 0)
    assert audit(host.xen) == []
