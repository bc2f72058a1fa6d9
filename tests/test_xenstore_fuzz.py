"""xenstored under random and mutated messages: every known and unknown
type, transaction ids open and not, payloads built from pieces of real
paths and arguments, then broken (NULs dropped, bytes flipped, cut short,
junk appended, names too long) and plain random bytes. Sent straight to
Xenstored.process and through the UNIX socket, from a fixed seed.

What must hold: nothing raises; each message gets exactly one reply, with
its req_id and tx_id, of its own type or XS_ERROR with a name from
xsd_errors; a header announcing more than 4096 bytes closes that connection
and nothing else; and the store stays a tree (check_store() is empty)."""

from __future__ import annotations

import os
import random
import re
import socket
import struct
import time

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from hv.public.io.xs_wire import (
    XENSTORE_PAYLOAD_MAX, XS_CONTROL, XS_DIRECTORY, XS_DIRECTORY_PART, XS_ERROR,
    XS_GET_DOMAIN_PATH, XS_GET_PERMS, XS_INTRODUCE, XS_IS_DOMAIN_INTRODUCED, XS_MKDIR, XS_READ,
    XS_RELEASE, XS_RESET_WATCHES, XS_RESUME, XS_RM, XS_SET_PERMS, XS_SET_TARGET,
    XS_TRANSACTION_END, XS_TRANSACTION_START, XS_UNWATCH, XS_WATCH, XS_WATCH_EVENT, XS_WRITE,
    XSD_ERRORS,
)
from hv.xenstore.domain import XsDomain
from hv.xenstore.protocol import Message
from hv.xenstore.xenstored import Xenstored

HEADER = struct.Struct("<IIII")
ERROR_NAMES = {name.encode() + b"\0" for _number, name in XSD_ERRORS}
KNOWN_TYPES = (XS_CONTROL, XS_DIRECTORY, XS_READ, XS_GET_PERMS, XS_WATCH, XS_UNWATCH,
               XS_TRANSACTION_START, XS_TRANSACTION_END, XS_INTRODUCE, XS_RELEASE,
               XS_GET_DOMAIN_PATH, XS_WRITE, XS_MKDIR, XS_RM, XS_SET_PERMS,
               XS_IS_DOMAIN_INTRODUCED, XS_RESUME, XS_SET_TARGET, XS_RESET_WATCHES,
               XS_DIRECTORY_PART)
# Types with no handler: events and errors are the daemon's to send, 20 was
# withdrawn, and the rest are beyond the table.
UNKNOWN_TYPES = (XS_WATCH_EVENT, XS_ERROR, 20, 23, 24, 99, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF)

NAME_PIECES = (b"local", b"domain", b"0", b"1", b"5", b"7", b"32767", b"tool", b"xenstored",
               b"vm", b"device", b"vif", b"backend", b"a", b"b", b"c", b"-", b"_", b"x" * 40,
               b"@introduceDomain", b"@releaseDomain", b"@other", b"", b".", b"..", b" ",
               b"\xff", b"A-Z_09")
ARG_PIECES = (b"T", b"F", b"t", b"", b"b0", b"r5", b"w1", b"n0", b"b7", b"r-1", b"b 1", b"r ",
              b"r\t", b"b+2", b"q0", b"b", b"r0x7ff0", b"w010", b"b08", b"b4294967295",
              b"0", b"1", b"5", b"7", b"-1", b"+3", b" 12", b"4294967295", b"99999999999",
              b"check", b"quota", b"help", b"log", b"on", b"off", b"print", b"set", b"nodes",
              b"watches", b"node-size", b"memreport", b"x", b"tok", b"\xff\xfe")
OK_TYPES = {XS_WRITE, XS_MKDIR, XS_RM, XS_SET_PERMS, XS_WATCH, XS_UNWATCH, XS_TRANSACTION_END,
            XS_RESET_WATCHES, XS_INTRODUCE, XS_RELEASE, XS_RESUME, XS_SET_TARGET}


class Fuzzer:
    """Messages from a seeded generator; transaction ids the daemon handed
    out are fed back so that transactions are really used."""

    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self.tx_ids: list[int] = []
        self.known = [b"/local/domain/5", b"/local/domain/7", b"/shared", b"/tool/xenstored"]
        self.watches: list[bytes] = []
        self.req_id = 0

    # ------------------------------------------------------------ pieces
    def name(self) -> bytes:
        r = self.rng
        k = r.random()
        if k < 0.05:                                  # about as long as allowed
            n = r.choice((2046, 2047, 2048, 2049, 3000, 4090))
            return b"/" + b"n" * n
        if k < 0.08:                                  # a domain's home is not counted
            return b"/local/domain/%d/" % r.choice((0, 5, 32767, 99999)) + b"m" * r.choice(
                (2047, 2048, 2049))
        if k < 0.12:
            return r.choice(NAME_PIECES[19:22])       # the special names
        if k < 0.5:                                   # one that exists, or did
            name = r.choice(self.known)
            if r.random() < 0.4:
                name += b"/" + r.choice(NAME_PIECES[:19])
            return name
        parts = [r.choice(NAME_PIECES[:19] if r.random() < 0.9 else NAME_PIECES)
                 for _ in range(r.choice((0, 1, 1, 2, 2, 3, 4, 6)))]
        name = b"/".join(parts)
        if r.random() < 0.85:
            name = b"/" + name
        if r.random() < 0.03:
            name += b"/"
        if r.random() < 0.02:
            name = name.replace(b"/", b"//", 1)
        return name

    def arg(self) -> bytes:
        return self.rng.choice(ARG_PIECES)

    def value(self) -> bytes:
        r = self.rng
        k = r.random()
        if k < 0.6:
            return r.choice((b"", b"v", b"hello", b"1", b"\0\0", b"a\0b"))
        if k < 0.9:
            return r.randbytes(r.randrange(64))
        return r.randbytes(r.randrange(4000))

    def payload(self, type_: int) -> bytes:
        r = self.rng
        one = lambda s: s + b"\0"                     # noqa: E731
        if type_ in (XS_READ, XS_DIRECTORY, XS_GET_PERMS, XS_MKDIR, XS_RM):
            return one(self.name())
        if type_ == XS_WRITE:
            return one(self.name()) + self.value()
        if type_ == XS_SET_PERMS:
            if r.random() < 0.6:
                perms = [r.choice((b"n0", b"b0", b"r0", b"n5", b"b5", b"w7"))] + [
                    r.choice((b"r5", b"w5", b"b7", b"n7", b"r0")) for _ in range(r.randrange(3))]
            else:
                perms = [self.arg() for _ in range(r.randrange(5))]
            return one(self.name()) + b"".join(one(p) for p in perms)
        if type_ == XS_UNWATCH and self.watches and r.random() < 0.6:
            return self.watches.pop(r.randrange(len(self.watches)))
        if type_ in (XS_WATCH, XS_UNWATCH):
            return one(self.name()) + one(r.choice((b"tok", b"t1", b"", b"x" * 50)))
        if type_ == XS_TRANSACTION_START:
            return b"\0"
        if type_ == XS_TRANSACTION_END:
            return one(r.choice((b"T", b"F", b"T", b"X", b"")))
        if type_ in (XS_GET_DOMAIN_PATH, XS_IS_DOMAIN_INTRODUCED, XS_RELEASE, XS_RESUME):
            return one(self.arg())
        if type_ == XS_INTRODUCE:
            return b"".join(one(self.arg()) for _ in range(r.choice((2, 3, 3, 4))))
        if type_ == XS_SET_TARGET:
            return one(self.arg()) + one(self.arg())
        if type_ == XS_DIRECTORY_PART:
            return one(self.name()) + one(r.choice((b"0", b"1", b"5", b"100", b"-1", b"x")))
        if type_ == XS_CONTROL:
            return b"".join(one(self.arg()) for _ in range(r.randrange(4)))
        return b"".join(one(self.arg()) for _ in range(r.randrange(3)))

    def mutate(self, payload: bytes) -> bytes:
        r = self.rng
        k = r.randrange(8)
        if not payload or k == 0:
            return r.randbytes(r.randrange(40))
        if k == 1:                                    # the last NUL missing
            return payload[:-1] if payload.endswith(b"\0") else payload + b"\0"
        if k == 2:                                    # cut short
            return payload[:r.randrange(len(payload))]
        if k == 3:                                    # bits flipped
            data = bytearray(payload)
            for _ in range(r.randrange(1, 4)):
                i = r.randrange(len(data))
                data[i] ^= 1 << r.randrange(8)
            return bytes(data)
        if k == 4:                                    # junk after
            return payload + r.randbytes(r.randrange(1, 20))
        if k == 5:                                    # a NUL inside
            i = r.randrange(len(payload))
            return payload[:i] + b"\0" + payload[i:]
        if k == 6:                                    # NULs only
            return b"\0" * r.randrange(1, 6)
        return payload * 2

    # ------------------------------------------------------------ messages
    def message(self) -> Message:
        r = self.rng
        type_ = r.choice(KNOWN_TYPES) if r.random() < 0.9 else r.choice(UNKNOWN_TYPES)
        payload = self.payload(type_)
        if r.random() < 0.25:
            payload = self.mutate(payload)
        payload = payload[:XENSTORE_PAYLOAD_MAX]
        k = r.random()
        if type_ == XS_TRANSACTION_END and self.tx_ids and k < 0.7:
            tx = self.tx_ids.pop(r.randrange(len(self.tx_ids)))
        elif k < 0.7 or type_ == XS_TRANSACTION_START and k < 0.9:
            tx = 0
        elif k < 0.9 and self.tx_ids:
            tx = r.choice(self.tx_ids)
        else:
            tx = r.choice((1, 2, 3, 0xFFFFFFFF, r.getrandbits(32)))
        self.req_id = (self.req_id + r.choice((1, 1, 1, 0, 2**31))) & 0xFFFFFFFF
        return Message(type_, self.req_id, tx, payload)

    def learn(self, msg: Message, reply_type: int, payload: bytes) -> None:
        if msg.type == XS_TRANSACTION_START and reply_type == XS_TRANSACTION_START:
            self.tx_ids.append(int(payload[:-1]))
            del self.tx_ids[:-8]
        elif msg.type == XS_WATCH and reply_type == msg.type:
            self.watches.append(msg.payload)
            del self.watches[:-16]
        elif msg.type in (XS_WRITE, XS_MKDIR) and reply_type == msg.type:
            name = msg.payload.split(b"\0", 1)[0]
            if name.startswith(b"/") and len(name) < 200:
                self.known.append(name)
                del self.known[:-64]


def seed_store(xenstored: Xenstored) -> None:
    """Homes for the guests (5 and 7) and a node both may write, so that
    their requests get past the permission checks as often as not."""
    conn = xenstored.connect("socket")
    for name, perms in ((b"/local/domain/5", b"n5\0r0\0"), (b"/local/domain/7", b"n7\0"),
                        (b"/shared", b"r0\0b5\0b7\0")):
        for type_, payload in ((XS_MKDIR, name + b"\0"), (XS_SET_PERMS, name + b"\0" + perms)):
            xenstored.process(conn, Message(type_, 1, 0, payload))
            assert _split(conn.out)[-1][3] == b"OK\0"
    xenstored.disconnect(conn)


def check_reply(msg: Message, reply: tuple[int, int, int, bytes]) -> None:
    """One reply, well-formed for its request."""
    type_, req_id, tx_id, payload = reply
    assert (req_id, tx_id) == (msg.req_id, msg.tx_id), (msg, reply)
    assert len(payload) <= XENSTORE_PAYLOAD_MAX
    if type_ == XS_ERROR:
        assert payload in ERROR_NAMES, (msg, reply)
        if msg.type not in KNOWN_TYPES:
            assert payload == b"ENOSYS\0"
        return
    assert msg.type in KNOWN_TYPES and type_ == msg.type, (msg, reply)
    if type_ in OK_TYPES:
        assert payload == b"OK\0", (msg, reply)
    elif type_ == XS_TRANSACTION_START:
        assert re.fullmatch(rb"[1-9][0-9]*\0", payload), (msg, reply)
    elif type_ == XS_GET_DOMAIN_PATH:
        assert re.fullmatch(rb"/local/domain/[0-9]+\0", payload), (msg, reply)
    elif type_ == XS_IS_DOMAIN_INTRODUCED:
        assert payload in (b"T\0", b"F\0"), (msg, reply)
    elif type_ == XS_GET_PERMS:
        assert re.fullmatch(rb"(?:[nrwb]-?[0-9]+\0)+", payload), (msg, reply)
    elif type_ == XS_DIRECTORY:
        assert re.fullmatch(rb"(?:[A-Za-z0-9_@-]+\0)*", payload), (msg, reply)
    elif type_ == XS_DIRECTORY_PART:
        # The offset counts bytes: one inside a name starts with its tail,
        # one on a NUL with an empty name, as in the C daemon.
        assert re.fullmatch(rb"[0-9]+\0(?:[A-Za-z0-9_@-]*\0)*", payload), (msg, reply)
    elif type_ == XS_CONTROL:
        assert payload.endswith(b"\0"), (msg, reply)


def _split(out) -> list[tuple[int, int, int, bytes]]:
    messages = []
    for data, _is_reply in out:
        type_, req_id, tx_id, length = HEADER.unpack_from(data)
        assert len(data) == 16 + length
        messages.append((type_, req_id, tx_id, data[16:]))
    return messages


def _fuzz_directly(xenstored: Xenstored, conns, fuzzer: Fuzzer, count: int) -> None:
    for _ in range(count):
        conn = fuzzer.rng.choice(conns)
        msg = fuzzer.message()
        conn.clear_output()
        xenstored.process(conn, msg)
        messages = _split(conn.out)
        replies = [m for m in messages if m[0] != XS_WATCH_EVENT]
        assert len(replies) == 1, (msg, messages)
        check_reply(msg, replies[0])
        fuzzer.learn(msg, replies[0][0], replies[0][3])
        for type_, req_id, tx_id, payload in messages:
            if type_ == XS_WATCH_EVENT:
                assert (req_id, tx_id) == (0, 0)
                assert re.fullmatch(rb"[^\0]+\0[^\0]*\0", payload), payload
    conn.clear_output()


@pytest.mark.parametrize("seed", range(4))
def test_fuzz_process(seed):
    """Straight to process(): dom0's tools (privileged) and a guest (whose
    requests go through every permission and quota check)."""
    xenstored = Xenstored()
    seed_store(xenstored)
    conns = [xenstored.connect("socket"), xenstored.connect("socket"),
             xenstored.connect("domain", 5, XsDomain(5, 0)),
             xenstored.connect("domain", 7, XsDomain(7, 0))]
    fuzzer = Fuzzer(seed)
    for _batch in range(20):
        _fuzz_directly(xenstored, conns, fuzzer, 1000)
        assert xenstored.check_store() == []
    # The store took real traffic, not only errors.
    assert len(xenstored.db) > 20
    assert xenstored.requests == 20_000 + 6


# ---------------------------------------------------------------- the socket
class _Conn:
    def __init__(self, path: str):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(10)
        self.sock.connect(path)
        self.buf = b""

    def read_messages(self, replies_wanted: int) -> list[tuple[int, int, int, bytes]]:
        """Messages until ``replies_wanted`` replies came (events too)."""
        out, replies = [], 0
        while replies < replies_wanted:
            if len(self.buf) >= 16:
                type_, req_id, tx_id, length = HEADER.unpack_from(self.buf)
                assert length <= XENSTORE_PAYLOAD_MAX
                if len(self.buf) >= 16 + length:
                    out.append((type_, req_id, tx_id, self.buf[16:16 + length]))
                    self.buf = self.buf[16 + length:]
                    replies += type_ != XS_WATCH_EVENT
                    continue
            chunk = self.sock.recv(65536)
            assert chunk, "the daemon closed a connection that broke no rule"
            self.buf += chunk
        return out

    def closed_by_peer(self) -> bool:
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False

    def close(self):
        self.sock.close()




def test_fuzz_socket(served):
    """Batches pipelined on a few connections, cut into random pieces on
    the way; meanwhile a connection that sends a bad header is closed and
    the others go on."""
    host, path = served
    fuzzer = Fuzzer(1234)
    rng = fuzzer.rng
    conns = [_Conn(path) for _ in range(3)]
    sent_total = 0
    deadline = time.monotonic() + 30
    for batch in range(200):
        conn = rng.choice(conns)
        msgs = [fuzzer.message() for _ in range(rng.choice((1, 10, 64, 200, 300)))]
        stream = b"".join(HEADER.pack(m.type, m.req_id, m.tx_id, len(m.payload)) + m.payload
                          for m in msgs)
        at = 0
        while at < len(stream):
            n = rng.choice((1, 5, 16, 17, 300, 5000, 1 << 20))
            conn.sock.sendall(stream[at:at + n])
            at += n
        messages = conn.read_messages(len(msgs))
        replies = [m for m in messages if m[0] != XS_WATCH_EVENT]
        assert len(replies) == len(msgs)
        for msg, reply in zip(msgs, replies):
            check_reply(msg, reply)
            fuzzer.learn(msg, reply[0], reply[3])
        sent_total += len(msgs)
        if batch % 5 == 4:
            # A header that claims too much: that connection goes, alone.
            bad = _Conn(path)
            header = HEADER.pack(rng.getrandbits(32), rng.getrandbits(32), rng.getrandbits(32),
                                 rng.randrange(XENSTORE_PAYLOAD_MAX + 1, 1 << 32))
            bad.sock.sendall(header + rng.randbytes(rng.randrange(100)))
            assert bad.closed_by_peer()
            bad.close()
        with host.lock:
            assert host.xenstored.check_store() == []
        assert time.monotonic() < deadline
    assert sent_total > 10_000
    # Every connection that broke no rule is still there and answers.
    for i, conn in enumerate(conns):
        name = b"/after-the-fuzz/%d" % i
        conn.sock.sendall(HEADER.pack(XS_WRITE, 77, 0, len(name) + 3) + name + b"\0%d\n" % i
                          + HEADER.pack(XS_READ, 78, 0, len(name) + 1) + name + b"\0")
        replies = [m for m in conn.read_messages(2) if m[0] != XS_WATCH_EVENT]
        assert replies == [(XS_WRITE, 77, 0, b"OK\0"), (XS_READ, 78, 0, b"%d\n" % i)]
        conn.close()
    server = host.servers[0]
    deadline = time.monotonic() + 5
    while server.clients and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.clients == 0
    assert server.faults == []            # no client was dropped for a fault of ours


# ---------------------------------------------------------------- regressions
def test_permission_with_blank_domid_is_einval():
    """strtol() reads no digits from " " and stops on it: EINVAL, as for
    any perm whose number does not end the string."""
    xenstored = Xenstored()
    conn = xenstored.connect("socket")
    xenstored.process(conn, Message(XS_WRITE, 1, 0, b"/p\0v"))
    for i, perm in enumerate((b"r ", b"b\t", b"w+", b"n-", b"r 5 ", b"b0x")):
        conn.clear_output()
        xenstored.process(conn, Message(XS_SET_PERMS, 10 + i, 0, b"/p\0" + perm + b"\0"))
        assert _split(conn.out) == [(XS_ERROR, 10 + i, 0, b"EINVAL\0")], perm
    conn.clear_output()
    xenstored.process(conn, Message(XS_SET_PERMS, 20, 0, b"/p\0r 5\0b+0x7\0"))
    xenstored.process(conn, Message(XS_GET_PERMS, 21, 0, b"/p\0"))
    assert _split(conn.out) == [(XS_SET_PERMS, 20, 0, b"OK\0"),
                                (XS_GET_PERMS, 21, 0, b"r5\0b7\0")]


# ---------------------------------------------------------------- hypothesis
_PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
_SETTINGS = settings(
    max_examples=150 if _PROFILE == "ci" else 3000, derandomize=_PROFILE == "ci",
    database=None, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

_names = st.lists(st.sampled_from(NAME_PIECES), max_size=5).map(lambda p: b"/" + b"/".join(p))
_strings = st.one_of(_names, st.sampled_from(ARG_PIECES), st.binary(max_size=12))
_payloads = st.one_of(
    st.lists(_strings, max_size=5).map(lambda parts: b"".join(p + b"\0" for p in parts)),
    st.tuples(_names, st.binary(max_size=40)).map(lambda t: t[0] + b"\0" + t[1]),
    st.binary(max_size=64))
_messages = st.lists(st.tuples(
    st.one_of(st.sampled_from(KNOWN_TYPES), st.sampled_from(UNKNOWN_TYPES),
              st.integers(0, 2**32 - 1)),
    st.sampled_from((0, 0, 0, 1, 2, 3, 2**32 - 1)),
    st.integers(0, 2**32 - 1),
    st.integers(0, 3), _payloads), min_size=1, max_size=40)


@_SETTINGS
@given(_messages)
def test_fuzz_hypothesis(messages):
    xenstored = Xenstored()
    conns = [xenstored.connect("socket"), xenstored.connect("socket"),
             xenstored.connect("domain", 5, XsDomain(5, 0)),
             xenstored.connect("domain", 7, XsDomain(7, 0))]
    for type_, tx, req_id, who, payload in messages:
        conn = conns[who]
        msg = Message(type_, req_id, tx, payload)
        conn.clear_output()
        xenstored.process(conn, msg)
        replies = [m for m in _split(conn.out) if m[0] != XS_WATCH_EVENT]
        assert len(replies) == 1
        check_reply(msg, replies[0])
    assert xenstored.check_store() == []


def test_introducing_dom0_again_is_ok(served):
    """INTRODUCE of dom0, already introduced at boot, rebinds its channel
    and answers OK, as the C daemon does; the daemon goes on serving."""
    host, path = served
    conn = _Conn(path)
    for i, (payload, answer) in enumerate(((b"0\x000\x005\x00", b"OK\0"),
                                           (b"x\x00y\x007\x00", b"OK\0"),
                                           (b"0\x000\x000\x00", b"EINVAL\0"),
                                           (b"0\x000\x00", b"EINVAL\0"))):
        conn.sock.sendall(HEADER.pack(XS_INTRODUCE, i, 0, len(payload)) + payload)
        (reply,) = conn.read_messages(1)
        assert reply == ((XS_INTRODUCE if answer == b"OK\0" else XS_ERROR), i, 0, answer)
    conn.sock.sendall(HEADER.pack(XS_READ, 9, 0, 21) + b"/local/domain/0/name\0")
    assert conn.read_messages(1) == [(XS_READ, 9, 0, b"Domain-0")]
    with host.lock:
        assert host.xenstored.check_store() == []
    conn.close()


def test_domids_beyond_domid_t(served):
    """Domain ids on the wire are 32 bits; none past Xen's reserved range
    names a domain: such a permission entry is kept (and ignored), and
    INTRODUCE of one fails with EINVAL rather than the daemon."""
    host, path = served
    conn = _Conn(path)
    requests = [
        (XS_WRITE, b"/p\0v", XS_WRITE, b"OK\0"),
        (XS_SET_PERMS, b"/p\0b0\0r70000\0r-1\0w32752\0", XS_SET_PERMS, b"OK\0"),
        (XS_GET_PERMS, b"/p\0", XS_GET_PERMS, b"b0\0r70000\0r-1\0w32752\0"),
        (XS_SET_PERMS, b"/p\0b70000\0", XS_ERROR, b"ENOENT\0"),
        (XS_INTRODUCE, b"70000\x000\x005\x00", XS_ERROR, b"EINVAL\0"),
        (XS_INTRODUCE, b"4294967295\x000\x005\x00", XS_ERROR, b"EINVAL\0"),
        (XS_IS_DOMAIN_INTRODUCED, b"70000\0", XS_IS_DOMAIN_INTRODUCED, b"F\0"),
        (XS_READ, b"/p\0", XS_READ, b"v"),
    ]
    for i, (type_, payload, reply_type, answer) in enumerate(requests):
        conn.sock.sendall(HEADER.pack(type_, i, 0, len(payload)) + payload)
        assert conn.read_messages(1) == [(reply_type, i, 0, answer)], payload
    with host.lock:
        assert host.xenstored.check_store() == []
    conn.close()
