"""Helpers for split-device scenarios: a host whose dom0 runs the kernel
(so backends run), guests built with devices the toolstack's way, their
consoles, and disk images."""

from __future__ import annotations

import struct

from hv.host import Host
from hv.xen.hypervisor import MiB
from hv.xenstore.client import XsClient
from tests.conftest import make_host
from xl.dombuild import BuiltDomain, create_pv_domain
from xl.device import Device
from xl.privcmd import Privcmd

NS_PER_MS = 1_000_000
_OUT_CONS = struct.Struct("<II")


def device_host(**kw) -> tuple[Host, XsClient]:
    kw.setdefault("dom0_workload", ("idle",))
    kw.setdefault("memory", 2048 * MiB)
    kw.setdefault("dom0_memory", 256 * MiB)
    host = make_host(**kw)
    return host, XsClient(host.xenstored)


def settle(host: Host, ms: float = 50) -> None:
    host.run(until=host.now + int(ms * NS_PER_MS))


def guest(host: Host, xs: XsClient, name: str, workload, devices=(), memory_mib: int = 32,
          cmdline: str = "") -> tuple:
    built = create_pv_domain(Privcmd(host.xen), xs, name=name, memory_kib=memory_mib * 1024,
                             workload=list(workload), devices=devices, cmdline=cmdline)
    return host.xen.domains.get(built.domid), built


def console(host: Host, built: BuiltDomain) -> str:
    """Everything the guest wrote to its console ring so far."""
    d = host.xen.domains.get(built.domid)
    page = host.xen.frames.map_domain_page(d, built.console_mfn, False)
    _cons, prod = _OUT_CONS.unpack_from(page, 3080)
    out = bytes(page[1024 + i % 2048] for i in range(max(0, prod - 2048), prod))
    return out.decode(errors="replace")


def image(tmp_path, name: str = "disk.raw", size: int = 8 * MiB) -> str:
    path = tmp_path / name
    with open(path, "wb") as f:
        f.truncate(size)
    return str(path)


def vbd(path: str, vdev: str = "xvda", devid: int = 51712, mode: str = "w",
        backend_domid: int = 0) -> Device:
    """A disk as libxl describes it to both ends."""
    return Device("vbd", 0, devid, backend_domid,
                  back={"params": path, "mode": mode, "type": "phy", "dev": vdev,
                        "device-type": "disk", "removable": 0, "bootable": 1},
                  front={"virtual-device": devid, "device-type": "disk"})


def paused_guest(host: Host, xs: XsClient, name: str, devices=(), memory_mib: int = 32):
    """A domain with its devices whose kernel never runs: the test plays
    its frontends through the store and its pages."""
    from dataclasses import replace

    from xl.device import device_add
    from xl.dombuild import uuid_text, build_pv_domain
    from xl.domain_store import make_domain_entries
    pc = Privcmd(host.xen)
    built = build_pv_domain(pc, memory_kib=memory_mib * 1024, unpause=False, workload=["idle"])
    make_domain_entries(xs, built.domid, name=name, uuid=uuid_text(bytes(16)),
                        memory_kib=memory_mib * 1024, maxmem_kib=memory_mib * 1024, vcpus=1,
                        store_port=built.store_port, store_mfn=built.store_mfn,
                        console_port=built.console_port, console_mfn=built.console_mfn)
    xs.introduce(built.domid, built.store_mfn, built.store_port)
    for dev in devices:
        device_add(xs, replace(dev, domid=built.domid))
    return host.xen.domains.get(built.domid), built
