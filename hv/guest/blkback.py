"""The block backend (Linux's drivers/block/xen-blkback): a virtual disk
over a raw image file, serving one frontend's ring.

It opens the file the toolstack named in ``params`` (read-only when
``mode`` is ``r``), publishes what it can do (flush, barrier, discard,
indirect segments, persistent grants) and waits; when the frontend has
published its ring and channel it maps the one, binds the other, publishes
the disk's size and goes Connected.

Requests are handled in the backend domain's time, a batch per turn: the
segments' grants are mapped (once and kept, when both ends agreed on
persistent grants), the data moves between the mapped pages and the file,
and a response goes back. A write is in the file before its response is
queued; a flush or barrier reaches the disk (fsync) first. A request the
protocol forbids is answered with BLKIF_RSP_ERROR; an operation it does not
know with BLKIF_RSP_EOPNOTSUPP; a frontend whose ring indices lie loses its
device (the ring is no longer read).
"""

from __future__ import annotations

import ctypes
import os
from typing import TYPE_CHECKING

from hv.guest.ring import RingEnd
from hv.guest.xenbus_probe import Gather, XenbusDevice, as_int, xs_write
from hv.public.grant_table import GNTST_okay
from hv.public.io.blkif import (
    BLKIF_OP_DISCARD, BLKIF_OP_FLUSH_DISKCACHE, BLKIF_OP_INDIRECT, BLKIF_OP_READ,
    BLKIF_OP_WRITE, BLKIF_OP_WRITE_BARRIER, BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST,
    BLKIF_MAX_SEGMENTS_PER_REQUEST, BLKIF_RSP_EOPNOTSUPP, BLKIF_RSP_ERROR, BLKIF_RSP_OKAY,
    DISCARD, INDIRECT, REQUEST_HEAD, RESPONSE, SECTOR_SIZE, SECTORS_PER_PAGE, SEGMENT,
    SEGS_PER_INDIRECT_FRAME, SLOT_SIZE, VDISK_READONLY,
)
from hv.public.io.xenbus import (
    XenbusStateConnected, XenbusStateInitialised, XenbusStateInitWait,
)

if TYPE_CHECKING:
    from hv.xen.domain import VCPU

# What Linux's blkback offers.
MAX_INDIRECT_SEGMENTS = 256
MAX_PERSISTENT_GRANTS = 1056
# Requests handled per turn before others get the vCPU.
BATCH = 32
# The backend's CPU cost: per request, and per page of data moved.
REQUEST_NS = 2_000
PAGE_NS = 500


_FALLOC_FL_KEEP_SIZE = 0x01
_FALLOC_FL_PUNCH_HOLE = 0x02
_libc = None


def punch_hole(fd: int, offset: int, length: int) -> bool:
    """fallocate(PUNCH_HOLE | KEEP_SIZE): what Linux's blkback asks of the
    disk for a discard."""
    global _libc
    if not length:
        return True
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
        _libc.fallocate.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long)
    return _libc.fallocate(fd, _FALLOC_FL_PUNCH_HOLE | _FALLOC_FL_KEEP_SIZE, offset, length) == 0


class Blkback(XenbusDevice):
    devclass = "vbd"
    frontend = False

    def __init__(self, k, nodename, otherend, otherend_id):
        super().__init__(k, nodename, otherend, otherend_id)
        self.path = ""
        self.fd = -1
        self.readonly = False
        self.sectors = 0
        self.ring = RingEnd(front=False, entry_size=SLOT_SIZE)
        self.ring_handle = -1
        self.ring_mfn = 0
        self.port = 0
        self.persistent = False
        self.pgrants: dict[int, tuple[int, int]] = {}     # gref -> (handle, mfn)
        self.broken = False
        # xentop's VBD columns and blkback's statistics.
        self.stats = {"oo_req": 0, "rd_req": 0, "wr_req": 0, "f_req": 0, "ds_req": 0,
                      "rd_sect": 0, "wr_sect": 0, "errors": 0}

    # ------------------------------------------------------------ xenbus
    def probe(self, v: "VCPU") -> None:
        Gather.read(self.k, v, {"params": f"{self.nodename}/params",
                                "mode": f"{self.nodename}/mode"}, self._configured)

    def _configured(self, v: "VCPU", values: dict) -> None:
        if self.removed:
            return
        params = values["params"]
        if not params:
            self.fatal(v, "no params: which file is the disk?")
            return
        self.path = params.decode(errors="replace")
        self.readonly = (values["mode"] or b"w").startswith(b"r")
        try:
            self.fd = os.open(self.path, os.O_RDONLY if self.readonly else os.O_RDWR)
            self.sectors = os.fstat(self.fd).st_size // SECTOR_SIZE
        except OSError as e:
            self.fatal(v, f"opening {self.path}: {e.strerror}")
            return
        node = self.nodename
        for name, value in (("feature-flush-cache", 1), ("feature-barrier", 1),
                            ("feature-discard", 1), ("discard-granularity", 4096),
                            ("discard-alignment", 0), ("discard-secure", 0),
                            ("feature-max-indirect-segments", MAX_INDIRECT_SEGMENTS),
                            ("feature-persistent", 1), ("max-ring-page-order", 0)):
            xs_write(self.k, v, f"{node}/{name}", value)
        self.wait_for_frontend(v)

    def otherend_changed(self, v: "VCPU", state: int) -> None:
        if state in (XenbusStateInitialised, XenbusStateConnected):
            if self.state == XenbusStateInitWait:
                fe = self.otherend
                Gather.read(self.k, v, {"ring": f"{fe}/ring-ref", "port": f"{fe}/event-channel",
                                        "protocol": f"{fe}/protocol",
                                        "persistent": f"{fe}/feature-persistent"},
                            self._connect)
        else:
            self.follow_frontend_closing(v, state)

    def _connect(self, v: "VCPU", values: dict) -> None:
        if self.removed or self.state != XenbusStateInitWait or self.fd < 0:
            return
        ring_ref, port = as_int(values["ring"]), as_int(values["port"])
        if ring_ref is None or port is None:
            self.fatal(v, "reading ring-ref and event-channel")
            return
        protocol = values["protocol"]
        if protocol not in (None, b"x86_64-abi"):
            self.fatal(v, f"unsupported protocol {protocol.decode(errors='replace')}")
            return
        rings = self.connect_rings(v, (ring_ref,), port)
        if rings is None:
            return
        ((self.ring_handle, self.ring_mfn),) = rings
        mfn, local = self.ring_mfn, self.port
        self.ring = RingEnd(front=False, entry_size=SLOT_SIZE)
        self.persistent = as_int(values["persistent"], 0) == 1
        node = self.nodename
        for name, value in (("sectors", self.sectors), ("info", VDISK_READONLY if self.readonly else 0),
                            ("sector-size", SECTOR_SIZE), ("physical-sector-size", SECTOR_SIZE)):
            xs_write(self.k, v, f"{node}/{name}", value)
        self.switch_state(v, XenbusStateConnected)
        self.log(v, "connected", f"ring-ref {ring_ref} mfn {mfn:#x}, port {local}, "
                                 f"{self.sectors} sectors{' (persistent grants)' if self.persistent else ''}")

    def close(self, v: "VCPU") -> None:
        k = self.k
        k.work.pop(self, None)
        if self.port:
            k.close_port(v, self.port)
            self.port = 0
        handles = [h for h, _mfn in self.pgrants.values()]
        self.pgrants.clear()
        if self.ring_handle >= 0:
            handles.append(self.ring_handle)
            self.ring_handle = -1
        k.unmap_grants(v, handles)

    def release_files(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    # A snapshot carries the file's name, not the descriptor: a restored
    # machine opens the image again.
    def __getstate__(self):
        state = self.__dict__.copy()
        state["fd"] = -1 if self.fd < 0 else -2
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        if self.fd == -2:
            self.fd = os.open(self.path, os.O_RDONLY if self.readonly else os.O_RDWR)

    # ------------------------------------------------------------ the ring
    def interrupt(self, v: "VCPU", port: int) -> None:
        if not self.broken:
            self.k.queue_work(self)

    def do_work(self, v: "VCPU") -> int:
        """Answer up to a batch of requests; the time it took."""
        if self.ring_handle < 0 or self.broken:
            return 0
        k = self.k
        page = k.mapped(self.ring_mfn, True)
        ring = self.ring
        cost = 0
        handled = 0
        while handled < BATCH:
            if ring.request_prod_overflow(page):
                self._halt(v, page)
                break
            if not ring.unconsumed(page):
                if not ring.final_check(page):
                    break
                continue
            req = ring.consume(page)
            status, op, req_id, pages = self._dispatch(v, req)
            ring.produce(page, RESPONSE.pack(req_id, op, status))
            handled += 1
            cost += REQUEST_NS + PAGE_NS * pages
        if ring.push(page):
            k.notify(v, self.port)
        if handled == BATCH:
            k.queue_work(self)
        return cost

    def _halt(self, v: "VCPU", page) -> None:
        """The frontend claims more requests than the ring holds: stop
        reading its ring (Linux's "Frontend provided bogus ring requests")."""
        self.broken = True
        self.stats["errors"] += 1
        self.log(v, "bogus ring", f"req_prod runs {self.ring.nr_ents} past what was answered")
        self.k.kernel_log(v, f"blkback: {self.name}: frontend provided bogus ring requests; "
                             "halting ring processing")

    def _dispatch(self, v: "VCPU", req: bytes) -> tuple[int, int, int, int]:
        """(status, operation, id, pages moved) for one request."""
        op, nseg, _handle, req_id, sector = REQUEST_HEAD.unpack_from(req)
        if op in (BLKIF_OP_READ, BLKIF_OP_WRITE):
            if not 1 <= nseg <= BLKIF_MAX_SEGMENTS_PER_REQUEST:
                return self._fail(v, op, req_id, f"{nseg} segments")
            segs = [SEGMENT.unpack_from(req, REQUEST_HEAD.size + i * SEGMENT.size)
                    for i in range(nseg)]
            return self._rw(v, op, req_id, sector, segs)
        if op == BLKIF_OP_INDIRECT:
            return self._indirect(v, req)
        if op in (BLKIF_OP_FLUSH_DISKCACHE, BLKIF_OP_WRITE_BARRIER):
            # Data carried with a flush or barrier is written first, then
            # everything before it reaches the disk.
            self.stats["f_req"] += 1
            if self.readonly:
                return self._fail(v, op, req_id, "flush of a read-only disk")
            pages = 0
            if nseg:
                if nseg > BLKIF_MAX_SEGMENTS_PER_REQUEST:
                    return self._fail(v, op, req_id, f"{nseg} segments")
                segs = [SEGMENT.unpack_from(req, REQUEST_HEAD.size + i * SEGMENT.size)
                        for i in range(nseg)]
                status, _op, _id, pages = self._rw(v, BLKIF_OP_WRITE, req_id, sector, segs)
                if status != BLKIF_RSP_OKAY:
                    return status, op, req_id, 0
            try:
                os.fsync(self.fd)
            except OSError as e:
                return self._fail(v, op, req_id, f"fsync: {e.strerror}")
            return BLKIF_RSP_OKAY, op, req_id, pages
        if op == BLKIF_OP_DISCARD:
            _op, _flag, _h, req_id, sector, count = DISCARD.unpack_from(req)
            return self._discard(v, req_id, sector, count)
        return BLKIF_RSP_EOPNOTSUPP, op, req_id, 0

    def _fail(self, v: "VCPU", op: int, req_id: int, why: str) -> tuple[int, int, int, int]:
        self.stats["errors"] += 1
        self.log(v, "bad request", why)
        return BLKIF_RSP_ERROR, op, req_id, 0

    def _indirect(self, v: "VCPU", req: bytes):
        _op, op, nseg, req_id, sector, _handle, *grefs = INDIRECT.unpack_from(req)
        if op not in (BLKIF_OP_READ, BLKIF_OP_WRITE):
            return self._fail(v, BLKIF_OP_INDIRECT, req_id, f"indirect operation {op}")
        if not 1 <= nseg <= MAX_INDIRECT_SEGMENTS:
            return self._fail(v, BLKIF_OP_INDIRECT, req_id, f"{nseg} indirect segments")
        frames = -(-nseg // SEGS_PER_INDIRECT_FRAME)
        assert frames <= BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST
        maps = self.k.map_grants(v, self.otherend_id, grefs[:frames], True)
        try:
            if any(status != GNTST_okay for status, _h, _m in maps):
                return self._fail(v, BLKIF_OP_INDIRECT, req_id, "unmappable indirect page")
            segs = []
            for i in range(nseg):
                frame = self.k.mapped(maps[i // SEGS_PER_INDIRECT_FRAME][2], False)
                segs.append(SEGMENT.unpack_from(frame, (i % SEGS_PER_INDIRECT_FRAME) * SEGMENT.size))
        finally:
            self.k.unmap_grants(v, [h for status, h, _m in maps if status == GNTST_okay])
        status, _op, req_id, pages = self._rw(v, op, req_id, sector, segs)
        return status, BLKIF_OP_INDIRECT, req_id, pages

    def _rw(self, v: "VCPU", op: int, req_id: int, sector: int, segs) -> tuple[int, int, int, int]:
        write = op == BLKIF_OP_WRITE
        total = 0
        for _gref, first, last in segs:
            if last >= SECTORS_PER_PAGE or first > last:
                return self._fail(v, op, req_id, f"segment sectors {first}-{last}")
            total += last - first + 1
        if sector + total > self.sectors:
            return self._fail(v, op, req_id, f"sectors {sector}+{total} beyond {self.sectors}")
        if write and self.readonly:
            return self._fail(v, op, req_id, "write to a read-only disk")
        mfns, temporary = self._map_segments(v, [s[0] for s in segs], readonly=write)
        try:
            if mfns is None:
                return self._fail(v, op, req_id, "a segment's grant could not be mapped")
            offset = sector * SECTOR_SIZE
            fd = self.fd
            for (_gref, first, last), mfn in zip(segs, mfns):
                start, length = first * SECTOR_SIZE, (last - first + 1) * SECTOR_SIZE
                frame = self.k.mapped(mfn, not write)
                try:
                    if write:
                        done = os.pwrite(fd, frame[start:start + length], offset)
                    else:
                        data = os.pread(fd, length, offset)
                        done = len(data)
                        frame[start:start + done] = data
                except OSError as e:
                    # The host's trouble (a full disk, a file too large) is
                    # the request's error, never dom0's crash.
                    return self._fail(v, op, req_id, f"{'write' if write else 'read'} at "
                                                     f"{offset}: {e.strerror}")
                if done != length:
                    return self._fail(v, op, req_id, f"short {'write' if write else 'read'} at {offset}")
                offset += length
        finally:
            self.k.unmap_grants(v, temporary)
        self.stats["wr_req" if write else "rd_req"] += 1
        self.stats["wr_sect" if write else "rd_sect"] += total
        return BLKIF_RSP_OKAY, op, req_id, len(segs)

    def _map_segments(self, v: "VCPU", grefs, readonly: bool):
        """The frames behind ``grefs`` (None if any can't be mapped), and the
        handles to unmap when the request is done: none for grants kept
        mapped (persistent), which are always mapped writable."""
        k = self.k
        if self.persistent:
            missing = [g for g in dict.fromkeys(grefs) if g not in self.pgrants]
            room = MAX_PERSISTENT_GRANTS - len(self.pgrants)
            keep, extra = missing[:room], missing[room:]
            failed = False
            for gref, (status, handle, mfn) in zip(keep, k.map_grants(v, self.otherend_id, keep, False)):
                if status == GNTST_okay:
                    self.pgrants[gref] = (handle, mfn)     # kept, so unmapped at close
                else:
                    failed = True
            if failed:
                return None, []
            temporary = {}
            for gref, (status, handle, mfn) in zip(extra, k.map_grants(v, self.otherend_id, extra, False)):
                if status == GNTST_okay:
                    temporary[gref] = (handle, mfn)
            handles = [h for h, _m in temporary.values()]
            if len(temporary) != len(extra):
                return None, handles
            mapped = {**self.pgrants, **temporary}
            return [mapped[g][1] for g in grefs], handles
        maps = k.map_grants(v, self.otherend_id, grefs, readonly)
        handles = [h for status, h, _m in maps if status == GNTST_okay]
        if len(handles) != len(maps):
            return None, handles
        return [m for _s, _h, m in maps], handles

    def _discard(self, v: "VCPU", req_id: int, sector: int, count: int):
        self.stats["ds_req"] += 1
        if self.readonly:
            return self._fail(v, BLKIF_OP_DISCARD, req_id, "discard on a read-only disk")
        if sector + count > self.sectors:
            return self._fail(v, BLKIF_OP_DISCARD, req_id, f"discard {sector}+{count} beyond the disk")
        # The file's blocks are given back (a hole reads as zeros), in one
        # call, whatever the size; a file system that can't is not asked again.
        if not punch_hole(self.fd, sector * SECTOR_SIZE, count * SECTOR_SIZE):
            return BLKIF_RSP_EOPNOTSUPP, BLKIF_OP_DISCARD, req_id, 0
        return BLKIF_RSP_OKAY, BLKIF_OP_DISCARD, req_id, 0
