"""The vTPM frontend (Linux's drivers/char/tpm/xen-tpmfront.c): the guest's
/dev/tpm0, one shared page and one event channel away from its TPM.

At probe it grants its one page to the backend domain, allocates the
channel, publishes ``ring-ref``, ``event-channel`` and
``feature-protocol-v2`` and goes Initialised without waiting for the
backend (io/tpmif.h: "frontend does not wait on this step"); once the
backend is Connected, and speaks protocol v2 too, it goes Connected.

The page is the whole protocol (tpmif v2): a command goes after the 8-byte
header with ``length`` set, then the state becomes SUBMIT and the backend
is notified; the backend answers in place, sets FINISH and notifies back.
A frontend that gives up sets CANCEL: the backend acknowledges with IDLE if
it had not begun, or answers FINISH anyway. The frontend only ever writes
SUBMIT or CANCEL, the backend only IDLE or FINISH.

After a restore the device is removed and probed again, as
tpmfront_resume() does: the command that was on the page is lost ("a
suspend/resume/migrate will interrupt a vTPM anyway"), and the new
backend's TPM, its state kept on disk, answers TPM_Startup as one already
started.

One command is on the page at a time; others wait their turn in order. The
first is the kernel's own TPM_Startup(ST_CLEAR), sent once at connect, as
the TPM driver does when it finds a TPM that has not been started.
"""

from __future__ import annotations

import hashlib
import struct
from typing import TYPE_CHECKING

from hv.guest import tpm12
from hv.guest.tpm12 import (
    TPM_INVALID_POSTINIT, TPM_ST_CLEAR, cmd_extend, cmd_get_random, cmd_pcr_read, cmd_startup,
    parse_response,
)
from hv.guest.xenbus_probe import XenbusDevice, as_int, xs_read, xs_write
from hv.public.io.tpmif import (
    TPMIF_STATE_CANCEL, TPMIF_STATE_FINISH, TPMIF_STATE_IDLE, TPMIF_STATE_SUBMIT,
    TpmifSharedPage,
)
from hv.public.io.xenbus import (
    XenbusStateClosed, XenbusStateClosing, XenbusStateConnected, XenbusStateInitialised,
)
from hv.public.xen import PAGE_SIZE

if TYPE_CHECKING:
    from hv.xen.domain import VCPU

LENGTH = TpmifSharedPage.offsetof("length")
STATE = TpmifSharedPage.offsetof("state")
LOCALITY = TpmifSharedPage.offsetof("locality")
NR_EXTRA_PAGES = TpmifSharedPage.offsetof("nr_extra_pages")
HEADER = TpmifSharedPage.SIZE
_U32 = struct.Struct("<I")
# The frontend's CPU cost per command it puts on the page.
COMMAND_NS = 1_000

_CODES = {getattr(tpm12, name): name for name in (
    "TPM_BADINDEX", "TPM_BAD_PARAMETER", "TPM_DEACTIVATED", "TPM_BAD_ORDINAL",
    "TPM_BAD_PARAM_SIZE", "TPM_FAILEDSELFTEST", "TPM_BADTAG", "TPM_INVALID_POSTINIT",
    "TPM_BAD_LOCALITY")}


def data_offset(page) -> int:
    """Where the command or response starts: after the header and the
    extra pages' grant references (shr_data_offset())."""
    return HEADER + 4 * page[NR_EXTRA_PAGES]


def code_name(code: int) -> str:
    name = _CODES.get(code)
    return f"TPM error {code:#x}" + (f" ({name})" if name else "")


class TpmCommand:
    """One command through the page: its bytes, and how it ended (the
    response's bytes, or why there are none)."""

    def __init__(self, what: str, request: bytes):
        self.what = what
        self.request = request
        self.response: bytes | None = None
        self.error = ""

    @property
    def done(self) -> bool:
        return self.response is not None or bool(self.error)


class Tpmfront(XenbusDevice):
    devclass = "vtpm"

    def __init__(self, k, nodename, otherend, otherend_id):
        super().__init__(k, nodename, otherend, otherend_id)
        self.page_pfn = 0
        self.ring_ref = -1
        self.port = 0
        self.failed = ""
        self.queue: list[TpmCommand] = []      # waiting for the page
        self.current: TpmCommand | None = None  # on the page
        self.startup: TpmCommand | None = None
        self.program: TpmCommand | None = None  # the running program's command
        self.stats = {"commands": 0, "cancelled": 0, "errors": 0}

    # ------------------------------------------------------------ xenbus
    def probe(self, v: "VCPU") -> None:
        """setup_ring(): the page, its grant and the channel, published."""
        k = self.k
        (self.page_pfn,) = k.alloc_pages(1)
        k.page(self.page_pfn)[:] = bytes(PAGE_SIZE)
        self.ring_ref = k.grant_access(v, self.otherend_id, self.page_pfn, readonly=False)
        self.port = k.alloc_unbound(v, self.otherend_id)
        k.irqs[self.port] = self
        for name, value in (("ring-ref", self.ring_ref), ("event-channel", self.port),
                            ("feature-protocol-v2", 1)):
            xs_write(k, v, f"{self.nodename}/{name}", value)
        self.switch_state(v, XenbusStateInitialised)

    def otherend_changed(self, v: "VCPU", state: int) -> None:
        if state == XenbusStateConnected and self.state == XenbusStateInitialised:
            xs_read(self.k, v, f"{self.otherend}/feature-protocol-v2", self._connect)
        elif state in (XenbusStateClosing, XenbusStateClosed) and self.state != XenbusStateClosed:
            self.close(v)
            self.failed = self.failed or "the backend closed the device"
            self.switch_state(v, XenbusStateClosed)

    def _connect(self, v: "VCPU", ok: bool, value: bytes) -> None:
        if (self.removed or self.state != XenbusStateInitialised
                or self.otherend_state != XenbusStateConnected):
            return
        if not ok or as_int(value, 0) != 1:
            self.failed = "vTPM protocol 2 required"
            self.fatal(v, self.failed)
            return
        self.switch_state(v, XenbusStateConnected)
        self.log(v, "connected", f"ring-ref {self.ring_ref}, port {self.port}")
        self.startup = TpmCommand("startup", cmd_startup(TPM_ST_CLEAR))
        self.submit(v, self.startup)

    def close(self, v: "VCPU") -> None:
        if self.port:
            self.k.close_port(v, self.port)
            self.port = 0
        self._release(v, "device closed")

    def resume_driver(self, v: "VCPU") -> None:
        self.port = 0
        self.failed = ""
        self._release(v, "interrupted by a suspend")

    def reconnect(self, v: "VCPU") -> None:
        self.probe(v)

    def _release(self, v: "VCPU", why: str) -> None:
        if self.ring_ref >= 0:
            # The page goes back once the backend has let go of it.
            self.k.end_access(v, self.ring_ref, self.page_pfn)
        self.ring_ref, self.page_pfn = -1, 0
        for cmd in ([self.current] if self.current else []) + self.queue:
            cmd.error = cmd.error or why
        self.current, self.queue = None, []

    # ------------------------------------------------------------ commands
    def submit(self, v: "VCPU", cmd: TpmCommand) -> int:
        """Queue a command; the CPU time it took if it went out now."""
        if self.state != XenbusStateConnected or not self.page_pfn:
            cmd.error = self.failed or "not connected"
            return 0
        self.queue.append(cmd)
        return self._send(v)

    def _send(self, v: "VCPU") -> int:
        if self.current is not None or not self.queue or not self.page_pfn:
            return 0
        page = self.k.page(self.page_pfn)
        if page[STATE] in (TPMIF_STATE_SUBMIT, TPMIF_STATE_CANCEL):
            return 0        # the backend is still at it; its notification brings us back
        cmd = self.queue.pop(0)
        offset = data_offset(page)
        if offset + len(cmd.request) > PAGE_SIZE:
            cmd.error = "command too long for the shared page"
            return 0
        page[offset:offset + len(cmd.request)] = cmd.request
        _U32.pack_into(page, LENGTH, len(cmd.request))
        page[LOCALITY] = 0
        page[STATE] = TPMIF_STATE_SUBMIT
        self.current = cmd
        self.stats["commands"] += 1
        self.k.notify(v, self.port)
        return COMMAND_NS

    def cancel(self, v: "VCPU") -> bool:
        """vtpm_cancel(): ask the backend to drop the command on the page
        (what the TPM driver does when a command takes too long)."""
        if self.current is None or not self.page_pfn:
            return False
        self.k.page(self.page_pfn)[STATE] = TPMIF_STATE_CANCEL
        self.k.notify(v, self.port)
        return True

    def interrupt(self, v: "VCPU", port: int) -> None:
        """tpmif_interrupt(): the backend is done with the page, one way
        or the other."""
        if not self.page_pfn or self.current is None:
            return
        page = self.k.page(self.page_pfn, writable=False)
        state = page[STATE]
        if state == TPMIF_STATE_FINISH:
            # vtpm_recv(): never past the page, whatever length says.
            offset = data_offset(page)
            length = min(_U32.unpack_from(page, LENGTH)[0], PAGE_SIZE - offset)
            self.current.response = bytes(page[offset:offset + length])
        elif state == TPMIF_STATE_IDLE:
            self.current.error = "command cancelled"
            self.stats["cancelled"] += 1
        else:
            return
        done, self.current = self.current, None
        if done is self.startup:
            self._started(v, done)
        self._send(v)

    def _started(self, v: "VCPU", cmd: TpmCommand) -> None:
        """A TPM already started (its state restored from before) says
        TPM_INVALID_POSTINIT: it is left as it is."""
        code = _result(cmd)[0]
        if code not in (0, TPM_INVALID_POSTINIT):
            self.stats["errors"] += 1
            self.k.kernel_log(v, f"tpm: TPM_Startup: {cmd.error or code_name(code)}")


def _result(cmd: TpmCommand) -> tuple[int, bytes]:
    """(returnCode, results); -1 if there was no well-formed response."""
    if cmd.response is None:
        return -1, b""
    try:
        return parse_response(cmd.response)
    except ValueError as e:
        cmd.error = f"bad response: {e}"
        return -1, b""


def _command(action: str, number: int, text: str) -> tuple[str, bytes]:
    if action == "extend":
        return f"extend {number}", cmd_extend(number, hashlib.sha1(text.encode()).digest())
    if action == "read":
        return f"read {number}", cmd_pcr_read(number)
    return f"random {number}", cmd_get_random(number)


def _report(action: str, number: int, body: bytes) -> str:
    if action == "extend":
        return f"tpm extend {number}: {body[:20].hex()}"
    if action == "read":
        return f"PCR-{number:02d}: {body[:20].hex()}"
    count = int.from_bytes(body[:4], "big")
    return f"tpm random {number}: {body[4:4 + count].hex()}"


def program_op(k, v: "VCPU", action: str, number: int, text: str):
    """A program's TPM command (tpm extend|read|random): wait for the
    device, send, wait for the answer, print it."""
    dev = k.device("vtpm", "0")
    if dev is None or not k.hostname:
        return k.wait(v)
    if isinstance(dev, str):
        k.console_write(v, f"tpm: {action} {number}: {dev}\n")
        return 0, True
    cost = 0
    if dev.program is None:
        what, request = _command(action, number, text)
        dev.program = TpmCommand(what, request)
        cost = dev.submit(v, dev.program) or COMMAND_NS
    cmd = dev.program
    if not cmd.done:
        return k.wait(v, cost)
    dev.program = None
    code, body = _result(cmd)
    if cmd.error:
        k.console_write(v, f"tpm: {cmd.what}: {cmd.error}\n")
    elif code:
        k.console_write(v, f"tpm: {cmd.what}: {code_name(code)}\n")
    else:
        k.console_write(v, _report(action, number, body) + "\n")
    return 0, True
