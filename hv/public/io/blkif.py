"""xen/include/public/io/blkif.h: the block device ring's requests and
responses (32 slots of 112 bytes in a page), the operations, and the
response codes."""

import struct

from hv.public.abi import int16_t, uint8_t, uint16_t, uint32_t, uint64_t, xenstruct

BLKIF_OP_READ = 0
BLKIF_OP_WRITE = 1
BLKIF_OP_WRITE_BARRIER = 2
BLKIF_OP_FLUSH_DISKCACHE = 3
BLKIF_OP_RESERVED_1 = 4
BLKIF_OP_DISCARD = 5
BLKIF_OP_INDIRECT = 6

BLKIF_MAX_SEGMENTS_PER_REQUEST = 11
BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST = 8
BLKIF_DISCARD_SECURE = 1

BLKIF_RSP_EOPNOTSUPP = -2
BLKIF_RSP_ERROR = -1
BLKIF_RSP_OKAY = 0

# The "info" node's bits (VDISK_* in Linux's blkfront).
VDISK_CDROM = 0x1
VDISK_REMOVABLE = 0x2
VDISK_READONLY = 0x4

XEN_IO_PROTO_ABI_X86_32 = "x86_32-abi"
XEN_IO_PROTO_ABI_X86_64 = "x86_64-abi"
XEN_IO_PROTO_ABI_NATIVE = XEN_IO_PROTO_ABI_X86_64

SECTOR_SIZE = 512
SECTORS_PER_PAGE = 4096 // SECTOR_SIZE
# An indirect page holds segments back to back.
SEGS_PER_INDIRECT_FRAME = 4096 // 8


@xenstruct
class BlkifRequestSegment:
    gref: uint32_t
    first_sect: uint8_t
    last_sect: uint8_t


@xenstruct
class BlkifRequest:
    operation: uint8_t
    nr_segments: uint8_t
    handle: uint16_t
    id: uint64_t
    sector_number: uint64_t
    seg: BlkifRequestSegment[BLKIF_MAX_SEGMENTS_PER_REQUEST]


@xenstruct
class BlkifRequestDiscard:
    operation: uint8_t
    flag: uint8_t
    handle: uint16_t
    id: uint64_t
    sector_number: uint64_t
    nr_sectors: uint64_t


@xenstruct
class BlkifRequestIndirect:
    operation: uint8_t
    indirect_op: uint8_t
    nr_segments: uint16_t
    id: uint64_t
    sector_number: uint64_t
    handle: uint16_t
    indirect_grefs: uint32_t[BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST]


@xenstruct
class BlkifResponse:
    id: uint64_t
    operation: uint8_t
    status: int16_t


# The same layouts as flat struct formats, for the data path, where a
# request is packed and unpacked per I/O (the tests hold them equal).
REQUEST_HEAD = struct.Struct("<BBHxxxxQQ")          # operation, nr_segments, handle, id, sector
SEGMENT = struct.Struct("<IBBxx")                    # gref, first_sect, last_sect
DISCARD = struct.Struct("<BBHxxxxQQQ")              # operation, flag, handle, id, sector, nr_sectors
INDIRECT = struct.Struct("<BBHxxxxQQHxx8Ixxxx")       # op, indirect_op, nr_segments, id, sector, handle, grefs
RESPONSE = struct.Struct("<QBxhxxxx")                  # id, operation, status
REQUEST_SIZE = 112
RESPONSE_SIZE = 16
SLOT_SIZE = 112
