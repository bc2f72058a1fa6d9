"""Split devices as the toolstack sets them up and takes them down
(libxl_device.c): a backend directory in the backend domain's home and a
frontend directory in the guest's, each end's nodes readable by the other,
written in one transaction; removal asks the backend to close, waits for it
to say Closed, and removes both directories.

The kernels on both sides find the directories through their xenbus
watches and do the rest between themselves."""

from __future__ import annotations

from dataclasses import dataclass, field

from hv.public.io.xenbus import XenbusStateClosed, XenbusStateClosing, XenbusStateInitialising
from hv.xenstore.client import XsClient
from hv.xenstore.errors import XsError
from xl.domain_store import in_transaction, rm_if_there

# What libxl calls each class in xenstore.
CLASSES = ("vbd", "vif", "vtpm", "console")


@dataclass(frozen=True)
class Device:
    devclass: str
    domid: int
    devid: int
    backend_domid: int = 0
    back: dict = field(default_factory=dict)     # the backend's own nodes
    front: dict = field(default_factory=dict)    # the frontend's own nodes

    @property
    def backend_path(self) -> str:
        return (f"/local/domain/{self.backend_domid}/backend/{self.devclass}/"
                f"{self.domid}/{self.devid}")

    @property
    def frontend_path(self) -> str:
        return f"/local/domain/{self.domid}/device/{self.devclass}/{self.devid}"


def device_add(xs: XsClient, dev: Device) -> None:
    """libxl__device_generic_add(): both directories, with each end the
    owner of its own and the other end allowed to read it."""
    front, back = dev.frontend_path, dev.backend_path
    front_perms = (f"n{dev.domid}", f"r{dev.backend_domid}")
    back_perms = (f"n{dev.backend_domid}", f"r{dev.domid}")
    front_nodes = {"backend": back, "backend-id": dev.backend_domid,
                   "state": XenbusStateInitialising, **dev.front}
    back_nodes = {"frontend": front, "frontend-id": dev.domid, "online": 1,
                  "state": XenbusStateInitialising, **dev.back}

    def body(tx: int) -> None:
        for path, perms, nodes in ((front, front_perms, front_nodes),
                                   (back, back_perms, back_nodes)):
            rm_if_there(xs, path, tx)
            xs.mkdir(path, tx)
            xs.set_perms(path, perms, tx)
            for name, value in nodes.items():
                xs.write(f"{path}/{name}", str(value), tx)

    in_transaction(xs, body)


def device_request_close(xs: XsClient, dev: Device) -> None:
    """The first half of a removal: the backend is told to go offline and
    close (libxl__initiate_device_generic_remove)."""
    def body(tx: int) -> None:
        xs.write(f"{dev.backend_path}/online", "0", tx)
        xs.write(f"{dev.backend_path}/state", str(XenbusStateClosing), tx)

    in_transaction(xs, body)


def backend_closed(xs: XsClient, dev: Device) -> bool:
    try:
        return int(xs.read(f"{dev.backend_path}/state")) == XenbusStateClosed
    except (XsError, ValueError):
        return True         # gone, or garbage where the state was: nothing to wait for


def device_destroy(xs: XsClient, dev: Device) -> None:
    """The second half (libxl__device_destroy): both directories go, and
    with them anything either end still held is released by its kernel."""
    def body(tx: int) -> None:
        rm_if_there(xs, dev.frontend_path, tx)
        rm_if_there(xs, dev.backend_path, tx)

    in_transaction(xs, body)


def list_devices(xs: XsClient, domid: int, devclass: str) -> list[int]:
    """The device ids of a class a domain has (its frontend directories)."""
    try:
        names = xs.directory(f"/local/domain/{domid}/device/{devclass}")
    except XsError:
        return []
    return sorted(int(n) for n in names if n.isdigit())


def remove_devices(xs: XsClient, domid: int) -> None:
    """Every device of a domain that is going away: both directories of
    each, so that each backend lets go of it (libxl__devices_destroy)."""
    try:
        classes = xs.directory(f"/local/domain/{domid}/device")
    except XsError:
        return
    for devclass in classes:
        for devid in list_devices(xs, domid, devclass.decode()):
            front = f"/local/domain/{domid}/device/{devclass.decode()}/{devid}"
            try:
                backend = xs.read(f"{front}/backend").decode()
            except XsError:
                backend = ""

            def body(tx: int, front=front, backend=backend) -> None:
                rm_if_there(xs, front, tx)
                if backend.startswith("/local/domain/") and "/backend/" in backend:
                    rm_if_there(xs, backend, tx)

            in_transaction(xs, body)
