"""Where a PV guest's kernel takes its upcalls (the role of Xen's
arch/x86/pv/callback.c): callback_op registers the entry points of event
delivery, failsafe returns, system calls and NMIs, per vCPU."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hv.public.callback import (
    CALLBACKOP_register, CALLBACKOP_unregister, CALLBACKTYPE_event, CALLBACKTYPE_failsafe,
    CALLBACKTYPE_nmi, CALLBACKTYPE_syscall, CALLBACKTYPE_syscall32, CALLBACKTYPE_sysenter,
    CallbackRegister, CallbackUnregister,
)
from hv.public.errno import EINVAL, ENOSYS
from hv.xen.dispatch import SubOps
from hv.xen.errors import XenError

if TYPE_CHECKING:
    from hv.xen.domain import VCPU
    from hv.xen.hypervisor import Xen

_REGISTERABLE = (CALLBACKTYPE_event, CALLBACKTYPE_failsafe, CALLBACKTYPE_syscall,
                 CALLBACKTYPE_syscall32, CALLBACKTYPE_sysenter, CALLBACKTYPE_nmi)


def is_canonical_address(address: int) -> bool:
    """x86_64's 48-bit addresses: bits 47-63 all equal."""
    top = address >> 47
    return top == 0 or top == (1 << 17) - 1


class Callbacks:
    def __init__(self, xen: "Xen"):
        self.xen = xen
        self._ops = SubOps({
            CALLBACKOP_register: (self.register_guest_callback, CallbackRegister),
            CALLBACKOP_unregister: (self.unregister_guest_callback, CallbackUnregister),
        })

    def do_callback_op(self, v: "VCPU", cmd: int, arg):
        return self._ops.lookup(cmd, arg)(v, arg), None

    @staticmethod
    def register_guest_callback(v: "VCPU", reg: CallbackRegister) -> int:
        if not is_canonical_address(reg.address):
            raise XenError(EINVAL)
        if reg.type not in _REGISTERABLE:
            raise XenError(ENOSYS)
        v.callbacks[reg.type] = reg.address
        return 0

    @staticmethod
    def unregister_guest_callback(v: "VCPU", unreg: CallbackUnregister) -> int:
        """Only the NMI callback can be taken back."""
        if unreg.type == CALLBACKTYPE_nmi:
            v.callbacks.pop(CALLBACKTYPE_nmi, None)
            return 0
        raise XenError(EINVAL if unreg.type in _REGISTERABLE else ENOSYS)
