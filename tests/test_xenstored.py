"""xenstored's rules, table by table: each scenario is a list of requests
(who sends it, what, in which transaction) and the exact reply expected,
run through the daemon's one dispatch. "d0" is a privileged connection
(dom0's tools); "d5" and "d6" are unprivileged domains' connections."""

from __future__ import annotations

import pytest

from hv.public.io.xs_wire import (
    XS_CONTROL, XS_DIRECTORY, XS_DIRECTORY_PART, XS_ERROR, XS_GET_DOMAIN_PATH, XS_GET_PERMS,
    XS_INTRODUCE, XS_IS_DOMAIN_INTRODUCED, XS_MKDIR, XS_READ, XS_RESET_WATCHES, XS_RM,
    XS_SET_PERMS, XS_TRANSACTION_END, XS_TRANSACTION_START, XS_UNWATCH, XS_WATCH,
    XS_WATCH_EVENT, XS_WRITE,
)
from hv.xenstore.domain import XsDomain
from hv.xenstore.perms import PERM_READ, PERM_WRITE, Perm, parse_perms
from hv.xenstore.protocol import HEADER, Message, Parser, ProtocolError
from hv.xenstore.xenstored import Xenstored

OK = (None, b"OK\0")


def err(name: str):
    return (XS_ERROR, name.encode() + b"\0")


def ev(path: bytes, token: bytes):
    return ("event", path + b"\0" + token + b"\0")


class Harness:
    def __init__(self):
        self.xs = Xenstored()
        self.conns = {"d0": self.xs.connect("local")}
        for domid in (5, 6):
            self.conns[f"d{domid}"] = self.xs.connect("local", domid, XsDomain(domid, 0))
        self.req = 0

    def send(self, who: str, type_: int, payload: bytes, tx: int = 0):
        """The reply to this request, then the events any connection got."""
        self.req += 1
        conn = self.conns[who]
        self.xs.process(conn, Message(type_, self.req, tx, payload))
        out = []
        for name, c in self.conns.items():
            for data, _ in c.out:
                t, req_id, _tx, n = HEADER.unpack_from(data)
                body = data[16:16 + n]
                if t == XS_WATCH_EVENT:
                    out.append((name, "event", body))
                else:
                    assert c is conn and req_id == self.req
                    out.insert(0, (t, body))
            c.clear_output()
        return out


# (who, type, payload, tx, expected reply, expected events as (who, payload))
SCENARIOS = {
    "write creates parents, read, directory in insertion order": [
        ("d0", XS_WRITE, b"/a/b/c\0v", 0, OK, []),
        ("d0", XS_WRITE, b"/a/z\0", 0, OK, []),
        ("d0", XS_WRITE, b"/a/m\0", 0, OK, []),
        ("d0", XS_READ, b"/a/b/c\0", 0, (XS_READ, b"v"), []),
        ("d0", XS_DIRECTORY, b"/a\0", 0, (XS_DIRECTORY, b"b\0z\0m\0"), []),
        ("d0", XS_READ, b"/a/b\0", 0, (XS_READ, b""), []),
    ],
    "path rules": [
        ("d0", XS_WRITE, b"/a//b\0v", 0, err("EINVAL"), []),
        ("d0", XS_WRITE, b"/a/\0v", 0, err("EINVAL"), []),
        ("d0", XS_WRITE, b"/a b\0v", 0, err("EINVAL"), []),
        ("d0", XS_WRITE, b"/a@b_c-D9\0v", 0, OK, []),
        ("d0", XS_READ, b"/" + b"x" * 2048 + b"\0", 0, err("EINVAL"), []),
        ("d0", XS_MKDIR, b"/local/domain/5/" + b"x" * 2048 + b"\0", 0, OK, []),
        ("d0", XS_MKDIR, b"/local/domain/5/" + b"x" * 2049 + b"\0", 0, err("EINVAL"), []),
        ("d0", XS_MKDIR, b"/local/domain/-1/" + b"x" * 2048 + b"\0", 0, OK, []),   # %5u takes a sign
        ("d0", XS_MKDIR, b"/local/domain/123456/" + b"x" * 2040 + b"\0", 0, err("EINVAL"), []),
        ("d0", XS_WRITE, b"rel\0v", 0, OK, []),
        ("d0", XS_READ, b"/local/domain/0/rel\0", 0, (XS_READ, b"v"), []),
        ("d5", XS_READ, b"x\0", 0, err("EACCES"), []),
        ("d0", XS_READ, b"/a\0extra\0", 0, err("EINVAL"), []),
        ("d0", XS_READ, b"/a", 0, err("EINVAL"), []),
    ],
    "rm": [
        ("d0", XS_WRITE, b"/r/x/y\0", 0, OK, []),
        ("d0", XS_RM, b"/r/missing\0", 0, OK, []),
        ("d0", XS_RM, b"/nope/missing\0", 0, err("ENOENT"), []),
        ("d0", XS_RM, b"/\0", 0, err("EINVAL"), []),
        ("d0", XS_RM, b"/r\0", 0, OK, []),
        ("d0", XS_READ, b"/r/x/y\0", 0, err("ENOENT"), []),
        ("d0", XS_MKDIR, b"/tool\0", 0, OK, []),
    ],
    "permissions: owner, default, entries, inheritance": [
        ("d0", XS_WRITE, b"/p/q\0secret", 0, OK, []),
        ("d5", XS_READ, b"/p/q\0", 0, err("EACCES"), []),
        ("d5", XS_READ, b"/p/none\0", 0, err("EACCES"), []),     # absence not told
        ("d0", XS_SET_PERMS, b"/p\0n0\0r5\0", 0, OK, []),
        ("d5", XS_READ, b"/p/none\0", 0, err("ENOENT"), []),     # may read the parent now
        ("d0", XS_SET_PERMS, b"/p/q\0r0\0w6\0", 0, OK, []),
        ("d5", XS_READ, b"/p/q\0", 0, (XS_READ, b"secret"), []),   # the default: read
        ("d5", XS_WRITE, b"/p/q\0x", 0, err("EACCES"), []),
        ("d6", XS_WRITE, b"/p/q\0y", 0, OK, []),                   # its own entry: write
        ("d6", XS_READ, b"/p/q\0", 0, err("EACCES"), []),
        ("d0", XS_GET_PERMS, b"/p/q\0", 0, (XS_GET_PERMS, b"r0\0w6\0"), []),
        ("d0", XS_SET_PERMS, b"/p\0b5\0", 0, OK, []),
        ("d5", XS_WRITE, b"/p/new/deeper\0z", 0, OK, []),
        ("d5", XS_GET_PERMS, b"/p/new\0", 0, (XS_GET_PERMS, b"b5\0"), []),
        ("d0", XS_WRITE, b"/p/bydom0\0", 0, OK, []),
        ("d0", XS_GET_PERMS, b"/p/bydom0\0", 0, (XS_GET_PERMS, b"b5\0"), []),
        ("d5", XS_SET_PERMS, b"/p/new\0n6\0", 0, err("EPERM"), []),
        ("d5", XS_SET_PERMS, b"/p/new\0n5\0r6\0", 0, OK, []),
        ("d6", XS_SET_PERMS, b"/p/new\0n6\0", 0, err("EACCES"), []),
        ("d0", XS_SET_PERMS, b"/p/new\0x5\0", 0, err("EINVAL"), []),
        ("d0", XS_SET_PERMS, b"/p/new\0r\0", 0, err("EINVAL"), []),
        ("d0", XS_SET_PERMS, b"/p/new\0", 0, err("EINVAL"), []),
        ("d0", XS_SET_PERMS, b"/p/new\0b0x10\0r-1\0", 0, OK, []),
        ("d0", XS_GET_PERMS, b"/p/new\0", 0, (XS_GET_PERMS, b"b16\0r-1\0"), []),
    ],
    "watches: at once, below, tokens, relative, duplicates": [
        ("d0", XS_WATCH, b"/w\0tok\0", 0, OK, [("d0", b"/w\0tok\0")]),
        ("d0", XS_WATCH, b"/w\0tok\0", 0, err("EEXIST"), []),
        ("d0", XS_WATCH, b"/w\0tok2\0", 0, OK, [("d0", b"/w\0tok2\0")]),
        ("d0", XS_WRITE, b"/w/x/y\0", 0, OK, [("d0", b"/w/x/y\0tok\0"), ("d0", b"/w/x/y\0tok2\0")]),
        ("d0", XS_WRITE, b"/wx\0", 0, OK, []),
        ("d0", XS_UNWATCH, b"/w\0tok2\0", 0, OK, []),
        ("d0", XS_UNWATCH, b"/w\0tok2\0", 0, err("ENOENT"), []),
        ("d0", XS_WATCH, b"rel\0r\0", 0, OK, [("d0", b"rel\0r\0")]),
        ("d0", XS_WRITE, b"/local/domain/0/rel/k\0", 0, OK, [("d0", b"rel/k\0r\0")]),
        # Removing a subtree fires watches on the nodes below only where
        # they name the node exactly; on the top node, as for any change.
        ("d0", XS_WATCH, b"/w/x/y\0exact\0", 0, OK, [("d0", b"/w/x/y\0exact\0")]),
        ("d0", XS_RM, b"/w\0", 0, OK, [("d0", b"/w/x/y\0exact\0"), ("d0", b"/w\0tok\0")]),
        ("d0", XS_WATCH, b"/w\0", 0, err("EINVAL"), []),
        ("d0", XS_WATCH, b"bad path\0t\0", 0, err("EINVAL"), []),
        ("d0", XS_RESET_WATCHES, b"", 0, OK, []),
        ("d0", XS_WRITE, b"/local/domain/0/rel/k\0", 0, OK, []),
    ],
    "watch events only for those who may read": [
        ("d0", XS_WRITE, b"/s/node\0", 0, OK, []),
        ("d5", XS_WATCH, b"/s\0t5\0", 0, OK, [("d5", b"/s\0t5\0")]),
        ("d0", XS_WRITE, b"/s/node\0v", 0, OK, []),
        ("d0", XS_SET_PERMS, b"/s/node\0n0\0r5\0", 0, OK, [("d5", b"/s/node\0t5\0")]),
        ("d0", XS_WRITE, b"/s/node\0w", 0, OK, [("d5", b"/s/node\0t5\0")]),
        ("d0", XS_SET_PERMS, b"/s/node\0n0\0", 0, OK, [("d5", b"/s/node\0t5\0")]),   # losing it too
        ("d0", XS_WRITE, b"/s/node\0x", 0, OK, []),
    ],
    "special watches": [
        ("d0", XS_WATCH, b"@releaseDomain\0r\0", 0, OK, [("d0", b"@releaseDomain\0r\0")]),
        ("d5", XS_WATCH, b"@introduceDomain\0i\0", 0, OK, [("d5", b"@introduceDomain\0i\0")]),
        ("d5", XS_SET_PERMS, b"@introduceDomain\0n0\0r5\0", 0, err("EACCES"), []),
        ("d0", XS_SET_PERMS, b"@introduceDomain\0n0\0r5\0", 0, OK, []),
        ("d0", XS_SET_PERMS, b"@other\0n0\0", 0, err("EINVAL"), []),
    ],
    "transactions": [
        ("d0", XS_WRITE, b"/t/a\0one", 0, OK, []),
        ("d0", XS_WATCH, b"/t\0tw\0", 0, OK, [("d0", b"/t\0tw\0")]),
        ("d0", XS_TRANSACTION_START, b"\0", 0, (XS_TRANSACTION_START, b"1\0"), []),
        ("d0", XS_READ, b"/t/a\0", 1, (XS_READ, b"one"), []),
        ("d0", XS_WRITE, b"/t/b\0two", 1, OK, []),                         # no event yet
        ("d0", XS_READ, b"/t/b\0", 0, err("ENOENT"), []),                  # not outside
        ("d0", XS_READ, b"/t/b\0", 1, (XS_READ, b"two"), []),
        ("d0", XS_TRANSACTION_END, b"T\0", 1, OK, [("d0", b"/t/b\0tw\0")]),
        ("d0", XS_READ, b"/t/b\0", 0, (XS_READ, b"two"), []),
        ("d0", XS_TRANSACTION_START, b"\0", 0, (XS_TRANSACTION_START, b"2\0"), []),
        ("d0", XS_READ, b"/t/a\0", 2, (XS_READ, b"one"), []),
        ("d5", XS_READ, b"/t/a\0", 0, err("EACCES"), []),
        ("d0", XS_WRITE, b"/t/a\0changed", 0, OK, [("d0", b"/t/a\0tw\0")]),
        ("d0", XS_WRITE, b"/t/c\0three", 2, OK, []),
        ("d0", XS_TRANSACTION_END, b"T\0", 2, err("EAGAIN"), []),
        ("d0", XS_READ, b"/t/c\0", 0, err("ENOENT"), []),
        ("d0", XS_TRANSACTION_END, b"T\0", 2, err("ENOENT"), []),          # it is over
        ("d0", XS_TRANSACTION_START, b"\0", 0, (XS_TRANSACTION_START, b"3\0"), []),
        ("d0", XS_WRITE, b"/t/d\0four", 3, OK, []),
        ("d0", XS_TRANSACTION_END, b"F\0", 3, OK, []),
        ("d0", XS_READ, b"/t/d\0", 0, err("ENOENT"), []),
        ("d0", XS_TRANSACTION_END, b"X\0", 0, err("EINVAL"), []),
        ("d0", XS_TRANSACTION_END, b"T\0", 0, err("ENOENT"), []),
        ("d0", XS_READ, b"/t/a\0", 77, err("ENOENT"), []),
        ("d0", XS_TRANSACTION_START, b"\0", 0, (XS_TRANSACTION_START, b"4\0"), []),
        ("d0", XS_TRANSACTION_START, b"\0", 4, err("EBUSY"), []),
        ("d0", XS_RM, b"/t/a\0", 4, OK, []),
        ("d0", XS_WRITE, b"/u/z\0", 0, OK, []),                           # a node it never saw
        ("d0", XS_TRANSACTION_END, b"T\0", 4, OK, [("d0", b"/t/a\0tw\0")]),
        ("d0", XS_DIRECTORY, b"/t\0", 0, (XS_DIRECTORY, b"b\0"), []),
        # A change to the parent of a node it removed (a new child) conflicts.
        ("d0", XS_TRANSACTION_START, b"\0", 0, (XS_TRANSACTION_START, b"5\0"), []),
        ("d0", XS_RM, b"/t/b\0", 5, OK, []),
        ("d0", XS_WRITE, b"/t/new\0", 0, OK, [("d0", b"/t/new\0tw\0")]),
        ("d0", XS_TRANSACTION_END, b"T\0", 5, err("EAGAIN"), []),
    ],
    "a transaction that read a missing node conflicts with its creation": [
        ("d0", XS_TRANSACTION_START, b"\0", 0, (XS_TRANSACTION_START, b"1\0"), []),
        ("d0", XS_READ, b"/m/x\0", 1, err("ENOENT"), []),
        ("d0", XS_WRITE, b"/m/x\0" b"1", 0, OK, []),
        ("d0", XS_WRITE, b"/m/y\0", 1, OK, []),
        ("d0", XS_TRANSACTION_END, b"T\0", 1, err("EAGAIN"), []),
    ],
    "domain paths, introduction, control, unknown types": [
        ("d0", XS_GET_DOMAIN_PATH, b"7\0", 0, (XS_GET_DOMAIN_PATH, b"/local/domain/7\0"), []),
        ("d5", XS_GET_DOMAIN_PATH, b"-1\0", 0, (XS_GET_DOMAIN_PATH, b"/local/domain/4294967295\0"), []),
        ("d0", XS_GET_DOMAIN_PATH, b"7", 0, err("EINVAL"), []),
        ("d0", XS_IS_DOMAIN_INTRODUCED, b"0\0", 0, (XS_IS_DOMAIN_INTRODUCED, b"T\0"), []),
        ("d0", XS_IS_DOMAIN_INTRODUCED, b"42\0", 0, (XS_IS_DOMAIN_INTRODUCED, b"F\0"), []),
        ("d5", XS_IS_DOMAIN_INTRODUCED, b"0\0", 0, err("EACCES"), []),
        ("d5", XS_INTRODUCE, b"5\0" b"1\0" b"2\0", 0, err("EACCES"), []),
        ("d5", XS_CONTROL, b"check\0", 0, err("EACCES"), []),
        ("d0", XS_CONTROL, b"check\0", 0, (XS_CONTROL, b"OK\0"), []),
        ("d0", XS_CONTROL, b"nonsense\0", 0, err("EINVAL"), []),
        ("d0", XS_CONTROL, b"quota\0set\0nodes\0" b"500\0", 0, (XS_CONTROL, b"OK\0"), []),
        ("d0", XS_CONTROL, b"quota\0set\0nodes\0-1\0", 0, err("EINVAL"), []),
        ("d0", 20, b"", 0, err("ENOSYS"), []),
        ("d0", 15, b"", 0, err("ENOSYS"), []),
        ("d0", 99, b"", 0, err("ENOSYS"), []),
    ],
}


@pytest.mark.parametrize("name", SCENARIOS)
def test_scenario(name):
    h = Harness()
    for i, (who, type_, payload, tx, want, events) in enumerate(SCENARIOS[name]):
        out = h.send(who, type_, payload, tx)
        reply, got_events = out[0], [(w, body) for w, _, body in out[1:]]
        want_type = want[0] if want[0] is not None else type_
        assert reply == (want_type, want[1]), f"step {i}: {who} {type_} {payload[:40]!r}"
        assert got_events == events, f"step {i}: events"
        assert h.xs.check_store() == []


def test_directory_part_in_pieces():
    h = Harness()
    names = [b"child%04d" % i + b"x" * 50 for i in range(200)]
    for n in names:
        h.send("d0", XS_MKDIR, b"/big/" + n + b"\0")
    got, offset, gens = [], 0, set()
    while True:
        (_, body), = h.send("d0", XS_DIRECTORY_PART, b"/big\0%d\0" % offset)
        gen, _, rest = body.partition(b"\0")
        gens.add(gen)
        parts = rest.split(b"\0")
        if rest.endswith(b"\0\0") or rest == b"\0":
            got += [p for p in parts if p]
            break
        chunk = [p for p in parts if p]
        got += chunk
        offset += sum(len(p) + 1 for p in chunk)
        assert len(body) <= 4096
    assert got == names and len(gens) == 1
    (_, body), = h.send("d0", XS_DIRECTORY_PART, b"/big\0999999\0")
    assert body.endswith(b"\0\0")
    (t, body), = h.send("d0", XS_DIRECTORY_PART, b"/big\0")
    assert (t, body) == err("EINVAL")


def test_a_reply_over_the_payload_limit_is_e2big():
    h = Harness()
    for i in range(300):
        h.send("d0", XS_MKDIR, b"/wide/" + b"n%03d" % i + b"y" * 20 + b"\0")
    assert h.send("d0", XS_DIRECTORY, b"/wide\0") == [err("E2BIG")]


def test_parser_takes_bytes_as_they_come():
    p = Parser()
    msgs = [HEADER.pack(XS_READ, i, 0, 3) + b"/a\0" for i in range(3)]
    stream = b"".join(msgs)
    got = []
    for i in range(0, len(stream), 5):
        got += p.feed(stream[i:i + 5])
    assert [m.req_id for m in got] == [0, 1, 2] and p.pending == 0
    with pytest.raises(ProtocolError):
        p.feed(HEADER.pack(XS_READ, 9, 0, 4097))


def test_permission_strings_read_as_c_reads_them():
    assert parse_perms([b"r5", b"w0x10", b"b010", b"n-1"]) == (
        Perm(PERM_READ, 5), Perm(PERM_WRITE, 16), Perm(PERM_READ | PERM_WRITE, 8),
        Perm(0, 0xFFFFFFFF))
    for bad in (b"", b"r", b"x1", b"r1a", b"r0x"):
        with pytest.raises(Exception):
            parse_perms([bad])
