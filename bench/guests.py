"""Benchmarks of guests running under the scheduler, side by side in one run.

    python bench/guests.py [--quick]

Figures (aims from the project's plan):
  16 CPU-bound domains on 4 pCPUs, as a multiple of real time   aim >= 500x
  60 s of 1000 idle domains, wall seconds                      aim <= 1 s
  snapshot save and restore of a host with 100 domains: seconds and MiB
                                                              (no aim set)
"""

from __future__ import annotations

import argparse
import time

from common import print_table, repeat  # noqa: E402  (puts the repository on the path)

from hv.host import Host  # noqa: E402
from hv.xen.hypervisor import GiB, MiB  # noqa: E402
from hv.xen.timer import NS_PER_S  # noqa: E402
from xl.dombuild import build_pv_domain  # noqa: E402
from xl.privcmd import Privcmd  # noqa: E402

MIXED = (["burn 100%"], ["burn 30%"], ["compute 2ms", "sleep 8ms", "loop"],
         ["echo hello", "sleep 50ms", "loop"], ["idle"])


def _host_with(count: int, workloads, cpus: int, memory_mib: int = 32) -> Host:
    host = Host(cpus=cpus, memory=max(8 * GiB, count * (memory_mib + 4) * MiB + 2 * GiB),
                dom0_memory=512 * MiB)
    pc = Privcmd(host.xen)
    for i in range(count):
        build_pv_domain(pc, memory_kib=memory_mib * 1024, workload=workloads[i % len(workloads)])
    host.run(until=host.now + NS_PER_S // 10)          # every kernel has booted
    return host


def speed_16_hogs_on_4_pcpus(seconds: int) -> float:
    """Simulated seconds per wall second."""
    host = _host_with(16, [["burn 100%"]], cpus=4)
    start = host.now
    t0 = time.perf_counter()
    host.run(until=start + seconds * NS_PER_S)
    return seconds / (time.perf_counter() - t0)


def wall_1000_idle_for_60s(count: int) -> float:
    host = _host_with(count, [["idle"]], cpus=4)
    t0 = time.perf_counter()
    host.run(until=host.now + 60 * NS_PER_S)
    return time.perf_counter() - t0


def snapshot_100(count: int) -> tuple[float, float, float]:
    """(save s, restore s, MiB) for a host of ``count`` mixed domains."""
    host = _host_with(count, MIXED, cpus=4)
    host.run(until=host.now + NS_PER_S)
    t0 = time.perf_counter()
    data = host.snapshot()
    saved = time.perf_counter() - t0
    t0 = time.perf_counter()
    Host.restore(data)
    return saved, time.perf_counter() - t0, len(data) / MiB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller runs")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (default 3)")
    args = parser.parse_args()
    scale = 10 if args.quick else 1
    runs = [snapshot_100(100 // scale) for _ in range(args.repeat)]

    def spread(values):
        values = sorted(values)
        return values[len(values) // 2], values[0], values[-1]

    rows = [
        ("16 hogs on 4 pCPUs, x real time",
         repeat(speed_16_hogs_on_4_pcpus, 10 // scale or 1, args.repeat), 500, ">="),
        (f"{1000 // scale} idle domains for 60 s, wall s",
         repeat(wall_1000_idle_for_60s, 1000 // scale, args.repeat), 1, "<="),
        (f"snapshot save, {100 // scale} domains, s", spread([r[0] for r in runs]), None, ""),
        (f"snapshot restore, {100 // scale} domains, s", spread([r[1] for r in runs]), None, ""),
        (f"snapshot size, {100 // scale} domains, MiB", spread([r[2] for r in runs]), None, ""),
    ]
    print_table("xenlab guest benchmarks", args.repeat, rows)


if __name__ == "__main__":
    main()
