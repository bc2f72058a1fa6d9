"""The split drivers a kernel carries, by the device class the toolstack
names in xenstore (Linux's xenbus drivers register themselves the same way)."""

from hv.guest.blkback import Blkback
from hv.guest import blkfront
from hv.guest.blkfront import Blkfront

FRONTENDS: dict = {"vbd": Blkfront}
BACKENDS: dict = {"vbd": Blkback}

# The program operations each driver runs (hv/guest/workload.py parses
# them into ("dev", verb, args...)): verb -> f(kernel, vcpu, *args)
# returning (time taken, done), as any kernel operation does.
PROGRAM_OPS: dict = {"blk": blkfront.program_op}
