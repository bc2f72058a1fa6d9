"""The split drivers a kernel carries, by the device class the toolstack
names in xenstore (Linux's xenbus drivers register themselves the same way)."""

from hv.guest import blkfront, netfront
from hv.guest.blkback import Blkback
from hv.guest.blkfront import Blkfront
from hv.guest import tpmfront
from hv.guest.tpmback import Tpmback
from hv.guest.tpmfront import Tpmfront
from hv.guest.netback import Netback
from hv.guest.netfront import Netfront

FRONTENDS: dict = {"vbd": Blkfront, "vif": Netfront, "vtpm": Tpmfront}
BACKENDS: dict = {"vbd": Blkback, "vif": Netback, "vtpm": Tpmback}

# The program operations each driver runs (hv/guest/workload.py parses
# them into ("dev", verb, args...)): verb -> f(kernel, vcpu, *args)
# returning (time taken, done), as any kernel operation does.
PROGRAM_OPS: dict = {"blk": blkfront.program_op, "net": netfront.program_op,
                     "tpm": tpmfront.program_op}
