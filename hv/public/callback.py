"""xen/include/public/callback.h: where a PV guest's kernel asks Xen to
deliver events, failures, system calls and NMIs."""

from hv.public.abi import uint16_t, unsigned_long, xenstruct

CALLBACKTYPE_event = 0
CALLBACKTYPE_failsafe = 1
CALLBACKTYPE_syscall = 2
CALLBACKTYPE_nmi = 4
CALLBACKTYPE_sysenter = 5
CALLBACKTYPE_syscall32 = 7

# Mask event delivery while the callback runs.
CALLBACKF_mask_events = 1 << 0

CALLBACKOP_register = 0
CALLBACKOP_unregister = 1


@xenstruct
class CallbackRegister:
    type: uint16_t
    flags: uint16_t
    address: unsigned_long       # xen_callback_t on x86_64


@xenstruct
class CallbackUnregister:
    type: uint16_t
    _unused: uint16_t
