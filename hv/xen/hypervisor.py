"""The hypervisor: every subsystem, wired together (the role of Xen's
arch/x86/setup.c bringing the machine up)."""

from __future__ import annotations

from typing import Callable

from hv.public.xen import PAGE_SHIFT, VIRQ_DEBUG
from hv.xen.callback import Callbacks
from hv.xen.console import Console
from hv.xen.descriptor_tables import DescriptorTables, validate_segdesc_page
from hv.xen.domain import DomainList
from hv.xen.domctl import Domctl
from hv.xen.sysctl import Sysctl
from hv.xen.event_channel import EventChannels
from hv.xen.grant_table import GrantTables
from hv.xen.hypercall import HypercallTable
from hv.xen.memory import Memory
from hv.xen.mm import FrameTable
from hv.xen.mmu import MMU
from hv.xen.p2m import P2M
from hv.xen.page_alloc import MachineMemory, PageAllocator
from hv.xen.sched_op import SchedOps
from hv.xen.schedule import NullGuestCPU, Scheduler
from hv.xen.time import Time
from hv.xen.timer import EventLoop
from hv.xen.trace import TraceBuffer
from hv.xen.vcpu_op import VcpuOps
from hv.xen.version import Version
from hv.xen.xsm import XSM

GiB = 1 << 30
MiB = 1 << 20
# Machine frames below this are Xen's own (its image, heap and tables) and
# never enter the domain heap.
XEN_RESERVED_BYTES = 16 * MiB
# The wall time a machine boots at unless told otherwise: fixed, so the same
# configuration always gives the same machine (2026-01-01T00:00:00Z).
BOOT_WALLCLOCK_NS = 1_767_225_600 * 1_000_000_000


class Xen:
    def __init__(self, clock: EventLoop, nr_cpus: int = 4, memory_bytes: int = 16 * GiB,
                 cmdline: str = "", trace_capacity: int = 65536,
                 boot_wallclock_ns: int = BOOT_WALLCLOCK_NS, debug_build: bool = False):
        """``debug_build`` is a Xen built with CONFIG_VERBOSE_DEBUG, where any
        guest may write to the hypervisor console."""
        if nr_cpus < 1:
            raise ValueError("a host needs at least one CPU")
        if memory_bytes < 2 * XEN_RESERVED_BYTES:
            raise ValueError(f"a host needs at least {2 * XEN_RESERVED_BYTES // MiB} MiB")
        self.clock = clock
        self.nr_cpus = nr_cpus
        self.cpu_khz = 3_000_000
        self.cmdline = cmdline
        nr_frames = memory_bytes >> PAGE_SHIFT
        self.reserved_frames = XEN_RESERVED_BYTES >> PAGE_SHIFT
        self.ram = MachineMemory(nr_frames)
        self.heap = PageAllocator(self.reserved_frames, nr_frames - self.reserved_frames)
        self.frames = FrameTable(self.ram, self.heap, debug_build=debug_build)
        self.frames.on_release = self._frame_released
        self.frames.validate_segdesc = validate_segdesc_page
        self.p2m = P2M(self.frames)
        self.trace = TraceBuffer(clock, trace_capacity)
        self.xsm = XSM(verbose_debug=debug_build)
        self.time = Time(self, boot_wallclock_ns)
        self.console = Console(self)
        self.domains = DomainList(self)
        self.evtchn = EventChannels(self)
        self.gnttab = GrantTables(self)
        # What runs inside vCPUs: nothing modelled until a host installs
        # guest kernels.
        self.guest_cpu = NullGuestCPU()
        self.sched = Scheduler(self)
        self.sched_ops = SchedOps(self)
        self.memory = Memory(self)
        self.mmu = MMU(self)
        self.descriptor_tables = DescriptorTables(self)
        self.callbacks = Callbacks(self)
        self.vcpu_ops = VcpuOps(self)
        self.version = Version(self, cmdline)
        self.domctl = Domctl(self)
        self.sysctl = Sysctl(self)
        self.hypercalls = HypercallTable(self)
        # The door guests use: hypercall(vcpu, number, *args) -> (rc, out).
        self.hypercall = self.hypercalls.call
        self.hardware_domain = None
        # Work that must wait until the current operation is complete, as
        # Xen defers final domain destruction to an RCU callback.
        self.deferred: list[tuple[Callable, tuple]] = []
        # Set while guest code runs: what it raises waits until it returns.
        self.in_guest = False
        # Whether a fault in a modelled kernel crashes its domain (True)
        # or is raised to whoever runs the machine (False).
        self.contain_guest_faults = False
        clock.after_event = self.process_pending
        self.console.printk(f"Xen version {self.version.version_string} (xenlab)")
        self.console.printk(f"Command line: {cmdline}")
        self.console.printk(f"System RAM: {memory_bytes // MiB}MB, {nr_cpus} CPUs")

    def defer(self, fn: Callable, *args) -> None:
        self.deferred.append((fn, args))

    def run_deferred(self) -> None:
        while self.deferred:
            fn, args = self.deferred.pop(0)
            fn(*args)

    def _frame_released(self, d) -> None:
        self.defer(self.domains.complete_destroy_if_done, d)

    def process_pending(self) -> None:
        """What Xen does before going back to a guest, after every event
        and every hypercall: each pCPU's schedule softirq, deferred work,
        then the guest code that has something to do, until all is quiet."""
        if self.in_guest:
            return
        sched, guest_cpu = self.sched, self.guest_cpu
        while True:
            # Schedule first: deferred work (final destruction) waits, as
            # Xen's RCU callbacks do, until every pCPU has moved on.
            if sched.softirq:
                sched.do_softirqs()
            elif self.deferred:
                self.run_deferred()
            elif not (guest_cpu.pending and guest_cpu.run_pending()):
                return

    @property
    def total_pages(self) -> int:
        return self.heap.total_pages

    @property
    def free_pages(self) -> int:
        return self.heap.free_pages

    def _dump_domains(self) -> str:
        """'q': the domains, then VIRQ_DEBUG to every vCPU so that guests
        dump their own state."""
        lines = [self.domains.dump()]
        for d in self.domains:
            if d.is_dying:
                continue
            for v in d.vcpus:
                lines.append(f"Notifying guest {d.domid}:{v.vcpu_id} "
                             f"(virq {VIRQ_DEBUG}, port {v.virq_to_evtchn[VIRQ_DEBUG]})")
                self.evtchn.send_guest_vcpu_virq(v, VIRQ_DEBUG)
        return "\n".join(lines)

    def debug_key(self, key: str) -> str:
        """The hypervisor's debug keys ('h' lists them); the report also goes
        to the console ring, where `xl dmesg` shows it."""
        keys = {
            "e": ("dump evtchn info", self.evtchn.dump),
            "g": ("print grant table usage", self.gnttab.dump),
            "q": ("dump domain (and guest debug) info", self._dump_domains),
            "r": ("dump run queues", self.sched.dump),
        }
        if key == "h":
            lines = ["'h' pressed -> showing installed handlers"]
            lines += [f" key '{k}' (ascii '{ord(k):02x}') => {desc}" for k, (desc, _) in sorted(keys.items())]
            report = "\n".join(lines)
        elif key in keys:
            report = keys[key][1]()
        else:
            report = f"'{key}' pressed -> no handler"
        self.console.printk(report)
        return report
