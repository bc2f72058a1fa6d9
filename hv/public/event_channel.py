"""xen/include/public/event_channel.h."""

from hv.public.abi import (
    domid_t, evtchn_port_t, uint8_t, uint32_t, uint64_t, union, xenstruct,
)

EVTCHNOP_bind_interdomain = 0
EVTCHNOP_bind_virq = 1
EVTCHNOP_bind_pirq = 2
EVTCHNOP_close = 3
EVTCHNOP_send = 4
EVTCHNOP_status = 5
EVTCHNOP_alloc_unbound = 6
EVTCHNOP_bind_ipi = 7
EVTCHNOP_bind_vcpu = 8
EVTCHNOP_unmask = 9
EVTCHNOP_reset = 10
EVTCHNOP_init_control = 11
EVTCHNOP_expand_array = 12
EVTCHNOP_set_priority = 13
# Xen's own continuation of an interrupted reset (defined for __XEN__).
EVTCHNOP_reset_cont = 14

EVTCHNSTAT_closed = 0
EVTCHNSTAT_unbound = 1
EVTCHNSTAT_interdomain = 2
EVTCHNSTAT_pirq = 3
EVTCHNSTAT_virq = 4
EVTCHNSTAT_ipi = 5

BIND_PIRQ__WILL_SHARE = 1

# Two-level ABI: 64 words of 64 bits.
EVTCHN_2L_NR_CHANNELS = 64 * 64
EVTCHN_FIFO_NR_CHANNELS = 1 << 17
EVTCHN_FIFO_PRIORITY_DEFAULT = 7


@xenstruct
class EvtchnAllocUnbound:
    dom: domid_t
    remote_dom: domid_t
    port: evtchn_port_t                     # OUT


@xenstruct
class EvtchnBindInterdomain:
    remote_dom: domid_t
    remote_port: evtchn_port_t
    local_port: evtchn_port_t               # OUT


@xenstruct
class EvtchnBindVirq:
    virq: uint32_t
    vcpu: uint32_t
    port: evtchn_port_t                     # OUT


@xenstruct
class EvtchnBindPirq:
    pirq: uint32_t
    flags: uint32_t
    port: evtchn_port_t                     # OUT


@xenstruct
class EvtchnBindIpi:
    vcpu: uint32_t
    port: evtchn_port_t                     # OUT


@xenstruct
class EvtchnClose:
    port: evtchn_port_t


@xenstruct
class EvtchnSend:
    port: evtchn_port_t


@xenstruct
class EvtchnStatusUnbound:
    dom: domid_t


@xenstruct
class EvtchnStatusInterdomain:
    dom: domid_t
    port: evtchn_port_t


@xenstruct
class EvtchnStatus:
    """``u`` is EvtchnStatusUnbound, EvtchnStatusInterdomain, or an int (the
    pirq or virq), by ``status``."""
    dom: domid_t
    port: evtchn_port_t
    status: uint32_t                        # OUT
    vcpu: uint32_t                          # OUT
    u: union(EvtchnStatusUnbound, EvtchnStatusInterdomain, uint32_t)  # OUT

    @classmethod
    def _decode(cls, values):
        raw, status = values["u"], values["status"]
        if status == EVTCHNSTAT_unbound:
            values["u"] = EvtchnStatusUnbound.unpack(raw)
        elif status == EVTCHNSTAT_interdomain:
            values["u"] = EvtchnStatusInterdomain.unpack(raw)
        elif status in (EVTCHNSTAT_pirq, EVTCHNSTAT_virq):
            values["u"] = int.from_bytes(raw[:4], "little")
        else:
            values["u"] = None
        return values


@xenstruct
class EvtchnBindVcpu:
    port: evtchn_port_t
    vcpu: uint32_t


@xenstruct
class EvtchnUnmask:
    port: evtchn_port_t


@xenstruct
class EvtchnReset:
    dom: domid_t


@xenstruct
class EvtchnInitControl:
    control_gfn: uint64_t
    offset: uint32_t
    vcpu: uint32_t
    link_bits: uint8_t
    _pad: uint8_t[7]


@xenstruct
class EvtchnExpandArray:
    array_gfn: uint64_t


@xenstruct
class EvtchnSetPriority:
    port: evtchn_port_t
    priority: uint32_t
