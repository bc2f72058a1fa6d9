"""The split drivers a kernel carries, by the device class the toolstack
names in xenstore (Linux's xenbus drivers register themselves the same way)."""

from hv.guest.blkback import Blkback
from hv.guest.blkfront import Blkfront

FRONTENDS: dict = {"vbd": Blkfront}
BACKENDS: dict = {"vbd": Blkback}
