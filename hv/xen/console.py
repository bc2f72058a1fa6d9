"""The hypervisor console (the role of Xen's drivers/char/console.c).

Xen's own messages go to the console ring that `xl dmesg` reads, each line
prefixed "(XEN) ". The hardware domain's console_io output goes straight to
the physical console (the serial line), as it does on Xen; another domain
(in a debug build of Xen, any domain) has its lines prefixed "(dN) " and put
in the ring.
Input typed on the physical console waits in a 128-byte ring for dom0 to
read with CONSOLEIO_read, announced by VIRQ_CONSOLE; what does not fit is
lost, as on Xen.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

from hv.public.errno import E2BIG, EFAULT, ENOSYS
from hv.public.xen import CONSOLEIO_read, CONSOLEIO_write, VIRQ_CONSOLE
from hv.xen.errors import XenError

if TYPE_CHECKING:
    from hv.xen.domain import VCPU, Domain
    from hv.xen.hypervisor import Xen

CONRING_SIZE = 16384
SERIAL_KEEP = 64 * 1024
SERIAL_RX_SIZE = 128
# Xen copies a guest's output in chunks the size of its buffer less one.
WRITE_CHUNK = 127
# A domain's unfinished line is written out, with the chunk that would
# take it to this size, rather than kept (DOMAIN_PBUF_SIZE).
DOMAIN_PBUF_SIZE = 200
INT_MAX = (1 << 31) - 1
# isprint() in Xen's ctype: ASCII's printable characters and Latin-1's.
PRINTABLE = frozenset(range(0x20, 0x7F)) | frozenset(range(0xA0, 0x100)) | {0x09}


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

    def guest_console_write(self, d: "Domain", buf, count: int) -> None:
        """Copy the guest's bytes a chunk at a time; a chunk that is not
        there faults, the chunks before it having been written."""
        pos = 0
        while count > 0:
            kcount = min(count, WRITE_CHUNK)
            if not isinstance(buf, (bytes, bytearray)) or len(buf) < pos + kcount:
                raise XenError(EFAULT)
            chunk = buf[pos:pos + kcount]
            if d.is_hardware_domain:
                self.serial_puts(bytes(chunk))
            else:
                kcount = self._guest_line(d, chunk)
            pos += kcount
            count -= kcount

    def _guest_line(self, d: "Domain", chunk) -> int:
        """Another domain's output: printable characters only, a line at a
        time, up to its first newline. Returns how much it took."""
        kept = bytearray()
        used = 0
        newline = False
        for c in chunk:
            used += 1
            if c == 0x0A:
                newline = True
                break
            if c in PRINTABLE:
                kept.append(c)
        line = self._partial.setdefault(d.domid, bytearray())
        if not newline and len(line) + len(kept) < DOMAIN_PBUF_SIZE - 1:
            line += kept
        else:
            self._conring_puts(b"(d%d) " % d.domid + bytes(line) + bytes(kept) + b"\n")
            line.clear()
        return used

    def domain_destroy(self, d: "Domain") -> None:
        """A domain's unfinished line goes with it (a new domain may get its id)."""
        self._partial.pop(d.domid, None)

    # ------------------------------------------------------------ the ring
    def read_ring(self, clear: bool = False) -> bytes:
        """Everything in the ring since it was last cleared."""
        out, index = bytearray(), self.conring_cons & 0xFFFFFFFF
        while True:
            data, index = self.read_console_ring(max(1, len(self._ring)), incremental=True,
                                                 index=index, clear=clear)
            if not data:
                return bytes(out)
            out += data

    def read_console_ring(self, count: int, incremental: bool = False, index: int = 0,
                          clear: bool = False) -> tuple[bytes, int]:
        """XEN_SYSCTL_readconsole: up to ``count`` bytes from where the
        ring was last cleared, or from ``index`` when that is still in it;
        the bytes and the index after them (indices are free-running u32)."""
        p = self.conring_prod & 0xFFFFFFFF
        c = max(self.conring_cons, self.conring_prod - len(self._ring)) & 0xFFFFFFFF
        if incremental and (c < index <= p if c <= p else (c < index or index <= p)):
            c = index
        held = (p - c) & 0xFFFFFFFF
        take = min(held, count)
        start = len(self._ring) - held
        data = bytes(self._ring[start:start + take])
        c = (c + take) & 0xFFFFFFFF
        if clear:
            self.conring_cons = self.conring_prod - ((p - c) & 0xFFFFFFFF)
        return data, c

    # ------------------------------------------------------------ input
    def feed_input(self, data: bytes) -> None:
        """Keystrokes on the physical console, for dom0. Dom0 is told even
        when the ring is full, so that it reads and makes room."""
        room = SERIAL_RX_SIZE - len(self._input)
        self._input.extend(data[:max(room, 0)])
        self.xen.evtchn.send_global_virq(VIRQ_CONSOLE)

    # ------------------------------------------------------------ hypercall
    def do_console_io(self, v: "VCPU", cmd: int, count, buf):
        d = v.domain
        self.xen.xsm.console_io(d, cmd)
        if cmd not in (CONSOLEIO_write, CONSOLEIO_read):
            raise XenError(ENOSYS)
        if not isinstance(count, int):
            raise XenError(EFAULT)
        count &= 0xFFFFFFFF             # an unsigned int in Xen's signature
        if cmd == CONSOLEIO_write:
            self.guest_console_write(d, buf, count)
            return 0, None
        if count > INT_MAX:     # the count read must fit the return value
            raise XenError(E2BIG)
        n = min(count, len(self._input))
        data = bytes(self._input.popleft() for _ in range(n))
        return n, data
