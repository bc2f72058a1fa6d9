"""One physical machine running Xen: the hypervisor, its virtual time, and
dom0, assembled and ready to drive from Python."""

from __future__ import annotations

import gc

from hv.public.xen import PAGE_SHIFT
from hv.xen.dom0_build import construct_dom0
from hv.xen.hypervisor import BOOT_WALLCLOCK_NS, GiB, MiB, Xen
from hv.xen.timer import EventLoop

DEFAULT_CPUS = 4
DEFAULT_MEMORY = 16 * GiB
DEFAULT_DOM0_MEMORY = 1 * GiB


def _collect_garbage_less_often() -> None:
    """A machine keeps a great many small long-lived objects (trace records,
    argument structures); with Python's default thresholds a full garbage
    collection walks them all every few thousand hypercalls. Nothing in the
    machine relies on cycles being collected promptly."""
    gen0, gen1, gen2 = gc.get_threshold()
    if gen0 < 50_000:
        gc.set_threshold(50_000, max(gen1, 20), max(gen2, 20))


class Host:
    def __init__(self, cpus: int = DEFAULT_CPUS, memory: int = DEFAULT_MEMORY,
                 dom0_memory: int = DEFAULT_DOM0_MEMORY, dom0_vcpus: int | None = None,
                 cmdline: str = "", dom0_cmdline: str = "console=hvc0",
                 trace_capacity: int = 65536, boot_wallclock_ns: int = BOOT_WALLCLOCK_NS,
                 debug_build: bool = False):
        _collect_garbage_less_often()
        self.clock = EventLoop()
        self.xen = Xen(self.clock, nr_cpus=cpus, memory_bytes=memory,
                       cmdline=cmdline or f"dom0_mem={dom0_memory // MiB}M",
                       trace_capacity=trace_capacity, boot_wallclock_ns=boot_wallclock_ns,
                       debug_build=debug_build)
        self.dom0 = construct_dom0(self.xen, dom0_memory >> PAGE_SHIFT,
                                   dom0_vcpus or min(cpus, 32), dom0_cmdline)
        self.xen.process_pending()

    @property
    def now(self) -> int:
        return self.clock.now

    def run(self, until: int | None = None) -> int:
        return self.clock.run(until)

    def step(self) -> bool:
        return self.clock.step()
