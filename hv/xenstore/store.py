"""The nodes and the database they live in (the C daemon's tdb): each node
a value, permissions, its children's names in the order they were added,
and the generation of its last change. A transaction's own copies of the
nodes it touched live in the transaction (transaction.py), found first
when that transaction reads."""

from __future__ import annotations

from hv.xenstore.perms import PERM_NONE, Perm, Perms

NO_GENERATION = (1 << 64) - 1
# The C daemon's record header: generation, num_perms, datalen, childlen.
RECORD_HEADER = 24
PERM_SIZE = 8


class Node:
    __slots__ = ("name", "value", "perms", "children", "generation")

    def __init__(self, name: bytes, value: bytes = b"", perms: Perms = (Perm(PERM_NONE, 0),),
                 children: list[bytes] | None = None, generation: int = NO_GENERATION):
        self.name = name
        self.value = value
        self.perms = perms
        self.children = children if children is not None else []
        self.generation = generation

    def copy(self) -> "Node":
        return Node(self.name, self.value, self.perms, list(self.children), self.generation)

    @property
    def owner(self) -> int:
        return self.perms[0].domid

    def children_bytes(self) -> bytes:
        return b"".join(c + b"\0" for c in self.children)

    def record_size(self) -> int:
        """What the node takes in the database: what the node-size quota
        limits."""
        return (RECORD_HEADER + PERM_SIZE * len(self.perms) + len(self.value)
                + sum(len(c) + 1 for c in self.children))

    def __repr__(self):
        return f"Node({self.name!r}, {self.value!r}, gen={self.generation})"


class Database:
    """Committed nodes by full name, and the global generation count
    (incremented before each copy, so every change has its own)."""

    def __init__(self):
        self.nodes: dict[bytes, Node] = {}
        self.generation = 0

    def next_generation(self) -> int:
        self.generation += 1
        return self.generation

    def fetch(self, name: bytes) -> Node | None:
        """The stored node itself: whoever changes it changes a copy."""
        return self.nodes.get(name)

    def store(self, node: Node) -> None:
        self.nodes[node.name] = node

    def delete(self, name: bytes) -> None:
        self.nodes.pop(name, None)

    def __len__(self):
        return len(self.nodes)
