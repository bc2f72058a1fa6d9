"""xen/include/public/grant_table.h (version 1 entries)."""

from hv.public.abi import (
    domid_t, grant_handle_t, grant_ref_t, handle, int16_t, uint16_t, uint32_t,
    uint64_t, xen_pfn_t, xenstruct,
)

GNTTABOP_map_grant_ref = 0
GNTTABOP_unmap_grant_ref = 1
GNTTABOP_setup_table = 2
GNTTABOP_dump_table = 3
GNTTABOP_transfer = 4
GNTTABOP_copy = 5
GNTTABOP_query_size = 6
GNTTABOP_unmap_and_replace = 7
GNTTABOP_set_version = 8
GNTTABOP_get_status_frames = 9
GNTTABOP_get_version = 10
GNTTABOP_swap_grant_ref = 11
GNTTABOP_cache_flush = 12

# grant_entry_v1.flags
GTF_invalid = 0
GTF_permit_access = 1
GTF_accept_transfer = 2
GTF_transitive = 3
GTF_type_mask = 3
_GTF_readonly = 2
GTF_readonly = 1 << _GTF_readonly
_GTF_reading = 3
GTF_reading = 1 << _GTF_reading
_GTF_writing = 4
GTF_writing = 1 << _GTF_writing
_GTF_PWT = 5
GTF_PWT = 1 << _GTF_PWT
_GTF_PCD = 6
GTF_PCD = 1 << _GTF_PCD
_GTF_PAT = 7
GTF_PAT = 1 << _GTF_PAT
_GTF_sub_page = 8
GTF_sub_page = 1 << _GTF_sub_page
_GTF_transfer_committed = 2
GTF_transfer_committed = 1 << _GTF_transfer_committed
_GTF_transfer_completed = 3
GTF_transfer_completed = 1 << _GTF_transfer_completed

GNTMAP_device_map = 1 << 0
GNTMAP_host_map = 1 << 1
GNTMAP_readonly = 1 << 2
GNTMAP_application_map = 1 << 3
GNTMAP_contains_pte = 1 << 4

GNTCOPY_source_gref = 1 << 0
GNTCOPY_dest_gref = 1 << 1

GNTST_okay = 0
GNTST_general_error = -1
GNTST_bad_domain = -2
GNTST_bad_gntref = -3
GNTST_bad_handle = -4
GNTST_bad_virt_addr = -5
GNTST_bad_dev_addr = -6
GNTST_no_device_space = -7
GNTST_permission_denied = -8
GNTST_bad_page = -9
GNTST_bad_copy_arg = -10
GNTST_address_too_big = -11
GNTST_eagain = -12
GNTST_no_space = -13

GNTTABOP_error_msgs = (
    "okay",
    "undefined error",
    "unrecognised domain id",
    "invalid grant reference",
    "invalid mapping handle",
    "invalid virtual address",
    "invalid device address",
    "no spare translation slot in the I/O MMU",
    "permission denied",
    "bad page",
    "copy arguments cross page boundary",
    "page address size too large",
    "operation not done; try again",
    "out of space",
)

GNTST_NAMES = {
    value: name for name, value in dict(globals()).items() if name.startswith("GNTST_")
}

GNTTAB_NR_RESERVED_ENTRIES = 8
GNTTAB_RESERVED_CONSOLE = 0
GNTTAB_RESERVED_XENSTORE = 1


@xenstruct
class GrantEntryV1:
    flags: uint16_t
    domid: domid_t
    frame: uint32_t


GRANT_ENTRY_V1_SIZE = GrantEntryV1.SIZE
GRANT_ENTRIES_PER_PAGE_V1 = 4096 // GRANT_ENTRY_V1_SIZE


@xenstruct
class GnttabMapGrantRef:
    host_addr: uint64_t
    flags: uint32_t
    ref: grant_ref_t
    dom: domid_t
    status: int16_t                 # OUT
    handle: grant_handle_t          # OUT
    dev_bus_addr: uint64_t          # OUT


@xenstruct
class GnttabUnmapGrantRef:
    host_addr: uint64_t
    dev_bus_addr: uint64_t
    handle: grant_handle_t
    status: int16_t                 # OUT


@xenstruct
class GnttabSetupTable:
    """``frame_list`` comes back holding the table's frames (mfns)."""
    dom: domid_t
    nr_frames: uint32_t
    status: int16_t                 # OUT
    frame_list: handle("xen_pfn_t")  # OUT


@xenstruct
class GnttabDumpTable:
    dom: domid_t
    status: int16_t                 # OUT


@xenstruct
class GnttabTransfer:
    mfn: xen_pfn_t
    domid: domid_t
    ref: grant_ref_t
    status: int16_t                 # OUT


@xenstruct
class GnttabCopyPtr:
    """``u`` is the union of a grant ref and a gmfn, read as its widest
    member (the ref is its low 32 bits)."""
    u: xen_pfn_t
    domid: domid_t
    offset: uint16_t


@xenstruct
class GnttabCopy:
    source: GnttabCopyPtr
    dest: GnttabCopyPtr
    len: uint16_t
    flags: uint16_t
    status: int16_t                 # OUT


@xenstruct
class GnttabQuerySize:
    dom: domid_t
    nr_frames: uint32_t             # OUT
    max_nr_frames: uint32_t         # OUT
    status: int16_t                 # OUT


@xenstruct
class GnttabUnmapAndReplace:
    host_addr: uint64_t
    new_addr: uint64_t
    handle: grant_handle_t
    status: int16_t                 # OUT


@xenstruct
class GnttabGetVersion:
    dom: domid_t
    pad: uint16_t
    version: uint32_t               # OUT
