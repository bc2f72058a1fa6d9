"""xenstored's core: one message at a time from any connection, dispatched
by type to a handler named after the C daemon's (do_read, do_write, ...),
each answering with a reply or an errno that becomes XS_ERROR once, here.

The rules are the C daemon's (tools/xenstore in Xen 4.17): which checks
come first, what is inherited, what a transaction sees, when watches fire
and for whom. Where a rule depends on which domains exist, the daemon asks
Xen (domain.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from hv.public.errno import (
    E2BIG, EACCES, EAGAIN, EBUSY, EEXIST, EINVAL, ENOENT, ENOMEM, ENOSPC, ENOSYS, EPERM,
)
from hv.public.io.xs_wire import (
    XENSTORE_PAYLOAD_MAX, XENSTORE_REL_PATH_MAX, XS_CONTROL, XS_DIRECTORY, XS_DIRECTORY_PART,
    XS_ERROR, XS_GET_DOMAIN_PATH, XS_GET_PERMS, XS_INTRODUCE, XS_IS_DOMAIN_INTRODUCED, XS_MKDIR,
    XS_READ, XS_RELEASE, XS_RESET_WATCHES, XS_RESUME, XS_RM, XS_SET_PERMS, XS_SET_TARGET,
    XS_TRANSACTION_END, XS_TRANSACTION_START, XS_TYPE_COUNT, XS_UNWATCH, XS_WATCH,
    XS_WATCH_EVENT, XS_WRITE,
)
from hv.xenstore import paths
from hv.xenstore.connection import Connection, Watch
from hv.xenstore.errors import XsError, wire_error
from hv.xenstore.perms import (
    PERM_IGNORE, PERM_NONE, PERM_OWNER, PERM_READ, PERM_WRITE, Perm, Perms, format_perms,
    parse_perms, perm_for_conn,
)
from hv.xenstore.protocol import OK, Message, atoi, count_strings, encode, get_strings, onearg
from hv.xenstore.quota import Quotas
from hv.xenstore.store import NO_GENERATION, Database, Node
from hv.xenstore.transaction import Accessed, Transaction

if TYPE_CHECKING:
    from hv.xenstore.domain import DomainManager

READ, WRITE, DELETE = 0, 1, 2
SPECIAL_PATHS = (b"@introduceDomain", b"@releaseDomain")


class Xenstored:
    def __init__(self, quotas: Quotas | None = None):
        self.quotas = quotas or Quotas()
        self.db = Database()
        self.connections: list[Connection] = []
        self.special_perms: dict[bytes, Perms] = {p: (Perm(PERM_NONE, 0),) for p in SPECIAL_PATHS}
        self.domains: "DomainManager | None" = None
        # Who hears of each request and reply (the trace, the views).
        self.observers: list[Callable] = []
        self.requests = 0
        for name, child in ((b"/", b"tool"), (b"/tool", b"xenstored"), (b"/tool/xenstored", None)):
            node = Node(name, b"", (Perm(PERM_NONE, 0),), [child] if child else [])
            node.generation = self.db.next_generation()
            self.db.store(node)

    def init_dom0(self) -> None:
        """What xen-init-dom0 writes at boot: dom0's home, its id and name."""
        conn = self.connect("local")
        try:
            for name, value in ((b"/local/domain/0/domid", b"0"),
                                (b"/local/domain/0/name", b"Domain-0")):
                self.do_write(conn, name + b"\0" + value)
        finally:
            self.disconnect(conn)

    # ------------------------------------------------------------ connections
    def connect(self, kind: str = "local", conn_id: int = 0, domain=None,
                on_output=None) -> Connection:
        conn = Connection(kind, conn_id, domain, on_output)
        self.connections.append(conn)
        return conn

    def disconnect(self, conn: Connection) -> None:
        """destroy_conn(): its watches and transactions go with it."""
        if conn.closed:
            return
        conn.closed = True
        self._forget(conn)
        if conn in self.connections:
            self.connections.remove(conn)

    def ignore(self, conn: Connection) -> None:
        """ignore_connection(): a connection that broke the protocol is
        kept (a domain's stays until the domain goes) but serves nothing
        more."""
        conn.ignored = True
        self._forget(conn)

    def _forget(self, conn: Connection) -> None:
        self.delete_all_watches(conn)
        conn.transactions.clear()
        conn.clear_output()
        if conn.domain is not None:
            conn.domain.nboutstanding = 0

    # ------------------------------------------------------------ messages
    def process(self, conn: Connection, msg: Message) -> tuple[int, bytes]:
        """process_message(): run one request and queue its answer; the
        answer's type and payload are returned too."""
        self.requests += 1
        if conn.domain is not None:
            conn.domain.nboutstanding += 1
        type_ = msg.type
        entry = WIRE_FUNCS.get(type_) if type_ < XS_TYPE_COUNT else None
        try:
            if entry is None:
                raise XsError(ENOSYS)
            _name, func, flags = entry
            if flags & FLAG_PRIV and not conn.privileged:
                raise XsError(EACCES)
            trans = None
            if not flags & FLAG_NOTID and msg.tx_id:
                trans = conn.transactions.get(msg.tx_id)
                if trans is None:
                    raise XsError(ENOENT)
            conn.transaction = trans
            try:
                reply_type, payload, *first_event = func(self, conn, msg.payload)
            finally:
                conn.transaction = None
            if len(payload) > XENSTORE_PAYLOAD_MAX:
                raise XsError(E2BIG)
        except XsError as e:
            reply_type, payload, first_event = XS_ERROR, wire_error(e.errno), ()
        self.send_reply(conn, msg, reply_type, payload)
        if first_event:
            # A new watch fires once at once, after its reply: clients
            # rely on it to read the state they now watch.
            self.send_event(conn, *first_event[0])
        return reply_type, payload

    def send_reply(self, conn: Connection, msg: Message, type_: int, payload: bytes) -> None:
        for observe in self.observers:
            observe(conn, msg, type_, payload)
        if conn.closed or conn.ignored:
            return
        conn.queue(encode(type_, msg.req_id, msg.tx_id, payload), True)

    def send_event(self, conn: Connection, path: bytes, token: bytes) -> None:
        """A watch event; an identical one still waiting to go out is not
        sent twice (special paths excepted), and an unprivileged
        connection's queue is bounded."""
        payload = path + b"\0" + token + b"\0"
        if len(payload) > XENSTORE_PAYLOAD_MAX or conn.ignored or conn.closed:
            return
        data = encode(XS_WATCH_EVENT, 0, 0, payload)
        if not path.startswith(b"@") and data in conn.queued_events:
            return
        if not conn.privileged and conn.out_bytes + len(data) > self.quotas.memory:
            # A domain that does not read its ring loses events past its
            # memory quota, as the C daemon drops them; nobody else pays.
            conn.dropped_events += 1
            return
        conn.queue(data, False)

    # ------------------------------------------------------------ domains
    def alloc_permref(self, domid: int) -> bool:
        """domain_alloc_permrefs(): a domain named in permissions is
        remembered from now on (so the entry outlives nothing younger than
        itself); False when there is no such domain."""
        return self.domains is None or domid == 0 or self.domains.alloc_existing(domid)

    # ------------------------------------------------------------ nodes
    def adjusted_perms(self, node: Node) -> Perms:
        """domain_adjust_node_perms(): an entry naming a domain younger
        than the node (or gone) is ignored, so that a new domain with a
        recycled id inherits nothing."""
        perms = node.perms
        if len(perms) < 2 or self.domains is None:
            return perms
        out = [perms[0]]
        changed = False
        for p in perms[1:]:
            if not p.perms & PERM_IGNORE and p.domid != 0:
                gen = self.domains.generation_of(p.domid)
                if gen is None or gen > node.generation:
                    p = Perm(p.perms | PERM_IGNORE, p.domid)
                    changed = True
            out.append(p)
        return tuple(out) if changed else perms

    def perm(self, conn: Connection | None, perms: Perms) -> int:
        if conn is None:
            return PERM_READ | PERM_WRITE | PERM_OWNER
        return perm_for_conn(conn.id, conn.privileged, conn.target, perms)

    def node_perm(self, conn: Connection | None, node: Node) -> int:
        return self.perm(conn, self.adjusted_perms(node))

    def read_node(self, conn: Connection | None, name: bytes) -> Node | None:
        """The node as ``conn`` (in its transaction) sees it, or None."""
        trans = conn.transaction if conn is not None else None
        if trans is not None:
            a = trans.accessed.get(name)
            if a is not None:
                return a.node
        node = self.db.fetch(name)
        if node is not None and len(node.perms) > 1:
            # Entries for domains younger than the node are ignored from
            # here on, whatever is written next (read_node() in C adjusts
            # the node it hands out, and that is what gets written back).
            perms = self.adjusted_perms(node)
            if perms is not node.perms:
                node = node.copy()
                node.perms = perms
        if trans is not None:
            self.access_node(conn, node if node is not None else Node(name), READ)
        return node

    def access_node(self, conn: Connection | None, node: Node, access: int) -> Accessed | None:
        """access_node(): a change takes a new generation; inside a
        transaction, the first touch of a node records what it was."""
        if access != READ:
            node.generation = self.db.next_generation()
        trans = conn.transaction if conn is not None else None
        if trans is None:
            return None
        a = trans.accessed.get(node.name)
        if a is None:
            if len(trans.accessed) >= self.quotas.transaction_nodes and not conn.privileged:
                trans.fail = True
                raise XsError(ENOSPC)
            a = Accessed(node.name)
            if node.generation != NO_GENERATION:
                a.perms = node.perms
            if access == READ:
                a.generation = node.generation
                a.check_gen = True
                if node.generation != NO_GENERATION:
                    a.node = node
            trans.accessed[node.name] = a
        if access != READ:
            a.modified = True
        return a

    def write_node(self, conn: Connection | None, node: Node, no_quota_check: bool = False) -> None:
        """write_node(): ``node`` is a fresh object the caller owns."""
        a = self.access_node(conn, node, WRITE)
        if (not no_quota_check and conn is not None and not conn.privileged
                and node.record_size() >= self.quotas.node_size):
            if conn.transaction is not None:
                conn.transaction.fail = True
            raise XsError(ENOSPC)
        if a is None:
            self.db.store(node)
        else:
            a.node = node

    def delete_node(self, conn: Connection | None, node: Node) -> None:
        a = self.access_node(conn, node, DELETE)
        if a is None:
            self.db.delete(node.name)
        else:
            a.node = None

    def get_node(self, conn: Connection, name: bytes | None, perm: int) -> Node:
        """get_node(): the node, or the error ``conn`` may know of. Not
        being allowed to see a node looks like EACCES, and its absence is
        told only to those who may read its parent."""
        if name is None or not paths.is_valid_nodename(name, self.quotas.path_max):
            raise XsError(EINVAL)
        node = self.read_node(conn, name)
        if node is not None:
            if self.node_perm(conn, node) & perm == perm:
                return node
            errnum = EACCES
        else:
            errnum = ENOENT
        raise XsError(self.errno_from_parents(conn, name, errnum, perm))

    def node_to_change(self, conn: Connection, name: bytes | None) -> Node | None:
        """The node ``conn`` may write, None when it does not exist (and
        may be made); any other refusal is raised."""
        try:
            return self.get_node(conn, name, PERM_WRITE)
        except XsError as e:
            if e.errno != ENOENT:
                raise
            return None

    def errno_from_parents(self, conn: Connection, name: bytes, errnum: int, perm: int) -> int:
        parent = name
        while parent != b"/":
            parent = paths.get_parent(parent)
            node = self.read_node(conn, parent)
            if node is not None:
                return errnum if self.node_perm(conn, node) & perm else EACCES
        return EACCES

    def canonical(self, conn: Connection, name: bytes | None) -> bytes | None:
        return None if name is None else paths.canonicalize(conn.home, name)

    def entry_change(self, conn: Connection | None, owner: int, delta: int) -> None:
        """domain_entry_inc/dec(): who owns how many nodes; inside a
        transaction, counted at commit."""
        if conn is not None and conn.transaction is not None:
            conn.transaction.entry_change(owner, delta)
        elif self.domains is not None:
            self.domains.entry_change(owner, delta)

    def domain_entries(self, conn: Connection) -> int:
        if conn.privileged or self.domains is None:
            return 0
        return self.domains.entries(conn.domain.domid)

    def create_node(self, conn: Connection, name: bytes, value: bytes) -> Node:
        """construct_node() and create_node(): the missing parents too,
        each inheriting its parent's permissions, owned by an unprivileged
        creator; all or nothing."""
        missing = [name]
        parent = None
        while parent is None:
            parent_name = paths.get_parent(missing[-1])
            parent = self.read_node(conn, parent_name)
            if parent is None:
                if parent_name == b"/":
                    raise XsError(ENOENT)
                missing.append(parent_name)
        if conn.transaction is not None:
            conn.transaction.node_created = True
        new_nodes = []
        parent = parent.copy()
        for node_name in reversed(missing):
            parent.children.append(paths.basename(node_name))
            perms = parent.perms
            if not conn.privileged:
                perms = (Perm(perms[0].perms, conn.id),) + perms[1:]
            node = Node(node_name, b"", perms)
            new_nodes.append((parent, node))
            parent = node
        node.value = value
        # Written bottom up, as the C daemon does: each new node's quota
        # checked before it is written, its parent after it.
        written = []
        try:
            for parent, child in reversed(new_nodes):
                if not conn.privileged and self.domain_entries(conn) >= self.quotas.nodes:
                    raise XsError(ENOSPC)
                self.write_node(conn, child)
                written.append(child)
                self.entry_change(conn, child.owner, 1)
            self.write_node(conn, new_nodes[0][0])
        except XsError:
            for child in written:
                self.delete_node(conn, child)
                self.entry_change(conn, child.owner, -1)
            if conn.transaction is not None:
                conn.transaction.fail = True
            raise
        return node

    def rm_node(self, conn: Connection | None, name: bytes) -> None:
        """Remove ``name`` and everything below it, deepest first, firing
        each node's watches while its permissions can still be seen."""
        parent = self.read_node(conn, paths.get_parent(name))
        if parent is None:
            raise XsError(EINVAL)
        self._delete_tree(conn, name, name)
        parent = parent.copy()
        try:
            parent.children.remove(paths.basename(name))
        except ValueError:
            pass
        self.write_node(conn, parent, no_quota_check=True)

    def _delete_tree(self, conn: Connection | None, root: bytes, name: bytes) -> None:
        node = self.read_node(conn, name)
        if node is None:
            return
        for child in list(node.children):
            self._delete_tree(conn, root, paths.child_name(name, child))
        perms = node.perms
        self.delete_node(conn, node.copy())
        self.fire_watches(conn, name, node, exact=name != root)
        self.entry_change(conn, perms[0].domid, -1)

    # ------------------------------------------------------------ watches
    def fire_watches(self, conn: Connection | None, name: bytes, node: Node | None,
                     exact: bool, old_perms: Perms | None = None) -> None:
        """Queue an event for every watch on ``name`` (or above it, unless
        ``exact``), for connections that may read the node or its parent;
        inside a transaction, at commit."""
        if conn is not None and conn.transaction is not None:
            conn.transaction.queue_watches(name, exact)
            return
        special = name.startswith(b"@")
        for other in self.connections:
            if not other.watches or other.ignored:
                continue
            matching = [w for w in other.watches
                        if (w.node == name if exact else paths.is_child(name, w.node))]
            if not matching:
                continue
            if special:
                perms = self.special_perms.get(name)
                if perms is None or not self.perm(other, perms) & PERM_READ:
                    continue
            elif not self.watch_permitted(other, name, node, old_perms):
                continue
            for w in matching:
                self.send_event(other, w.path_for(name), w.token)

    def watch_permitted(self, conn: Connection, name: bytes, node: Node | None,
                        old_perms: Perms | None) -> bool:
        if old_perms is not None and self.perm(conn, old_perms) & PERM_READ:
            return True
        if node is None:
            node = self.db.fetch(name)
            if node is None:
                return False
        if self.node_perm(conn, node) & PERM_READ:
            return True
        parent = self.db.fetch(paths.get_parent(name))
        return parent is not None and bool(self.node_perm(conn, parent) & PERM_READ)

    def delete_all_watches(self, conn: Connection) -> None:
        if conn.domain is not None:
            conn.domain.nbwatch = 0
        conn.watches.clear()

    # ------------------------------------------------------------ handlers
    def do_read(self, conn, payload):
        node = self.get_node(conn, self.canonical(conn, onearg(payload)), PERM_READ)
        return XS_READ, node.value

    def do_directory(self, conn, payload):
        node = self.get_node(conn, self.canonical(conn, onearg(payload)), PERM_READ)
        return XS_DIRECTORY, node.children_bytes()

    def do_directory_part(self, conn, payload):
        if count_strings(payload) != 2:
            raise XsError(EINVAL)
        name, offset = get_strings(payload)[:2]
        node = self.get_node(conn, self.canonical(conn, name), PERM_READ)
        off = atoi(offset)
        children = node.children_bytes()
        gen = b"%d\0" % node.generation
        if off >= len(children):
            return XS_DIRECTORY_PART, gen + b"\0"
        maxlen = XENSTORE_PAYLOAD_MAX - len(gen) - 1
        length = 0
        at = off
        while True:
            end = children.index(b"\0", at)
            child_len = end - at
            if length + child_len >= maxlen:
                break
            length += child_len + 1
            at = end + 1
            if off + length == len(children):
                break
        data = gen + children[off:off + length]
        if off + length == len(children):
            data += b"\0"
        return XS_DIRECTORY_PART, data

    def do_get_perms(self, conn, payload):
        node = self.get_node(conn, self.canonical(conn, onearg(payload)), PERM_READ)
        return XS_GET_PERMS, format_perms(self.adjusted_perms(node))

    def do_write(self, conn, payload):
        strings = get_strings(payload)
        if not strings:
            raise XsError(EINVAL)
        value = payload[len(strings[0]) + 1:]
        name = self.canonical(conn, strings[0])
        node = self.node_to_change(conn, name)
        if node is None:
            node = self.create_node(conn, name, value)
        else:
            node = node.copy()
            node.value = value
            self.write_node(conn, node)
        self.fire_watches(conn, name, node, exact=False)
        return XS_WRITE, OK

    def do_mkdir(self, conn, payload):
        name = self.canonical(conn, onearg(payload))
        if self.node_to_change(conn, name) is None:
            node = self.create_node(conn, name, b"")
            self.fire_watches(conn, name, node, exact=False)
        return XS_MKDIR, OK

    def do_rm(self, conn, payload):
        name = self.canonical(conn, onearg(payload))
        if self.node_to_change(conn, name) is None:
            # Not there: fine, if its parent is.
            if self.read_node(conn, paths.get_parent(name)) is not None:
                return XS_RM, OK
            raise XsError(ENOENT)
        if name == b"/":
            raise XsError(EINVAL)
        self.rm_node(conn, name)
        return XS_RM, OK

    def do_set_perms(self, conn, payload):
        num = count_strings(payload)
        if num < 2:
            raise XsError(EINVAL)
        num -= 1
        if not conn.privileged and num > self.quotas.permissions:
            raise XsError(ENOSPC)
        strings = get_strings(payload)
        perms = list(parse_perms(strings[1:1 + num]))
        for i, p in enumerate(perms):
            if not self.alloc_permref(p.domid):
                perms[i] = Perm(p.perms | PERM_IGNORE, p.domid)
        if perms[0].perms & PERM_IGNORE:
            raise XsError(ENOENT)
        perms = tuple(perms)
        name = strings[0]
        if name.startswith(b"@"):
            if name not in self.special_perms:
                raise XsError(EINVAL)
            if self.perm(conn, self.special_perms[name]) & (PERM_WRITE | PERM_OWNER) != (
                    PERM_WRITE | PERM_OWNER):
                raise XsError(EACCES)
            self.special_perms[name] = perms
            return XS_SET_PERMS, OK
        name = self.canonical(conn, name)
        node = self.get_node(conn, name, PERM_WRITE | PERM_OWNER)
        if not conn.privileged and perms[0].domid != node.perms[0].domid:
            raise XsError(EPERM)
        old_perms = node.perms
        node = node.copy()
        node.perms = perms
        self.write_node(conn, node)
        if old_perms[0].domid != perms[0].domid:
            self.entry_change(conn, old_perms[0].domid, -1)
            self.entry_change(conn, perms[0].domid, 1)
        self.fire_watches(conn, name, node, exact=False, old_perms=old_perms)
        return XS_SET_PERMS, OK

    def do_watch(self, conn, payload):
        strings = get_strings(payload)
        if len(strings) != 2:
            raise XsError(EINVAL)
        path, token = strings
        if path.startswith(b"@"):
            relative = False
            if len(path) > XENSTORE_REL_PATH_MAX:
                raise XsError(EINVAL)
        else:
            relative = not path.startswith(b"/")
            path = paths.canonicalize(conn.home, path)
            if not paths.is_valid_nodename(path, self.quotas.path_max):
                raise XsError(EINVAL)
        for w in conn.watches:
            if w.node == path and w.token == token:
                raise XsError(EEXIST)
        if not conn.privileged and conn.domain.nbwatch > self.quotas.watches:
            raise XsError(E2BIG)
        watch = Watch(path, token, conn.home if relative else None)
        conn.watches.append(watch)
        if conn.domain is not None:
            conn.domain.nbwatch += 1
        return XS_WATCH, OK, (watch.path_for(path), token)

    def do_unwatch(self, conn, payload):
        strings = get_strings(payload)
        if len(strings) != 2:
            raise XsError(EINVAL)
        path = paths.canonicalize(conn.home, strings[0])
        for i, w in enumerate(conn.watches):
            if w.node == path and w.token == strings[1]:
                del conn.watches[i]
                if conn.domain is not None and conn.domain.nbwatch:
                    conn.domain.nbwatch -= 1
                return XS_UNWATCH, OK
        raise XsError(ENOENT)

    def do_reset_watches(self, conn, payload):
        self.delete_all_watches(conn)
        conn.transactions.clear()
        return XS_RESET_WATCHES, OK

    def do_transaction_start(self, conn, payload):
        if conn.transaction is not None:
            raise XsError(EBUSY)
        if not conn.privileged and len(conn.transactions) > self.quotas.transactions:
            raise XsError(ENOSPC)
        while True:
            tx_id = conn.next_transaction_id
            conn.next_transaction_id = (conn.next_transaction_id + 1) & 0xFFFFFFFF
            if tx_id and tx_id not in conn.transactions:
                break
        conn.transactions[tx_id] = Transaction(tx_id, self.db.next_generation())
        return XS_TRANSACTION_START, b"%d\0" % tx_id

    def do_transaction_end(self, conn, payload):
        arg = onearg(payload)
        if arg not in (b"T", b"F"):
            raise XsError(EINVAL)
        trans = conn.transaction
        if trans is None:
            raise XsError(ENOENT)
        del conn.transactions[trans.id]
        conn.transaction = None
        if arg == b"T":
            if trans.fail:
                raise XsError(ENOMEM)
            if self.domains is not None and not all(
                    self.domains.alloc_existing(domid) for domid in trans.entries):
                raise XsError(ENOMEM)       # domain_entry_fix(): an owner that died meanwhile
            self.check_transaction_quota(conn, trans)
            self.finalize_transaction(conn, trans)
        return XS_TRANSACTION_END, OK

    def check_transaction_quota(self, conn: Connection, trans: Transaction) -> None:
        if not trans.node_created or conn.privileged or self.domains is None:
            return
        for domid, delta in trans.entries.items():
            if domid != 0 and self.domains.entries(domid) + delta >= self.quotas.nodes:
                raise XsError(ENOSPC)

    def finalize_transaction(self, conn: Connection, trans: Transaction) -> None:
        for a in trans.accessed.values():
            if a.check_gen:
                now = self.db.fetch(a.name)
                if (now.generation if now is not None else NO_GENERATION) != a.generation:
                    raise XsError(EAGAIN)
        for a in trans.accessed.values():
            if not a.modified:
                continue
            if a.node is not None:
                node = a.node.copy()
                node.generation = self.db.next_generation()
                self.db.store(node)
            else:
                self.db.delete(a.name)
        for domid, delta in trans.entries.items():
            if self.domains is not None:
                self.domains.entry_change(domid, delta)
        for a in trans.accessed.values():
            if a.modified and a.fire_watch:
                self.fire_watches(None, a.name, None, a.watch_exact, a.perms)

    def do_get_domain_path(self, conn, payload):
        domid = onearg(payload)
        if domid is None:
            raise XsError(EINVAL)
        return XS_GET_DOMAIN_PATH, paths.domain_path(atoi(domid)) + b"\0"

    def do_control(self, conn, payload):
        strings = get_strings(payload)
        if not strings:
            raise XsError(EINVAL)
        cmd, args = strings[0], strings[1:]
        handler = CONTROL_COMMANDS.get(cmd)
        if handler is None:
            raise XsError(EINVAL)
        return XS_CONTROL, handler[0](self, conn, args)

    def _domain_op(self, name: str, conn, payload):
        if self.domains is None:
            raise XsError(ENOSYS)
        return getattr(self.domains, name)(conn, payload)

    def do_introduce(self, conn, payload):
        return XS_INTRODUCE, self._domain_op("do_introduce", conn, payload)

    def do_release(self, conn, payload):
        return XS_RELEASE, self._domain_op("do_release", conn, payload)

    def do_resume(self, conn, payload):
        return XS_RESUME, self._domain_op("do_resume", conn, payload)

    def do_set_target(self, conn, payload):
        return XS_SET_TARGET, self._domain_op("do_set_target", conn, payload)

    def do_is_domain_introduced(self, conn, payload):
        domid = onearg(payload)
        if domid is None:
            raise XsError(EINVAL)
        n = atoi(domid)
        # DOMID_SELF, and dom0, whose kernel's connection is there from boot.
        known = n in (0, 0x7FF0) or (self.domains is not None and self.domains.is_introduced(n))
        return XS_IS_DOMAIN_INTRODUCED, b"T\0" if known else b"F\0"

    # ------------------------------------------------------------ control
    def control_check(self, conn, args):
        if args:
            raise XsError(EINVAL)
        problems = self.check_store()
        if problems:
            raise XsError(EINVAL)
        return OK

    def control_log(self, conn, args):
        if len(args) != 1 or args[0] not in (b"on", b"off"):
            raise XsError(EINVAL)
        return OK

    def control_print(self, conn, args):
        if len(args) != 1:
            raise XsError(EINVAL)
        return OK

    def control_quota(self, conn, args):
        if not args:
            return self.quotas.show().encode() + b"\0"
        if args[0] == b"set":
            if len(args) != 3:
                raise XsError(EINVAL)
            attr = self.quotas.by_name(args[1].decode("latin-1"))
            value = atoi(args[2])
            if value & 0x80000000:        # an int in C: negative
                value -= 1 << 32
            if attr is None or value < 1:
                raise XsError(EINVAL)
            setattr(self.quotas, attr, value)
            return OK
        if len(args) != 1:
            raise XsError(EINVAL)
        if self.domains is None:
            raise XsError(ENOENT)
        return self.domains.quota_report(atoi(args[0])).encode() + b"\0"

    def control_help(self, conn, args):
        if args:
            raise XsError(EINVAL)
        text = "".join(f"{name.decode()}\t{pars}\n" for name, (_f, pars) in CONTROL_COMMANDS.items())
        return text.encode() + b"\0"

    # ------------------------------------------------------------ checks
    def check_store(self) -> list[str]:
        """check_store(): every node reachable from / once, every child
        named exists, no node is orphaned."""
        problems = []
        seen = set()
        stack = [b"/"]
        while stack:
            name = stack.pop()
            node = self.db.nodes.get(name)
            if node is None:
                problems.append(f"{name.decode()}: a child named by its parent is missing")
                continue
            if name in seen:
                problems.append(f"{name.decode()}: reached twice")
                continue
            seen.add(name)
            if len(set(node.children)) != len(node.children):
                problems.append(f"{name.decode()}: a child is listed twice")
            stack.extend(paths.child_name(name, c) for c in node.children)
        for name in self.db.nodes.keys() - seen:
            problems.append(f"{name.decode()}: not reachable from /")
        return problems

    def dump(self) -> str:
        lines = [f"xenstored: {len(self.db)} nodes, {len(self.connections)} connections, "
                 f"generation {self.db.generation}"]
        for conn in self.connections:
            lines.append(f"  {conn!r}: {len(conn.watches)} watches, "
                         f"{len(conn.transactions)} transactions, {len(conn.out)} queued"
                         + (" (ignored)" if conn.ignored else ""))
        return "\n".join(lines)

    def __getstate__(self):
        """Sockets and their connections are of this process only: a
        snapshot keeps the domains' connections."""
        state = self.__dict__.copy()
        state["connections"] = [c for c in self.connections if c.kind == "domain"]
        return state


FLAG_NOTID = 1
FLAG_PRIV = 2

WIRE_FUNCS = {
    XS_CONTROL: ("CONTROL", Xenstored.do_control, FLAG_PRIV),
    XS_DIRECTORY: ("DIRECTORY", Xenstored.do_directory, 0),
    XS_READ: ("READ", Xenstored.do_read, 0),
    XS_GET_PERMS: ("GET_PERMS", Xenstored.do_get_perms, 0),
    XS_WATCH: ("WATCH", Xenstored.do_watch, FLAG_NOTID),
    XS_UNWATCH: ("UNWATCH", Xenstored.do_unwatch, FLAG_NOTID),
    XS_TRANSACTION_START: ("TRANSACTION_START", Xenstored.do_transaction_start, 0),
    XS_TRANSACTION_END: ("TRANSACTION_END", Xenstored.do_transaction_end, 0),
    XS_INTRODUCE: ("INTRODUCE", Xenstored.do_introduce, FLAG_PRIV),
    XS_RELEASE: ("RELEASE", Xenstored.do_release, FLAG_PRIV),
    XS_GET_DOMAIN_PATH: ("GET_DOMAIN_PATH", Xenstored.do_get_domain_path, 0),
    XS_WRITE: ("WRITE", Xenstored.do_write, 0),
    XS_MKDIR: ("MKDIR", Xenstored.do_mkdir, 0),
    XS_RM: ("RM", Xenstored.do_rm, 0),
    XS_SET_PERMS: ("SET_PERMS", Xenstored.do_set_perms, 0),
    XS_IS_DOMAIN_INTRODUCED: ("IS_DOMAIN_INTRODUCED", Xenstored.do_is_domain_introduced, FLAG_PRIV),
    XS_RESUME: ("RESUME", Xenstored.do_resume, FLAG_PRIV),
    XS_SET_TARGET: ("SET_TARGET", Xenstored.do_set_target, FLAG_PRIV),
    XS_RESET_WATCHES: ("RESET_WATCHES", Xenstored.do_reset_watches, 0),
    XS_DIRECTORY_PART: ("DIRECTORY_PART", Xenstored.do_directory_part, 0),
}

CONTROL_COMMANDS = {
    b"check": (Xenstored.control_check, ""),
    b"log": (Xenstored.control_log, "on|off"),
    b"print": (Xenstored.control_print, "<string>"),
    b"quota": (Xenstored.control_quota, "[set <name> <val>|<domid>]"),
    b"help": (Xenstored.control_help, ""),
}
