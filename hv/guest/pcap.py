"""Classic libpcap capture files, the format tcpdump -w writes and
Wireshark, tshark and tcpdump read. Virtual time is kept in nanoseconds, so
the writer uses the nanosecond variant of the format (magic 0xa1b23c4d);
the reader takes the microsecond one as well, in either byte order.

A writer is plain data (its path and how many bytes of the file are its
own) plus an open file it can drop and reopen, so a machine holding one
can be pickled. Reopened after a restore, it cuts the file back to what
it had written when the snapshot was taken: replaying from there then
writes the same records again, not a second copy of them."""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass

MAGIC_USEC = 0xA1B2C3D4
MAGIC_NSEC = 0xA1B23C4D
VERSION = (2, 4)
SNAPLEN = 65535
LINKTYPE_ETHERNET = 1

_HEADER = struct.Struct("<IHHiIII")
_RECORD = struct.Struct("<IIII")
NS_PER_SEC = 1_000_000_000


@dataclass(frozen=True)
class PcapRecord:
    ts_ns: int
    data: bytes         # as captured: at most the snap length
    orig_len: int       # as it was on the wire


class PcapWriter:
    def __init__(self, path: str | os.PathLike, snaplen: int = SNAPLEN):
        self.path = os.fspath(path)
        self.snaplen = snaplen
        self.records = 0
        self.active = True
        self._file = open(self.path, "wb")
        self._file.write(_HEADER.pack(MAGIC_NSEC, *VERSION, 0, 0, snaplen, LINKTYPE_ETHERNET))
        self._file.flush()
        self.length = _HEADER.size

    def record(self, ts_ns: int, frame: bytes) -> None:
        if ts_ns < 0:
            raise ValueError(f"capture time {ts_ns} is before the epoch")
        if not self.active:
            raise ValueError(f"capture to {self.path} is closed")
        if self._file is None:
            self._reopen()
        seconds, nanoseconds = divmod(ts_ns, NS_PER_SEC)
        data = bytes(frame[:self.snaplen])
        self._file.write(_RECORD.pack(seconds & 0xFFFFFFFF, nanoseconds, len(data), len(frame)))
        self._file.write(data)
        # a reader (tshark -r, tail -f | tcpdump -r -) sees each record at once
        self._file.flush()
        self.length += _RECORD.size + len(data)
        self.records += 1

    def close(self) -> None:
        self.active = False
        if self._file is not None:
            self._file.close()
            self._file = None

    def _reopen(self) -> None:
        try:
            handle = open(self.path, "r+b")
        except FileNotFoundError:
            # the file went away behind us: start a new one rather than lose frames
            handle = open(self.path, "wb")
            handle.write(_HEADER.pack(MAGIC_NSEC, *VERSION, 0, 0, self.snaplen, LINKTYPE_ETHERNET))
            self.length, self.records = _HEADER.size, 0
        handle.seek(self.length)
        handle.truncate()
        self._file = handle

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_file"] = None
        return state


def read_pcap(path: str | os.PathLike) -> tuple[int, list[PcapRecord]]:
    """(link type, records) of a classic pcap file; ValueError if it is not one."""
    with open(path, "rb") as handle:
        raw = handle.read()
    if len(raw) < _HEADER.size:
        raise ValueError(f"{os.fspath(path)}: {len(raw)} bytes is too short for a pcap header")
    for order in "<>":
        (magic,) = struct.unpack_from(order + "I", raw)
        if magic in (MAGIC_USEC, MAGIC_NSEC):
            break
    else:
        raise ValueError(f"{os.fspath(path)}: not a pcap file (magic {raw[:4].hex()})")
    scale = 1 if magic == MAGIC_NSEC else 1000
    header = struct.Struct(order + "IHHiIII")
    record = struct.Struct(order + "IIII")
    linktype = header.unpack_from(raw)[6]
    records, offset = [], header.size
    while offset < len(raw):
        if len(raw) - offset < record.size:
            raise ValueError(f"{os.fspath(path)}: truncated record header at byte {offset}")
        seconds, fraction, incl_len, orig_len = record.unpack_from(raw, offset)
        offset += record.size
        if len(raw) - offset < incl_len:
            raise ValueError(f"{os.fspath(path)}: truncated record data at byte {offset}")
        records.append(PcapRecord(seconds * NS_PER_SEC + fraction * scale,
                                  raw[offset:offset + incl_len], orig_len))
        offset += incl_len
    return linktype, records
