"""A domain's devices and the rings they talk through, read the way dom0
would read them: the frontend's xenstore directory names each ring's
grant reference, the frontend's grant entry names the frame, and the
page is read through privcmd's foreign mapping. ring.h keeps four indices
on the page (req_prod, req_event, rsp_prod, rsp_event); the consumers'
indices (the backend's req_cons, the frontend's rsp_cons) and the
producers' private ones live in each end's kernel, and are read from the
kernels' own structures, as a debugger attached to them would, when the
end is a modelled kernel."""

from __future__ import annotations

from hv.guest.ring import REQ_EVENT, REQ_PROD, RSP_EVENT, RSP_PROD, get, ring_size
from hv.public.grant_table import (
    GNTTAB_RESERVED_CONSOLE, GNTTAB_RESERVED_XENSTORE, GTF_permit_access, GTF_type_mask,
)
from hv.public.io.blkif import SLOT_SIZE as BLK_SLOT
from hv.public.io.console import XenconsInterface
from hv.public.io.netif import RX_SLOT, TX_SLOT
from hv.public.io.tpmif import TpmifSharedPage
from hv.public.io.xenbus import XENBUS_STATE_NAMES
from hv.public.io.xs_wire import XENSTORE_RING_SIZE, XenstoreDomainInterface
from hv.xenstore.errors import XsError
from xl.privcmd import HypercallError

PAGE_SIZE = 4096
# Each class's rings: (name, the frontend node with its grant ref, the
# slot size, the RingEnd attribute both ends keep it under).
RINGS = {
    "vif": (("tx", "tx-ring-ref", TX_SLOT, "tx"), ("rx", "rx-ring-ref", RX_SLOT, "rx")),
    "vbd": (("ring", "ring-ref", BLK_SLOT, "ring"),),
}
# console.h's two rings, sized by where each array ends.
CONS_IN_SIZE = XenconsInterface.offsetof("out") - XenconsInterface.offsetof("in_")
CONS_OUT_SIZE = XenconsInterface.offsetof("in_cons") - XenconsInterface.offsetof("out")
TPMIF_STATES = ("idle", "submit", "finish", "cancel")
_TPM_LENGTH = TpmifSharedPage.offsetof("length")
_TPM_STATE = TpmifSharedPage.offsetof("state")
_TPM_LOCALITY = TpmifSharedPage.offsetof("locality")


def devices(toolstack, d, table: dict[int, tuple[int, int, int]]) -> list[dict]:
    """Each split device (vif, vbd, vtpm, in id order) with its rings, then
    the console and the xenstore connection."""
    domid = d.domid
    reader = _Reader(toolstack, domid, table)
    out = []
    for devclass in ("vif", "vbd", "vtpm"):
        for devid in reader.ids(devclass):
            out.append(reader.split_device(devclass, devid))
    if domid != 0:
        out.append(reader.byte_rings("console", GNTTAB_RESERVED_CONSOLE, "console", (
            ("out", XenconsInterface.offsetof("out_prod"), XenconsInterface.offsetof("out_cons"),
             CONS_OUT_SIZE),
            ("in", XenconsInterface.offsetof("in_prod"), XenconsInterface.offsetof("in_cons"),
             CONS_IN_SIZE))))
        out.append(reader.byte_rings("xenstore", GNTTAB_RESERVED_XENSTORE, "store", (
            ("req", XenstoreDomainInterface.offsetof("req_prod"),
             XenstoreDomainInterface.offsetof("req_cons"), XENSTORE_RING_SIZE),
            ("rsp", XenstoreDomainInterface.offsetof("rsp_prod"),
             XenstoreDomainInterface.offsetof("rsp_cons"), XENSTORE_RING_SIZE))))
    return out


def _bus_device(kernel, nodename: str):
    """The driver instance a modelled kernel has for a xenbus node."""
    for bus in getattr(kernel, "buses", ()):
        dev = bus.devices.get(nodename)
        if dev is not None:
            return dev
    return None


class _Reader:
    def __init__(self, toolstack, domid: int, table: dict[int, tuple[int, int, int]]):
        self.ts = toolstack
        self.xen = toolstack.host.xen
        self.domid = domid
        self.table = table
        self.home = f"/local/domain/{domid}"

    def node(self, path: str) -> str | None:
        try:
            return self.ts.xs.read(path).decode(errors="replace")
        except XsError:
            return None

    def number(self, path: str) -> int | None:
        value = self.node(path)
        return int(value) if value is not None and value.lstrip("-").isdigit() else None

    def ids(self, devclass: str) -> list[int]:
        try:
            names = self.ts.xs.directory(f"{self.home}/device/{devclass}")
        except XsError:
            return []
        return sorted(int(n) for n in names if n.isdigit())

    def page(self, ref: int | None) -> tuple[bytes | None, int | None, str]:
        """The page the frontend granted under ``ref``: (bytes, frame, why
        not when there are none)."""
        if ref is None:
            return None, None, "no ring reference published"
        entry = self.table.get(ref)
        if entry is None or entry[0] & GTF_type_mask != GTF_permit_access:
            return None, None, f"grant {ref} does not permit access"
        frame = entry[2]
        try:
            return bytes(self.ts.pc.peek_foreign(frame)), frame, ""
        except HypercallError as e:
            return None, frame, str(e)

    # ------------------------------------------------------------ byte rings
    def byte_rings(self, devclass: str, ref: int, node: str, rings) -> dict:
        """A page of free-running byte rings whose four indices all live on
        it (the console's, xenstore's)."""
        dev = {"class": devclass, "devid": 0, "backend_id": None, "state": None,
               "evtchn": self.number(f"{self.home}/{node}/port"), "ref": ref, "frame": None,
               "error": "", "rings": []}
        data, dev["frame"], dev["error"] = self.page(ref)
        if data is None:
            return dev
        dev["backend_id"] = self.table[ref][1]
        for name, prod, cons, size in rings:
            dev["rings"].append({"name": name, "kind": "bytes", "size": size,
                                 "prod": get(data, prod), "cons": get(data, cons)})
        return dev

    # ------------------------------------------------------------ split devices
    def split_device(self, devclass: str, devid: int) -> dict:
        front = f"{self.home}/device/{devclass}/{devid}"
        backend_id = self.number(f"{front}/backend-id")
        state = self.number(f"{front}/state")
        back_path = self.node(f"{front}/backend")
        back_state = self.number(f"{back_path}/state") if back_path else None
        dev = {"class": devclass, "devid": devid, "backend_id": backend_id,
               "state": XENBUS_STATE_NAMES.get(state, state),
               "backend_state": XENBUS_STATE_NAMES.get(back_state, back_state),
               "evtchn": self.number(f"{front}/event-channel"), "error": "", "rings": []}
        front_dev = _bus_device(self.xen.domains.get(self.domid).guest, f"device/{devclass}/{devid}")
        backend = self.xen.domains.get(backend_id) if backend_id is not None else None
        back_dev = _bus_device(getattr(backend, "guest", None),
                               f"backend/{devclass}/{self.domid}/{devid}")
        dev["backend_evtchn"] = getattr(back_dev, "port", None) or None
        if devclass == "vtpm":
            dev["rings"].append(self.tpm_page(self.number(f"{front}/ring-ref"), front_dev))
            return dev
        for name, node, slot, attr in RINGS.get(devclass, ()):
            dev["rings"].append(self.io_ring(name, self.number(f"{front}/{node}"), slot,
                                             getattr(front_dev, attr, None),
                                             getattr(back_dev, attr, None)))
        return dev

    def io_ring(self, name: str, ref: int | None, slot: int, front, back) -> dict:
        """One io/ring.h ring: the shared indices from its page, and each
        end's private ones where its kernel can be read."""
        data, frame, why = self.page(ref)
        ring = {"name": name, "kind": "ring", "ref": ref, "frame": frame, "error": why,
                "size": ring_size(PAGE_SIZE, slot)}
        if data is None:
            return ring
        ring.update(req_prod=get(data, REQ_PROD), req_event=get(data, REQ_EVENT),
                    rsp_prod=get(data, RSP_PROD), rsp_event=get(data, RSP_EVENT),
                    req_prod_pvt=None, rsp_cons=None, req_cons=None, rsp_prod_pvt=None)
        if front is not None:
            ring.update(req_prod_pvt=front.prod_pvt, rsp_cons=front.cons)
        if back is not None:
            ring.update(req_cons=back.cons, rsp_prod_pvt=back.prod_pvt)
        return ring

    def tpm_page(self, ref: int | None, front) -> dict:
        """tpmif.h's one shared page: whose turn it is, and the length of
        the command or response on it; the frontend counts commands."""
        data, frame, why = self.page(ref)
        page = {"name": "page", "kind": "tpmif", "ref": ref, "frame": frame, "error": why,
                "commands": (getattr(front, "stats", None) or {}).get("commands")}
        if data is None:
            return page
        state = data[_TPM_STATE]
        page.update(state=TPMIF_STATES[state] if state < len(TPMIF_STATES) else str(state),
                    length=get(data, _TPM_LENGTH), locality=data[_TPM_LOCALITY])
        return page
