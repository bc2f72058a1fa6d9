"""xen/include/public/io/tpmif.h (version 2): one shared page; its header
says how long the command or response after it is, whose turn it is, and
the locality the command runs at."""

from hv.public.abi import uint8_t, uint32_t, xenstruct

TPMIF_STATE_IDLE = 0
TPMIF_STATE_SUBMIT = 1
TPMIF_STATE_FINISH = 2
TPMIF_STATE_CANCEL = 3


@xenstruct
class TpmifSharedPage:
    length: uint32_t
    state: uint8_t
    locality: uint8_t
    pad: uint8_t
    nr_extra_pages: uint8_t
    extra_pages: uint32_t[0]       # grant refs of further pages; none here
