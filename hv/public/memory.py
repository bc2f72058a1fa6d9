"""xen/include/public/memory.h (the reservation operations)."""

from hv.public.abi import domid_t, handle, unsigned_int, xen_ulong_t, xenstruct

XENMEM_increase_reservation = 0
XENMEM_decrease_reservation = 1
XENMEM_maximum_ram_page = 2
XENMEM_current_reservation = 3
XENMEM_maximum_reservation = 4
XENMEM_machphys_mfn_list = 5
XENMEM_populate_physmap = 6
XENMEM_add_to_physmap = 7
XENMEM_memory_map = 9
XENMEM_exchange = 11
XENMEM_maximum_gpfn = 14
XENMEM_remove_from_physmap = 15
XENMEM_set_pod_target = 16

# The low 6 bits of cmd select the op; the rest carry a continuation.
MEMOP_EXTENT_SHIFT = 6
MEMOP_CMD_MASK = (1 << MEMOP_EXTENT_SHIFT) - 1

XENMEMF_populate_on_demand = 1 << 16
XENMEMF_exact_node_request = 1 << 17
XENMEMF_vnode = 1 << 18


# mem_flags: bits 0-7 an address width, bits 8-15 a NUMA node plus one
# (so that 0 means "no node": XENMEMF_get_node(0) is NUMA_NO_NODE, 0xff).
def XENMEMF_address_bits(bits: int) -> int:
    return bits


def XENMEMF_get_address_bits(flags: int) -> int:
    return flags & 0xFF


def XENMEMF_node(node: int) -> int:
    return (node + 1) << 8


def XENMEMF_get_node(flags: int) -> int:
    return ((flags >> 8) - 1) & 0xFF


def XENMEMF_exact_node(node: int) -> int:
    return XENMEMF_node(node) | XENMEMF_exact_node_request


@xenstruct
class XenMemoryReservation:
    """``extent_start`` holds the extent list: MFNs out of increase, GMFNs
    into decrease, GPFNs into populate (and MFNs out of it)."""
    extent_start: handle("xen_pfn_t")
    nr_extents: xen_ulong_t
    extent_order: unsigned_int
    mem_flags: unsigned_int
    domid: domid_t


@xenstruct
class XenMemoryDomain:
    """struct xen_memory_domain: the argument of current/maximum_reservation."""
    domid: domid_t
