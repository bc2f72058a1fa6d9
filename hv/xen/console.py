"""The hypervisor console (the role of Xen's drivers/char/console.c).

Xen's own messages go to the console ring that `xl dmesg` reads, each line
prefixed "(XEN) ". The hardware domain's console_io output goes straight to
the physical console (the serial line), as it does on Xen; another domain
allowed to use console_io has its lines prefixed "(dN) " and put in the ring.
Input typed on the physical console waits in a buffer for dom0 to read with
CONSOLEIO_read, announced by VIRQ_CONSOLE.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

from hv.public.errno import EFAULT, ENOSYS
from hv.public.xen import CONSOLEIO_read, CONSOLEIO_write, VIRQ_CONSOLE
from hv.xen.errors import XenError

if TYPE_CHECKING:
    from hv.xen.domain import VCPU, Domain
    from hv.xen.hypervisor import Xen

CONRING_SIZE = 16384
SERIAL_KEEP = 64 * 1024


class Console:
    def __init__(self, xen: "Xen", conring_size: int = CONRING_SIZE):
        self.xen = xen
        self.conring_size = conring_size
        self._ring = bytearray()
        self.conring_prod = 0          # bytes ever written to the ring
        self.conring_cons = 0          # where `xl dmesg -c` cleared up to
        self.serial = bytearray()      # the physical console's output
        self._input: deque[int] = deque()
        self._partial: dict[int, bytearray] = {}

    # ------------------------------------------------------------ output
    def printk(self, text: str) -> None:
        for line in text.split("\n"):
            self._conring_puts(f"(XEN) {line}\n".encode())

    def _conring_puts(self, data: bytes) -> None:
        self._ring += data
        self.conring_prod += len(data)
        overflow = len(self._ring) - self.conring_size
        if overflow > 0:
            del self._ring[:overflow]
        self.serial_puts(data)

    def serial_puts(self, data: bytes) -> None:
        self.serial += data
        overflow = len(self.serial) - SERIAL_KEEP
        if overflow > 0:
            del self.serial[:overflow]

    def guest_console_write(self, d: "Domain", data: bytes) -> None:
        if d.is_hardware_domain:
            self.serial_puts(data)
            return
        # Other domains: printable characters only, a line at a time.
        buf = self._partial.setdefault(d.domid, bytearray())
        for c in data:
            if c == 0x0A:
                self._conring_puts(b"(d%d) " % d.domid + bytes(buf) + b"\n")
                buf.clear()
            elif 0x20 <= c < 0x7F or c == 0x09:
                buf.append(c)

    def domain_destroy(self, d: "Domain") -> None:
        """A domain's unfinished line goes with it (a new domain may get its id)."""
        self._partial.pop(d.domid, None)

    # ------------------------------------------------------------ the ring
    def read_ring(self, clear: bool = False) -> bytes:
        """What `xl dmesg` shows: the ring since it was last cleared."""
        held = len(self._ring)
        start = max(self.conring_cons, self.conring_prod - held)
        data = bytes(self._ring[held - (self.conring_prod - start):])
        if clear:
            self.conring_cons = self.conring_prod
        return data

    # ------------------------------------------------------------ input
    def feed_input(self, data: bytes) -> None:
        """Keystrokes on the physical console, for dom0."""
        self._input.extend(data)
        self.xen.evtchn.send_global_virq(VIRQ_CONSOLE)

    # ------------------------------------------------------------ hypercall
    def do_console_io(self, v: "VCPU", cmd: int, count, buf):
        d = v.domain
        self.xen.xsm.console_io(d)
        if cmd not in (CONSOLEIO_write, CONSOLEIO_read):
            raise XenError(ENOSYS)
        if not isinstance(count, int) or count < 0:
            raise XenError(EFAULT)
        if cmd == CONSOLEIO_write:
            if not isinstance(buf, (bytes, bytearray)) or len(buf) < count:
                raise XenError(EFAULT)
            self.guest_console_write(d, bytes(buf[:count]))
            return 0, None
        n = min(count, len(self._input))
        data = bytes(self._input.popleft() for _ in range(n))
        return n, data
