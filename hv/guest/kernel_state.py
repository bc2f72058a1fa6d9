"""A suspended guest kernel's own state as bytes, and back, for a save file.

On Linux everything a kernel knows is in its memory, which a save copies
page by page. This kernel's pages are real bytes too, but its data
structures (its program and where it is in it, its drivers and what they
hold, its xenbus client) are Python objects, so they travel as a record of
their own next to the pages: a pickle.

Freezing names the machine around the kernel instead of copying it: the
hypervisor, the kernel's own domain and vCPUs, and the frames of its grant
table (Xen's frames, not the guest's, mapped again on resume), and the
tables of drivers its buses match devices with. Anything else of the
machine's is refused. Thawing puts the new domain in their
place.

The record starts with the SHA-256 of the pickle after it, so a file
damaged on its way is refused. The bytes may also come from someone who
crafted them, so thawing rebuilds only the kernel's own classes, a method
is named by its object and name and looked up on the class (never reached
through getattr), and the kernel that comes out is checked for the shape
the machine relies on: a crafted record can make the restored guest do no
more than a guest can.
"""

from __future__ import annotations

import hashlib
import importlib
import io
import pickle
import types
from collections import deque
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hv.guest.kernel import PVKernel
    from hv.xen.domain import Domain
    from hv.xen.hypervisor import Xen

# Where the classes of a domU's kernel state live.
KERNEL_MODULES = frozenset((
    "hv.guest.kernel", "hv.guest.xenbus", "hv.guest.xenbus_probe", "hv.guest.grant_table",
    "hv.guest.blkfront", "hv.guest.netfront", "hv.guest.tpmfront", "hv.guest.netstack",
    "hv.guest.ether", "hv.guest.ring", "hv.public.xen", "hv.xenstore.protocol",
))
_BUILTINS = {("builtins", "bytearray"): bytearray, ("builtins", "set"): set,
             ("builtins", "frozenset"): frozenset, ("collections", "deque"): deque}
# The machine's own objects: a kernel's state names its own, and no others.
_MACHINE_MODULES = ("hv.xen.", "hv.xenstore.xenstored", "hv.xenstore.domain", "hv.host",
                    "hv.guest.cpu", "hv.guest.xenconsoled")


class KernelStateError(ValueError):
    """A kernel that can't be frozen, or a record that can't be thawed."""


def bound_method(owner, name: str):
    """A method of a kernel object, by name: only a plain function of its
    class, bound to it."""
    if _allowed(type(owner)) is None or name.startswith("__"):
        raise KernelStateError(f"no method {name!r} of {type(owner).__name__} to call")
    if not isinstance(getattr(type(owner), name, None), types.FunctionType):
        raise KernelStateError(f"{type(owner).__name__}.{name} is not a method")
    return getattr(owner, name)


def _allowed(cls):
    module = getattr(cls, "__module__", "")
    return cls if isinstance(cls, type) and module in KERNEL_MODULES else None


class _Freezer(pickle.Pickler):
    def __init__(self, f, k: "PVKernel"):
        super().__init__(f, protocol=pickle.HIGHEST_PROTOCOL)
        self.k = k
        self.grant_frames = {id(page) for page in (k.gnttab.pages if k.gnttab else ())}

    def persistent_id(self, obj):
        from hv.guest.drivers import BACKENDS, FRONTENDS
        k = self.k
        if obj is FRONTENDS:
            return "frontend-drivers"
        if obj is BACKENDS:
            return "backend-drivers"
        if obj is k.xen:
            return "xen"
        if obj is k.d:
            return "domain"
        if id(obj) in self.grant_frames:
            return "grant-frame"
        vcpu_id = getattr(obj, "vcpu_id", None)
        if vcpu_id is not None and getattr(obj, "domain", None) is k.d:
            return ("vcpu", vcpu_id)
        module = type(obj).__module__
        if module.startswith(_MACHINE_MODULES):
            raise KernelStateError(f"the kernel holds the machine's {type(obj).__name__}")
        return None

    def reducer_override(self, obj):
        if type(obj) is types.MethodType:
            return bound_method, (obj.__self__, obj.__func__.__name__)
        return NotImplemented


class _Thawer(pickle.Unpickler):
    def __init__(self, f, xen: "Xen", d: "Domain"):
        super().__init__(f)
        self.xen = xen
        self.d = d

    def find_class(self, module: str, name: str):
        if (module, name) in _BUILTINS:
            return _BUILTINS[module, name]
        if (module, name) == (__name__, "bound_method"):
            return bound_method
        if module in KERNEL_MODULES:
            cls = getattr(importlib.import_module(module), name, None)
            if _allowed(cls) is not None and cls.__module__ == module:
                return cls
        raise KernelStateError(f"{module}.{name} is not part of a kernel's state")

    def persistent_load(self, pid):
        from hv.guest.drivers import BACKENDS, FRONTENDS
        if pid == "frontend-drivers":
            return FRONTENDS
        if pid == "backend-drivers":
            return BACKENDS
        if pid == "xen":
            return self.xen
        if pid == "domain":
            return self.d
        if pid == "grant-frame":
            return None                 # mapped again by the kernel's resume
        if isinstance(pid, tuple) and len(pid) == 2 and pid[0] == "vcpu":
            vcpu = self.d.vcpu(pid[1]) if isinstance(pid[1], int) else None
            if vcpu is None:
                raise KernelStateError(f"the kernel ran on vCPU {pid[1]}, which the domain lacks")
            return vcpu
        raise KernelStateError(f"unknown reference {pid!r}")


def freeze(k: "PVKernel") -> bytes:
    """The state of a kernel whose vCPUs have all stopped."""
    if any(st.timer is not None or st.op_end is not None for st in k.vcpus):
        raise KernelStateError("a vCPU of the kernel is still running")
    buf = io.BytesIO()
    _Freezer(buf, k).dump(k)
    data = buf.getvalue()
    return hashlib.sha256(data).digest() + data


def thaw(data: bytes, xen: "Xen", d: "Domain") -> "PVKernel":
    """The kernel frozen in ``data``, now the kernel of domain ``d``."""
    from hv.guest.kernel import PVKernel
    digest, data = data[:32], data[32:]
    if hashlib.sha256(data).digest() != digest:
        raise KernelStateError("the kernel's state does not match its checksum (the file is damaged)")
    try:
        k = _Thawer(io.BytesIO(data), xen, d).load()
    except KernelStateError:
        raise
    except Exception as e:          # whatever a damaged pickle makes the unpickler raise
        raise KernelStateError(f"the kernel's state is damaged ({type(e).__name__}: {e})") from None
    if not isinstance(k, PVKernel) or k.d is not d or len(k.vcpus) != len(d.vcpus):
        raise KernelStateError("the record holds no kernel for this domain")
    _check_shape(k)
    return k


def _check_shape(k: "PVKernel") -> None:
    """What the machine takes for granted of a kernel it runs."""
    from hv.guest.kernel import VcpuState
    from hv.guest.xenbus import Xenbus
    from hv.guest.xenbus_probe import XenbusBus
    from hv.public.xen import StartInfo
    expected = (("program", tuple), ("pc", int), ("vcpus", list), ("xenbus", Xenbus),
                ("buses", list), ("start_info", StartInfo), ("handlers", dict), ("irqs", dict),
                ("work", dict), ("driver_timers", dict), ("bound", list))
    for name, kind in expected:
        if not isinstance(getattr(k, name, None), kind):
            raise KernelStateError(f"the kernel's {name} is not a {kind.__name__}")
    if not all(isinstance(bus, XenbusBus) for bus in k.buses):
        raise KernelStateError("the kernel's buses are not buses")
    for st in k.vcpus:
        if not isinstance(st, VcpuState) or not isinstance(st.queue, list):
            raise KernelStateError("the kernel's vCPU state is damaged")
        for op in st.queue:
            if not (isinstance(op, tuple) and op and isinstance(op[0], str)
                    and callable(getattr(k, "op_" + op[0], None))):
                raise KernelStateError(f"the kernel's vCPU queue holds {op!r}, which is no operation")
