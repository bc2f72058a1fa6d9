"""Split devices through their whole path, side by side in one run:
4 KiB block reads per wall second (grant, ring, event channel, blkback,
the image file), UDP datagrams per wall second from one guest to another
through netback and the bridge, and ping's round trip in virtual time."""

from __future__ import annotations

import os
import re
import sys
import tempfile
import time

import common  # noqa: F401  (puts the project on sys.path)

from hv.host import Host
from hv.xen.hypervisor import MiB
from hv.xenstore.client import XsClient
from xl.device import Device
from xl.dombuild import create_pv_domain
from xl.privcmd import Privcmd
from tests.devices import console

RUNS = 5
READS = 10_240          # 40 MiB in 4 KiB requests
DATAGRAMS = 20_000


def _host():
    host = Host(cpus=4, memory=2048 * MiB, dom0_memory=256 * MiB)
    host.xen.trace.enabled = False
    return host, XsClient(host.xenstored)


def _run_until(host, built, text: str, step_ns: int = 50_000_000, limit_ns: int = 600 * 10**9):
    while text not in console(host, built):
        if host.now > limit_ns:
            raise RuntimeError(f"never saw {text!r}: {console(host, built)[-300:]!r}")
        host.run(until=host.now + step_ns)
    return console(host, built)


def block_reads(n: int) -> float:
    host, xs = _host()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "disk.raw")
        with open(path, "wb") as f:
            f.truncate(n * 4096)
        disk = Device("vbd", 0, 51712, 0, back={"params": path, "mode": "w"},
                      front={"virtual-device": 51712})
        built = create_pv_domain(Privcmd(host.xen), xs, name="reader", memory_kib=64 * 1024,
                                 workload=["sleep 1ms", f"dd read xvda {n * 4096} bs=4k"],
                                 devices=[disk])
        host.run(until=host.now + 1_000_000)            # connected, about to read
        start = time.perf_counter()
        _run_until(host, built, "copied")
        elapsed = time.perf_counter() - start
        host.close()
    return n / elapsed


def _vif(n: int) -> Device:
    mac = f"00:16:3e:00:00:{n:02x}"
    return Device("vif", 0, 0, 0, back={"bridge": "xenbr0", "mac": mac, "ip": f"10.0.0.{n}"},
                  front={"mac": mac})


def udp(n: int) -> float:
    host, xs = _host()
    pc = Privcmd(host.xen)
    create_pv_domain(pc, xs, name="sink", memory_kib=64 * 1024,
                     workload=[f"udp-echo 9000 {n}"], devices=[_vif(2)])
    sender = create_pv_domain(pc, xs, name="source", memory_kib=64 * 1024,
                              workload=["sleep 10ms", f"udp-send 10.0.0.2 9000 {n} 64"],
                              devices=[_vif(1)])
    host.run(until=host.now + 10_000_000)
    start = time.perf_counter()
    _run_until(host, sender, "udp-send:", step_ns=10_000_000)
    elapsed = time.perf_counter() - start
    # Each datagram crosses netback and the bridge twice: there and echoed back.
    return 2 * n / elapsed


def ping_rtt_us(n: int) -> float:
    host, xs = _host()
    pc = Privcmd(host.xen)
    create_pv_domain(pc, xs, name="b", memory_kib=32 * 1024, workload=["idle"], devices=[_vif(2)])
    a = create_pv_domain(pc, xs, name="a", memory_kib=32 * 1024,
                         workload=["sleep 10ms", f"ping 10.0.0.2 -c {n} -i 0.01"], devices=[_vif(1)])
    out = _run_until(host, a, "rtt min/avg/max/mdev")
    avg_ms = float(re.search(r"= [\d.]+/([\d.]+)/", out).group(1))
    return avg_ms * 1000


def main() -> None:
    from common import print_table, repeat
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else RUNS
    rows = [
        ("4 KiB block reads per wall second", repeat(block_reads, READS, runs), 50_000, ">="),
        ("UDP datagrams through netback per wall second", repeat(udp, DATAGRAMS, runs), 100_000, ">="),
        ("ping round trip, virtual microseconds", repeat(ping_rtt_us, 20, 1), None, ""),
    ]
    print_table("split devices", runs, rows)


if __name__ == "__main__":
    main()
