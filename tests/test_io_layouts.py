"""The flat struct formats the drivers pack per I/O, held to the public
structures (which tests/test_abi_dump.py holds to Xen's headers), and the
ring sizes to the dump's __CONST_RING_SIZE."""

from __future__ import annotations

from hv.guest.ring import SLOTS, ring_size
from hv.public.io import blkif, netif
from tests.test_abi_dump import ABI


def test_blkif_request_format_packs_the_struct_bytes():
    segs = [blkif.BlkifRequestSegment(gref=0x11223344, first_sect=1, last_sect=7)] * 2
    segs += [blkif.BlkifRequestSegment()] * 9
    req = blkif.BlkifRequest(operation=blkif.BLKIF_OP_WRITE, nr_segments=2, handle=51712,
                             id=0x0102030405060708, sector_number=0x1122334455667788, seg=tuple(segs))
    flat = bytearray(blkif.REQUEST_SIZE)
    blkif.REQUEST_HEAD.pack_into(flat, 0, 1, 2, 51712, 0x0102030405060708, 0x1122334455667788)
    for i in range(2):
        blkif.SEGMENT.pack_into(flat, blkif.REQUEST_HEAD.size + i * blkif.SEGMENT.size,
                                0x11223344, 1, 7)
    assert bytes(flat) == req.pack()
    assert blkif.BlkifRequest.offsetof("seg") == blkif.REQUEST_HEAD.size


def test_blkif_discard_indirect_and_response_formats():
    d = blkif.BlkifRequestDiscard(operation=5, flag=1, handle=3, id=9, sector_number=10, nr_sectors=11)
    assert blkif.DISCARD.pack(5, 1, 3, 9, 10, 11) == d.pack()
    grefs = tuple(range(100, 108))
    i = blkif.BlkifRequestIndirect(operation=6, indirect_op=1, nr_segments=300, id=7,
                                   sector_number=8, handle=2, indirect_grefs=grefs)
    assert blkif.INDIRECT.pack(6, 1, 300, 7, 8, 2, *grefs) == i.pack()
    r = blkif.BlkifResponse(id=5, operation=1, status=-1)
    assert blkif.RESPONSE.pack(5, 1, -1) == r.pack()
    assert blkif.RESPONSE.size == blkif.RESPONSE_SIZE == r.SIZE


def test_netif_formats_pack_the_struct_bytes():
    assert netif.TX_REQUEST.pack(7, 14, netif.NETTXF_more_data, 3, 1514) == \
        netif.NetifTxRequest(gref=7, offset=14, flags=4, id=3, size=1514).pack()
    assert netif.TX_RESPONSE.pack(3, -2) == netif.NetifTxResponse(id=3, status=-2).pack()
    assert netif.RX_REQUEST.pack(9, 0xABCD) == netif.NetifRxRequest(id=9, gref=0xABCD).pack()
    assert netif.RX_RESPONSE.pack(9, 0, 1, 60) == \
        netif.NetifRxResponse(id=9, offset=0, flags=1, status=60).pack()


def test_ring_sizes_agree_with_xens_macro():
    assert SLOTS == ABI.fields["struct netif_tx_sring"]["ring"][0]
    assert ring_size(4096, blkif.SLOT_SIZE) == ABI.ring_sizes[("blkif", 4096)] == 32
    assert ring_size(4096, netif.TX_SLOT) == ABI.ring_sizes[("netif_tx", 4096)] == 256
    assert ring_size(4096, netif.RX_SLOT) == ABI.ring_sizes[("netif_rx", 4096)] == 256
    assert blkif.SLOT_SIZE == ABI.sizes["union blkif_sring_entry"]
    assert netif.TX_SLOT == ABI.sizes["union netif_tx_sring_entry"]
    assert netif.RX_SLOT == ABI.sizes["union netif_rx_sring_entry"]
