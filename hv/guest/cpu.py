"""The processor guest code runs on. When Xen switches in a vCPU of a
domain running the modelled kernel, the kernel's operations run, one after
another, until one takes time (its end is a timer), the vCPU blocks, or Xen
wants the pCPU back (a schedule softirq), as a real CPU would leave guest
mode. An event for a running vCPU is an interrupt: its upcall runs before
the next operation, and a compute in progress goes on around it. A vCPU
switched out keeps what is left of its compute for when it is back.

Stepping runs exactly one operation of a vCPU Xen is not running.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hv.guest.image import KERNEL_ENTRY, SECONDARY_ENTRY
from hv.guest.kernel import FOREVER, SECONDARY_BOOT, KernelPanic, PVKernel, VcpuState
from hv.public.callback import CALLBACKTYPE_nmi

if TYPE_CHECKING:
    from hv.xen.domain import VCPU
    from hv.xen.hypervisor import Xen
    from hv.xen.trace import TraceRecord

# How many operations a vCPU may run without time passing before its
# kernel is taken for hung.
BUDGET = 10_000


def kernel_of(v: "VCPU") -> PVKernel | None:
    """The modelled kernel running on ``v``, if it runs one."""
    k = v.domain.guest
    if k is None or v.vcpu_id >= len(k.vcpus):
        return None
    if v.vcpu_id == 0:
        return k
    ctxt = v.context
    return k if ctxt is not None and ctxt.user_regs.rip == SECONDARY_ENTRY else None


class PVGuestCPU:
    def __init__(self, xen: "Xen"):
        self.xen = xen
        self.kicked: dict["VCPU", None] = {}    # vCPUs with something to run, in order
        self.pending = False

    def load(self, v: "VCPU") -> PVKernel | None:
        """The kernel on ``v``; vCPU 0 starting at the kernel's entry boots
        a new one."""
        d = v.domain
        if d.guest is None and v.vcpu_id == 0:
            ctxt = v.context
            if ctxt is not None and ctxt.user_regs.rip == KERNEL_ENTRY:
                d.guest = PVKernel(self.xen, d, ctxt.user_regs.rsi)
        return kernel_of(v)

    # ------------------------------------------------------------ from Xen
    def switch_in(self, v: "VCPU") -> None:
        k = self.load(v)
        if k is None:
            return
        st = k.vcpus[v.vcpu_id]
        if st.left is not None:
            self._start_timed(k, v, st.left)
            st.left = None
        self.kick(v)

    def switch_out(self, v: "VCPU") -> None:
        k = kernel_of(v)
        if k is None:
            return
        st = k.vcpus[v.vcpu_id]
        if st.op_end is not None:
            st.left = FOREVER if st.op_end >= FOREVER else st.op_end - self.xen.clock.now
            st.op_end = None
            if st.timer is not None:
                st.timer.cancel()
                st.timer = None
        self.kicked.pop(v, None)

    def vcpu_reset(self, v: "VCPU") -> None:
        """Xen reset a vCPU: whatever its kernel was doing on it is gone;
        vCPU 0's reset takes the kernel with it."""
        k = v.domain.guest
        if k is None or v.vcpu_id >= len(k.vcpus):
            return
        gone = k.vcpus if v.vcpu_id == 0 else [k.vcpus[v.vcpu_id]]
        for st in gone:
            if st.timer is not None:
                st.timer.cancel()
        if v.vcpu_id == 0:
            v.domain.guest = None
            for other in v.domain.vcpus:
                self.kicked.pop(other, None)
        else:
            k.vcpus[v.vcpu_id] = VcpuState(list(SECONDARY_BOOT))
            self.kicked.pop(v, None)

    def kick(self, v: "VCPU") -> None:
        if v.domain.guest is not None:
            self.kicked[v] = None
            self.pending = True

    def run_pending(self) -> bool:
        """Run every kicked vCPU that is still on a pCPU, until Xen has
        scheduling to do first. Returns whether any guest code ran."""
        ran = False
        sched = self.xen.sched
        while self.kicked:
            if sched.softirq:
                return True         # the rest wait for Xen to schedule
            v = next(iter(self.kicked))
            del self.kicked[v]
            k = kernel_of(v)
            if k is not None and v.is_running:
                self._run(k, v)
                ran = True
        self.pending = False
        return ran

    # ------------------------------------------------------------ running
    def _start_timed(self, k: PVKernel, v: "VCPU", duration: int) -> None:
        st = k.vcpus[v.vcpu_id]
        if duration >= FOREVER:
            st.op_end = FOREVER
            return
        st.op_end = self.xen.clock.now + duration
        st.timer = self.xen.clock.schedule(st.op_end, self._timed_done, v)

    def _timed_done(self, v: "VCPU") -> None:
        k = kernel_of(v)
        if k is None:
            return
        self.xen.sched.this_cpu = v.processor
        st = k.vcpus[v.vcpu_id]
        st.timer = None
        st.op_end = None
        st.queue.pop(0)
        self.kick(v)

    def _run(self, k: PVKernel, v: "VCPU") -> None:
        xen = self.xen
        sched = xen.sched
        st = k.vcpus[v.vcpu_id]
        deliverable = k.upcall_deliverable
        xen.in_guest = True
        try:
            for _ in range(BUDGET):
                if not v.is_running or not v.runnable:
                    return
                if sched.softirq >> v.processor & 1:
                    self.kick(v)        # Xen has the pCPU first; go on after, if still here
                    return
                if v.nmi_pending and not v.nmi_masked:
                    self._nmi(k, v)
                elif deliverable(v):
                    self._upcall(k, v)
                elif st.op_end is not None:
                    return              # inside a compute: only interrupts run
                else:
                    self._one_op(k, v, stepping=False)
            xen.domains.domain_crash(v.domain, f"vCPU {v.vcpu_id} ran {BUDGET} operations "
                                               "without time passing")
        except Exception as e:
            self._fault(v, e)
        finally:
            xen.in_guest = False

    def _fault(self, v: "VCPU", e: Exception) -> None:
        """The modelled kernel failed in a way no kernel panic covers: a
        fault in the model itself. A host that contains such faults (the
        host service's) crashes that domain and goes on; otherwise (tests,
        notebooks) it is raised, to be seen."""
        if not getattr(self.xen, "contain_guest_faults", False):
            raise e
        where = f"d{v.domain.domid}v{v.vcpu_id}"
        self.xen.console.printk(f"{where}: guest kernel fault: {type(e).__name__}: {e}")
        self.xen.trace.emit("guest", v.domain.domid, v.vcpu_id, "fault", (type(e).__name__,), str(e))
        self.xen.domains.domain_crash(v.domain, "guest kernel fault")

    def _upcall(self, k: PVKernel, v: "VCPU") -> None:
        try:
            handled, sel = k.upcall(v)
        except KernelPanic as e:
            k.panic(v, str(e))
            return
        ports = ",".join(map(str, handled)) or "none"
        self.xen.trace.emit("guest", v.domain.domid, v.vcpu_id, "upcall", handled,
                            f"cleared upcall_pending, selector {sel:#x}, pending ports {ports}")

    def _nmi(self, k: PVKernel, v: "VCPU") -> None:
        """On its way into the guest Xen takes the pending NMI and bounces
        the guest into its NMI callback with NMIs masked (the handler's
        iret unmasks them); with no callback there, the NMI is dropped."""
        v.nmi_pending = False
        if CALLBACKTYPE_nmi not in v.callbacks:
            self.xen.trace.emit("guest", v.domain.domid, v.vcpu_id, "nmi", (), "dropped: no NMI callback")
            return
        v.nmi_masked = True
        self.xen.trace.emit("guest", v.domain.domid, v.vcpu_id, "nmi", (), "NMI callback")
        try:
            k.nmi(v)
        finally:
            v.nmi_masked = False

    def _one_op(self, k: PVKernel, v: "VCPU", stepping: bool) -> None:
        st = k.vcpus[v.vcpu_id]
        op = k.next_op(v)
        duration, done = k.execute(v, op)
        if duration:
            result = "forever" if duration >= FOREVER else duration
        else:
            result = "done" if done else "waiting"
        self.xen.trace.emit("guest", v.domain.domid, v.vcpu_id, op[0], op[1:], result)
        if duration and not stepping:
            self._start_timed(k, v, duration)
        elif done or duration:
            st.queue.pop(0)

    # ------------------------------------------------------------ stepping
    def step(self, v: "VCPU") -> list["TraceRecord"]:
        """Run one operation of ``v``, which Xen is not running: its upcall
        if one is due, else the next operation, a compute all at once.
        Returns the trace records it made."""
        k = self.load(v)
        if k is None:
            raise ValueError(f"d{v.domain.domid}v{v.vcpu_id} runs no modelled kernel: "
                             "there is nothing to step")
        if v.is_running:
            raise ValueError(f"d{v.domain.domid}v{v.vcpu_id} is running: pause its domain first")
        xen = self.xen
        mark = xen.trace.seq
        st = k.vcpus[v.vcpu_id]
        xen.in_guest = True
        try:
            if v.nmi_pending and not v.nmi_masked:
                self._nmi(k, v)
            elif k.upcall_deliverable(v):
                self._upcall(k, v)
            elif st.left is not None:
                st.left = None
                op = st.queue.pop(0)
                xen.trace.emit("guest", v.domain.domid, v.vcpu_id, op[0], op[1:], "finished")
            else:
                self._one_op(k, v, stepping=True)
        except Exception as e:
            self._fault(v, e)
        finally:
            xen.in_guest = False
        xen.process_pending()
        return xen.trace.since(mark)
