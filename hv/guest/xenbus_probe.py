"""The xenbus device model of a guest kernel (Linux's xenbus_probe.c,
xenbus_probe_frontend.c, xenbus_probe_backend.c and xenbus_client.c).

Every kernel runs two buses. The frontend bus watches the domain's
``device/`` directory; the backend bus watches its ``backend/`` directory
(a domain serves devices only if the toolstack put some there: dom0, or a
driver domain). A directory that appears with its ``backend``/``frontend``
nodes becomes a device of the class's driver; a directory that goes takes
its device with it. Each device watches the other end's ``state`` node
and hears every change of it.

Everything the drivers do in the store is asynchronous (the kernel never
waits in the middle of an upcall); a reply comes back to the method named
with the request. Paths of the domain's own nodes are relative to its home,
as Linux's are; the other end's are absolute, as the toolstack wrote them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hv.public.io.xenbus import (
    XENBUS_STATE_NAMES, XenbusStateClosed, XenbusStateClosing, XenbusStateInitialising,
    XenbusStateInitWait, XenbusStateUnknown,
)
from hv.public.grant_table import GNTST_okay
from hv.public.io.xs_wire import XS_READ, XS_RM, XS_UNWATCH, XS_WATCH, XS_WRITE

if TYPE_CHECKING:
    from hv.guest.kernel import PVKernel
    from hv.xen.domain import VCPU


def xs_read(k: "PVKernel", v: "VCPU", path: str, then, *ctx) -> None:
    k.xs(v, XS_READ, path.encode() + b"\0", then, *ctx)


def xs_write(k: "PVKernel", v: "VCPU", path: str, value, then=None, *ctx) -> None:
    k.xs(v, XS_WRITE, path.encode() + b"\0" + str(value).encode(), then, *ctx)


def xs_rm(k: "PVKernel", v: "VCPU", path: str) -> None:
    k.xs(v, XS_RM, path.encode() + b"\0")


def xs_watch(k: "PVKernel", v: "VCPU", path: str, token: bytes, watcher) -> None:
    k.xenbus.watchers[token] = watcher
    k.xs(v, XS_WATCH, path.encode() + b"\0" + token + b"\0")


def xs_unwatch(k: "PVKernel", v: "VCPU", path: str, token: bytes) -> None:
    k.xenbus.watchers.pop(token, None)
    k.xs(v, XS_UNWATCH, path.encode() + b"\0" + token + b"\0")


class Gather:
    """Several reads at once; ``then(v, values, *ctx)`` once every reply is
    in, with None for a node that could not be read."""

    def __init__(self, keys, then, ctx: tuple):
        self.values: dict[str, bytes | None] = {}
        self.left = len(keys)
        self.then = then
        self.ctx = ctx

    @classmethod
    def read(cls, k: "PVKernel", v: "VCPU", paths: dict[str, str], then, *ctx) -> None:
        g = cls(paths, then, ctx)
        for key, path in paths.items():
            xs_read(k, v, path, g.got, key)

    def got(self, v: "VCPU", ok: bool, value: bytes, key: str) -> None:
        self.values[key] = value if ok else None
        self.left -= 1
        if not self.left:
            self.then(v, self.values, *self.ctx)


def device_of(call) -> "XenbusDevice | None":
    """The device a reply or event was for, if any."""
    owner = getattr(call, "__self__", None)
    if isinstance(owner, Gather):
        owner = getattr(owner.then, "__self__", None)
    return owner if isinstance(owner, XenbusDevice) else None


U32_MAX = 0xFFFFFFFF


def as_int(value: bytes | None, default: int | None = None) -> int | None:
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default


class XenbusDevice:
    """One end of a split device as the bus sees it: where its nodes are,
    where the other end's are, and the state each end last wrote."""

    devclass = ""
    frontend = True

    def __init__(self, k: "PVKernel", nodename: str, otherend: str, otherend_id: int):
        self.k = k
        self.nodename = nodename
        self.otherend = otherend
        self.otherend_id = otherend_id
        self.devid = int(nodename.rsplit("/", 1)[1])
        self.state = XenbusStateInitialising
        self.otherend_state = XenbusStateUnknown
        self.removed = False

    @property
    def name(self) -> str:
        return f"{self.devclass}-{self.k.d.domid}-{self.devid}"

    @property
    def vdev(self) -> str:
        """The name a program knows the device by."""
        return str(self.devid)

    def log(self, v: "VCPU", what: str, detail="") -> None:
        self.k.xen.trace.emit("device", self.k.d.domid, v.vcpu_id, what,
                              (self.nodename,), detail or None)

    def switch_state(self, v: "VCPU", state: int) -> None:
        """xenbus_switch_state(): say where this end is."""
        if state == self.state:
            return
        self.state = state
        self.log(v, "state", XENBUS_STATE_NAMES.get(state, str(state)))
        xs_write(self.k, v, f"{self.nodename}/state", state)

    def fatal(self, v: "VCPU", why: str) -> None:
        """xenbus_dev_fatal(): the reason where the toolstack looks for it,
        and this end starts closing."""
        self.log(v, "fatal", why)
        self.k.kernel_log(v, f"{self.nodename}: {why}")
        xs_write(self.k, v, f"error/{self.nodename}/error", why)
        self.close(v)
        self.switch_state(v, XenbusStateClosing)

    def on_otherend_event(self, v: "VCPU", _path: bytes) -> None:
        xs_read(self.k, v, f"{self.otherend}/state", self.on_otherend_state)

    def on_otherend_state(self, v: "VCPU", ok: bool, value: bytes) -> None:
        state = as_int(value, XenbusStateUnknown) if ok else XenbusStateClosed
        if self.removed or state == self.otherend_state:
            return
        self.otherend_state = state
        self.otherend_changed(v, state)

    # A backend's side of meeting and parting (Linux's xenbus_map_ring,
    # bind_interdomain_evtchn and frontend_changed).
    def connect_rings(self, v: "VCPU", refs, port: int) -> list[tuple[int, int]] | None:
        """Map the frontend's ring pages and bind its channel: the (handle,
        mfn) of each page, or None when the frontend's word was no good
        (the device then closes, with the reason where the toolstack looks)."""
        k = self.k
        if not all(0 <= n <= U32_MAX for n in (*refs, port)):
            # What the frontend wrote can't be a grant reference or a port.
            self.fatal(v, f"ring-ref {' '.join(map(str, refs))} or event-channel {port} out of range")
            return None
        maps = k.map_grants(v, self.otherend_id, refs, False)
        mapped = [h for status, h, _m in maps if status == GNTST_okay]
        if len(mapped) != len(maps):
            k.unmap_grants(v, mapped)
            self.fatal(v, f"mapping ring-ref {' '.join(map(str, refs))}: status "
                          f"{' '.join(str(status) for status, _h, _m in maps)}")
            return None
        local = k.bind_interdomain(v, self.otherend_id, port)
        if local < 0:
            k.unmap_grants(v, mapped)
            self.fatal(v, f"binding event channel {port}: {local}")
            return None
        self.port = local
        k.irqs[local] = self
        return [(h, m) for _s, h, m in maps]

    def wait_for_frontend(self, v: "VCPU") -> None:
        """Publish InitWait; a frontend already further on is met now."""
        self.switch_state(v, XenbusStateInitWait)
        if self.otherend_state not in (XenbusStateUnknown, XenbusStateInitialising):
            self.otherend_changed(v, self.otherend_state)

    def follow_frontend_closing(self, v: "VCPU", state: int) -> None:
        """The frontend closing, or starting again after it closed (a
        driver reloaded in the guest: "prepare for reconnect")."""
        if state == XenbusStateInitialising and self.state == XenbusStateClosed:
            self.log(v, "reconnect")
            self.broken = False
            self.switch_state(v, XenbusStateInitWait)
        elif state == XenbusStateClosing:
            self.switch_state(v, XenbusStateClosing)
        elif state == XenbusStateClosed:
            self.close(v)
            self.switch_state(v, XenbusStateClosed)

    # A frontend's side of a restore (Linux's xenbus_dev_resume()).
    def resume(self, v: "VCPU") -> None:
        """The domain goes on in a new domain: its backend, channel and
        grants went with the old one. The driver lets go of what it held
        there (resume_driver), the device starts again from Initialising,
        and it looks up its backend afresh: the toolstack made a new one,
        under the new domain's id."""
        k = self.k
        k.xenbus.forget_watch(otherend_token(self.nodename))
        self.resume_driver(v)
        self.state = XenbusStateInitialising
        self.otherend_state = XenbusStateUnknown
        Gather.read(k, v, {"path": f"{self.nodename}/backend", "id": f"{self.nodename}/backend-id"},
                    self._reattach)

    def _reattach(self, v: "VCPU", values: dict) -> None:
        otherend, otherend_id = values["path"], as_int(values["id"])
        if self.removed or otherend is None or otherend_id is None:
            return          # its directory went: the bus's own look removes it
        self.otherend = otherend.decode(errors="replace")
        self.otherend_id = otherend_id
        self.log(v, "resume", f"other end d{otherend_id} {self.otherend}")
        self.reconnect(v)
        xs_watch(self.k, v, f"{self.otherend}/state", otherend_token(self.nodename),
                 self.on_otherend_event)

    def resume_driver(self, v: "VCPU") -> None:
        """Forget the ring, channel and grants of the old domain (the
        channel is not closed: its number may be someone else's now)."""

    def reconnect(self, v: "VCPU") -> None:
        """The backend is known again; a driver that does not wait for it
        to be ready starts its side here."""

    # What each driver decides.
    def probe(self, v: "VCPU") -> None:
        pass

    def otherend_changed(self, v: "VCPU", state: int) -> None:
        pass

    def close(self, v: "VCPU") -> None:
        """Release the ring, the channel and every grant or mapping."""

    def remove(self, v: "VCPU") -> None:
        """The device's directory is gone."""
        self.close(v)
        self.release_files()

    def release_files(self) -> None:
        """Close what the device holds open on the host (a disk image)."""


class XenbusBus:
    """Devices of one side (frontends under ``device/``, or backends under
    ``backend/``), found and lost through one watch on the directory."""

    def __init__(self, frontend: bool, drivers: dict):
        self.frontend = frontend
        self.root = "device" if frontend else "backend"
        self.drivers = drivers
        self.devices: dict[str, XenbusDevice] = {}
        self.probing: set[str] = set()
        self.enumerated = False
        self.listing = 0                  # directory reads still out
        # How deep a device's directory is: device/<class>/<id> or
        # backend/<class>/<frontend domid>/<id>.
        self.depth = 3 if frontend else 4

    def start(self, k: "PVKernel", v: "VCPU") -> None:
        xs_watch(k, v, self.root, f"bus:{self.root}".encode(), self.on_event)
        self.k = k

    def on_event(self, v: "VCPU", path: bytes) -> None:
        text = path.decode(errors="replace")
        parts = text.split("/")
        k = self.k
        if len(parts) < self.depth:
            if text == self.root and not self.enumerated:
                self.enumerated = True      # the event a new watch fires at once
                self.listing += 1
                k.xs_list(v, self.root, self.on_classes)
            # A class (or the whole directory) went or came: recheck what
            # was below it.
            for node in [n for n in self.devices if n.startswith(text + "/")]:
                self._check(v, node)
            return
        if parts[1] not in self.drivers:
            return
        node = "/".join(parts[:self.depth])
        if node in self.devices:
            if len(parts) == self.depth:
                self._check(v, node)
        elif node not in self.probing:
            self._probe(v, node)

    def on_classes(self, v: "VCPU", ok: bool, value: bytes) -> None:
        """The devices there were before the bus started."""
        self.listing -= 1
        if not ok:
            return
        for devclass in _names(value):
            if devclass in self.drivers:
                self.listing += 1
                self.k.xs_list(v, f"{self.root}/{devclass}", self.on_class_entries, devclass)

    def on_class_entries(self, v: "VCPU", ok: bool, value: bytes, prefix: str) -> None:
        self.listing -= 1
        if not ok:
            return
        for name in _names(value):
            node = f"{self.root}/{prefix}/{name}"
            if prefix.count("/") + 2 < self.depth - 1:
                self.listing += 1
                self.k.xs_list(v, node, self.on_class_entries, f"{prefix}/{name}")
            elif node not in self.devices and node not in self.probing:
                self._probe(v, node)

    @property
    def settled(self) -> bool:
        """Every device there was when the bus started has been probed."""
        return self.enumerated and not self.listing and not self.probing

    def find(self, devclass: str, name: str) -> XenbusDevice | None:
        for dev in self.devices.values():
            if dev.devclass == devclass and name in (dev.vdev, str(dev.devid)):
                return dev
        return None

    def _probe(self, v: "VCPU", node: str) -> None:
        other = "backend" if self.frontend else "frontend"
        self.probing.add(node)
        Gather.read(self.k, v, {"path": f"{node}/{other}", "id": f"{node}/{other}-id"},
                    self._probed, node)

    def _probed(self, v: "VCPU", values: dict, node: str) -> None:
        self.probing.discard(node)
        otherend, otherend_id = values["path"], as_int(values["id"])
        if node in self.devices or otherend is None or otherend_id is None:
            return          # not all there yet: a later event brings the rest
        devclass = node.split("/")[1]
        dev = self.drivers[devclass](self.k, node, otherend.decode(errors="replace"), otherend_id)
        self.devices[node] = dev
        dev.log(v, "probe", f"other end d{otherend_id} {dev.otherend}")
        dev.probe(v)
        xs_watch(self.k, v, f"{dev.otherend}/state", otherend_token(node), dev.on_otherend_event)

    def resume(self, v: "VCPU") -> None:
        """After a restore every device resumes, and the directory is
        listed again once its watch, registered with the new store, fires:
        the new domain's devices need not be the old one's."""
        self.enumerated = False
        for dev in list(self.devices.values()):
            dev.resume(v)

    def _check(self, v: "VCPU", node: str) -> None:
        other = "backend" if self.frontend else "frontend"
        xs_read(self.k, v, f"{node}/{other}", self._checked, node)

    def _checked(self, v: "VCPU", ok: bool, _value: bytes, node: str) -> None:
        if ok:
            return
        dev = self.devices.pop(node, None)
        if dev is None:
            return
        dev.log(v, "remove")
        dev.removed = True
        xs_unwatch(self.k, v, f"{dev.otherend}/state", otherend_token(node))
        dev.remove(v)


def otherend_token(node: str) -> bytes:
    """The token of a device's watch on the other end's state."""
    return f"otherend:{node}".encode()


def _names(listing: bytes) -> list[str]:
    return [n.decode(errors="replace") for n in listing.split(b"\0") if n]
