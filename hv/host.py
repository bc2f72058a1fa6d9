"""One physical machine running Xen: the hypervisor, its virtual time, its
pCPUs running the guests' kernels, and dom0, assembled and ready to drive
from Python. A host can be stepped, domain by domain, and snapshotted."""

from __future__ import annotations

import gc
import pickle
import random
import threading

from hv.guest.cpu import PVGuestCPU
from hv.guest.xenconsoled import Xenconsoled
from hv.guest.image import KERNEL_ENTRY, workload_module
from hv.public.xen import PAGE_SHIFT
from hv.xen.dom0_build import construct_dom0
from hv.xen.hypervisor import BOOT_WALLCLOCK_NS, GiB, MiB, Xen
from hv.xen.timer import EventLoop
from hv.xen.trace import TraceRecord
from hv.xenstore.domain import DomainManager
from hv.xenstore.quota import Quotas
from hv.xenstore.server import XenstoreServer
from hv.xenstore.xenstored import Xenstored

DEFAULT_CPUS = 4
DEFAULT_MEMORY = 16 * GiB
DEFAULT_DOM0_MEMORY = 1 * GiB
# How much virtual time the machine runs between chances for other
# threads (the socket servers) to take the host's lock.
RUN_SLICE = 10_000_000


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
                 debug_build: bool = False, dom0_workload: list[str] | None = ("idle",),
                 seed: int = 0, xenstore_quotas: Quotas | None = None,
                 console_log_dir: str | None = None):
        """``dom0_workload`` is the program dom0's kernel runs (None: dom0
        runs no modelled kernel, and whoever drives the host makes its
        hypercalls). ``seed`` feeds everything on the host that is random.
        ``console_log_dir``: where the console daemon logs each guest's
        output (None: nowhere)."""
        _collect_garbage_less_often()
        # Held by whoever drives the machine: the socket servers' threads
        # take it for each request, so the machine sees one thing at a time.
        self.lock = threading.RLock()
        self.servers: list[XenstoreServer] = []
        self.clock = EventLoop()
        self.random = random.Random(seed)
        self.xen = Xen(self.clock, nr_cpus=cpus, memory_bytes=memory,
                       cmdline=cmdline or f"dom0_mem={dom0_memory // MiB}M",
                       trace_capacity=trace_capacity, boot_wallclock_ns=boot_wallclock_ns,
                       debug_build=debug_build)
        self.xen.guest_cpu = PVGuestCPU(self.xen)
        kernel = {} if dom0_workload is None else {
            "entry": KERNEL_ENTRY, "initrd": workload_module(list(dom0_workload))}
        self.dom0 = construct_dom0(self.xen, dom0_memory >> PAGE_SHIFT,
                                   dom0_vcpus or min(cpus, 32), dom0_cmdline, **kernel)
        self.xen.process_pending()
        self.xenstored = Xenstored(xenstore_quotas)
        self.xenstored.init_dom0()
        # xenstored's side facing the domains is a dom0 process: with no
        # kernel in dom0 there is nothing to run it, and the store serves
        # its socket and the host's own clients only.
        self.xenstore_domains = (DomainManager(self.xen, self.xenstored)
                                 if self.dom0.guest is not None else None)
        # The console backend is a dom0 process too.
        self.xenconsoled = (Xenconsoled(self.xen, self.xenstored, console_log_dir)
                            if self.dom0.guest is not None else None)

    @property
    def now(self) -> int:
        return self.clock.now

    def run(self, until: int | None = None) -> int:
        """Run the machine to ``until`` (or until nothing is left to do).
        While a socket server is up, the host's lock is held a slice of
        virtual time at a time, so that its clients are served meanwhile."""
        lock, clock = self.lock, self.clock
        ran = 0
        while True:
            with lock:
                if not self.servers:
                    return ran + clock.run(until)
                end = clock.now + RUN_SLICE if until is None else min(until, clock.now + RUN_SLICE)
                ran += clock.run(end)
                if (clock.now >= until) if until is not None else clock.peek() is None:
                    return ran

    def step(self) -> bool:
        with self.lock:
            return self.clock.step()

    def step_domain(self, domid: int, vcpu: int = 0) -> list[TraceRecord]:
        """Run exactly one operation of a paused domain's vCPU, while the
        rest of the machine keeps its own time; the trace records it made."""
        d = self.xen.domains.get(domid)
        if d is None:
            raise ValueError(f"there is no domain {domid}")
        if not d.controller_pause_count:
            raise ValueError(f"domain {domid} is running: pause it to step it")
        v = d.vcpu(vcpu)
        if v is None:
            raise ValueError(f"domain {domid} has no vCPU {vcpu}")
        with self.lock:
            return self.xen.guest_cpu.step(v)

    def console_output(self, domid: int) -> bytes:
        """What the domain wrote to its console, as the console daemon keeps it."""
        if self.xenconsoled is None:
            raise ValueError("dom0 runs no kernel, so no console daemon")
        return self.xenconsoled.output(domid)

    def network_capture(self, bridge: str, path: str | None, domid: int = 0) -> None:
        """Write every frame that enters a backend domain's bridge to a pcap
        file at ``path`` (None: stop), as tcpdump on that domain would."""
        from hv.guest.netback import network
        d = self.xen.domains.get(domid)
        if d is None or d.guest is None:
            raise ValueError(f"domain {domid} runs no kernel with bridges")
        with self.lock:
            br = network(d.guest).bridge(bridge)
            if path is None:
                br.capture_stop()
            else:
                br.capture_start(path)

    def serve_xenstore(self, path: str, on_request=None) -> XenstoreServer:
        """Serve xenstore's wire protocol on a UNIX socket at ``path``
        (owner-only), for Xen's own clients and anyone else; ``on_request``
        hears of each request and its answer before the answer goes."""
        server = XenstoreServer(self.xenstored, path, self.lock)
        server.on_request = on_request
        server.start()
        self.servers.append(server)
        return server

    def close(self) -> None:
        """Stop serving, and let go of the files the backends hold open."""
        for server in self.servers:
            server.close()
        self.servers.clear()
        for d in self.xen.domains:
            kernel = d.guest
            for bus in getattr(kernel, "buses", ()):
                for dev in bus.devices.values():
                    dev.release_files()

    def __getstate__(self):
        state = self.__dict__.copy()
        del state["lock"]
        state["servers"] = []
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.lock = threading.RLock()
        if self.xenconsoled is not None:
            self.xenconsoled.reattach()

    # ------------------------------------------------------------ snapshots
    def snapshot(self) -> bytes:
        """The whole machine as bytes: memory, every subsystem, the guests'
        kernels and programs, and the events still to come."""
        with self.lock:
            return pickle.dumps(self, protocol=pickle.HIGHEST_PROTOCOL)

    @staticmethod
    def restore(data: bytes) -> "Host":
        """A machine that goes on exactly as the one snapshotted would have."""
        _collect_garbage_less_often()
        host = pickle.loads(data)
        if not isinstance(host, Host):
            raise ValueError("not a host snapshot")
        return host
