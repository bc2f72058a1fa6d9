"""The PV kernel this machine models, as a domain builder sees its image:
where its vCPUs start, where it takes events, and how it finds the program
it runs, which travels as its initrd (start_info's module).

A builder that loads it sets vCPU 0's instruction pointer to KERNEL_ENTRY
and rsi to start_info's address in the kernel's direct map; the kernel
brings up its other vCPUs at SECONDARY_ENTRY itself. A vCPU started
anywhere else runs code the machine does not model: it just uses its pCPU.
"""

from __future__ import annotations

from hv.public.xen import PAGE_SHIFT

KERNEL_ENTRY = 0xFFFFFFFF80000000          # __START_KERNEL_map
SECONDARY_ENTRY = KERNEL_ENTRY + 0x1000
EVENT_CALLBACK = KERNEL_ENTRY + 0x2000
FAILSAFE_CALLBACK = KERNEL_ENTRY + 0x3000
NMI_CALLBACK = KERNEL_ENTRY + 0x4000
# The kernel's direct map of its pseudo-physical memory (below it, Xen's).
PAGE_OFFSET = 0xFFFF880000000000

MODULE_MAGIC = b"#!xenlab-workload\n"


def pfn_to_va(pfn: int) -> int:
    return PAGE_OFFSET + (pfn << PAGE_SHIFT)


def va_to_pfn(va: int) -> int:
    return (va - PAGE_OFFSET) >> PAGE_SHIFT


def workload_module(lines) -> bytes:
    """The initrd that carries a program: a magic line, then its lines."""
    if isinstance(lines, str):
        lines = lines.splitlines()
    return MODULE_MAGIC + "".join(line.rstrip("\n") + "\n" for line in lines).encode()


def read_module(data: bytes) -> list[str] | None:
    """The program lines of an initrd, or None if it carries no program."""
    if not data.startswith(MODULE_MAGIC):
        return None
    return data[len(MODULE_MAGIC):].decode(errors="replace").splitlines()
