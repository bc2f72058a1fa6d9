"""The split drivers a kernel carries, by the device class the toolstack
names in xenstore (Linux's xenbus drivers register themselves the same way)."""

FRONTENDS: dict = {}
BACKENDS: dict = {}
