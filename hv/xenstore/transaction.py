"""Transactions, by the C daemon's rule: a transaction keeps its own copy
of each node it reads or writes, with the generation it saw; commit fails
with EAGAIN when a node it read (and did not write) changed meanwhile,
and otherwise makes its writes global and fires their watches then.
Reads of nodes it has not touched see the store as it is now."""

from __future__ import annotations

from hv.xenstore.store import NO_GENERATION, Node


class Accessed:
    """One node a transaction touched."""

    __slots__ = ("name", "node", "generation", "check_gen", "modified", "perms",
                 "fire_watch", "watch_exact")

    def __init__(self, name: bytes):
        self.name = name
        self.node: Node | None = None     # the transaction's copy (None: absent)
        self.generation = NO_GENERATION
        self.check_gen = False
        self.modified = False
        self.perms = None                 # the node's permissions when first touched
        self.fire_watch = False
        self.watch_exact = False


class Transaction:
    __slots__ = ("id", "generation", "accessed", "entries", "node_created", "fail")

    def __init__(self, tx_id: int, generation: int):
        self.id = tx_id
        self.generation = generation
        self.accessed: dict[bytes, Accessed] = {}     # in first-touched order
        self.entries: dict[int, int] = {}             # domid -> change in nodes owned
        self.node_created = False
        self.fail = False

    def entry_change(self, domid: int, delta: int) -> None:
        self.entries[domid] = self.entries.get(domid, 0) + delta

    def queue_watches(self, name: bytes, exact: bool) -> None:
        """A change made inside the transaction fires its watches at
        commit; an event for the subtree wins over one for the node."""
        a = self.accessed.get(name)
        if a is None:
            self.fail = True
            return
        if not a.fire_watch:
            a.fire_watch, a.watch_exact = True, exact
        elif not exact:
            a.watch_exact = False
