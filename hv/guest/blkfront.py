"""The block frontend (Linux's drivers/block/xen-blkfront.c): a virtual disk
seen through one ring page and one event channel.

When the backend is waiting (InitWait) it grants its ring page to the
backend domain, allocates the channel, publishes ``ring-ref``,
``event-channel`` and ``protocol`` and goes Initialised; when the backend
is Connected it reads the disk's size and features and goes Connected.

After a restore (blkfront_resume) the device lets go of its ring, channel
and grants, which went with the old domain, handshakes again with the new
backend, and puts the requests that were in flight out again first
(blkif_recover): a job goes on where it was.

Data moves in pages from a pool the device keeps: with persistent grants
(both ends say ``feature-persistent``) each pool page is granted once and
the grant kept; otherwise a page is granted for one request and the grant
ended when its response comes. A program's I/O runs as a job: requests go
out while the ring and the pool have room, responses come back in the
interrupt, and the job is done when the last one has.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hv.guest.ring import RingEnd, shared_ring_init
from hv.guest.xenbus_probe import Gather, XenbusDevice, as_int, xs_write
from hv.public.io.blkif import (
    BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST, BLKIF_MAX_SEGMENTS_PER_REQUEST, BLKIF_OP_FLUSH_DISKCACHE,
    BLKIF_OP_INDIRECT, BLKIF_OP_READ, BLKIF_OP_WRITE, BLKIF_RSP_OKAY, INDIRECT,
    REQUEST_HEAD, RESPONSE, SECTOR_SIZE, SECTORS_PER_PAGE, SEGMENT, SEGS_PER_INDIRECT_FRAME,
    SLOT_SIZE, VDISK_READONLY,
)
from hv.public.io.xenbus import (
    XenbusStateClosed, XenbusStateClosing, XenbusStateConnected, XenbusStateInitialised,
    XenbusStateInitialising, XenbusStateInitWait,
)
from hv.public.xen import PAGE_SIZE

if TYPE_CHECKING:
    from hv.xen.domain import VCPU

# Pages in flight at once, as many as a full ring of direct requests.
POOL_PAGES = 32 * BLKIF_MAX_SEGMENTS_PER_REQUEST
# Segments blkfront puts in one indirect request at most (Linux's
# max_indirect_segments default).
INDIRECT_SEGMENTS = 32
# The frontend's CPU cost per request it builds.
REQUEST_NS = 1_000

_MAJORS = {202: ("xvd", 16), 3: ("hd", 64), 22: ("hd", 64), 8: ("sd", 16)}


def disk_letters(n: int) -> str:
    """0 -> a, 25 -> z, 26 -> aa (Linux's disk naming)."""
    text = ""
    n += 1
    while n:
        n, r = divmod(n - 1, 26)
        text = chr(ord("a") + r) + text
    return text


def devid_to_name(devid: int) -> str:
    """The name a Linux guest gives the disk with this virtual-device
    number: 51712 -> xvda, 51713 -> xvda1; the extended form (bit 28)
    names any xvd disk."""
    if devid & (1 << 28):
        disk, part = (devid >> 8) & 0xFFFFF, devid & 0xFF
        prefix = "xvd"
    else:
        major, minor = devid >> 8, devid & 0xFF
        prefix, per_disk = _MAJORS.get(major, ("xvd", 16))
        disk, part = divmod(minor, per_disk)
        if major == 22:
            disk += 2
    return f"{prefix}{disk_letters(disk)}{part or ''}"


def pattern(name: str, sector: int) -> bytes:
    """What ``dd write`` puts in a sector: its number and the domain's
    name, so a sector written in the wrong place or by the wrong domain
    reads back wrong."""
    stamp = f"{name}:{sector:012d}|".encode()
    return (stamp * (SECTOR_SIZE // len(stamp) + 1))[:SECTOR_SIZE]


class BlkJob:
    """A program's run of I/O over the disk: write, read or verify
    ``size`` bytes from sector 0 in requests of ``bs`` bytes, or flush."""

    def __init__(self, kind: str, size: int, bs: int, name: str, started: int):
        self.kind = kind
        self.size = size
        self.bs = bs
        self.name = name
        self.started = started
        self.next = 0                 # byte offset of the next request
        self.inflight = 0
        self.done_bytes = 0
        self.bad_sector: int | None = None
        self.error = ""
        self.submitted = False        # a flush: its one request is out

    @property
    def finished(self) -> bool:
        if self.kind == "flush":
            return self.submitted and not self.inflight
        return not self.inflight and (self.next >= self.size or bool(self.error))


class Blkfront(XenbusDevice):
    devclass = "vbd"

    def __init__(self, k, nodename, otherend, otherend_id):
        super().__init__(k, nodename, otherend, otherend_id)
        self.ring = RingEnd(front=True, entry_size=SLOT_SIZE)
        self.ring_pfn = 0
        self.ring_ref = -1
        self.port = 0
        self.sectors = 0
        self.sector_size = SECTOR_SIZE
        self.readonly = False
        self.features: dict[str, int] = {}
        self.persistent = False
        self.pool: list[int] = []                 # free data pages (pfns)
        self.pool_grants: dict[int, int] = {}     # pfn -> its kept grant
        self.all_pages: list[int] = []
        self.inflight: dict[int, tuple] = {}      # id -> (op, sector, pages, grants, ndata, length)
        self.requeue: list[tuple[int, int, int]] = []   # (sector, op, length) to put out again
        self.next_id = 1
        self.job: BlkJob | None = None
        self.failed = ""
        self.stats = {"rd_req": 0, "wr_req": 0, "f_req": 0, "errors": 0}

    @property
    def vdev(self) -> str:
        return devid_to_name(self.devid)

    # ------------------------------------------------------------ xenbus
    def otherend_changed(self, v: "VCPU", state: int) -> None:
        if state == XenbusStateInitWait and self.state == XenbusStateInitialising:
            self._talk_to_backend(v)
        elif state == XenbusStateConnected and self.state == XenbusStateInitialised:
            be = self.otherend
            Gather.read(self.k, v, {name: f"{be}/{name}" for name in (
                "sectors", "info", "sector-size", "feature-flush-cache", "feature-barrier",
                "feature-discard", "feature-max-indirect-segments", "feature-persistent")},
                self._connect)
        elif state in (XenbusStateClosing, XenbusStateClosed) and self.state != XenbusStateClosed:
            # blkfront_closing(): nothing more goes to the disk.
            self.close(v)
            self.failed = self.failed or "the backend closed the device"
            self.switch_state(v, XenbusStateClosed)

    def _talk_to_backend(self, v: "VCPU") -> None:
        k = self.k
        (self.ring_pfn,) = k.alloc_pages(1)
        page = k.page(self.ring_pfn)
        page[:] = bytes(PAGE_SIZE)
        shared_ring_init(page)
        self.ring = RingEnd(front=True, entry_size=SLOT_SIZE)
        self.ring_ref = k.grant_access(v, self.otherend_id, self.ring_pfn, readonly=False)
        self.port = k.alloc_unbound(v, self.otherend_id)
        k.irqs[self.port] = self
        node = self.nodename
        # Linux's module parameter, on the kernel's command line.
        persistent = 0 if k.cmdline_has("xen_blkfront.feature_persistent=0") else 1
        for name, value in (("ring-ref", self.ring_ref), ("event-channel", self.port),
                            ("protocol", "x86_64-abi"), ("feature-persistent", persistent)):
            xs_write(k, v, f"{node}/{name}", value)
        self.switch_state(v, XenbusStateInitialised)

    def _connect(self, v: "VCPU", values: dict) -> None:
        if self.removed or self.state != XenbusStateInitialised:
            return
        self.sectors = as_int(values["sectors"], 0)
        self.sector_size = as_int(values["sector-size"], SECTOR_SIZE)
        self.readonly = bool(as_int(values["info"], 0) & VDISK_READONLY)
        self.features = {name: as_int(values[name], 0) for name in values
                         if name.startswith("feature-")}
        self.persistent = (self.features["feature-persistent"] == 1
                           and not self.k.cmdline_has("xen_blkfront.feature_persistent=0"))
        self.all_pages = self.k.alloc_pages(POOL_PAGES)
        self.pool = list(reversed(self.all_pages))
        self.switch_state(v, XenbusStateConnected)
        self.log(v, "connected", f"{self.vdev}: {self.sectors} sectors"
                                 f"{', read-only' if self.readonly else ''}")

    def close(self, v: "VCPU") -> None:
        """Give back the ring, the channel, every grant and every page."""
        if self.port:
            self.k.close_port(v, self.port)
            self.port = 0
        self._release(v)
        self.requeue = []
        if self.job is not None and not self.job.error:
            self.job.error = "device closed"
            self.job.inflight = 0

    def resume_driver(self, v: "VCPU") -> None:
        """blkfront_resume(): what was in flight is kept to go out again
        (still counted in flight by its job); the old ring and its grants
        are let go of."""
        self.requeue = sorted((req[1], req[0], req[5]) for req in self.inflight.values())
        self.port = 0
        self.failed = ""
        self._release(v)

    def _release(self, v: "VCPU") -> None:
        k = self.k
        # Each page goes back with its grant (once the backend lets go).
        granted = dict(self.pool_grants)
        for req in self.inflight.values():
            granted.update(zip(req[2], req[3]))
        if self.ring_ref >= 0:
            granted[self.ring_pfn] = self.ring_ref
        for pfn, ref in granted.items():
            k.end_access(v, ref, pfn)
        k.free_pages([pfn for pfn in self.all_pages if pfn not in granted])
        self.pool_grants.clear()
        self.inflight.clear()
        self.all_pages, self.pool, self.ring_pfn, self.ring_ref = [], [], 0, -1

    # ------------------------------------------------------------ requests
    def start(self, v: "VCPU", kind: str, size: int, bs: int, name: str) -> BlkJob | str:
        if self.state != XenbusStateConnected:
            return self.failed or "not connected"
        if kind in ("write", "flush") and self.readonly:
            return "Read-only file system"
        if kind == "flush" and not (self.features.get("feature-flush-cache")
                                    or self.features.get("feature-barrier")):
            return "Operation not supported"
        if size > self.sectors * SECTOR_SIZE:
            return f"No space left on device ({self.sectors * SECTOR_SIZE} bytes)"
        self.job = BlkJob(kind, size, bs, name, self.k.now(v))
        return self.job

    def max_pages(self) -> int:
        indirect = self.features.get("feature-max-indirect-segments", 0)
        return min(indirect, INDIRECT_SEGMENTS) if indirect else BLKIF_MAX_SEGMENTS_PER_REQUEST

    def pump(self, v: "VCPU") -> int:
        """Put out as many of the job's requests as the ring and the pool
        take; the CPU time that took."""
        job = self.job
        if job is None or job.error or self.state != XenbusStateConnected:
            return 0
        page = self.k.page(self.ring_pfn)
        ring = self.ring
        made = 0
        while not ring.full():
            if self.requeue:
                if not self._again(v, page, job):
                    break
                made += 1
                continue
            if job.kind == "flush":
                if job.submitted:
                    break
                self._request(v, page, BLKIF_OP_FLUSH_DISKCACHE, 0, [])
                job.submitted = True
            else:
                if job.next >= job.size:
                    break
                length = min(job.bs, job.size - job.next, self.max_pages() * PAGE_SIZE)
                npages = -(-length // PAGE_SIZE)
                indirect = npages > BLKIF_MAX_SEGMENTS_PER_REQUEST
                if len(self.pool) < npages + indirect:
                    break
                op = BLKIF_OP_WRITE if job.kind == "write" else BLKIF_OP_READ
                pages = [self.pool.pop() for _ in range(npages)]
                sector = job.next // SECTOR_SIZE
                if op == BLKIF_OP_WRITE:
                    self._fill(pages, sector, length, job.name)
                self._request(v, page, op, sector, pages, length, indirect)
                job.next += length
            job.inflight += 1
            made += 1
        if made and ring.push(page):
            self.k.notify(v, self.port)
        return made * REQUEST_NS

    def _again(self, v: "VCPU", page, job: BlkJob) -> bool:
        """Put out the first request a restore interrupted, if the pool has
        the pages for it (its job counts it in flight already)."""
        sector, op, length = self.requeue[0]
        npages = -(-length // PAGE_SIZE)
        indirect = npages > BLKIF_MAX_SEGMENTS_PER_REQUEST
        if len(self.pool) < npages + indirect:
            return False
        self.requeue.pop(0)
        pages = [self.pool.pop() for _ in range(npages)]
        if op == BLKIF_OP_WRITE:
            self._fill(pages, sector, length, job.name)
        self._request(v, page, op, sector, pages, length, indirect)
        return True

    def _fill(self, pages: list[int], sector: int, length: int, name: str) -> None:
        k = self.k
        for i, pfn in enumerate(pages):
            frame = k.page(pfn)
            count = min(SECTORS_PER_PAGE, (length - i * PAGE_SIZE) // SECTOR_SIZE)
            frame[:count * SECTOR_SIZE] = b"".join(pattern(name, sector + i * SECTORS_PER_PAGE + s)
                                                   for s in range(count))

    def _grant(self, v: "VCPU", pfn: int, readonly: bool) -> tuple[int, bool]:
        """(gref, whether it is kept past this request)."""
        if self.persistent:
            gref = self.pool_grants.get(pfn)
            if gref is None:
                gref = self.pool_grants[pfn] = self.k.grant_access(v, self.otherend_id, pfn, False)
            return gref, True
        return self.k.grant_access(v, self.otherend_id, pfn, readonly), False

    def _request(self, v: "VCPU", page, op: int, sector: int, pages: list[int],
                 length: int = 0, indirect: bool = False) -> None:
        req_id = self.next_id
        self.next_id = (self.next_id + 1) & 0xFFFFFFFFFFFFFFFF or 1
        temporary = []
        segs = bytearray()
        left = length
        for pfn in pages:
            gref, kept = self._grant(v, pfn, readonly=op == BLKIF_OP_WRITE)
            if not kept:
                temporary.append(gref)
            count = min(SECTORS_PER_PAGE, left // SECTOR_SIZE)
            segs += SEGMENT.pack(gref, 0, count - 1)
            left -= count * SECTOR_SIZE
        entry = bytearray(SLOT_SIZE)
        used = list(pages)
        if indirect:
            frame_pfn = self.pool.pop()
            used.append(frame_pfn)
            frame = self.k.page(frame_pfn)
            frame[:len(segs)] = segs
            gref, kept = self._grant(v, frame_pfn, readonly=True)
            if not kept:
                temporary.append(gref)
            grefs = [gref] + [0] * (BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST - 1)
            assert len(pages) <= SEGS_PER_INDIRECT_FRAME
            INDIRECT.pack_into(entry, 0, BLKIF_OP_INDIRECT, op, len(pages), req_id, sector,
                               self.devid & 0xFFFF, *grefs)
        else:
            REQUEST_HEAD.pack_into(entry, 0, op, len(pages), self.devid & 0xFFFF, req_id, sector)
            entry[REQUEST_HEAD.size:REQUEST_HEAD.size + len(segs)] = segs
        self.ring.produce(page, entry)
        self.inflight[req_id] = (op, sector, used, temporary, len(pages), length)
        self.stats["wr_req" if op == BLKIF_OP_WRITE else
                   "rd_req" if op == BLKIF_OP_READ else "f_req"] += 1

    # ------------------------------------------------------------ responses
    def interrupt(self, v: "VCPU", port: int) -> None:
        """blkif_interrupt(): take every response, then refill the ring."""
        if not self.ring_pfn:
            return
        page = self.k.page(self.ring_pfn)
        ring = self.ring
        while True:
            if ring.response_prod_overflow(page):
                # A backend that lies about its responses (Linux: "illegal
                # number of responses"): the disk is given up.
                self.fatal(v, "the backend's response producer ran past the ring")
                return
            while ring.unconsumed(page):
                req_id, _op, status = RESPONSE.unpack_from(ring.consume(page))
                self._complete(v, req_id, status)
            if not ring.final_check(page):
                break
        self.pump(v)

    def _complete(self, v: "VCPU", req_id: int, status: int) -> None:
        req = self.inflight.pop(req_id, None)
        if req is None:
            self.stats["errors"] += 1
            self.log(v, "bogus response", req_id)
            return
        op, sector, pages, temporary, ndata, _length = req
        for ref in temporary:
            # A backend still holding a grant it answered for keeps that
            # page out of the pool until it lets go.
            self.k.end_access(v, ref)
        job = self.job
        if status != BLKIF_RSP_OKAY:
            self.stats["errors"] += 1
            if job is not None and not job.error:
                job.error = f"I/O error at sector {sector} (status {status})"
        elif job is not None and op in (BLKIF_OP_READ, BLKIF_OP_WRITE):
            data_pages = pages[:ndata]
            length = min(len(data_pages) * PAGE_SIZE, job.size - sector * SECTOR_SIZE)
            job.done_bytes += length
            if job.kind == "verify" and job.bad_sector is None:
                self._verify(data_pages, sector, length, job)
        self.pool.extend(reversed(pages))
        if job is not None:
            job.inflight -= 1

    def _verify(self, pages: list[int], sector: int, length: int, job: BlkJob) -> None:
        k = self.k
        for i, pfn in enumerate(pages):
            frame = k.page(pfn, writable=False)
            count = min(SECTORS_PER_PAGE, (length - i * PAGE_SIZE) // SECTOR_SIZE)
            for s in range(count):
                number = sector + i * SECTORS_PER_PAGE + s
                if frame[s * SECTOR_SIZE:(s + 1) * SECTOR_SIZE] != pattern(job.name, number):
                    job.bad_sector = number
                    return


def _human(n: float, base: int, units: tuple) -> str:
    unit = 0
    while n >= base and unit < len(units) - 1:
        n /= base
        unit += 1
    return f"{n:.1f} {units[unit]}" if n < 10 and unit else f"{n:.0f} {units[unit]}"


def dd_report(nbytes: int, secs: float) -> str:
    """The line GNU dd ends with."""
    text = f"{nbytes} bytes"
    if nbytes >= 1000:
        text += (f" ({_human(nbytes, 1000, ('B', 'kB', 'MB', 'GB', 'TB'))}, "
                 f"{_human(nbytes, 1024, ('B', 'KiB', 'MiB', 'GiB', 'TiB'))})")
    rate = _human(nbytes / secs, 1000, ("B", "kB", "MB", "GB", "TB")) if secs > 0 else "Infinity B"
    return f"{text} copied, {secs:.6g} s, {rate}/s"


def program_op(k, v: "VCPU", kind: str, disk: str, size: int, bs: int):
    """A program's disk I/O: wait for the disk, run the job, report."""
    label = f"{kind} {disk}" if kind == "flush" else f"dd: {disk}"
    dev = k.device("vbd", disk)
    if dev is None or not k.hostname:
        return k.wait(v)
    if isinstance(dev, str):
        k.console_write(v, f"{label}: {dev}\n")
        return 0, True
    job = dev.job
    if job is None:
        job = dev.start(v, kind, size, bs or dev.max_pages() * PAGE_SIZE, k.hostname)
        if isinstance(job, str):
            k.console_write(v, f"{label}: {job}\n")
            return 0, True
    cost = dev.pump(v)
    if not job.finished:
        return k.wait(v, cost)
    dev.job = None
    secs = (k.now(v) - job.started) / 1e9
    if job.error:
        k.console_write(v, f"{label}: {job.error}\n")
    elif kind == "flush":
        k.console_write(v, f"flush {disk}: ok, {secs:.6g} s\n")
    else:
        k.console_write(v, dd_report(job.done_bytes, secs) + "\n")
        if kind == "verify":
            k.console_write(v, "verify ok\n" if job.bad_sector is None else
                              f"verify failed: first bad sector {job.bad_sector}\n")
    return 0, True
