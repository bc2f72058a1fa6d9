"""The toolstack's door into the hypervisor (the role of Linux's
/dev/xen/privcmd and libxc's xc_* wrappers): hypercalls made from dom0, and
foreign mappings of other domains' frames, which dom0's privilege allows."""

from __future__ import annotations

from typing import Any

from hv.public.errno import EFAULT, errno_name


class HypercallError(Exception):
    """A hypercall the toolstack made failed: a negative errno, or a status
    such as a GNTST_* code saying why (``detail``)."""

    def __init__(self, what: str, errno: int, detail: str = ""):
        super().__init__(f"{what}: {detail or errno_name(errno)}")
        self.what = what
        self.errno = errno


class Privcmd:
    def __init__(self, xen, vcpu_id: int = 0):
        self.xen = xen
        self.domain = xen.hardware_domain
        self.vcpu = self.domain.vcpus[vcpu_id]

    def hypercall(self, nr: int, *args, what: str = "hypercall") -> tuple[int, Any]:
        """Make the call; return (rc, out), or raise on a negative rc."""
        rc, out = self.xen.hypercall(self.vcpu, nr, *args)
        if rc < 0:
            raise HypercallError(what, -rc)
        return rc, out

    def map_foreign(self, mfn: int, writable: bool = True) -> bytearray:
        """A view of another domain's frame, as privcmd's mmap gives dom0."""
        return self.xen.frames.map_domain_page(self.domain, mfn, writable)

    def peek_foreign(self, mfn: int) -> bytes | bytearray:
        """Another domain's frame for reading, as a read-only mapping shows
        it; a frame never written reads as zeroes and stays unmade (the
        model's memory is sparse, and a save reads every page)."""
        if self.xen.frames.owner(mfn) is None:
            raise HypercallError("mmap", EFAULT)
        return self.xen.ram.peek(mfn)
