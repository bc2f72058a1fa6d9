"""The vTPM backend (mini-os's tpmback.c, with the vTPM manager behind it):
each frontend's page mapped, its commands checked and handed on, tagged
with the instance they are for, to the one manager that holds every TPM
this domain serves.

At probe it reads the ``uuid`` the toolstack wrote (which TPM this is), the
optional ``tpm`` (the engine: ``builtin``, the default, or ``swtpm``) and
``state-dir`` (where TPM state persists; without it, nowhere), opens the
instance, publishes ``feature-protocol-v2`` and ``instance`` and waits in
InitWait. When the frontend has published its page and channel (and speaks
protocol v2), it maps the one, binds the other and goes Connected.

A command is taken in the domain's own time. Only a well-formed one
reaches the TPM: its ``length`` must fit the page and agree with the
command's own paramSize, or the answer is TPM_BAD_PARAM_SIZE and the TPM
never sees it. The backend prefixes the command with the 4-byte instance
number (network byte order) and the manager routes it by that number, as
/dev/vtpm's packets were; the response comes back the same way.

When the frontend closes, the page and channel are let go; the device
waits in InitWait for the frontend to come back (io/tpmif.h), unless the
toolstack has taken it offline, in which case it is Closed.
"""

from __future__ import annotations

import os
import shutil
import struct
import tempfile
import uuid as uuidlib
from typing import TYPE_CHECKING

from hv.guest.swtpm import Swtpm, SwtpmError
from hv.guest.tpm12 import HEADER_SIZE, TPM_BAD_PARAM_SIZE, Tpm12, build_response
from hv.guest.tpmfront import LENGTH, STATE, data_offset
from hv.guest.xenbus_probe import Gather, XenbusDevice, as_int, xs_read, xs_write
from hv.public.io.tpmif import (
    TPMIF_STATE_CANCEL, TPMIF_STATE_FINISH, TPMIF_STATE_IDLE, TPMIF_STATE_SUBMIT,
)
from hv.public.io.xenbus import (
    XenbusStateClosed, XenbusStateClosing, XenbusStateConnected, XenbusStateInitialised,
    XenbusStateInitWait,
)
from hv.public.xen import PAGE_SIZE

if TYPE_CHECKING:
    from hv.xen.domain import VCPU

ENGINES = ("builtin", "swtpm")
PREFIX = struct.Struct(">I")
_U32 = struct.Struct("<I")
_PARAM_SIZE = struct.Struct(">I")
TPM_FAIL = 0x09
TPM_SIZE = 0x17
# The backend's CPU cost per command (the TPM's work included), and per
# cancellation acknowledged.
REQUEST_NS = 20_000
CANCEL_NS = 1_000


class VtpmInstance:
    def __init__(self, number: int, domid: int, devid: int, uuid: str, tpm, scratch: str = ""):
        self.number = number
        self.domid = domid
        self.devid = devid
        self.uuid = uuid
        self.tpm = tpm
        self.scratch = scratch          # a state directory of its own, gone with it


class VtpmManager:
    """The vTPM manager of one backend domain: every TPM instance it
    serves, by instance number, and the router between them."""

    def __init__(self):
        self.instances: dict[int, VtpmInstance] = {}
        self.next_number = 1
        # Built-in TPMs with no state directory, kept by uuid while no
        # frontend has them: a domain saved and restored, rebooted, or
        # given its vTPM back finds it as it left it, as a vTPM domain
        # that keeps running keeps it. (They travel in snapshots.)
        self.kept: dict[str, Tpm12] = {}

    def open(self, domid: int, devid: int, uuid: str, engine: str, state_dir: str | None):
        """The instance for a frontend's device (a number, from 1 up), or
        why there can't be one. The same uuid finds the same state."""
        for inst in self.instances.values():
            if inst.uuid == uuid:
                return f"vTPM {uuid} is in use by domain {inst.domid}"
        seed = uuidlib.UUID(uuid).bytes
        scratch = ""
        try:
            if engine == "swtpm":
                if state_dir:
                    where = os.path.join(state_dir, f"vtpm-{uuid}.swtpm")
                else:
                    where = scratch = tempfile.mkdtemp(prefix="xenlab-vtpm-")
                tpm = Swtpm(where)
            elif state_dir:
                tpm = Tpm12(seed, os.path.join(state_dir, f"vtpm-{uuid}.json"))
            else:
                tpm = self.kept.pop(uuid, None) or Tpm12(seed, None)
        except (OSError, ValueError, SwtpmError) as e:
            if scratch:
                shutil.rmtree(scratch, ignore_errors=True)
            return str(e).splitlines()[0]
        number = self.next_number
        self.next_number += 1
        self.instances[number] = VtpmInstance(number, domid, devid, uuid, tpm, scratch)
        return number

    def handle(self, packet: bytes) -> bytes:
        """One packet as /dev/vtpm carried it: the instance number, then a
        TPM command; the answer is the instance number, then the response."""
        number = PREFIX.unpack_from(packet)[0]
        inst = self.instances.get(number)
        if inst is None:
            return packet[:4] + build_response(TPM_FAIL)
        try:
            return packet[:4] + inst.tpm.execute(packet[4:])
        except (SwtpmError, OSError):
            # The host's trouble (swtpm gone, the state file not written)
            # is the command's failure, never dom0's crash.
            return packet[:4] + build_response(TPM_FAIL)

    def close(self, number: int) -> None:
        inst = self.instances.pop(number, None)
        if inst is None:
            return
        if isinstance(inst.tpm, Swtpm):
            inst.tpm.close()
        elif inst.tpm.state_path is None:
            self.kept[inst.uuid] = inst.tpm
        if inst.scratch:
            shutil.rmtree(inst.scratch, ignore_errors=True)


def vtpm_manager(k) -> VtpmManager:
    """The domain's manager, started with the first vTPM it serves."""
    manager = getattr(k, "vtpm_manager", None)
    if manager is None:
        manager = k.vtpm_manager = VtpmManager()
    return manager


class Tpmback(XenbusDevice):
    devclass = "vtpm"
    frontend = False

    def __init__(self, k, nodename, otherend, otherend_id):
        super().__init__(k, nodename, otherend, otherend_id)
        self.uuid = ""
        self.engine = ""
        self.instance = 0
        self.page_handle = -1
        self.page_mfn = 0
        self.port = 0
        self.failed = ""
        self.stats = {"commands": 0, "cancelled": 0, "errors": 0}

    # ------------------------------------------------------------ xenbus
    def probe(self, v: "VCPU") -> None:
        node = self.nodename
        Gather.read(self.k, v, {"uuid": f"{node}/uuid", "tpm": f"{node}/tpm",
                                "state-dir": f"{node}/state-dir"}, self._configured)

    def _configured(self, v: "VCPU", values: dict) -> None:
        if self.removed:
            return
        text = (values["uuid"] or b"").decode(errors="replace")
        if not text:
            self.fatal(v, "no uuid: which vTPM is this?")
            return
        try:
            self.uuid = str(uuidlib.UUID(text))
        except ValueError:
            self.fatal(v, f"uuid {text!r} is not a UUID")
            return
        self.engine = (values["tpm"] or b"builtin").decode(errors="replace")
        if self.engine not in ENGINES:
            self.fatal(v, f"unknown tpm {self.engine!r} (one of {', '.join(ENGINES)})")
            return
        state_dir = values["state-dir"]
        opened = vtpm_manager(self.k).open(self.otherend_id, self.devid, self.uuid, self.engine,
                                           state_dir.decode(errors="replace") if state_dir else None)
        if isinstance(opened, str):
            self.fatal(v, f"vTPM {self.uuid}: {opened}")
            return
        self.instance = opened
        xs_write(self.k, v, f"{self.nodename}/feature-protocol-v2", 1)
        xs_write(self.k, v, f"{self.nodename}/instance", opened)
        self.switch_state(v, XenbusStateInitWait)
        self.log(v, "instance", f"{opened} ({self.engine}) for {self.uuid}")
        if self.otherend_state in (XenbusStateInitialised, XenbusStateConnected):
            self.otherend_changed(v, self.otherend_state)

    def otherend_changed(self, v: "VCPU", state: int) -> None:
        if state in (XenbusStateInitialised, XenbusStateConnected):
            if self.state == XenbusStateInitWait:
                fe = self.otherend
                Gather.read(self.k, v, {"ring": f"{fe}/ring-ref", "port": f"{fe}/event-channel",
                                        "v2": f"{fe}/feature-protocol-v2"}, self._connect)
        elif state == XenbusStateClosing:
            self.switch_state(v, XenbusStateClosing)
        elif state == XenbusStateClosed:
            self.close(v)
            xs_read(self.k, v, f"{self.nodename}/online", self._closed)

    def _closed(self, v: "VCPU", ok: bool, value: bytes) -> None:
        if self.removed:
            return
        again = ok and as_int(value, 0) == 1 and bool(self.instance) and not self.failed
        self.switch_state(v, XenbusStateInitWait if again else XenbusStateClosed)

    def _connect(self, v: "VCPU", values: dict) -> None:
        if self.removed or self.state != XenbusStateInitWait or self.page_handle >= 0:
            return
        ring_ref, port = as_int(values["ring"]), as_int(values["port"])
        if ring_ref is None or port is None:
            self.fatal(v, "reading ring-ref and event-channel")
            return
        if as_int(values["v2"], 0) != 1:
            self.fatal(v, "the frontend does not speak vTPM protocol 2")
            return
        rings = self.connect_rings(v, (ring_ref,), port)
        if rings is None:
            return
        ((self.page_handle, self.page_mfn),) = rings
        mfn, local = self.page_mfn, self.port
        self.switch_state(v, XenbusStateConnected)
        self.log(v, "connected", f"ring-ref {ring_ref} mfn {mfn:#x}, port {local}, "
                                 f"instance {self.instance}")

    def fatal(self, v: "VCPU", why: str) -> None:
        self.failed = why
        super().fatal(v, why)

    def close(self, v: "VCPU") -> None:
        k = self.k
        k.work.pop(self, None)
        if self.port:
            k.close_port(v, self.port)
            self.port = 0
        if self.page_handle >= 0:
            k.unmap_grants(v, [self.page_handle])
            self.page_handle, self.page_mfn = -1, 0

    def release_files(self) -> None:
        if self.instance:
            vtpm_manager(self.k).close(self.instance)
            self.instance = 0

    # ------------------------------------------------------------ the page
    def interrupt(self, v: "VCPU", port: int) -> None:
        if self.page_handle < 0:
            return
        page = self.k.mapped(self.page_mfn, True)
        state = page[STATE]
        if state == TPMIF_STATE_SUBMIT:
            self.k.queue_work(self)
        elif state == TPMIF_STATE_CANCEL and self not in self.k.work:
            # Nothing under way: the cancellation is complete at once.
            self._cancelled(v, page)
        # A command already queued finds the cancellation when its turn comes.

    def _cancelled(self, v: "VCPU", page) -> None:
        page[STATE] = TPMIF_STATE_IDLE
        self.stats["cancelled"] += 1
        self.k.notify(v, self.port)

    def do_work(self, v: "VCPU") -> int:
        """Answer the command on the page; the time it took."""
        if self.page_handle < 0:
            return 0
        page = self.k.mapped(self.page_mfn, True)
        state = page[STATE]
        if state == TPMIF_STATE_CANCEL:
            # Cancelled before the TPM saw it: it never will.
            self._cancelled(v, page)
            return CANCEL_NS
        if state != TPMIF_STATE_SUBMIT:
            return 0
        offset = data_offset(page)
        length = _U32.unpack_from(page, LENGTH)[0]
        why = self._malformed(page, offset, length)
        if why:
            self.stats["errors"] += 1
            self.log(v, "bad request", why)
            response = build_response(TPM_BAD_PARAM_SIZE)
        else:
            self.stats["commands"] += 1
            packet = PREFIX.pack(self.instance) + bytes(page[offset:offset + length])
            answer = vtpm_manager(self.k).handle(packet)
            response = answer[PREFIX.size:]
            if offset + len(response) > PAGE_SIZE:
                response = build_response(TPM_SIZE)
        page[offset:offset + len(response)] = response
        _U32.pack_into(page, LENGTH, len(response))
        page[STATE] = TPMIF_STATE_FINISH
        self.k.notify(v, self.port)
        return REQUEST_NS

    @staticmethod
    def _malformed(page, offset: int, length: int) -> str:
        """Why the command on the page is not one the TPM may see."""
        if offset + length > PAGE_SIZE:
            return f"length {length} runs past the page"
        if length < HEADER_SIZE:
            return f"length {length} is shorter than a TPM command's header"
        size = _PARAM_SIZE.unpack_from(page, offset + 2)[0]
        if size != length:
            return f"length {length} but the command's paramSize is {size}"
        return ""
