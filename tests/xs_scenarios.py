"""Scripted xenstore conversations and what Xen 4.17's C xenstored answers.

Every scenario is a list of steps; a step is one request (message type and
raw payload, on connection 0, 1, ... of the scenario, optionally inside a
transaction started earlier) and everything the daemon sent because of it.
tests/test_xenstored_oracle.py replays each scenario against the real daemon
(tests/xswire.py starts it) and holds it to the answers written here; the
same runner can replay them against any other xenstored socket.

What a step's answer is
-----------------------
A tuple of items, each a tuple:

  (TYPE, *strings)             a reply on the step's connection: the message
                               type's name ("WRITE", "ERROR", ...) and the
                               payload cut at every NUL, so b"OK\\0" is
                               ("WRITE", "OK", "") and a READ of b"v" is
                               ("READ", "v"): nothing is lost.
  ("EVENT", conn, path, token, "")
                               a watch event, on connection `conn`.
  ("CLOSED",)                  the daemon closed the connection instead of
                               answering (or it was closed already).
  ("NO_REPLY",)                nothing came within the runner's timeout; the
                               connection is abandoned (later steps on it
                               give ("ABANDONED",)).
  ("BAD_ECHO", text)           the reply did not echo the request's req_id
                               or tx_id (or an event's were not 0).
  ("CLOSED", k), ("NO_REPLY", k), ("STRAY_REPLY", k, ...)
                               connection k, not the step's, was closed, went
                               silent, or answered a request not made.
  ("UNBOUND_TX", name)         the step names a transaction that was never
                               started (its TRANSACTION_START failed).

Items on the step's connection come first, in arrival order (so it matters
whether a watch event comes before or after the reply: C xenstored fires a
write's watches before it acknowledges, and a new watch's first event after
it acknowledges); then events on the other connections, by connection.  The
runner attributes every event to the step that caused it: after each reply it
sends READ "/" on every open connection and waits for that answer, which can
only come after the events queued for that connection before it.

Normalising (class Normaliser; each rule hides one thing two correct
daemons may legitimately answer differently):

  1. A TRANSACTION_START reply's id becomes the symbolic name the step gives
     the transaction (the id itself is the daemon's choice), provided it is a
     decimal number other than 0 that no other open transaction on that
     connection holds -- otherwise it stays as sent, and mismatches.
  2. A DIRECTORY_PART reply's generation count becomes "G1", "G2", ... in the
     order distinct counts first appear in the scenario: only whether two
     counts are equal carries meaning.

Domains
-------
The real daemon runs here with only dom0 in existence (see
tests/c/xenstored_shim.c).  A step whose answer depends on which domains
exist is marked knows_domains=True; comparing two daemons may tolerate
differences there.  Every connection here is a privileged socket connection
(domain 0, no quotas but the message and path sizes).

Recorded facts worth knowing (all from the real daemon, Xen 4.17):
  - A path may be at most 2048 characters, not counting a leading
    "/local/domain/<up to 5 digits>/"; XENSTORE_ABS_PATH_MAX (3072) is not
    what the C daemon checks.  Relative paths are taken below
    /local/domain/0 on a socket connection, so count from there.
  - A message whose header says more than 4096 payload bytes is not
    answered: the connection is dropped.  A 3000-byte value from dom0 is fine
    (the 2048-byte node quota binds unprivileged domains only), as are more
    than 5 permissions, 128 watches or 10 transactions.
  - RM of a missing node answers OK if its parent exists, ENOENT if not;
    RM "/" is EINVAL.
  - SET_PERMS reads domain ids with strtol(..., 0): "b0x0", "b00" and "b+0"
    mean domain 0.  An owner that is not an existing domain gives ENOENT.
    Anything after the last NUL is ignored.
  - A watch path starting with "@" is accepted whatever follows; watches
    compare canonical paths, so "x" and "/local/domain/0/x" with one token
    are duplicates (EEXIST) and UNWATCH takes either spelling.
  - WATCH and UNWATCH ignore the header's tx_id, even an unknown one; other
    requests with an unknown tx_id fail ENOENT.
  - DIRECTORY of a node whose child list exceeds 4096 bytes is E2BIG;
    DIRECTORY_PART's offset is a byte offset and may fall inside a name.
  - RM fires the watches at or above the removed node with its path, and
    the watches naming a removed descendant exactly with theirs, deepest
    first; nothing for other watches below.
  - Watch events longer than 4096 bytes are silently dropped.
  - A request 4.17 turns down without setting errno is answered with the
    name of whatever errno last held, or, when that is 0, not at all: the
    daemon aborts on an assertion.  That is READ, DIRECTORY, GET_PERMS, MKDIR
    and RM with anything but exactly one NUL at the end of the payload (MKDIR
    and RM then say ENOMEM when errno held ENOENT), and SET_PERMS on an @
    name other than @introduceDomain and @releaseDomain.  Such steps are
    marked stale_errno=True: they expect the error meant, and any error
    matches.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from hv.public.io.xs_wire import (
    XS_CONTROL, XS_DIRECTORY, XS_DIRECTORY_PART, XS_ERROR, XS_GET_DOMAIN_PATH, XS_GET_PERMS,
    XS_IS_DOMAIN_INTRODUCED, XS_MKDIR, XS_READ, XS_RELEASE, XS_RESET_WATCHES, XS_RESUME, XS_RM,
    XS_SET_PERMS, XS_TRANSACTION_END, XS_TRANSACTION_START, XS_TYPE_COUNT, XS_UNWATCH, XS_WATCH,
    XS_WATCH_EVENT, XS_WRITE, XSD_TYPE_NAMES,
)

Item = tuple
Answer = tuple  # of Items


def _b(text: str | bytes) -> bytes:
    return text.encode() if isinstance(text, str) else text


def _nul(*parts: str | bytes) -> bytes:
    return b"".join(_b(p) + b"\0" for p in parts)


# ---------------------------------------------------------------- requests
@dataclass(frozen=True)
class Req:
    op: int
    payload: bytes
    conn: int = 0
    # A transaction: the name a TRANSACTION_START step gave it (sent as the
    # id that step received), or a literal id.
    tx: str | int = 0
    # On TRANSACTION_START: the name later steps use for its id.
    start: str | None = None
    knows_domains: bool = False
    # 4.17 answers this request with whatever errno last held (see
    # stale_errno() below): any error is as good as the one written.
    stale_errno: bool = False

    def describe(self) -> str:
        name = XSD_TYPE_NAMES.get(self.op, f"TYPE{self.op}")
        shown = self.payload if len(self.payload) <= 60 else (
            self.payload[:40] + b"..." + self.payload[-12:] + f" ({len(self.payload)} bytes)".encode())
        where = f" conn {self.conn}" if self.conn else ""
        tx = f" tx {self.tx}" if self.tx else ""
        return f"{name}{where}{tx} {shown!r}"


def raw(op: int, payload: bytes = b"", **kw) -> Req:
    return Req(op, payload, **kw)


def read(path, **kw) -> Req:
    return Req(XS_READ, _nul(path), **kw)


def write(path, value="", **kw) -> Req:
    return Req(XS_WRITE, _nul(path) + _b(value), **kw)


def mkdir(path, **kw) -> Req:
    return Req(XS_MKDIR, _nul(path), **kw)


def rm(path, **kw) -> Req:
    return Req(XS_RM, _nul(path), **kw)


def directory(path, **kw) -> Req:
    return Req(XS_DIRECTORY, _nul(path), **kw)


def directory_part(path, offset, **kw) -> Req:
    return Req(XS_DIRECTORY_PART, _nul(path, str(offset)), **kw)


def get_perms(path, **kw) -> Req:
    return Req(XS_GET_PERMS, _nul(path), **kw)


def set_perms(path, *perms, **kw) -> Req:
    return Req(XS_SET_PERMS, _nul(path, *perms), **kw)


def watch(path, token, **kw) -> Req:
    return Req(XS_WATCH, _nul(path, token), **kw)


def unwatch(path, token, **kw) -> Req:
    return Req(XS_UNWATCH, _nul(path, token), **kw)


def tx_start(name: str, **kw) -> Req:
    return Req(XS_TRANSACTION_START, b"\0", start=name, **kw)


def tx_end(tx: str | int, commit: bool = True, **kw) -> Req:
    return Req(XS_TRANSACTION_END, b"T\0" if commit else b"F\0", tx=tx, **kw)


def get_domain_path(domid, **kw) -> Req:
    return Req(XS_GET_DOMAIN_PATH, _nul(str(domid)), **kw)


def is_introduced(domid, **kw) -> Req:
    return Req(XS_IS_DOMAIN_INTRODUCED, _nul(str(domid)), **kw)


def control(*words, **kw) -> Req:
    return Req(XS_CONTROL, _nul(*words), **kw)


# ----------------------------------------------------------------- answers
def ok(op_name: str) -> Item:
    return (op_name, "OK", "")


def err(name: str) -> Item:
    return ("ERROR", name, "")


def value(v: str) -> Item:
    """A READ reply: the bare value."""
    return ("READ", *v.split("\0"))


def strings(op_name: str, *parts: str) -> Item:
    """A reply made of NUL-terminated strings."""
    return (op_name, *parts, "")


def listing(*names: str) -> Item:
    return strings("DIRECTORY", *names)


def perms(*p: str) -> Item:
    return strings("GET_PERMS", *p)


def part(gen: str, *names: str, done: bool = True) -> Item:
    """A DIRECTORY_PART reply; a complete list ends with an empty name."""
    return strings("DIRECTORY_PART", gen, *names, *([""] if done else []))


def started(name: str) -> Item:
    return strings("TRANSACTION_START", name)


def ev(path: str, token: str, conn: int = 0) -> Item:
    return ("EVENT", conn, path, token, "")


CLOSED: Item = ("CLOSED",)


# --------------------------------------------------------------- scenarios
@dataclass(frozen=True)
class Step:
    req: Req
    expect: Answer

    @property
    def knows_domains(self) -> bool:
        return self.req.knows_domains

    @property
    def stale_errno(self) -> bool:
        return self.req.stale_errno


@dataclass(frozen=True)
class Scenario:
    name: str
    doc: str
    steps: tuple[Step, ...] = field(repr=False)

    @property
    def conns(self) -> int:
        return 1 + max(s.req.conn for s in self.steps)

    def expected(self) -> list[Answer]:
        return [s.expect for s in self.steps]


def stale_errno(req: Req, meant: str = "EINVAL") -> list[tuple]:
    """Rows for a request C xenstored 4.17 rejects without setting errno: it
    answers with the name of whatever errno last held, and if that is 0 it
    answers nothing and aborts.  A READ of a missing node just before leaves
    ENOENT there, which keeps the daemon alive; the table writes the error
    meant (later Xen answers it), and any error is taken as a match."""
    return [(read("/no-such-node"), err("ENOENT")),
            (replace(req, stale_errno=True), err(meant))]


def scenario(name: str, doc: str, *rows) -> Scenario:
    """rows: (request, *items it is answered with)."""
    return Scenario(name, doc, tuple(Step(r[0], tuple(r[1:])) for r in rows))


# -------------------------------------------------------------- normaliser
_TX_ID = re.compile(r"[1-9][0-9]{0,9}")
_GEN = re.compile(r"[0-9]+")


class Normaliser:
    """Per-run state for the rules in the module docstring."""

    def __init__(self) -> None:
        self.generations: dict[str, str] = {}

    def tx_reply(self, item: Item, name: str, open_ids: set[int]) -> tuple[Item, int | None]:
        """Rule 1.  Returns the item and the id it carried (None if unusable)."""
        if (len(item) == 3 and item[2] == "" and _TX_ID.fullmatch(item[1])
                and int(item[1]) < 2**32 and int(item[1]) not in open_ids):
            return ("TRANSACTION_START", name, ""), int(item[1])
        return item, None

    def directory_part(self, item: Item) -> Item:
        """Rule 2."""
        if len(item) >= 3 and _GEN.fullmatch(item[1]):
            gen = self.generations.setdefault(item[1], f"G{len(self.generations) + 1}")
            return (item[0], gen, *item[2:])
        return item


def decode(payload: bytes) -> tuple[str, ...]:
    return tuple(payload.decode("utf-8", "surrogateescape").split("\0"))


def reply_item(msg_type: int, payload: bytes) -> Item:
    return (XSD_TYPE_NAMES.get(msg_type, f"TYPE{msg_type}"), *decode(payload))


def event_item(conn: int, payload: bytes) -> Item:
    return ("EVENT", conn, *decode(payload))


def render(item: Item) -> str:
    """One item as the table would write it."""
    def clip(s):
        return repr(s) if len(s) <= 48 else f"{s[:20]!r}...{s[-8:]!r} ({len(s)} chars)"
    if item[0] == "EVENT":
        return f"EVENT on conn {item[1]}: " + " | ".join(clip(s) for s in item[2:])
    return " | ".join([item[0], *(clip(s) for s in item[1:])])


# ===================================================================== TABLE
LONG = "a" * 2047          # with the leading "/": the longest plain path
D0 = "/local/domain/0"
BIG_NAMES = [f"c{i:02d}" + "x" * 147 for i in range(30)]    # 150 chars each

SCENARIOS: list[Scenario] = [
    # ------------------------------------------------------------- paths
    scenario(
        "path_characters",
        "Letters, digits and -/_@ only.",
        (write("/ok-_@AZaz09", "v"), ok("WRITE")),
        (read("/ok-_@AZaz09"), value("v")),
        (write("/a.b", "v"), err("EINVAL")),
        (write("/a b", "v"), err("EINVAL")),
        (write("/a:b", "v"), err("EINVAL")),
        (write("/caf\u00e9", "v"), err("EINVAL")),
        (mkdir("/a,b"), err("EINVAL")),
        (read("/a.b"), err("EINVAL")),
        (rm("/a~b"), err("EINVAL")),
    ),
    scenario(
        "path_shape",
        "Absolute paths need one leading slash, no doubled or trailing one.",
        (read("/"), value("")),
        (write("/x", "v"), ok("WRITE")),
        (read("/x/"), err("EINVAL")),
        (read("//x"), err("EINVAL")),
        (write("/x//y", "v"), err("EINVAL")),
        (write("/x/", "v"), err("EINVAL")),
        (directory("/x//"), err("EINVAL")),
        (read("//"), err("EINVAL")),
        # An empty path is relative: "/local/domain/0/", with its trailing slash.
        (read(""), err("EINVAL")),
        (read("@x"), err("EINVAL")),
    ),
    scenario(
        "path_length",
        "2048 characters, past any /local/domain/<domid>/ prefix.",
        (write("/" + LONG, "v"), ok("WRITE")),
        (read("/" + LONG), value("v")),
        (write("/" + LONG + "b", "v"), err("EINVAL")),
        (read("/" + "a" * 3071), err("EINVAL")),
        (write(f"{D0}/" + "b" * 2048, "v"), ok("WRITE")),
        (write(f"{D0}/" + "b" * 2049, "v"), err("EINVAL")),
        (write("/local/domain/7/" + "c" * 2048, "v"), ok("WRITE")),
        (write("/local/domain/99999/" + "c" * 2048, "v"), ok("WRITE")),
        # Six digits are no domain id: the whole path counts.
        (write("/local/domain/123456/" + "c" * 2030, "v"), err("EINVAL")),
        (write("/local/domain/123456/" + "c" * 2027, "v"), ok("WRITE")),
        # Relative: below /local/domain/0/.
        (read("d" * 2048), err("ENOENT")),
        (read("d" * 2049), err("EINVAL")),
        (watch("/" + LONG + "b", "t"), err("EINVAL")),
        (watch("@" + "w" * 2047, "t"), ok("WATCH"), ev("@" + "w" * 2047, "t")),
        (watch("@" + "w" * 2048, "t"), err("EINVAL")),
    ),
    scenario(
        "relative_paths",
        "A socket connection's relative paths live below /local/domain/0.",
        (write("rel", "v"), ok("WRITE")),
        (read(f"{D0}/rel"), value("v")),
        (read("rel"), value("v")),
        (directory(D0), listing("rel")),
        (directory("/local/domain"), listing("0")),
        (mkdir("rel/sub"), ok("MKDIR")),
        (directory("rel"), listing("sub")),
        (get_perms("rel/sub"), perms("n0")),
        (directory_part("rel", 0), part("G1", "sub")),
        (rm("rel"), ok("RM")),
        (read(f"{D0}/rel"), err("ENOENT")),
        (read("rel/sub"), err("ENOENT")),
    ),
    # ------------------------------------------- read, write, mkdir, rm
    scenario(
        "write_creates_parents",
        "Missing parents appear, empty and with their parent's permissions.",
        (write("/p/q/r", "v"), ok("WRITE")),
        (read("/p/q"), value("")),
        (read("/p"), value("")),
        (directory("/p"), listing("q")),
        (get_perms("/p/q"), perms("n0")),
        (write("/p/q/r", "w"), ok("WRITE")),
        (read("/p/q/r"), value("w")),
        (write("/p/q", "mid"), ok("WRITE")),
        (directory("/p/q"), listing("r")),
        (read("/p/q"), value("mid")),
    ),
    scenario(
        "write_values",
        "A value is the bytes after the path's NUL: empty, binary, NULs kept.",
        (write("/v", ""), ok("WRITE")),
        (read("/v"), value("")),
        (write("/v", "a\0b\0"), ok("WRITE")),
        (read("/v"), value("a\0b\0")),
        (write("/v", b"\x01\x7f"), ok("WRITE")),
        (read("/v"), value("\x01\x7f")),
        (raw(XS_WRITE, b"/v"), err("EINVAL")),
        (raw(XS_WRITE, b""), err("EINVAL")),
        (read("/v"), value("\x01\x7f")),
    ),
    scenario(
        "mkdir",
        "MKDIR of an existing node succeeds and changes nothing.",
        (mkdir("/m"), ok("MKDIR")),
        (read("/m"), value("")),
        (write("/m", "keep"), ok("WRITE")),
        (mkdir("/m"), ok("MKDIR")),
        (read("/m"), value("keep")),
        (mkdir("/m/a/b"), ok("MKDIR")),
        (directory("/m"), listing("a")),
        (directory("/m/a"), listing("b")),
    ),
    scenario(
        "rm",
        "RM takes the subtree; a missing node is fine only if its parent exists.",
        (mkdir("/r/a/b"), ok("MKDIR")),
        (rm("/r/a/missing"), ok("RM")),
        (rm("/r/nope/missing"), err("ENOENT")),
        (rm("/r/a"), ok("RM")),
        (read("/r/a/b"), err("ENOENT")),
        (read("/r/a"), err("ENOENT")),
        (directory("/r"), listing()),
        (rm("/"), err("EINVAL")),
        (rm("/r"), ok("RM")),
        (rm("/r"), ok("RM")),
        (read("/r"), err("ENOENT")),
    ),
    scenario(
        "missing_nodes",
        "Every read of a missing node is ENOENT.",
        (read("/nope"), err("ENOENT")),
        (read("/nope/deeper"), err("ENOENT")),
        (directory("/nope"), err("ENOENT")),
        (directory_part("/nope", 0), err("ENOENT")),
        (get_perms("/nope"), err("ENOENT")),
        (set_perms("/nope", "b0"), err("ENOENT")),
    ),
    # -------------------------------------------------------- directories
    scenario(
        "directory_order",
        "Children are listed in the order they were created.",
        (write("/d/zeta"), ok("WRITE")),
        (write("/d/alpha"), ok("WRITE")),
        (mkdir("/d/mid"), ok("MKDIR")),
        (write("/d/beta"), ok("WRITE")),
        (directory("/d"), listing("zeta", "alpha", "mid", "beta")),
        (rm("/d/alpha"), ok("RM")),
        (write("/d/alpha"), ok("WRITE")),
        (directory("/d"), listing("zeta", "mid", "beta", "alpha")),
        (directory("/d/zeta"), listing()),
    ),
    scenario(
        "directory_part",
        "The generation count changes with the child list, not a child's value.",
        (write("/dp/one"), ok("WRITE")),
        (write("/dp/two"), ok("WRITE")),
        (write("/dp/three"), ok("WRITE")),
        (directory_part("/dp", 0), part("G1", "one", "two", "three")),
        (directory_part("/dp", 4), part("G1", "two", "three")),
        # A byte offset, even inside a name.
        (directory_part("/dp", 5), part("G1", "wo", "three")),
        (directory_part("/dp", 14), part("G1")),
        (directory_part("/dp", 1000), part("G1")),
        (directory_part("/dp", "abc"), part("G1", "one", "two", "three")),
        (write("/dp/one", "x"), ok("WRITE")),
        (directory_part("/dp", 0), part("G1", "one", "two", "three")),
        (write("/dp/four"), ok("WRITE")),
        (directory_part("/dp", 0), part("G2", "one", "two", "three", "four")),
        (directory_part("/dp/one", 0), part("G3")),
        (raw(XS_DIRECTORY_PART, b"/dp\0"), err("EINVAL")),
        (raw(XS_DIRECTORY_PART, b"/dp\x000\x00extra\0"), err("EINVAL")),
    ),
    scenario(
        "directory_too_big",
        "A child list over 4096 bytes: DIRECTORY is E2BIG, DIRECTORY_PART pages it.",
        *[(write(f"/big/{n}"), ok("WRITE")) for n in BIG_NAMES],
        (directory("/big"), err("E2BIG")),
        (directory_part("/big", 0), part("G1", *BIG_NAMES[:27], done=False)),
        (directory_part("/big", 27 * 151), part("G1", *BIG_NAMES[27:])),
    ),
    # -------------------------------------------------------- permissions
    scenario(
        "perms_owner_and_default",
        "A node takes its parent's permissions; dom0 may set any.",
        (get_perms("/"), perms("n0")),
        (write("/pm", "v"), ok("WRITE")),
        (get_perms("/pm"), perms("n0")),
        (set_perms("/pm", "b0"), ok("SET_PERMS")),
        (get_perms("/pm"), perms("b0")),
        (write("/pm/child"), ok("WRITE")),
        (get_perms("/pm/child"), perms("b0")),
        (set_perms("/pm", "r0", "w0"), ok("SET_PERMS")),
        (get_perms("/pm"), perms("r0", "w0")),
        (get_perms("/pm/child"), perms("b0")),
        (set_perms("/pm", "n0", "r0", "r0", "b0", "w0", "n0", "r0"), ok("SET_PERMS")),
        (get_perms("/pm"), perms("n0", "r0", "r0", "b0", "w0", "n0", "r0")),
        (set_perms("/pm", *["r0"] * 100), ok("SET_PERMS")),
        (get_perms("/pm"), perms(*["r0"] * 100)),
    ),
    scenario(
        "perms_strings",
        "<r|w|b|n><domid>, the domid as C's strtol(..., 0) reads it.",
        (write("/ps"), ok("WRITE")),
        (set_perms("/ps", "x0"), err("EINVAL")),
        (set_perms("/ps", "B0"), err("EINVAL")),
        (set_perms("/ps", "b"), err("EINVAL")),
        (set_perms("/ps", "b0x"), err("EINVAL")),
        (set_perms("/ps", "b0q"), err("EINVAL")),
        (set_perms("/ps", ""), err("EINVAL")),
        (set_perms("/ps", "b0", "r"), err("EINVAL")),
        (raw(XS_SET_PERMS, b"/ps\0"), err("EINVAL")),
        (raw(XS_SET_PERMS, b"/ps"), err("EINVAL")),
        (raw(XS_SET_PERMS, b""), err("EINVAL")),
        (get_perms("/ps"), perms("n0")),
        (set_perms("/ps", "b0x0"), ok("SET_PERMS")),
        (get_perms("/ps"), perms("b0")),
        (set_perms("/ps", "r00"), ok("SET_PERMS")),
        (get_perms("/ps"), perms("r0")),
        (set_perms("/ps", "w+0"), ok("SET_PERMS")),
        (get_perms("/ps"), perms("w0")),
        # Whatever follows the last NUL is not a permission.
        (raw(XS_SET_PERMS, b"/ps\0b0\0r0"), ok("SET_PERMS")),
        (get_perms("/ps"), perms("b0")),
    ),
    scenario(
        "perms_other_domains",
        "Only dom0 exists: an owner that is no domain is refused.",
        (write("/po"), ok("WRITE")),
        (set_perms("/po", "n0", "r5", knows_domains=True), ok("SET_PERMS")),
        (get_perms("/po", knows_domains=True), perms("n0", "r5")),
        (set_perms("/po", "n7", knows_domains=True), err("ENOENT")),
        (set_perms("/po", "b0x10", knows_domains=True), err("ENOENT")),
        (get_perms("/po", knows_domains=True), perms("n0", "r5")),
    ),
    scenario(
        "perms_special_paths",
        "@introduceDomain and @releaseDomain have permissions, but are no nodes.",
        (set_perms("@introduceDomain", "n0"), ok("SET_PERMS")),
        (set_perms("@releaseDomain", "r0"), ok("SET_PERMS")),
        (set_perms("@releaseDomain", "n0"), ok("SET_PERMS")),
        # Any other @ name: no errno set (fixed in 4.18).
        *stale_errno(set_perms("@other", "n0")),
        (get_perms("@introduceDomain"), err("EINVAL")),
    ),
    # ------------------------------------------------------- transactions
    scenario(
        "transaction_commit",
        "Inside, a transaction sees its own writes; outside, nobody does until it commits.",
        (write("/t/a", "1"), ok("WRITE")),
        (tx_start("t"), started("t")),
        (read("/t/a", tx="t"), value("1")),
        (write("/t/a", "2", tx="t"), ok("WRITE")),
        (write("/t/new", "n", tx="t"), ok("WRITE")),
        (read("/t/a", tx="t"), value("2")),
        (directory("/t", tx="t"), listing("a", "new")),
        (read("/t/a"), value("1")),
        (read("/t/new"), err("ENOENT")),
        (directory("/t"), listing("a")),
        (read("/t/a", conn=1), value("1")),
        (tx_end("t"), ok("TRANSACTION_END")),
        (read("/t/a"), value("2")),
        (read("/t/new", conn=1), value("n")),
        (directory("/t"), listing("a", "new")),
        (tx_end("t"), err("ENOENT")),
    ),
    scenario(
        "transaction_abort",
        "TRANSACTION_END F drops the transaction's writes.",
        (write("/ta", "old"), ok("WRITE")),
        (tx_start("t"), started("t")),
        (write("/ta", "new", tx="t"), ok("WRITE")),
        (rm("/ta", tx="t"), ok("RM")),
        (mkdir("/ta2", tx="t"), ok("MKDIR")),
        (tx_end("t", commit=False), ok("TRANSACTION_END")),
        (read("/ta"), value("old")),
        (read("/ta2"), err("ENOENT")),
        (tx_end("t", commit=False), err("ENOENT")),
    ),
    scenario(
        "transaction_conflict_read",
        "Another connection changed a node the transaction read: EAGAIN.",
        (write("/c/x", "0"), ok("WRITE")),
        (tx_start("t"), started("t")),
        (read("/c/x", tx="t"), value("0")),
        (write("/c/x", "1", conn=1), ok("WRITE")),
        (write("/c/y", "y", tx="t"), ok("WRITE")),
        (tx_end("t"), err("EAGAIN")),
        (read("/c/y"), err("ENOENT")),
        (read("/c/x"), value("1")),
        (tx_end("t"), err("ENOENT")),
    ),
    scenario(
        "transaction_conflict_write",
        "Another connection changed a node the transaction wrote: EAGAIN.",
        (write("/c/x", "0"), ok("WRITE")),
        (tx_start("t"), started("t")),
        (write("/c/x", "a", tx="t"), ok("WRITE")),
        (write("/c/x", "b", conn=1), ok("WRITE")),
        (tx_end("t"), err("EAGAIN")),
        (read("/c/x"), value("b")),
    ),
    scenario(
        "transaction_conflict_created",
        "A node the transaction found missing was created meanwhile: EAGAIN.",
        (mkdir("/c"), ok("MKDIR")),
        (tx_start("t"), started("t")),
        (read("/c/new", tx="t"), err("ENOENT")),
        (write("/c/new", "n", conn=1), ok("WRITE")),
        (tx_end("t"), err("EAGAIN")),
    ),
    scenario(
        "transaction_conflict_children",
        "A directory the transaction listed gained a child meanwhile: EAGAIN.",
        (mkdir("/c"), ok("MKDIR")),
        (tx_start("t"), started("t")),
        (directory("/c", tx="t"), listing()),
        (write("/c/z", conn=1), ok("WRITE")),
        (tx_end("t"), err("EAGAIN")),
    ),
    scenario(
        "transaction_no_conflict",
        "Changes elsewhere, or from the same connection outside it, do not conflict.",
        (write("/c/x", "0"), ok("WRITE")),
        (tx_start("t"), started("t")),
        (read("/c/x", tx="t"), value("0")),
        (write("/other", "o", conn=1), ok("WRITE")),
        (write("/c/y", "y", tx="t"), ok("WRITE")),
        (tx_end("t"), ok("TRANSACTION_END")),
        (read("/c/y", conn=1), value("y")),
        (write("/c/x", "1"), ok("WRITE")),
        (read("/c/x", conn=1), value("1")),
    ),
    scenario(
        "transaction_conflict_parent",
        "Two transactions each add a child to one node: the later commit fails.",
        (mkdir("/c"), ok("MKDIR")),
        (tx_start("u"), started("u")),
        (tx_start("v", conn=1), started("v")),
        (write("/c/u", "u", tx="u"), ok("WRITE")),
        (write("/c/v", "v", conn=1, tx="v"), ok("WRITE")),
        (tx_end("u"), ok("TRANSACTION_END")),
        (tx_end("v", conn=1), err("EAGAIN")),
        (directory("/c"), listing("u")),
    ),
    scenario(
        "transaction_ids",
        "Unknown, ended, foreign and nested transaction ids.",
        (tx_end(0), err("ENOENT")),
        (read("/", tx=4242), err("ENOENT")),
        (write("/tx", "v", tx=4242), err("ENOENT")),
        (tx_start("t"), started("t")),
        (tx_start("nested", tx="t"), err("EBUSY")),
        (raw(XS_TRANSACTION_END, b"X\0", tx="t"), err("EINVAL")),
        (raw(XS_TRANSACTION_END, b"T", tx="t"), err("EINVAL")),
        (raw(XS_TRANSACTION_END, b"", tx="t"), err("EINVAL")),
        # Transaction ids belong to the connection that started them.
        (read("/", conn=1, tx="t"), err("ENOENT")),
        # WATCH and UNWATCH ignore the transaction id.
        (watch("/tx", "tok", tx=4242), ok("WATCH"), ev("/tx", "tok")),
        (unwatch("/tx", "tok", tx="t"), ok("UNWATCH")),
        (read("/", tx="t"), value("")),
        (tx_end("t"), ok("TRANSACTION_END")),
        (read("/", tx="t"), err("ENOENT")),
        (tx_start("u"), started("u")),
        (tx_start("w"), started("w")),
        (tx_end("w", commit=False), ok("TRANSACTION_END")),
        (tx_end("u", commit=False), ok("TRANSACTION_END")),
    ),
    scenario(
        "transaction_events_at_commit",
        "A transaction's changes fire watches when it commits, not before; an abort fires none.",
        (watch("/e", "tok", conn=1), ok("WATCH"), ev("/e", "tok", 1)),
        (tx_start("t"), started("t")),
        (write("/e/a", "1", tx="t"), ok("WRITE")),
        (write("/e/b", "2", tx="t"), ok("WRITE")),
        (tx_end("t"), ok("TRANSACTION_END"), ev("/e/a", "tok", 1), ev("/e/b", "tok", 1)),
        (tx_start("u"), started("u")),
        (write("/e/c", "3", tx="u"), ok("WRITE")),
        (tx_end("u", commit=False), ok("TRANSACTION_END")),
        (tx_start("v"), started("v")),
        (rm("/e", tx="v"), ok("RM")),
        (tx_end("v"), ok("TRANSACTION_END"), ev("/e", "tok", 1)),
    ),
    # ------------------------------------------------------------ watches
    scenario(
        "watch_basics",
        "A watch fires once when set, then for every change at or below its path.",
        (watch("/w", "tok"), ok("WATCH"), ev("/w", "tok")),
        (write("/w/x", "1"), ev("/w/x", "tok"), ok("WRITE")),
        (write("/w/a/b/c", "1"), ev("/w/a/b/c", "tok"), ok("WRITE")),
        (write("/wx", "1"), ok("WRITE")),
        (watch("/w", "tok"), err("EEXIST")),
        (watch("/w", "tok2"), ok("WATCH"), ev("/w", "tok2")),
        (write("/w", ""), ev("/w", "tok"), ev("/w", "tok2"), ok("WRITE")),
        (mkdir("/w"), ok("MKDIR")),
        (rm("/w/missing"), ok("RM")),
        (unwatch("/w", "tok"), ok("UNWATCH")),
        (unwatch("/w", "tok"), err("ENOENT")),
        (unwatch("/nope", "tok"), err("ENOENT")),
        (write("/w", "2"), ev("/w", "tok2"), ok("WRITE")),
        (watch("/w", "tok", conn=1), ok("WATCH"), ev("/w", "tok", 1)),
        (write("/w/y", "1"), ev("/w/y", "tok2"), ok("WRITE"), ev("/w/y", "tok", 1)),
        (raw(XS_WATCH, b"/w\0t\0extra\0"), err("EINVAL")),
    ),
    scenario(
        "watch_root",
        "A watch on / sees every change.",
        (watch("/", "r"), ok("WATCH"), ev("/", "r")),
        (write("/anything", ""), ev("/anything", "r"), ok("WRITE")),
        (write("rel", ""), ev(f"{D0}/rel", "r"), ok("WRITE")),
        (set_perms("@introduceDomain", "n0"), ok("SET_PERMS")),
    ),
    scenario(
        "watch_relative",
        "A relative watch reports relative paths; watches compare canonical paths.",
        (watch("rel", "t"), ok("WATCH"), ev("rel", "t")),
        (write("rel/a", ""), ev("rel/a", "t"), ok("WRITE")),
        (write(f"{D0}/rel", "x"), ev("rel", "t"), ok("WRITE")),
        (watch(f"{D0}/rel", "t"), err("EEXIST")),
        (watch(f"{D0}/rel", "abs"), ok("WATCH"), ev(f"{D0}/rel", "abs")),
        (write("rel", "y"), ev("rel", "t"), ev(f"{D0}/rel", "abs"), ok("WRITE")),
        (unwatch(f"{D0}/rel", "t"), ok("UNWATCH")),
        (unwatch("rel", "abs"), ok("UNWATCH")),
        (write("rel", "z"), ok("WRITE")),
        (watch("", "t"), err("EINVAL")),
    ),
    scenario(
        "watch_special",
        "@ watch paths: registered and fired at once, whatever the name.",
        (watch("@introduceDomain", "i"), ok("WATCH"), ev("@introduceDomain", "i")),
        (watch("@releaseDomain", "r"), ok("WATCH"), ev("@releaseDomain", "r")),
        (watch("@bogus", "b"), ok("WATCH"), ev("@bogus", "b")),
        (watch("@introduceDomain", "i"), err("EEXIST")),
        (write("/x", ""), ok("WRITE")),
        (unwatch("@introduceDomain", "i"), ok("UNWATCH")),
        (unwatch("@introduceDomain", "i"), err("ENOENT")),
    ),
    scenario(
        "watch_rm_subtree",
        "RM fires for the removed node at or below each watch, and for watches "
        "exactly on removed descendants.",
        (watch("/s", "s", conn=1), ok("WATCH"), ev("/s", "s", 1)),
        (watch("/s/a/b", "ab", conn=1), ok("WATCH"), ev("/s/a/b", "ab", 1)),
        (watch("/s/c", "c", conn=1), ok("WATCH"), ev("/s/c", "c", 1)),
        (watch("/s/a/b/zz", "zz", conn=1), ok("WATCH"), ev("/s/a/b/zz", "zz", 1)),
        (watch("/", "root", conn=1), ok("WATCH"), ev("/", "root", 1)),
        (mkdir("/s/a/b"), ok("MKDIR"),
         ev("/s/a/b", "s", 1), ev("/s/a/b", "ab", 1), ev("/s/a/b", "root", 1)),
        (mkdir("/s/c"), ok("MKDIR"), ev("/s/c", "s", 1), ev("/s/c", "c", 1), ev("/s/c", "root", 1)),
        (rm("/s"), ok("RM"),
         ev("/s/a/b", "ab", 1), ev("/s/c", "c", 1), ev("/s", "s", 1), ev("/s", "root", 1)),
        (rm("/s"), ok("RM")),
    ),
    scenario(
        "watch_on_set_perms",
        "Changing permissions fires watches.",
        (write("/sp"), ok("WRITE")),
        (watch("/sp", "t"), ok("WATCH"), ev("/sp", "t")),
        (set_perms("/sp", "b0"), ev("/sp", "t"), ok("SET_PERMS")),
    ),
    scenario(
        "watch_event_too_long",
        "An event longer than 4096 bytes is not sent.",
        (watch("/", "T" * 3000), ok("WATCH"), ev("/", "T" * 3000)),
        (write("/" + "p" * 1000), ev("/" + "p" * 1000, "T" * 3000), ok("WRITE")),
        (write("/" + "q" * 1500), ok("WRITE")),
    ),
    scenario(
        "reset_watches",
        "RESET_WATCHES drops the connection's watches and transactions.",
        (watch("/rw", "t"), ok("WATCH"), ev("/rw", "t")),
        (tx_start("t"), started("t")),
        (raw(XS_RESET_WATCHES), ok("RESET_WATCHES")),
        (write("/rw"), ok("WRITE")),
        (read("/", tx="t"), err("ENOENT")),
        (watch("/rw", "t"), ok("WATCH"), ev("/rw", "t")),
    ),
    # ------------------------------------------------------------ domains
    scenario(
        "domain_path",
        "GET_DOMAIN_PATH is /local/domain/<atoi(domid)>, domain or not.",
        (get_domain_path(0), strings("GET_DOMAIN_PATH", "/local/domain/0")),
        (get_domain_path(5), strings("GET_DOMAIN_PATH", "/local/domain/5")),
        (get_domain_path("abc"), strings("GET_DOMAIN_PATH", "/local/domain/0")),
        (get_domain_path("-1"), strings("GET_DOMAIN_PATH", "/local/domain/4294967295")),
        (raw(XS_GET_DOMAIN_PATH), err("EINVAL")),
        (raw(XS_GET_DOMAIN_PATH, b"0"), err("EINVAL")),
    ),
    scenario(
        "is_domain_introduced",
        "dom0 is introduced; DOMID_SELF always is.",
        (is_introduced(0), strings("IS_DOMAIN_INTRODUCED", "T")),
        (is_introduced(5, knows_domains=True), strings("IS_DOMAIN_INTRODUCED", "F")),
        (is_introduced(0x7FF0), strings("IS_DOMAIN_INTRODUCED", "T")),
        (raw(XS_IS_DOMAIN_INTRODUCED), err("EINVAL")),
    ),
    scenario(
        "release_resume",
        "RELEASE and RESUME want an introduced domain other than 0.",
        (raw(XS_RELEASE, b"5\0", knows_domains=True), err("ENOENT")),
        (raw(XS_RESUME, b"5\0", knows_domains=True), err("ENOENT")),
        (raw(XS_RELEASE, b"0\0"), err("EINVAL")),
        (raw(XS_RESUME, b""), err("EINVAL")),
    ),
    # ---------------------------------------------------- malformed input
    scenario(
        "malformed_payloads",
        "Missing or extra NULs, empty payloads.",
        (write("/mf", "v"), ok("WRITE")),
        # A one-argument request needs exactly one NUL, at the end.
        *stale_errno(raw(XS_READ, b"")),
        *stale_errno(raw(XS_READ, b"/mf")),
        *stale_errno(raw(XS_READ, b"/mf\0/mf\0")),
        *stale_errno(raw(XS_READ, b"/mf\0junk")),
        *stale_errno(raw(XS_MKDIR, b"")),
        *stale_errno(raw(XS_RM, b"/mf")),
        *stale_errno(raw(XS_DIRECTORY, b"")),
        *stale_errno(raw(XS_GET_PERMS, b"/mf")),
        # These check their arguments themselves.
        (raw(XS_WATCH, b"/mf\0"), err("EINVAL")),
        (raw(XS_WATCH, b"/mf\0tok"), err("EINVAL")),
        (raw(XS_UNWATCH, b""), err("EINVAL")),
        (raw(XS_UNWATCH, b"/mf\0"), err("EINVAL")),
        (raw(XS_GET_DOMAIN_PATH, b""), err("EINVAL")),
        # TRANSACTION_START does not look at its payload.
        (raw(XS_TRANSACTION_START, b"", start="t"), started("t")),
        (raw(XS_TRANSACTION_END, b"", tx="t"), err("EINVAL")),
        (tx_end("t", commit=False), ok("TRANSACTION_END")),
        (read("/mf"), value("v")),
    ),
    scenario(
        "unknown_types",
        "Types with no handler, including the daemon's own, are ENOSYS.",
        (raw(20, b"/x\0"), err("ENOSYS")),
        (raw(XS_TYPE_COUNT, b""), err("ENOSYS")),
        (raw(99, b"/x\0"), err("ENOSYS")),
        (raw(0xFFFF), err("ENOSYS")),
        (raw(XS_WATCH_EVENT, b"/x\0t\0"), err("ENOSYS")),
        (raw(XS_ERROR, b"EINVAL\0"), err("ENOSYS")),
        (read("/"), value("")),
    ),
    scenario(
        "control",
        "CONTROL: an unknown command is EINVAL; check answers OK.",
        (control("no-such-command"), err("EINVAL")),
        (raw(XS_CONTROL, b""), err("EINVAL")),
        (control("check"), ok("CONTROL")),
    ),
    # ---------------------------------------------------------- quotas
    scenario(
        "dom0_sizes",
        "dom0's values may exceed the 2048-byte node quota; a payload over 4096 "
        "bytes loses the connection.",
        (write("/q", "x" * 3000), ok("WRITE")),
        (read("/q"), value("x" * 3000)),
        (write("/q", "y" * 4093), ok("WRITE")),
        (read("/q"), value("y" * 4093)),
        (write("/q", "z" * 4094), CLOSED),
        (read("/q"), CLOSED),
        (read("/q", conn=1), value("y" * 4093)),
    ),
    scenario(
        "dom0_many_watches_and_transactions",
        "dom0 has no watch or transaction quota.",
        *[(watch(f"/qw/{i}", "t"), ok("WATCH"), ev(f"/qw/{i}", "t")) for i in range(130)],
        *[(tx_start(f"t{i}"), started(f"t{i}")) for i in range(12)],
        *[(tx_end(f"t{i}", commit=False), ok("TRANSACTION_END")) for i in range(12)],
    ),
]

BY_NAME = {s.name: s for s in SCENARIOS}
assert len(BY_NAME) == len(SCENARIOS), "two scenarios share a name"
