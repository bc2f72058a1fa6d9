"""xen/include/public/io/netif.h: the network device's transmit and
receive rings (256 slots each), their request and response formats, the
flags and the response codes."""

import struct

from hv.public.abi import int16_t, uint16_t, uint32_t, xenstruct

_NETTXF_csum_blank = 0
NETTXF_csum_blank = 1 << _NETTXF_csum_blank
_NETTXF_data_validated = 1
NETTXF_data_validated = 1 << _NETTXF_data_validated
_NETTXF_more_data = 2
NETTXF_more_data = 1 << _NETTXF_more_data
_NETTXF_extra_info = 3
NETTXF_extra_info = 1 << _NETTXF_extra_info

_NETRXF_data_validated = 0
NETRXF_data_validated = 1 << _NETRXF_data_validated
_NETRXF_csum_blank = 1
NETRXF_csum_blank = 1 << _NETRXF_csum_blank
_NETRXF_more_data = 2
NETRXF_more_data = 1 << _NETRXF_more_data
_NETRXF_extra_info = 3
NETRXF_extra_info = 1 << _NETRXF_extra_info
_NETRXF_gso_prefix = 4
NETRXF_gso_prefix = 1 << _NETRXF_gso_prefix

NETIF_RSP_DROPPED = -2
NETIF_RSP_ERROR = -1
NETIF_RSP_OKAY = 0
NETIF_RSP_NULL = 1

XEN_NETIF_NR_SLOTS_MIN = 18
XEN_NETIF_MAX_TX_SIZE = 0xFFFF

XEN_NETIF_EXTRA_TYPE_NONE = 0
XEN_NETIF_EXTRA_TYPE_GSO = 1
XEN_NETIF_EXTRA_TYPE_MCAST_ADD = 2
XEN_NETIF_EXTRA_TYPE_MCAST_DEL = 3
XEN_NETIF_EXTRA_TYPE_HASH = 4
XEN_NETIF_EXTRA_TYPE_MAX = 5
XEN_NETIF_EXTRA_FLAG_MORE = 1
XEN_NETIF_GSO_TYPE_NONE = 0
XEN_NETIF_GSO_TYPE_TCPV4 = 1
XEN_NETIF_GSO_TYPE_TCPV6 = 2


@xenstruct
class NetifTxRequest:
    gref: uint32_t
    offset: uint16_t
    flags: uint16_t
    id: uint16_t
    size: uint16_t


@xenstruct
class NetifTxResponse:
    id: uint16_t
    status: int16_t


@xenstruct
class NetifRxRequest:
    id: uint16_t
    pad: uint16_t
    gref: uint32_t


@xenstruct
class NetifRxResponse:
    id: uint16_t
    offset: uint16_t
    flags: uint16_t
    status: int16_t


# Flat formats for the data path (the tests hold them to the structs).
TX_REQUEST = struct.Struct("<IHHHH")       # gref, offset, flags, id, size
TX_RESPONSE = struct.Struct("<Hh")         # id, status
RX_REQUEST = struct.Struct("<HxxI")        # id, gref
RX_RESPONSE = struct.Struct("<HHHh")       # id, offset, flags, status
TX_SLOT = 12                               # union netif_tx_sring_entry
RX_SLOT = 8
