"""The bytes of an `xl save` file, written and read.

Three layers, each as Xen lays it out:

1. xl's header (tools/xl/xl.h, xl_saverestore.c): the 32-byte magic "Xen
   saved domain, xl format\\n \\0 \\r", the byte-order marker 0x01020304,
   mandatory flags (XL_MANDATORY_FLAG_STREAMv2, and XL_MANDATORY_FLAG_JSON
   for a JSON config), optional flags, the optional data's length; then
   the optional data: the config's length (uint32) and the config, JSON
   with its NUL.
2. libxl's stream (docs/specs/libxl-migration-stream.pandoc, version 2,
   what STREAMv2 says follows): the header "LibxlFmt", version, options;
   a LIBXC_CONTEXT record, after which libxc's image follows; an END
   record.
3. libxc's domain image (docs/specs/libxc-migration-stream.pandoc,
   version 3): the image header (marker 0xFFFFFFFFFFFFFFFF, "XENF",
   version 3, options; big-endian), the domain header (x86 PV, 4 KiB
   pages, the Xen version), and records of type, length, body and padding
   to 8 bytes: X86_PV_INFO, STATIC_DATA_END, X86_PV_P2M_FRAMES, PAGE_DATA
   (pfns with their types in the top four bits, then the pages' bytes),
   SHARED_INFO, X86_PV_VCPU_BASIC (struct vcpu_guest_context) per online
   vCPU, and END.

Where this file differs from Xen's:

* The config in xl's header is the libxl JSON that `xl create -n` prints,
  with one key more, "xenlab": the config as this toolstack keeps it
  (with the guest's workload, which libxl's JSON has no place for).
  Restoring reads that key.
* Pages never written (all zeroes) are XALLOC ("allocate only"), with no
  bytes: the restoring side gets them zeroed. libxc sends every page.
* The kernel's own state (hv/guest/kernel_state.py: what a Linux kernel
  would keep in its memory, held here in Python objects) is a record of
  this project's type XENLAB_KERNEL_STATE, 0x7FFF0001, before END. It sits
  in the range the spec keeps for mandatory records, so a libxc that
  does not know it refuses the image, as it must: without it the guest
  cannot go on.
* No X86_TSC_INFO, CPUID or MSR policy, and no extended vCPU records:
  this machine has no TSC modes, CPUID policies or MSRs to carry.

Reading checks everything before anything is built: a file that is not
an xl save file, is cut short, or is of another version is refused with
one line saying which.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field

# xl's header (tools/xl/xl.h).
XL_MAGIC = b"Xen saved domain, xl format\n \0 \r"
XL_BYTEORDER = 0x01020304
XL_MANDATORY_FLAG_JSON = 1 << 0
XL_MANDATORY_FLAG_STREAMv2 = 1 << 1
XL_MANDATORY_FLAG_ALL = XL_MANDATORY_FLAG_JSON | XL_MANDATORY_FLAG_STREAMv2
_XL_HEADER = struct.Struct("<32sIIII")

# libxl's stream.
LIBXL_IDENT = 0x4C6962786C466D74          # "LibxlFmt"
LIBXL_VERSION = 2
_LIBXL_HEADER = struct.Struct(">QII")
REC_LIBXL_END = 0x00000000
REC_LIBXL_LIBXC_CONTEXT = 0x00000001

# libxc's image.
XC_MARKER = 0xFFFFFFFFFFFFFFFF
XC_ID = 0x58454E46                         # "XENF"
XC_VERSION = 3
_XC_IMAGE_HEADER = struct.Struct(">QIIH6x")
DHDR_TYPE_X86_PV = 0x0001
_XC_DOMAIN_HEADER = struct.Struct("<IH2xII")
REC_END = 0x00000000
REC_PAGE_DATA = 0x00000001
REC_X86_PV_INFO = 0x00000002
REC_X86_PV_P2M_FRAMES = 0x00000003
REC_X86_PV_VCPU_BASIC = 0x00000004
REC_SHARED_INFO = 0x00000007
REC_STATIC_DATA_END = 0x00000010
REC_XENLAB_KERNEL_STATE = 0x7FFF0001
REC_OPTIONAL = 0x80000000
# Page types (XEN_DOMCTL_PFINFO_*, in the pfn's top four bits).
PFINFO_NOTAB = 0x0
PFINFO_XALLOC = 0xE
PFINFO_XTAB = 0xF
PFN_MASK = (1 << 52) - 1
# How many pages a PAGE_DATA record carries at most (libxc's batch).
PAGE_BATCH = 1024
PAGE_SIZE = 4096
PAGE_SHIFT = 12
_RECORD = struct.Struct("<II")
_U32 = struct.Struct("<I")


class SaveFileError(ValueError):
    """Not a save file this toolstack can restore: one line saying why."""


@dataclass
class DomainImage:
    """What libxc's image carries of a PV domain."""
    max_pfn: int
    p2m_frames: list[int]                  # pfns of the P2M list's frames
    pages: dict[int, bytes | None]         # pfn -> its bytes, None when all zeroes
    shared_info: bytes
    vcpus: dict[int, bytes]                # vCPU id -> struct vcpu_guest_context
    kernel_state: bytes
    xen_version: tuple[int, int] = (4, 17)
    guest_width: int = 8
    pt_levels: int = 4


@dataclass
class SaveFile:
    config: dict
    mandatory_flags: int
    optional_flags: int
    optional_data_len: int
    image: DomainImage = field(repr=False)


# ---------------------------------------------------------------- writing
def xl_header(config: dict) -> tuple[bytes, int, int, int]:
    """xl's header and optional data for ``config``; and its three numbers
    for "Saving to ... new xl format (info ...)"."""
    data = json.dumps(config, indent=4).encode() + b"\0"
    optional = _U32.pack(len(data)) + data
    mandatory = XL_MANDATORY_FLAG_STREAMv2 | XL_MANDATORY_FLAG_JSON
    header = _XL_HEADER.pack(XL_MAGIC, XL_BYTEORDER, mandatory, 0, len(optional))
    return header + optional, mandatory, 0, len(optional)


def record(rtype: int, body: bytes = b"") -> bytes:
    return _RECORD.pack(rtype, len(body)) + body + bytes(-len(body) % 8)


def libxc_image(image: DomainImage) -> bytes:
    out = [_XC_IMAGE_HEADER.pack(XC_MARKER, XC_ID, XC_VERSION, 0),
           _XC_DOMAIN_HEADER.pack(DHDR_TYPE_X86_PV, PAGE_SHIFT, *image.xen_version),
           record(REC_X86_PV_INFO, struct.pack("<BB6x", image.guest_width, image.pt_levels)),
           record(REC_STATIC_DATA_END),
           record(REC_X86_PV_P2M_FRAMES, struct.pack(f"<II{len(image.p2m_frames)}Q", 0,
                                                     image.max_pfn, *image.p2m_frames))]
    pfns = sorted(image.pages)
    for i in range(0, len(pfns), PAGE_BATCH):
        batch = pfns[i:i + PAGE_BATCH]
        types = [(PFINFO_XALLOC if image.pages[p] is None else PFINFO_NOTAB) << 60 | p for p in batch]
        data = b"".join(image.pages[p] for p in batch if image.pages[p] is not None)
        out.append(record(REC_PAGE_DATA, struct.pack(f"<II{len(batch)}Q", len(batch), 0, *types)
                          + data))
    out.append(record(REC_SHARED_INFO, image.shared_info))
    for vcpu_id in sorted(image.vcpus):
        out.append(record(REC_X86_PV_VCPU_BASIC, struct.pack("<II", vcpu_id, 0) + image.vcpus[vcpu_id]))
    out.append(record(REC_XENLAB_KERNEL_STATE, image.kernel_state))
    out.append(record(REC_END))
    return b"".join(out)


def save_file(config: dict, image: DomainImage) -> tuple[bytes, tuple[int, int, int]]:
    """The whole file, and xl's header numbers."""
    header, mandatory, optional, optional_len = xl_header(config)
    stream = (_LIBXL_HEADER.pack(LIBXL_IDENT, LIBXL_VERSION, 0) + record(REC_LIBXL_LIBXC_CONTEXT)
              + libxc_image(image) + record(REC_LIBXL_END))
    return header + stream, (mandatory, optional, optional_len)


# ---------------------------------------------------------------- reading
class _Reader:
    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0

    def take(self, n: int, what: str) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise SaveFileError(f"truncated: the file ends inside {what}")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def record(self, what: str) -> tuple[int, bytes]:
        rtype, length = _RECORD.unpack(self.take(_RECORD.size, f"a {what} record header"))
        body = self.take(length, f"a {what} record (type {rtype:#x}, {length} bytes)")
        self.take(-length % 8, f"a {what} record's padding")
        return rtype, body


def read_save_file(data: bytes) -> SaveFile:
    r = _Reader(data)
    if len(data) < len(XL_MAGIC) or data[:len(XL_MAGIC)] != XL_MAGIC:
        raise SaveFileError("File has wrong magic number - corrupt or for a different tool?")
    _magic, byteorder, mandatory, optional, optional_len = _XL_HEADER.unpack(
        r.take(_XL_HEADER.size, "xl's header"))
    if byteorder != XL_BYTEORDER:
        raise SaveFileError("File has wrong byte order")
    if mandatory & ~XL_MANDATORY_FLAG_ALL:
        raise SaveFileError(f"Savefile has mandatory flag(s) {mandatory & ~XL_MANDATORY_FLAG_ALL:#x} "
                            "which are not supported; need newer xl")
    if not mandatory & XL_MANDATORY_FLAG_STREAMv2:
        raise SaveFileError("the file holds a legacy (pre-4.6) stream, which this toolstack can't read")
    if not mandatory & XL_MANDATORY_FLAG_JSON:
        raise SaveFileError("the file's config is not libxl JSON, which this toolstack needs")
    optdata = _Reader(r.take(optional_len, "xl's optional data"))
    try:
        (config_len,) = _U32.unpack(optdata.take(4, "the config's length"))
        text = optdata.take(config_len, "the config")
    except SaveFileError:
        raise SaveFileError("Savefile truncated.") from None
    try:
        config = json.loads(text.rstrip(b"\0").decode())
    except (UnicodeDecodeError, ValueError) as e:
        raise SaveFileError(f"the config in the file is not JSON: {e}") from None
    if not isinstance(config, dict) or not isinstance(config.get("xenlab"), dict):
        raise SaveFileError("the config in the file is not one this toolstack wrote (no \"xenlab\" key)")
    image = _read_libxl_stream(r)
    return SaveFile(config, mandatory, optional, optional_len, image)


def _read_libxl_stream(r: _Reader) -> DomainImage:
    ident, version, options = _LIBXL_HEADER.unpack(r.take(_LIBXL_HEADER.size, "libxl's stream header"))
    if ident != LIBXL_IDENT:
        raise SaveFileError(f"Invalid ident: expected {LIBXL_IDENT:#018x}, got {ident:#018x}")
    if version != LIBXL_VERSION:
        raise SaveFileError(f"Invalid Version: Expected {LIBXL_VERSION}, Got {version}")
    if options & 1:
        raise SaveFileError("Unable to handle big endian streams")
    image = None
    while True:
        rtype, _body = r.record("libxl stream")
        if rtype == REC_LIBXL_END:
            break
        if rtype == REC_LIBXL_LIBXC_CONTEXT and image is None:
            image = _read_libxc_image(r)
        elif not rtype & REC_OPTIONAL:
            raise SaveFileError(f"unknown mandatory libxl record type {rtype:#x}")
    if image is None:
        raise SaveFileError("the stream holds no domain image (no LIBXC_CONTEXT record)")
    if r.pos != len(r.data):
        raise SaveFileError(f"{len(r.data) - r.pos} bytes after the stream's END record")
    return image


def _read_libxc_image(r: _Reader) -> DomainImage:
    marker, ident, version, options = _XC_IMAGE_HEADER.unpack(
        r.take(_XC_IMAGE_HEADER.size, "libxc's image header"))
    if marker != XC_MARKER:
        raise SaveFileError(f"Invalid marker: Got {marker:#018x}")
    if ident != XC_ID:
        raise SaveFileError(f"Invalid ID: Expected {XC_ID:#010x}, Got {ident:#010x}")
    if version != XC_VERSION:
        raise SaveFileError(f"Invalid Version: Expected {XC_VERSION}, Got {version}")
    if options & 1:
        raise SaveFileError("Unable to handle big endian streams")
    dtype, page_shift, major, minor = _XC_DOMAIN_HEADER.unpack(
        r.take(_XC_DOMAIN_HEADER.size, "libxc's domain header"))
    if dtype != DHDR_TYPE_X86_PV:
        raise SaveFileError(f"the image is of domain type {dtype:#x}, not x86 PV")
    if page_shift != PAGE_SHIFT:
        raise SaveFileError(f"the image's pages are 2^{page_shift} bytes, not 4 KiB")
    state = _ImageState((major, minor))
    while True:
        rtype, body = r.record("libxc image")
        if rtype == REC_END:
            return state.finish()
        state.take(rtype, body)


class _ImageState:
    """Records as they come, in the order the spec requires."""

    def __init__(self, xen_version: tuple[int, int]):
        self.xen_version = xen_version
        self.pv_info: tuple[int, int] | None = None
        self.max_pfn: int | None = None
        self.p2m_frames: list[int] = []
        self.pages: dict[int, bytes | None] = {}
        self.shared_info: bytes | None = None
        self.vcpus: dict[int, bytes] = {}
        self.kernel_state: bytes | None = None

    def take(self, rtype: int, body: bytes) -> None:
        handler = {REC_X86_PV_INFO: self._pv_info, REC_STATIC_DATA_END: lambda b: None,
                   REC_X86_PV_P2M_FRAMES: self._p2m_frames, REC_PAGE_DATA: self._page_data,
                   REC_SHARED_INFO: self._shared_info, REC_X86_PV_VCPU_BASIC: self._vcpu_basic,
                   REC_XENLAB_KERNEL_STATE: self._kernel_state}.get(rtype)
        if handler is not None:
            handler(body)
        elif not rtype & REC_OPTIONAL:
            raise SaveFileError(f"unknown mandatory record type {rtype:#x} in the domain image")

    def _pv_info(self, body: bytes) -> None:
        if len(body) != 8:
            raise SaveFileError(f"X86_PV_INFO record of {len(body)} bytes, not 8")
        width, levels = body[0], body[1]
        if (width, levels) != (8, 4):
            raise SaveFileError(f"a guest {width * 8} bits wide with {levels}-level page tables "
                                "(only 64-bit, 4-level guests run here)")
        self.pv_info = (width, levels)

    def _p2m_frames(self, body: bytes) -> None:
        if self.pv_info is None:
            raise SaveFileError("X86_PV_P2M_FRAMES before X86_PV_INFO")
        if len(body) < 8 or len(body) % 8:
            raise SaveFileError(f"X86_PV_P2M_FRAMES record of {len(body)} bytes")
        start, end = struct.unpack_from("<II", body)
        frames = list(struct.unpack_from(f"<{len(body) // 8 - 1}Q", body, 8))
        if start != 0 or len(frames) != -(-(end + 1) // (PAGE_SIZE // 8)):
            raise SaveFileError(f"X86_PV_P2M_FRAMES: {len(frames)} frames for pfns {start}..{end}")
        self.max_pfn, self.p2m_frames = end, frames

    def _page_data(self, body: bytes) -> None:
        if self.max_pfn is None:
            raise SaveFileError("PAGE_DATA before X86_PV_P2M_FRAMES")
        if len(body) < 8:
            raise SaveFileError(f"PAGE_DATA record of {len(body)} bytes")
        (count,) = _U32.unpack_from(body)
        if not count or len(body) < 8 + 8 * count:
            raise SaveFileError(f"PAGE_DATA record of {len(body)} bytes for {count} pfns")
        entries = struct.unpack_from(f"<{count}Q", body, 8)
        data = body[8 + 8 * count:]
        at = 0
        for entry in entries:
            pfn, ptype = entry & PFN_MASK, entry >> 60
            if pfn > self.max_pfn:
                raise SaveFileError(f"PAGE_DATA names pfn {pfn:#x}, beyond the P2M's {self.max_pfn:#x}")
            if ptype == PFINFO_NOTAB:
                if at + PAGE_SIZE > len(data):
                    raise SaveFileError(f"PAGE_DATA record short of pfn {pfn:#x}'s bytes")
                self.pages[pfn] = data[at:at + PAGE_SIZE]
                at += PAGE_SIZE
            elif ptype == PFINFO_XALLOC:
                self.pages[pfn] = None
            elif ptype == PFINFO_XTAB:
                self.pages.pop(pfn, None)
            else:
                raise SaveFileError(f"pfn {pfn:#x} has page type {ptype:#x}, which this machine "
                                    "does not have (its guests have no page tables of their own)")
        if at != len(data):
            raise SaveFileError(f"PAGE_DATA record with {len(data) - at} bytes too many")

    def _shared_info(self, body: bytes) -> None:
        if len(body) != PAGE_SIZE:
            raise SaveFileError(f"X86_PV_SHARED_INFO record wrong size: length {len(body)}, "
                                "expected 4096")
        self.shared_info = body

    def _vcpu_basic(self, body: bytes) -> None:
        if self.pv_info is None:
            raise SaveFileError("X86_PV_VCPU_BASIC before X86_PV_INFO")
        from hv.public.xen import VcpuGuestContext
        if len(body) != 8 + VcpuGuestContext.SIZE:
            raise SaveFileError(f"X86_PV_VCPU_BASIC record of {len(body)} bytes, "
                                f"not {8 + VcpuGuestContext.SIZE}")
        (vcpu_id,) = _U32.unpack_from(body)
        self.vcpus[vcpu_id] = body[8:]

    def _kernel_state(self, body: bytes) -> None:
        self.kernel_state = body

    def finish(self) -> DomainImage:
        missing = [name for name, value in (("X86_PV_INFO", self.pv_info),
                                            ("X86_PV_P2M_FRAMES", self.max_pfn),
                                            ("SHARED_INFO", self.shared_info),
                                            ("XENLAB_KERNEL_STATE", self.kernel_state)) if value is None]
        if not self.vcpus:
            missing.append("X86_PV_VCPU_BASIC")
        if missing:
            raise SaveFileError(f"the domain image lacks {', '.join(missing)}")
        if 0 not in self.vcpus:
            raise SaveFileError("the domain image has no context for vCPU 0")
        return DomainImage(self.max_pfn, self.p2m_frames, self.pages, self.shared_info, self.vcpus,
                           self.kernel_state, self.xen_version, *self.pv_info)
