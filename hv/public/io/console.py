"""xen/include/public/io/console.h: a PV console's two rings in one page,
input (to the guest) and output (from it), each with free-running indices."""

from hv.public.abi import char, uint32_t, xenstruct


@xenstruct
class XenconsInterface:
    in_: char[1024]              # "in" in C
    out: char[2048]
    in_cons: uint32_t
    in_prod: uint32_t
    out_cons: uint32_t
    out_prod: uint32_t
