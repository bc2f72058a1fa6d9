"""xenstore's wire format, apart from the store: a 16-byte header (type,
req_id, tx_id, len) and at most 4096 bytes of payload. The parser takes
bytes as they come (a header split across reads, many messages in one)."""

from __future__ import annotations

import struct
from typing import NamedTuple

from hv.public.io.xs_wire import XENSTORE_PAYLOAD_MAX

HEADER = struct.Struct("<IIII")
OK = b"OK\0"


class Message(NamedTuple):
    type: int
    req_id: int
    tx_id: int
    payload: bytes


class ProtocolError(Exception):
    """The peer sent something that can't be a message: its connection
    goes, nothing else does."""


def encode(type_: int, req_id: int, tx_id: int, payload: bytes) -> bytes:
    return HEADER.pack(type_, req_id, tx_id, len(payload)) + payload


class Parser:
    """Bytes in, whole messages out."""

    __slots__ = ("_buf",)

    def __init__(self):
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[Message]:
        buf = self._buf
        buf += data
        out = []
        at = 0
        size = len(buf)
        while size - at >= 16:
            type_, req_id, tx_id, length = HEADER.unpack_from(buf, at)
            if length > XENSTORE_PAYLOAD_MAX:
                raise ProtocolError(f"a payload of {length} bytes (at most "
                                    f"{XENSTORE_PAYLOAD_MAX})")
            end = at + 16 + length
            if end > size:
                break
            out.append(Message(type_, req_id, tx_id, bytes(buf[at + 16:end])))
            at = end
        if at:
            del buf[:at]
        return out

    def wants(self) -> int:
        """How many more bytes the message in progress needs (at least)."""
        if len(self._buf) < 16:
            return 16 - len(self._buf)
        return 16 + HEADER.unpack_from(self._buf)[3] - len(self._buf)

    @property
    def pending(self) -> int:
        return len(self._buf)


def count_strings(payload: bytes) -> int:
    """xs_count_strings(): how many NULs."""
    return payload.count(0)


def get_strings(payload: bytes) -> list[bytes]:
    """The NUL-terminated strings of ``payload``; anything after the last
    NUL is not one."""
    parts = payload.split(b"\0")
    return parts[:-1]


def onearg(payload: bytes) -> bytes | None:
    """One string with its NUL at the very end, or None."""
    if not payload or payload.find(b"\0") != len(payload) - 1:
        return None
    return payload[:-1]


def atoi(text: bytes) -> int:
    """C's atoi(): leading blanks, a sign, digits; anything else ends it."""
    s = text.decode("latin-1").lstrip(" \t\n\v\f\r")
    sign = 1
    if s[:1] in ("+", "-"):
        sign = -1 if s[0] == "-" else 1
        s = s[1:]
    digits = ""
    for c in s:
        if not c.isdigit() or not c.isascii():
            break
        digits += c
    value = sign * int(digits) if digits else 0
    return value & 0xFFFFFFFF
